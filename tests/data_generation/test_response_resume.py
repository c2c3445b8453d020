"""Resuming a response-labelling run: frames already in the output under the same options are
skipped; the same structures under other options are named before they are labelled again."""

from ase import Atoms

from openmm_pqeq.data_generation.batch import append_frame
from openmm_pqeq.data_generation.labelling import DFTSettings
from openmm_pqeq.data_generation.response import label_response_file, response_key


def _water(name):
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]])
    atoms.info.update(name=name, charge=0)
    return atoms


def test_resume_skips_same_options_and_names_structures_labelled_under_other_options(tmp_path):
    output = str(tmp_path / "response.extxyz")
    settings = DFTSettings()
    done, other = _water("water"), _water("water-bent")
    done.positions[1, 1] += 0.05
    other.positions[2, 1] += 0.1
    for atoms, polarizability in ((done, "finite-field"), (other, "analytic")):
        labelled = atoms.copy()
        labelled.info["label_key"] = response_key(atoms, settings, 0.25, False, polarizability)
        append_frame(output, labelled)
    lines = []
    # max_minutes=0: no new DFT starts, so the test needs no PySCF
    summary = label_response_file([done, other], output, settings, progress=lines.append, max_minutes=0)
    assert summary["skipped"] == 1 and summary["left"] == 1 and summary["labelled"] == 0
    assert len(lines) == 1 and "1 structures (water-bent) are already in" in lines[0]
    assert "--polarizability" in lines[0]
    lines.clear()
    summary = label_response_file([other], output, settings, progress=lines.append, max_minutes=0,
                                  polarizability="analytic")
    assert summary["skipped"] == 1 and lines == []
