"""``openmm-pqeq fit-pqeq``: refine per-element PQEq parameters against DFT response data."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Refine per-element PQEq parameters (electronegativity chi, hardness J, Gaussian radius R and
shell spring K_s, each inside smooth bounds around the tabulated value) against DFT response data
from `openmm-pqeq label-response`: dipoles, polarizability tensors (PQEq's analytic response),
energy changes under uniform fields, electrostatic potentials and, for data labelled with
forces, atomic polar tensors dF/dE (finite fields), with weights.  The PQEq solves use the
charge constraints of `charge_constraint` (one total charge, or one neutral group per molecule).
The structures are split by family with a seed (plus `test_families`, always in the test split);
the test split is never used for fitting, only reported.

Writes the refined set as JSON (every element of the starting set, the fitted entries replaced,
with provenance, the configuration, per-split metrics of the tabulated and refined sets, and the
loss history).  To ship it as a named set, copy it to openmm_pqeq/data/ (pqeq_refined.json,
pqeq_water.json, pqeq_water_aniso.json; see README, "Refining PQEq parameters").

CONFIG is a YAML file; every key is optional (see examples/fit_pqeq.yaml):
  data: response extxyz (or a list) start: tabulated set (reaxnet)
  trainable: {chi: all, J: all, R: all, Ks: all, bounds: {chi: 2.0, J: 2.0, R: 1.5, Ks: 5.0}}
    anisotropic shell springs K_i = K_s (I + sum_b a g rb rb^T) (global transfer):
    {Ks_aniso: [O:H, H:O] or all}, bounds {Ks_aniso: 0.45}
  weights: {dipole: 1, polarizability: 1, field_energy: 1, esp: 0.5, apt: 0}
  scales: {dipole: 0.1 (D), polarizability: 1 (bohr^3), field_energy: 2 (meV), esp: 0.1 (V), apt: 0.05 (e)}
  charge_constraint: {rule: total} or {rule: molecules, bond_factor: 1.3}
  test_families: [names always in the test split]
  per_molecule: [targets whose errors are divided by the number of molecules]
  kind_weights: {kind: weight of its structures, default 1}
  regularization, test_fraction, split_seed, optimizer (adam|lbfgs), lr, epochs, output, name
  charge_transfer: global | split (bond hardnesses per element: trainable {kappa: all}; per pair:
    {kappa_pairs: [C-H, ...]}; their bond-length slope: {kappa_slope: true} (one shift of all),
    {kappa_slope_pairs: [C-C, ...]} (per pair); bonded shell springs K_s,i = K_s exp(sum_b c g):
    {Ks_bonds: [O:C, ...] or all}), transfer: {element_hardness, combination, hardness, onset,
    cutoff, length_slope (1/A), pair_slope, shell_bonds}
  kappa_prior: pull of the free bond hardnesses toward one common value (x sum (ln k - mean)^2)

examples:
  openmm-pqeq fit-pqeq examples/fit_pqeq.yaml          # pqeq-refined (molecules and ions)
  openmm-pqeq fit-pqeq examples/fit_pqeq_water.yaml    # pqeq-water (water, one group per molecule)
  openmm-pqeq fit-pqeq examples/fit_pqeq_water_aniso.yaml  # pqeq-water-aniso (the same, anisotropic shells)
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("fit-pqeq", help="refine PQEq parameters against DFT response data",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="YAML configuration")
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p.add_argument("--output", default=None, help="override the output JSON path")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT.checkpoint.pt (written after every epoch)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this much wall time at an epoch boundary (checkpoint kept; continue with --resume)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..fit.pqeq_fit import FitConfig, fit

    config = FitConfig.from_yaml(args.config)
    if args.epochs is not None:
        config.epochs = args.epochs
    if args.output is not None:
        config.output = args.output
    result = fit(config, progress=not args.no_progress, resume=args.resume, max_minutes=args.max_minutes)
    if result is None:
        print(f"not finished: checkpoint {config.output}.checkpoint.pt; rerun with --resume")
        return 0
    print(f"wrote {config.output}")
    rows = [("polarizability_iso_mae_au", "alpha_iso MAE (a.u.)"), ("dipole_magnitude_mae_debye", "|mu| MAE (D)"),
            ("field_energy_mae_meV", "field energy MAE (meV)"), ("esp_rmse_V", "ESP RMSE (V)"),
            ("apt_mae_e", "APT MAE (e)")]
    tabulated, refined = result["metrics"]["tabulated"]["test"], result["metrics"]["refined"]["test"]
    print(f"{'test split':26s} {'tabulated':>10s} {'refined':>10s}")
    for key, label in rows:
        if key in refined:
            print(f"{label:26s} {tabulated[key]:10.3f} {refined[key]:10.3f}")
    for kind, values in refined.get("by_kind", {}).items():
        print(f"  {kind} ({values['n_structures']}): |mu| {100 * values['dipole_magnitude_relative_mae']:.1f} %, "
              f"alpha_iso {100 * values['polarizability_iso_relative_mae']:.1f} % (relative MAE)")
    print(json.dumps(result["provenance"]["free"]))
    return 0
