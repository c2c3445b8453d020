"""Field-driven water MD in OpenMM: the workflow behind ``openmm-pqeq md`` and ``make demo``.

Phases: equilibrate at the target temperature without field, run a baseline without field,
switch the uniform field on (through the ``pqeq_field_*`` global parameters) and run again.
The field of the last phase is constant, or any :class:`~openmm_pqeq.fields.FieldProtocol`
(its t = 0 at the start of that phase), applied by a
:class:`~openmm_pqeq.fields.FieldProtocolReporter`.
Outputs (in ``output_dir``): ``trajectory.dcd``, ``final.pdb``, ``charges.txt`` (per-frame
charges, dipole and solver statistics, see :mod:`openmm_pqeq.integrations.reporters`),
``shells.txt`` (per-atom shell dipoles), ``field.csv`` (the applied field),
``thermo.csv`` (OpenMM StateDataReporter) and ``polarization.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .fields import FieldProtocol
from .units import ANGSTROM_TO_NM, FS_TO_PS, V_PER_NM_TO_V_PER_A

#: Volume per water molecule at 1 g/cm³ (Å³).
WATER_VOLUME_A3 = 29.915


@dataclass
class MDSettings:
    """Settings of :func:`run_water_field_md` (units in the names)."""

    n_molecules: int = 64
    field_V_per_A: Sequence[float] = (0.0, 0.0, 0.25)
    temperature_K: float = 300.0
    timestep_fs: float = 0.5
    friction_per_ps: float = 5.0
    equilibration_steps: int = 100
    steps_without_field: int = 100
    steps_with_field: int = 100
    report_interval: int = 10
    platform: str = "auto"
    backend: str = "torchforce"
    device: Optional[str] = None
    seed: int = 1
    #: charge constraints: "model" (the model's own rule; older model files: one neutral group
    #: per molecule, as before), "molecules", "residues" or "total"
    charge_groups: str = "model"
    #: field of the last phase; None: constant ``field_V_per_A``
    field_protocol: Optional[FieldProtocol] = None
    #: steps between updates of a time-dependent field
    field_interval: int = 1


def water_box(n_molecules: int, minimize: bool = True):
    """Topology and positions (OpenMM Quantity) of about ``n_molecules`` waters in a cube sized
    for 1 g/cm³ (OpenMM's pre-equilibrated TIP3P box, cut to the cube).

    Cutting leaves molecules on opposite faces overlapping through the periodic boundary
    (O–O down to 1.8 Å), so with ``minimize`` (default) the box is relaxed with rigid TIP3P
    and PME first; that removes the clashes (O–O ≥ 2.5 Å) and keeps the TIP3P monomer geometry.
    """
    import openmm
    from openmm import app, unit

    if n_molecules < 2:
        raise ValueError(f"n_molecules is {n_molecules}; a periodic water box needs at least 2")
    side_nm = (n_molecules * WATER_VOLUME_A3) ** (1.0 / 3.0) * ANGSTROM_TO_NM
    forcefield = app.ForceField("tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="tip3p", boxSize=openmm.Vec3(side_nm, side_nm, side_nm) * unit.nanometer)
    if not minimize:
        return modeller.topology, modeller.positions
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME, rigidWater=True,
                                     nonbondedCutoff=min(0.9, 0.49 * side_nm) * unit.nanometer)
    try:
        platform = openmm.Platform.getPlatformByName("CPU")
    except Exception:
        platform = openmm.Platform.getPlatformByName("Reference")
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform)
    context.setPositions(modeller.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 1000)
    positions = context.getState(getPositions=True).getPositions()
    del context
    return modeller.topology, positions


def openmm_platform(name: str = "auto"):
    """The OpenMM Platform ``name``; ``"auto"``: CUDA when OpenMM has that platform (the
    ``openmm-cuda-13`` package on a machine with an NVIDIA driver) and torch sees a GPU, else CPU."""
    import openmm
    import torch

    names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    if name == "auto":
        name = "CUDA" if "CUDA" in names and torch.cuda.is_available() else "CPU"
    if name not in names:
        raise ValueError(f"OpenMM platform {name!r} is not available; options: {', '.join(names)}")
    return openmm.Platform.getPlatformByName(name)


class _ProgressReporter:
    """OpenMM reporter that advances a tqdm bar (and shows the current temperature)."""

    def __init__(self, bar, interval: int, n_dof: int):
        self.bar, self.interval, self.n_dof = bar, interval, n_dof

    def describeNextReport(self, simulation):
        return (self.interval - simulation.currentStep % self.interval, False, False, False, True, False)

    def report(self, simulation, state):
        from openmm import unit

        temperature = (2 * state.getKineticEnergy() / (self.n_dof * unit.MOLAR_GAS_CONSTANT_R)).value_in_unit(unit.kelvin)
        self.bar.set_postfix(T=f"{temperature:.0f} K", field=f"{simulation.context.getParameter('pqeq_field_z') * V_PER_NM_TO_V_PER_A:.2f} V/Å")
        self.bar.update(self.interval)


def run_water_field_md(model: Union[str, Path], output_dir: Union[str, Path], settings: MDSettings,
                       progress: bool = True) -> dict:
    """Run the three phases and write the outputs; returns a summary dict (mean dipole
    along the field with and without it, timings, paths)."""
    import time

    import openmm
    from openmm import app, unit
    from tqdm import tqdm

    from .charge_constraint import resolve_charge_groups
    from .fields import ConstantField, FieldProtocolReporter
    from .integrations.reporters import PQEqReporter, read_charges
    from .integrations.system import create_system
    from .io import load_model

    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    loaded = load_model(model)
    topology, positions = water_box(settings.n_molecules)
    groups = resolve_charge_groups(settings.charge_groups, loaded, "molecules", "openmm-pqeq md")
    device = settings.device if settings.backend == "python" else None
    system = create_system(topology, loaded, charge_groups=groups or "total", backend=settings.backend, device=device)
    integrator = openmm.LangevinMiddleIntegrator(settings.temperature_K * unit.kelvin,
                                                 settings.friction_per_ps / unit.picosecond,
                                                 settings.timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(settings.seed)
    platform = openmm_platform(settings.platform)
    simulation = app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(settings.temperature_K * unit.kelvin, settings.seed)
    n_dof = 3 * system.getNumParticles() - 3
    total = settings.equilibration_steps + settings.steps_without_field + settings.steps_with_field
    bar = tqdm(total=total, desc="water MD", unit="step", disable=not progress)
    simulation.reporters.append(_ProgressReporter(bar, settings.report_interval, n_dof))
    started = time.time()
    simulation.step(settings.equilibration_steps)
    equilibrated = time.time()

    protocol = settings.field_protocol or ConstantField(settings.field_V_per_A)
    field_on_ps = (simulation.context.getTime().value_in_unit(unit.picosecond)
                   + settings.steps_without_field * settings.timestep_fs * FS_TO_PS)
    field_reporter = FieldProtocolReporter(protocol, settings.field_interval, output / "field.csv", field_on_ps)
    charges_path = output / "charges.txt"
    charge_reporter = PQEqReporter(charges_path, settings.report_interval, loaded, topology,
                                   charge_groups=groups or "total", shells_file=output / "shells.txt",
                                   device=settings.device)
    simulation.reporters += [
        app.DCDReporter(str(output / "trajectory.dcd"), settings.report_interval),
        app.StateDataReporter(str(output / "thermo.csv"), settings.report_interval, step=True, time=True,
                              potentialEnergy=True, kineticEnergy=True, temperature=True, speed=True),
        charge_reporter,
        field_reporter,  # after the charge reporter: charges at a step see the field that acted during it
    ]
    field_reporter.apply(simulation)
    simulation.step(settings.steps_without_field)
    field_on_step = simulation.currentStep
    simulation.step(settings.steps_with_field)
    finished = time.time()
    bar.close()
    charge_reporter.close()
    field_reporter.close()
    state = simulation.context.getState(getPositions=True, enforcePeriodicBox=True)
    with open(output / "final.pdb", "w") as handle:
        app.PDBFile.writeFile(topology, state.getPositions(), handle)

    frames = read_charges(charges_path)
    direction = protocol.direction
    volume_A3 = state.getPeriodicBoxVolume().value_in_unit(unit.angstrom**3)
    polarization = frames["dipole_eA"] @ direction / volume_A3  # e/Å²
    on = frames["step"] > field_on_step
    plot_polarization(frames["time_ps"], polarization, frames["time_ps"][~on].max() if (~on).any() else None,
                      output / "polarization.png", _strongest_field(output / "field.csv"))
    steps_run = settings.steps_without_field + settings.steps_with_field
    return {
        "atoms": system.getNumParticles(),
        "mean_polarization_without_field_e_per_A2": float(polarization[~on].mean()) if (~on).any() else None,
        "mean_polarization_with_field_e_per_A2": float(polarization[on].mean()) if on.any() else None,
        "seconds_per_step": (finished - equilibrated) / max(steps_run, 1),
        "wall_seconds": finished - started,
        "output_dir": str(output),
    }


def _strongest_field(path: Path) -> float:
    """Largest |E| (V/Å) in a FieldProtocolReporter file."""
    from .analysis.run import read_table

    return float(np.linalg.norm(read_table(path)[:, 2:5], axis=1).max())


def plot_polarization(time_ps, polarization, field_on_ps: Optional[float], path: Union[str, Path],
                      field_V_per_A: float) -> None:
    """Polarization along the field against time, the field-on period shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    ax.plot(time_ps, np.asarray(polarization) * 1e3, lw=1.5, color="C0")
    if field_on_ps is not None:
        ax.axvspan(field_on_ps, max(time_ps), color="C1", alpha=0.15,
                   label=f"field on (|E| ≤ {field_V_per_A:.2f} V/Å)")
        ax.legend(loc="upper left", frameon=False)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("polarization along field (10⁻³ e/Å²)")
    ax.set_title("Water: polarization response to a uniform field")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
