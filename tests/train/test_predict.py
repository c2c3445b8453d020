"""Batched prediction equals the model's own per-structure energies, forces and stress."""

import pytest
import torch

from openmm_pqeq.model import build_model, energy_forces_stress
from openmm_pqeq.train.data import load_dataset
from openmm_pqeq.train.longrange import attach_long_range
from openmm_pqeq.train.predict import predict_batch


@pytest.fixture(scope="module")
def mixed(periodic_data, reference):
    """Two open clusters and two periodic boxes, a model with E0 + PQEq + D3, cached long range."""
    D3, PQEQ = reference.D3, reference.PQEQ
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = build_model({"elements": [1, 8], "e0": {"preset": "small", "r_max": 4.0, "avg_num_neighbors": 4.0},
                             "pqeq": PQEQ, "d3": D3})
    finally:
        torch.set_default_dtype(previous)
    model.e0.set_species_statistics(shift={1: -1.0, 8: -2.0}, scale=0.3)
    dataset = load_dataset(periodic_data).subset([0, 4, 1, 5])
    attach_long_range(dataset, {"elements": [1, 8], "pqeq": PQEQ, "d3": D3}, cache_dir=periodic_data.parent)
    return model, dataset


@pytest.mark.parametrize("long_range", ["cached", "online"])
def test_batch_matches_single_structures(mixed, long_range):
    model, dataset = mixed
    batch = dataset.batch(torch.arange(len(dataset)))
    pred = predict_batch(model, batch, long_range)
    for k, frame in enumerate(batch.structures()):
        model.pqeq.reset()
        ref = energy_forces_stress(model, frame["positions"], frame["numbers"], frame["cell"], frame["field"],
                                   float(frame["charge"]))
        lo, hi = int(batch.offsets[k]), int(batch.offsets[k + 1])
        assert float(pred["energy"][k]) == pytest.approx(float(ref["energy"]), abs=1e-8)
        assert torch.allclose(pred["forces"][lo:hi], ref["forces"], atol=1e-8)
        if frame["cell"] is not None:
            assert torch.allclose(pred["stress"][k], ref["stress"], atol=1e-9)
        else:
            assert pred["stress"][k].abs().max() == 0


def test_training_graph_reaches_e0_parameters(mixed):
    model, dataset = mixed
    batch = dataset.batch([0, 1])
    pred = predict_batch(model, batch, "cached", training=True)
    loss = pred["forces"].pow(2).sum() + pred["stress"].pow(2).sum()
    grads = torch.autograd.grad(loss, [model.e0.readout.weight])
    assert grads[0].abs().sum() > 0
