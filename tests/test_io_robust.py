"""Model files survive changes of derived (non-learnable) buffers; learnable weights stay strict."""

import pytest
import torch

from openmm_pqeq.electrostatics import PQEq
from openmm_pqeq.io import load_model, save_model, state_kind
from openmm_pqeq.model import build_model, energy_forces_stress

CONFIG = {"elements": ["O", "H"], "e0": {"preset": "small", "num_blocks": 1}, "pqeq": {}, "d3": {}}
WATER = torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]], dtype=torch.float64)


def _energy(model):
    return float(energy_forces_stress(model, WATER, torch.tensor([8, 1, 1]), None,
                                      torch.tensor([0.0, 0.0, 0.1]))["energy"])


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(3)
    model = build_model(CONFIG)
    with torch.no_grad():
        model.e0.per_species_shift.copy_(torch.tensor([-13.6, -432.0]))
    return model, save_model(model, tmp_path / "model.pt")


def _patch_init(monkeypatch, extra):
    original = PQEq.__init__

    def patched(self, *args, **kwargs):
        original(self, *args, **kwargs)
        extra(self)

    monkeypatch.setattr(PQEq, "__init__", patched)


def test_kinds(saved):
    model, path = saved
    kinds = {k: state_kind(model, k) for k in model.state_dict()}
    assert kinds["e0.per_species_shift"] == "learned" and kinds["pqeq.table_chi"] == "table"
    assert kinds["d3.c6"] == "table"
    # the warm start is run-time state, not part of the model file
    assert not any("warm_start" in k or "last_charges" in k for k in kinds)
    assert all(kinds[k] == "learned" for k, _ in model.named_parameters())
    metadata = torch.load(path, weights_only=True)["metadata"]
    assert set(metadata["learnable"]) == {k for k, v in kinds.items() if v == "learned"}


def test_new_derived_buffer_missing_from_old_file(saved, monkeypatch):
    """Code that gained a derived buffer (e.g. a PME set-up) still loads an older file."""
    model, path = saved
    _patch_init(monkeypatch, lambda self: self.register_buffer("ewald_setup", torch.arange(4.0)))
    loaded = load_model(path)
    assert torch.equal(loaded.pqeq.ewald_setup, torch.arange(4.0))  # rebuilt from the configuration
    assert _energy(loaded) == pytest.approx(_energy(model), rel=1e-12)


def test_file_with_unknown_or_changed_derived_buffers(saved, tmp_path):
    """A file from code that had extra derived buffers, or different derived values, loads."""
    model, path = saved
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["pqeq.gaussian_exponents_cache"] = torch.ones(7)
    payload["state_dict"]["d3.switch_setup"] = torch.ones(2)
    payload["state_dict"]["pqeq.last_charges"] = torch.ones(3)  # a warm-start entry of older code
    torch.save(payload, tmp_path / "extra.pt")
    loaded = load_model(tmp_path / "extra.pt")
    assert not hasattr(loaded.pqeq, "gaussian_exponents_cache")
    assert _energy(loaded) == pytest.approx(_energy(model), rel=1e-12)


def test_tables_restored_when_present_rebuilt_when_absent(saved, tmp_path):
    model, path = saved
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["pqeq.table_chi"] = payload["state_dict"]["pqeq.table_chi"] + 0.5
    torch.save(payload, tmp_path / "edited.pt")
    assert torch.allclose(load_model(tmp_path / "edited.pt").pqeq.table_chi, model.pqeq.table_chi + 0.5)
    for key in ("pqeq.table_chi", "pqeq.table_exponent", "d3.c6"):
        del payload["state_dict"][key]
    torch.save(payload, tmp_path / "no_tables.pt")
    loaded = load_model(tmp_path / "no_tables.pt")
    assert torch.equal(loaded.pqeq.table_exponent, model.pqeq.table_exponent)
    assert torch.equal(loaded.d3.c6, model.d3.c6)


def test_missing_learnable_weight_is_an_error(saved, tmp_path):
    model, path = saved
    payload = torch.load(path, weights_only=True)
    name = next(k for k, _ in model.named_parameters())
    del payload["state_dict"][name]
    torch.save(payload, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="learnable weights missing from the file.*" + name.replace(".", r"\.")):
        load_model(tmp_path / "missing.pt")
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["e0.per_species_shift"]  # fitted statistics count as learned
    torch.save(payload, tmp_path / "no_shift.pt")
    with pytest.raises(ValueError, match="per_species_shift"):
        load_model(tmp_path / "no_shift.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"][name] = torch.zeros(1)
    torch.save(payload, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match="shapes differ"):
        load_model(tmp_path / "shape.pt")


def test_trainable_pqeq_parameters_round_trip(monkeypatch, tmp_path):
    """Per-element trainable PQEq parameters (nn.Parameter in the PQEq module) are saved and
    restored strictly; a file that has them cannot be loaded by code that lacks them."""
    _patch_init(monkeypatch, lambda self: self.register_parameter(
        "delta_chi", torch.nn.Parameter(torch.zeros(self.table_chi.shape[0], dtype=torch.float64))))
    model = build_model(CONFIG)
    with torch.no_grad():
        model.pqeq.delta_chi.copy_(torch.linspace(-0.2, 0.3, model.pqeq.delta_chi.shape[0]))
    path = save_model(model, tmp_path / "trainable.pt")
    loaded = load_model(path)
    assert isinstance(loaded.pqeq.delta_chi, torch.nn.Parameter)
    assert torch.equal(loaded.pqeq.delta_chi, model.pqeq.delta_chi)
    payload = torch.load(path, weights_only=True)
    assert "pqeq.delta_chi" in payload["metadata"]["learnable"]
    monkeypatch.undo()
    with pytest.raises(ValueError, match="does not have: \\['pqeq.delta_chi'\\]"):
        load_model(path)
