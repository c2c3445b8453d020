"""One-shot evaluation of energy terms for a structure: the engine behind ``openmm-pqeq evaluate``.

>>> from ase.build import molecule
>>> result = evaluate(molecule("H2O"), terms=("pqeq",))
>>> sorted(result)[:3]
['charges_e', 'converged', 'dipole_eA']
"""

from __future__ import annotations

import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

#: Energy terms that ``evaluate`` can compute without a trained model.
MODEL_FREE_TERMS = ("pqeq", "d3")


def _structure_tensors(atoms, device: torch.device) -> tuple:
    positions = torch.tensor(np.asarray(atoms.get_positions()), dtype=torch.float64, device=device)
    numbers = torch.tensor(np.asarray(atoms.get_atomic_numbers()), dtype=torch.long, device=device)
    pbc = np.asarray(atoms.get_pbc())
    if pbc.any() and not pbc.all():
        raise ValueError(f"partially periodic cells (pbc={pbc.tolist()}) are not supported; "
                         "use a fully periodic cell with vacuum padding, or an open system")
    cell = torch.tensor(np.asarray(atoms.get_cell()), dtype=torch.float64, device=device) if pbc.all() else None
    return positions, numbers, cell


def read_structure(path: str, index: str = "-1"):
    """One frame of a structure file (any format ASE reads), with one clear error for a missing
    or empty file, an unknown element symbol, or an ``index`` that is not a frame number or is
    out of range (``index``: an integer, negative counts from the end)."""
    import ase.io
    from ase.io.formats import UnknownFileTypeError

    try:
        frame = int(str(index).strip())
    except ValueError:
        raise ValueError(f"--index must be one frame number (an integer; -1 is the last frame), got {index!r}") from None
    if not os.path.exists(path):
        raise FileNotFoundError(f"structure file {path} does not exist")
    if os.path.getsize(path) == 0:
        raise ValueError(f"structure file {path} is empty: there is no structure to evaluate")
    try:
        return ase.io.read(path, index=frame)
    except (StopIteration, IndexError):
        frames = sum(1 for _ in ase.io.iread(path, index=":"))
        raise ValueError(f"--index {frame} is out of range: {path} has {frames} frame(s) "
                         f"(valid: {-frames} to {frames - 1})") from None
    except KeyError as error:
        raise ValueError(f"cannot read {path}: unknown element symbol {error.args[0]!r}") from None
    except UnknownFileTypeError as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def structure_inputs(atoms, field: Optional[Sequence[float]], charge: Optional[float]) -> Tuple[List[float], float]:
    """The field (3,) V/Å and total charge (e) to use: given values, else ``info["field"]`` and
    ``info["charge"]`` of the structure (as ``label`` and training read them), else zero.  A
    given value that differs from the structure's is used, with a warning that says so; a
    non-finite value is an error."""
    info = getattr(atoms, "info", {})
    resolved = []
    for name, given, default in (("field", field, (0.0, 0.0, 0.0)), ("charge", charge, 0.0)):
        stored = info.get(name)
        value = given if given is not None else (stored if stored is not None else default)
        array = np.asarray(value, dtype=float).reshape(-1)
        expected = 3 if name == "field" else 1
        if array.shape != (expected,) or not np.isfinite(array).all():
            what = "the field must be 3 finite numbers in V/Å" if name == "field" else \
                "the total charge must be a finite number in e"
            raise ValueError(f"{what}, got {np.asarray(value).tolist()}")
        if given is not None and stored is not None and not np.allclose(array, np.asarray(stored, dtype=float)):
            warnings.warn(f"evaluate: the given {name} {array.tolist() if expected == 3 else float(array[0])} "
                          f"overrides the structure's info['{name}'] = {np.asarray(stored).tolist()}", stacklevel=3)
        resolved.append(array)
    return resolved[0].tolist(), float(resolved[1][0])


def evaluate(
    atoms,
    terms: Optional[Sequence[str]] = None,
    mode: Optional[str] = None,
    params: Optional[str] = None,
    field: Optional[Sequence[float]] = None,
    charge: Optional[float] = None,
    d3_options: Optional[Dict] = None,
    pqeq_options: Optional[Dict] = None,
    model: Optional[str] = None,
    charge_groups: Optional[str] = "model",
    device: Optional[str] = None,
) -> Dict:
    """Energy, forces, stress, charges and dipole of an ASE ``Atoms`` object.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure in Å; periodic when ``atoms.pbc`` is all True (the cell is used).
    terms : sequence of {"pqeq", "d3"}
        Energy terms to include (default: PQEq only).
    mode, params : PQEq mode (``"physical"``, default, or ``"reaxnet"``) and parameter set
        (default ``"reaxnet"``).
    field : uniform external field (3,) in V/Å (default: ``atoms.info["field"]``, else zero).
    charge : total charge in e (default: ``atoms.info["charge"]``, else zero).  A given field
        or charge that differs from the structure's info is used, with a warning.
    d3_options : keyword arguments of :class:`openmm_pqeq.dispersion.D3Dispersion`.
    pqeq_options : extra keyword arguments of :class:`openmm_pqeq.electrostatics.PQEq`.
    model : a model file or shipped model name; when given, its terms (E0, PQEq, D3, as
        configured in the model) are evaluated, and giving ``terms``, ``mode``, ``params``
        or an option dict too is an error (they would be ignored).
    charge_groups : ``"model"`` (default: the charge-constraint rule of ``model``, see
        :mod:`openmm_pqeq.charge_constraint`; without a model, or for older model files, one
        total charge), ``"molecules"`` (one neutral group per molecule, molecules by the
        distance rule) or ``"total"`` / None (one total ``charge``).
    device : torch device to compute on (None: the GPU when torch sees one, else the CPU).

    Returns
    -------
    dict with ``energy_eV``, ``terms`` (name -> eV), ``forces_eV_per_A`` (N, 3),
    ``stress_eV_per_A3`` (3, 3, periodic only), ``charges_e`` (N), ``shell_displacements_A``
    (N, 3), ``dipole_eA`` (3), ``scf_iterations``, ``converged`` (plain Python types); the
    PQEq outputs are None when no PQEq term was evaluated.
    """
    if charge_groups not in (None, "model", "molecules", "total"):
        raise ValueError(f"`charge_groups` is {charge_groups!r}; options are 'model', 'molecules', 'total' "
                         "(None: one total charge)")
    from .runtime import resolve_device

    field, charge = structure_inputs(atoms, field, charge)
    device_t = resolve_device(device)
    if model is not None:
        unused = [name for name, value in (("terms", terms), ("mode", mode), ("params", params),
                                           ("d3_options", d3_options), ("pqeq_options", pqeq_options))
                  if value is not None]
        if unused:
            raise ValueError(f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply with a model: its "
                             "own terms and settings are evaluated; drop them, or evaluate without a model")
        return _evaluate_model(atoms, model, field, charge, charge_groups, device_t)
    terms = ("pqeq",) if terms is None else tuple(terms)
    mode = "physical" if mode is None else mode
    params = "reaxnet" if params is None else params
    unknown = [t for t in terms if t not in MODEL_FREE_TERMS]
    if unknown:
        raise ValueError(f"unknown energy term(s) {unknown}; options are {', '.join(MODEL_FREE_TERMS)} "
                         "(the E0 network needs a trained model: see `openmm-pqeq evaluate --help`)")
    if not terms:
        raise ValueError("`terms` is empty: ask for at least one of " + ", ".join(MODEL_FREE_TERMS))
    positions, numbers, cell = _structure_tensors(atoms, device_t)
    strain = torch.zeros(3, 3, dtype=torch.float64, device=device_t, requires_grad=cell is not None)
    deform = torch.eye(3, dtype=torch.float64, device=device_t) + strain
    pos = (positions @ deform) if cell is not None else positions.clone()
    pos.requires_grad_(True)
    strained_cell = cell @ deform if cell is not None else None
    elements = sorted(set(numbers.tolist()))
    field_t = torch.tensor(list(field), dtype=torch.float64, device=device_t)

    energies: Dict[str, torch.Tensor] = {}
    result: Dict = {
        "charges_e": None,
        "shell_displacements_A": None,
        "dipole_eA": None,
        "scf_iterations": None,
        "converged": None,
    }
    if "pqeq" in terms:
        from .electrostatics import PQEq

        from .runtime import check_custom_ops_device

        pqeq = PQEq(elements, params=params, mode=mode, **(pqeq_options or {})).to(device_t)
        check_custom_ops_device(pqeq, device_t)
        groups = None
        if charge_groups == "molecules":
            from .charge_constraint import ChargeConstraint

            groups = torch.as_tensor(ChargeConstraint("molecules").molecule_groups(atoms), device=device_t)
            _check_charge_with_groups(charge)
        out = pqeq(pos, numbers, strained_cell, field_t, total_charge=float(charge), groups=groups)
        energies["pqeq"] = out["energy"]
        result.update(
            charges_e=out["charges"].tolist(),
            shell_displacements_A=out["shell_displacements"].tolist(),
            dipole_eA=out["dipole"].tolist(),
            scf_iterations=int(out["iterations"]),
            converged=bool(out["converged"]),
        )
    if "d3" in terms:
        from .dispersion import D3Dispersion

        energies["d3"] = D3Dispersion(**(d3_options or {})).to(device_t)(pos, numbers, strained_cell)

    total = sum(energies.values())
    inputs = [pos] + ([strain] if cell is not None else [])
    grads = torch.autograd.grad(total, inputs)
    result["energy_eV"] = float(total.detach())
    result["terms"] = {name: float(value.detach()) for name, value in energies.items()}
    result["forces_eV_per_A"] = (-grads[0]).tolist()
    if cell is not None:
        volume = float(torch.linalg.det(cell).abs())
        result["stress_eV_per_A3"] = (grads[1] / volume).tolist()
    return result


def _check_charge_with_groups(charge: float) -> None:
    if charge != 0.0:
        raise ValueError(f"a total charge of {charge} e does not apply with one neutral group per molecule: use "
                         "charge_groups='total' (--charge-groups total) for one total charge")


def _evaluate_model(atoms, model: str, field: Sequence[float], charge: float, charge_groups: Optional[str],
                    device: torch.device) -> Dict:
    from .charge_constraint import ChargeConstraint, policy_of, resolve_charge_groups, warn_total_spanning_molecules
    from .io import load_model
    from .model import energy_forces_stress
    from .runtime import prepare_model

    positions, numbers, cell = _structure_tensors(atoms, device)
    loaded, _ = prepare_model(load_model(model), device)
    rule = resolve_charge_groups(charge_groups, loaded, None, "evaluate")
    policy = policy_of(loaded)
    bond_factor = policy.bond_factor if policy is not None and policy.molecular else ChargeConstraint().bond_factor
    molecules = torch.as_tensor(ChargeConstraint("molecules", bond_factor=bond_factor).molecule_groups(atoms),
                                device=device)
    groups = molecules if rule == "molecules" else None
    if groups is not None:
        _check_charge_with_groups(charge)
    if groups is None:
        warn_total_spanning_molecules(loaded, int(molecules.max()) + 1, "evaluate")
    out = energy_forces_stress(loaded, positions, numbers, cell,
                               torch.tensor(list(field), dtype=torch.float64, device=device), float(charge), groups)
    solved = loaded.pqeq is not None
    result = {
        "energy_eV": float(out["energy"]),
        "terms": {name: float(out["energy_" + name]) for name in ("e0", "pqeq", "d3")},
        "forces_eV_per_A": out["forces"].tolist(),
        "charges_e": out["charges"].tolist() if solved else None,
        "shell_displacements_A": out["shell_displacements"].tolist() if solved else None,
        "dipole_eA": out["dipole"].tolist() if solved else None,
        "scf_iterations": int(out["iterations"]) if solved else None,
        "converged": bool(out["converged"]) if solved else None,
    }
    if cell is not None:
        result["stress_eV_per_A3"] = out["stress"].tolist()
    return result
