# Two commands on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) the virtual environment .venv and install pinned dependencies.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# compiled operators (plugin/): rebuilt only when their sources change; CMake keeps its build
# folder (build/ops-torch-X.Y), so even then only changed files compile
OPS_STAMP   := $(VENV)/.ops-built
OPS_SOURCES := CMakeLists.txt $(shell find plugin -name '*.cpp' -o -name '*.cu' -o -name '*.h' 2>/dev/null)

.PHONY: install test demo bench clean

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

install: $(STAMP) $(OPS_STAMP)

test: install
	$(PY) -m pytest -q tests

# Until the MD demo ships (issue 5), the demo computes PQEq charges of the shipped LiPON cell.
demo: install
	$(VENV)/bin/openmm-pqeq evaluate examples/data/Li2PO2N.cif --mode reaxnet --params reaxnet

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info demo-output openmm_pqeq/lib
