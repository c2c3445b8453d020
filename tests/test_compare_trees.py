"""benchmarks/compare_trees.py: the headline times it compares, read from the benchmarks' reports."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_trees.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare_trees", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_headline_times_skip_failed_rows(compare):
    pqeq = {"pqeq": [{"atoms": 2160, "warm_s": 0.4, "warm_forward_backward_s": 0.55, "cold": {"forward_s": 1.2}},
                     {"atoms": 4320, "error": "timed out"}],
            "dense_baseline": [{"atoms": 2160, "seconds": {"total": 2.2}}],
            "fallback": {"atoms": 2160, "warm_s": 2.6}}
    md = {"openmm": [{"atoms": 177, "backend": "torchforce", "median_s": 0.096},
                     {"atoms": 177, "backend": "python", "error": "crashed"}]}
    assert compare.headline_times(pqeq, md) == {
        "pqeq_warm_2160": 0.4, "pqeq_warm_forward_backward_2160": 0.55, "pqeq_cold_2160": 1.2,
        "dense_baseline_2160": 2.2, "pytorch_fallback_warm_2160": 2.6, "openmm_step_177_torchforce": 0.096}


def test_refuses_a_tree_without_the_benchmarks(compare, tmp_path):
    with pytest.raises(SystemExit):
        compare.main([str(tmp_path), str(tmp_path), "--output", str(tmp_path / "out.json")])
