"""The shipped water-refined PQEq sets (``pqeq-water``, isotropic shells; ``pqeq-water-aniso``, bond-
anisotropic shells): the gas-phase monomers against their PBE references in the data file, and the
test-split numbers recorded in each set against a recomputation on the data file."""

from pathlib import Path

import pytest
import torch

from openmm_pqeq.electrostatics.parameters import PARAMETER_SETS, provenance
from openmm_pqeq.fit.pqeq_fit import build_pqeq, load_structures, metrics, predict, split, water_monomer_axes

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "water_response_pbe.extxyz"
MOLECULES = {"rule": "molecules", "bond_factor": 1.3}


@pytest.fixture(scope="module")
def structures():
    return load_structures(DATA, MOLECULES)


@pytest.mark.parametrize("name", ["pqeq-water", "pqeq-water-aniso"])
def test_pqeq_water_is_shipped_with_the_molecules_rule_and_a_cluster_test_split(structures, name):
    assert name in PARAMETER_SETS
    info = provenance(name)
    assert info["provenance"]["charge_constraint"]["rule"] == "molecules"
    names = info["provenance"]["test_structures"]
    kinds = {s.name: s.kind for s in structures}
    assert {kinds[n] for n in names} == {"monomer", "gas", "liquid"}
    config = info["provenance"]["config"]
    parts = split(structures, config["test_fraction"], config["split_seed"], config["test_families"])
    assert sorted(structures[k].name for k in parts["test"]) == sorted(names)


def test_pqeq_water_monomer_matches_pbe(structures):
    """The reference monomer (O–H 0.970 Å, H–O–H 104.3°): dipole within 5 %, polarizability in the
    molecular plane ⊥ C2 and along C2 within 10 % of PBE/def2-SVPD (the values in the data file).
    Out of plane the goal of 10 % is missed: isotropic shells reach 16 % (README, "Shipped set
    pqeq-water"); the bound here guards against losing more (reaxnet: 31 %)."""
    monomer = next(s for s in structures if s.name == "monomer:eq")
    pqeq = build_pqeq([1, 8], "pqeq-water")
    with torch.no_grad():
        pred = predict(pqeq, monomer, ("dipole", "polarizability"))
    mu, mu_ref = float(torch.linalg.norm(pred["dipole"])), float(torch.linalg.norm(monomer.dipole))
    assert mu == pytest.approx(mu_ref, rel=0.05)
    axes = water_monomer_axes(monomer.positions)
    model = torch.diagonal(axes @ pred["polarizability"] @ axes.T)
    reference = torch.diagonal(axes @ monomer.polarizability @ axes.T)
    relative = ((model - reference) / reference).tolist()
    assert abs(relative[0]) < 0.10 and abs(relative[1]) < 0.10
    assert abs(relative[2]) < 0.20


def _principal(structure, polarizability):
    axes = water_monomer_axes(structure.positions)
    return torch.diagonal(axes @ polarizability @ axes.T)


def test_pqeq_water_aniso_meets_the_monomer_and_cluster_goals_on_the_test_split(structures):
    """Every test monomer: dipole within 5 % and each principal polarizability (in plane ⊥ C2,
    along C2, out of plane) within 10 % of PBE; the test clusters: dipole and α_iso within 10 %
    (mean relative error), all under one neutral group per molecule."""
    names = set(provenance("pqeq-water-aniso")["provenance"]["test_structures"])
    test = [s for s in structures if s.name in names]
    pqeq = build_pqeq([1, 8], "pqeq-water-aniso")
    assert pqeq.shell_anisotropy.enabled
    cluster_mu, cluster_alpha = [], []
    for s in test:
        with torch.no_grad():
            pred = predict(pqeq, s, ("dipole", "polarizability"))
        mu, mu_ref = float(torch.linalg.norm(pred["dipole"])), float(torch.linalg.norm(s.dipole))
        if s.kind == "monomer":
            assert mu == pytest.approx(mu_ref, rel=0.05), s.name
            model, reference = _principal(s, pred["polarizability"]), _principal(s, s.polarizability)
            assert float(((model - reference) / reference).abs().max()) < 0.10, s.name
        else:
            cluster_mu.append(abs(mu / mu_ref - 1))
            alpha, alpha_ref = float(torch.trace(pred["polarizability"])), float(torch.trace(s.polarizability))
            cluster_alpha.append(abs(alpha / alpha_ref - 1))
    assert len(cluster_mu) == 5
    assert sum(cluster_mu) / 5 < 0.10 and sum(cluster_alpha) / 5 < 0.10


@pytest.mark.parametrize("name", ["pqeq-water", "pqeq-water-aniso"])
def test_recorded_test_split_metrics_match_the_data_file(structures, name):
    info = provenance(name)
    names = set(info["provenance"]["test_structures"])
    test = [s for s in structures if s.name in names]
    recorded = info["metrics"]["refined"]["test"]
    measured = metrics(build_pqeq([1, 8], name), test)
    for key in ("polarizability_iso_mae_au", "dipole_magnitude_mae_debye", "esp_rmse_V", "apt_mae_e"):
        assert measured[key] == pytest.approx(recorded[key], rel=1e-4), key
