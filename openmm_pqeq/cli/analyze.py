"""``openmm-pqeq analyze``: tables, plots and a summary of an ``openmm-pqeq md`` output folder."""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """\
Analyse what `openmm-pqeq md` (and its PQEqReporter) wrote into OUTPUT_DIR: charges.txt,
shells.txt, field.csv, thermo.csv, trajectory.dcd, final.pdb.  Writes into OUTPUT_DIR/analysis
(or --destination), each as a CSV table and a PNG plot:

  polarization          P(t) = M·n/V along the field direction (e/Å²) and the applied field
  orientation           per frame: mean molecular dipole (D) and <cos θ> with the field
  dipole_distribution   distribution of molecular dipole magnitudes (D); molecules are made
                        whole by minimum image, dipoles include the PQEq shells (shells.txt)
  ir_spectrum           IR spectrum from the dipole autocorrelation (harmonic quantum
                        correction by default: I(ω) ∝ β ω² ∫ C(t) w(t) cos ωt dt)
  charges               mean / min / max charge of each element per frame (e)
  rdf                   O–O g(r) (periodic water)

and summary.json: mean polarization with and without field (block errors), the dielectric
constant from dipole fluctuations (field-free frames) or linear response (constant field),
the susceptibility at the drive frequency (time-dependent field), <cos θ>, the mean
molecular dipole, IR peak positions, the first g(r) peak.  Short runs give noisy numbers:
the dielectric constant of water needs hundreds of ps (see the README, Analysis).

example:
  openmm-pqeq md --field-protocol sin:amplitude=0.1,frequency_THz=2,axis=z --output ac-output
  openmm-pqeq analyze ac-output --skip-ps 0.1
"""


def add_parser(subparsers) -> None:
    from ..analysis.report import IR_FRAMES
    from ..analysis.spectra import CORRECTIONS, WINDOWS

    p = subparsers.add_parser("analyze", help="polarization, dipoles, IR spectrum, charges of an md output folder",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output_dir", metavar="OUTPUT_DIR", help="folder written by `openmm-pqeq md`")
    p.add_argument("--destination", help="where to write the results (default: OUTPUT_DIR/analysis)")
    p.add_argument("--direction", nargs=3, type=float, metavar=("X", "Y", "Z"),
                   help="direction of P and cos θ (default: the field's, else z)")
    p.add_argument("--skip-ps", type=float, default=0.0, help="leave out the first ps of the frames (default: 0)")
    p.add_argument("--temperature", type=float, help="K, for ε and the IR correction (default: mean of thermo.csv)")
    p.add_argument("--blocks", type=int, default=5, help="blocks for the statistical errors (default: 5)")
    p.add_argument("--ir-frames", choices=IR_FRAMES, default="field",
                   help="frames of the IR spectrum: with the field on (default; all frames when there are "
                        "fewer than 8), without it, or all")
    p.add_argument("--ir-max-lag-ps", type=float, help="correlation length: resolution 1/(2 T) (default: a third "
                                                       "of the frames)")
    p.add_argument("--ir-window", choices=WINDOWS, default="hann", help="window over the lags (default: hann)")
    p.add_argument("--ir-correction", choices=CORRECTIONS, default="harmonic",
                   help="quantum correction factor (default: harmonic)")
    p.add_argument("--ir-max-wavenumber", type=float, default=4500.0, help="upper end of the spectrum, cm⁻¹")
    p.add_argument("--no-rdf", action="store_true", help="skip the O–O g(r)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.report import AnalysisOptions, analyze_run

    options = AnalysisOptions(direction=args.direction, skip_ps=args.skip_ps, ir_frames=args.ir_frames,
                              ir_max_lag_ps=args.ir_max_lag_ps, ir_window=args.ir_window,
                              ir_correction=args.ir_correction, ir_max_wavenumber_cm=args.ir_max_wavenumber,
                              temperature_K=args.temperature, blocks=args.blocks, rdf=not args.no_rdf)
    summary = analyze_run(args.output_dir, args.destination, options, progress=not args.quiet)
    if not args.quiet:
        print(json.dumps(summary, indent=1))
    return 0
