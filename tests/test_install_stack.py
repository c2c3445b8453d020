"""`make install` picks the CUDA stack where a GPU is, the CPU stack elsewhere (tools/install_stack.py),
checked with a stand-in for nvidia-smi and `make -n` (nothing is installed)."""

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("install_stack", ROOT / "tools" / "install_stack.py")
install_stack = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(install_stack)


def _fake_smi(tmp_path, listing: str, caps: str = "9.0", code: int = 0) -> str:
    """An nvidia-smi stand-in: `-L` prints ``listing``, the compute-capability query ``caps``."""
    path = tmp_path / "nvidia-smi"
    path.write_text("#!/bin/sh\n"
                    f'if [ "$1" = "-L" ]; then printf "{listing}"; else printf "{caps}\\n"; fi\n'
                    f"exit {code}\n")
    path.chmod(0o755)
    return str(path)


H200 = "GPU 0: NVIDIA H200 (UUID: GPU-0b1c2d3e)\\n"


def test_stack_follows_the_gpu_probe(tmp_path):
    assert install_stack.stack({"NVIDIA_SMI": _fake_smi(tmp_path, H200)}) == "cuda"
    assert install_stack.stack({"NVIDIA_SMI": _fake_smi(tmp_path, "No devices were found\\n")}) == "cpu"
    assert install_stack.stack({"NVIDIA_SMI": _fake_smi(tmp_path, H200, code=9)}) == "cpu"  # driver error
    assert install_stack.stack({"NVIDIA_SMI": str(tmp_path / "missing")}) == "cpu"


def test_environment_variable_forces_the_stack(tmp_path):
    smi = _fake_smi(tmp_path, H200)
    assert install_stack.stack({"NVIDIA_SMI": smi, "OPENMM_PQEQ_CUDA": "0"}) == "cpu"
    assert install_stack.stack({"NVIDIA_SMI": str(tmp_path / "missing"), "OPENMM_PQEQ_CUDA": "1"}) == "cuda"
    with pytest.raises(ValueError, match="OPENMM_PQEQ_CUDA is 'yes'"):
        install_stack.stack({"OPENMM_PQEQ_CUDA": "yes"})


def test_architectures_from_the_gpu(tmp_path):
    assert install_stack.arch_list({"NVIDIA_SMI": _fake_smi(tmp_path, H200, "9.0\\n9.0")}) == "9.0"
    assert install_stack.arch_list({"NVIDIA_SMI": _fake_smi(tmp_path, H200, "8.0\\n9.0")}) == "8.0;9.0"
    assert install_stack.arch_list({"NVIDIA_SMI": _fake_smi(tmp_path, H200, "9.0"),
                                    "TORCH_CUDA_ARCH_LIST": "8.6"}) == "8.6"
    assert install_stack.arch_list({"NVIDIA_SMI": str(tmp_path / "missing")}) == install_stack.DEFAULT_ARCHS


def _dry_run(tmp_path, **env):
    """The commands `make -n install` would run, with a fresh virtual-environment path."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    # without the variables of an enclosing make (`make test` runs this): a sub-make would print
    # "Entering directory" lines and inherit the outer flags
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OPENMM_PQEQ_CUDA", "TORCH_CUDA_ARCH_LIST", "MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    environment.update(env)
    done = subprocess.run(["make", "--no-print-directory", "-n", "install", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                          env=environment,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [line.replace(str(tmp_path / "venv"), "VENV") for line in done.stdout.splitlines()]


def test_make_install_cpu_stack_is_unchanged(tmp_path):
    lines = _dry_run(tmp_path, OPENMM_PQEQ_CUDA="0")
    assert lines[1:] == [
        "VENV/bin/python -m pip install -q --upgrade pip",
        "VENV/bin/python -m pip install -q -r requirements.txt -r requirements-test.txt",
        "VENV/bin/python -m pip install -q --no-deps -e .",
        "touch VENV/.installed",
        "VENV/bin/python setup.py -q build_ext --inplace",
        "touch VENV/.ops-built",
    ]


def test_make_install_cuda_stack_where_a_gpu_is(tmp_path):
    lines = _dry_run(tmp_path, NVIDIA_SMI=_fake_smi(tmp_path, H200, "9.0"))
    text = "\n".join(lines)
    assert "pip install -q -r requirements-cuda.txt -r requirements-test.txt" in text
    assert "pip uninstall -q -y acellera-openmmtorch-cpu" in text
    assert 'OPENMM_PQEQ_BUILD_CUDA=1 TORCH_CUDA_ARCH_LIST="9.0" VENV/bin/python setup.py -q build_ext --inplace' in text
    assert "touch VENV/.installed-cuda" in text
    # no GPU: the CPU stack, unless forced
    assert "requirements-cuda.txt" not in "\n".join(_dry_run(tmp_path, NVIDIA_SMI=str(tmp_path / "missing")))
    forced = "\n".join(_dry_run(tmp_path, NVIDIA_SMI=str(tmp_path / "missing"), OPENMM_PQEQ_CUDA="1"))
    assert "requirements-cuda.txt" in forced and 'TORCH_CUDA_ARCH_LIST="8.0;9.0"' in forced


def _pins(name):
    lines = (ROOT / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_cuda_requirements_are_the_cpu_ones_with_the_cuda_builds():
    cpu, cuda = _pins("requirements.txt"), _pins("requirements-cuda.txt")
    version = {re.split("[=<>]", p)[0]: p for p in cpu + cuda}
    assert [p for p in cpu if not p.startswith("acellera-openmmtorch-cpu")] == \
        [p for p in cuda if not p.startswith(("acellera-openmmtorch-cu13", "openmm-cuda-13"))]
    assert version["openmm-cuda-13"].split("==")[1] == version["openmm"].split("==")[1]
    assert version["acellera-openmmtorch-cu13"].split("==")[1] == version["acellera-openmmtorch-cpu"].split("==")[1]
