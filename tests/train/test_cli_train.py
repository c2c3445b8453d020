"""``openmm-pqeq train / finetune / test`` and the example configuration."""

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from openmm_pqeq.cli.main import main
from openmm_pqeq.train import TrainConfig
from openmm_pqeq.train.config import _SECTIONS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_water.yaml"


@pytest.mark.parametrize("command, words", [
    ("train", ["CONFIG", "torchrun", "metrics.jsonl", "--resume"]),
    ("finetune", ["MODEL", "DATA", "--freeze", "--loss", "published"]),
    ("test", ["MODEL", "DATA", "meV/atom", "--split"]),
])
def test_help(command, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in words:
        assert word in text, word


def test_test_command_prints_error_table(trained_run, water_data, capsys):
    assert main(["test", str(trained_run.model_path), str(water_data), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "30 frames" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"energy", "forces"}
    assert rows["energy"][3] == "meV/atom" and rows["forces"][1] == "meV/Å"
    # the run's own test split gives the errors stored at the end of training
    assert main(["test", str(trained_run.model_path), str(water_data), "--split", "test", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = trained_run.metrics["test"]
    assert result["frames"] == expected["frames"] == 3
    assert result["forces_rmse"] == pytest.approx(expected["forces_rmse"], rel=1e-6)
    assert result["energy_mae"] == pytest.approx(expected["energy_mae"], rel=1e-6)


def test_test_command_errors(trained_run, periodic_data, capsys):
    assert main(["test", str(trained_run.model_path), str(periodic_data), "--split", "test", "--quiet"]) == 1
    assert "is not the file this model was trained on" in capsys.readouterr().err
    assert main(["test", "no-such-model", str(periodic_data)]) == 1
    assert "neither a file nor a shipped model" in capsys.readouterr().err


def test_test_command_reports_stress(trained_run, periodic_data, capsys):
    assert main(["test", str(trained_run.model_path), str(periodic_data), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^stress\s+meV/Å³", out, re.M)


def test_train_and_finetune_commands(water_data, tmp_path, make_config):
    config = make_config(water_data, tmp_path / "run", training={"epochs": 1}).to_dict()
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "train.yaml"), "--quiet"]) == 0
    assert (tmp_path / "run" / "model.pt").is_file()
    assert main(["train", str(tmp_path / "train.yaml"), "--quiet", "--resume", "--epochs", "2"]) == 0
    epochs = [json.loads(l).get("epoch") for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e for e in epochs if e is not None] == [0, 1, 2]
    assert main(["finetune", str(tmp_path / "run" / "model.pt"), str(water_data), "--output", str(tmp_path / "ft"),
                 "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--quiet"]) == 0
    assert (tmp_path / "ft" / "model.pt").is_file()


def test_example_configuration_parses_and_comments_every_key():
    config = TrainConfig.from_yaml(EXAMPLE)
    assert config.data.train.endswith("water_pbe.extxyz") and Path(config.data.train).is_absolute()
    lines = EXAMPLE.read_text().splitlines()
    keys = {}
    for line in lines:
        match = re.match(r"^(\s*)(\w+):", line)
        if match:
            keys[match.group(2)] = line
    expected = {f.name for section in _SECTIONS.values() for f in dataclasses.fields(section)}
    expected |= {f.name for f in dataclasses.fields(TrainConfig)}
    assert expected <= set(keys), sorted(expected - set(keys))
    for key, line in keys.items():
        assert "#" in line, f"key {key!r} has no comment in {EXAMPLE.name}"
