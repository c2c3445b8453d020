"""``openmm-pqeq md``: field-driven MD of a periodic water box in OpenMM."""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """\
Run MD of a periodic water box with a PQEq model in OpenMM: equilibrate without field, run a
baseline, switch a uniform field on, run again.  Writes trajectory.dcd, final.pdb,
charges.txt (per-frame charges, dipole, solver statistics), thermo.csv and polarization.png
into OUTPUT_DIR.  The field is given in V/Å (OpenMM parameters pqeq_field_* hold V/nm).

The field of the last phase is constant (--field) or follows --field-protocol, updated
every --field-interval steps; field.csv records it.

A checkpoint (OUTPUT/checkpoint.json) is written every --checkpoint-interval steps; after a
crash or a kill, the same command with --resume continues the run.

examples:
  openmm-pqeq md --model water-demo --molecules 64 --field 0 0 0.25 --output demo-output
  openmm-pqeq md --model water-demo --molecules 64 --field 0 0 0.25 --output demo-output --resume
  openmm-pqeq md --field-protocol sin:amplitude=0.1,frequency_THz=2,axis=z --output ac-output

"""


def add_parser(subparsers) -> None:
    from ..fields import PROTOCOL_SYNTAX

    p = subparsers.add_parser("md", help="field-driven MD of a periodic water box in OpenMM",
                              description=DESCRIPTION, epilog=PROTOCOL_SYNTAX,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="water-demo", help="model file or shipped model name (default: water-demo)")
    p.add_argument("--molecules", type=int, default=64, help="number of water molecules (default: 64)")
    p.add_argument("--field", nargs=3, type=float, default=None, metavar=("EX", "EY", "EZ"),
                   help="field switched on in the last phase, V/Å (default: 0 0 0.25)")
    p.add_argument("--field-protocol", metavar="KIND:key=value,...",
                   help="time-dependent field of the last phase instead of --field (syntax below)")
    p.add_argument("--field-interval", type=int, default=1,
                   help="steps between updates of the field (default: 1)")
    p.add_argument("--temperature", type=float, default=300.0, help="temperature in K (default: 300)")
    p.add_argument("--timestep", type=float, default=0.5, help="time step in fs (default: 0.5)")
    p.add_argument("--equilibration-steps", type=int, default=100, help="steps before output starts (default: 100)")
    p.add_argument("--steps", type=int, default=100,
                   help="steps without field, and again with field (default: 100 each)")
    p.add_argument("--report-interval", type=int, default=10, help="steps between frames (default: 10)")
    p.add_argument("--platform", default="auto",
                   help="OpenMM platform: CUDA, CPU, Reference, ... (default: auto, CUDA when OpenMM has a working "
                        "CUDA platform, else CPU)")
    p.add_argument("--backend", default="torchforce", choices=["torchforce", "python"],
                   help="OpenMM force backend (default: torchforce; it runs on the platform's device)")
    p.add_argument("--device", default=None,
                   help="torch device of the model for --backend python and the charge reporter: cpu, cuda, "
                        "cuda:1 ... (default: the GPU when torch sees one, else cpu)")
    p.add_argument("--charge-groups", default="model", choices=["model", "molecules", "residues", "total"],
                   help="charge constraints: model (default: the rule the model was trained with; older model "
                        "files: one neutral group per molecule), molecules, residues, or total (one total charge)")
    p.add_argument("--seed", type=int, default=1, help="random seed for velocities and the thermostat")
    p.add_argument("--checkpoint-interval", type=int, default=None,
                   help="steps between checkpoints (OUTPUT/checkpoint.json), a multiple of --report-interval "
                        "(default: the multiple closest to 100)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run checkpointed in OUTPUT (give the same options); trajectory, charges "
                        "and thermo files continue without duplicated or missing frames")
    p.add_argument("--output", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..fields import parse_field_protocol
    from ..md import MDSettings, run_water_field_md

    if args.field is not None and args.field_protocol:
        raise ValueError("give --field (a constant field) or --field-protocol, not both")
    protocol = parse_field_protocol(args.field_protocol) if args.field_protocol else None
    field = (0.0, 0.0, 0.25) if args.field is None else tuple(args.field)
    settings = MDSettings(
        n_molecules=args.molecules, field_V_per_A=field, temperature_K=args.temperature,
        timestep_fs=args.timestep, equilibration_steps=args.equilibration_steps,
        steps_without_field=args.steps, steps_with_field=args.steps, report_interval=args.report_interval,
        platform=args.platform, backend=args.backend, device=args.device, seed=args.seed,
        charge_groups=args.charge_groups, field_protocol=protocol, field_interval=args.field_interval,
        checkpoint_interval=args.checkpoint_interval)
    summary = run_water_field_md(args.model, args.output, settings, progress=not args.quiet, resume=args.resume)
    print(json.dumps(summary, indent=1))
    return 0
