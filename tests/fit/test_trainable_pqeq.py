"""Trainable PQEq parameters: bounds, frozen default, implicit derivatives, analytic
polarizability, loss gradients, a tiny fit, save/load round trip, joint-training checks."""

import math

import pytest
import torch
from helpers import assert_gradients_match_finite_differences

from openmm_pqeq.electrostatics import PQEq
from openmm_pqeq.electrostatics.implicit import analytic_polarizability, electrostatic_potential
from openmm_pqeq.electrostatics.parameters import element_parameters
from openmm_pqeq.fit.pqeq_fit import Structure, build_pqeq, loss_terms, metrics, predict
from openmm_pqeq.units import COULOMB_EV_A

SPEC = {"chi": "all", "J": "all", "R": "all", "Ks": "all"}
WEIGHTS = {"dipole": 1.0, "polarizability": 1.0, "field_energy": 1.0, "esp": 0.5}
SCALES = {"dipole": 0.1, "polarizability": 1.0, "field_energy": 2.0, "esp": 0.1}


def _water_na():
    pos = torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0], [0.3, 2.9, 0.4]])
    return pos, torch.tensor([8, 1, 1, 11])


def _nacl_water():
    pos = torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0], [0.2, -2.3, 0.3],
                        [0.1, -4.7, -0.2]])
    return pos, torch.tensor([8, 1, 1, 11, 17])


def _set_raw(pqeq, values):
    with torch.no_grad():
        for param, value in zip(pqeq.trainable_parameters.parameters(), values):
            param.copy_(value)


def test_frozen_by_default_has_no_parameters_and_exact_tables():
    pqeq = PQEq(["O", "H", "Na"])
    assert list(pqeq.parameters()) == []
    numbers = torch.tensor([8, 1, 11])
    p = pqeq.atom_parameters(numbers, torch.float64)
    for key, table in (("chi", pqeq.table_chi), ("J", pqeq.table_J), ("Ks", pqeq.table_Ks),
                       ("a", pqeq.table_exponent)):
        assert torch.equal(p[key], table.index_select(0, numbers))
    assert pqeq.trainable_parameters(pqeq.table_chi, pqeq.table_J, pqeq.table_Ks, pqeq.table_exponent)[0] \
        is pqeq.table_chi


def test_freed_parameters_start_at_the_table():
    pos, numbers = _water_na()
    field = torch.tensor([0.0, 0.1, 0.05])
    frozen = PQEq(["O", "H", "Na"])(pos, numbers, None, field, 1.0)
    free = PQEq(["O", "H", "Na"], trainable=SPEC)
    assert len(list(free.parameters())) == 4
    out = free(pos, numbers, None, field, 1.0)
    assert torch.allclose(out["charges"], frozen["charges"], atol=1e-12, rtol=0)
    assert abs(float((out["energy"] - frozen["energy"]).detach())) < 1e-10
    scripted = torch.jit.script(free)
    assert abs(float(scripted(pos, numbers, None, field, 1.0)["energy"] - frozen["energy"])) < 1e-10


@pytest.mark.parametrize("raw", [-1e6, -30.0, 0.0, 30.0, 1e6])
def test_bounds_hold_for_extreme_raw_values(raw):
    bounds = {"chi": 1.5, "J": 2.0, "R": 1.3, "Ks": 4.0}
    pqeq = PQEq(["O", "H"], trainable={**SPEC, "bounds": bounds})
    _set_raw(pqeq, [torch.full((2,), raw)] * 4)
    chi, J, Ks, a = pqeq.trainable_parameters(pqeq.table_chi, pqeq.table_J, pqeq.table_Ks, pqeq.table_exponent)
    for z in (1, 8):
        base = element_parameters("reaxnet", z)
        radius = math.sqrt(0.4627701421 / (2 * float(a[z])))
        assert base.chi - bounds["chi"] - 1e-9 <= float(chi[z]) <= base.chi + bounds["chi"] + 1e-9
        assert base.J / 2.0 * (1 - 1e-12) <= float(J[z]) <= base.J * 2.0 * (1 + 1e-12)
        assert base.Ks / 4.0 * (1 - 1e-12) <= float(Ks[z]) <= base.Ks * 4.0 * (1 + 1e-12)
        assert base.R / 1.3 * (1 - 1e-9) <= radius <= base.R * 1.3 * (1 + 1e-9)
        assert all(math.isfinite(float(t[z])) for t in (chi, J, Ks, a))


def test_spec_errors():
    with pytest.raises(ValueError, match="unknown keys"):
        PQEq(["O", "H"], trainable={"alpha": "all"})
    with pytest.raises(ValueError, match="not supported"):
        PQEq(["O", "H"], trainable={"chi": ["Na"]})
    with pytest.raises(ValueError, match="scale factor"):
        PQEq(["O", "H"], trainable={"J": "all", "bounds": {"J": 0.5}})
    with pytest.raises(ValueError, match="mode 'physical'"):
        PQEq(["O", "H"], mode="reaxnet", trainable={"chi": "all"})
    assert len(list(PQEq(["O", "H"], trainable={"chi": [], "bounds": {"chi": 1.0}}).parameters())) == 0


def _solution_loss(pqeq, pos, numbers, points):
    pqeq.reset()
    out = pqeq(pos, numbers, None, torch.zeros(3), 0.0)
    p = pqeq.atom_parameters(numbers, torch.float64)
    esp = electrostatic_potential(points, pos, out["charges"], out["shell_displacements"], p)
    return (out["dipole"] ** 2).sum() + (out["charges"] ** 3).sum() + (esp ** 2).sum() + out["energy"]


def test_implicit_derivatives_of_solution_quantities_match_finite_differences():
    pos, numbers = _nacl_water()
    pqeq = PQEq(["O", "H", "Na", "Cl"], trainable=SPEC, charge_tolerance=1e-11, shell_tolerance=1e-10,
                predictor_order=0)
    _set_raw(pqeq, [torch.linspace(-0.3, 0.3, 4)] * 4)
    points = torch.tensor([[3.0, 1.0, 0.5], [-2.0, -3.0, 2.5], [0.5, 3.5, -1.0]])
    assert_gradients_match_finite_differences(lambda: _solution_loss(pqeq, pos, numbers, points),
                                              list(pqeq.trainable_parameters.parameters()))


def test_analytic_polarizability_matches_finite_field_and_its_gradient():
    pos, numbers = _water_na()
    pqeq = PQEq(["O", "H", "Na"], trainable=SPEC, charge_tolerance=1e-11, shell_tolerance=1e-10, predictor_order=0)
    _set_raw(pqeq, [torch.tensor([0.2, -0.1, 0.3])] * 4)
    out = pqeq(pos, numbers, None, torch.zeros(3), 1.0)
    p = pqeq.atom_parameters(numbers, torch.float64)
    alpha = analytic_polarizability(pqeq, pos, out["charges"], out["shell_displacements"], p)
    step = 1e-3
    columns = []
    with torch.no_grad():
        for axis in range(3):
            f = torch.zeros(3)
            f[axis] = step
            up = pqeq(pos, numbers, None, f, 1.0)["dipole"]
            down = pqeq(pos, numbers, None, -f, 1.0)["dipole"]
            columns.append((up - down) / (2 * step) * COULOMB_EV_A)
    assert torch.allclose(alpha.detach(), torch.stack(columns, 1), atol=1e-5, rtol=1e-6)

    def loss():
        pqeq.reset()
        o = pqeq(pos, numbers, None, torch.zeros(3), 1.0)
        a = analytic_polarizability(pqeq, pos, o["charges"], o["shell_displacements"],
                                    pqeq.atom_parameters(numbers, torch.float64))
        return (a * a).sum()

    assert_gradients_match_finite_differences(loss, list(pqeq.trainable_parameters.parameters()), tol=1e-5)


def _synthetic_structures(reference_raw):
    """Two structures whose 'DFT' reference is PQEq itself with other parameters."""
    ref = build_pqeq([1, 8, 11, 17], "reaxnet", SPEC, 1e-10, 1e-9)
    _set_raw(ref, reference_raw)
    structures = []
    for pos, numbers, charge in ((_water_na()[0], _water_na()[1], 1.0), (_nacl_water()[0], _nacl_water()[1], 0.0)):
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


def test_fit_loss_gradient_matches_finite_differences_and_a_tiny_fit_reduces_it():
    structures = _synthetic_structures([torch.tensor([0.3, -0.2, 0.1, 0.2])] * 4)
    pqeq = build_pqeq([1, 8, 11, 17], "reaxnet", {"chi": ["O", "Cl"], "Ks": "all", "R": ["Na"]}, 1e-10, 1e-9)
    assert_gradients_match_finite_differences(lambda: loss_terms(pqeq, structures, WEIGHTS, SCALES)["loss"],
                                              list(pqeq.trainable_parameters.parameters()), tol=1e-5)
    params = list(pqeq.trainable_parameters.parameters())
    optimizer = torch.optim.Adam(params, lr=0.1)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = loss_terms(pqeq, structures, WEIGHTS, SCALES)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    m = metrics(pqeq, structures)
    assert m["n_structures"] == 2 and math.isfinite(m["polarizability_iso_mae_au"])


def test_refined_parameters_round_trip_through_a_model_file(tmp_path):
    from openmm_pqeq.io import load_model, save_model
    from openmm_pqeq.model import build_model

    config = {"elements": ["O", "H", "Na"], "pqeq": {"mode": "physical", "trainable": {"Ks": "all", "chi": ["O"]}}}
    model = build_model(config)
    _set_raw(model.pqeq, [torch.tensor([0.4]), torch.tensor([0.1, -0.2, 0.3])])
    pos, numbers = _water_na()
    before = model(pos, numbers, None, torch.zeros(3), 1.0)
    save_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert torch.equal(loaded.pqeq.trainable_parameters.raw_Ks, model.pqeq.trainable_parameters.raw_Ks)
    after = loaded(pos, numbers, None, torch.zeros(3), 1.0)
    assert torch.allclose(after["charges"], before["charges"], atol=1e-10)


def test_shipped_refined_set_is_selectable_and_round_trips(tmp_path):
    from openmm_pqeq.electrostatics.parameters import PARAMETER_SETS, _load_tables, provenance
    from openmm_pqeq.io import load_model, save_model
    from openmm_pqeq.model import build_model

    assert "pqeq-refined" in PARAMETER_SETS
    if "pqeq-refined" not in _load_tables()["sets"]:
        pytest.skip("openmm_pqeq/data/pqeq_refined.json not shipped")
    info = provenance("pqeq-refined")
    assert info["provenance"]["start"] == "reaxnet" and "test" in info["metrics"]["refined"]
    model = build_model({"elements": ["O", "H", "Na", "Cl"], "pqeq": {"params": "pqeq-refined"}})
    assert float(model.pqeq.table_Ks[8]) == pytest.approx(element_parameters("pqeq-refined", "O").Ks)
    save_model(model, tmp_path / "r.pt")
    loaded = load_model(tmp_path / "r.pt")
    for key in ("table_chi", "table_J", "table_Ks", "table_exponent"):
        assert torch.equal(getattr(loaded.pqeq, key), getattr(model.pqeq, key))


def test_joint_training_config_needs_online_long_range_and_trains_pqeq_parameters():
    from openmm_pqeq.model import build_model
    from openmm_pqeq.train.config import TrainConfig
    from openmm_pqeq.train.freezing import select_trainable

    pqeq = {"mode": "physical", "params": "reaxnet", "trainable": {"Ks": ["O"]}}
    with pytest.raises(ValueError, match="long_range: online"):
        TrainConfig.from_dict({"data": {"train": "x.extxyz"}, "model": {"pqeq": pqeq}}).validate()
    TrainConfig.from_dict({"data": {"train": "x.extxyz"}, "model": {"pqeq": pqeq},
                           "training": {"long_range": "online"}}).validate()
    model = build_model({"elements": ["O", "H"], "e0": {"preset": "small", "avg_num_neighbors": 2.0}, "pqeq": pqeq})
    names = [n for n, _ in select_trainable(model, "readout")]
    assert "pqeq.trainable_parameters.raw_Ks" in names and any(n.startswith("e0.") for n in names)


def test_force_loss_gradient_with_respect_to_pqeq_parameters():
    """Joint training: forces depend on the parameters through the charges (implicit path)."""
    pos0, numbers = _nacl_water()
    pqeq = PQEq(["O", "H", "Na", "Cl"], trainable={"chi": ["O", "Cl"], "Ks": ["Na", "O"], "R": ["H"]},
                charge_tolerance=1e-11, shell_tolerance=1e-10, predictor_order=0)
    _set_raw(pqeq, [torch.tensor([0.2, -0.1]), torch.tensor([0.3]), torch.tensor([0.1, 0.2])])

    def loss():
        outer = torch.is_grad_enabled()  # False for the finite differences
        with torch.enable_grad():
            pos = pos0.clone().requires_grad_(True)
            pqeq.reset()
            energy = pqeq(pos, numbers, None, torch.tensor([0.0, 0.0, 0.1]), 0.0)["energy"]
            (forces,) = torch.autograd.grad(-energy, pos, create_graph=outer)
        return (forces ** 2).sum() + energy

    assert_gradients_match_finite_differences(loss, list(pqeq.trainable_parameters.parameters()), tol=1e-5)


def test_periodic_systems_with_freed_parameters():
    """Evaluation (eval mode, MD) works for periodic systems; training with freed parameters on
    periodic data is a clear error (the implicit derivatives are dense, open systems only)."""
    pos, numbers = _water_na()
    cell = torch.eye(3) * 12.0
    pqeq = PQEq(["O", "H", "Na"], trainable={"Ks": ["O"]})
    pqeq.eval()
    p = pos.clone().requires_grad_(True)
    energy = pqeq(p, numbers, cell, torch.zeros(3), 1.0)["energy"]
    assert torch.isfinite(torch.autograd.grad(energy, p)[0]).all()
    pqeq.train()
    with pytest.raises(NotImplementedError, match="open"):
        pqeq(pos, numbers, cell, torch.zeros(3), 1.0)


def test_without_solution_derivatives_skips_only_the_implicit_solution():
    """Inside the block the charges carry no derivative by the freed parameters (no implicit
    solution) while the energy keeps its exact one (envelope theorem); after it, both again."""
    pos, numbers = _water_na()
    field = torch.tensor([0.0, 0.1, 0.05], dtype=torch.float64)
    pqeq = PQEq(["O", "H", "Na"], trainable=SPEC)
    pqeq.train()
    pos = pos.to(torch.float64)
    chi = next(pqeq.trainable_parameters.parameters())

    def derivatives(out):
        (energy,) = torch.autograd.grad(out["energy"], chi, retain_graph=True)
        return energy, out["charges"].requires_grad

    energy_full, charges_differentiable = derivatives(pqeq(pos, numbers, None, field, 1.0))
    assert charges_differentiable
    with pqeq.without_solution_derivatives():
        energy_frozen, charges_frozen = derivatives(pqeq(pos, numbers, None, field, 1.0))
    assert not charges_frozen
    assert torch.allclose(energy_frozen, energy_full, rtol=1e-5, atol=1e-9)  # both solves to 1e-6 eV/e
    assert pqeq.solution_derivatives
    assert derivatives(pqeq(pos, numbers, None, field, 1.0))[1]
