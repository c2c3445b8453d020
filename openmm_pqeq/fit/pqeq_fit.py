"""Refine per-element PQEq parameters against DFT response data (docs/method/learning.md).

Targets, per isolated structure of a response file (:mod:`openmm_pqeq.data_generation.response`):

- ``dipole``: the zero-field dipole vector (debye); through the charges and shells, so its
  derivatives with respect to the parameters use the implicit function theorem
  (:mod:`openmm_pqeq.electrostatics.implicit`);
- ``polarizability``: the tensor (a.u., bohr³), PQEq's analytic α = M K_c⁻¹ Mᵀ at zero field
  (DFT: central finite fields);
- ``field_energy``: E(±F ê) − E(0) along x, y, z (meV; exact parameter derivatives by the
  envelope theorem);
- ``esp``: the electrostatic potential on the points of the file (V);
- ``apt``: the atomic polar tensors ∂F_ia/∂E_b (e): the reference by central finite fields
  (structures labelled with ``--forces``), PQEq's analytically at zero field
  (:func:`openmm_pqeq.electrostatics.implicit.analytic_apt`, exact parameter derivatives).

Charge constraints (``charge_constraint``): one total charge per structure, or one neutral group
per molecule (molecules by the distance rule of :mod:`openmm_pqeq.charge_constraint`), for the
solve, the polarizability, the field energies and forces alike.

With ``charge_transfer: split`` the fitted set is a split-charge model
(:mod:`openmm_pqeq.electrostatics.splitcharge`): bond hardnesses per element pair
(``trainable: {kappa: all}``) are fitted alongside χ, J, R, K_s, and the set records its model.

Loss = Σ_k w_k · mean_k(((pred − ref) / s_k)²) + ρ Σ θ² over the training structures, with
weights w_k, scales s_k and a small pull ρ of the raw parameters θ toward the tables.  The
split is by structure family (distorted copies go with their parent), seeded; the test
structures are never used in the fit (they are only evaluated).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .._atomic import atomic_write, atomic_write_text
from ..electrostatics import PQEq
from ..electrostatics.bond_hardness import BondHardness, bonded_pairs
from ..electrostatics.implicit import analytic_polarizability, electrostatic_potential, linear_response
from ..electrostatics.parameters import element_parameters
from ..electrostatics.splitcharge import split_polarizability, transfer_charges
from ..elements import SYMBOLS
from ..units import BOHR_TO_ANGSTROM, E_ANGSTROM_TO_DEBYE

#: Å³ in bohr³.
A3_TO_AU: float = 1.0 / BOHR_TO_ANGSTROM ** 3
TARGETS = ("dipole", "polarizability", "field_energy", "esp", "apt")


@dataclass
class FitConfig:
    """Configuration of ``openmm-pqeq fit-pqeq`` (YAML keys = field names)."""

    #: Response data file (extxyz from ``openmm-pqeq label-response``), or a list of files.
    data: Union[str, List[str]] = "examples/data/response_pbe.extxyz"
    #: Tabulated parameter set to start from (the refined set is this set with the fitted entries replaced).
    start: str = "reaxnet"
    #: Which parameters of which elements are free (see openmm_pqeq.electrostatics.trainable), with bounds.
    trainable: Dict[str, Any] = field(default_factory=lambda: {"chi": "all", "J": "all", "R": "all", "Ks": "all"})
    #: Weights of the targets (0 switches one off).
    weights: Dict[str, float] = field(default_factory=lambda: {"dipole": 1.0, "polarizability": 1.0,
                                                               "field_energy": 1.0, "esp": 0.5, "apt": 0.0})
    #: Error scales: dipole debye, polarizability bohr³, field energy meV, ESP volt, APT e.
    scales: Dict[str, float] = field(default_factory=lambda: {"dipole": 0.1, "polarizability": 1.0,
                                                              "field_energy": 2.0, "esp": 0.1, "apt": 0.05})
    #: Charge constraints of the solve (:mod:`openmm_pqeq.charge_constraint`): {"rule": "total"}
    #: or {"rule": "molecules", "bond_factor": 1.3} (one neutral group per molecule).
    charge_constraint: Dict[str, Any] = field(default_factory=lambda: {"rule": "total"})
    #: Families always put in the test split (e.g. a reference geometry), on top of the seeded ones.
    test_families: List[str] = field(default_factory=list)
    #: Targets whose errors are divided by the number of molecules (charge groups) of a structure.
    per_molecule: List[str] = field(default_factory=list)
    #: Weight of the structures of each kind (info "kind") in the loss, default 1.
    kind_weights: Dict[str, float] = field(default_factory=dict)
    #: Pull of the raw parameters toward the table (× Σ θ²).
    regularization: float = 1e-3
    #: Prior on the spread of the free bond hardnesses (split transfer): × Σ_k (ln κ_k − mean ln κ)²,
    #: a pull toward one common value (whatever it is) rather than toward the start.
    kappa_prior: float = 0.0
    #: Test split: fraction of structure families, seed (never used for fitting).
    test_fraction: float = 0.2
    split_seed: int = 0
    #: Optimizer: "adam" (full batch) or "lbfgs".
    optimizer: str = "adam"
    lr: float = 0.05
    epochs: int = 100
    #: Keep the parameters of the epoch with the lowest training loss.
    keep_best: bool = True
    #: Output: the refined set (JSON), its name, and a metrics file next to it.
    output: str = "runs/pqeq_fit/pqeq-refined.json"
    name: str = "pqeq-refined"
    #: Charge-transfer model of the fitted set: "global" or "split" (bond hardnesses per element, free
    #: with trainable {kappa: all}; per pair with {kappa_pairs: [...]}), and the split-charge options
    #: (openmm_pqeq.electrostatics.bond_hardness).
    charge_transfer: str = "global"
    transfer: Dict[str, Any] = field(default_factory=dict)
    #: PQEq solver tolerances (physical mode).
    charge_tolerance: float = 1e-8
    shell_tolerance: float = 1e-7
    seed: int = 0

    @classmethod
    def from_dict(cls, values: Dict[str, Any], base_dir: Union[str, Path, None] = None) -> "FitConfig":
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown fit-pqeq configuration keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        config = cls()
        for key, value in values.items():
            if key in ("weights", "scales"):
                bad = set(value) - set(TARGETS)
                if bad:
                    raise ValueError(f"unknown targets {sorted(bad)} in {key}; allowed: {list(TARGETS)}")
                merged = dict(getattr(config, key))
                merged.update({k: float(v) for k, v in value.items()})
                value = merged
            setattr(config, key, value)
        from ..charge_constraint import ChargeConstraint

        ChargeConstraint.from_dict(config.charge_constraint)
        if config.charge_transfer not in ("global", "split"):
            raise ValueError(f"charge_transfer is {config.charge_transfer!r}; options are 'global', 'split'")
        bad = set(config.per_molecule) - set(TARGETS)
        if bad:
            raise ValueError(f"unknown targets {sorted(bad)} in per_molecule; allowed: {list(TARGETS)}")
        if config.optimizer not in ("adam", "lbfgs"):
            raise ValueError(f"optimizer is {config.optimizer!r}; options are 'adam', 'lbfgs'")
        if not 0 <= config.test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {config.test_fraction}")
        if config.charge_transfer == "split" and config.weights.get("apt", 0.0) > 0:
            raise ValueError("atomic polar tensors of the split-charge model are not implemented; "
                             "set the 'apt' weight to 0 for charge_transfer 'split'")
        if base_dir is not None:
            config.output = str(Path(base_dir) / config.output) if not Path(config.output).is_absolute() \
                else config.output
            files = [str(Path(base_dir) / f) if not Path(f).is_absolute() else str(f) for f in data_files(config)]
            config.data = files if isinstance(config.data, list) else files[0]
        return config

    @classmethod
    def from_yaml(cls, path: Union[str, Path]) -> "FitConfig":
        import yaml

        with open(path) as handle:
            values = yaml.safe_load(handle) or {}
        return cls.from_dict(values, base_dir=Path(path).parent)

    def to_dict(self) -> Dict[str, Any]:
        return copy.deepcopy(dataclasses.asdict(self))


@dataclass
class Structure:
    """One response reference structure as tensors (Å, e, V/Å)."""

    name: str
    positions: torch.Tensor
    numbers: torch.Tensor
    charge: float
    dipole: torch.Tensor  # (3,) e·Å
    polarizability: torch.Tensor  # (3, 3) Å³
    field_step: float  # V/Å (0 without field energies)
    field_energies: Optional[torch.Tensor]  # (6,) eV, or None (polarizability labelled analytically)
    esp_points: torch.Tensor  # (M, 3) Å
    esp_values: torch.Tensor  # (M,) V
    #: charge group of each atom (N,), or None for one total charge
    groups: Optional[torch.Tensor] = None
    #: reference atomic polar tensors (N, 3, 3) e, [atom, force component, field component], or None
    apt: Optional[torch.Tensor] = None
    family: str = ""
    #: structure kind of the response set ("monomer", "gas", "liquid", "g2", ...; "" when unknown)
    kind: str = ""
    #: fixed split of the structure ("train" or "test", the organic set), "" for the seeded family split
    split: str = ""


def data_files(config: "FitConfig") -> List[str]:
    """The response files of a configuration (``data`` is one path or a list)."""
    return [str(f) for f in config.data] if isinstance(config.data, (list, tuple)) else [str(config.data)]


def atomic_polar_tensors(field_forces: torch.Tensor, field_step: float) -> torch.Tensor:
    """APT (N, 3, 3) e, [i, a, b] = ∂F_ia/∂E_b, from forces (N, 6, 3) eV/Å at +F x̂, −F x̂, +F ŷ,
    −F ŷ, +F ẑ, −F ẑ (central differences, F = ``field_step`` V/Å)."""
    return torch.stack([(field_forces[:, 2 * b] - field_forces[:, 2 * b + 1]) / (2.0 * field_step)
                        for b in range(3)], dim=2)


def load_structures(path: Union[str, Path], charge_constraint: Optional[Dict[str, Any]] = None) -> List[Structure]:
    """Structures of a response file (see :func:`openmm_pqeq.data_generation.response.read_response`),
    with their charge groups under ``charge_constraint`` (default one total charge)."""
    from ..charge_constraint import ChargeConstraint
    from ..data_generation.response import read_response

    policy = ChargeConstraint.from_dict(charge_constraint or {"rule": "total"})
    out = []
    for atoms in read_response(str(path)):
        info = atoms.info
        t = lambda v: torch.as_tensor(np.asarray(v, dtype=float), dtype=torch.float64)  # noqa: E731
        groups = policy.groups(atoms)
        if groups is not None and abs(float(info.get("charge", 0))) > 1e-9:
            raise ValueError(f"structure {info.get('name')!r} has charge {info.get('charge')} e, but the charge "
                             "constraint makes every molecule neutral; leave charged structures out")
        apt = None
        if "field_forces" in atoms.arrays:
            apt = atomic_polar_tensors(t(atoms.arrays["field_forces"]), float(info["field_step"]))
        name = str(info.get("name", atoms.get_chemical_formula()))
        out.append(Structure(
            name=name,
            positions=t(atoms.get_positions()), numbers=torch.as_tensor(atoms.get_atomic_numbers(), dtype=torch.long),
            charge=float(info.get("charge", 0)), dipole=t(info["dipole"]), polarizability=t(info["polarizability"]),
            field_step=float(info.get("field_step", 0.0)),
            field_energies=t(info["field_energies"]) if "field_energies" in info else None,
            esp_points=t(info.get("esp_points", np.zeros((0, 3)))), esp_values=t(info.get("esp_values", np.zeros(0))),
            groups=None if groups is None else torch.as_tensor(groups, dtype=torch.long), apt=apt,
            family=str(info.get("family", name)), kind=str(info.get("kind", "")),
            split=str(info.get("split", "")),
        ))
    return out


def split(structures: Sequence[Structure], test_fraction: float, seed: int,
          test_families: Sequence[str] = ()) -> Dict[str, List[int]]:
    """Seeded split by family (:func:`openmm_pqeq.data_generation.response.split_families`);
    ``test_families`` always go to the test split."""
    from ..data_generation.response import split_families

    class _Frame:
        def __init__(self, s):
            self.info = {"family": s.family or s.name, "name": s.name}
            if s.split:
                self.info["split"] = s.split

    parts = split_families([_Frame(s) for s in structures], test_fraction=test_fraction, seed=seed)
    forced = [k for k in parts["train"] if (structures[k].family or structures[k].name) in set(test_families)]
    return {"train": [k for k in parts["train"] if k not in forced], "test": sorted(parts["test"] + forced)}


def build_pqeq(elements: Sequence[Union[str, int]], params: str = "reaxnet", trainable: Optional[dict] = None,
               charge_tolerance: float = 1e-8, shell_tolerance: float = 1e-7, charge_transfer: str = "global",
               transfer: Optional[dict] = None) -> PQEq:
    """A physical-mode PQEq for isolated structures with (optionally) freed parameters."""
    return PQEq(sorted({int(z) for z in elements}), params=params, mode="physical", trainable=trainable,
                charge_tolerance=charge_tolerance, shell_tolerance=shell_tolerance, on_failure="warn",
                predictor_order=0, max_iterations=500, charge_transfer=charge_transfer,
                transfer=(transfer or None) if charge_transfer == "split" else None)


def free_parameters(pqeq: PQEq) -> List[torch.nn.Parameter]:
    """The raw parameters a fit moves: per-element χ, J, R, K_s, the free bond hardnesses and the
    free shell-spring anisotropies."""
    return (list(pqeq.trainable_parameters.parameters()) + list(pqeq.transfer.parameters())
            + list(pqeq.shell_anisotropy.parameters()))


def _polarizability(pqeq: PQEq, s: Structure, out: Dict[str, torch.Tensor], p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """α (3, 3) Å³ of the split-charge model at the (implicit) solution ``out``."""
    q, d = out["charges"], out["shell_displacements"]
    bonds = out["bonds"]
    q_ref = (q - transfer_charges(out["split_charges"], bonds[0], bonds[1], q.shape[0])).detach()
    return split_polarizability(pqeq, s.positions, s.numbers, out["split_variables"], d, q_ref, p, bonds[0], bonds[1],
                                out["bond_shifts"])


def predict(pqeq: PQEq, s: Structure, targets: Sequence[str] = TARGETS) -> Dict[str, torch.Tensor]:
    """PQEq predictions for one structure, under its charge groups: ``dipole`` (3,) e·Å,
    ``polarizability`` (3, 3) Å³, ``field_energies`` (6,) eV, ``esp`` (M,) V and, for structures
    with reference APTs under global transfer, ``apt`` (N, 3, 3) e (the split-charge model has
    no APTs: its structures are compared on the other targets); differentiable in the freed
    parameters."""
    zero = torch.zeros(3, dtype=torch.float64)
    pqeq.reset()
    out = pqeq(s.positions, s.numbers, None, zero, s.charge, s.groups)
    q, d = out["charges"], out["shell_displacements"]
    p = pqeq.atom_parameters(s.numbers, torch.float64)
    result: Dict[str, torch.Tensor] = {"dipole": out["dipole"]}
    converged = bool(out["converged"])
    n_groups = 1 if s.groups is None else int(s.groups.max()) + 1
    if pqeq.charge_transfer == "split":
        if "polarizability" in targets:
            result["polarizability"] = _polarizability(pqeq, s, out, p)
    elif "apt" in targets and s.apt is not None:
        # α and the APTs share one Hessian and one constrained solve
        result["polarizability"], result["apt"] = linear_response(pqeq, s.positions, q, d, p, s.groups, n_groups)
    elif "polarizability" in targets:
        result["polarizability"] = analytic_polarizability(pqeq, s.positions, q, d, p, s.groups, n_groups)
    if "field_energy" in targets and s.field_energies is not None:
        energies = []
        with pqeq.without_solution_derivatives():  # energies: envelope theorem, no implicit solution needed
            for axis in range(3):
                for sign in (1.0, -1.0):
                    f = torch.zeros(3, dtype=torch.float64)
                    f[axis] = sign * s.field_step
                    # warm start: the last solution (zero field or the previous field)
                    out_f = pqeq(s.positions, s.numbers, None, f, s.charge, s.groups)
                    converged = converged and bool(out_f["converged"])
                    energies.append(out_f["energy"] - out["energy"])
        result["field_energies"] = torch.stack(energies)
    if "esp" in targets and s.esp_points.shape[0] > 0:
        result["esp"] = electrostatic_potential(s.esp_points, s.positions, q, d, p)
    result["converged"] = torch.tensor(converged)
    return result


def structure_errors(pred: Dict[str, torch.Tensor], s: Structure) -> Dict[str, torch.Tensor]:
    """Signed errors in report units: dipole (3,) D, polarizability (3, 3) a.u., field energies (6,) meV,
    ESP (M,) V, APT (N, 3, 3) e."""
    err: Dict[str, torch.Tensor] = {"dipole": (pred["dipole"] - s.dipole) * E_ANGSTROM_TO_DEBYE}
    if "polarizability" in pred:
        err["polarizability"] = (pred["polarizability"] - s.polarizability) * A3_TO_AU
    if "field_energies" in pred and s.field_energies is not None:
        err["field_energy"] = (pred["field_energies"] - s.field_energies) * 1000.0
    if "esp" in pred:
        err["esp"] = pred["esp"] - s.esp_values
    if "apt" in pred:
        err["apt"] = pred["apt"] - s.apt
    return err


def loss_terms(pqeq: PQEq, structures: Sequence[Structure], weights: Dict[str, float],
               scales: Dict[str, float], per_molecule: Sequence[str] = (),
               kind_weights: Optional[Dict[str, float]] = None) -> Dict[str, torch.Tensor]:
    """Mean squared scaled error of each target over ``structures`` and their weighted sum ``loss``.

    Targets named in ``per_molecule`` have their errors divided by the number of charge groups
    (molecules) of the structure, so clusters weigh like monomers (their α grows with size).
    ``kind_weights`` ({kind: w}, default 1) weighs the structures of a kind in every mean."""
    targets = [k for k in TARGETS if weights.get(k, 0.0) > 0]
    sums: Dict[str, torch.Tensor] = {}
    counts: Dict[str, float] = {}
    converged = True
    for s in structures:
        pred = predict(pqeq, s, targets)
        converged = converged and bool(pred["converged"])
        err = structure_errors(pred, s)
        for key, value in err.items():
            if weights.get(key, 0.0) <= 0:
                continue
            if key in per_molecule and s.groups is not None:
                value = value / float(int(s.groups.max()) + 1)
            w = float((kind_weights or {}).get(s.kind, 1.0))
            term = w * ((value / scales[key]) ** 2).sum()
            sums[key] = sums[key] + term if key in sums else term
            counts[key] = counts.get(key, 0) + w * value.numel()
    out = {key: sums[key] / counts[key] for key in sums}
    total = torch.zeros((), dtype=torch.float64)
    for key, value in out.items():
        total = total + weights[key] * value
    out["loss"] = total
    out["converged"] = torch.tensor(converged)
    return out


def water_monomer_axes(positions: torch.Tensor) -> torch.Tensor:
    """Rows: unit vectors in the plane ⊥ C2 (H→H), along C2 (O → H–H midpoint) and out of the
    plane of a water molecule (O, H, H positions (3, 3) Å)."""
    o, h1, h2 = positions[0], positions[1], positions[2]
    c2 = 0.5 * (h1 + h2) - o
    c2 = c2 / torch.linalg.norm(c2)
    hh = h2 - h1
    hh = hh - (hh @ c2) * c2
    hh = hh / torch.linalg.norm(hh)
    return torch.stack([hh, c2, torch.linalg.cross(hh, c2)])


def _is_water_monomer(s: Structure) -> bool:
    return s.numbers.tolist() == [8, 1, 1]


def _summary(rows: List[Dict[str, Any]]) -> Dict[str, float]:
    out: Dict[str, float] = {"n_structures": len(rows)}
    if not rows:
        return out
    for key in ("a_iso", "mu", "a_iso_rel", "mu_rel"):
        out[key] = float(np.mean([r[key] for r in rows]))
    fe = np.concatenate([r["fe"] for r in rows])
    out["fe"] = float(np.mean(fe)) if fe.size else float("nan")
    esp = np.concatenate([r["esp"] for r in rows])
    out["esp"] = float(math.sqrt(np.mean(esp))) if esp.size else float("nan")
    apt = np.concatenate([r["apt"] for r in rows])
    if apt.size:
        out["apt_mae_e"] = float(np.mean(np.abs(apt)))
        out["apt_rmse_e"] = float(math.sqrt(np.mean(apt ** 2)))
    components = [r["components_rel"] for r in rows if "components_rel" in r]
    if components:
        c = np.abs(np.array(components))
        out["monomer_components_relative_mae"] = c.mean(0).tolist()
        out["monomer_components_relative_max"] = c.max(0).tolist()
    return out


def metrics(pqeq: PQEq, structures: Sequence[Structure]) -> Dict[str, Any]:
    """Report metrics: MAE of the isotropic polarizability (a.u.), of the dipole magnitude (D),
    of the field-response energies (meV), RMSE of the ESP (V), the counts and, per structure
    ``kind``, the same plus relative errors (fractions) of the dipole magnitude and the isotropic
    polarizability, the APT error (e, where the reference has APTs) and, for water monomers, the
    relative errors of the polarizability components in plane ⊥ C2, along C2 and out of plane."""
    rows: List[Dict[str, Any]] = []
    with torch.no_grad(), pqeq.without_solution_derivatives():
        for s in structures:
            pred = predict(pqeq, s)
            ref_iso = float(torch.trace(s.polarizability)) / 3
            ref_mu = float(torch.linalg.norm(s.dipole))
            d_iso = float(torch.trace(pred["polarizability"])) / 3 - ref_iso
            d_mu = float(torch.linalg.norm(pred["dipole"])) - ref_mu
            row: Dict[str, Any] = {
                "kind": s.kind, "a_iso": abs(d_iso) * A3_TO_AU, "mu": abs(d_mu) * E_ANGSTROM_TO_DEBYE,
                "a_iso_rel": abs(d_iso) / max(ref_iso, 1e-12), "mu_rel": abs(d_mu) / max(ref_mu, 1e-12),
                "fe": ((1000.0 * (pred["field_energies"] - s.field_energies)).abs().numpy().ravel()
                       if "field_energies" in pred else np.zeros(0)),
                "esp": ((pred["esp"] - s.esp_values) ** 2).numpy().ravel() if "esp" in pred else np.zeros(0),
                "apt": (pred["apt"] - s.apt).numpy().ravel() if "apt" in pred else np.zeros(0)}
            if _is_water_monomer(s):
                axes = water_monomer_axes(s.positions)
                ref = torch.diagonal(axes @ s.polarizability @ axes.T)
                model = torch.diagonal(axes @ pred["polarizability"] @ axes.T)
                row["components_rel"] = ((model - ref) / ref).tolist()
            rows.append(row)
    total = _summary(rows)
    result: Dict[str, Any] = {
        "n_structures": len(structures),
        "polarizability_iso_mae_au": total.get("a_iso", float("nan")),
        "dipole_magnitude_mae_debye": total.get("mu", float("nan")),
        "field_energy_mae_meV": total.get("fe", float("nan")),
        "esp_rmse_V": total.get("esp", float("nan")),
    }
    for key in ("apt_mae_e", "apt_rmse_e"):
        if key in total:
            result[key] = total[key]
    kinds = sorted({r["kind"] for r in rows if r["kind"]})
    if kinds:
        result["by_kind"] = {}
        for kind in kinds:
            part = _summary([r for r in rows if r["kind"] == kind])
            result["by_kind"][kind] = {
                "n_structures": part["n_structures"], "polarizability_iso_mae_au": part["a_iso"],
                "polarizability_iso_relative_mae": part["a_iso_rel"], "dipole_magnitude_mae_debye": part["mu"],
                "dipole_magnitude_relative_mae": part["mu_rel"], "field_energy_mae_meV": part["fe"],
                "esp_rmse_V": part["esp"],
                **{k: part[k] for k in ("apt_mae_e", "apt_rmse_e", "monomer_components_relative_mae",
                                        "monomer_components_relative_max") if k in part}}
    return result


def refined_table(pqeq: PQEq, start: str) -> Dict[str, Dict[str, Any]]:
    """Full parameter table: ``start`` for every element, the freed entries replaced."""
    from ..electrostatics.parameters import _set

    base = copy.deepcopy(_set(start)["elements"])
    tables = {"chi": pqeq.table_chi, "J": pqeq.table_J, "Ks": pqeq.table_Ks,
              "R": torch.tensor([element_parameters(start, z).R if float(pqeq.table_supported[z]) > 0 else 0.0
                                 for z in range(pqeq.table_chi.shape[0])], dtype=torch.float64)}
    for symbol, values in pqeq.trainable_parameters.values(tables).items():
        base[symbol].update({k: float(v) for k, v in values.items()})
    return base


def charge_transfer_record(pqeq: PQEq, seen: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The set's charge-transfer model: ``{"model": "global"}``, or ``"split"`` with its options and
    the bond hardnesses (eV/e²) of the elements and pairs that have their own, fitted ones included
    (``seen``: the pairs with data; :meth:`~openmm_pqeq.electrostatics.bond_hardness.BondHardness.record`)."""
    if pqeq.charge_transfer != "split":
        return {"model": "global"}
    return {"model": "split", **pqeq.transfer.record(seen)}


def generalize_bond_hardness(pqeq: PQEq, train: Sequence[Structure], elements: Sequence[int]) -> Dict[str, Any]:
    """After a split-transfer fit: the charge-transfer record in which only the element pairs that
    form bonds in the ``train`` structures keep their fitted κ⁰ and every other pair gets the
    geometric mean of per-element values fitted to those (docs/method/splitcharge.md, *Bond
    hardness of pairs without data*); ``pqeq.transfer`` is replaced by that (frozen) model, so
    metrics computed next are those of the recorded set."""
    seen = sorted(set().union(*[bonded_pairs(pqeq.transfer, s.positions, s.numbers) for s in train]))
    record = charge_transfer_record(pqeq, seen)
    pqeq.transfer = BondHardness(elements, {k: v for k, v in record.items() if k != "model"})
    pqeq.n_trainable = pqeq.trainable_parameters.n_free + pqeq.shell_anisotropy.n_free
    return record


def kappa_spread(pqeq: PQEq) -> torch.Tensor:
    """Σ_k (ln κ_k − mean ln κ)² over the free bond hardnesses (0 with fewer than two)."""
    logs = pqeq.transfer.free_log_hardness()
    if logs.shape[0] < 2:
        return torch.zeros((), dtype=torch.float64)
    return ((logs - logs.mean()) ** 2).sum()


def _relative(path: str) -> str:
    import os

    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _relative_paths(values: Dict[str, Any]) -> Dict[str, Any]:
    out = {k: (_relative(v) if k == "output" else v) for k, v in values.items()}
    out["data"] = [_relative(v) for v in values["data"]] if isinstance(values["data"], list) else _relative(values["data"])
    return out


def _sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def fit(config: FitConfig, progress: bool = True, log=print, resume: bool = False,
        max_minutes: Optional[float] = None) -> Optional[Dict[str, Any]]:
    """Run a fit; write the refined set (JSON with provenance and metrics) to ``config.output``.

    After every epoch the state (raw parameters, optimizer, history, best) is saved to
    ``config.output + ".checkpoint.pt"``; ``resume`` continues from it.  ``max_minutes`` stops
    after that much wall time (at an epoch boundary, checkpoint saved) and returns None, so a long
    fit can run in chunks.

    Returns the result dict (also written): ``set`` (name, citation, provenance, elements) and
    ``metrics`` {"tabulated": {split: ...}, "refined": {split: ...}}."""
    torch.manual_seed(config.seed)
    files = data_files(config)
    structures = [s for path in files for s in load_structures(path, config.charge_constraint)]
    parts = split(structures, config.test_fraction, config.split_seed, config.test_families)
    train = [structures[k] for k in parts["train"]]
    test = [structures[k] for k in parts["test"]]
    elements = sorted({int(z) for s in structures for z in s.numbers.tolist()})
    pqeq = build_pqeq(elements, config.start, config.trainable, config.charge_tolerance, config.shell_tolerance,
                      config.charge_transfer, config.transfer)
    params = free_parameters(pqeq)
    if not params:
        raise ValueError("no PQEq parameter is free: list elements under `trainable`")
    log(f"fit-pqeq: {len(train)} training and {len(test)} test structures from {', '.join(files)}; "
        f"{sum(p.numel() for p in params)} free parameters, start {config.start!r}")
    checkpoint_path = Path(str(config.output) + ".checkpoint.pt")
    checkpoint = torch.load(checkpoint_path, weights_only=False) if resume and checkpoint_path.exists() else None
    if checkpoint is not None:
        before = checkpoint["before"]
        log(f"resuming from {checkpoint_path} after epoch {checkpoint['epoch']}")
    else:
        before = {"train": metrics(pqeq, train), "test": metrics(pqeq, test)}
    log("tabulated: " + json.dumps(before))

    def closure_value():
        terms = loss_terms(pqeq, train, config.weights, config.scales, config.per_molecule, config.kind_weights)
        reg = sum((p * p).sum() for p in params)
        total = terms["loss"] + config.regularization * reg
        if config.kappa_prior > 0:
            total = total + config.kappa_prior * kappa_spread(pqeq)
        return terms, total

    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=config.lr)
    else:
        optimizer = torch.optim.LBFGS(params, lr=config.lr, max_iter=5, history_size=20,
                                      line_search_fn="strong_wolfe")
    history = []
    rejected = 0
    best = (float("inf"), [p.detach().clone() for p in params])
    first_epoch = 0
    elapsed = 0.0
    if checkpoint is not None:
        with torch.no_grad():
            for p, value in zip(params, checkpoint["raw"]):
                p.copy_(value)
        optimizer.param_groups[0]["lr"] = checkpoint["lr"]
        optimizer.load_state_dict(checkpoint["optimizer"])
        history, rejected, best = checkpoint["history"], checkpoint["rejected"], checkpoint["best"]
        first_epoch, elapsed = checkpoint["epoch"] + 1, checkpoint["elapsed_s"]
    bar = range(first_epoch, config.epochs)
    if progress:
        from tqdm import tqdm

        bar = tqdm(bar, desc="fit-pqeq", unit="epoch", initial=first_epoch, total=config.epochs)
    start_time = time.perf_counter() - elapsed
    chunk_start = time.perf_counter()
    for epoch in bar:
        record: Dict[str, float] = {}

        def closure():
            optimizer.zero_grad()
            terms, total = closure_value()
            total.backward()
            record.clear()
            record.update({k: float(v.detach()) for k, v in terms.items()})
            record["total"] = float(total.detach())
            return total

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # non-converged solves: handled below
            if config.optimizer == "adam":
                closure()
                ok = record["converged"] > 0.5 and math.isfinite(record["total"])
                if ok and record["total"] < best[0]:
                    best = (record["total"], [p.detach().clone() for p in params])
                if ok:
                    optimizer.step()
            else:
                optimizer.step(closure)
                ok = record["converged"] > 0.5 and math.isfinite(record["total"])
                if ok and record["total"] < best[0]:
                    best = (record["total"], [p.detach().clone() for p in params])
        if not ok:
            # a PQEq solve failed (the parameters made the energy non-convex for some structure):
            # back to the best parameters, fresh optimizer state, half the step size
            rejected += 1
            with torch.no_grad():
                for p, value in zip(params, best[1]):
                    p.copy_(value)
            lr = optimizer.param_groups[0]["lr"] * 0.5
            optimizer = (torch.optim.Adam(params, lr=lr) if config.optimizer == "adam" else
                         torch.optim.LBFGS(params, lr=lr, max_iter=5, history_size=20, line_search_fn="strong_wolfe"))
            log(f"epoch {epoch}: a PQEq solve did not converge; back to the best parameters, lr {lr:.3g}")
        history.append({"epoch": epoch, "accepted": ok, **record})
        if progress:
            bar.set_postfix(loss=f"{record['total']:.4g}")  # type: ignore[attr-defined]
        state = {"epoch": epoch, "raw": [p.detach().clone() for p in params], "optimizer": optimizer.state_dict(),
                 "lr": optimizer.param_groups[0]["lr"], "history": history, "rejected": rejected, "best": best,
                 "before": before, "elapsed_s": time.perf_counter() - start_time}
        atomic_write(checkpoint_path, lambda handle: torch.save(state, handle))
        if max_minutes is not None and epoch + 1 < config.epochs and \
                time.perf_counter() - chunk_start > 60.0 * max_minutes:
            log(f"stopping after epoch {epoch} (--max-minutes {max_minutes}); continue with --resume")
            return None
    if config.keep_best:
        with torch.no_grad():
            for p, value in zip(params, best[1]):
                p.copy_(value)
    free_kappa = {"kappa": list(pqeq.transfer.elements), "kappa_pairs": list(pqeq.transfer.pairs),
                  "kappa_slope": pqeq.transfer.slope_free, "kappa_slope_pairs": list(pqeq.transfer.slope_pairs),
                  "Ks_bonds": list(pqeq.transfer.shell_pairs), "Ks_aniso": list(pqeq.shell_anisotropy.free_pairs)}
    # the bounds of the free bond and anisotropy parameters, beside the per-element ones
    free_bounds = {name: bound for name, bound, free in (
        ("kappa", pqeq.transfer.bound, free_kappa["kappa"] or free_kappa["kappa_pairs"]),
        ("kappa_slope", pqeq.transfer.slope_bound, free_kappa["kappa_slope"] or free_kappa["kappa_slope_pairs"]),
        ("Ks_bonds", pqeq.transfer.shell_bound, free_kappa["Ks_bonds"]),
        ("Ks_aniso", pqeq.shell_anisotropy.bound, free_kappa["Ks_aniso"])) if free}
    transfer_record = (generalize_bond_hardness(pqeq, train, elements) if pqeq.charge_transfer == "split"
                       else charge_transfer_record(pqeq))
    after = {"train": metrics(pqeq, train), "test": metrics(pqeq, test)}
    log("refined:   " + json.dumps(after))
    elements_table = refined_table(pqeq, config.start)
    result = {
        "format": "openmm_pqeq.pqeq_parameter_set",
        "name": config.name,
        "citation": (f"{config.start} set refined against PBE/def2-SVPD response data ("
                     + ", ".join(k.replace("_", " ") for k in TARGETS if config.weights.get(k, 0.0) > 0)
                     + f") of {', '.join(Path(f).name for f in files)} with openmm-pqeq fit-pqeq"
                     + (", split-charge transfer" if config.charge_transfer == "split" else "")),
        "provenance": {"config": _relative_paths(config.to_dict()), "start": config.start,
                       "data": [_relative(f) for f in files] if len(files) > 1 else _relative(files[0]),
                       "data_sha256": {_relative(f): _sha256(f) for f in files} if len(files) > 1 else _sha256(files[0]),
                       "command": "openmm-pqeq fit-pqeq CONFIG",
                       "charge_constraint": config.charge_constraint,
                       "n_train": len(train), "n_test": len(test),
                       "test_structures": [s.name for s in test],
                       "free": {**{k: [SYMBOLS[z] for z in v] for k, v in pqeq.trainable_parameters.spec.items()},
                                **free_kappa},
                       "bounds": {**pqeq.trainable_parameters.bounds, **free_bounds},
                       "fit_wall_s": round(time.perf_counter() - start_time, 1),
                       "final_loss": best[0], "rejected_steps": rejected},
        "metrics": {"tabulated": before, "refined": after},
        "history": history,
        "charge_transfer": transfer_record,
        "elements": elements_table,
    }
    anisotropy = pqeq.shell_anisotropy.record()
    if anisotropy:
        result["shell_anisotropy"] = anisotropy
    atomic_write_text(config.output, json.dumps(result, indent=1))
    return result
