"""Which dependency stack ``make install`` sets up on this machine: ``cpu`` or ``cuda``.

``cuda`` when ``nvidia-smi -L`` lists a GPU, else ``cpu``; ``OPENMM_PQEQ_CUDA=1`` or ``=0``
forces the choice (``NVIDIA_SMI`` names another probe program, for tests).  The CUDA stack is
``requirements-cuda.txt`` (the CPU pins plus ``openmm-cuda-13`` and the CUDA build of
openmm-torch) and the compiled operators built with CUDA for the GPU's architecture.

    python tools/install_stack.py                  # cpu | cuda
    python tools/install_stack.py --requirements   # requirements.txt | requirements-cuda.txt
    python tools/install_stack.py --arch           # TORCH_CUDA_ARCH_LIST for the build, e.g. 9.0

Only the Python standard library: it runs before the virtual environment exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import List, Mapping, Optional

#: Architectures when the GPU cannot be asked (A100 and H100/H200).
DEFAULT_ARCHS = "8.0;9.0"
REQUIREMENTS = {"cpu": "requirements.txt", "cuda": "requirements-cuda.txt"}


def _run(args: List[str]) -> Optional[str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def gpus(env: Mapping[str, str]) -> List[str]:
    """The lines of ``nvidia-smi -L`` that name a GPU (empty without a driver or a GPU)."""
    out = _run([env.get("NVIDIA_SMI", "nvidia-smi"), "-L"])
    return [line.strip() for line in (out or "").splitlines() if line.strip().startswith("GPU ")]


def stack(env: Mapping[str, str]) -> str:
    """``cuda`` or ``cpu`` (see the module docstring); a bad OPENMM_PQEQ_CUDA is an error."""
    forced = env.get("OPENMM_PQEQ_CUDA", "")
    if forced not in ("", "0", "1"):
        raise ValueError(f"OPENMM_PQEQ_CUDA is {forced!r}; use 1 (CUDA stack), 0 (CPU stack) or leave it unset")
    if forced:
        return "cuda" if forced == "1" else "cpu"
    return "cuda" if gpus(env) else "cpu"


def arch_list(env: Mapping[str, str]) -> str:
    """``TORCH_CUDA_ARCH_LIST`` when set, else the compute capabilities of the GPUs here
    (``nvidia-smi --query-gpu=compute_cap``), else :data:`DEFAULT_ARCHS`."""
    if env.get("TORCH_CUDA_ARCH_LIST"):
        return env["TORCH_CUDA_ARCH_LIST"]
    out = _run([env.get("NVIDIA_SMI", "nvidia-smi"), "--query-gpu=compute_cap", "--format=csv,noheader"])
    caps = sorted({line.strip() for line in (out or "").splitlines() if line.strip()})
    if caps and all(c.replace(".", "", 1).isdigit() for c in caps):
        return ";".join(caps)
    return DEFAULT_ARCHS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--requirements", action="store_true", help="print the requirements file of the stack")
    group.add_argument("--arch", action="store_true", help="print TORCH_CUDA_ARCH_LIST for the operator build")
    args = parser.parse_args(argv)
    try:
        chosen = stack(os.environ)
    except ValueError as error:
        print(f"install_stack: {error}", file=sys.stderr)
        return 2
    if args.requirements:
        print(REQUIREMENTS[chosen])
    elif args.arch:
        print(arch_list(os.environ))
    else:
        print(chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
