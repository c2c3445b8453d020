"""Harmonic normal modes of a molecule and gas-phase MD that excites them (through ASE).

Used to check an IR spectrum from MD against the model's own Hessian: the Hessian comes from
central finite differences of the calculator's forces (``ase.vibrations.Vibrations``), the MD
is NVE velocity Verlet (``ase.md.verlet.VelocityVerlet``) started at the minimum with k_B T of
kinetic energy in each vibrational mode and none in translation or rotation, and the system
dipole of each step comes from the calculator (``dipole``, e·Å).  Any ASE calculator that
gives forces and a dipole works, e.g. :class:`~openmm_pqeq.integrations.ase_calculator.PQEqCalculator`.
"""

from __future__ import annotations

import tempfile
from typing import Optional, Tuple

import numpy as np

from ..units import BOLTZMANN_EV_PER_K


def normal_modes(atoms, delta_A: float = 0.005, linear: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Vibrational frequencies (K,) cm⁻¹, ascending, and Cartesian mode vectors (K, N, 3) of
    ``atoms`` with its calculator, K = 3N − 6 (3N − 5 when ``linear``).  ``atoms`` should be
    at a minimum; an imaginary frequency among the K is an error."""
    from ase.vibrations import Vibrations

    n_vib = 3 * len(atoms) - (5 if linear else 6)
    with tempfile.TemporaryDirectory() as folder:
        vibrations = Vibrations(atoms, name=f"{folder}/vib", delta=delta_A, nfree=2)
        vibrations.run()
        data = vibrations.get_vibrations()
    energies, modes = data.get_energies_and_modes(all_atoms=True)
    frequencies = data.get_frequencies()[-n_vib:]
    if np.iscomplexobj(frequencies) and np.abs(frequencies.imag).max() > 1e-6:
        raise ValueError(f"imaginary vibrational frequency {frequencies[np.argmax(np.abs(frequencies.imag))]} cm⁻¹: "
                         "relax the structure to a minimum first")
    return np.real(frequencies), np.asarray(modes)[-n_vib:]


def mode_velocities(atoms, modes: np.ndarray, temperature_K: float, seed: int = 0) -> np.ndarray:
    """ASE velocities (N, 3) with kinetic energy k_B T in each of ``modes`` (K, N, 3), random signs."""
    rng = np.random.default_rng(seed)
    masses = atoms.get_masses()[:, None]
    velocities = np.zeros((len(atoms), 3))
    for mode in modes:
        scale = np.sqrt(2.0 * BOLTZMANN_EV_PER_K * temperature_K / float((masses * mode**2).sum()))
        velocities += rng.choice([-1.0, 1.0]) * scale * mode
    return velocities


def dipole_trajectory(atoms, steps: int, timestep_fs: float, progress: bool = False) -> np.ndarray:
    """NVE velocity Verlet of ``atoms`` (with its velocities and calculator) for ``steps``
    steps; returns the system dipole (steps, 3) e·Å after each step."""
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from tqdm import tqdm

    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    dipoles = np.zeros((steps, 3))
    for k in tqdm(range(steps), desc="gas-phase MD", unit="step", disable=not progress):
        dynamics.run(1)
        dipoles[k] = atoms.calc.results["dipole"]
    return dipoles


def relaxed(atoms, fmax_eV_per_A: float = 1e-4, steps: int = 200, logfile: Optional[str] = None):
    """``atoms`` relaxed in place with BFGS to ``fmax_eV_per_A``; returns it."""
    from ase.optimize import BFGS

    if not BFGS(atoms, logfile=logfile).run(fmax=fmax_eV_per_A, steps=steps):
        raise RuntimeError(f"BFGS did not reach fmax {fmax_eV_per_A} eV/Å in {steps} steps")
    return atoms
