"""An OpenMM reporter for PQEq charges, dipole and solver statistics.

The file is plain text that ``numpy.loadtxt`` reads: a ``#`` header, then one row per
report: ``step time_ps dipole_x dipole_y dipole_z (e·Å) iterations converged q_0 ... q_{N-1} (e)``.
Charges are not an output of an OpenMM force, so the reporter evaluates its own copy of the
model (warm-started from its previous report) on the reported positions, with the field
read from the Context's ``pqeq_field_*`` parameters: one extra PQEq solve per report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..charge_constraint import resolve_charge_groups
from ..model import PQEqModel
from ..units import NM_TO_ANGSTROM, V_PER_NM_TO_V_PER_A
from .setup import FIELD_PARAMETERS, atom_setup


class PQEqReporter:
    """Write per-frame PQEq charges, dipole and solver statistics.

    >>> simulation.reporters.append(PQEqReporter("charges.txt", 100, model, topology,
    ...                                          charge_groups="molecules"))  # doctest: +SKIP

    Parameters
    ----------
    file : path of the output text file (overwritten).
    reportInterval : steps between reports.
    model : model file, shipped name, or PQEqModel (the one the force uses).
    topology : the OpenMM Topology; ``atoms``, ``charge``, ``charge_groups`` (default ``"model"``:
        the model's own rule) and ``group_charges`` as given to
        :func:`~openmm_pqeq.integrations.system.add_pqeq_force`.
    """

    def __init__(self, file: Union[str, Path], reportInterval: int, model: Union[str, Path, PQEqModel], topology,
                 atoms: Optional[Sequence[int]] = None, charge: float = 0.0, charge_groups: Optional[str] = "model",
                 group_charges: Optional[Sequence[float]] = None):
        if reportInterval < 1:
            raise ValueError(f"reportInterval is {reportInterval} but must be >= 1")
        if not isinstance(model, PQEqModel):
            from ..io import load_model

            model = load_model(model)
        self.model = model
        rule = resolve_charge_groups(charge_groups, model, None, "PQEqReporter")
        self.setup = atom_setup(topology, atoms, charge, rule, group_charges)
        self.reportInterval = int(reportInterval)
        self._out = open(file, "w")
        n = len(self.setup.atoms)
        self._out.write(f"# openmm_pqeq PQEqReporter: {n} atoms (indices {self.setup.atoms[0]}..{self.setup.atoms[-1]})\n"
                        "# step time_ps dipole_x_eA dipole_y_eA dipole_z_eA iterations converged "
                        + " ".join(f"q{i}_e" for i in range(n)) + "\n")
        self._out.flush()

    def describeNextReport(self, simulation):
        steps = self.reportInterval - simulation.currentStep % self.reportInterval
        return (steps, True, False, False, False, False)

    def report(self, simulation, state):
        from openmm import unit

        setup = self.setup
        positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[setup.atoms] * NM_TO_ANGSTROM
        cell = None
        if setup.periodic:
            box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
            cell = torch.tensor(np.asarray(box) * NM_TO_ANGSTROM, dtype=torch.float64)
        context = simulation.context
        field = torch.tensor([context.getParameter(name) * V_PER_NM_TO_V_PER_A for name in FIELD_PARAMETERS],
                             dtype=torch.float64)
        groups = torch.tensor(setup.groups) if setup.groups is not None else None
        group_charges = torch.tensor(setup.group_charges, dtype=torch.float64) if setup.group_charges else None
        out = self.model(torch.tensor(positions, dtype=torch.float64), torch.tensor(setup.numbers), cell, field,
                         setup.total_charge, groups, group_charges)
        time_ps = state.getTime().value_in_unit(unit.picosecond)
        row = [f"{simulation.currentStep:d}", f"{time_ps:.6f}"] + [f"{x:.8f}" for x in out["dipole"].tolist()]
        row += [str(int(out["iterations"])), str(int(bool(out["converged"])))]
        row += [f"{q:.8f}" for q in out["charges"].tolist()]
        self._out.write(" ".join(row) + "\n")
        self._out.flush()

    def close(self) -> None:
        """Close the output file."""
        self._out.close()

    def __del__(self):
        out = getattr(self, "_out", None)
        if out is not None and not out.closed:
            out.close()


def read_charges(path: Union[str, Path]) -> dict:
    """Read a PQEqReporter file: ``step`` (F,), ``time_ps`` (F,), ``dipole_eA`` (F, 3),
    ``iterations`` (F,), ``converged`` (F,) bool, ``charges_e`` (F, N)."""
    data = np.atleast_2d(np.loadtxt(path))
    return {"step": data[:, 0].astype(int), "time_ps": data[:, 1], "dipole_eA": data[:, 2:5],
            "iterations": data[:, 5].astype(int), "converged": data[:, 6].astype(bool), "charges_e": data[:, 7:]}
