"""Train, test and finetune a small water model in a few minutes on a CPU.

Uses the shipped PBE water clusters (examples/data/water_pbe.extxyz) and the configuration
examples/train_water.yaml, shortened to a few epochs.  The same steps on the command line:

    openmm-pqeq train examples/train_water.yaml --epochs 5 --output runs/example --overwrite
    openmm-pqeq test runs/example/model.pt examples/data/water_pbe.extxyz --split test
    openmm-pqeq finetune runs/example/model.pt examples/data/water_pbe.extxyz --epochs 3 --output runs/example-ft

Run: python examples/06_train_small.py [EPOCHS]
"""

import sys
from pathlib import Path

from openmm_pqeq.train import TrainConfig, finetune, format_table, train
from openmm_pqeq.train.evaluation import model_errors

HERE = Path(__file__).resolve().parent
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5

# 1. Δ-learning of E0 (PQEq and D3 frozen), best-validation model in runs/example/model.pt
config = TrainConfig.from_yaml(HERE / "train_water.yaml")
config.training.epochs = epochs
config.output.dir = str(HERE.parent / "runs" / "example")
config.output.overwrite = True
result = train(config)
print(f"best epoch {result.best_epoch}; model in {result.model_path}")

# 2. errors of the saved model on the test split of its own run (meV/atom, meV/Å)
errors = model_errors(result.model_path, config.data.train, split="test")
print(format_table(errors, f"test split: {errors['frames']} frames"))

# 3. finetuning as published: force MSE only, all but the last two linear layers frozen
tuned = finetune(result.model_path, config.data.train, HERE.parent / "runs" / "example-ft", epochs=3,
                 batch_size=8, overwrite=True)
print(format_table(tuned.metrics["validation"], "finetuned, validation split"))
