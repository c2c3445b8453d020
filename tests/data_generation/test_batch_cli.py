"""Batch labelling (resume, broken tail, settings guard, workers) and the two CLI subcommands."""

import ase.io
import numpy as np
import pytest

pytest.importorskip("pyscf")

from ase import Atoms  # noqa: E402

from openmm_pqeq.data_generation.batch import label_file, read_finished  # noqa: E402
from openmm_pqeq.data_generation.labelling import DFTSettings  # noqa: E402

FAST = DFTSettings(basis="sto-3g")


def h2(d):
    return Atoms("H2", positions=[[0, 0, 0], [0, 0, d]])


def quiet(_line):
    pass


def test_resume_skips_finished_frames(tmp_path):
    source, out = tmp_path / "in.extxyz", tmp_path / "out.extxyz"
    ase.io.write(source, [h2(0.70), h2(0.75)])
    first = label_file(str(source), str(out), FAST, progress=quiet)
    assert (first["labelled"], first["skipped"], first["failed"]) == (2, 0, 0)
    again = label_file(str(source), str(out), FAST, progress=quiet)
    assert (again["labelled"], again["skipped"]) == (0, 2)
    ase.io.write(source, [h2(0.70), h2(0.75), h2(0.80)])
    more = label_file(str(source), str(out), FAST, progress=quiet)
    assert (more["labelled"], more["skipped"]) == (1, 2)
    frames = ase.io.read(out, ":")
    assert [f.info["source_index"] for f in frames] == [0, 1, 2]
    assert len({f.info["label_key"] for f in frames}) == 3
    energies = [f.get_potential_energy() for f in frames]
    assert all(np.isfinite(energies)) and energies[0] != energies[1]
    # the same geometry in another field is a different job
    ase.io.write(source, [h2(0.70)])
    field = label_file(str(source), str(out), FAST, field=(0.0, 0.0, 0.2), progress=quiet)
    assert field["labelled"] == 1


def test_interrupted_write_is_repaired(tmp_path):
    source, out = tmp_path / "in.extxyz", tmp_path / "out.extxyz"
    ase.io.write(source, [h2(0.70), h2(0.75)])
    label_file(str(source), str(out), FAST, index="0", progress=quiet)
    with open(out, "a") as handle:
        handle.write("2\nProperties=species:S:1:pos:R:3 energy=-1.0\nH 0 0 0\n")   # cut mid-frame
    with pytest.warns(UserWarning, match="incomplete last frame"):
        summary = label_file(str(source), str(out), FAST, progress=quiet)
    assert (summary["labelled"], summary["skipped"]) == (1, 1)
    assert len(read_finished(str(out))) == 2


def test_other_settings_are_refused(tmp_path):
    source, out = tmp_path / "in.extxyz", tmp_path / "out.extxyz"
    ase.io.write(source, [h2(0.74)])
    label_file(str(source), str(out), FAST, progress=quiet)
    with pytest.raises(ValueError, match="labelled with"):
        label_file(str(source), str(out), DFTSettings(basis="6-31g"), progress=quiet)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        label_file(str(source), str(out), FAST, workers=0)


def test_two_workers(tmp_path):
    source, out = tmp_path / "in.extxyz", tmp_path / "out.extxyz"
    ase.io.write(source, [h2(0.70), h2(0.75), h2(0.80)])
    summary = label_file(str(source), str(out), FAST, workers=2, progress=quiet)
    assert summary["labelled"] == 3
    serial = tmp_path / "serial.extxyz"
    label_file(str(source), str(serial), FAST, progress=quiet)
    by_index = {f.info["source_index"]: f.get_potential_energy() for f in ase.io.read(out, ":")}
    for frame in ase.io.read(serial, ":"):
        assert by_index[frame.info["source_index"]] == pytest.approx(frame.get_potential_energy(), abs=1e-7)


def test_cli_sample_then_label(tmp_path, capsys):
    from openmm_pqeq.cli.main import main

    clusters, labelled = tmp_path / "clusters.extxyz", tmp_path / "labelled.extxyz"
    assert main(["sample-water", str(clusters), "--n-structures", "3", "--max-molecules", "1",
                 "--seed", "4", "--field-fraction", "1"]) == 0
    assert len(ase.io.read(clusters, ":")) == 3
    assert main(["label", str(clusters), str(labelled), "--basis", "sto-3g", "--index", ":2"]) == 0
    assert "labelled 2, skipped 0" in capsys.readouterr().out
    frames = ase.io.read(labelled, ":")
    assert len(frames) == 2
    assert all(np.linalg.norm(f.info["field"]) > 0 for f in frames)
    assert frames[0].get_forces().shape == (3, 3) and frames[0].get_dipole_moment().shape == (3,)
    assert main(["label", str(clusters), str(labelled), "--basis", "sto-3g", "--index", ":2"]) == 0
    assert "labelled 0, skipped 2" in capsys.readouterr().out
    # --charge is a default for frames without info["charge"]; sampled frames carry charge 0
    h2_file = tmp_path / "h2.xyz"
    ase.io.write(h2_file, h2(0.74), format="xyz")
    assert main(["label", str(h2_file), str(tmp_path / "h2p.extxyz"), "--basis", "sto-3g",
                 "--charge", "1"]) == 0
    cation = ase.io.read(tmp_path / "h2p.extxyz")
    assert cation.info["charge"] == 1 and cation.info["multiplicity"] == 2


def test_label_keys_survive_extxyz(tmp_path):
    # an all-digit hex key such as 22753603382573e4 would be read back as a float
    from openmm_pqeq.data_generation.batch import label_key

    key = label_key(h2(0.74), 0, 1, np.zeros(3), FAST)
    assert key[0] == "k" and len(key) == 17
    frame = h2(0.74)
    frame.info["label_key"] = "k22753603382573e4"
    ase.io.write(tmp_path / "k.extxyz", frame)
    assert ase.io.read(tmp_path / "k.extxyz").info["label_key"] == "k22753603382573e4"
