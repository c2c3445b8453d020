"""The shipped water-refined PQEq set: the gas-phase monomer against its PBE reference in the data
file, and the test-split numbers recorded in the set against a recomputation on the data file."""

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


def test_pqeq_water_is_shipped_with_the_molecules_rule_and_a_cluster_test_split(structures):
    assert "pqeq-water" in PARAMETER_SETS
    info = provenance("pqeq-water")
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


def test_recorded_test_split_metrics_match_the_data_file(structures):
    info = provenance("pqeq-water")
    names = set(info["provenance"]["test_structures"])
    test = [s for s in structures if s.name in names]
    recorded = info["metrics"]["refined"]["test"]
    measured = metrics(build_pqeq([1, 8], "pqeq-water"), test)
    for key in ("polarizability_iso_mae_au", "dipole_magnitude_mae_debye", "esp_rmse_V", "apt_mae_e"):
        assert measured[key] == pytest.approx(recorded[key], rel=1e-4), key
