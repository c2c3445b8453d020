"""Finetuning: force-only loss, readout freezing, shift refit."""

import pytest
import torch

from openmm_pqeq.io import load_model, read_model_file
from openmm_pqeq.train import finetune, select_trainable
from openmm_pqeq.train.freezing import readout_patterns

FAST = {"epochs": 2, "lr": 1e-2, "batch_size": 8, "dtype": "float64", "device": "cpu", "progress": False}


def _changed(before, after):
    return {name for name, value in before.state_dict().items()
            if not torch.equal(value.to(after.state_dict()[name]), after.state_dict()[name])}


def test_readout_freezing_with_force_only_loss(trained_run, water_data, tmp_path):
    result = finetune(trained_run.model_path, water_data, tmp_path / "ft", loss="forces", freeze="readout", **FAST)
    before, after = load_model(trained_run.model_path), load_model(result.model_path)
    changed = _changed(before, after)
    last = len(before.e0.blocks) - 1
    trainable = {n for n, _ in before.named_parameters()
                 if n.startswith(("e0.readout.", f"e0.blocks.{last}.linear_down.", f"e0.blocks.{last}.self_connection."))}
    assert changed and changed <= trainable  # nothing outside the last two linear layers moved
    assert "e0.readout.weight" in changed
    # force-only loss, recorded in the model's provenance
    config = read_model_file(result.model_path)["metadata"]["provenance"]["training"]["config"]
    assert config["loss"]["force_only"] and config["loss"]["form"] == "mse"
    assert config["model"]["init"] == str(trained_run.model_path)
    assert result.history[1]["validation"]["forces_rmse"] > 0


def test_no_freezing_trains_all_of_e0_and_refit_shift(trained_run, water_data, tmp_path):
    result = finetune(trained_run.model_path, water_data, tmp_path / "ft", loss="full", freeze="none",
                      refit_shift=True, **{**FAST, "epochs": 1})
    before, after = load_model(trained_run.model_path), load_model(result.model_path)
    changed = _changed(before, after)
    params = {n for n, _ in before.named_parameters()}
    assert params <= changed  # every parameter moved
    assert "e0.per_species_shift" in changed  # refitted to the residual
    assert not any(n.startswith(("pqeq.", "d3.")) for n in changed)


def test_select_trainable_options(trained_run):
    model = load_model(trained_run.model_path)
    names = {n for n, _ in select_trainable(model, "readout")}
    assert names and all(n.startswith(tuple(p[:-1] for p in readout_patterns(model))) for n in names)
    assert all(not p.requires_grad for n, p in model.named_parameters() if n not in names)
    assert {n for n, _ in select_trainable(model, ["e0.readout.*"])} == {"e0.readout.weight"}
    assert len(select_trainable(model, "none")) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="`freeze` is 'head'; options are"):
        select_trainable(model, "head")
    with pytest.raises(ValueError, match="leaves no parameter"):
        select_trainable(model, ["nothing.*"])
