"""The GPU mode of the benchmark scripts, run on the CPU (``--device cpu``) at tiny sizes: the
stages run, report what the GPU summary needs, and the summary reads them.  Nothing is timed
here; the GPU numbers come from benchmarks/gpu/check.sh on a GPU."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_md  # noqa: E402
import bench_pqeq  # noqa: E402
import run_all  # noqa: E402


@pytest.fixture
def tiny_structure(tmp_path, monkeypatch):
    """A 64-atom periodic Li-P-N-O cell (jittered rock-salt-like lattice) in place of Li2PO2N."""
    import ase
    import ase.io

    rng = np.random.default_rng(2)
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    frac = np.concatenate([base, base + [0.5, 0, 0]]) % 1.0
    cells = np.array([[x, y, z] for x in range(2) for y in range(2) for z in range(2)])
    pos = (frac[None] + cells[:, None]).reshape(-1, 3) * 4.3 + rng.normal(scale=0.05, size=(64, 3))
    atoms = ase.Atoms(numbers=np.tile([3, 3, 3, 15, 8, 8, 7, 8], 8), positions=pos, cell=np.eye(3) * 8.6, pbc=True)
    path = tmp_path / "tiny.extxyz"
    ase.io.write(path, atoms)
    monkeypatch.setitem(bench_pqeq.STRUCTURE, "path", str(path))
    return path


def test_gpu_mode_stages_and_summary_on_cpu(tiny_structure):
    pqeq = bench_pqeq.run_pqeq("1x1x1", 4, 0, None, "cpu")
    assert pqeq["atoms"] == 64 and pqeq["warm_s"] > 0 and pqeq["peak_memory_GB"] > 0
    assert "peak_gpu_memory_GB" not in pqeq  # a CPU run reports no GPU memory
    fallback = bench_pqeq.run_pqeq("1x1x1", 4, 0, False, "cpu")
    assert not fallback["uses_custom_ops"]
    dense = bench_pqeq.run_dense("1x1x1", "cpu")
    assert set(dense["seconds"]) == {"matrix", "solve", "shells", "total"}
    model = bench_pqeq.run_model("1x1x1", 4, "cpu", "small")
    assert len(model["whole_step_s"]) == 4 and model["e0_dtype"] == "torch.float32"
    openmm_row = bench_md.run_openmm(4, 2, 1, "python", "water-demo", "cpu")
    assert openmm_row["platform"] == "CPU"
    assert openmm_row["ns_per_day"] == pytest.approx(86400 / openmm_row["median_s"] * 0.5e-6)

    report = bench_pqeq.new_report("test", [], "cpu", pqeq=[pqeq], dense_baseline=[dense], fallback=fallback,
                                   model=[model, {"error": "CUDA out of memory", "stage": "model 2x2x3"}])
    assert report["device"] == "cpu"
    summary = run_all.summarize_gpu(report, {"openmm": [openmm_row]})
    assert summary["pqeq_solve_2160_s"] == pqeq["warm_s"]
    assert summary["model_step_2160_s"] == model["whole_step_median_s"]
    assert summary["model_step_24000_s"] is None and summary["errors"] == {"model 2x2x3": "CUDA out of memory"}
    assert summary["speedup_vs_dense_2160"] == pytest.approx(dense["seconds"]["total"] / pqeq["warm_s"])
    assert summary["custom_ops_vs_fallback_2160"] == pytest.approx(fallback["warm_s"] / pqeq["warm_s"])
    assert summary["water_md"][0]["ns_per_day"] == openmm_row["ns_per_day"]
    assert summary["published_h100_step_s"] == {"2160": 0.07, "24000": 1.49}
    assert summary["targets"]["model_step_24000_s"]["met"] is None
    assert summary["targets"]["model_step_2160_s"]["met"] == (model["whole_step_median_s"] <= 0.010)
    assert "not measured" in summary["torchforce"]


def test_gpu_check_script_keeps_its_time_budget(tmp_path):
    """benchmarks/gpu/check.sh: valid bash; with its budget spent every stage is skipped, and the
    summary says so (the full --cpu-dry-run takes minutes: see README, Running on a GPU)."""
    import subprocess

    script = ROOT / "benchmarks" / "gpu" / "check.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    env = {**__import__("os").environ, "OUT": str(tmp_path / "out"), "CHECK_BUDGET_S": "0"}
    done = subprocess.run(["bash", str(script), "--cpu-dry-run"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "out" / "summary.txt").read_text()
    for name in ("environment", "wheels", "import", "tests", "benchmark"):
        assert f"{name}: skipped" in summary
