"""Record the training range (metadata ``training_range``, see openmm_pqeq/training_range.py)
in a model file trained before training wrote it, from the training split of its data.

    python tools/add_training_range.py openmm_pqeq/data/water-demo.pt examples/data/water_demo_train.extxyz \
        --split-seed 1 --validation-fraction 0.1 --test-fraction 0.1

The split arguments must be those of the training run (the model's provenance lists them);
the split is recomputed exactly as training made it (openmm_pqeq.train.data.split_indices).
Only the metadata changes; the file is rewritten atomically.
"""

from __future__ import annotations

import argparse
import json

import ase.io
import torch

from openmm_pqeq._atomic import atomic_write
from openmm_pqeq.io import read_model_file, resolve_model_path
from openmm_pqeq.train.data import file_sha256, split_indices
from openmm_pqeq.training_range import METADATA_KEY, training_range_of_atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model file to annotate (rewritten in place)")
    parser.add_argument("data", help="the training data file (extxyz with info['charge'], info['field'] in V/Å)")
    parser.add_argument("--split-seed", type=int, required=True, help="split seed of the training run")
    parser.add_argument("--validation-fraction", type=float, required=True, help="validation fraction of the run")
    parser.add_argument("--test-fraction", type=float, required=True, help="test fraction of the run")
    args = parser.parse_args()

    frames = ase.io.read(args.data, ":")
    train = split_indices(len(frames), args.validation_fraction, args.test_fraction, args.split_seed)["train"]
    training_range = training_range_of_atoms([frames[k] for k in train.tolist()])
    training_range["source"] = {"file": args.data, "sha256": file_sha256(args.data), "split": "train",
                                "split_seed": args.split_seed, "validation_fraction": args.validation_fraction,
                                "test_fraction": args.test_fraction}
    payload = read_model_file(args.model)
    payload["metadata"][METADATA_KEY] = training_range
    atomic_write(resolve_model_path(args.model), lambda handle: torch.save(payload, handle))
    print(json.dumps(training_range, indent=1))


if __name__ == "__main__":
    main()
