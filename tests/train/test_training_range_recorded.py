"""Training writes the range of its training split into the model file."""

import ase.io
import numpy as np

from openmm_pqeq.io import load_model, read_model_file
from openmm_pqeq.train.data import split_indices
from openmm_pqeq.training_range import METADATA_KEY, training_range_of


def test_training_records_the_range_of_its_training_split(trained_run, water_data):
    frames = ase.io.read(water_data, ":")
    split = read_model_file(trained_run.model_path)["metadata"]["provenance"]["training"]["split"]
    train = split_indices(len(frames), split["validation_fraction"], split["test_fraction"], split["seed"])["train"]
    chosen = [frames[k] for k in train.tolist()]
    charges = [float(a.info["charge"]) for a in chosen]
    recorded = read_model_file(trained_run.model_path)["metadata"][METADATA_KEY]
    assert recorded["elements"] == ["H", "O"]
    assert recorded["total_charges"] == [min(charges), max(charges)]
    assert recorded["max_field_V_per_A"] == max(float(np.linalg.norm(a.info["field"])) for a in chosen)
    assert recorded["frames"] == len(chosen)
    assert training_range_of(load_model(trained_run.model_path)) == recorded
