"""IR spectrum of one gas-phase water molecule from MD with a model, against the model's own
harmonic frequencies.

The molecule is relaxed (BFGS), its Hessian taken by central finite differences of the model's
forces (ase.vibrations), each vibrational mode given k_B T of kinetic energy (no rotation or
translation), and NVE velocity Verlet run with the model's dipole recorded every step; the
spectrum is :func:`openmm_pqeq.analysis.ir_spectrum` (Hann window, harmonic correction).
Writes a JSON report (peaks, Hessian frequencies, differences) and a plot.

    OMP_NUM_THREADS=2 python benchmarks/ir_water_gas.py --model water-demo --steps 4000 \\
        --output benchmarks/results/ir_water_gas.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench_pqeq import new_report, write_report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="water-demo", help="model file or shipped name (default water-demo)")
    parser.add_argument("--steps", type=int, default=4000, help="MD steps (default 4000)")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    parser.add_argument("--temperature", type=float, default=30.0, help="k_B T per mode, K (default 30)")
    parser.add_argument("--max-lag-ps", type=float, default=None, help="correlation length (default: half the run)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/ir_water_gas.json"))
    args = parser.parse_args(argv)

    from ase import Atoms

    from openmm_pqeq.analysis import ir_spectrum, spectrum_peaks
    from openmm_pqeq.analysis.vibrations import dipole_trajectory, mode_velocities, normal_modes, relaxed
    from openmm_pqeq.integrations.ase_calculator import PQEqCalculator

    started = time.time()
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.7572, 0.5865, 0], [-0.7572, 0.5865, 0]])
    atoms.calc = PQEqCalculator(args.model, groups=[0, 0, 0])
    relaxed(atoms)
    frequencies, modes = normal_modes(atoms)
    atoms.set_velocities(mode_velocities(atoms, modes, args.temperature))
    md_started = time.time()
    dipoles = dipole_trajectory(atoms, args.steps, args.timestep, progress=True)
    md_seconds = time.time() - md_started
    run_ps = args.steps * args.timestep / 1000.0
    lag = args.max_lag_ps if args.max_lag_ps is not None else 0.5 * run_ps
    spectrum = ir_spectrum(dipoles, args.timestep, args.temperature, max_lag_ps=lag)
    peaks = np.sort(spectrum_peaks(spectrum, min_height=0.02)[:3])
    labels = ("bend", "symmetric stretch", "antisymmetric stretch")
    lines = {}
    for label, reference in zip(labels, frequencies):
        nearest = float(peaks[np.argmin(np.abs(peaks - reference))]) if peaks.size else None
        lines[label] = {"hessian_cm": round(float(reference), 1), "md_peak_cm": None if nearest is None else
                        round(nearest, 1), "difference_cm": None if nearest is None else round(nearest - reference, 1)}
    report = new_report("IR spectrum of gas-phase water from MD vs the model's Hessian", argv, model=args.model,
                        steps=args.steps, timestep_fs=args.timestep, temperature_per_mode_K=args.temperature,
                        run_ps=run_ps, max_lag_ps=lag, resolution_cm=spectrum.resolution_cm,
                        window=spectrum.window, correction=spectrum.correction, lines=lines,
                        relaxed_positions_A=atoms.positions.round(5).tolist(),
                        md_seconds_per_step=md_seconds / args.steps)
    _plot(spectrum, frequencies, labels, args.output.with_suffix(".png"), args)
    for label, line in lines.items():
        print(f"{label}: Hessian {line['hessian_cm']} cm-1, MD peak {line['md_peak_cm']} cm-1")
    return write_report(report, started, args.output)


def _plot(spectrum, frequencies, labels, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=110)
    ax.plot(spectrum.wavenumber_cm, spectrum.intensity, color="C3", lw=1.2, label="MD dipole autocorrelation")
    for k, (frequency, label) in enumerate(zip(frequencies, labels)):
        ax.axvline(frequency, color="0.4", ls="--", lw=0.8, label="Hessian (harmonic) frequencies" if k == 0 else None)
    ax.set_xlim(0, 4500)
    ax.set_xlabel("wavenumber (cm⁻¹)")
    ax.set_ylabel("α(ω)n(ω) (normalised)")
    ax.set_title(f"Gas-phase water, {args.model}: {args.steps * args.timestep / 1000:.1f} ps NVE, "
                 f"{spectrum.resolution_cm:.0f} cm⁻¹ sampling", fontsize=9)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
