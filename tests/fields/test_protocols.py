"""Field protocols: their values, the command-line syntax, and the reporter that applies them
to an OpenMM Context (parameters in V/nm, updated at the right steps)."""

import math

import numpy as np
import pytest

from openmm_pqeq.fields import (ConstantField, FieldProtocolReporter, GaussianPulse, PiecewiseField, RampField,
                                SinusoidalField, parse_field_protocol)


def test_protocol_values():
    np.testing.assert_allclose(ConstantField((0, 0.1, 0), start_ps=1.0).field_at(0.5), 0.0)
    np.testing.assert_allclose(ConstantField((0, 0.1, 0), start_ps=1.0).field_at(1.5), [0, 0.1, 0])
    ramp = RampField(0.0, 0.3, 1.0, 4.0, "x")
    np.testing.assert_allclose([ramp.field_at(t)[0] for t in (0.0, 2.5, 9.0)], [0.0, 0.15, 0.3])
    sine = SinusoidalField(0.2, 2.0, phase_deg=90.0, direction=(0, 3, 4))
    np.testing.assert_allclose(sine.field_at(0.25), 0.2 * math.cos(math.pi) * np.array([0, 0.6, 0.8]))
    pulse = GaussianPulse(0.5, 1.0, 0.1)
    assert pulse.field_at(1.0)[2] == pytest.approx(0.5)
    assert pulse.field_at(1.1)[2] == pytest.approx(0.5 * math.exp(-0.5))
    carrier = GaussianPulse(0.5, 1.0, 0.1, frequency_THz=10.0)
    assert carrier.field_at(1.05)[2] == pytest.approx(0.5 * math.exp(-0.125) * math.cos(math.pi))
    table = PiecewiseField([0.0, 1.0, 3.0], [[0, 0, 0], [0, 0, 0.2], [0, 0, -0.2]])
    assert table.field_at(2.0)[2] == pytest.approx(0.0)
    assert PiecewiseField(table.times, table.fields, "step").field_at(2.0)[2] == pytest.approx(0.2)
    np.testing.assert_allclose(table.direction, [0, 0, 1])


def test_quantities_are_converted():
    from openmm import unit

    sine = SinusoidalField(1.0 * unit.volt / unit.nanometer, 500.0 / unit.nanosecond)
    assert sine.amplitude == pytest.approx(0.1) and sine.frequency_THz == pytest.approx(0.5)


def test_parse_syntax_and_errors(tmp_path):
    sine = parse_field_protocol("sin:amplitude=0.1,frequency_THz=1,phase_deg=30,axis=y")
    np.testing.assert_allclose(sine.field_at(0.0), [0, 0.05, 0], atol=1e-12)
    ramp = parse_field_protocol("ramp:from=0,to=0.3,end_ps=5,direction=1/1/0")
    np.testing.assert_allclose(ramp.field_at(10.0), 0.3 * np.array([1, 1, 0]) / math.sqrt(2))
    table = tmp_path / "field.txt"
    table.write_text("# time Ex Ey Ez\n0 0 0 0\n2 0 0 0.4\n")
    assert parse_field_protocol(f"table:file={table}").field_at(1.0)[2] == pytest.approx(0.2)
    for spec, message in [("square:amplitude=1", "unknown kind 'square'"),
                          ("sin:amplitude=0.1", "needs frequency_THz"),
                          ("sin:amplitude=0.1,frequency_THz=1,period=3", "'period=3' is not key=value"),
                          ("constant:amplitude=abc", "amplitude='abc' is not a number"),
                          ("constant:amplitude=1,axis=w", "options are x, y, z"),
                          ("ramp:to=1,end_ps=-1", "must be after start_ps")]:
        with pytest.raises(ValueError, match=message):
            parse_field_protocol(spec)


def _one_particle_simulation():
    import openmm
    from openmm import app, unit

    system = openmm.System()
    system.addParticle(1.0)
    force = openmm.CustomExternalForce("0*(pqeq_field_x + pqeq_field_y + pqeq_field_z)*x")
    for name in ("pqeq_field_x", "pqeq_field_y", "pqeq_field_z"):
        force.addGlobalParameter(name, 0.0)
    force.addParticle(0, [])
    system.addForce(force)
    topology = app.Topology()
    topology.addAtom("X", None, topology.addResidue("X", topology.addChain()))
    simulation = app.Simulation(topology, system, openmm.VerletIntegrator(1.0 * unit.femtosecond),
                                openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions([openmm.Vec3(0, 0, 0)] * unit.nanometer)
    return simulation


def test_reporter_sets_parameters_in_v_per_nm(tmp_path):
    simulation = _one_particle_simulation()
    simulation.step(7)  # the protocol's origin is later than the start of the run
    protocol = SinusoidalField(0.2, 25.0, direction="z")
    reporter = FieldProtocolReporter(protocol, 4, tmp_path / "field.csv", origin_ps=0.015)
    reporter.apply(simulation)
    simulation.reporters.append(reporter)
    simulation.step(21)
    reporter.close()
    rows = np.loadtxt(tmp_path / "field.csv", delimiter=",")
    # updates at step 7 (apply) and then at every multiple of 4
    np.testing.assert_array_equal(rows[:, 0], [7, 8, 12, 16, 20, 24, 28])
    np.testing.assert_allclose(rows[:, 1], rows[:, 0] * 1e-3)  # time in ps (1 fs steps)
    for step, ez in zip(rows[:, 0], rows[:, 4]):
        middle_ps = (step + 0.5 * (4 - step % 4)) * 1e-3 - 0.015  # middle of the steps until the next update
        expected = protocol.field_at(middle_ps)[2] if middle_ps >= 0 else 0.0
        assert ez == pytest.approx(expected, abs=1e-9)
    assert rows[0, 4] == 0.0 and rows[3, 4] != 0.0  # zero before the origin, on after it
    assert simulation.context.getParameter("pqeq_field_z") == pytest.approx(10 * rows[-1, 4])  # V/Å -> V/nm
    with pytest.raises(ValueError, match="interval"):
        FieldProtocolReporter(protocol, 0)


def test_md_rejects_both_field_options(capsys):
    from openmm_pqeq.cli.main import main

    assert main(["md", "--field", "0", "0", "0.1", "--field-protocol", "constant:amplitude=0.1"]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["md", "--field-protocol", "square:amplitude=1"]) == 1
    assert "unknown kind 'square'" in capsys.readouterr().err
