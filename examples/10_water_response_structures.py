"""The structures of the water response set (examples/data/water_response_pbe.extxyz).

Monomers in several geometries, gas-phase clusters of 2–6 molecules and clusters of 2–6
molecules cut out of liquid water (from the liquid cut-outs of examples/data/water_bulk_pbe.extxyz),
all neutral and without field; see :mod:`openmm_pqeq.data_generation.water_response`.  They are
then labelled with PySCF (PBE/def2-SVPD, the settings of the training data) with dipoles,
finite-field polarizabilities, field energies, the ESP and the forces at every field::

    python examples/10_water_response_structures.py water_response_structures.extxyz
    OMP_NUM_THREADS=1 openmm-pqeq label-response --input water_response_structures.extxyz --forces \\
        --field-step 0.1 examples/data/water_response_pbe.extxyz
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="extxyz file of the unlabelled structures")
    parser.add_argument("--liquid", default=str(HERE / "data" / "water_bulk_pbe.extxyz"),
                        help="clusters cut out of liquid water, the source of the liquid kind")
    parser.add_argument("--seed", type=int, default=2030)
    args = parser.parse_args()

    import ase.io

    from openmm_pqeq.data_generation.water_response import water_response_structures

    liquid = ase.io.read(args.liquid, ":")
    for atoms in liquid:
        atoms.calc = None
    frames = water_response_structures(liquid, seed=args.seed)
    ase.io.write(args.output, frames, format="extxyz")
    kinds = {}
    for atoms in frames:
        key = (atoms.info["kind"], atoms.info["n_molecules"])
        kinds[key] = kinds.get(key, 0) + 1
    print(f"wrote {len(frames)} structures ({sum(len(a) for a in frames)} atoms) to {args.output}: "
          + ", ".join(f"{kind} {n}: {count}" for (kind, n), count in sorted(kinds.items())))


if __name__ == "__main__":
    main()
