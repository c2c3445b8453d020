"""Random water clusters for reference data: rigid placement with distance rules plus perturbations.

Each cluster is grown one molecule at a time.  Every molecule first gets its own intramolecular
distortion (O–H lengths and H–O–H angle drawn from Gaussians about the gas-phase geometry, widths
close to the zero-point spread of the stretch and bend), then a random orientation, and is placed
next to a molecule already in the cluster in one of three ways, picked at random:

- *donor*: one of its O–H bonds points (within ~25°) at the partner's oxygen, O···O in the
  hydrogen-bond range;
- *acceptor*: it sits (within ~25°) on the extension of one of the partner's O–H bonds;
- *random*: a random direction, O···O anywhere in ``oo_range``.

A placement is kept only if every intermolecular O–O, O–H and H–H distance respects the minima in
``min_distances``, so no two molecules overlap; otherwise it is redrawn.  Finally every atom gets
an isotropic Gaussian "thermal" displacement (``thermal_sigma``) and the cluster is centred at the
origin.  Dimers may sit further apart (``dimer_oo_range``), which samples the long-range tail.

Optionally a fraction of frames carries a uniform field (random direction, magnitude uniform in
[0, ``max_field``] V/Å), stored in ``atoms.info["field"]``, and a fraction has one water replaced
by a hydronium (H3O+) or hydroxide (OH−) ion, with ``atoms.info["charge"]`` = ±1.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``: the same arguments give
the same structures on every machine.

>>> frames = sample_water_clusters(4, max_molecules=3, seed=1)
>>> [len(a) for a in frames]        # doctest: +SKIP
[3, 6, 9, 3]
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

#: Gas-phase water geometry (Å, degrees), close to the PBE minimum (0.970 Å, 104.2°).
WATER_OH: float = 0.970
WATER_ANGLE: float = 104.3
#: Hydronium (pyramidal) and hydroxide geometries (Å, degrees).
HYDRONIUM_OH: float = 0.985
HYDRONIUM_ANGLE: float = 112.0
HYDROXIDE_OH: float = 0.975

#: Default minimum intermolecular distances (Å).
DEFAULT_MIN_DISTANCES: Dict[str, float] = {"OO": 2.5, "OH": 1.55, "HH": 1.6}


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (3, 3)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix taking unit vector ``a`` onto unit vector ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1.0 + 1e-10:  # antiparallel: rotate by π about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    vx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * vx + (1 - np.cos(angle)) * vx @ vx


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _cone(rng: np.random.Generator, axis: np.ndarray, max_angle_deg: float) -> np.ndarray:
    """A random unit vector within ``max_angle_deg`` of ``axis`` (uniform on the spherical cap)."""
    cos_max = np.cos(np.radians(max_angle_deg))
    cos_t = rng.uniform(cos_max, 1.0)
    phi = rng.uniform(0.0, 2 * np.pi)
    local = np.array([np.sqrt(1 - cos_t ** 2) * np.cos(phi), np.sqrt(1 - cos_t ** 2) * np.sin(phi), cos_t])
    return _rotation_between(np.array([0.0, 0.0, 1.0]), axis) @ local


def distorted_monomer(rng: np.random.Generator, kind: str = "water", sigma_oh: float = 0.03,
                      sigma_angle: float = 5.0) -> Tuple[List[str], np.ndarray]:
    """Symbols and positions (Å, O at the origin) of a distorted H2O, H3O+ or OH−.

    O–H lengths ~ N(r0, sigma_oh) Å and H–O–H angles ~ N(θ0, sigma_angle) degrees, clipped to
    ±3σ so no pathological geometry is drawn.
    """
    def bond(r0):
        return r0 + float(np.clip(rng.normal(0.0, sigma_oh), -3 * sigma_oh, 3 * sigma_oh))

    def angle(t0):
        return np.radians(t0 + float(np.clip(rng.normal(0.0, sigma_angle), -3 * sigma_angle, 3 * sigma_angle)))

    if kind == "water":
        r1, r2, t = bond(WATER_OH), bond(WATER_OH), angle(WATER_ANGLE)
        pos = np.array([[0.0, 0.0, 0.0], [r1, 0.0, 0.0], [r2 * np.cos(t), r2 * np.sin(t), 0.0]])
        return ["O", "H", "H"], pos
    if kind == "hydronium":
        # three O–H bonds at equal polar angle β about z with H–O–H angles ~ θ
        t = angle(HYDRONIUM_ANGLE)
        sin_beta = min(2.0 / np.sqrt(3.0) * np.sin(t / 2.0), 1.0)
        beta = np.arcsin(sin_beta)
        pos = [[0.0, 0.0, 0.0]]
        for k in range(3):
            phi = 2 * np.pi * k / 3 + np.radians(rng.normal(0.0, sigma_angle / 2))
            r = bond(HYDRONIUM_OH)
            pos.append([r * np.sin(beta) * np.cos(phi), r * np.sin(beta) * np.sin(phi), r * np.cos(beta)])
        return ["O", "H", "H", "H"], np.array(pos)
    if kind == "hydroxide":
        return ["O", "H"], np.array([[0.0, 0.0, 0.0], [bond(HYDROXIDE_OH), 0.0, 0.0]])
    raise ValueError(f"unknown molecule kind {kind!r}; options are 'water', 'hydronium', 'hydroxide'")


def _respects_minima(new_symbols, new_pos, symbols, positions, minima: Mapping[str, float]) -> bool:
    if not symbols:
        return True
    old = np.asarray(positions)
    d = np.linalg.norm(new_pos[:, None, :] - old[None, :, :], axis=-1)
    for i, si in enumerate(new_symbols):
        for j, sj in enumerate(symbols):
            if d[i, j] < minima["".join(sorted(si + sj, reverse=True))]:
                return False
    return True


def _place(rng, symbols, pos, partner_symbols, partner_pos, oo_range, mode) -> np.ndarray:
    """Positions of a molecule (O first) placed next to a partner molecule."""
    body = pos @ _rotation(rng).T
    o_partner = partner_pos[0]
    if mode == "donor" and len(symbols) > 1:
        d = rng.uniform(2.6, 3.2)
        direction = _random_unit(rng)                      # new O sits at o_partner + d * direction
        o_new = o_partner + d * direction
        h = 1 + int(rng.integers(len(symbols) - 1))
        target = _cone(rng, -direction, 25.0)              # new O–H bond roughly towards the partner O
        body = body @ _rotation_between(body[h], target).T
        body = body @ _rotation_about(target, rng.uniform(0, 2 * np.pi)).T
        return body + o_new
    if mode == "acceptor" and len(partner_symbols) > 1:
        d = rng.uniform(2.6, 3.2)
        h = 1 + int(rng.integers(len(partner_symbols) - 1))
        axis = partner_pos[h] - o_partner
        o_new = o_partner + d * _cone(rng, axis / np.linalg.norm(axis), 25.0)
        return body + o_new
    d = rng.uniform(*oo_range)
    return body + o_partner + d * _random_unit(rng)


def water_cluster(rng: np.random.Generator, n_molecules: int, ion: Optional[str] = None,
                  oo_range: Tuple[float, float] = (2.5, 3.6),
                  dimer_oo_range: Tuple[float, float] = (2.5, 6.0),
                  min_distances: Optional[Mapping[str, float]] = None,
                  sigma_oh: float = 0.03, sigma_angle: float = 5.0, thermal_sigma: float = 0.02,
                  max_tries: int = 2000):
    """One random cluster of ``n_molecules`` molecules as an ``ase.Atoms`` (Å, centred at 0).

    ``ion`` (``"hydronium"`` or ``"hydroxide"``) replaces the first molecule and sets
    ``info["charge"]``.  Other parameters: see the module docstring.
    """
    from ase import Atoms

    if n_molecules < 1:
        raise ValueError(f"n_molecules must be at least 1, got {n_molecules}")
    minima = dict(DEFAULT_MIN_DISTANCES)
    minima.update(min_distances or {})
    kinds = [ion or "water"] + ["water"] * (n_molecules - 1)
    distance_range = dimer_oo_range if n_molecules == 2 else oo_range
    symbols: List[str] = []
    positions: List[np.ndarray] = []
    molecules: List[Tuple[List[str], np.ndarray]] = []
    for kind in kinds:
        mol_symbols, mol_pos = distorted_monomer(rng, kind, sigma_oh, sigma_angle)
        for _ in range(max_tries):
            if not molecules:
                placed = mol_pos @ _rotation(rng).T
            else:
                partner_symbols, partner_pos = molecules[int(rng.integers(len(molecules)))]
                mode = ("donor", "acceptor", "random")[int(rng.integers(3))]
                placed = _place(rng, mol_symbols, mol_pos, partner_symbols, partner_pos, distance_range, mode)
            if _respects_minima(mol_symbols, placed, symbols, positions, minima):
                break
        else:
            raise RuntimeError(f"could not place molecule {len(molecules) + 1} of {n_molecules} after "
                               f"{max_tries} tries; relax min_distances {minima}")
        molecules.append((mol_symbols, placed))
        symbols.extend(mol_symbols)
        positions.extend(placed)
    pos = np.asarray(positions)
    # thermal jitter, redrawn (a few times) if it would break a distance minimum
    for _ in range(100):
        jittered = pos + rng.normal(0.0, thermal_sigma, size=pos.shape)
        if _all_minima_ok(symbols, jittered, [len(m[0]) for m in molecules], minima):
            pos = jittered
            break
    pos = pos - pos.mean(axis=0)
    atoms = Atoms(symbols=symbols, positions=pos)
    charge = {"hydronium": 1, "hydroxide": -1}.get(ion or "water", 0)
    atoms.info["charge"] = charge
    atoms.info["n_molecules"] = n_molecules
    return atoms


def _all_minima_ok(symbols, pos, sizes, minima) -> bool:
    starts = np.cumsum([0] + list(sizes))
    for k in range(1, len(sizes)):
        a, b = starts[k], starts[k + 1]
        if not _respects_minima(symbols[a:b], pos[a:b], symbols[:a], pos[:a], minima):
            return False
    return True


def min_intermolecular_distances(atoms, molecule_sizes: Sequence[int]) -> Dict[str, float]:
    """Smallest intermolecular O–O, O–H and H–H distances (Å) of a cluster (for checks)."""
    symbols = atoms.get_chemical_symbols()
    pos = atoms.get_positions()
    owner = np.repeat(np.arange(len(molecule_sizes)), molecule_sizes)
    out = {"OO": np.inf, "OH": np.inf, "HH": np.inf}
    for i in range(len(symbols)):
        for j in range(i + 1, len(symbols)):
            if owner[i] != owner[j]:
                key = "".join(sorted(symbols[i] + symbols[j], reverse=True))
                out[key] = min(out[key], float(np.linalg.norm(pos[i] - pos[j])))
    return out


def _size_weights(max_molecules: int, min_molecules: int, weights: Optional[Mapping[int, float]]):
    sizes = np.arange(min_molecules, max_molecules + 1)
    if weights is None:
        w = 1.0 / sizes.astype(float)     # smaller clusters are cheaper: weight ∝ 1/n
    else:
        unknown = [k for k in weights if not min_molecules <= int(k) <= max_molecules]
        if unknown:
            raise ValueError(f"size weights for {unknown} molecules are outside "
                             f"[{min_molecules}, {max_molecules}]")
        w = np.array([float(weights.get(int(n), 0.0)) for n in sizes])
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"size weights must be non-negative with a positive sum, got {w.tolist()}")
    return sizes, w / w.sum()


def sample_water_clusters(n_structures: int, max_molecules: int = 6, seed: int = 0,
                          min_molecules: int = 1, size_weights: Optional[Mapping[int, float]] = None,
                          field_fraction: float = 0.0, max_field: float = 0.5,
                          field_max_molecules: int = 2, ion_fraction: float = 0.0,
                          **cluster_options) -> list:
    """A reproducible list of random water clusters (``ase.Atoms``, Å).

    Parameters
    ----------
    n_structures : number of frames.
    max_molecules, min_molecules : range of cluster sizes (molecules per frame).
    seed : seed of the ``numpy.random.Generator``; same arguments, same frames.
    size_weights : {n_molecules: weight}; default weight ∝ 1/n.  Sizes are assigned by
        largest-remainder rounding of the weights (exact counts), then shuffled.
    field_fraction : fraction of the frames with at most ``field_max_molecules`` molecules that
        get a uniform field: random direction, magnitude uniform in [0, ``max_field``] V/Å
        (``atoms.info["field"]``); the others get a zero field.
    ion_fraction : fraction of frames (without field) in which one water is replaced by H3O+ or
        OH− (equal odds), with ``atoms.info["charge"]`` = ±1.
    cluster_options : passed to :func:`water_cluster` (``oo_range``, ``min_distances``, ...).

    Returns
    -------
    list of ase.Atoms with ``info`` keys ``charge`` (e), ``field`` (V/Å, (3,)), ``n_molecules``,
    ``sample_index``.
    """
    for name, value in (("field_fraction", field_fraction), ("ion_fraction", ion_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if n_structures < 0:
        raise ValueError(f"n_structures must be non-negative, got {n_structures}")
    if not 1 <= min_molecules <= max_molecules:
        raise ValueError(f"need 1 <= min_molecules <= max_molecules, got {min_molecules}, {max_molecules}")
    if max_field < 0:
        raise ValueError(f"max_field must be non-negative (V/Å), got {max_field}")
    rng = np.random.default_rng(seed)
    sizes, p = _size_weights(max_molecules, min_molecules, size_weights)
    exact = p * n_structures
    counts = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - counts))[: n_structures - counts.sum()]:
        counts[k] += 1
    plan = np.repeat(sizes, counts)
    rng.shuffle(plan)

    frames = []
    for index, n in enumerate(plan):
        n = int(n)
        with_field = n <= field_max_molecules and rng.random() < field_fraction
        ion = None
        if not with_field and rng.random() < ion_fraction:
            ion = ("hydronium", "hydroxide")[int(rng.integers(2))]
        atoms = water_cluster(rng, n, ion=ion, **cluster_options)
        field = _random_unit(rng) * rng.uniform(0.0, max_field) if with_field else np.zeros(3)
        atoms.info["field"] = np.round(field, 6)
        atoms.info["sample_index"] = index
        frames.append(atoms)
    return frames


def parse_size_weights(text: str) -> Dict[int, float]:
    """Parse ``"1:0.3,2:0.3,3:0.2"`` into ``{1: 0.3, 2: 0.3, 3: 0.2}``."""
    weights: Dict[int, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            size, weight = item.split(":")
            weights[int(size)] = float(weight)
        except ValueError as error:
            raise ValueError(f"size weights must look like '1:0.3,2:0.5', got {text!r}") from error
    return weights
