"""Liquid-water validation of a water model: structure, density, molecular dipoles, polarizability,
the response to a field, the dielectric constant and chemical stability in fields (OpenMM MD, CPU).

Stages, each resumable (it runs in chunks; after every chunk the sampled frames, an OpenMM
checkpoint and a progress record are written, and a new call continues from the checkpoint;
``--max-minutes`` ends a session early):

- ``nvt``: NVT 300 K at 0.997 g/cm³ (the experimental density), no field: O–O g(r), molecular
  dipoles, dipole fluctuations (dielectric constant by the fluctuation route);
- ``npt``: NPT 300 K, 1 bar (Monte Carlo barostat every 25 steps), started from the end of
  ``nvt``: density;
- ``field-E`` (E in V/Å along z, e.g. ``field-0.05``): NVT in a constant field, started from the
  end of ``nvt`` or of the stage named by ``--start``: polarization, ⟨cos θ⟩, molecular dipoles,
  proton transfer and dissociation;
- ``liquid-N`` (e.g. ``liquid-128``): a short NVT of N molecules at 0.997 g/cm³, only as a source
  of liquid frames of another box size for ``polarizability``.

``polarizability`` evaluates liquid frames of ``nvt`` and every ``liquid-N`` at fixed nuclei:
the electronic polarizability per molecule by central finite fields (±0.01 V/Å along x, y, z)
with one neutral group per molecule and with one total charge for the box, the molecular
dipoles, and the spread of the molecules' net charges under one total charge.

``report`` turns the stages found into ``benchmarks/results/water_validation.json`` and one plot
per item (``benchmarks/results/water_validation_*.png``) with the references (experiment, PBE).
Several runs (models) can be reported side by side: ``--run LABEL=FOLDER`` (the first is the main one).

Integration: Langevin middle (friction 1/ps; 10/ps during the equilibration of a stage that starts
from the relaxed box, where half the initial kinetic energy flows into the vibrations and 1/ps
takes picoseconds to bring it back) with hydrogen mass repartitioning: H 2.0 amu, the
difference taken from the bonded O, so molecular masses (and the density) are unchanged, and
static equilibrium properties do not depend on the masses.  1 fs steps, flexible water (no
constraints).  The model runs as an openmm-torch TorchForce with its own charge-constraint rule
(older model files: one neutral group per molecule, as ``openmm-pqeq md``).  Frames are sampled
every ``--sample-fs``; the model is evaluated again at each sampled frame for its charges and
shells (molecular dipoles: charges plus shell dipoles −Z d, whole molecules).

Dielectric constant (tin-foil Ewald, where the applied field is the macroscopic field):

- fluctuations of the zero-field box dipole M:  ε = ε∞ + (⟨M²⟩ − ⟨M⟩²)/(3 V ε₀ k_B T), the form
  for polarizable models (Neumann and Steinhauser, Chem. Phys. Lett. 95, 417 (1983); Lamoureux
  et al., J. Chem. Phys. 119, 5185 (2003)), ε∞ − 1 = Σ α/(V ε₀) from ``polarizability`` at fixed
  nuclei; the fluctuation part is :func:`openmm_pqeq.analysis.dielectric_fluctuation` − 1;
- linear response to a field E:  ε − 1 = ⟨P⟩/(ε₀ E) (:func:`openmm_pqeq.analysis.dielectric_linear_response`),
  which at larger fields is the apparent ε(E) and shows the saturation.

Run (long lane, one thread; the commands of README *Liquid-water validation*):

    OMP_NUM_THREADS=1 python benchmarks/water_validation.py run nvt --model water-demo --folder runs/wv
    OMP_NUM_THREADS=1 python benchmarks/water_validation.py run field-0.05 --model water-demo --folder runs/wv
    OMP_NUM_THREADS=1 python benchmarks/water_validation.py polarizability --model water-demo --folder runs/wv
    python benchmarks/water_validation.py report --run water-demo=runs/wv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"
#: Hydrogen mass after repartitioning (amu).
HYDROGEN_MASS = 2.0
TEMPERATURE_K = 300.0
#: Experimental density of water at 300 K, 1 bar (g/cm³): the NVT density and the NPT reference.
DENSITY_G_CM3 = 0.997
#: Langevin friction (1/ps) of production, and of the equilibration of stages started from the box.
FRICTION_PER_PS = 1.0
EQUILIBRATION_FRICTION_PER_PS = 10.0
#: The field (V/Å) of the finite-field polarizability.
POLARIZABILITY_FIELD = 0.01
#: An O–H bond longer than this (Å) counts as dissociated.
DISSOCIATION_OH_A = 1.3
REFERENCES = {
    "rdf_first_peak": {
        "experiment": {"position_A": 2.80, "height": 2.57, "source": "X-ray, Skinner et al., J. Chem. Phys. 138, "
                                                                        "074506 (2013)"},
        "pbe_aimd": {"height": "about 3.0-3.3", "source": "PBE ab initio MD at 300 K is overstructured "
                                                          "(docs/physics, FIELD_PHYSICS)"}},
    "density_g_cm3": {"experiment": DENSITY_G_CM3, "pbe_d3_aimd": "about 1.0-1.07"},
    "molecular_dipole_D": {"liquid": "about 2.6-3.0 (ab initio MD with Wannier centres, experimental estimates)",
                           "gas_experiment": 1.855, "gas_pbe": 1.84},
    "polarizability_per_molecule_A3": {"dft": "about 1.5, independent of the box size",
                                       "gas_experiment": 1.45, "gas_pbe_def2_svpd": 1.49},
    "dielectric_constant": {"experiment": 78.4, "temperature_K": 298, "spc_e": "68 +- 6", "tip3p": "97 +- 7",
                            "pbe_aimd": "at least 40 % above experiment (Zhang, Hutter, Sprik, J. Phys. Chem. "
                                        "Lett. 2016)",
                            "run_length": "about 20 ns for a SCAN-trained network (Krishnamoorthy et al., PRL 126, "
                                          "216403 (2021)); the collective dipole relaxes in about 8 ps"},
    "saturation_onset_V_per_A": "about 0.03-0.1 (linear response: <cos theta> about 0.2 at 0.01 V/A)",
    "dissociation_onset_V_per_A": {"ab_initio": 0.35, "source": "Saitta et al., PRL 108, 207801 (2012)"},
}
#: What the validation asks for, to set beside what was run.
REQUESTED = {"molecules": ">= 64", "nvt_production_ps": ">= 10 after equilibration",
             "npt": "1 bar, 300 K", "field_V_per_A": "0-0.3", "field_stability_ps": ">= 10 below 0.3 V/A",
             "dielectric": "with its statistical error; experiment 78 at 298 K"}


# ---------------------------------------------------------------------- stages and set-up
def stage_settings(stage: str) -> Dict:
    """Default lengths (ps) and conditions of a stage (module docstring)."""
    base = {"field_V_per_A": 0.0, "barostat": False, "start": None, "molecules": None}
    if stage == "nvt":
        return {**base, "equilibration_ps": 2.0, "production_ps": 10.0}
    if stage == "npt":
        return {**base, "equilibration_ps": 1.0, "production_ps": 4.0, "barostat": True, "start": "nvt"}
    match = re.fullmatch(r"field-(\d*\.?\d+)", stage)
    if match:
        field = float(match.group(1))
        if not 0.0 < field <= 1.0:
            raise ValueError(f"stage {stage!r}: the field must be in (0, 1] V/Å")
        return {**base, "field_V_per_A": field, "equilibration_ps": 1.0, "production_ps": 3.0, "start": "nvt"}
    match = re.fullmatch(r"liquid-(\d+)", stage)
    if match:
        return {**base, "equilibration_ps": 0.4, "production_ps": 0.25, "molecules": int(match.group(1))}
    raise ValueError(f"unknown stage {stage!r}; options: nvt, npt, field-E (E in V/Å, e.g. field-0.05), "
                     "liquid-N (N molecules)")


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model: str) -> Dict:
    """Path, sha256 and the metadata that say what a model is (params, charge constraint)."""
    from openmm_pqeq.io import read_model_file, resolve_model_path

    path = resolve_model_path(model)
    payload = read_model_file(model)
    metadata = payload["metadata"]
    pqeq = payload["config"].get("pqeq", {}) if isinstance(payload["config"], dict) else {}
    return {"name": str(model), "path": str(path), "sha256": file_sha256(path),
            "pqeq_params": pqeq.get("params"), "pqeq_mode": pqeq.get("mode"),
            "charge_constraint": metadata.get("charge_constraint"), "created": metadata.get("created"),
            "description": metadata.get("description")}


def _write_json(path: Path, payload) -> None:
    from openmm_pqeq._atomic import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")


def liquid_box(n_molecules: int):
    """Topology and positions of exactly ``n_molecules`` waters in a cube at :data:`DENSITY_G_CM3`.

    :func:`openmm_pqeq.md.water_box` cuts OpenMM's TIP3P box to a cube and loses the molecules
    on its faces (about 0.92 g/cm³); here a larger cut is taken, the surplus molecules removed,
    the molecular centres scaled into the cube of the right size (molecules kept rigid) and the
    box relaxed with rigid TIP3P and PME on the Reference platform (deterministic).
    """
    import openmm
    from openmm import app, unit

    from openmm_pqeq.md import water_box

    if n_molecules < 8:
        raise ValueError(f"n_molecules is {n_molecules}; the liquid box needs at least 8")
    request = n_molecules
    while True:
        topology, positions = water_box(request, minimize=False)
        if topology.getNumResidues() >= n_molecules:
            break
        request += max(1, (n_molecules - topology.getNumResidues()))
    modeller = app.Modeller(topology, positions)
    modeller.delete(list(modeller.topology.residues())[n_molecules:])
    topology = modeller.topology
    xyz = np.array(modeller.positions.value_in_unit(unit.nanometer))
    mass = sum(a.element.mass.value_in_unit(unit.dalton) for a in topology.atoms()) * unit.dalton
    volume = (mass / unit.AVOGADRO_CONSTANT_NA / (DENSITY_G_CM3 * unit.gram / unit.centimeter**3))
    side = volume.value_in_unit(unit.nanometer**3) ** (1.0 / 3.0)
    old_side = topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)
    for residue in topology.residues():
        index = [a.index for a in residue.atoms()]
        centre = xyz[index[0]]
        xyz[index] += (centre % old_side) * side / old_side - centre
    topology.setPeriodicBoxVectors([openmm.Vec3(side, 0, 0), openmm.Vec3(0, side, 0), openmm.Vec3(0, 0, side)])
    forcefield = app.ForceField("tip3p.xml")
    system = forcefield.createSystem(topology, nonbondedMethod=app.PME, rigidWater=True,
                                     nonbondedCutoff=min(0.9, 0.49 * side) * unit.nanometer)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(xyz * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 1000)
    positions = context.getState(getPositions=True).getPositions()
    del context
    return topology, positions


def _repartition_masses(system, topology) -> None:
    """H masses to :data:`HYDROGEN_MASS` amu, the difference taken from the O of the same molecule."""
    from openmm import unit

    for residue in topology.residues():
        atoms = list(residue.atoms())
        oxygen = [a.index for a in atoms if a.element.symbol == "O"]
        if len(oxygen) != 1:
            raise ValueError(f"residue {residue.index} has {len(oxygen)} O atoms; the repartitioning expects water")
        for atom in atoms:
            if atom.element.symbol == "H":
                moved = HYDROGEN_MASS - system.getParticleMass(atom.index).value_in_unit(unit.dalton)
                system.setParticleMass(atom.index, HYDROGEN_MASS * unit.dalton)
                o_mass = system.getParticleMass(oxygen[0]).value_in_unit(unit.dalton)
                system.setParticleMass(oxygen[0], (o_mass - moved) * unit.dalton)


def density_g_cm3(topology, volume_A3) -> np.ndarray:
    """Mass density (g/cm³) of the Topology's atoms in the volumes ``volume_A3`` (Å³)."""
    from openmm import unit

    mass = sum(a.element.mass.value_in_unit(unit.dalton) for a in topology.atoms()) * unit.dalton
    per_A3 = (mass / unit.AVOGADRO_CONSTANT_NA / unit.angstrom**3).value_in_unit(unit.gram / unit.centimeter**3)
    return per_A3 / np.asarray(volume_A3, dtype=float)


class Stage:
    """One resumable MD stage (module docstring) in ``folder/<stage>``.

    Files: ``frames_<first step>.npz`` (sampled frames, Å, e, e·Å), ``checkpoint.chk`` (OpenMM;
    its step count says how far the stage is), ``progress.json`` (settings, model identity,
    timings), ``final_state.xml`` when finished.
    """

    def __init__(self, stage: str, model: str, folder: Path, n_molecules: int, timestep_fs: float = 1.0,
                 sample_fs: float = 50.0, chunk_ps: float = 0.5, seed: int = 7, lengths_ps: Optional[Dict] = None,
                 start: Optional[str] = None):
        self.name, self.model_name = stage, model
        self.settings = {**stage_settings(stage), **{k: v for k, v in (lengths_ps or {}).items() if v is not None}}
        if start is not None:
            self.settings["start"] = start
        self.settings["molecules"] = self.settings["molecules"] or n_molecules
        self.folder = Path(folder) / stage
        self.root = Path(folder)
        self.timestep_fs, self.seed = timestep_fs, seed
        self.sample_every = max(1, int(round(sample_fs / timestep_fs)))
        self.chunk_steps = self.sample_every * max(1, int(round(chunk_ps * 1000 / sample_fs)))
        s = self.settings
        self.total_steps = int(round((s["equilibration_ps"] + s["production_ps"]) * 1000 / timestep_fs))
        self.equilibration_steps = int(round(s["equilibration_ps"] * 1000 / timestep_fs))

    def _simulation(self):
        import openmm
        from openmm import app, unit

        from openmm_pqeq.charge_constraint import resolve_charge_groups
        from openmm_pqeq.integrations.system import create_system
        from openmm_pqeq.io import load_model
        from openmm_pqeq.units import V_PER_A_TO_V_PER_NM

        self.model = load_model(self.model_name)
        self.rule = resolve_charge_groups("model", self.model, "molecules", "water_validation")
        topology, positions = liquid_box(self.settings["molecules"])
        self.field = (0.0, 0.0, V_PER_A_TO_V_PER_NM * self.settings["field_V_per_A"])
        system = create_system(topology, self.model, charge_groups=self.rule or "total", field=self.field)
        _repartition_masses(system, topology)
        if self.settings["barostat"]:
            system.addForce(openmm.MonteCarloBarostat(1.0 * unit.bar, TEMPERATURE_K * unit.kelvin, 25))
        integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                     self.timestep_fs * unit.femtosecond)
        integrator.setRandomNumberSeed(self.seed)
        simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"),
                                    {"Threads": str(os.environ.get("OMP_NUM_THREADS", "1"))})
        self.topology, self.system = topology, system
        return simulation, positions

    def _start(self, simulation, positions) -> None:
        """Positions and velocities: the TIP3P-relaxed box of :func:`liquid_box` with velocities
        drawn at 300 K (no minimisation with the model: the relaxed box has no clashes, and the
        equilibration takes the rest), or the end of the start stage (positions, velocities, box;
        the field stays this stage's own)."""
        import openmm
        from openmm import unit

        start = self.settings["start"]
        if start is None:
            simulation.context.setPositions(positions)
            simulation.context.setVelocitiesToTemperature(TEMPERATURE_K * unit.kelvin, self.seed)
            return
        source = self.root / start / "final_state.xml"
        if not source.is_file():
            raise FileNotFoundError(f"stage {self.name!r} starts from the end of stage {start!r}: run that first "
                                    f"({source} is missing)")
        state = openmm.XmlSerializer.deserialize(source.read_text())
        if len(state.getPositions()) != self.system.getNumParticles():
            raise ValueError(f"stage {start!r} has {len(state.getPositions())} atoms, stage {self.name!r} "
                             f"{self.system.getNumParticles()}: use the same --molecules")
        simulation.context.setPeriodicBoxVectors(*state.getPeriodicBoxVectors())
        simulation.context.setPositions(state.getPositions())
        simulation.context.setVelocities(state.getVelocities())

    def _sample(self, state) -> Dict[str, np.ndarray]:
        """One frame: positions, box, the model's charges and shell dipoles at these positions, the
        box dipole, temperature and potential energy."""
        import torch
        from openmm import unit

        positions = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.angstrom)
        numbers = torch.tensor([a.element.atomic_number for a in self.topology.atoms()])
        groups = torch.tensor([a.residue.index for a in self.topology.atoms()]) if self.rule == "molecules" else None
        field = torch.tensor([0.0, 0.0, self.settings["field_V_per_A"]], dtype=torch.float64)
        with torch.no_grad():
            out = self.model(torch.tensor(positions, dtype=torch.float64), numbers,
                             torch.tensor(np.asarray(box), dtype=torch.float64), field, 0.0, groups)
        z = self.model.pqeq.table_Z.index_select(0, numbers).numpy()
        n_dof = 3 * self.system.getNumParticles() - 3
        temperature = (2 * state.getKineticEnergy() / (n_dof * unit.MOLAR_GAS_CONSTANT_R)).value_in_unit(unit.kelvin)
        return {"positions_A": positions.astype(np.float32), "box_A": np.asarray(box, dtype=np.float64),
                "charges_e": out["charges"].numpy().astype(np.float32),
                "shell_dipoles_eA": (-z[:, None] * out["shell_displacements"].numpy()).astype(np.float32),
                "dipole_eA": out["dipole"].numpy(), "converged": bool(out["converged"]),
                "temperature_K": temperature,
                "potential_kJ_mol": state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)}

    def _friction(self, step: int) -> float:
        """Friction (1/ps) for the steps after ``step``: higher in the equilibration of a stage
        that starts from the relaxed box (module docstring)."""
        fresh = self.settings["start"] is None
        return EQUILIBRATION_FRICTION_PER_PS if fresh and step < self.equilibration_steps else FRICTION_PER_PS

    def _check_resume(self, record: Dict, identity: Dict) -> None:
        if record["model"]["sha256"] != identity["sha256"]:
            raise ValueError(f"stage {self.name!r} in {self.folder} was run with model {record['model']['path']} "
                             f"(sha256 {record['model']['sha256'][:12]}), not {identity['path']} "
                             f"({identity['sha256'][:12]}): use another --folder")
        for key in ("field_V_per_A", "barostat", "molecules", "start"):
            if record["settings"][key] != self.settings[key]:
                raise ValueError(f"stage {self.name!r} in {self.folder} has {key} = {record['settings'][key]!r}, "
                                 f"asked {self.settings[key]!r}: use another --folder")
        if record["timestep_fs"] != self.timestep_fs or record["sample_every"] != self.sample_every:
            raise ValueError(f"stage {self.name!r} in {self.folder} has time step {record['timestep_fs']} fs and "
                             f"sampling every {record['sample_every']} steps: use the same --timestep/--sample-fs")

    def run(self, max_minutes: float = 1e9, progress: bool = True) -> Dict:
        """Run (or resume) the stage; returns the progress record."""
        from openmm_pqeq._atomic import atomic_path
        from tqdm import tqdm

        self.folder.mkdir(parents=True, exist_ok=True)
        progress_file = self.folder / "progress.json"
        identity = model_identity(self.model_name)
        record = json.loads(progress_file.read_text()) if progress_file.is_file() else {
            "stage": self.name, "model": identity, "settings": self.settings, "steps": 0, "wall_s": 0.0,
            "sample_wall_s": 0.0, "timestep_fs": self.timestep_fs, "sample_every": self.sample_every,
            "hydrogen_mass_amu": HYDROGEN_MASS, "friction_per_ps": FRICTION_PER_PS,
            "equilibration_friction_per_ps": EQUILIBRATION_FRICTION_PER_PS if self.settings["start"] is None
            else FRICTION_PER_PS, "load_average": []}
        self._check_resume(record, identity)
        record["settings"] = self.settings  # a longer production extends a finished stage
        if record["steps"] >= self.total_steps:
            return record
        simulation, positions = self._simulation()
        record["n_molecules"] = self.topology.getNumResidues()
        record["charge_groups"] = self.rule or "total"
        checkpoint = self.folder / "checkpoint.chk"
        if checkpoint.is_file():
            simulation.loadCheckpoint(str(checkpoint))
        else:
            self._start(simulation, positions)
            simulation.context.setStepCount(0)
        record["steps"] = simulation.context.getStepCount()
        for stale in self.folder.glob("frames_*.npz"):  # written after the last checkpoint
            if int(stale.stem.split("_")[1]) >= record["steps"]:
                stale.unlink()
        started = time.time()
        bar = tqdm(total=self.total_steps, initial=record["steps"], desc=self.name, unit="step", disable=not progress)
        while record["steps"] < self.total_steps and (time.time() - started) / 60 < max_minutes:
            frames: List[Dict] = []
            steps = min(self.chunk_steps, self.total_steps - record["steps"])
            chunk_start, sample_s = time.time(), 0.0
            for _ in range(steps // self.sample_every):
                simulation.integrator.setFriction(self._friction(simulation.context.getStepCount()))
                simulation.step(self.sample_every)
                sampled = time.time()
                state = simulation.context.getState(getPositions=True, getEnergy=True, enforcePeriodicBox=False)
                frame = self._sample(state)
                sample_s += time.time() - sampled
                frame["step"] = simulation.context.getStepCount()
                frames.append(frame)
                bar.update(self.sample_every)
                bar.set_postfix(T=f"{frame['temperature_K']:.0f} K")
            stacked = {key: np.stack([f[key] for f in frames]) for key in frames[0]}
            with atomic_path(self.folder / f"frames_{record['steps']:08d}.npz") as temporary:
                with open(temporary, "wb") as handle:
                    np.savez_compressed(handle, **stacked)
            with atomic_path(checkpoint) as temporary:
                simulation.saveCheckpoint(str(temporary))
            record["steps"] = simulation.context.getStepCount()
            record["wall_s"] += time.time() - chunk_start
            record["sample_wall_s"] += sample_s
            record["seconds_per_step"] = (record["wall_s"] - record["sample_wall_s"]) / record["steps"]
            record["load_average"].append(round(os.getloadavg()[0], 2))
            _write_json(progress_file, record)
        bar.close()
        if record["steps"] >= self.total_steps:
            with atomic_path(self.folder / "final_state.xml") as temporary:
                simulation.saveState(str(temporary))
        return record


def load_frames(folder: Path, stage: str) -> Optional[Dict[str, np.ndarray]]:
    """All sampled frames of a stage (equilibration and production) up to its checkpoint, or None."""
    progress_file = Path(folder) / stage / "progress.json"
    files = sorted((Path(folder) / stage).glob("frames_*.npz"))
    if not files or not progress_file.is_file():
        return None
    steps = json.loads(progress_file.read_text())["steps"]
    parts = [dict(np.load(f)) for f in files if int(f.stem.split("_")[1]) < steps]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else None


def hydrogen_oxygen_distances(positions: np.ndarray, box: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Minimum-image H–O distances (Å) of a water frame whose atoms are O, H, H per molecule in
    topology order: (own (2M,), each H to its own O; foreign (2M, M), each H to every O, its own
    O set to inf).  ``positions`` (3M, 3) Å, ``box`` (3, 3) Å, rows the box vectors."""
    n_molecules = len(positions) // 3
    oxygens = np.arange(n_molecules) * 3
    hydrogens = np.stack([oxygens + 1, oxygens + 2], 1).ravel()
    rows, own = np.arange(len(hydrogens)), np.repeat(np.arange(n_molecules), 2)
    d = positions[hydrogens][:, None, :] - positions[oxygens][None, :, :]
    frac = d @ np.linalg.inv(box)
    r = np.linalg.norm((frac - np.round(frac)) @ box, axis=-1)
    bonded = r[rows, own].copy()
    r[rows, own] = np.inf
    return bonded, r


def production(frames: Dict[str, np.ndarray], progress: Dict) -> np.ndarray:
    """Mask of the frames after the stage's equilibration."""
    return frames["step"] > progress["settings"]["equilibration_ps"] * 1000 / progress["timestep_fs"]


# ---------------------------------------------------------------------- polarizability
def frame_polarizability(pqeq, positions, numbers, cell, groups, field_V_per_A: float = POLARIZABILITY_FIELD):
    """Electronic polarizability tensor (3, 3) e·Å²/V of one structure at fixed nuclei by central
    finite fields: α_ab = (M_a(+E e_b) − M_a(−E e_b))/(2E); ``groups`` None for one total charge."""
    import torch

    alpha = np.zeros((3, 3))
    for b in range(3):
        dipoles = []
        for sign in (1.0, -1.0):
            field = torch.zeros(3, dtype=torch.float64)
            field[b] = sign * field_V_per_A
            with torch.no_grad():
                dipoles.append(pqeq(positions, numbers, cell, field, 0.0, groups)["dipole"].numpy())
        alpha[:, b] = (dipoles[0] - dipoles[1]) / (2 * field_V_per_A)
    return alpha


def liquid_polarizability(model_name: str, folder: Path, stage: str, n_frames: int = 4) -> Dict:
    """Per molecule (Å³) polarizability of ``n_frames`` production frames of ``stage`` with one
    neutral group per molecule and with one total charge; molecular dipoles (D) of all its
    production frames; net molecular charges (e) under one total charge at zero field; ε∞."""
    import torch

    from openmm_pqeq.analysis import molecular_dipoles
    from openmm_pqeq.io import load_model
    from openmm_pqeq.units import COULOMB_EV_A, E_ANGSTROM_TO_DEBYE, VACUUM_PERMITTIVITY_E_PER_V_A

    frames = load_frames(folder, stage)
    progress = json.loads((Path(folder) / stage / "progress.json").read_text())
    if model_identity(model_name)["sha256"] != progress["model"]["sha256"]:
        raise ValueError(f"stage {stage!r} in {folder} was run with {progress['model']['path']}, not {model_name}: "
                         "pass that model (--model)")
    keep = production(frames, progress)
    if not keep.any():
        raise ValueError(f"stage {stage!r} in {folder} has no production frames yet")
    chosen = np.flatnonzero(keep)[np.linspace(0, keep.sum() - 1, n_frames).astype(int)]
    pqeq = load_model(model_name).pqeq
    n_atoms = frames["positions_A"].shape[1]
    n_molecules = n_atoms // 3
    numbers = torch.tensor([8, 1, 1] * n_molecules)
    groups = torch.arange(n_atoms) // 3
    per_molecule: Dict[str, List[float]] = {"molecules": [], "total": []}
    epsilon_inf, net_charges, failures = [], [], []
    for k in chosen:
        positions = torch.tensor(frames["positions_A"][k], dtype=torch.float64)
        cell = torch.tensor(frames["box_A"][k], dtype=torch.float64)
        for rule, g in (("molecules", groups), ("total", None)):
            try:  # a solve that does not converge is a result (recorded), not the end of the run
                alpha = frame_polarizability(pqeq, positions, numbers, cell, g)
            except RuntimeError as error:
                failures.append({"step": int(frames["step"][k]), "rule": rule, "error": str(error)[:200]})
                continue
            per_molecule[rule].append(float(np.trace(alpha)) / 3 * COULOMB_EV_A / n_molecules)
            if rule == "molecules":
                volume = abs(float(np.linalg.det(frames["box_A"][k])))
                epsilon_inf.append(1.0 + float(np.trace(alpha)) / 3 / (volume * VACUUM_PERMITTIVITY_E_PER_V_A))
        try:
            with torch.no_grad():
                charges = pqeq(positions, numbers, cell, torch.zeros(3, dtype=torch.float64), 0.0, None)["charges"]
            net_charges.append(charges.numpy().reshape(n_molecules, 3).sum(1))
        except RuntimeError as error:
            failures.append({"step": int(frames["step"][k]), "rule": "total, zero field", "error": str(error)[:200]})
    dipoles = molecular_dipoles(frames["positions_A"][keep], frames["charges_e"][keep], np.arange(n_atoms) // 3,
                                frames["box_A"][keep], frames["shell_dipoles_eA"][keep])
    magnitudes = np.linalg.norm(dipoles, axis=-1) * E_ANGSTROM_TO_DEBYE
    net = np.concatenate(net_charges) if net_charges else np.full(1, np.nan)
    return {"stage": stage, "model": progress["model"], "n_molecules": n_molecules,
            "frames": [int(frames["step"][k]) for k in chosen],
            "field_V_per_A": POLARIZABILITY_FIELD, "per_molecule_A3": per_molecule,
            "mean_A3": {r: float(np.mean(v)) if v else None for r, v in per_molecule.items()},
            "std_A3": {r: float(np.std(v)) if v else None for r, v in per_molecule.items()},
            "epsilon_infinity": float(np.mean(epsilon_inf)) if epsilon_inf else None,
            "failed_solves": failures,
            "molecular_dipole_D": {"mean": float(magnitudes.mean()), "std": float(magnitudes.std()),
                                   "frames": int(keep.sum())},
            "net_molecular_charge_total_rule_e": {"rms": float(np.sqrt((net**2).mean())),
                                                  "max_abs": float(np.abs(net).max())}}


def water_topology(n_molecules: int):
    """An OpenMM Topology of ``n_molecules`` waters (O, H, H), for mdtraj and the mass."""
    from openmm import app

    topology = app.Topology()
    chain = topology.addChain()
    elements = (app.element.oxygen, app.element.hydrogen, app.element.hydrogen)
    for _ in range(n_molecules):
        residue = topology.addResidue("HOH", chain)
        atoms = [topology.addAtom(name, element, residue) for name, element in zip(("O", "H1", "H2"), elements)]
        topology.addBond(atoms[0], atoms[1])
        topology.addBond(atoms[0], atoms[2])
    return topology


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "polarizability", "report"])
    parser.add_argument("stage", nargs="?", default=None,
                        help="run: nvt, npt, field-E (E in V/Å) or liquid-N (N molecules)")
    parser.add_argument("--model", default="water-demo", help="model file or shipped name (default water-demo)")
    parser.add_argument("--molecules", type=int, default=64, help="water molecules in the box (default 64)")
    parser.add_argument("--folder", default="runs/water_validation", help="run folder (resumable state)")
    parser.add_argument("--start", default=None, help="run: the stage whose end state starts this one "
                                                      "(default: nvt for npt and field stages)")
    parser.add_argument("--timestep", type=float, default=1.0, help="time step in fs (default 1, with HMR)")
    parser.add_argument("--sample-fs", type=float, default=50.0, help="sampling interval in fs (default 50)")
    parser.add_argument("--max-minutes", type=float, default=1e9, help="stop (resumably) after this long")
    parser.add_argument("--frames", type=int, default=4, help="polarizability: frames per box (default 4)")
    parser.add_argument("--equilibration-ps", type=float, default=None, help="override the stage's equilibration")
    parser.add_argument("--production-ps", type=float, default=None, help="override the stage's production length")
    parser.add_argument("--chunk-ps", type=float, default=0.5, help="checkpoint interval in ps (default 0.5)")
    parser.add_argument("--run", action="append", default=None, metavar="LABEL=FOLDER",
                        help="report: a run folder and its label (repeat; the first is the main one; "
                             "default: the model name and --folder)")
    parser.add_argument("--results", default=str(RESULTS), help="report: folder of the JSON and plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if args.command == "run":
        if args.stage is None:
            parser.error("run needs a stage: nvt, npt, field-E or liquid-N")
        lengths = {"equilibration_ps": args.equilibration_ps, "production_ps": args.production_ps}
        record = Stage(args.stage, args.model, folder, args.molecules, args.timestep, args.sample_fs, args.chunk_ps,
                       lengths_ps=lengths, start=args.start).run(args.max_minutes, progress=not args.quiet)
        print(json.dumps({k: v for k, v in record.items() if k != "load_average"}, indent=1))
    elif args.command == "polarizability":
        sources = sorted(p.name for p in folder.iterdir() if (p / "progress.json").is_file()
                         and (p.name == "nvt" or p.name.startswith("liquid-")))
        if not sources:
            parser.error(f"polarizability needs the nvt or liquid-N stages in {folder}; none found")
        result = {stage: liquid_polarizability(args.model, folder, stage, args.frames) for stage in sources}
        _write_json(folder / "polarizability.json", result)
        print(json.dumps(result, indent=1))
    else:
        runs = []
        for item in args.run or [f"{args.model}={args.folder}"]:
            label, sep, path = item.partition("=")
            if not sep or not Path(path).is_dir():
                parser.error(f"--run {item!r}: expected LABEL=FOLDER with an existing folder")
            runs.append((label, Path(path)))
        from water_validation_report import report

        result = report(runs, Path(args.results))
        print(json.dumps({label: run["summary"] for label, run in result["runs"].items()}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
