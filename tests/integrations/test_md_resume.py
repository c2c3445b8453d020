"""`openmm-pqeq md` checkpoints and `--resume`: a run killed with SIGKILL mid-run continues
with its trajectory, charges, shells, field and thermo files appended consistently (no
duplicated or missing frames), and the resume refuses what it cannot continue."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mdtraj
import numpy as np
import pytest

from openmm_pqeq.cli.main import main
from openmm_pqeq.integrations.reporters import read_charges, read_shell_dipoles
from openmm_pqeq.io import save_model
from openmm_pqeq.md_checkpoint import CHECKPOINT_NAME, read_checkpoint, write_checkpoint
from openmm_pqeq.model import build_model

REPOSITORY = Path(__file__).resolve().parents[2]
#: 10 equilibration steps, 20 without and 20 with the field, a frame every 5 steps after
#: equilibration (steps 15, 20, ..., 50), a checkpoint every 10 steps and at phase changes
OPTIONS = ["--molecules", "8", "--equilibration-steps", "10", "--steps", "20", "--report-interval", "5",
           "--checkpoint-interval", "10", "--timestep", "0.25", "--platform", "Reference", "--quiet"]
FRAME_STEPS = list(range(15, 51, 5))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    model = build_model({"elements": ["O", "H"], "e0": {"preset": "small", "num_blocks": 1}, "pqeq": {}})
    return str(save_model(model, tmp_path_factory.mktemp("model") / "model.pt"))


def _rows_of(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line and not line.startswith("#")) if path.exists() else 0


def test_md_continues_after_kill_9(small_model, tmp_path):
    output = tmp_path / "run"
    command = [sys.executable, "-m", "openmm_pqeq.cli.main", "md", "--model", small_model, *OPTIONS,
               "--output", str(output)]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(command, env=env, cwd=REPOSITORY, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_at = None
    deadline = time.time() + 600
    while child.poll() is None and time.time() < deadline:
        checkpoint = read_checkpoint(output)  # written atomically: complete whenever it exists
        # kill once a checkpoint inside the output phases exists and frames were written after it
        if checkpoint is not None and checkpoint["step"] >= 20 and not checkpoint["finished"]:
            recorded = checkpoint["outputs"]["charges.txt"]["bytes"]
            if (output / "charges.txt").stat().st_size > recorded:
                os.kill(child.pid, signal.SIGKILL)
                killed_at = checkpoint["step"]
                break
        time.sleep(0.05)
    child.wait(timeout=60)
    assert killed_at is not None, f"the run ended (code {child.returncode}) before it could be killed mid-run: " \
                                  f"{child.stderr.read().decode()[-1500:]}"
    assert child.returncode == -signal.SIGKILL
    checkpoint = read_checkpoint(output)
    frames_before = _rows_of(output / "charges.txt")
    assert frames_before > (checkpoint["step"] - 10) // 5  # frames past the checkpoint, to be dropped

    resumed = subprocess.run(command + ["--resume"], env=env, cwd=REPOSITORY, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout[resumed.stdout.index("{"):])
    assert summary["resumed_from_step"] == checkpoint["step"]

    charges = read_charges(output / "charges.txt")
    assert charges["step"].tolist() == FRAME_STEPS
    assert np.abs(charges["charges_e"].reshape(len(FRAME_STEPS), -1, 3).sum(-1)).max() < 1e-6
    with open(output / "thermo.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0].startswith("#") and all(not row[0].startswith("#") for row in rows[1:])  # one header
    assert [int(row[0]) for row in rows[1:]] == FRAME_STEPS
    assert read_shell_dipoles(output / "shells.txt")["step"].tolist() == FRAME_STEPS
    field_steps = np.loadtxt(output / "field.csv", delimiter=",", ndmin=2)[:, 0].astype(int).tolist()
    assert field_steps == list(range(10, 51))  # the field, set at the end of equilibration, then every step
    trajectory = mdtraj.load_dcd(str(output / "trajectory.dcd"), top=str(output / "final.pdb"))
    assert trajectory.n_frames == len(FRAME_STEPS)
    assert np.isfinite(trajectory.xyz).all()
    final = read_checkpoint(output)
    assert final["finished"] and final["step"] == 50


def _checkpointed_run(folder: Path, model: str, step: int, finished: bool) -> None:
    """A checkpoint file as an interrupted run with OPTIONS would leave it (no MD needed to
    test the refusals, which come before any MD)."""
    from openmm_pqeq.md import MDSettings, _run_identity

    settings = MDSettings(n_molecules=8, equilibration_steps=10, steps_without_field=20, steps_with_field=20,
                          report_interval=5, checkpoint_interval=10, timestep_fs=0.25, platform="Reference")
    write_checkpoint(folder, step, finished, _run_identity(model, settings), {}, b"", 1.0)


def test_resume_refuses_what_it_cannot_continue(small_model, tmp_path, capsys):
    output = tmp_path / "run"
    output.mkdir()
    assert main(["md", "--model", small_model, *OPTIONS, "--output", str(output), "--resume"]) == 1
    assert f"{CHECKPOINT_NAME} does not exist" in capsys.readouterr().err
    _checkpointed_run(output, small_model, 40, finished=False)
    assert main(["md", "--model", small_model, *OPTIONS, "--output", str(output)]) == 1
    assert "holds an unfinished run (checkpoint at step 40): continue it with --resume" in capsys.readouterr().err
    changed = [*OPTIONS[:5], "40", *OPTIONS[6:]]  # --steps 40 instead of 20
    assert main(["md", "--model", small_model, *changed, "--output", str(output), "--resume"]) == 1
    assert "steps_without_field: 20 in the checkpoint, 40 now" in capsys.readouterr().err
    (output / CHECKPOINT_NAME).write_text("{not json")
    assert main(["md", "--model", small_model, *OPTIONS, "--output", str(output), "--resume"]) == 1
    assert "is not an openmm-pqeq md checkpoint" in capsys.readouterr().err
