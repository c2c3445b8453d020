"""Everything ``openmm-pqeq analyze`` writes for one ``openmm-pqeq md`` output folder.

Each quantity becomes a table (CSV) and a plot (PNG) in the destination folder, and the
numbers that sum it up go to ``summary.json``:

- ``polarization``: P(t) along the field direction (e/Å²) with the applied field (V/Å);
- ``orientation``: per frame, the mean molecular dipole (D) and ⟨cos θ⟩ with the field direction;
- ``dipole_distribution``: the distribution of molecular dipole magnitudes (D);
- ``ir_spectrum``: the IR spectrum of the system dipole (:mod:`.spectra`);
- ``charges``: per frame, the mean, minimum and maximum charge of each element (e);
- ``rdf``: the O–O g(r) when the run has oxygens and a periodic box.

Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .._atomic import atomic_path, atomic_write_text
from ..units import E_ANGSTROM_TO_DEBYE, PS_TO_FS, VACUUM_PERMITTIVITY_E_PER_V_A
from .correlation import block_average, integrated_correlation_time
from .dielectric import dielectric_fluctuation, dielectric_linear_response, fluctuation_run_length
from .dipoles import dipole_distribution, molecular_dipoles, orientation_cosines, polarization, unit_vector
from .rdf import first_peak, max_rdf_range_A, oxygen_rdf
from .run import MDRun, load_md_run
from .spectra import ir_spectrum, spectrum_peaks

IR_FRAMES = ("field", "no-field", "all")


@dataclass
class AnalysisOptions:
    """Options of :func:`analyze_run` (units in the names)."""

    direction: Optional[Sequence[float]] = None  # default: the field's direction, else z
    skip_ps: float = 0.0
    ir_frames: str = "field"
    ir_max_lag_ps: Optional[float] = None
    ir_window: str = "hann"
    ir_correction: str = "harmonic"
    ir_max_wavenumber_cm: float = 4500.0
    temperature_K: Optional[float] = None  # default: the mean of thermo.csv
    blocks: int = 5
    rdf: bool = True


def write_table(path: Path, columns: Dict[str, np.ndarray]) -> None:
    """CSV with one header line of column names (units in the names)."""
    data = np.column_stack([np.asarray(v, dtype=float) for v in columns.values()])
    with atomic_path(path) as temporary:
        np.savetxt(temporary, data, delimiter=",", header=",".join(columns), comments="", fmt="%.8g")


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png")
    plt.close(fig)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 3.6), dpi=110)


def _field_frames(run: MDRun, which: str) -> np.ndarray:
    """Boolean mask (F,) of the frames with the field on / off / all (all when unknown)."""
    if which not in IR_FRAMES:
        raise ValueError(f"frames {which!r}; options are {', '.join(IR_FRAMES)}")
    if run.field_V_per_A is None or which == "all":
        return np.ones(run.frames, dtype=bool)
    on = np.linalg.norm(run.field_V_per_A, axis=1) > 0
    chosen = on if which == "field" else ~on
    return chosen if chosen.sum() >= 8 else np.ones(run.frames, dtype=bool)


def analyze_run(output_dir: Union[str, Path], destination: Optional[Union[str, Path]] = None,
                options: Optional[AnalysisOptions] = None, progress: bool = False) -> dict:
    """Analyse an ``openmm-pqeq md`` folder; write tables, plots and ``summary.json`` into
    ``destination`` (default ``OUTPUT_DIR/analysis``) and return the summary."""
    from tqdm import tqdm

    options = options or AnalysisOptions()
    run = load_md_run(output_dir)
    keep = run.time_ps >= run.time_ps[0] + options.skip_ps
    if keep.sum() < 8:
        raise ValueError(f"only {int(keep.sum())} frames after skipping {options.skip_ps} ps; at least 8 are needed")
    _select(run, keep)
    out = Path(destination) if destination is not None else Path(output_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    direction = _direction(run, options.direction)
    temperature = options.temperature_K or run.temperature_K
    steps = ["polarization", "molecular dipoles", "IR spectrum", "charges"] + (["g(r)"] if options.rdf else [])
    bar = tqdm(steps, desc="analyze", unit="part", disable=not progress)
    summary: dict = {"output_dir": str(output_dir), "frames": run.frames, "frame_ps": run.frame_ps,
                     "direction": direction.tolist(), "temperature_K": temperature, "options": asdict(options),
                     "files": []}
    for part in bar:
        bar.set_postfix_str(part)
        if part == "polarization":
            summary["polarization"] = _polarization(run, direction, temperature, options, out)
        elif part == "molecular dipoles":
            summary["molecular_dipoles"] = _molecular(run, direction, options, out)
        elif part == "IR spectrum":
            summary["ir_spectrum"] = _ir(run, temperature, options, out)
        elif part == "charges":
            summary["charges"] = _charges(run, out)
        else:
            summary["rdf"] = _rdf(run, out)
    summary["files"] = sorted({p.name for p in out.iterdir() if not p.name.startswith(".")} | {"summary.json"})
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


def _select(run: MDRun, keep: np.ndarray) -> None:
    for name in ("step", "time_ps", "dipole_eA", "charges_e", "iterations", "converged", "shell_dipoles_eA",
                 "field_V_per_A", "positions_A", "cell_A"):
        value = getattr(run, name)
        if value is not None:
            setattr(run, name, value[keep])
    if run.trajectory is not None:
        run.trajectory = run.trajectory[np.nonzero(keep)[0]]


def _direction(run: MDRun, direction: Optional[Sequence[float]]) -> np.ndarray:
    if direction is not None:
        return unit_vector(direction)
    if run.field_V_per_A is not None:
        strongest = run.field_V_per_A[np.argmax(np.linalg.norm(run.field_V_per_A, axis=1))]
        if np.linalg.norm(strongest) > 0:
            return unit_vector(strongest)
    return np.array([0.0, 0.0, 1.0])


def _polarization(run: MDRun, direction, temperature, options: AnalysisOptions, out: Path) -> dict:
    if run.volume_A3 is None:
        raise ValueError("the polarization needs a periodic run (trajectory.dcd and final.pdb with a box)")
    p = polarization(run.dipole_eA, run.volume_A3, direction)
    field = np.zeros(run.frames) if run.field_V_per_A is None else run.field_V_per_A @ direction
    write_table(out / "polarization.csv", {"time_ps": run.time_ps, "polarization_e_per_A2": p,
                                            "field_V_per_A": field})
    fig, ax = _figure()
    ax.plot(run.time_ps, p * 1e3, color="C0", lw=1.2)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("P along field (10⁻³ e/Å²)", color="C0")
    if np.any(field != 0):
        twin = ax.twinx()
        twin.plot(run.time_ps, field, color="C1", lw=1.0, alpha=0.8)
        twin.set_ylabel("field (V/Å)", color="C1")
    ax.set_title("Polarization and applied field")
    _save_figure(fig, out / "polarization.png")
    result: dict = {}
    off = np.abs(field) == 0
    constant_on = (~off).sum() >= 2 * options.blocks and np.ptp(field[~off]) < 1e-12 * max(np.abs(field).max(), 1.0)
    for name, mask in (("without_field", off), ("with_field", ~off)):
        if mask.sum() >= 2 * options.blocks:
            mean, error = block_average(p[mask], options.blocks)
            result[f"mean_{name}_e_per_A2"], result[f"error_{name}_e_per_A2"] = mean, error
    if off.sum() >= 2 * options.blocks and temperature:
        estimate = dielectric_fluctuation(run.dipole_eA[off], float(run.volume_A3[off].mean()), temperature,
                                          options.blocks, run.frame_ps)
        result["dielectric_fluctuation"] = estimate.as_dict()
        result["dielectric_fluctuation"]["run_ps_for_10_percent"] = fluctuation_run_length(
            max(estimate.correlation_ps, run.frame_ps), 0.1)
    if constant_on:
        baseline = result.get("mean_without_field_e_per_A2", 0.0)
        result["dielectric_linear_response"] = dielectric_linear_response(
            p[~off], float(field[~off][0]), baseline, options.blocks, run.frame_ps).as_dict()
    elif (~off).any():
        result["response_at_drive"] = _drive_response(run.time_ps[~off], p[~off], field[~off])
    return result


def _sinusoid_basis(time_ps, frequency_THz) -> np.ndarray:
    phase = 2 * np.pi * frequency_THz * time_ps
    return np.stack([np.ones_like(time_ps), np.sin(phase), np.cos(phase)], axis=1)


def _drive_response(time_ps, p, field) -> dict:
    """Susceptibility at the drive frequency of a time-dependent field: P and E fitted by
    least squares to c + s sin ωt + k cos ωt at the field's dominant frequency (refined around
    its FFT peak); χ = P̂/(ε₀Ê) with the complex amplitudes s + ik, so χ' is the in-phase
    response and χ'' (the absorbing part) the lagging one.  Meaningful for a sinusoidal drive
    in the linear regime; empty when the field has no oscillating part."""
    if field.size < 8 or np.ptp(field) == 0:
        return {}
    spectrum = np.abs(np.fft.rfft(field - field.mean()))
    frequencies = np.fft.rfftfreq(field.size, d=float(np.mean(np.diff(time_ps))))
    coarse = float(frequencies[np.argmax(spectrum[1:]) + 1])
    step = float(frequencies[1])
    candidates = np.linspace(max(coarse - step, 0.1 * step), coarse + step, 401)
    residuals = [np.linalg.lstsq(_sinusoid_basis(time_ps, f), field, rcond=None)[1].sum() for f in candidates]
    drive = float(candidates[int(np.argmin(residuals))])
    basis = _sinusoid_basis(time_ps, drive)
    (_, s_field, k_field), *_ = np.linalg.lstsq(basis, field, rcond=None)
    (_, s_p, k_p), *_ = np.linalg.lstsq(basis, p, rcond=None)
    field_complex, p_complex = complex(s_field, k_field), complex(s_p, k_p)
    chi = p_complex / field_complex / VACUUM_PERMITTIVITY_E_PER_V_A
    return {"drive_THz": drive, "field_amplitude_V_per_A": abs(field_complex),
            "polarization_amplitude_e_per_A2": abs(p_complex), "chi_real": chi.real, "chi_imag": -chi.imag}


def _molecular(run: MDRun, direction, options: AnalysisOptions, out: Path) -> dict:
    if run.positions_A is None:
        raise ValueError("molecular dipoles need trajectory.dcd and final.pdb in the output folder")
    mu = molecular_dipoles(run.positions_A, run.charges_e, run.molecules, run.cell_A, run.shell_dipoles_eA)
    magnitude_D = np.linalg.norm(mu, axis=-1) * E_ANGSTROM_TO_DEBYE
    cosines = orientation_cosines(mu, direction)
    write_table(out / "orientation.csv", {"time_ps": run.time_ps, "mean_dipole_D": magnitude_D.mean(1),
                                           "mean_cos_theta": cosines.mean(1)})
    centres, density = dipole_distribution(mu * E_ANGSTROM_TO_DEBYE, bins=40)
    write_table(out / "dipole_distribution.csv", {"dipole_D": centres, "probability_per_D": density})
    fig, ax = _figure()
    ax.plot(centres, density, color="C0")
    ax.set_xlabel("molecular dipole (D)")
    ax.set_ylabel("probability density (1/D)")
    ax.set_title("Molecular dipoles" + ("" if run.shell_dipoles_eA is not None else " (charges only, no shells)"))
    _save_figure(fig, out / "dipole_distribution.png")
    fig, ax = _figure()
    ax.plot(run.time_ps, cosines.mean(1), color="C2")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("⟨cos θ⟩ with the field direction")
    ax.axhline(0.0, color="0.6", lw=0.8)
    _save_figure(fig, out / "orientation.png")
    mean_cos, error_cos = block_average(cosines.mean(1), options.blocks)
    return {"includes_shells": run.shell_dipoles_eA is not None, "molecules": int(mu.shape[1]),
            "mean_dipole_D": float(magnitude_D.mean()), "std_dipole_D": float(magnitude_D.std()),
            "mean_cos_theta": mean_cos, "error_cos_theta": error_cos,
            "cos_theta_correlation_frames": integrated_correlation_time(cosines.mean(1))
            if np.ptp(cosines.mean(1)) > 0 else None}


def _ir(run: MDRun, temperature, options: AnalysisOptions, out: Path) -> dict:
    frames = _field_frames(run, options.ir_frames)
    spectrum = ir_spectrum(run.dipole_eA[frames], run.frame_ps * PS_TO_FS, temperature or 300.0, options.ir_max_lag_ps,
                           options.ir_window, options.ir_correction, max_wavenumber_cm=options.ir_max_wavenumber_cm)
    write_table(out / "ir_spectrum.csv", {"wavenumber_cm": spectrum.wavenumber_cm, "intensity": spectrum.intensity})
    fig, ax = _figure()
    ax.plot(spectrum.wavenumber_cm, spectrum.intensity, color="C3", lw=1.2)
    ax.set_xlim(0, options.ir_max_wavenumber_cm)
    ax.set_xlabel("wavenumber (cm⁻¹)")
    ax.set_ylabel("α(ω)n(ω) (normalised)")
    ax.set_title(f"IR spectrum ({spectrum.correction} correction, {spectrum.window} window, "
                 f"{spectrum.resolution_cm:.0f} cm⁻¹ sampling)", fontsize=9)
    _save_figure(fig, out / "ir_spectrum.png")
    return {"frames": int(frames.sum()), "resolution_cm": spectrum.resolution_cm, "max_lag_ps": spectrum.max_lag_ps,
            "window": spectrum.window, "correction": spectrum.correction,
            "peaks_cm": spectrum_peaks(spectrum, min_height=0.1)[:6].round(1).tolist()}


def _charges(run: MDRun, out: Path) -> dict:
    elements = run.elements if run.elements is not None else np.array(["atom"] * run.charges_e.shape[1])
    columns: Dict[str, np.ndarray] = {"time_ps": run.time_ps}
    result: Dict[str, dict] = {}
    fig, ax = _figure()
    for k, element in enumerate(sorted(set(elements))):
        q = run.charges_e[:, elements == element]
        columns[f"{element}_mean_e"], columns[f"{element}_min_e"], columns[f"{element}_max_e"] = (
            q.mean(1), q.min(1), q.max(1))
        ax.plot(run.time_ps, q.mean(1), color=f"C{k}", label=element)
        ax.fill_between(run.time_ps, q.min(1), q.max(1), color=f"C{k}", alpha=0.2)
        result[str(element)] = {"mean_e": float(q.mean()), "std_e": float(q.std())}
    write_table(out / "charges.csv", columns)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("charge (e): mean, min–max")
    ax.legend(frameon=False)
    _save_figure(fig, out / "charges.png")
    result["solver_iterations_mean"] = float(run.iterations.mean())
    result["all_converged"] = bool(run.converged.all())
    return result


def _rdf(run: MDRun, out: Path) -> Optional[dict]:
    if run.trajectory is None or run.cell_A is None or "O" not in set(run.elements):
        return None
    r, g = oxygen_rdf(run.trajectory, r_max_A=min(8.0, 0.99 * max_rdf_range_A(run.cell_A)), bin_width_A=0.05)
    write_table(out / "rdf.csv", {"r_A": r, "g_OO": g})
    fig, ax = _figure()
    ax.plot(r, g, color="C4")
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g_OO(r)")
    _save_figure(fig, out / "rdf.png")
    position, height = first_peak(r, g, r_min_A=2.0)
    return {"first_peak_A": position, "first_peak_height": height, "r_max_A": float(r[-1] + 0.025)}
