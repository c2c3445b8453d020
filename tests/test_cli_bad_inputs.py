"""Bad input to the command line is one line naming the problem and a non-zero exit code, never a
traceback or a silent default; evaluate reads the structure file's charge and field."""

import json
import warnings

import numpy as np
import pytest

from openmm_pqeq.cli.main import main

WATER_XYZ = "3\n\nO 0 0 0\nH 0.7572 0.5865 0\nH -0.7572 0.5865 0\n"


@pytest.fixture
def water(tmp_path):
    path = tmp_path / "water.xyz"
    path.write_text(WATER_XYZ)
    return path


def _error(capsys, argv) -> str:
    """The stderr line of a command that must fail with exit code 1."""
    assert main(argv) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"openmm-pqeq {argv[0]}: error: "), lines
    return lines[0]


@pytest.mark.parametrize("arguments, message", [
    (["--index", "1000"], "--index 1000 is out of range: {path} has 1 frame(s) (valid: -1 to 0)"),
    (["--index", "abc"], "--index must be one frame number (an integer; -1 is the last frame), got 'abc'"),
    (["--index", "0:3"], "--index must be one frame number (an integer; -1 is the last frame), got '0:3'"),
    (["--field", "0", "0", "nan"], "the field must be 3 finite numbers in V/Å, got [0.0, 0.0, nan]"),
    (["--charge", "nan"], "the total charge must be a finite number in e, got nan"),
    (["--model", "water-demo", "--terms", "d3", "--mode", "reaxnet"],
     "--terms, --mode do not apply with --model: the model's own terms and settings are evaluated"),
    (["--model", "water-demo", "--d3-cutoff", "9"], "--d3-cutoff does not apply with --model"),
])
def test_evaluate_bad_options(capsys, water, arguments, message):
    assert message.format(path=water) in _error(capsys, ["evaluate", str(water), *arguments])


def test_evaluate_bad_files(capsys, tmp_path):
    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    assert f"structure file {empty} is empty" in _error(capsys, ["evaluate", str(empty)])
    unknown = tmp_path / "unknown.xyz"
    unknown.write_text(WATER_XYZ.replace("O 0 0 0", "Xx 0 0 0"))
    assert "unknown element symbol 'Xx'" in _error(capsys, ["evaluate", str(unknown)])
    assert "does not exist" in _error(capsys, ["evaluate", str(tmp_path / "missing.xyz")])


def test_evaluate_without_pqeq_reports_no_charges(capsys, water):
    assert main(["evaluate", str(water), "--terms", "d3"]) == 0
    out = capsys.readouterr().out
    assert "PQEq        not evaluated (no pqeq term)" in out
    assert "cycles" not in out and "charges by element" not in out
    assert main(["evaluate", str(water), "--terms", "d3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["charges_e"] is None and result["scf_iterations"] is None and result["converged"] is None


def test_evaluate_reads_charge_and_field_from_the_file(capsys, tmp_path):
    path = tmp_path / "water.extxyz"
    path.write_text(WATER_XYZ.replace("\n\n", '\nfield="0.0 0.0 0.3" charge=0\n', 1))

    def dipole(*arguments):
        assert main(["evaluate", str(path), "--json", *arguments]) == 0
        return np.array(json.loads(capsys.readouterr().out)["dipole_eA"])

    from_file = dipole()
    assert from_file == pytest.approx(dipole("--field", "0", "0", "0.3"), abs=1e-10)
    with pytest.warns(UserWarning, match=r"the given field \[0.0, 0.0, 0.0\] overrides the structure's "
                                         r"info\['field'\] = \[0.0, 0.0, 0.3\]"):
        without = dipole("--field", "0", "0", "0")
    assert from_file[2] - without[2] > 0.01  # the file's field polarizes the molecule (0.021 e·Å)
    charged = tmp_path / "ion.extxyz"
    charged.write_text("1\ncharge=1\nNa 0 0 0\n")
    assert main(["evaluate", str(charged), "--json"]) == 0
    assert sum(json.loads(capsys.readouterr().out)["charges_e"]) == pytest.approx(1.0)


@pytest.mark.parametrize("arguments, message", [
    (["--steps", "0"], "steps_without_field + steps_with_field is 0 (--steps): the run needs at least one step"),
    (["--timestep", "-1"], "timestep_fs is -1.0 (--timestep): it must be a positive number"),
    (["--temperature", "0"], "temperature_K is 0.0 (--temperature): it must be a positive number"),
    (["--field", "0", "0", "inf"], "field_V_per_A is [0.0, 0.0, inf] (--field): give 3 finite components"),
    (["--report-interval", "0"], "report_interval is 0 (--report-interval): it must be at least 1"),
    (["--checkpoint-interval", "15"], "checkpoint_interval is 15 (--checkpoint-interval): it must be a positive "
                                      "multiple of the report interval (10)"),
])
def test_md_bad_options(capsys, tmp_path, arguments, message):
    assert message in _error(capsys, ["md", "--output", str(tmp_path / "out"), *arguments])


def test_unknown_shipped_potential_name():
    from openmmml import MLPotential

    with pytest.raises(KeyError, match=r"MLPotential\('pqeq-nonexistent'\): no such PQEq potential; the names are "
                                       r"'pqeq' \(with modelPath=\) and the shipped models 'pqeq-water-demo'"):
        MLPotential("pqeq-nonexistent")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(KeyError):  # other names: openmm-ml's own error, untouched
            MLPotential("not-a-potential")
