"""Second active-learning round of the water model: clusters cut out of the liquid-water
validation MD (``benchmarks/water_validation.py``) of a model, around the protons that moved.

The first retrained water model (pqeq-water, one neutral group per molecule, trained with the
distance rule's groups) shared and transferred protons in the liquid at 300 K without a field
(O–O first peak at 2.48 Å).  This script takes chosen sampled frames of that model's stages and
cuts three clusters out of each (``07_sample_bulk_cutouts.py``'s ``cut_cluster``): 5 molecules
around the donor of the hydrogen closest to a foreign oxygen, 4 around that oxygen, 4 around a
random molecule.  The atoms keep their molecules (O, H, H per molecule of the MD's Topology, the
``molecule`` column added by ``11_water_model_data.py``) and the stage's field::

    python examples/12_active_learning_from_validation.py runs/wv water_al2_cutouts.extxyz
    OMP_NUM_THREADS=1 openmm-pqeq label water_al2_cutouts.extxyz examples/data/water_al2_pbe.extxyz --workers 1
    python examples/11_water_model_data.py

The default frames are the steps of the first retrained model's run (``--frames`` to choose others):
the onset and the peaks of proton sharing in NVT, NPT and fields of 0.05 and 0.1 V/Å.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FRAMES = ("nvt:250,500,1200,1500,1550,1600,1850,1900,2050,2150,2550,2850,2900;npt:200,300,350,400,450,550;"
          "field-0.05:150,550,1000,1250,1800;field-0.1:400,700,800,950")


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="water_validation run folder (stages with frames_*.npz)")
    parser.add_argument("output", help="extxyz file of unlabelled clusters")
    parser.add_argument("--frames", default=FRAMES, help="stage:step,step;stage:... (default: the first round's)")
    parser.add_argument("--seed", type=int, default=2030)
    parser.add_argument("--origin", default="al2", help="prefix of each cluster's origin info key, ORIGIN:stage (default al2)")
    args = parser.parse_args()

    import ase.io

    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    from water_validation import hydrogen_oxygen_distances, load_frames

    bulk_cutouts = _module("bulk_cutouts", HERE / "07_sample_bulk_cutouts.py")
    rng = np.random.default_rng(args.seed)
    clusters = []
    for item in args.frames.split(";"):
        stage, steps = item.split(":")
        frames = load_frames(Path(args.folder), stage)
        if frames is None:
            raise SystemExit(f"{args.folder}/{stage}: no sampled frames")
        field = float(stage.split("-")[1]) if stage.startswith("field-") else 0.0
        for step in (int(s) for s in steps.split(",")):
            k = np.flatnonzero(frames["step"] == step)
            if not len(k):
                raise SystemExit(f"{stage}: no frame at step {step}")
            x, box = frames["positions_A"][k[0]], frames["box_A"][k[0]]
            n = len(x)
            symbols, residues = ["O", "H", "H"] * (n // 3), np.arange(n) // 3
            _, foreign = hydrogen_oxygen_distances(x, box)  # H rows in molecule order, two per molecule
            donor = int(np.argmin(foreign.min(axis=1))) // 2
            acceptor = int(np.argmin(foreign.min(axis=0)))
            for centre, size in ((donor, 5), (acceptor, 4), (int(rng.integers(n // 3)), 4)):
                atoms = bulk_cutouts.cut_cluster(x, box, symbols, residues, centre, size)
                atoms.info.update(field=np.array([0.0, 0.0, field]), md_step=step, origin=f"{args.origin}:{stage}",
                                  sample_index=len(clusters))
                clusters.append(atoms)
    ase.io.write(args.output, clusters, format="extxyz")
    print(f"wrote {len(clusters)} clusters to {args.output}")


if __name__ == "__main__":
    main()
