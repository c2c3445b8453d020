"""Training file of the shipped water-demo model: neutral frames of both PBE data sets.

Concatenates the neutral frames of ``examples/data/water_pbe.extxyz`` (gas-phase clusters;
the 28 H3O⁺/OH⁻ frames are left out, see below), every frame of
``examples/data/water_bulk_pbe.extxyz`` (clusters cut out of liquid water) and of
``examples/data/water_al_pbe.extxyz`` (active learning: clusters from failing MD of the model
trained without them, and proton-transfer scans) into ``examples/data/water_demo_train.extxyz``,
which ``examples/train_water_demo.yaml`` trains on.

Why the ions are left out: E0 has no total-charge input, so the energy of an ion relative to
neutral water rests on PQEq alone; with the reaxnet parameters that is off by ~0.5 eV/atom for
OH⁻, and these 28 frames then dominated the energy loss (test MAE 61 meV/atom against 7 for
the neutral frames) without teaching anything a neutral water box needs.

    python examples/08_water_demo_data.py
"""

from pathlib import Path

import ase.io

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    gas = [a for a in ase.io.read(DATA / "water_pbe.extxyz", ":") if int(a.info.get("charge", 0)) == 0]
    bulk = ase.io.read(DATA / "water_bulk_pbe.extxyz", ":")
    active = ase.io.read(DATA / "water_al_pbe.extxyz", ":")
    for name, part in (("water_pbe", gas), ("water_bulk_pbe", bulk), ("water_al_pbe", active)):
        for atoms in part:
            atoms.info["origin"] = name
    frames = gas + bulk + active
    ase.io.write(DATA / "water_demo_train.extxyz", frames, format="extxyz")
    print(f"wrote {len(frames)} frames ({len(gas)} gas-phase, {len(bulk)} liquid cut-outs, {len(active)} "
          f"active-learning) to {DATA / 'water_demo_train.extxyz'}")


if __name__ == "__main__":
    main()
