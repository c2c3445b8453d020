"""Field-driven water MD in OpenMM: the workflow behind ``openmm-pqeq md`` and ``make demo``.

Phases: equilibrate at the target temperature without field, run a baseline without field,
switch the uniform field on (through the ``pqeq_field_*`` global parameters) and run again.
The field of the last phase is constant, or any :class:`~openmm_pqeq.fields.FieldProtocol`
(its t = 0 at the start of that phase), applied by a
:class:`~openmm_pqeq.fields.FieldProtocolReporter`.
Outputs (in ``output_dir``): ``trajectory.dcd``, ``final.pdb``, ``charges.txt`` (per-frame
charges, dipole and solver statistics, see :mod:`openmm_pqeq.integrations.reporters`),
``shells.txt`` (per-atom shell dipoles), ``field.csv`` (the applied field),
``thermo.csv`` (OpenMM StateDataReporter), ``polarization.png`` and ``checkpoint.json``
(:mod:`openmm_pqeq.md_checkpoint`: a killed run continues with ``resume=True``,
``openmm-pqeq md --resume``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .fields import FieldProtocol
from .units import ANGSTROM_TO_NM, FS_TO_PS, V_PER_NM_TO_V_PER_A

#: Volume per water molecule at 1 g/cm³ (Å³).
WATER_VOLUME_A3 = 29.915


@dataclass
class MDSettings:
    """Settings of :func:`run_water_field_md` (units in the names).  Invalid values are a
    ValueError naming the setting and its ``openmm-pqeq md`` option."""

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
    #: steps between checkpoints, a multiple of ``report_interval`` (None: the multiple closest
    #: to 100 steps); a checkpoint is also written at each phase change and at the end
    checkpoint_interval: Optional[int] = None

    def __post_init__(self):
        def bad(name: str, option: str, value, rule: str):
            raise ValueError(f"{name} is {value!r} ({option}): {rule}")

        field = np.asarray(self.field_V_per_A, dtype=float).reshape(-1)
        if field.shape != (3,) or not np.isfinite(field).all():
            bad("field_V_per_A", "--field", list(self.field_V_per_A), "give 3 finite components in V/Å")
        self.field_V_per_A = tuple(float(x) for x in field)
        if int(self.n_molecules) < 2:
            bad("n_molecules", "--molecules", self.n_molecules, "a periodic water box needs at least 2")
        for name, option in (("temperature_K", "--temperature"), ("timestep_fs", "--timestep")):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value > 0):
                bad(name, option, getattr(self, name), "it must be a positive number")
        if not (np.isfinite(self.friction_per_ps) and self.friction_per_ps >= 0):
            bad("friction_per_ps", "friction", self.friction_per_ps, "it must be zero or positive")
        for name, option in (("equilibration_steps", "--equilibration-steps"), ("steps_without_field", "--steps"),
                             ("steps_with_field", "--steps")):
            if int(getattr(self, name)) < 0:
                bad(name, option, getattr(self, name), "it must be zero or positive")
        if self.steps_without_field + self.steps_with_field < 1:
            bad("steps_without_field + steps_with_field", "--steps", self.steps_without_field + self.steps_with_field,
                "the run needs at least one step with output")
        if int(self.field_interval) < 1:
            bad("field_interval", "--field-interval", self.field_interval, "it must be at least 1")
        if int(self.report_interval) < 1:
            bad("report_interval", "--report-interval", self.report_interval, "it must be at least 1")
        if self.checkpoint_interval is None:
            self.checkpoint_interval = self.report_interval * max(1, round(100 / self.report_interval))
        if int(self.checkpoint_interval) < 1 or self.checkpoint_interval % self.report_interval:
            bad("checkpoint_interval", "--checkpoint-interval", self.checkpoint_interval,
                f"it must be a positive multiple of the report interval ({self.report_interval})")

    @property
    def total_steps(self) -> int:
        """Steps of all three phases."""
        return self.equilibration_steps + self.steps_without_field + self.steps_with_field


def water_box(n_molecules: int, minimize: bool = True):
    """Topology and positions (OpenMM Quantity) of about ``n_molecules`` waters in a cube sized
    for 1 g/cm³ (OpenMM's pre-equilibrated TIP3P box, cut to the cube).

    Cutting leaves molecules on opposite faces overlapping through the periodic boundary
    (O–O down to 1.8 Å), so with ``minimize`` (default) the box is relaxed with rigid TIP3P
    and PME first; that removes the clashes (O–O ≥ 2.5 Å) and keeps the TIP3P monomer geometry.
    The relaxation runs on OpenMM's Reference platform, so the same ``n_molecules`` gives the
    same positions in every process (the multithreaded CPU platform sums forces in a varying
    order, and the relaxed positions differed by about 0.01 Å from run to run).
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
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
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


#: Files that grow during a run (the checkpoint records their sizes).
STREAMED_OUTPUTS = ("trajectory.dcd", "thermo.csv", "charges.txt", "shells.txt", "field.csv")


def _run_identity(model, settings: MDSettings) -> dict:
    """What a resumed run must share with the checkpointed one."""
    from .model import PQEqModel

    protocol = settings.field_protocol
    identity = asdict(settings)
    identity.pop("platform")  # informational: a checkpoint only loads on its own platform anyway
    identity["field_protocol"] = None if protocol is None else {
        "kind": type(protocol).__name__,
        **{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(protocol).items()}}
    identity["model"] = "<PQEqModel object>" if isinstance(model, PQEqModel) else str(model)
    return identity


def _check_output_folder(output: Path, identity: dict, resume: bool):
    """The checkpoint to continue from (None: start afresh); errors for a resume that cannot
    continue, or a fresh start over an unfinished run."""
    from .md_checkpoint import CHECKPOINT_NAME, read_checkpoint, run_differences

    checkpoint = read_checkpoint(output)
    if not resume:
        if checkpoint is not None and not checkpoint["finished"]:
            raise ValueError(f"{output} holds an unfinished run (checkpoint at step {checkpoint['step']}): continue it "
                             "with --resume and the same options, or write to another --output")
        return None
    if checkpoint is None:
        raise FileNotFoundError(f"--resume: {output / CHECKPOINT_NAME} does not exist, so there is no run to continue")
    differences = run_differences(checkpoint["run"], identity)
    if differences:
        listed = "; ".join(f"{name}: {old!r} in the checkpoint, {new!r} now" for name, (old, new) in differences.items())
        raise ValueError(f"--resume: the options differ from the checkpointed run ({listed}); resume with the "
                         "original options")
    return checkpoint


def run_water_field_md(model: Union[str, Path], output_dir: Union[str, Path], settings: MDSettings,
                       progress: bool = True, resume: bool = False) -> dict:
    """Run the three phases and write the outputs; returns a summary dict (mean dipole
    along the field with and without it, timings, paths).

    A checkpoint is written every ``settings.checkpoint_interval`` steps, at each phase change
    and at the end (:mod:`openmm_pqeq.md_checkpoint`).  ``resume=True`` continues the run
    checkpointed in ``output_dir`` (same settings and model): the trajectory, charges, shells,
    field and thermo files continue from the checkpoint without duplicated or missing frames.  Without
    it, a folder holding an unfinished run is an error, and a finished one is overwritten.
    """
    import time

    import openmm
    from openmm import app, unit
    from tqdm import tqdm

    from ._atomic import atomic_path
    from .charge_constraint import resolve_charge_groups
    from .fields import ConstantField, FieldProtocolReporter
    from .integrations.openmm_force import pqeq_force_index
    from .integrations.reporters import PQEqReporter, read_charges
    from .integrations.system import create_system
    from .io import load_model
    from .md_checkpoint import CHECKPOINT_NAME, output_sizes, restore_outputs, write_checkpoint

    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    identity = _run_identity(model, settings)
    checkpoint = _check_output_folder(output, identity, resume)
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
    recorded = {name: {"bytes": 0} for name in STREAMED_OUTPUTS}
    wall_before = 0.0
    if checkpoint is None:
        (output / CHECKPOINT_NAME).unlink(missing_ok=True)  # a finished earlier run: start afresh
        simulation.context.setPositions(positions)
        simulation.context.setVelocitiesToTemperature(settings.temperature_K * unit.kelvin, settings.seed)
    else:
        simulation.context.loadCheckpoint(checkpoint["openmm_checkpoint"])
        recorded = checkpoint["outputs"]
        restore_outputs(output, recorded)
        wall_before = checkpoint["wall_seconds"]

    equilibrated_at = settings.equilibration_steps
    field_on_step = equilibrated_at + settings.steps_without_field
    end = settings.total_steps
    n_dof = 3 * system.getNumParticles() - 3
    bar = tqdm(total=end, initial=simulation.currentStep, desc="water MD", unit="step", disable=not progress)
    simulation.reporters.append(_ProgressReporter(bar, settings.report_interval, n_dof))
    protocol = settings.field_protocol or ConstantField(settings.field_V_per_A)
    field_on_ps = field_on_step * settings.timestep_fs * FS_TO_PS  # the protocol's t = 0
    charges_path = output / "charges.txt"
    streams = []  # the reporters writing STREAMED_OUTPUTS, once attached

    def attach_outputs():
        """The trajectory, thermo, charge and field reporters; files with content at the
        checkpoint continue (and the field in force is the checkpoint's)."""
        interval = settings.report_interval
        append = {name: int(recorded.get(name, {"bytes": 0})["bytes"]) > 0 for name in STREAMED_OUTPUTS}
        field_reporter = FieldProtocolReporter(protocol, settings.field_interval, output / "field.csv", field_on_ps,
                                               append=append["field.csv"])
        streams.extend([
            app.DCDReporter(str(output / "trajectory.dcd"), interval, append=append["trajectory.dcd"]),
            app.StateDataReporter(str(output / "thermo.csv"), interval, step=True, time=True, potentialEnergy=True,
                                  kineticEnergy=True, temperature=True, speed=True, append=append["thermo.csv"]),
            PQEqReporter(charges_path, interval, loaded, force=system.getForce(pqeq_force_index(system)),
                         shells_file=output / "shells.txt", append=append["charges.txt"],
                         device=settings.device),
            field_reporter,  # after the charge reporter: charges at a step see the field that acted during it
        ])
        simulation.reporters.extend(streams)
        if not append["field.csv"]:
            field_reporter.apply(simulation)

    def save(finished: bool):
        # every reporter has flushed its file at its last report, so the sizes are complete
        write_checkpoint(output, simulation.currentStep, finished, identity, output_sizes(output, STREAMED_OUTPUTS),
                         simulation.context.createCheckpoint(), wall_before + time.time() - started)

    started = time.time()
    steps_at_start = simulation.currentStep
    while simulation.currentStep < end:
        step = simulation.currentStep
        if step >= equilibrated_at and not streams:
            attach_outputs()
        next_checkpoint = (step // settings.checkpoint_interval + 1) * settings.checkpoint_interval
        stop = min([end, next_checkpoint] + [b for b in (equilibrated_at, field_on_step) if b > step])
        simulation.step(stop - step)
        save(finished=simulation.currentStep >= end)
    finished = time.time()
    bar.close()
    for reporter in streams:
        if isinstance(reporter, (PQEqReporter, FieldProtocolReporter)):
            reporter.close()
    state = simulation.context.getState(getPositions=True, enforcePeriodicBox=True)
    with atomic_path(output / "final.pdb") as temporary, open(temporary, "w") as handle:
        app.PDBFile.writeFile(topology, state.getPositions(), handle)

    frames = read_charges(charges_path)
    direction = protocol.direction
    volume_A3 = state.getPeriodicBoxVolume().value_in_unit(unit.angstrom**3)
    polarization = frames["dipole_eA"] @ direction / volume_A3  # e/Å²
    on = frames["step"] > field_on_step
    with atomic_path(output / "polarization.png") as temporary:
        plot_polarization(frames["time_ps"], polarization, frames["time_ps"][~on].max() if (~on).any() else None,
                          temporary, _strongest_field(output / "field.csv"))
    return {
        "atoms": system.getNumParticles(),
        "frames": int(len(frames["step"])),
        "resumed_from_step": int(steps_at_start) if checkpoint is not None else None,
        "mean_polarization_without_field_e_per_A2": float(polarization[~on].mean()) if (~on).any() else None,
        "mean_polarization_with_field_e_per_A2": float(polarization[on].mean()) if on.any() else None,
        "seconds_per_step": (finished - started) / max(end - steps_at_start, 1),
        "wall_seconds": wall_before + finished - started,
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
