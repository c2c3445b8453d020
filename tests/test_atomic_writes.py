"""Interrupted writes leave the previous file intact: the atomic-write helper and the model
files written through it (a SIGINT or SIGKILL inside ``torch.save`` used to leave a model
file that does not load)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openmm_pqeq._atomic import atomic_path, atomic_write, atomic_write_text
from openmm_pqeq.io import load_model, read_model_file, save_model
from openmm_pqeq.model import build_model

#: A child that saves a model over ``path`` but is interrupted half-way through ``torch.save``.
INTERRUPTED_SAVE = """
import io, os, signal, sys
import torch
from openmm_pqeq.io import save_model
from openmm_pqeq.model import build_model

path, how = sys.argv[1], sys.argv[2]
# a job started in the background by a shell inherits SIGINT ignored; Ctrl-C is what is tested
signal.signal(signal.SIGINT, signal.default_int_handler)
real_save = torch.save

def half_then_interrupted(obj, target, *args, **kwargs):
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    handle = open(target, "wb") if isinstance(target, (str, os.PathLike)) else target
    handle.write(data[: len(data) // 2])
    handle.flush()
    os.kill(os.getpid(), getattr(signal, how))

torch.save = half_then_interrupted
save_model(build_model({"elements": ["O", "H", "C"], "pqeq": {}}), path, description="new")
"""


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_model_save_keeps_the_old_file(tmp_path, how):
    path = tmp_path / "model.pt"
    save_model(build_model({"elements": ["O", "H"], "pqeq": {}}), path, description="old")
    before = path.read_bytes()
    script = tmp_path / "interrupted_save.py"
    script.write_text(textwrap.dedent(INTERRUPTED_SAVE))
    repository = str(Path(__file__).resolve().parents[1])  # the child imports this checkout's openmm_pqeq
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repository, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(script), str(path), how], capture_output=True, text=True, timeout=300,
                         env=env)
    assert run.returncode != 0  # the child was interrupted
    assert path.read_bytes() == before
    assert read_model_file(path)["metadata"]["description"] == "old"
    assert load_model(path).elements == [1, 8]
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("model.pt", "interrupted_save.py"))
    if how == "SIGINT":  # Python unwinds: the temporary file is removed
        assert leftovers == []


def test_exception_inside_the_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_text(path, json.dumps({"energy_eV": -1.0}))

    def broken(handle):
        handle.write('{"energy_eV": ')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken, mode="w")
    assert json.loads(path.read_text()) == {"energy_eV": -1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_atomic_path_keeps_the_suffix_and_permissions(tmp_path):
    path = tmp_path / "sub" / "frames.extxyz"
    with atomic_path(path) as temporary:
        assert temporary.parent == path.parent and temporary.name.endswith(".extxyz")
        temporary.write_text("2\n\nH 0 0 0\nH 0 0 0.74\n")
    assert path.read_text().startswith("2\n")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(tmp_path / "never.txt"):
            pass
    assert not (tmp_path / "never.txt").exists()
