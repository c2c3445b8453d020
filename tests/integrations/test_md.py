"""MD through OpenMM with the PQEq force: energy conservation, thermostat, barostat, a field
switched on mid-run, checkpoints.  Flexible water (OpenMM bonded + LJ forces) gets its
electrostatics and polarization from a PQEq + D3 model (8 molecules, seconds per test)."""

import numpy as np
import openmm
import pytest
from openmm import unit

from openmm_pqeq.integrations.openmm_force import dipole_from_state
from openmm_pqeq.integrations.system import add_pqeq_force
from openmm_pqeq.model import build_model
from water_systems import bonded_water_system, water_topology

KJ = unit.kilojoule_per_mole


@pytest.fixture(scope="module")
def water():
    top, pos = water_topology(2)
    system = bonded_water_system(top)
    model = build_model({"elements": ["O", "H"], "pqeq": {}, "d3": {}})
    add_pqeq_force(system, top, model, charge_groups="molecules")
    return top, pos, system


def _context(system, integrator, positions, temperature=300):
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(temperature * unit.kelvin, 7)
    return context


def _nve_drift(pqeq_options):
    """Energy drift (kJ/mol/atom/ps) of 120 Verlet steps (0.25 fs), seeded velocities."""
    top, pos = water_topology(2)
    system = bonded_water_system(top)
    add_pqeq_force(system, top, build_model({"elements": ["O", "H"], "pqeq": pqeq_options, "d3": {}}),
                   charge_groups="molecules")
    integrator = openmm.VerletIntegrator(0.25 * unit.femtosecond)
    context = _context(system, integrator, pos)
    totals = []
    for _ in range(30):
        integrator.step(4)
        state = context.getState(getEnergy=True)
        totals.append((state.getPotentialEnergy() + state.getKineticEnergy()).value_in_unit(KJ))
    times_ps = np.arange(len(totals)) * 4 * 0.00025
    return np.polyfit(times_ps, totals, 1)[0] / system.getNumParticles()


@pytest.mark.parametrize(
    "pqeq_options, conserves",
    [({}, True), ({"charge_tolerance": 0.05, "shell_tolerance": 0.5}, False)],
    ids=["converged", "unconverged-solve"],
)
def test_nve_energy_drift_detects_non_conservative_forces(pqeq_options, conserves):
    """Measured: drift -0.0015 kJ/mol/atom/ps with the converged solve; 0.055 when the solve
    stops at loose tolerances (forces then are not the gradient of the energy).  The bound
    separates the two, so a broken force fails it."""
    drift = _nve_drift(pqeq_options)
    assert (abs(drift) < 0.02) == conserves, f"energy drift {drift:.4f} kJ/mol/atom/ps"


def test_langevin_barostat_and_field_switched_on(water):
    top, pos, system = water
    barostat = openmm.MonteCarloBarostat(1000 * unit.bar, 300 * unit.kelvin, 5)
    barostat.setRandomNumberSeed(11)
    index = system.addForce(barostat)
    try:
        integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 100 / unit.picosecond, 0.5 * unit.femtosecond)
        integrator.setRandomNumberSeed(2024)
        context = _context(system, integrator, pos, temperature=300)
        volume0 = context.getState().getPeriodicBoxVolume().value_in_unit(unit.nanometer**3)
        integrator.step(40)  # burn-in: the unrelaxed start releases potential energy
        temperatures = []
        dof = 3 * system.getNumParticles() - 3
        for _ in range(20):
            integrator.step(4)
            ke = context.getState(getEnergy=True).getKineticEnergy()
            temperatures.append((2 * ke / (dof * unit.MOLAR_GAS_CONSTANT_R)).value_in_unit(unit.kelvin))
        assert 220 < np.mean(temperatures) < 380
        assert context.getState().getPeriodicBoxVolume().value_in_unit(unit.nanometer**3) != volume0
        before = dipole_from_state(context.getState(getParameterDerivatives=True))
        context.setParameter("pqeq_field_z", 10.0)  # 1 V/Å along z
        after = dipole_from_state(context.getState(getParameterDerivatives=True))
        assert after[2] > before[2] + 0.1  # instantaneous electronic response along the field
        integrator.step(10)
        later = dipole_from_state(context.getState(getParameterDerivatives=True))
        assert later[2] > before[2]
    finally:
        system.removeForce(index)


def test_checkpoint_restarts_identically(water):
    top, pos, system = water
    integrator = openmm.VerletIntegrator(0.25 * unit.femtosecond)
    context = _context(system, integrator, pos)
    integrator.step(3)
    checkpoint = context.createCheckpoint()
    integrator.step(3)
    first = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    context.loadCheckpoint(checkpoint)
    integrator.step(3)
    again = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    assert np.abs(first - again).max() < 1e-6
