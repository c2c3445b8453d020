"""One-shot evaluation of energy terms for a structure: the engine behind ``openmm-pqeq evaluate``.

>>> from ase.build import molecule
>>> result = evaluate(molecule("H2O"), terms=("pqeq",))
>>> sorted(result)[:3]
['charges_e', 'converged', 'dipole_eA']
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

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


def evaluate(
    atoms,
    terms: Sequence[str] = ("pqeq",),
    mode: str = "physical",
    params: str = "reaxnet",
    field: Sequence[float] = (0.0, 0.0, 0.0),
    charge: float = 0.0,
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
        Energy terms to include.
    mode, params : PQEq mode (``"physical"``, ``"reaxnet"``) and parameter set.
    field : uniform external field (3,) in V/Å.
    charge : total charge in e.
    d3_options : keyword arguments of :class:`openmm_pqeq.dispersion.D3Dispersion`.
    pqeq_options : extra keyword arguments of :class:`openmm_pqeq.electrostatics.PQEq`.
    model : a model file or shipped model name; when given, its terms (E0, PQEq, D3, as
        configured in the model) are evaluated and ``terms``, ``mode``, ``params`` and the
        option dicts are not used.
    charge_groups : ``"model"`` (default: the charge-constraint rule of ``model``, see
        :mod:`openmm_pqeq.charge_constraint`; without a model, or for older model files, one
        total charge), ``"molecules"`` (one neutral group per molecule, molecules by the
        distance rule) or ``"total"`` / None (one total ``charge``).
    device : torch device to compute on (None: the GPU when torch sees one, else the CPU).

    Returns
    -------
    dict with ``energy_eV``, ``terms`` (name -> eV), ``forces_eV_per_A`` (N, 3),
    ``stress_eV_per_A3`` (3, 3, periodic only), ``charges_e`` (N), ``shell_displacements_A``
    (N, 3), ``dipole_eA`` (3), ``scf_iterations``, ``converged`` (plain Python types).
    """
    if charge_groups not in (None, "model", "molecules", "total"):
        raise ValueError(f"`charge_groups` is {charge_groups!r}; options are 'model', 'molecules', 'total' "
                         "(None: one total charge)")
    from .runtime import resolve_device

    device_t = resolve_device(device)
    if model is not None:
        return _evaluate_model(atoms, model, field, charge, charge_groups, device_t)
    unknown = [t for t in terms if t not in MODEL_FREE_TERMS]
    if unknown:
        raise ValueError(f"unknown energy term(s) {unknown}; options are {', '.join(MODEL_FREE_TERMS)} "
                         "(the E0 network needs a trained model: see `openmm-pqeq evaluate --help`)")
    if not terms:
        raise ValueError("`terms` is empty: ask for at least one of " + ", ".join(MODEL_FREE_TERMS))
    positions, numbers, cell = _structure_tensors(atoms, device_t)
    n = positions.shape[0]
    strain = torch.zeros(3, 3, dtype=torch.float64, device=device_t, requires_grad=cell is not None)
    deform = torch.eye(3, dtype=torch.float64, device=device_t) + strain
    pos = (positions @ deform) if cell is not None else positions.clone()
    pos.requires_grad_(True)
    strained_cell = cell @ deform if cell is not None else None
    elements = sorted(set(numbers.tolist()))
    field_t = torch.tensor(list(field), dtype=torch.float64, device=device_t)

    energies: Dict[str, torch.Tensor] = {}
    result: Dict = {
        "charges_e": [0.0] * n,
        "shell_displacements_A": [[0.0, 0.0, 0.0]] * n,
        "dipole_eA": [0.0, 0.0, 0.0],
        "scf_iterations": 0,
        "converged": True,
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
    if groups is None:
        warn_total_spanning_molecules(loaded, int(molecules.max()) + 1, "evaluate")
    out = energy_forces_stress(loaded, positions, numbers, cell,
                               torch.tensor(list(field), dtype=torch.float64, device=device), float(charge), groups)
    result = {
        "energy_eV": float(out["energy"]),
        "terms": {name: float(out["energy_" + name]) for name in ("e0", "pqeq", "d3")},
        "forces_eV_per_A": out["forces"].tolist(),
        "charges_e": out["charges"].tolist(),
        "shell_displacements_A": out["shell_displacements"].tolist(),
        "dipole_eA": out["dipole"].tolist(),
        "scf_iterations": int(out["iterations"]),
        "converged": bool(out["converged"]),
    }
    if cell is not None:
        result["stress_eV_per_A3"] = out["stress"].tolist()
    return result
