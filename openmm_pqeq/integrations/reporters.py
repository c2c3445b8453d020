"""An OpenMM reporter for PQEq charges, dipole and solver statistics.

The file is plain text that ``numpy.loadtxt`` reads: a ``#`` header, then one row per
report: ``step time_ps dipole_x dipole_y dipole_z (e·Å) iterations converged q_0 ... q_{N-1} (e)``.
Charges are not an output of an OpenMM force, so the reporter evaluates its own copy of the
model (warm-started from its previous report) on the reported positions, with the field
read from the Context's ``pqeq_field_*`` parameters: one extra PQEq solve per report.

With ``shells_file`` a second file gets, per report, ``step time_ps`` and the shell dipole
p_i = −Z_i d_i (e·Å, three columns per atom) of each atom: the part of the dipole that the
charges alone miss (the system dipole is Σ q_i r̃_i + p_i).  :func:`read_shell_dipoles` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..charge_constraint import resolve_charge_groups
from ..model import PQEqModel
from .inputs import ModelInputs, state_inputs
from .setup import FIELD_PARAMETERS, atom_setup


class PQEqReporter:
    """Write per-frame PQEq charges, dipole and solver statistics.

    >>> simulation.reporters.append(PQEqReporter("charges.txt", 100, model, topology,
    ...                                          charge_groups="molecules"))  # doctest: +SKIP

    Parameters
    ----------
    file : path of the output text file (overwritten, or continued with ``append=True``).
    reportInterval : steps between reports.
    model : model file, shipped name, or PQEqModel (the one the force uses).
    topology : the OpenMM Topology; ``atoms``, ``charge``, ``charge_groups`` (default ``"model"``:
        the model's own rule) and ``group_charges`` as given to
        :func:`~openmm_pqeq.integrations.system.add_pqeq_force`.
    shells_file : optional path of a second text file for the per-atom shell dipoles (module docstring).
    device : where the reporter's solve runs (None: the GPU when torch sees one).
    force : instead of ``topology`` and the options after it, the PQEq force of the System (what
        :func:`~openmm_pqeq.integrations.system.add_pqeq_force` returns, or ``system.getForce(k)``):
        the reporter then takes its atoms and charge constraints
        (:func:`~openmm_pqeq.integrations.openmm_force.force_setup`).
    """

    def __init__(self, file: Union[str, Path], reportInterval: int, model: Union[str, Path, PQEqModel],
                 topology=None, atoms: Optional[Sequence[int]] = None, charge: float = 0.0,
                 charge_groups: Optional[str] = "model", group_charges: Optional[Sequence[float]] = None,
                 shells_file: Optional[Union[str, Path]] = None, append: bool = False, device: Optional[str] = None,
                 force=None):
        if reportInterval < 1:
            raise ValueError(f"reportInterval is {reportInterval} but must be >= 1")
        if not isinstance(model, PQEqModel):
            from ..io import load_model

            model = load_model(model)
        from ..runtime import prepare_model

        self.model, self.device = prepare_model(model, device)
        if force is not None:
            if topology is not None or atoms is not None or charge != 0.0 or charge_groups != "model" \
                    or group_charges is not None:
                raise ValueError("PQEqReporter takes the atoms and charge constraints either from `force` or "
                                 "from `topology` and its options, not both")
            from .openmm_force import force_setup

            self.setup = force_setup(force)
        elif topology is None:
            raise ValueError("PQEqReporter needs the `topology` (and the options given to add_pqeq_force) "
                             "or the PQEq `force`")
        else:
            rule = resolve_charge_groups(charge_groups, model, None, "PQEqReporter")
            self.setup = atom_setup(topology, atoms, charge, rule, group_charges)
        self._inputs = ModelInputs(self.setup).to(self.device)
        self.reportInterval = int(reportInterval)
        n = len(self.setup.atoms)
        mode = "a" if append else "w"  # append: continue existing files (a resumed run), no second header
        self._out = open(file, mode)
        if not append:
            self._out.write(f"# openmm_pqeq PQEqReporter: {n} atoms (indices {self.setup.atoms[0]}.."
                            f"{self.setup.atoms[-1]})\n# step time_ps dipole_x_eA dipole_y_eA dipole_z_eA iterations "
                            "converged " + " ".join(f"q{i}_e" for i in range(n)) + "\n")
            self._out.flush()
        self._shells = None
        if shells_file is not None:
            if model.pqeq is None:
                raise ValueError("`shells_file` needs a model with a PQEq term")
            self._shells = open(shells_file, mode)
            if not append:
                self._shells.write(f"# openmm_pqeq PQEqReporter shell dipoles -Z_i d_i: {n} atoms\n# step time_ps "
                                   + " ".join(f"p{i}_{c}_eA" for i in range(n) for c in "xyz") + "\n")
                self._shells.flush()

    def describeNextReport(self, simulation):
        steps = self.reportInterval - simulation.currentStep % self.reportInterval
        return (steps, True, False, False, False, False)

    def report(self, simulation, state):
        from openmm import unit

        field = [simulation.context.getParameter(name) for name in FIELD_PARAMETERS]
        with torch.no_grad():
            out = self.model(*state_inputs(state, self._inputs, field))
        out = {key: value.cpu() for key, value in out.items()}
        time_ps = state.getTime().value_in_unit(unit.picosecond)
        row = [f"{simulation.currentStep:d}", f"{time_ps:.6f}"] + [f"{x:.8f}" for x in out["dipole"].tolist()]
        row += [str(int(out["iterations"])), str(int(bool(out["converged"])))]
        row += [f"{q:.8f}" for q in out["charges"].tolist()]
        self._out.write(" ".join(row) + "\n")
        self._out.flush()
        if self._shells is not None:
            z = self.model.pqeq.table_Z.to(torch.float64).cpu().index_select(0, self._inputs.numbers.cpu())
            shell_dipoles = -z.unsqueeze(1) * out["shell_displacements"].detach().to(torch.float64)
            values = " ".join(f"{p:.8f}" for p in shell_dipoles.reshape(-1).tolist())
            self._shells.write(f"{simulation.currentStep:d} {time_ps:.6f} {values}\n")
            self._shells.flush()

    def close(self) -> None:
        """Close the output file(s)."""
        for handle in (self._out, getattr(self, "_shells", None)):
            if handle is not None and not handle.closed:
                handle.close()

    def __del__(self):
        if getattr(self, "_out", None) is not None:
            self.close()


def read_charges(path: Union[str, Path]) -> dict:
    """Read a PQEqReporter file: ``step`` (F,), ``time_ps`` (F,), ``dipole_eA`` (F, 3),
    ``iterations`` (F,), ``converged`` (F,) bool, ``charges_e`` (F, N)."""
    data = np.atleast_2d(np.loadtxt(path))
    return {"step": data[:, 0].astype(int), "time_ps": data[:, 1], "dipole_eA": data[:, 2:5],
            "iterations": data[:, 5].astype(int), "converged": data[:, 6].astype(bool), "charges_e": data[:, 7:]}


def read_shell_dipoles(path: Union[str, Path]) -> dict:
    """Read a PQEqReporter ``shells_file``: ``step`` (F,), ``time_ps`` (F,),
    ``shell_dipoles_eA`` (F, N, 3) e·Å."""
    data = np.atleast_2d(np.loadtxt(path))
    return {"step": data[:, 0].astype(int), "time_ps": data[:, 1],
            "shell_dipoles_eA": data[:, 2:].reshape(data.shape[0], -1, 3)}
