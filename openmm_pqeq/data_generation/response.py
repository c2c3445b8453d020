"""Electrostatic response reference data: dipoles, polarizabilities, field energies and ESP.

Reference data for refining the PQEq parameters (:mod:`openmm_pqeq.electrostatics.trainable`;
docs/method/learning.md).
Every structure is an isolated molecule, ion pair or ion; for each one PySCF Kohn-Sham DFT
(the same settings as the water data, PBE/def2-SVPD with density fitting by default) gives

- ``dipole`` (3,) e·Å, μ = Σ Z_A R_A − ∫ρ r, origin (0, 0, 0), at zero field;
- ``field_energies`` (6,) eV: E(F) − E(0) for the uniform fields +F x̂, −F x̂, +F ŷ, −F ŷ,
  +F ẑ, −F ẑ with F = ``field_step`` V/Å (field convention E_field = −F·μ, as in
  :mod:`openmm_pqeq.data_generation.labelling` and the model);
- ``polarizability`` (3, 3) Å³ (e²Å²/eV × k_e), by central finite differences of the dipole,
  α_ab = [μ_a(+F b̂) − μ_a(−F b̂)] / 2F, symmetrized; its truncation error is O(F² γ) (γ the
  second hyperpolarizability): halving F = 0.25 V/Å changes α_iso by 0.003 a.u. for H2O,
  0.02 a.u. for Cl⁻ and 0.19 a.u. (0.5 %) for NaCl.  Or (``polarizability="analytic"``) by
  coupled-perturbed Kohn-Sham from the zero-field SCF alone (:mod:`.cpks`; closed shells), with
  no field SCFs: then ``field_energies`` and ``field_dipoles`` are not computed and
  ``polarizability_method`` is ``"cpks"``.  For water (PBE/6-31+G*) it agrees with PySCF
  finite-field dipole derivatives extrapolated to F → 0 (Richardson, h and h/2) to 1.4e-6
  relative (tests/data_generation/test_cpks.py);
- ``esp_points`` (M, 3) Å and ``esp_values`` (M,) V: the zero-field electrostatic potential
  (nuclei plus electrons) on points on shells at 1.4, 1.6, 1.8 and 2.0 × the van der Waals
  radii around the atoms (Merz–Kollman style: a point on atom A's shell is kept only when it
  lies outside every other atom's shell of the same scale).

The molecule set (:func:`response_molecules`) is made here: closed-shell G2 molecules (ASE's
``g2`` collection) with H C N O F Si P S Cl Li Na, diatomic and triatomic ionic molecules and
ion-pair dimers of Li Na K Mg Ca with F Cl O S H OH, atomic and molecular ions, ion–water
complexes, and randomly distorted copies of a seeded subset.  Every structure has a ``family``
(its parent's name) so distorted copies fall in the same split as their parent
(:func:`split_families`).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from .._atomic import atomic_path
from ..units import BOHR_TO_ANGSTROM, HARTREE_TO_EV
from .cpks import cpks_polarizability
from .labelling import (FIELD_AU_TO_V_PER_A, HARTREE_PER_BOHR_TO_EV_PER_A, DFTSettings, build_molecule,
                        electronic_dipole, import_pyscf, make_gradients, make_scf, run_scf, structure_charge,
                        structure_multiplicity)

#: Elements the response set covers.
RESPONSE_ELEMENTS = ("H", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Li", "Na", "K", "Mg", "Ca")
#: Shell scales (× van der Waals radius) of the ESP points.
ESP_SCALES = (1.4, 1.6, 1.8, 2.0)
#: Polarizability: 1 Å³ in bohr³ (atomic units).
ANGSTROM3_TO_BOHR3: float = 1.0 / BOHR_TO_ANGSTROM ** 3


def _vdw_radius(symbol: str) -> float:
    from ase.data import atomic_numbers, vdw_radii

    r = float(vdw_radii[atomic_numbers[symbol]])
    return r if np.isfinite(r) else 2.0


def _linear(symbols: Sequence[str], distances: Sequence[float]):
    from ase import Atoms

    x = np.concatenate([[0.0], np.cumsum(distances)])
    return Atoms(symbols, positions=np.stack([x, np.zeros_like(x), np.zeros_like(x)], 1))


def _bent(center: str, ligand: str, r: float, angle_deg: float):
    from ase import Atoms

    h = math.radians(angle_deg) / 2
    return Atoms([center, ligand, ligand], positions=[[0, 0, 0], [r * math.sin(h), r * math.cos(h), 0],
                                                      [-r * math.sin(h), r * math.cos(h), 0]])


def _rhombus(cation: str, anion: str, r: float, cation_distance: float):
    from ase import Atoms

    a = cation_distance / 2
    b = math.sqrt(r * r - a * a)
    return Atoms([cation, cation, anion, anion], positions=[[a, 0, 0], [-a, 0, 0], [0, b, 0], [0, -b, 0]])


def _water():
    from ase.build import molecule

    return molecule("H2O")


def _ion_water(ion: str, distance: float, anion: bool = False):
    """Ion–water complex: a cation on the O side (C2v), an anion hydrogen-bonded to one H."""
    from ase import Atoms

    w = _water()  # O at the origin, H at +z, molecule in the yz plane
    pos = w.get_positions()
    o = pos[0]
    if not anion:
        bis = (pos[1] + pos[2]) / 2 - o
        bis /= np.linalg.norm(bis)
        site = o - distance * bis
    else:
        oh = pos[1] - o
        oh /= np.linalg.norm(oh)
        site = pos[1] + distance * oh
    return Atoms(w.get_chemical_symbols() + [ion], positions=np.vstack([pos, site]))


def response_molecules(seed: int = 0, n_distorted: int = 30, distortion: float = 0.04,
                       max_atoms: int = 9, max_heavy: int = 9) -> List:
    """The molecule set (list of ase.Atoms, centred at the origin) with ``info``: ``name``,
    ``family``, ``charge`` (e) and ``kind`` (g2, ionic, ion, complex, distorted).

    G2 molecules are taken up to ``max_atoms`` atoms and ``max_heavy`` atoms beyond neon (the
    DFT cost grows fast with them).  ``n_distorted`` structures, drawn with ``seed``, get a
    distorted copy (Gaussian noise of ``distortion`` Å on every coordinate)."""
    from ase import Atoms
    from ase.build import molecule
    from ase.collections import g2

    allowed = set(RESPONSE_ELEMENTS)
    out = []

    def add(atoms, name, kind, charge=0):
        atoms = atoms.copy()
        atoms.positions -= atoms.get_positions().mean(0)
        atoms.info = {"name": name, "family": name, "kind": kind, "charge": int(charge)}
        out.append(atoms)

    for atoms in g2:
        symbols = set(atoms.get_chemical_symbols())
        if not symbols <= allowed or len(atoms) > max_atoms or (atoms.get_atomic_numbers() > 10).sum() > max_heavy:
            continue
        if abs(atoms.get_initial_magnetic_moments().sum()) > 1e-6:
            continue  # radicals and triplets: closed shells only
        if (sum(atoms.get_atomic_numbers())) % 2:
            continue
        add(atoms, "g2:" + atoms.get_chemical_formula() + ":" + _g2_name(atoms), "g2")

    ionic = {
        "LiCl": _linear(["Li", "Cl"], [2.021]),
        "NaF": _linear(["Na", "F"], [1.926]), "KF": _linear(["K", "F"], [2.171]),
        "KCl": _linear(["K", "Cl"], [2.667]), "MgO": _linear(["Mg", "O"], [1.749]),
        "CaO": _linear(["Ca", "O"], [1.822]), "MgS": _linear(["Mg", "S"], [2.143]),
        "NaH": _linear(["Na", "H"], [1.887]), "KH": _linear(["K", "H"], [2.243]),
        "MgF2": _linear(["F", "Mg", "F"], [1.77, 1.77]), "MgCl2": _linear(["Cl", "Mg", "Cl"], [2.18, 2.18]),
        "MgH2": _linear(["H", "Mg", "H"], [1.70, 1.70]), "CaCl2": _linear(["Cl", "Ca", "Cl"], [2.48, 2.48]),
        "CaF2": _bent("Ca", "F", 2.01, 150.0), "CaH2": _bent("Ca", "H", 2.05, 160.0),
        "Li2O": _linear(["Li", "O", "Li"], [1.61, 1.61]), "Na2O": _linear(["Na", "O", "Na"], [1.98, 1.98]),
        "Li2S": _bent("S", "Li", 2.14, 110.0), "LiOH": _linear(["Li", "O", "H"], [1.58, 0.96]),
        "NaOH": _linear(["Na", "O", "H"], [1.95, 0.96]), "KOH": _linear(["K", "O", "H"], [2.21, 0.96]),
        "MgOHCl": _linear(["H", "O", "Mg", "Cl"], [0.96, 1.77, 2.20]),
        "LiNC": _linear(["Li", "N", "C"], [1.76, 1.18]), "NaCN": _linear(["Na", "C", "N"], [2.30, 1.17]),
        "(LiF)2": _rhombus("Li", "F", 1.75, 2.30), "(NaCl)2": _rhombus("Na", "Cl", 2.53, 3.18),
        "(KCl)2": _rhombus("K", "Cl", 2.95, 3.90), "(LiCl)2": _rhombus("Li", "Cl", 2.23, 2.80),
        "(NaF)2": _rhombus("Na", "F", 2.08, 2.70), "(MgO)2": _rhombus("Mg", "O", 1.90, 2.60),
        "SiO2": _linear(["O", "Si", "O"], [1.52, 1.52]), "PO2Cl": _bent("P", "O", 1.46, 130.0),
    }
    ionic["PO2Cl"] = ionic["PO2Cl"] + Atoms("Cl", positions=[[0, -2.0, 0]])
    for name, atoms in ionic.items():
        add(atoms, "ionic:" + name, "ionic")

    ions = [
        ("Li+", Atoms("Li"), 1), ("Na+", Atoms("Na"), 1), ("K+", Atoms("K"), 1), ("Mg2+", Atoms("Mg"), 2),
        ("Ca2+", Atoms("Ca"), 2), ("F-", Atoms("F"), -1), ("Cl-", Atoms("Cl"), -1),
        ("OH-", _linear(["O", "H"], [0.97]), -1), ("HS-", _linear(["S", "H"], [1.35]), -1),
        ("CN-", _linear(["C", "N"], [1.18]), -1), ("NO2-", _bent("N", "O", 1.26, 116.0), -1),
        ("N3-", _linear(["N", "N", "N"], [1.18, 1.18]), -1), ("SCN-", _linear(["S", "C", "N"], [1.68, 1.18]), -1),
        ("H3O+", molecule("NH3"), 1), ("NH4+", molecule("CH4"), 1), ("HCOO-", molecule("HCOOH"), -1),
        ("PH4+", molecule("SiH4"), 1),
    ]
    for name, atoms, charge in ions:
        atoms = atoms.copy()
        if name == "H3O+":
            atoms.set_chemical_symbols(["O", "H", "H", "H"])
            atoms.positions[1:] = atoms.positions[0] + 0.98 / 1.01 * (atoms.positions[1:] - atoms.positions[0])
        elif name == "NH4+":
            atoms.set_chemical_symbols(["N"] + ["H"] * 4)
            atoms.positions[1:] *= 1.02 / 1.09
        elif name == "PH4+":
            atoms.set_chemical_symbols(["P"] + ["H"] * 4)
            atoms.positions[1:] *= 1.40 / np.linalg.norm(atoms.positions[1])
        elif name == "HCOO-":
            atoms = _formate()
        add(atoms, "ion:" + name, "ion", charge)
    complexes = [("Li+·H2O", "Li", 1.85, 1, False), ("Na+·H2O", "Na", 2.23, 1, False),
                 ("K+·H2O", "K", 2.61, 1, False), ("Mg2+·H2O", "Mg", 1.95, 2, False),
                 ("Ca2+·H2O", "Ca", 2.30, 2, False), ("F-·H2O", "F", 1.40, -1, True),
                 ("Cl-·H2O", "Cl", 2.10, -1, True)]
    for name, ion, dist, charge, anion in complexes:
        add(_ion_water(ion, dist, anion), "complex:" + name, "complex", charge)

    rng = np.random.default_rng(seed)
    candidates = [a for a in out if len(a) > 1]
    for index in sorted(rng.choice(len(candidates), size=min(n_distorted, len(candidates)), replace=False)):
        parent = candidates[int(index)]
        atoms = parent.copy()
        atoms.positions += rng.normal(0.0, distortion, size=atoms.positions.shape)
        atoms.positions -= atoms.get_positions().mean(0)
        atoms.info = dict(parent.info)
        atoms.info["name"] = parent.info["name"] + ":distorted"
        atoms.info["kind"] = "distorted"
        out.append(atoms)
    return out


def _formate():
    from ase import Atoms

    r, h = 1.26, math.radians(130.0) / 2
    return Atoms("COOH", positions=[[0, 0, 0], [r * math.sin(h), r * math.cos(h), 0],
                                    [-r * math.sin(h), r * math.cos(h), 0], [0, -1.13, 0]])


def _g2_name(atoms) -> str:
    from ase.collections import g2

    for name in g2.names:
        other = g2[name]
        if len(other) == len(atoms) and np.allclose(other.get_positions(), atoms.get_positions()) \
                and list(other.get_atomic_numbers()) == list(atoms.get_atomic_numbers()):
            return name
    return atoms.get_chemical_formula()


def split_families(frames: Sequence, test_fraction: float = 0.2, seed: int = 0) -> Dict[str, List[int]]:
    """Seeded train/test split by ``info["family"]`` (a distorted copy goes with its parent).

    The split of a family depends only on its name and the seed (a hash), so it is stable when
    structures are added or removed.  A frame whose ``info["split"]`` is ``"train"`` or ``"test"``
    (the organic set, :mod:`.organics`) goes there.  Returns ``{"train": [...], "test": [...]}``
    frame indices."""
    out: Dict[str, List[int]] = {"train": [], "test": []}
    for index, atoms in enumerate(frames):
        if atoms.info.get("split") in ("train", "test"):
            out[str(atoms.info["split"])].append(index)
            continue
        family = str(atoms.info.get("family", atoms.info.get("name", index)))
        digest = hashlib.sha1(f"{seed}:{family}".encode()).hexdigest()
        u = int(digest[:8], 16) / 0xFFFFFFFF
        out["test" if u < test_fraction else "train"].append(index)
    return out


def esp_points(atoms, per_atom: int = 12, max_points: int = 48, seed: int = 0) -> np.ndarray:
    """ESP sample points (M, 3) Å on shells at :data:`ESP_SCALES` × vdW radii (outside every
    other atom's shell of the same scale), at most ``max_points`` drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    pos = atoms.get_positions()
    radii = np.array([_vdw_radius(s) for s in atoms.get_chemical_symbols()])
    candidates = []
    for scale in ESP_SCALES:
        for a in range(len(atoms)):
            v = rng.normal(size=(per_atom, 3))
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            pts = pos[a] + scale * radii[a] * v
            dist = np.linalg.norm(pts[:, None, :] - pos[None, :, :], axis=2)
            ok = (dist >= scale * radii[None, :] - 1e-9).all(1)
            candidates.append(pts[ok])
    pts = np.concatenate(candidates)
    if len(pts) > max_points:
        pts = pts[np.sort(rng.choice(len(pts), max_points, replace=False))]
    return pts


def electrostatic_potential(mf, points_angstrom: np.ndarray) -> np.ndarray:
    """Electrostatic potential (M,) in V of nuclei plus electron density at the points (Å)."""
    mol = mf.mol
    dm = mf.make_rdm1()
    if dm.ndim == 3:
        dm = dm[0] + dm[1]
    pts = np.asarray(points_angstrom, dtype=float) / BOHR_TO_ANGSTROM
    ints = mol.intor("int1e_grids", grids=pts)  # (M, nao, nao) of 1/|r - C|
    electronic = np.einsum("gij,ji->g", ints, dm).real
    diff = pts[:, None, :] - mol.atom_coords()[None, :, :]
    nuclear = (mol.atom_charges()[None, :] / np.linalg.norm(diff, axis=2)).sum(1)
    return (nuclear - electronic) * HARTREE_TO_EV


def _scf(mf, dm0=None):
    """``mf`` after a converged SCF (:func:`~openmm_pqeq.data_generation.labelling.run_scf`)."""
    if not run_scf(mf, dm0):
        raise RuntimeError("SCF did not converge")
    return mf


#: How :func:`label_response` gets the polarizability.
POLARIZABILITY_METHODS = ("finite-field", "analytic")


def label_response(atoms, settings: Optional[DFTSettings] = None, field_step: float = 0.25,
                   esp: bool = True, threads: Optional[int] = None, forces: bool = False,
                   polarizability: str = "finite-field"):
    """Label one isolated structure with its electrostatic response (see the module docstring).

    Returns a copy whose ``info`` holds ``energy`` (eV, zero field), ``dipole`` (3,) e·Å,
    ``polarizability`` (9,) Å³ (row-major 3×3), ``field_step`` V/Å, ``field_energies`` (6,) eV,
    ``field_dipoles`` (18,) e·Å (the dipoles at the six fields, row-major 6×3),
    ``esp_points`` (3M,) Å, ``esp_values`` (M,) V, ``charge``, ``multiplicity``,
    ``dft_method``, ``dft_wall_s``.  With ``forces``, per-atom arrays ``forces`` (N, 3) eV/Å
    at zero field and ``field_forces`` (N, 18) eV/Å at the six fields (+x, −x, +y, −y, +z, −z,
    three components each), analytic gradients including the field terms
    (:func:`~openmm_pqeq.data_generation.labelling.make_gradients`; exact with
    ``settings.grid_response``); the atomic polar tensor is ∂F_ia/∂E_b ≈ [F_ia(+F b̂) − F_ia(−F b̂)] / 2F (e).

    ``polarizability="analytic"``: α by coupled-perturbed Kohn-Sham (:func:`.cpks.cpks_polarizability`)
    instead of finite fields; no ``field_step``, ``field_energies`` or ``field_dipoles`` (and no
    ``forces``: the atomic polar tensors need the field SCFs)."""
    if polarizability not in POLARIZABILITY_METHODS:
        raise ValueError(f"polarizability is {polarizability!r}; options are {', '.join(POLARIZABILITY_METHODS)}")
    if polarizability == "analytic" and forces:
        raise ValueError("forces (atomic polar tensors) need the finite-field SCFs; use polarizability='finite-field'")
    pyscf, _, _ = import_pyscf()
    settings = settings if settings is not None else DFTSettings()
    if threads is not None:
        pyscf.lib.num_threads(int(threads))
    charge = structure_charge(atoms)
    multiplicity = structure_multiplicity(atoms, charge)
    start = time.perf_counter()
    mol = build_molecule(atoms, settings.basis, charge=charge, multiplicity=multiplicity)
    mf0 = _scf(make_scf(mol, settings, np.zeros(3)))
    e0 = float(mf0.e_tot)
    if polarizability == "analytic":
        return _labelled(atoms, mf0, settings, start, esp, charge, multiplicity,
                         {"polarizability": cpks_polarizability(mf0) * BOHR_TO_ANGSTROM ** 3,
                          "polarizability_method": "cpks"})
    dm0 = mf0.make_rdm1()
    h = float(field_step) / FIELD_AU_TO_V_PER_A
    energies, dipoles, gradients = [], [], []
    gradient0 = make_gradients(mf0, settings).kernel() if forces else None
    for axis in range(3):
        for sign in (1.0, -1.0):
            field = np.zeros(3)
            field[axis] = sign * field_step
            mf = _scf(make_scf(mol, settings, field), dm0)
            energies.append((float(mf.e_tot) - e0) * HARTREE_TO_EV)
            dipoles.append(electronic_dipole(mf))
            if forces:
                gradients.append(np.asarray(make_gradients(mf, settings).kernel()))
    dipoles = np.array(dipoles)
    alpha_au = np.stack([(dipoles[2 * b] - dipoles[2 * b + 1]) / (2 * h) for b in range(3)], axis=1)  # [a, b]
    alpha_au = 0.5 * (alpha_au + alpha_au.T)
    labelled = _labelled(atoms, mf0, settings, start, esp, charge, multiplicity,
                         {"polarizability": alpha_au * BOHR_TO_ANGSTROM ** 3, "field_step": float(field_step),
                          "field_energies": np.array(energies),
                          "field_dipoles": (dipoles * BOHR_TO_ANGSTROM).reshape(-1)})
    if forces:
        labelled.arrays["forces"] = -np.asarray(gradient0) * HARTREE_PER_BOHR_TO_EV_PER_A
        field_forces = -np.stack(gradients, axis=1) * HARTREE_PER_BOHR_TO_EV_PER_A  # (N, 6, 3)
        labelled.arrays["field_forces"] = field_forces.reshape(len(atoms), 18)
    return labelled


def _labelled(atoms, mf0, settings: DFTSettings, start: float, esp: bool, charge: int, multiplicity: int,
              response: Dict):
    """A copy of ``atoms`` whose ``info`` holds the zero-field energy, dipole and ESP of the
    converged ``mf0``, the ``response`` entries (``polarizability`` (3, 3) Å³ stored row-major,
    ...), the book-keeping keys and ``dft_wall_s`` since ``start``."""
    labelled = atoms.copy()
    labelled.calc = None
    info = dict(atoms.info)
    info.update({"energy": float(mf0.e_tot) * HARTREE_TO_EV, "dipole": electronic_dipole(mf0) * BOHR_TO_ANGSTROM})
    info.update({k: (np.asarray(v).reshape(-1) if k == "polarizability" else v) for k, v in response.items()})
    info.update({"charge": charge, "multiplicity": multiplicity, "dft_method": settings.method})
    if esp:
        pts = esp_points(atoms, seed=int(hashlib.sha1(str(atoms.info.get("name", "")).encode()).hexdigest()[:6], 16))
        info["esp_points"] = pts.reshape(-1)
        info["esp_values"] = electrostatic_potential(mf0, pts)
    info["dft_wall_s"] = round(time.perf_counter() - start, 3)
    labelled.info = info
    return labelled


def response_key(atoms, settings: DFTSettings, field_step: float, forces: bool = False,
                 polarizability: str = "finite-field") -> str:
    payload = {"numbers": [int(z) for z in atoms.get_atomic_numbers()],
               "positions": np.round(atoms.get_positions(), 8).tolist(),
               "charge": int(atoms.info.get("charge", 0)), "field_step": float(field_step),
               "settings": settings.as_dict(), "kind": "response"}
    if forces:
        payload["forces"] = True
    if polarizability != "finite-field":
        payload["polarizability"] = polarizability
        payload.pop("field_step")
    return "k" + hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def label_response_file(frames: Sequence, output_path: str, settings: Optional[DFTSettings] = None,
                        field_step: float = 0.25, esp: bool = True, threads: int = 1,
                        progress=None, forces: bool = False, polarizability: str = "finite-field",
                        max_minutes: Optional[float] = None) -> Dict:
    """Label ``frames`` (see :func:`label_response`) and append each to ``output_path``
    (extxyz) as soon as it is done; frames already there (same ``label_key``) are skipped.
    ``max_minutes``: start no new frame after this much wall time (the rest are ``left``; rerun
    to continue)."""
    from .batch import append_frame, read_finished

    settings = settings if settings is not None else DFTSettings()
    report = progress if progress is not None else (lambda line: print(line, file=sys.stderr, flush=True))
    finished = read_finished(output_path)
    done = {str(a.info.get("label_key")) for a in finished}
    keys = [response_key(atoms, settings, field_step, forces, polarizability) for atoms in frames]
    named = {str(a.info.get("name")) for a in finished if a.info.get("name")}
    relabelled = [str(atoms.info["name"]) for atoms, key in zip(frames, keys)
                  if key not in done and str(atoms.info.get("name", "")) in named]
    if relabelled:
        report(f"{len(relabelled)} structures ({', '.join(relabelled[:3])}{', ...' if len(relabelled) > 3 else ''}) "
               f"are already in {output_path} under other options (DFT settings, field step, --forces or "
               f"--polarizability); they are labelled again: rerun with the options of the file to skip them")
    labelled, failures, skipped, dft, left = 0, [], 0, 0.0, 0
    start = time.perf_counter()
    for index, (atoms, key) in enumerate(zip(frames, keys)):
        if key in done:
            skipped += 1
            continue
        if max_minutes is not None and time.perf_counter() - start > 60.0 * max_minutes:
            left += 1
            continue
        try:
            result = label_response(atoms, settings, field_step=field_step, esp=esp, threads=threads, forces=forces,
                                    polarizability=polarizability)
        except Exception as error:  # noqa: BLE001 - reported, the run goes on
            failures.append((index, f"{type(error).__name__}: {error}"))
            report(f"[{index + 1}/{len(frames)}] {atoms.info.get('name', '')} FAILED: {error}")
            continue
        result.info["label_key"] = key
        result.info["source_index"] = index
        append_frame(output_path, result)
        labelled += 1
        dft += result.info["dft_wall_s"]
        report(f"[{index + 1}/{len(frames)}] {atoms.info.get('name', '')} ({len(atoms)} atoms): "
               f"{result.info['dft_wall_s']:.1f} s")
    return {"labelled": labelled, "skipped": skipped, "failed": len(failures), "failures": failures,
            "left": left, "wall_s": time.perf_counter() - start, "dft_wall_s": dft}


def prune_response_file(path: str, frames: Sequence, settings: DFTSettings, field_step: float,
                        forces: bool = False, polarizability: str = "finite-field") -> int:
    """Drop frames of ``path`` whose key is not one of ``frames`` (e.g. after the structure
    list changed); returns how many were dropped."""
    import ase.io

    from .batch import read_finished

    keys = {response_key(atoms, settings, field_step, forces, polarizability) for atoms in frames}
    finished = read_finished(path)
    keep = [a for a in finished if str(a.info.get("label_key")) in keys]
    if len(keep) < len(finished):
        with atomic_path(path) as temporary:
            ase.io.write(temporary, keep, format="extxyz")
    return len(finished) - len(keep)


def read_response(path: str) -> List:
    """Frames of a response file with ``esp_points`` reshaped to (M, 3), ``polarizability`` to
    (3, 3), ``field_dipoles`` to (6, 3), and, when present, per-atom ``forces`` (N, 3) and
    ``field_forces`` (N, 6, 3) in ``atoms.arrays``.  Frames labelled with the analytic
    polarizability have no ``field_energies`` (nor ``field_step``)."""
    import ase.io

    frames = ase.io.read(path, ":")
    for atoms in frames:
        info = atoms.info
        if atoms.calc is not None:  # ASE moves energy, dipole and forces into a calculator on reading
            for key in ("energy", "dipole"):
                if key in atoms.calc.results and key not in info:
                    info[key] = atoms.calc.results[key]
            if "forces" in atoms.calc.results and "forces" not in atoms.arrays:
                atoms.arrays["forces"] = np.asarray(atoms.calc.results["forces"], dtype=float)
        if "field_forces" in atoms.arrays:
            atoms.arrays["field_forces"] = np.asarray(atoms.arrays["field_forces"], dtype=float).reshape(-1, 6, 3)
        if "field_dipoles" in info:
            info["field_dipoles"] = np.asarray(info["field_dipoles"], dtype=float).reshape(6, 3)
        info["dipole"] = np.asarray(info["dipole"], dtype=float).reshape(3)
        info["polarizability"] = np.asarray(info["polarizability"], dtype=float).reshape(3, 3)
        if "field_energies" in info:
            info["field_energies"] = np.asarray(info["field_energies"], dtype=float).reshape(6)
        if "esp_points" in info:
            info["esp_points"] = np.asarray(info["esp_points"], dtype=float).reshape(-1, 3)
            info["esp_values"] = np.asarray(info["esp_values"], dtype=float).reshape(-1)
    return frames
