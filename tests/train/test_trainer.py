"""Training runs: loss goes down, outputs, Δ-learning, resume, online long-range terms."""

import json

import pytest
import torch

from openmm_pqeq.io import load_model, read_model_file
from openmm_pqeq.train import Trainer, evaluate_dataset, train


def _log(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_training_reduces_validation_loss(trained_run):
    history = trained_run.history
    initial = history[0]["validation_loss"]
    assert history[0]["epoch"] == 0
    assert trained_run.best_epoch > 0
    assert min(h["validation_loss"] for h in history[1:] if "epoch" in h) < 0.8 * initial
    assert trained_run.metrics["validation"]["loss"] < 0.8 * initial


def test_outputs_metrics_log_and_provenance(trained_run, water_data):
    out = trained_run.output_dir
    assert {p.name for p in out.iterdir()} >= {"model.pt", "checkpoint.pt", "metrics.jsonl", "config.yaml"}
    log = _log(out)
    epochs = [r for r in log if "epoch" in r]
    assert [r["epoch"] for r in epochs] == [0, 1, 2, 3]
    for record in epochs[1:]:
        for split in ("train", "validation"):
            assert {"energy_mae", "energy_rmse", "forces_mae", "forces_rmse"} <= set(record[split])
        assert record["lr"] > 0 and record["time_s"] >= 0
    final = log[-1]["final"]
    assert set(final) == {"train", "validation", "test"}
    payload = read_model_file(trained_run.model_path)
    training = payload["metadata"]["provenance"]["training"]
    from openmm_pqeq.train.data import file_sha256

    assert training["data"]["train"]["sha256"] == file_sha256(water_data)
    assert training["config"]["loss"]["forces_weight"] == 10.0
    assert training["metrics"]["test"]["forces_rmse"] == pytest.approx(final["test"]["forces_rmse"])
    assert training["split"]["frames"] == {"train": 21, "validation": 6, "test": 3}
    # E0 hyperparameters from the data, shift fitted
    config = payload["config"]
    assert isinstance(config["e0"]["avg_num_neighbors"], float) and config["e0"]["avg_num_neighbors"] > 1
    assert set(training["statistics"]["shift"]) == {"1", "8"}
    model = load_model(trained_run.model_path)
    for name, value in trained_run.model.e0.state_dict().items():
        assert torch.allclose(model.e0.state_dict()[name].to(value), value), name


def test_delta_learning_e0_reduced_to_shift_reproduces_reference(long_range_only_data, tmp_path, make_config):
    """Reference = shifts + PQEq + D3: after the statistics fit, an E0 that outputs only the
    shift (zero readout) reproduces the reference, through cached and online long-range terms."""
    trainer = Trainer(make_config(long_range_only_data, tmp_path / "run"))
    trainer.setup()
    with torch.no_grad():
        trainer.model.e0.readout.weight.zero_()
    for long_range in ("cached", "online"):
        sums = evaluate_dataset(trainer.model, trainer.sets["train"], 8, long_range)
        metrics = sums.metrics()
        assert metrics["energy_mae"] < 1e-3  # meV/atom
        assert metrics["forces_mae"] < 1e-3  # meV/Å


def test_resume_continues_exactly(water_data, tmp_path, make_config):
    settings = {"scheduler": "plateau", "plateau_patience": 0, "ema_decay": 0.9, "epochs": 2}
    first = train(make_config(water_data, tmp_path / "a", training=settings))
    assert [r["epoch"] for r in first.history if "epoch" in r] == [0, 1, 2]
    resumed_config = make_config(water_data, tmp_path / "a", training={**settings, "epochs": 3, "resume": "auto"})
    resumed = train(resumed_config)
    assert [r["epoch"] for r in resumed.history if "epoch" in r] == [3]
    straight = train(make_config(water_data, tmp_path / "b", training={**settings, "epochs": 3}))
    assert resumed.best_epoch == straight.best_epoch
    for (name, a), (_, b) in zip(resumed.model.e0.named_parameters(), straight.model.e0.named_parameters()):
        assert torch.allclose(a, b, atol=1e-10, rtol=0), name
    assert [r.get("epoch") for r in _log(tmp_path / "a") if "epoch" in r] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="already holds a training run"):
        train(make_config(water_data, tmp_path / "b"))


def test_online_long_range_training_equals_cached(water_data, tmp_path, make_config):
    results = {}
    for mode in ("cached", "online"):
        config = make_config(water_data, tmp_path / mode, training={"epochs": 1, "long_range": mode},
                             data={"index": "::3", "validation_fraction": 0.2, "test_fraction": 0.0})
        results[mode] = train(config)
    for (name, a), (_, b) in zip(results["cached"].model.e0.named_parameters(),
                                 results["online"].model.e0.named_parameters()):
        assert torch.allclose(a, b, atol=1e-7), name


def test_config_errors_name_the_key(water_data, tmp_path, make_config):
    from openmm_pqeq.train import TrainConfig

    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epochz'\] in section `training`"):
        TrainConfig.from_dict({"data": {"train": "x"}, "training": {"epochz": 3}})
    with pytest.raises(ValueError, match="`training.scheduler` is 'step'; options are"):
        make_config(water_data, tmp_path, training={"scheduler": "step"})
    with pytest.raises(ValueError, match="`data.train` is missing"):
        TrainConfig.from_dict({})
