# Two commands on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) the virtual environment .venv and install pinned dependencies.
# The stack follows the machine (tools/install_stack.py): CPU (requirements.txt) unless
# `nvidia-smi -L` lists a GPU, then CUDA (requirements-cuda.txt: openmm-cuda-13, the CUDA build of
# openmm-torch, the operators built for the GPU's architecture); OPENMM_PQEQ_CUDA=0|1 forces it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STACK  := $(shell $(PYTHON) tools/install_stack.py)
ifeq ($(STACK),)
$(error tools/install_stack.py failed (is OPENMM_PQEQ_CUDA 0 or 1?))
endif
# compiled operators (plugin/): rebuilt only when their sources change; CMake keeps its build
# folder (build/ops-torch-X.Y), so even then only changed files compile
OPS_SOURCES := CMakeLists.txt $(shell find plugin -name '*.cpp' -o -name '*.cu' -o -name '*.h' 2>/dev/null)

.PHONY: install test docs demo bench clean

ifeq ($(STACK),cuda)
STAMP     := $(VENV)/.installed-cuda
OPS_STAMP := $(VENV)/.ops-built-cuda
CUDA_ARCHS := $(shell $(PYTHON) tools/install_stack.py --arch)

$(STAMP): requirements-cuda.txt requirements-test.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	-$(PY) -m pip uninstall -q -y acellera-openmmtorch-cpu
	$(PY) -m pip install -q -r requirements-cuda.txt -r requirements-test.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# the CUDA kernels are required here (a build without them would leave the GPU unused)
$(OPS_STAMP): $(STAMP) $(OPS_SOURCES)
	OPENMM_PQEQ_BUILD_CUDA=1 TORCH_CUDA_ARCH_LIST="$(CUDA_ARCHS)" $(PY) setup.py -q build_ext --inplace
	touch $(OPS_STAMP)
else
STAMP     := $(VENV)/.installed
OPS_STAMP := $(VENV)/.ops-built

$(STAMP): requirements.txt requirements-test.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# optional: without a compiler (or with OPENMM_PQEQ_BUILD_OPS=0) the pure-PyTorch fallback runs
$(OPS_STAMP): $(STAMP) $(OPS_SOURCES)
	$(PY) setup.py -q build_ext --inplace
	touch $(OPS_STAMP)
endif

install: $(STAMP) $(OPS_STAMP)

test: install
	$(PY) -m pytest -q tests

# HTML documentation in docs/_build/html (method, guides, API reference from the docstrings);
# every warning is an error and every cross-reference must resolve (tests/docs checks the same)
docs: install
	$(PY) -m sphinx -b html -n -W --keep-going -E docs docs/_build/html

# Field-driven MD of a periodic water box with the shipped water-demo model: equilibrate, run
# without field, switch 0.25 V/Å on along z, run again; writes demo-output/ (trajectory.dcd,
# final.pdb, charges.txt with per-frame charges and dipole, thermo.csv, polarization.png).
DEMO_MOLECULES ?= 256
DEMO_STEPS     ?= 200
demo: install
	$(VENV)/bin/openmm-pqeq md --model water-demo --molecules $(DEMO_MOLECULES) --field 0 0 0.25 \
		--equilibration-steps 100 --steps $(DEMO_STEPS) --report-interval 10 --output demo-output

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info demo-output openmm_pqeq/lib docs/_build docs/api/generated docs/guide/generated
