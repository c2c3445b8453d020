"""Two-process data-parallel training on CPU (gloo) under torchrun."""

import json
import os
import subprocess
import sys

import yaml


def test_torchrun_two_processes_gloo(water_data, tmp_path, make_config):
    data = tmp_path / "water.extxyz"  # a fresh copy: the ranks share the long-range computation
    data.write_bytes(water_data.read_bytes())
    config = make_config(data, tmp_path / "run", training={"epochs": 2, "batch_size": 4, "ema_decay": 0.5},
                         data={"index": "::2", "validation_fraction": 0.2, "test_fraction": 0.0},
                         dtype="float32")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "openmm_pqeq.cli.main", "train", str(tmp_path / "train.yaml"), "--quiet"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if "epoch" in r] == [0, 1, 2]  # one writer: every epoch once
    final = log[-1]
    assert final["world_size"] == 2
    assert final["max_rank_parameter_difference"] == 0.0  # identical parameters on both ranks
    assert (tmp_path / "run" / "model.pt").is_file()
    caches = list((tmp_path / ".pqeq_cache").iterdir())
    assert len(caches) == 2  # data tensors and long-range terms, written once by rank 0
