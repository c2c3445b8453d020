"""Joint training of E0 and freed PQEq parameters: online long-range terms, gradients
reach both, the saved model carries the refined PQEq parameters."""

import torch

from openmm_pqeq.io import load_model
from openmm_pqeq.train import train
from train.conftest import label_frames, make_frames, tiny_config, write_data  # tests/train/conftest.py


def test_joint_training_updates_e0_and_pqeq_parameters(tmp_path):
    frames = label_frames(make_frames(seed=3, n_open=10))
    data = write_data(tmp_path / "water.extxyz", frames)
    pqeq = {"mode": "physical", "params": "reaxnet", "trainable": {"Ks": ["O"], "chi": ["H"]}}
    config = tiny_config(data, tmp_path / "run", model={"pqeq": pqeq},
                         training={"epochs": 2, "long_range": "online", "batch_size": 4, "lr": 0.05})
    result = train(config)
    raw = dict(result.model.pqeq.trainable_parameters.named_parameters())
    assert set(raw) == {"raw_chi", "raw_Ks"}
    assert all(float(p.detach().abs().max()) > 0 for p in raw.values())  # moved away from the table
    loaded = load_model(tmp_path / "run" / "model.pt")
    assert torch.equal(loaded.pqeq.trainable_parameters.raw_Ks, result.model.pqeq.trainable_parameters.raw_Ks.cpu())
