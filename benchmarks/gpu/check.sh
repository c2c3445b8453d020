#!/usr/bin/env bash
# One-shot GPU check for a bare GPU machine: Python 3.12, torch 2.11 (CUDA 13), e3nn, CMake and
# nvcc, no network, no OpenMM.  From the repository root, with the wheels of
# benchmarks/gpu/fetch_wheels.sh in .whl/:
#
#   bash benchmarks/gpu/check.sh              # everything lands in $OUT (or gpu-check-output/)
#   bash benchmarks/gpu/check.sh --cpu-dry-run   # the stages this CPU machine can run (see below)
#
# Stages, each under its own time limit and all within CHECK_BUDGET_S (default 470 s), a failed
# stage does not stop the later ones:
#   1 environment  nvidia-smi, python, torch, what is importable        -> env.txt, nvidia-smi.txt
#   2 wheels       the carried wheels are the expected ones (names, cp312, vesin for torch 2.11)
#   3 install      pip install --no-index --no-deps --target from .whl/  -> install.log
#   4 build        the operators against this torch, TORCH_CUDA_ARCH_LIST=9.0 (CUDA required)
#                                                                          -> build.log
#   5 import       openmm_pqeq, the operators and their CUDA kernels, OpenMM platforms -> import.txt
#   6 tests        the GPU tests (tests/ops/test_parity.py, tests/test_device_plumbing.py)
#                                                                          -> pytest.txt, pytest.xml
#   7 benchmark    benchmarks/run_all.py --device cuda (python backend; the TorchForce CUDA wheel
#                  needs the torch it was built with, so TorchForce is reported as not measured)
#                                                                          -> results/*.json, bench.log
# and summary.txt with each stage's exit status and duration.
#
# --cpu-dry-run (for testing this script without a GPU): uses the current python and its
# installed packages, checks the wheels but does not install them (they are for CPython 3.12),
# does not rebuild the operators, runs the tests on the CPU (the GPU ones skip) and the benchmark
# in its --quick mode on the CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MODE=gpu
if [ "${1:-}" = "--cpu-dry-run" ]; then MODE=cpu; fi
OUT=${OUT:-$ROOT/gpu-check-output}
mkdir -p "$OUT"
BUDGET=${CHECK_BUDGET_S:-470}
START=$(date +%s)
PYTHON=${PYTHON:-python3}
SITE=$ROOT/.gpu-site
SUMMARY=$OUT/summary.txt
echo "# benchmarks/gpu/check.sh ($MODE mode) $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$SUMMARY"

remaining() { echo $(( BUDGET - ($(date +%s) - START) )); }

# stage NAME LIMIT_S COMMAND...: run with a time limit (capped by what is left of the budget)
stage() {
    local name=$1 limit=$2
    shift 2
    local left
    left=$(remaining)
    if [ "$left" -lt 10 ]; then
        echo "$name: skipped (budget of ${BUDGET} s spent)" | tee -a "$SUMMARY"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    local status="exit $rc"
    [ "$rc" -eq 124 ] && status="timed out after ${limit} s"
    echo "$name: $status, $(( $(date +%s) - t0 )) s" | tee -a "$SUMMARY"
    return 0
}

if [ "$MODE" = gpu ]; then
    export PYTHONPATH=$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}
else
    PYTHON=${PYTHON_DRY_RUN:-$ROOT/.venv/bin/python}
    [ -x "$PYTHON" ] || PYTHON=$(command -v python3)
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
# CUDA libraries for vesin (NVRTC, loaded at run time) and OpenMM's CUDA platform: the toolkit of
# nvcc and the nvidia-* wheels that came with torch
CUDA_DIR=$("$PYTHON" - <<'PY' 2>/dev/null
import os, shutil
nvcc = shutil.which("nvcc")
if nvcc:
    real = os.path.realpath(nvcc)
    home = os.path.dirname(os.path.dirname(real))
    if not os.path.exists(os.path.join(home, "include", "cuda_runtime.h")):
        for word in open(real, errors="ignore").read().split():   # a wrapper script
            if word.strip("'\"").endswith("/bin/nvcc"):
                home = os.path.dirname(os.path.dirname(word.strip("'\"")))
    print(home)
PY
)
NVIDIA_LIBS=$("$PYTHON" - <<'PY' 2>/dev/null
import glob, os, site
dirs = []
for base in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib")))
print(":".join(dirs))
PY
)
[ -n "$CUDA_DIR" ] && export CUDA_HOME=$CUDA_DIR
export LD_LIBRARY_PATH=${NVIDIA_LIBS}${CUDA_DIR:+:$CUDA_DIR/lib64}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# 1 environment
environment() {
    {
        echo "mode: $MODE"; echo "python: $("$PYTHON" --version 2>&1)"; echo "CUDA_HOME: ${CUDA_HOME:-}"
        echo "nvcc: $(nvcc --version 2>&1 | tail -1)"; echo "cmake: $(cmake --version 2>&1 | head -1)"
        "$PYTHON" - <<'PY'
import importlib
for name in ("torch", "e3nn", "numpy", "scipy", "yaml", "tqdm", "matplotlib", "openmm", "ase", "vesin_torch",
             "tad_dftd3", "pytest"):
    try:
        module = importlib.import_module(name)
        print(f"{name}: {getattr(module, '__version__', '?')}")
    except Exception as error:  # report, do not stop
        print(f"{name}: not importable ({type(error).__name__}: {error})")
import torch
print("torch CUDA:", torch.version.cuda, "available:", torch.cuda.is_available(),
      "devices:", [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
PY
    } > "$OUT/env.txt" 2>&1
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed" >> "$OUT/nvidia-smi.txt"
}
stage environment 60 bash -c "$(declare -f environment); MODE=$MODE PYTHON=$PYTHON OUT=$OUT environment"

# 2 wheels
stage wheels 30 "$PYTHON" - "$ROOT/.whl" <<'PY' > "$OUT/wheels.txt" 2>&1
import pathlib, sys, zipfile
folder = pathlib.Path(sys.argv[1])
wanted = ["openmm-8.6.1-cp312", "openmm_cuda_13-8.6.1-", "vesin_torch-0.6.2-", "tad_dftd3-0.7.0-",
          "tad_mctc-0.8.0-", "ase-3.29.0-", "pytest-", "pluggy-", "iniconfig-", "packaging-", "pygments-"]
wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
for wheel in wheels:
    print(f"{wheel.name} {wheel.stat().st_size / 1e6:.1f} MB")
missing = [w for w in wanted if not any(p.name.startswith(w) for p in wheels)]
vesin = [p for p in wheels if p.name.startswith("vesin_torch-")]
if vesin and not any(n.startswith("vesin_torch/torch-2.11/") for n in zipfile.ZipFile(vesin[0]).namelist()):
    missing.append("vesin-torch library for torch 2.11")
print(f"total {sum(p.stat().st_size for p in wheels) / 1e6:.1f} MB")
if missing:
    sys.exit("missing: " + ", ".join(missing) + " (run benchmarks/gpu/fetch_wheels.sh)")
PY

# 3 install (pip; where this python has no pip, the wheels are unpacked, which is what pip does
# for these: no scripts, purelib/platlib data moved into place)
install() {
    if "$PYTHON" -m pip --version > /dev/null 2>&1; then
        "$PYTHON" -m pip install --no-index --no-deps --target "$SITE" "$ROOT"/.whl/*.whl
    else
        echo "no pip for $PYTHON: unpacking the wheels into $SITE"
        "$PYTHON" - "$ROOT/.whl" "$SITE" <<'PY'
import pathlib, shutil, sys, zipfile
wheels, site = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
site.mkdir(parents=True, exist_ok=True)
for wheel in sorted(wheels.glob("*.whl")):
    zipfile.ZipFile(wheel).extractall(site)
    print("unpacked", wheel.name)
for data in site.glob("*.data"):
    for scheme in ("purelib", "platlib"):
        for item in (data / scheme).glob("*") if (data / scheme).is_dir() else []:
            shutil.copytree(item, site / item.name, dirs_exist_ok=True) if item.is_dir() else shutil.copy2(item, site)
PY
    fi
}
if [ "$MODE" = gpu ]; then
    stage install 90 bash -c "$(declare -f install); PYTHON='$PYTHON' ROOT='$ROOT' SITE='$SITE' install \
        > '$OUT/install.log' 2>&1"
else
    echo "install: not run (--cpu-dry-run: the wheels are for CPython 3.12)" | tee -a "$SUMMARY"
fi

# 4 build
if [ "$MODE" = gpu ]; then
    stage build 200 env OPENMM_PQEQ_BUILD_OPS=1 OPENMM_PQEQ_BUILD_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 \
        CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PYTHON" setup.py build_ext --inplace > "$OUT/build.log" 2>&1
else
    echo "build: not run (--cpu-dry-run: the operators built by make install are used)" | tee -a "$SUMMARY"
fi

# 5 import
stage import 60 "$PYTHON" - <<'PY' > "$OUT/import.txt" 2>&1
import openmm
import torch

import openmm_pqeq
from openmm_pqeq import ops

print("openmm_pqeq:", openmm_pqeq.__file__)
print("operators loaded:", ops.has_custom_ops(), ops.unavailable_reason() or ops.library_path())
print("CUDA kernels:", ops.has_cuda_kernels())
print("OpenMM", openmm.__version__, "platforms:",
      [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())])
print("OpenMM plugin load failures:", openmm.Platform.getPluginLoadFailures())
if torch.cuda.is_available():
    from openmm_pqeq.neighbors import NeighborList

    pos = torch.rand(50, 3, dtype=torch.float64, device="cuda") * 10
    i, j, s = NeighborList(4.0)(pos, torch.eye(3, dtype=torch.float64, device="cuda") * 10)
    print("vesin on the GPU:", i.device, int(i.shape[0]), "pairs")
PY

# 6 tests
TESTS="tests/ops/test_parity.py tests/test_device_plumbing.py"
stage tests 150 "$PYTHON" -m pytest -q $TESTS -p no:cacheprovider --junitxml="$OUT/pytest.xml" > "$OUT/pytest.txt" 2>&1

# 7 benchmark (stage limits inside, the rest of the budget as a whole)
if [ "$MODE" = gpu ]; then
    BENCH=(--device cuda)
else
    BENCH=(--device cpu --quick)
fi
export BENCH_DEADLINE=$(( START + BUDGET - 5 ))
stage benchmark "$(remaining)" "$PYTHON" benchmarks/run_all.py "${BENCH[@]}" --timeout 120 \
    --results "$OUT/results" > "$OUT/bench.log" 2>&1

echo "total: $(( $(date +%s) - START )) s of ${BUDGET} s" | tee -a "$SUMMARY"
echo "results in $OUT"
