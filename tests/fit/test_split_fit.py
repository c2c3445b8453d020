"""Fitting the split-charge model: bond hardnesses as bounded trainable parameters, exact
derivatives of the fit loss with respect to them, and the record a fitted set carries."""

import math

import pytest
import torch
from helpers import assert_gradients_match_finite_differences

from openmm_pqeq.electrostatics import PQEq
from openmm_pqeq.fit.pqeq_fit import (Structure, build_pqeq, charge_transfer_record, free_parameters, kappa_spread,
                                      loss_terms, predict)

WEIGHTS = {"dipole": 1.0, "polarizability": 1.0, "field_energy": 1.0, "esp": 0.5}
SCALES = {"dipole": 0.1, "polarizability": 1.0, "field_energy": 2.0, "esp": 0.1}
SPEC = {"kappa": "all", "chi": ["O", "Cl"], "Ks": ["Na", "O"], "bounds": {"kappa": 10.0}}


def _molecules():
    water_na = (torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0], [0.2, -2.2, 0.3]]),
                torch.tensor([8, 1, 1, 11]), 1.0)
    nacl_water = (torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0], [0.2, -2.3, 0.3],
                                [0.1, -4.7, -0.2]]), torch.tensor([8, 1, 1, 11, 17]), 0.0)
    return [water_na, nacl_water]


def _set_raw(values, params):
    with torch.no_grad():
        for param, value in zip(params, values):
            param.copy_(value)


def _synthetic_structures():
    """Structures whose 'DFT' reference is the split model itself with other parameters."""
    ref = build_pqeq([1, 8, 11, 17], "reaxnet", SPEC, 1e-10, 1e-9, "split")
    _set_raw([torch.tensor([0.3, -0.2]), torch.tensor([0.2, -0.3]), torch.linspace(-0.5, 0.5, 4)],
             free_parameters(ref))
    structures = []
    for pos, numbers, charge in _molecules():
        s = Structure(name=str(numbers.tolist()), positions=pos, numbers=numbers, charge=charge,
                      dipole=torch.zeros(3), polarizability=torch.zeros(3, 3), field_step=0.25,
                      field_energies=torch.zeros(6), esp_points=pos.mean(0) + torch.tensor(
                          [[3.5, 0.0, 0.0], [0.0, -3.8, 0.0], [0.0, 0.0, 4.0], [-3.2, 2.0, 1.0]]),
                      esp_values=torch.zeros(4))
        with torch.no_grad():
            pred = predict(ref, s)
        s.dipole, s.polarizability = pred["dipole"], pred["polarizability"]
        s.field_energies, s.esp_values = pred["field_energies"], pred["esp"]
        structures.append(s)
    return structures


def test_bond_hardness_combination_rules_and_pair_values():
    for rule, combined in (("geometric", (2.0 * 8.0) ** 0.5), ("arithmetic", 5.0)):
        pqeq = PQEq(["O", "H", "C"], charge_transfer="split",
                    transfer={"element_hardness": {"H": 2.0, "O": 8.0}, "combination": rule, "default_hardness": 3.0,
                              "hardness": {"C-O": 11.0}})
        table = pqeq.transfer.hardness_table()
        assert float(table[1, 8]) == pytest.approx(combined) and float(table[8, 1]) == float(table[1, 8])
        assert float(table[1, 1]) == pytest.approx(2.0) and float(table[6, 6]) == pytest.approx(3.0)
        assert float(table[6, 8]) == 11.0  # a pair's own value replaces the rule
    with pytest.raises(ValueError, match="combination"):
        PQEq(["O", "H"], charge_transfer="split", transfer={"combination": "harmonic"})
    with pytest.raises(ValueError, match="does not support"):
        PQEq(["O", "H"], charge_transfer="split", transfer={"element_hardness": {"C": 2.0}})


def test_element_bond_hardnesses_are_free_bounded_and_their_spread_is_a_prior():
    pqeq = PQEq(["O", "H", "C"], charge_transfer="split", trainable={"kappa": "all", "bounds": {"kappa": 4.0}},
                transfer={"default_hardness": 3.0})
    assert pqeq.transfer.elements == ["H", "C", "O"] and pqeq.n_trainable == 3
    assert float(kappa_spread(pqeq).detach()) == 0.0
    _set_raw([torch.tensor([1e6, 0.0, -1e6])], free_parameters(pqeq))
    table = pqeq.transfer.hardness_table().detach()
    assert float(table[1, 1]) == pytest.approx(12.0) and float(table[8, 8]) == pytest.approx(0.75)
    assert float(table[1, 8]) == pytest.approx(3.0)  # geometric mean of 12 and 0.75
    assert float(kappa_spread(pqeq)) == pytest.approx(2 * math.log(4.0) ** 2)
    with pytest.raises(ValueError, match="element"):
        PQEq(["O", "H"], charge_transfer="split", trainable={"kappa": ["C"]})


def test_bond_hardness_bounds_and_start():
    pqeq = PQEq(["O", "H"], charge_transfer="split",
                trainable={"kappa_pairs": ["O-H", "H-H"], "bounds": {"kappa": 4.0}},
                transfer={"default_hardness": 3.0})
    assert pqeq.transfer.pairs == ["H-H", "H-O"] and pqeq.n_trainable == 2
    assert float(pqeq.transfer.hardness_table().detach()[1, 8]) == 3.0
    for raw in (-1e6, 0.7, 1e6):
        _set_raw([torch.full((2,), raw)], free_parameters(pqeq))
        table = pqeq.transfer.hardness_table()
        assert 0.75 * (1 - 1e-12) <= float(table[1, 8]) <= 12.0 * (1 + 1e-12)
        assert float(table[1, 8]) == float(table[8, 1]) and float(table[8, 8]) == 3.0
    with pytest.raises(ValueError, match="charge_transfer 'split'"):
        PQEq(["O", "H"], trainable={"kappa": "all"})
    with pytest.raises(ValueError, match="pair"):
        PQEq(["O", "H"], charge_transfer="split", trainable={"kappa_pairs": ["C-H"]})


def test_implicit_derivatives_of_charges_dipole_and_forces_with_respect_to_bond_hardness():
    pos0, numbers, _ = _molecules()[1]
    pqeq = PQEq(["O", "H", "Na", "Cl"], charge_transfer="split", trainable=SPEC, charge_tolerance=1e-11,
                shell_tolerance=1e-10, predictor_order=0)
    params = free_parameters(pqeq)
    _set_raw([torch.tensor([0.1, -0.2]), torch.tensor([0.3, 0.1]), torch.linspace(-0.3, 0.4, 4)], params)

    def loss():
        outer = torch.is_grad_enabled()
        with torch.enable_grad():
            pos = pos0.clone().requires_grad_(True)
            pqeq.reset()
            out = pqeq(pos, numbers, None, torch.tensor([0.0, 0.05, 0.1]), 0.0)
            (forces,) = torch.autograd.grad(-out["energy"], pos, create_graph=outer)
        return (forces ** 2).sum() + (out["dipole"] ** 2).sum() + (out["charges"] ** 3).sum() + out["energy"]

    assert_gradients_match_finite_differences(loss, params, tol=1e-5)


def test_fit_loss_gradient_with_respect_to_bond_hardness_matches_finite_differences_and_a_fit_reduces_it():
    structures = _synthetic_structures()
    pqeq = build_pqeq([1, 8, 11, 17], "reaxnet", SPEC, 1e-10, 1e-9, "split")
    params = free_parameters(pqeq)
    assert sum(p.numel() for p in params) == 8
    assert_gradients_match_finite_differences(lambda: loss_terms(pqeq, structures, WEIGHTS, SCALES)["loss"], params,
                                              tol=1e-5)
    optimizer = torch.optim.Adam(params, lr=0.1)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = loss_terms(pqeq, structures, WEIGHTS, SCALES)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    record = charge_transfer_record(pqeq)
    assert record["model"] == "split" and set(record["element_hardness"]) == {"H", "O", "Na", "Cl"}
    assert all(math.isfinite(v) and v > 0 for v in record["element_hardness"].values())
    # a PQEq built from the record reproduces the fitted hardnesses
    rebuilt = PQEq(["O", "H", "Na", "Cl"], charge_transfer="split",
                   transfer={k: v for k, v in record.items() if k != "model"})
    assert torch.allclose(rebuilt.transfer.hardness_table(), pqeq.transfer.hardness_table().detach())


def test_shipped_split_set_selects_its_charge_transfer_model_and_round_trips(tmp_path):
    from openmm_pqeq.electrostatics.parameters import PARAMETER_SETS, _load_tables, charge_transfer_of, provenance
    from openmm_pqeq.io import load_model, save_model
    from openmm_pqeq.model import build_model

    assert "pqeq-split" in PARAMETER_SETS
    if "pqeq-split" not in _load_tables()["sets"]:
        pytest.skip("openmm_pqeq/data/pqeq_split.json not shipped")
    model_name, options = charge_transfer_of("pqeq-split")
    assert model_name == "split" and (options.get("element_hardness") or options.get("hardness"))
    assert charge_transfer_of("pqeq-refined")[0] == "global"
    info = provenance("pqeq-split")
    assert info["provenance"]["start"] == "pqeq-refined" and "test" in info["metrics"]["refined"]
    pqeq = PQEq(["O", "H", "C"], params="pqeq-split")
    assert pqeq.charge_transfer == "split"
    from openmm_pqeq.electrostatics.bond_hardness import BondHardness, merge_transfer

    expected = BondHardness([1, 6, 8], merge_transfer(options, None, [1, 6, 8])).hardness_table()
    assert float(pqeq.transfer.hardness_table()[1, 8]) == pytest.approx(float(expected[1, 8]))
    assert PQEq(["O", "H"], params="pqeq-split", charge_transfer="global").charge_transfer == "global"
    model = build_model({"elements": ["O", "H"], "pqeq": {"params": "pqeq-split"}})
    save_model(model, tmp_path / "s.pt")
    loaded = load_model(tmp_path / "s.pt")
    assert loaded.pqeq.charge_transfer == "split"
    pos = torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])
    a = model(pos, torch.tensor([8, 1, 1]), None, torch.zeros(3))
    b = loaded(pos, torch.tensor([8, 1, 1]), None, torch.zeros(3))
    assert torch.allclose(a["charges"], b["charges"], atol=1e-10)


def test_element_hardnesses_recovered_from_pairs_that_follow_the_geometric_rule():
    from openmm_pqeq.electrostatics.bond_hardness import element_hardness_from_pairs

    truth = {"H": 2.0, "O": 8.0, "C": 4.0}
    pairs = {"H-H": 2.0, "O-O": 8.0, "H-O": 4.0, "C-H": math.sqrt(8.0), "C-C": 4.0}
    got = element_hardness_from_pairs(pairs, anchor=5.0)
    for symbol, value in truth.items():
        assert got[symbol] == pytest.approx(value, rel=2e-3)
    # a lone hetero pair fixes only the product; the ridge splits it evenly around the anchor
    lone = element_hardness_from_pairs({"Li-F": 20.0}, anchor=5.0)
    assert math.sqrt(lone["Li"] * lone["F"]) == pytest.approx(20.0, rel=1e-2)
    assert lone["Li"] == pytest.approx(lone["F"], rel=1e-6)
    with pytest.raises(ValueError, match="positive"):
        element_hardness_from_pairs({"H-H": -1.0}, anchor=5.0)


def test_pairs_without_data_get_the_geometric_mean_of_their_elements():
    from openmm_pqeq.electrostatics.bond_hardness import BondHardness, bonded_pairs
    from openmm_pqeq.fit.pqeq_fit import generalize_bond_hardness

    water = torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])
    methanol_like = torch.tensor([[0.0, 0.0, 0.0], [1.43, 0.0, 0.0], [1.75, 0.9, 0.0]])  # C-O-H
    pqeq = PQEq(["O", "H", "C"], charge_transfer="split", trainable={"kappa_pairs": "all", "chi": ["O"]},
                transfer={"default_hardness": 5.0}, charge_tolerance=1e-11, shell_tolerance=1e-10)
    assert bonded_pairs(pqeq.transfer, water, torch.tensor([8, 1, 1])) == {"H-O"}
    assert bonded_pairs(pqeq.transfer, methanol_like, torch.tensor([6, 8, 1])) == {"C-O", "H-O"}
    _set_raw([torch.tensor([0.2]), torch.linspace(-0.6, 0.6, 6)], free_parameters(pqeq))
    fitted = pqeq.transfer.hardness_table().detach().clone()
    train = [Structure(name="w", positions=water, numbers=torch.tensor([8, 1, 1]), charge=0.0, dipole=torch.zeros(3),
                       polarizability=torch.zeros(3, 3), field_step=0.25, field_energies=torch.zeros(6),
                       esp_points=torch.zeros(0, 3), esp_values=torch.zeros(0))]
    with torch.no_grad():
        before = predict(pqeq, train[0], ("dipole", "polarizability"))
    record = generalize_bond_hardness(pqeq, train, [1, 6, 8])
    assert set(record["hardness"]) == {"H-O"} and record["combination"] == "geometric"
    assert record["hardness"]["H-O"] == pytest.approx(float(fitted[1, 8]))
    elements = record["element_hardness"]
    assert set(elements) == {"H", "O"}  # carbon has no data: it keeps default_hardness
    table = pqeq.transfer.hardness_table()
    assert float(table[1, 8]) == pytest.approx(float(fitted[1, 8]))
    assert float(table[6, 8]) == pytest.approx(math.sqrt(5.0 * elements["O"]))
    assert float(table[1, 1]) == pytest.approx(elements["H"]) and float(table[6, 6]) == 5.0
    assert pqeq.n_trainable == 1 and pqeq.transfer.n_free == 0
    # what the training structure sees is unchanged
    with torch.no_grad():
        after = predict(pqeq, train[0], ("dipole", "polarizability"))
    assert torch.allclose(after["dipole"], before["dipole"], atol=1e-9)
    assert torch.allclose(after["polarizability"], before["polarizability"], atol=1e-8)
    rebuilt = BondHardness([1, 6, 8], {k: v for k, v in record.items() if k != "model"})
    assert torch.allclose(rebuilt.hardness_table(), table.detach())


def test_split_fit_takes_structures_with_reference_apts_and_refuses_an_apt_weight():
    from openmm_pqeq.fit.pqeq_fit import FitConfig, metrics

    structures = _synthetic_structures()
    structures[0].apt = torch.zeros(4, 3, 3, dtype=torch.float64)  # as labelled with --forces
    pqeq = build_pqeq([1, 8, 11, 17], "reaxnet", SPEC, 1e-10, 1e-9, "split")
    pred = predict(pqeq, structures[0])
    assert "apt" not in pred and pred["polarizability"].shape == (3, 3)
    report = metrics(pqeq, structures)
    assert report["n_structures"] == 2 and "apt_mae_e" not in report
    with pytest.raises(ValueError, match="'apt' weight to 0 for charge_transfer 'split'"):
        FitConfig.from_dict({"charge_transfer": "split", "weights": {"apt": 1.0}})
    FitConfig.from_dict({"charge_transfer": "global", "weights": {"apt": 1.0}})


def test_bond_length_slope_follows_the_formula_is_bounded_and_round_trips():
    """κ_b = κ⁰ exp(γ (r − R_i − R_j)) / g(r)², with R the covalent radii of ase.data (independent)."""
    from ase.data import covalent_radii

    pqeq = PQEq(["O", "H", "C"], charge_transfer="split",
                trainable={"kappa_slope": True, "bounds": {"kappa_slope": 2.0}},
                transfer={"default_hardness": 4.0, "length_slope": 3.0})
    assert pqeq.n_trainable == 1 and float(pqeq.transfer.slope_table()[6, 8]) == 3.0
    r_sum = covalent_radii[6] + covalent_radii[8]
    distance = torch.tensor([1.16, 1.21, 1.43, 0.98 * 1.1 * r_sum], dtype=torch.float64)
    z_c, z_o = torch.full((4,), 6), torch.full((4,), 8)
    root_s, root_kappa = pqeq.transfer.root_softness(distance, z_c, z_o)
    expected_kappa = 4.0 * torch.exp(3.0 * (distance - r_sum))
    assert torch.allclose(root_kappa ** 2, expected_kappa.to(root_kappa.dtype), rtol=1e-12)
    assert torch.allclose(root_s ** 2, 1.0 / expected_kappa, rtol=1e-12)  # all below the onset: g = 1
    assert float(root_s[1]) > float(root_s[2])  # the C=O-like bond is softer than the C–O-like one
    for raw, limit in ((1e6, 5.0), (-1e6, 1.0)):
        _set_raw([torch.tensor([raw])], free_parameters(pqeq))
        assert float(pqeq.transfer.slope_table()[6, 8]) == pytest.approx(limit)
    _set_raw([torch.tensor([0.4])], free_parameters(pqeq))
    record = charge_transfer_record(pqeq)
    assert record["length_slope"] == pytest.approx(3.0 + 2.0 * math.tanh(0.4))
    rebuilt = PQEq(["O", "H", "C"], charge_transfer="split", transfer={k: v for k, v in record.items() if k != "model"})
    assert torch.allclose(rebuilt.transfer.root_softness(distance, z_c, z_o)[0],
                          pqeq.transfer.root_softness(distance, z_c, z_o)[0].detach())
    # a pair's own slope replaces the common one, and a free pair slope moves that pair only
    pqeq = PQEq(["O", "H", "C"], charge_transfer="split", trainable={"kappa_slope_pairs": ["C-O"]},
                transfer={"length_slope": 1.0, "pair_slope": {"H-C": 2.5}})
    _set_raw([torch.tensor([0.5])], free_parameters(pqeq))
    table = pqeq.transfer.slope_table().detach()
    assert float(table[1, 6]) == 2.5 and float(table[1, 8]) == 1.0 and float(table[6, 6]) == 1.0
    assert float(table[6, 8]) == pytest.approx(1.0 + 6.0 * math.tanh(0.5)) and float(table[8, 6]) == float(table[6, 8])
    record = charge_transfer_record(pqeq)
    assert record["length_slope"] == 1.0 and record["pair_slope"] == pytest.approx(
        {"H-C": 2.5, "C-O": 1.0 + 6.0 * math.tanh(0.5)})
    with pytest.raises(ValueError, match="length_slope"):
        PQEq(["O", "H"], charge_transfer="split", transfer={"length_slope": float("nan")})
    with pytest.raises(ValueError, match="kappa_slope"):
        PQEq(["O", "H"], charge_transfer="split", trainable={"kappa_slope": "yes"})
    with pytest.raises(ValueError, match="charge_transfer 'split'"):
        PQEq(["O", "H"], trainable={"kappa_slope": True})


def test_fit_loss_gradient_with_respect_to_length_slopes_and_shell_bonds_matches_finite_differences():
    structures = _synthetic_structures()
    spec = {**SPEC, "kappa_slope": True, "kappa_slope_pairs": ["H-O", "O-Na"], "Ks_bonds": ["O:H", "Na:O", "Cl:Na"]}
    pqeq = build_pqeq([1, 8, 11, 17], "reaxnet", spec, 1e-10, 1e-9, "split")
    params = free_parameters(pqeq)
    assert sum(p.numel() for p in params) == 14
    _set_raw([torch.tensor([0.1, -0.2]), torch.tensor([0.3, 0.1]), torch.linspace(-0.3, 0.4, 4),
              torch.tensor([0.3]), torch.tensor([-0.2, 0.4]), torch.tensor([0.2, -0.3, 0.1])], params)
    assert_gradients_match_finite_differences(lambda: loss_terms(pqeq, structures, WEIGHTS, SCALES)["loss"], params,
                                              tol=1e-5)
    record = charge_transfer_record(pqeq)
    assert record["shell_bonds"] == pytest.approx({"O:H": 1.0 * math.tanh(0.2), "Na:O": -math.tanh(0.3),
                                                   "Cl:Na": math.tanh(0.1)})
    rebuilt = PQEq(["O", "H", "Na", "Cl"], charge_transfer="split",
                   transfer={k: v for k, v in record.items() if k != "model"})
    assert torch.allclose(rebuilt.transfer.shell_table(), pqeq.transfer.shell_table().detach())
    assert torch.allclose(rebuilt.transfer.slope_table(), pqeq.transfer.slope_table().detach())
