"""Bad input is a clear error, never a silent wrong answer."""

import pytest
import torch

from openmm_pqeq.electrostatics import PQEq, element_parameters

from helpers import water_box, water_dimer


def test_unknown_element_names_it():
    pos, num = water_dimer()
    num = num.clone()
    num[2] = 6
    with pytest.raises(ValueError, match=r"element C \(Z=6\) is not supported"):
        PQEq(["O", "H"])(pos, num, None, torch.zeros(3))
    with pytest.raises(ValueError, match="unknown element symbol 'Xx'"):
        PQEq(["O", "Xx"])
    with pytest.raises(ValueError, match="atomic number 110 is outside"):
        element_parameters("reaxnet", 110)
    with pytest.raises(ValueError, match="unknown PQEq parameter set 'pqeq9'"):
        PQEq(["O"], params="pqeq9")


def test_overlapping_atoms():
    pos, num = water_dimer()
    pos = pos.clone()
    pos[4] = pos[0] + torch.tensor([0.05, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"atoms 0 and 4 are 0.05.* Å apart"):
        PQEq(["O", "H"])(pos, num, None, torch.zeros(3))


def test_nanometre_input_is_caught_as_overlap():
    pos, num = water_dimer()
    with pytest.raises(ValueError, match="wrong length unit"):
        PQEq(["O", "H"])(pos * 0.1, num, None, torch.zeros(3))


def test_non_converging_solve_raises_or_warns():
    pos, num, cell = water_box()
    strict = PQEq(["O", "H"], max_iterations=1, charge_tolerance=1e-14, shell_tolerance=1e-14)
    with pytest.raises(RuntimeError, match="did not converge in 1 cycles"):
        strict(pos, num, cell, torch.zeros(3))
    lenient = PQEq(["O", "H"], max_iterations=1, charge_tolerance=1e-14, shell_tolerance=1e-14, on_failure="warn")
    with pytest.warns(UserWarning, match="did not converge"):
        out = lenient(pos, num, cell, torch.zeros(3))
    assert not bool(out["converged"])


def test_bad_cell_and_nan():
    pos, num, cell = water_box()
    with pytest.raises(ValueError, match="cell is singular"):
        PQEq(["O", "H"])(pos, num, torch.zeros(3, 3), torch.zeros(3))
    bad = pos.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        PQEq(["O", "H"])(bad, num, cell, torch.zeros(3))


def test_bad_options():
    with pytest.raises(ValueError, match="`mode` is 'exact'"):
        PQEq(["O"], mode="exact")
    with pytest.raises(ValueError, match="`on_failure` is 'ignore'"):
        PQEq(["O"], on_failure="ignore")
    pos, num = water_dimer()
    with pytest.raises(ValueError, match="group_charges has 3 entries but groups has 2 groups"):
        PQEq(["O", "H"])(pos, num, None, torch.zeros(3), groups=torch.tensor([0, 0, 0, 1, 1, 1]),
                         group_charges=torch.zeros(3))


def test_reaxnet_mode_rejects_cells_too_small_for_minimum_image():
    pos, num, cell = water_box()
    with pytest.raises(ValueError, match="minimum-image convention and needs every cell width >= 2 x 12.5"):
        PQEq(["O", "H"], mode="reaxnet")(pos, num, cell, torch.zeros(3))
    # the physical mode handles the same small cell with Ewald sums over many images
    assert bool(PQEq(["O", "H"])(pos, num, cell, torch.zeros(3))["converged"])


def test_numbers_in_torchscript_messages_are_rounded():
    from openmm_pqeq.electrostatics.messages import decimal
    scripted = torch.jit.script(decimal)
    for value, digits, text in [(0.46999, 3, "0.47"), (3.4349, 2, "3.43"), (2.0, 2, "2.0"), (0.0501, 3, "0.05"),
                                (-1.26, 1, "-1.3"), (-0.0001, 2, "0.0"), (0.1499, 4, "0.1499")]:
        assert decimal(value, digits) == text
        assert scripted(value, digits) == text
