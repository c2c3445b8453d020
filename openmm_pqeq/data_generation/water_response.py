"""The water response set: monomers, gas-phase clusters and liquid cut-outs for fitting PQEq to water.

Structures (``ase.Atoms``, Å, centred at their atoms' mean position, neutral, no field; O first in
every molecule) for :func:`openmm_pqeq.data_generation.response.label_response`, which labels each
one with its dipole, polarizability, field energies, ESP and, with ``forces=True``, the forces at
zero field and at ±F along x, y, z (the atomic polar tensors ∂F/∂E follow by central
differences):

- ``monomer:eq``: the gas-phase geometry of the cluster sampler (O–H 0.970 Å, H–O–H 104.3°,
  close to the PBE minimum);
- ``monomer:k``: distorted monomers, O–H ~ N(0.970, 0.03) Å and H–O–H ~ N(104.3°, 5°)
  (:func:`openmm_pqeq.data_generation.sampling.distorted_monomer`);
- ``gas:n:k``: gas-phase clusters of n = 2..6 molecules grown with hydrogen-bond placement rules
  (:func:`openmm_pqeq.data_generation.sampling.water_cluster`);
- ``liquid:n:k``: n = 2..6 molecules cut out of liquid water: the central molecule and its n − 1
  nearest molecules (O–O distance) of a cluster already cut out of a liquid snapshot (the
  4–6-molecule clusters of ``examples/data/water_bulk_pbe.extxyz``, flexible TIP3P at 300 and 400 K).

Every structure is its own ``family`` (the split key of ``fit-pqeq``), with ``info``: ``name``,
``family``, ``kind`` (monomer, gas, liquid), ``n_molecules``, ``charge`` 0.  The order puts the
monomers first, then the clusters by priority (k + ½) n^1.5 for the k-th cluster of n molecules
of its kind (DFT cost grows as about n^3, so every prefix of the list has all sizes, small ones
more often): labelling can be stopped after any prefix and the set stays balanced.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

#: Default counts per (kind, molecules): about 3 hours of PBE/def2-SVPD on one core with forces.
DEFAULT_COUNTS: Dict[str, Dict[int, int]] = {
    "monomer": {1: 40},
    "gas": {2: 28, 3: 14, 4: 8, 5: 3, 6: 3},
    "liquid": {2: 12, 3: 8, 4: 8, 5: 3, 6: 3},
}


def _finish(atoms, name: str, kind: str, n_molecules: int):
    atoms = atoms.copy()
    atoms.positions -= atoms.get_positions().mean(0)
    atoms.info = {"name": name, "family": name, "kind": kind, "n_molecules": int(n_molecules), "charge": 0}
    return atoms


def nearest_molecules(atoms, n_molecules: int, centre: int = 0):
    """The molecule ``centre`` of an open water cluster (O, H, H per molecule, O first) and its
    ``n_molecules − 1`` nearest molecules by O–O distance, as a new ``ase.Atoms``."""
    symbols = atoms.get_chemical_symbols()
    if len(symbols) % 3 or any(symbols[k] != "O" for k in range(0, len(symbols), 3)):
        raise ValueError(f"{atoms.get_chemical_formula()}: expected whole water molecules, O first (O H H ...)")
    total = len(symbols) // 3
    if not 1 <= n_molecules <= total:
        raise ValueError(f"cannot take {n_molecules} molecules out of a cluster of {total}")
    oxygens = atoms.get_positions()[0::3]
    order = np.argsort(np.linalg.norm(oxygens - oxygens[centre], axis=1), kind="stable")[:n_molecules]
    index = np.concatenate([np.arange(3 * m, 3 * m + 3) for m in order])
    return atoms[index]


def water_response_structures(liquid_clusters: Sequence, counts: Optional[Mapping[str, Mapping[int, int]]] = None,
                              seed: int = 2030) -> List:
    """The structure list (module docstring), reproducible for a given ``seed``.

    ``liquid_clusters``: open clusters of whole water molecules cut out of liquid snapshots (the
    source of the ``liquid`` kind; each is used at most once per size).  ``counts``: {kind: {n: count}}
    (default :data:`DEFAULT_COUNTS`)."""
    from ase import Atoms

    from .sampling import WATER_ANGLE, WATER_OH, distorted_monomer, water_cluster

    counts = {kind: dict(DEFAULT_COUNTS.get(kind, {})) for kind in DEFAULT_COUNTS} if counts is None else counts
    unknown = sorted(set(counts) - set(DEFAULT_COUNTS))
    if unknown:
        raise ValueError(f"unknown structure kinds {unknown}; options are {sorted(DEFAULT_COUNTS)}")
    rng = np.random.default_rng(seed)
    by_size: Dict[int, List] = {}
    t = np.radians(WATER_ANGLE)
    eq = Atoms("OH2", positions=[[0.0, 0.0, 0.0], [WATER_OH, 0.0, 0.0],
                                 [WATER_OH * np.cos(t), WATER_OH * np.sin(t), 0.0]])
    by_size.setdefault(1, []).append(_finish(eq, "monomer:eq", "monomer", 1))
    for k in range(int(counts.get("monomer", {}).get(1, 0))):
        symbols, pos = distorted_monomer(rng)
        by_size[1].append(_finish(Atoms(symbols, positions=pos), f"monomer:{k}", "monomer", 1))
    for n, count in sorted(counts.get("gas", {}).items()):
        for k in range(int(count)):
            by_size.setdefault(int(n), []).append(_finish(water_cluster(rng, int(n)), f"gas:{n}:{k}", "gas", n))
    liquid = list(liquid_clusters)
    for n, count in sorted(counts.get("liquid", {}).items()):
        pool = [a for a in liquid if len(a) >= 3 * int(n)]
        if int(count) > len(pool):
            raise ValueError(f"{count} liquid cut-outs of {n} molecules asked for, but only {len(pool)} source "
                             "clusters are large enough")
        for k, source in enumerate(rng.choice(len(pool), size=int(count), replace=False)):
            cluster = pool[int(source)]
            centre = int(rng.integers(len(cluster) // 3))
            atoms = nearest_molecules(cluster, int(n), centre)
            by_size.setdefault(int(n), []).append(_finish(atoms, f"liquid:{n}:{k}", "liquid", n))
    monomers = by_size.pop(1, [])
    clusters = []
    for n, group in sorted(by_size.items()):
        for kind in ("gas", "liquid"):
            members = [a for a in group if a.info["kind"] == kind]
            clusters += [((k + 0.5) * n ** 1.5, n, kind, a) for k, a in enumerate(members)]
    clusters.sort(key=lambda item: item[:3])
    return monomers + [item[3] for item in clusters]
