"""examples/03_water_field_dft.py runs end to end (tiny basis and grid) and writes its outputs."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("pyscf")
pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "03_water_field_dft.py"


def test_water_field_example(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("water_field_dft", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(tmp_path), "--basis", "sto-3g", "--points", "5", "--max-field", "0.2"]) == 0
    assert (tmp_path / "water_field_dft.png").stat().st_size > 1000
    results = json.loads((tmp_path / "water_field_dft.json").read_text())
    out_of_plane = results["directions"]["x (out of plane)"]
    assert out_of_plane["dft"]["alpha_A3"] > 0
    assert out_of_plane["model"]["reaxnet"]["alpha_A3"] > 0
    assert "PQEq (reaxnet, physical)" in capsys.readouterr().out
