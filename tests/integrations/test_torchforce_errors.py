"""Every error the model raises inside an OpenMM TorchForce reaches the caller as an
exception with its message, and the process lives (it used to die with SIGSEGV: see
``openmm_pqeq.integrations.openmm_force.torchforce_module``).  Each run is a child process
(torchforce_error_cases.py), with and without the compiled operators."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
OVERLAP = "OpenMMException: builtins.ValueError: atoms 0 and 4 are 0.1499"
NAN = "ValueError: the position of atom 5 is not finite"
NOT_CONVERGED = "OpenMMException: builtins.RuntimeError: PQEq charge/shell solve did not converge in 1 cycles"
EXPECTED = {
    "periodic_reference_energy": None,
    "periodic_overlap_getState": OVERLAP,
    "periodic_overlap_step": OVERLAP,
    "periodic_nan_getState": NAN,
    "periodic_nan_step": NAN,
    "periodic_tiny_box_getState": "closer than min_distance",
    "periodic_strong_field_step": None,
    "periodic_runaway_field_getState": "OpenMMException: builtins.ValueError: the shell of atom",
    "periodic_stretched_no_field_getState": None,
    "periodic_stretched_field_getState": "OpenMMException: builtins.ValueError: under a field, atom 2 sits 0.47 of a cell vector (3.43 Å) from atom 0",
    "periodic_energy_after_errors": None,
    "open_overlap_getState": OVERLAP,
    "open_nan_step": NAN,
    "open_not_converged_getState": NOT_CONVERGED,
    "open_not_converged_step": NOT_CONVERGED,
    "unknown_element_getState": "OpenMMException: builtins.ValueError: atomic number 11 is not supported by this model",
}


@pytest.mark.parametrize("disable_ops", ["0", "1"], ids=["compiled-ops", "pytorch-fallback"])
def test_every_model_error_reaches_openmm_as_an_exception(disable_ops):
    env = {**os.environ, "OPENMM_PQEQ_DISABLE_OPS": disable_ops, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(HERE / "torchforce_error_cases.py")], capture_output=True, text=True,
                         env=env, timeout=600)
    results = {}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            results[record["case"]] = record
    assert run.returncode == 0, (f"the process died (exit code {run.returncode}) after cases {list(results)}; "
                                 f"stderr ends: {run.stderr[-2000:]}")
    assert results["done"]["custom_ops"] == (disable_ops == "0")
    # the field beyond the training range was reported once (TorchScript warnings go to stderr)
    assert run.stderr.count("outside the model's training range: field") == 1, run.stderr[-2000:]
    for case, expected in EXPECTED.items():
        error = results[case]["error"]
        if expected is None:
            assert error is None, f"{case}: {error}"
        else:
            assert error is not None and expected in error, f"{case}: got {error!r}, expected {expected!r}"
