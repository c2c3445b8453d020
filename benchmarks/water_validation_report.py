"""Report of the liquid-water validation (:mod:`water_validation`): what each run folder
measured, the results JSON and one plot per item.

Reads the stages written by ``water_validation.py run`` and ``polarizability`` and writes
``water_validation.json`` and ``water_validation_*.png`` (default ``benchmarks/results/``):

- per stage: temperature, molecular dipoles (D), ⟨cos θ⟩ along z, the polarization along z
  (e/Å²), the density (g/cm³), proton transfer and dissociation, each with a block error
  (5 blocks; honest only where a block is longer than the correlation time, which the
  correlation times in the JSON show);
- ``nvt``: the O–O g(r) (mdtraj) and its first peak; ε from the dipole fluctuations, ε∞ added
  (module docstring of :mod:`water_validation`), and the run it needs for a 10 % error;
- ``field-E``: the apparent ε(E) = 1 + (⟨P⟩ − ⟨P⟩₀)/(ε₀ E), ⟨P⟩₀ the zero-field mean of ``nvt``.

    python benchmarks/water_validation.py report --run retrained=runs/wv --run water-demo-v1=runs/wv-v1
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from water_validation import (DENSITY_G_CM3, DISSOCIATION_OH_A, EQUILIBRATION_FRICTION_PER_PS, FRICTION_PER_PS,
                              HYDROGEN_MASS, REFERENCES, REQUESTED, RESULTS,
                              TEMPERATURE_K, _write_json, density_g_cm3, hydrogen_oxygen_distances, load_frames,
                              production, water_topology)


def _trajectory(frames, keep, topology):
    import mdtraj

    from openmm_pqeq.units import ANGSTROM_TO_NM

    trajectory = mdtraj.Trajectory(frames["positions_A"][keep] * ANGSTROM_TO_NM, mdtraj.Topology.from_openmm(topology))
    trajectory.unitcell_vectors = frames["box_A"][keep] * ANGSTROM_TO_NM
    return trajectory


def chemistry(frames, keep, n_molecules: int) -> Dict:
    """Proton transfer (an H closer to a foreign O than to its own) and dissociation (an O–H bond
    longer than :data:`DISSOCIATION_OH_A`) over the frames ``keep``; molecules are O, H, H in
    topology order.  Counts: (H, frame) pairs and frames with at least one; per-frame longest
    O–H bond and shortest intermolecular O···H (Å)."""
    positions = frames["positions_A"][keep].astype(float)
    boxes = frames["box_A"][keep]
    transferred, dissociated = [], []
    oh_max, foreign_min = [], []
    for x, box in zip(positions, boxes):
        bonded, r = hydrogen_oxygen_distances(x[:3 * n_molecules], box)
        transferred.append(int((r.min(1) < bonded).sum()))
        dissociated.append(int((bonded > DISSOCIATION_OH_A).sum()))
        oh_max.append(float(bonded.max()))
        foreign_min.append(float(r.min()))
    return {"proton_transfer_h_frames": sum(transferred), "frames_with_proton_transfer": int(np.count_nonzero(
                transferred)), "dissociated_bond_frames": sum(dissociated),
            "frames_with_dissociated_bond": int(np.count_nonzero(dissociated)),
            "oh_max_A": max(oh_max), "intermolecular_oh_min_A": min(foreign_min), "frames": int(keep.sum()),
            "series": {"oh_max_A": oh_max, "intermolecular_oh_min_A": foreign_min}}


def analyse_run(folder: Path) -> Dict:
    """Everything measured in one run folder: per stage, and the polarizability."""
    from openmm_pqeq.analysis import (block_average, dielectric_fluctuation, dielectric_linear_response, first_peak,
                                      fluctuation_run_length, molecular_dipoles, orientation_cosines, oxygen_rdf)
    from openmm_pqeq.analysis.rdf import max_rdf_range_A
    from openmm_pqeq.units import E_ANGSTROM_TO_DEBYE, VACUUM_PERMITTIVITY_E_PER_V_A

    folder = Path(folder)
    polarizability_file = folder / "polarizability.json"
    polarizability = json.loads(polarizability_file.read_text()) if polarizability_file.is_file() else {}
    result: Dict = {"folder": str(folder), "stages": {}, "polarizability": polarizability, "series": {}}
    stages = sorted((p.name for p in folder.iterdir() if (p / "progress.json").is_file()),
                    key=lambda name: (name != "nvt", name))  # nvt first: the zero-field baseline
    for stage in stages:
        progress = json.loads((folder / stage / "progress.json").read_text())
        result.setdefault("model", progress["model"])
        frames = load_frames(folder, stage)
        if frames is None:
            continue
        keep = production(frames, progress)
        if keep.sum() < 5:  # too few for 5 blocks
            continue
        frame_ps = progress["sample_every"] * progress["timestep_fs"] / 1000
        n_molecules = frames["positions_A"].shape[1] // 3
        info = {"equilibration_ps": progress["settings"]["equilibration_ps"],
                "production_ps": float(keep.sum() * frame_ps), "frames": int(keep.sum()),
                "frame_ps": frame_ps, "steps": progress["steps"], "timestep_fs": progress["timestep_fs"],
                "seconds_per_step": progress.get("seconds_per_step"), "load_average": progress["load_average"],
                "hydrogen_mass_amu": progress["hydrogen_mass_amu"], "n_molecules": n_molecules,
                "charge_groups": progress.get("charge_groups"), "start": progress["settings"]["start"],
                "field_V_per_A": progress["settings"]["field_V_per_A"],
                "all_solves_converged": bool(frames["converged"].all()),
                "temperature_K": block_average(frames["temperature_K"][keep], 5)}
        dipoles = molecular_dipoles(frames["positions_A"][keep], frames["charges_e"][keep],
                                    np.arange(3 * n_molecules) // 3, frames["box_A"][keep],
                                    frames["shell_dipoles_eA"][keep])
        magnitudes = np.linalg.norm(dipoles, axis=-1) * E_ANGSTROM_TO_DEBYE
        cosines = orientation_cosines(dipoles).mean(1)
        info["molecular_dipole_D"] = {"mean": float(magnitudes.mean()), "std": float(magnitudes.std()),
                                      "block": block_average(magnitudes.mean(1), 5)}
        info["cos_theta"] = block_average(cosines, 5)
        volume = np.abs(np.linalg.det(frames["box_A"][keep]))
        polarization = frames["dipole_eA"][keep][:, 2] / volume
        info["polarization_e_per_A2"] = block_average(polarization, 5)
        info["chemistry"] = chemistry(frames, keep, n_molecules)
        series = info["chemistry"].pop("series")
        water = water_topology(n_molecules)
        density = density_g_cm3(water, volume)
        info["density_g_cm3"] = block_average(density, 5)
        time_ps = frames["step"][keep] * progress["timestep_fs"] / 1000
        result["series"][stage] = {"time_ps": time_ps, "density": density, "polarization": polarization,
                                   "cos_theta": cosines, **series}
        if stage in ("nvt",) or stage.startswith("liquid-"):
            r_max = min(8.0, max_rdf_range_A(frames["box_A"][keep]))
            r, g = oxygen_rdf(_trajectory(frames, keep, water), r_max_A=r_max)
            position, height = first_peak(r, g, r_min_A=2.0)
            # the same on g(r) averaged over 5 bins (0.25 Å): a flat or noisy first shell moves the
            # highest bin around, the smoothed maximum less so; onset: the first r where g(r) > 1
            smooth = np.convolve(g, np.ones(5) / 5, mode="same")
            smooth_position, smooth_height = first_peak(r, smooth, r_min_A=2.0)
            info["rdf_first_peak"] = {"position_A": position, "height": height, "bin_A": float(r[1] - r[0]),
                                      "smoothed_0.25A": {"position_A": smooth_position, "height": smooth_height},
                                      "onset_A": float(r[np.argmax(g > 1.0)])}
            result["series"][stage].update(r_A=r, g=g, dipoles_D=magnitudes.ravel())
        if stage == "nvt":
            estimate = dielectric_fluctuation(frames["dipole_eA"][keep], float(volume.mean()), TEMPERATURE_K,
                                              n_blocks=5, frame_ps=frame_ps).as_dict()
            epsilon_inf = polarizability.get("nvt", {}).get("epsilon_infinity")
            estimate["orientational_part"] = estimate["epsilon"] - 1.0
            estimate["epsilon_infinity"] = epsilon_inf
            if epsilon_inf is not None:
                estimate["epsilon"] += epsilon_inf - 1.0  # ε = ε∞ + fluctuation term (module docstring)
            tau_ps = max(estimate["correlation_ps"], frame_ps)
            estimate["run_ps_for_10_percent"] = fluctuation_run_length(tau_ps, 0.1)
            estimate["run_ps_for_10_percent_at_8_ps"] = fluctuation_run_length(8.0, 0.1)
            info["dielectric_fluctuation"] = estimate
        if info["field_V_per_A"] > 0:
            # baseline: the zero-field <P> of nvt (short runs keep part of their start's polarization);
            # its block error is added in quadrature
            baseline, baseline_error = result["stages"].get("nvt", {}).get("polarization_e_per_A2", (0.0, 0.0))
            estimate = dielectric_linear_response(polarization, info["field_V_per_A"], baseline, n_blocks=5,
                                                  frame_ps=frame_ps).as_dict()
            scale = 1.0 / (VACUUM_PERMITTIVITY_E_PER_V_A * info["field_V_per_A"])
            estimate["error"] = float(np.hypot(estimate["error"], baseline_error * scale))
            estimate["baseline_e_per_A2"] = [baseline, baseline_error]
            info["dielectric_linear_response"] = estimate
        result["stages"][stage] = info
    return result


# ---------------------------------------------------------------------- report
def _summary(stages: Dict, polarizability: Dict) -> Dict:
    """The headline numbers of one run (None where the stage is missing)."""
    nvt, npt = stages.get("nvt", {}), stages.get("npt", {})
    fields = {k: v for k, v in stages.items() if k.startswith("field-")}
    stability = [v["chemistry"] for k, v in fields.items() if v["field_V_per_A"] <= 0.3 + 1e-9]
    return {
        "rdf_first_peak": nvt.get("rdf_first_peak"),
        "density_g_cm3": npt.get("density_g_cm3"),
        "molecular_dipole_D": nvt.get("molecular_dipole_D", {}).get("block"),
        "polarizability_per_molecule_A3": {p["n_molecules"]: p["mean_A3"] for p in polarizability.values()},
        "molecular_dipole_D_by_size": {p["n_molecules"]: p["molecular_dipole_D"]["mean"]
                                       for p in polarizability.values()},
        "dielectric_fluctuation": ({k: nvt["dielectric_fluctuation"][k] for k in ("epsilon", "error",
                                                                               "epsilon_infinity", "correlation_ps")}
                                   if "dielectric_fluctuation" in nvt else None),
        "apparent_epsilon_by_field": {v["field_V_per_A"]: [v["dielectric_linear_response"]["epsilon"],
                                                           v["dielectric_linear_response"]["error"]]
                                      for v in fields.values()},
        "cos_theta_by_field": {v["field_V_per_A"]: v["cos_theta"] for v in [nvt, *fields.values()] if v},
        "chemistry_by_stage": {stage: {k: v["chemistry"][k] for k in ("frames_with_proton_transfer",
                                                                      "frames_with_dissociated_bond", "oh_max_A",
                                                                      "intermolecular_oh_min_A", "frames")}
                               for stage, v in stages.items()},
        "field_stability": {"ps_in_fields_up_to_0.3": sum(v["production_ps"] for v in fields.values()
                                                          if v["field_V_per_A"] <= 0.3 + 1e-9),
                            "frames_with_proton_transfer": sum(c["frames_with_proton_transfer"] for c in stability),
                            "frames_with_dissociated_bond": sum(c["frames_with_dissociated_bond"]
                                                                for c in stability),
                            "frames": sum(c["frames"] for c in stability),
                            "oh_max_A": max((c["oh_max_A"] for c in stability), default=None)},
    }


def _shortfalls(stages: Dict) -> List[str]:
    """Plain statements of where a run is shorter or smaller than the validation asks (:data:`REQUESTED`)."""
    notes = []
    nvt = stages.get("nvt")
    if nvt is None:
        notes.append("no NVT run: no g(r), no fluctuation dielectric constant")
    else:
        if nvt["production_ps"] < 10:
            notes.append(f"NVT production {nvt['production_ps']:.1f} ps after {nvt['equilibration_ps']} ps of "
                         "equilibration; asked: at least 10 ps")
        if nvt["n_molecules"] < 64:
            notes.append(f"{nvt['n_molecules']} molecules; asked: at least 64")
    fields = {k: v for k, v in stages.items() if k.startswith("field-")}
    in_fields = sum(v["production_ps"] + v["equilibration_ps"] for v in fields.values())
    if not fields:
        notes.append("no field runs: no field response, no stability check in fields")
    elif in_fields < 10:
        notes.append(f"{in_fields:.1f} ps in fields of {', '.join(str(v['field_V_per_A']) for v in fields.values())} "
                     "V/A in all (equilibration included); asked: at least 10 ps below 0.3 V/A")
    if "npt" in stages:
        notes.append(f"NPT {stages['npt']['production_ps']:.1f} ps after {stages['npt']['equilibration_ps']} ps: "
                     "the density of a 64-molecule box needs several times longer to converge")
    if nvt is not None and "dielectric_fluctuation" in nvt:
        needed = nvt["dielectric_fluctuation"]["run_ps_for_10_percent"]
        notes.append(f"dielectric constant: {nvt['production_ps']:.1f} ps of zero-field dipole fluctuations; a 10 % "
                     f"error needs about {needed:.0f} ps at the measured correlation time, about 530 ps at the 8 ps "
                     "of liquid water's collective dipole")
    return notes


def report(runs: List[Tuple[str, Path]], out: Path = RESULTS) -> Dict:
    """The results JSON and plots of the runs ``(label, folder)``; the first is the main one."""
    import matplotlib

    matplotlib.use("Agg")
    from bench_pqeq import machine

    out.mkdir(parents=True, exist_ok=True)
    analysed = {label: analyse_run(folder) for label, folder in runs}
    host = machine()
    host["node"] = platform.node()
    result: Dict = {"benchmark": "liquid-water validation (benchmarks/water_validation.py)",
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": host,
                    "integration": {"integrator": "LangevinMiddleIntegrator", "friction_per_ps": FRICTION_PER_PS,
                                    "equilibration_friction_per_ps": EQUILIBRATION_FRICTION_PER_PS,
                                    "equilibration_friction_note": "stages started from the relaxed box only",
                                    "temperature_K": TEMPERATURE_K, "hydrogen_mass_amu": HYDROGEN_MASS,
                                    "flexible_water": True,
                                    "platform": "OpenMM CPU, model as a TorchForce, 1 thread (long lane)"},
                    "requested": REQUESTED, "references": REFERENCES, "runs": {}}
    for label, run in analysed.items():
        result["runs"][label] = {"folder": run["folder"], "model": run.get("model"),
                                 "run_lengths_ps": {stage: {"equilibration": v["equilibration_ps"],
                                                            "production": v["production_ps"]}
                                                    for stage, v in run["stages"].items()},
                                 "shorter_than_asked": _shortfalls(run["stages"]),
                                 "summary": _summary(run["stages"], run["polarizability"]),
                                 "stages": run["stages"], "polarizability": run["polarizability"]}
    plots = _plots(analysed, out)
    result["plots"] = [str(p.relative_to(out.parent.parent)) if out.parent.parent in p.parents else str(p)
                       for p in plots]
    _write_json(out / "water_validation.json", result)
    return result


def _figure(plt):
    return plt.subplots(figsize=(5.6, 3.6), dpi=120)


def _save(plt, fig, path: Path) -> Path:
    from openmm_pqeq._atomic import atomic_path

    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary)
    plt.close(fig)
    return path


def _plots(analysed: Dict, out: Path) -> List[Path]:
    """One plot per item of the validation, for the runs that have it."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    from openmm_pqeq.units import VACUUM_PERMITTIVITY_E_PER_V_A

    made: List[Path] = []
    with_nvt = {label: run for label, run in analysed.items() if "r_A" in run["series"].get("nvt", {})}
    if with_nvt:  # O–O g(r)
        fig, ax = _figure(plt)
        for label, run in with_nvt.items():
            s = run["series"]["nvt"]
            ax.plot(s["r_A"], s["g"], label=f"{label}, NVT 300 K, {run['stages']['nvt']['production_ps']:.0f} ps")
        ax.plot([2.80], [2.57], "ko", label="experiment (X-ray): peak 2.80 Å, 2.57")
        ax.axhspan(3.0, 3.3, xmin=0.0, xmax=1.0, color="0.85", zorder=0, label="PBE AIMD peak height 3.0–3.3")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g_OO(r)")
        ax.legend(frameon=False, fontsize=7)
        made.append(_save(plt, fig, out / "water_validation_rdf.png"))

    with_dipoles = {label: (stage, run) for label, run in analysed.items()
                    for stage in ("liquid-64", "nvt") if "dipoles_D" in run["series"].get(stage, {})}
    if with_dipoles:  # molecular dipole distribution: nvt, or the 64-molecule liquid frames
        fig, ax = _figure(plt)
        for label, (stage, run) in with_dipoles.items():
            values = run["series"][stage]["dipoles_D"]
            ax.hist(values, bins=50, density=True, histtype="step",
                    label=f"{label} ({stage}, {run['stages'][stage]['production_ps']:.2f} ps): "
                          f"mean {values.mean():.2f} D")
        ax.axvspan(2.6, 3.0, color="C2", alpha=0.2, label="liquid, AIMD/experiment 2.6–3.0 D")
        ax.axvline(1.855, color="k", ls=":", label="gas phase, experiment 1.855 D")
        ax.set_xlabel("molecular dipole in the liquid (D)")
        ax.set_ylabel("probability density (1/D)")
        ax.legend(frameon=False, fontsize=7)
        made.append(_save(plt, fig, out / "water_validation_dipoles.png"))

    with_alpha = {label: run for label, run in analysed.items() if run["polarizability"]}
    if with_alpha:  # polarizability per molecule against the box size
        fig, ax = _figure(plt)
        for k, (label, run) in enumerate(with_alpha.items()):
            entries = sorted(run["polarizability"].values(), key=lambda p: p["n_molecules"])
            n = [p["n_molecules"] for p in entries]
            for rule, marker, text in (("molecules", "o-", "one group per molecule"), ("total", "s--",
                                                                                    "one total charge")):
                mean = [np.nan if p["mean_A3"][rule] is None else p["mean_A3"][rule] for p in entries]
                spread = [np.nan if p["std_A3"][rule] is None else p["std_A3"][rule] for p in entries]
                ax.errorbar(n, mean, yerr=spread,
                            fmt=marker, color=f"C{k}", capsize=3, label=f"{label}, {text}")
        ax.axhline(1.5, color="k", ls="--", label="DFT about 1.5 Å³")
        ax.set_xlabel("molecules in the periodic box")
        ax.set_ylabel("polarizability per molecule (Å³)")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.legend(frameon=False, fontsize=7)
        made.append(_save(plt, fig, out / "water_validation_polarizability.png"))

    with_npt = {label: run for label, run in analysed.items() if "npt" in run["series"]}
    if with_npt:  # density
        fig, ax = _figure(plt)
        for label, run in with_npt.items():
            s = run["series"]["npt"]
            mean, error = run["stages"]["npt"]["density_g_cm3"]
            ax.plot(s["time_ps"], s["density"], lw=0.8, label=f"{label}: {mean:.3f} ± {error:.3f} g/cm³")
        ax.axhline(DENSITY_G_CM3, color="k", ls="--", label=f"experiment {DENSITY_G_CM3}")
        ax.axhspan(1.0, 1.07, color="0.85", zorder=0, label="PBE-D3 AIMD 1.0–1.07")
        ax.set_xlabel("time (ps)")
        ax.set_ylabel("density (g/cm³), NPT 300 K, 1 bar")
        ax.legend(frameon=False, fontsize=7)
        made.append(_save(plt, fig, out / "water_validation_density.png"))

    field_runs = {label: run for label, run in analysed.items()
                  if any(k.startswith("field-") for k in run["stages"]) and "nvt" in run["stages"]}
    if field_runs:  # polarization and <cos theta> against the field
        fig, (ax_p, ax_c) = plt.subplots(1, 2, figsize=(9.0, 3.6), dpi=120)
        for k, (label, run) in enumerate(field_runs.items()):
            rows = sorted((v["field_V_per_A"], v) for s, v in run["stages"].items() if s == "nvt"
                          or s.startswith("field-"))
            fields = np.array([f for f, _ in rows])
            for ax, key in ((ax_p, "polarization_e_per_A2"), (ax_c, "cos_theta")):
                ax.errorbar(fields, [v[key][0] for _, v in rows], yerr=[v[key][1] for _, v in rows], fmt="o-",
                            color=f"C{k}", capsize=3, label=label)
            fluctuation = run["stages"]["nvt"].get("dielectric_fluctuation")
            if fluctuation:
                line = np.array([0.0, fields.max()])
                ax_p.plot(line, (fluctuation["epsilon"] - 1) * VACUUM_PERMITTIVITY_E_PER_V_A * line, ":",
                          color=f"C{k}", label=f"{label}: linear response, ε = {fluctuation['epsilon']:.0f} "
                                               "(fluctuations)")
        small = np.array([0.0, 0.05])
        ax_p.plot(small, (78.4 - 1) * VACUUM_PERMITTIVITY_E_PER_V_A * small, "k--",
                  label="linear response, ε = 78.4 (experiment)")
        ax_p.set_xlabel("field (V/Å)")
        ax_p.set_ylabel("polarization along E (e/Å²)")
        ax_c.axhline(1.0, color="0.6", lw=0.8)
        ax_c.set_xlabel("field (V/Å)")
        ax_c.set_ylabel("⟨cos θ⟩ of the molecular dipoles")
        for ax in (ax_p, ax_c):
            ax.legend(frameon=False, fontsize=7)
        made.append(_save(plt, fig, out / "water_validation_field_response.png"))

        fig, ax = _figure(plt)  # dielectric constant
        for k, (label, run) in enumerate(field_runs.items()):
            rows = sorted((v["field_V_per_A"], v["dielectric_linear_response"]) for s, v in run["stages"].items()
                          if s.startswith("field-"))
            ax.errorbar([f for f, _ in rows], [e["epsilon"] for _, e in rows], yerr=[e["error"] for _, e in rows],
                        fmt="o-", color=f"C{k}", capsize=3,
                        label=f"{label}: apparent ε(E) = 1 + (⟨P⟩ − ⟨P⟩₀)/(ε₀E)")
            fluctuation = run["stages"]["nvt"].get("dielectric_fluctuation")
            if fluctuation:
                ax.errorbar([0.0], [fluctuation["epsilon"]], yerr=[fluctuation["error"]], fmt="D", color=f"C{k}",
                            capsize=3, label=f"{label}: fluctuations, zero field")
        ax.axhline(78.4, color="k", ls="--", label="experiment 78.4 (298 K)")
        ax.axhspan(78.4 * 1.4, 78.4 * 1.6, color="0.85", zorder=0, label="PBE AIMD: at least 40 % high")
        ax.set_xlabel("field (V/Å)")
        ax.set_ylabel("static dielectric constant")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, fontsize=7)
        made.append(_save(plt, fig, out / "water_validation_dielectric.png"))

    if field_runs:  # chemical stability in fields
        fig, ax = _figure(plt)
        for k, (label, run) in enumerate(field_runs.items()):
            for j, stage in enumerate(sorted(s for s in run["stages"] if s.startswith("field-"))):
                s = run["series"][stage]
                t = s["time_ps"] - s["time_ps"][0]
                field = run["stages"][stage]["field_V_per_A"]
                ax.plot(t, s["oh_max_A"], lw=0.7, color=f"C{j}", ls="-" if k == 0 else ":",
                        label=f"{label}, {field} V/Å: longest O–H bond")
                ax.plot(t, s["intermolecular_oh_min_A"], lw=0.7, color=f"C{j}", ls="--" if k == 0 else ":")
        ax.axhline(DISSOCIATION_OH_A, color="k", lw=0.8, label=f"dissociation threshold {DISSOCIATION_OH_A} Å")
        ax.set_xlabel("time in the field (ps)")
        ax.set_ylabel("O–H distance (Å)")
        ax.set_title("solid: longest O–H bond; dashed: shortest intermolecular O···H", fontsize=8)
        ax.legend(frameon=False, fontsize=6)
        made.append(_save(plt, fig, out / "water_validation_chemistry.png"))
    return made

