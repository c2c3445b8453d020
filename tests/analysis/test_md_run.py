"""Reading a real `openmm-pqeq md` output: the molecular dipoles (charges plus shells, molecules
made whole) add up to the system dipole the model itself reported."""

import numpy as np
import pytest

from openmm_pqeq.analysis import load_md_run, molecular_dipoles, polarization


def test_load_md_run(md_output, md_protocol):
    run = load_md_run(md_output)
    assert run.frames == 24
    assert run.positions_A.shape == (24, run.charges_e.shape[1], 3)
    assert run.shell_dipoles_eA.shape == run.positions_A.shape
    assert run.frame_ps == pytest.approx(0.5e-3)
    # the field that acted during each frame's last step: zero in the baseline, then the sine
    # sampled at the middle of that step (0.25 fs before the frame)
    from openmm_pqeq.fields import parse_field_protocol

    np.testing.assert_allclose(run.field_V_per_A[:12], 0.0)
    t = run.time_ps[12:] - run.time_ps[11] - 0.25e-3
    np.testing.assert_allclose(run.field_V_per_A[12:], parse_field_protocol(md_protocol).field_series(t), atol=1e-9)
    assert set(run.elements) == {"O", "H"} and run.molecules.max() + 1 == run.charges_e.shape[1] // 3
    assert run.temperature_K > 0


def test_molecular_dipoles_sum_to_the_reported_dipole(md_output):
    run = load_md_run(md_output)
    mu = molecular_dipoles(run.positions_A, run.charges_e, run.molecules, run.cell_A, run.shell_dipoles_eA)
    # DCD stores float32 nm and charges.txt 8 decimals; the shells add up to ~0.3 e·Å here
    np.testing.assert_allclose(mu.sum(axis=1), run.dipole_eA, atol=1e-5)
    charge_only = molecular_dipoles(run.positions_A, run.charges_e, run.molecules, run.cell_A)
    assert np.abs(charge_only.sum(axis=1) - run.dipole_eA).max() > 1e-2  # without the shells it does not add up
    p = polarization(run.dipole_eA, run.volume_A3)
    assert p.shape == (24,)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="openmm-pqeq md"):
        load_md_run(tmp_path)
