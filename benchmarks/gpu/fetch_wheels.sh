#!/usr/bin/env bash
# Fetch the wheels that benchmarks/gpu/check.sh installs on a bare GPU machine (Python 3.12,
# torch 2.11 with CUDA 13, e3nn, CMake, nvcc; no network, no OpenMM) into the git-ignored .whl/
# at the repository root.  Run it on any machine with network access to the package index:
#
#   bash benchmarks/gpu/fetch_wheels.sh            # uses .venv/bin/pip (or PIP=...)
#
# Binary wheels only, no dependencies (the GPU machine has torch, e3nn, numpy; everything else
# the package and the GPU tests import at run time is listed here), for CPython 3.12 on x86-64
# Linux.  The versions are the pins of requirements.txt; vesin-torch ships one library per torch
# minor and this version has one for torch 2.11 (checked below).  Not carried: torch-pme and mdtraj
# (pinned, but imported neither by the package nor by the GPU tests), tqdm, matplotlib, pyyaml,
# openmmml, openmm-torch (not imported on the paths the check runs: checked by running the GPU tests
# and the benchmark plumbing with those modules made unimportable); scipy, which ase imports, comes
# with e3nn.
set -euo pipefail
cd "$(dirname "$0")/../.."
PIP=${PIP:-.venv/bin/pip}
DEST=.whl
mkdir -p "$DEST"
WHEELS=(
    openmm==8.6.1            # OpenMM (water-demo MD with the python backend)
    openmm-cuda-13==8.6.1    # its CUDA platform
    vesin-torch==0.6.2       # neighbour lists (TorchScript, CPU and CUDA)
    tad-dftd3==0.7.0         # D3 reference data, read when the D3 module is built
    tad-mctc==0.8.0
    ase==3.29.0              # structure files (benchmarks, evaluate, ASE calculator)
    pytest==9.2.0            # the GPU tests, and what pytest imports
    pluggy==1.7.0
    iniconfig==2.3.1
    packaging==26.4
    pygments==2.21.0
)
PLATFORMS=(--platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64)
"$PIP" download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --abi abi3 --abi none "${PLATFORMS[@]}" -d "$DEST" "${WHEELS[@]%%#*}"
# vesin-torch: one shared library per torch minor; the GPU machine has torch 2.11
python3 - "$DEST" <<'PY'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("vesin_torch-*.whl"))
names = zipfile.ZipFile(wheel).namelist()
if not any(n.startswith("vesin_torch/torch-2.11/") for n in names):
    sys.exit(f"{wheel.name} has no library for torch 2.11")
print(f"{wheel.name}: has vesin_torch/torch-2.11")
PY
ls -l "$DEST"
du -sh "$DEST"
