"""Polarizable charge equilibration (PQEq): self-consistent charges and shells.

Energy (Naserifar, Brooks, Goddard, J. Chem. Phys. 146, 124117 (2017); METHOD.md §2)::

    E = Σ_i [χ_i q_i + ½ J_i q_i² + ½ K_s,i |d_i|²]
        + Coulomb energy of cores (q_i + Z_i at r_i) and shells (−Z_i at r_i + d_i)
        − E_field · Σ_i (q_i r̃_i − Z_i d_i)

minimized over charges q (subject to fixed total charge, or fixed charge per group) and
shell displacements d.  Forces and stress follow by autograd at the converged solution
(Hellmann–Feynman: ∂E/∂q is constant over each group and ∂E/∂d = 0 there).

Two modes:

- ``"physical"`` (default): converged self-consistency (tolerances in eV/e and eV/Å, an
  error or a warning when it does not converge), periodic Ewald/PME, the field term.
  The solve is matrix-free: preconditioned conjugate gradients on the charges with the
  group constraints built into the preconditioner, alternating with shell updates
  ``d ← d − (∂E/∂d)/K_s``, warm-started from the previous call (memory O(N)).
- ``"reaxnet"``: the published ReaxNet practice (Gao et al., Nat. Commun. 16, 10484
  (2025)): tapered 12.5 Å kernel, minimum image, two cycles of {exact charge solve,
  one-shot shell update d = F/K_s capped at 0.25 Å}, no Ewald.  Its forces are the
  gradient at frozen charges and shells, as published; they are not exact gradients.

Field coordinates r̃ (project choice): with charge groups (e.g. one per molecule) each
group is made whole around its first atom by the minimum-image convention, so a neutral
molecule's field energy does not change when an atom is wrapped into the box.  With a
single total-charge constraint the coordinates are used as given, which is continuous in
MD because OpenMM passes unwrapped coordinates.
"""

from __future__ import annotations

import math
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from .._torchscript import constant
from ..elements import SYMBOLS
from ..neighbors import NeighborList
from ..units import COULOMB_EV_A, COULOMB_EV_A_PUBLISHED
from .constraints import group_sum, make_feasible, project_out_group_means, project_preconditioned
from .coulomb import GaussianCoulomb, all_pairs, minimum_image_pairs
from .kernels import LAMBDA, LAMBDA_PUBLISHED, gaussian_exponent, pair_screening, safe_norm
from .parameters import parameter_table

#: Shell displacement cap of the published practice (Å).
RE_SHELL_CAP: float = 0.25
#: Cutoff of the published tapered kernel (Å).
RE_CUTOFF: float = 12.5


class PQEq(torch.nn.Module):
    """PQEq charges, shells, dipole and energy for one structure.

    Parameters
    ----------
    elements : sequence of str or int
        Elements the module must support (fixes parameter tables and the Ewald cutoff).
    params : str
        Parameter set: ``"reaxnet"`` (default), ``"pqeq0"``, ``"pqeq1"``, ``"pqeq3"``.
    mode : {"physical", "reaxnet"}
        See the module docstring.
    real_space_cutoff : float
        Minimum real-space cutoff (Å) of the Ewald sum (physical mode, periodic).  The
        Ewald β is set from it; the cutoff is enlarged automatically when wide Gaussians
        (soft cations: Na, K, Ba ...) need it, so the real-space sum stays converged.
    ewald_tolerance : float
        Relative truncation error of the real- and reciprocal-space sums.
    reciprocal : {"auto", "ewald", "pme"}
        Reciprocal-space method; ``"auto"`` uses the Ewald sum below ``pme_threshold`` atoms.
    charge_tolerance : float
        Convergence: max |∂E/∂q_i − μ_g| in eV/e.
    shell_tolerance : float
        Convergence: max |∂E/∂d_i| in eV/Å.
    max_iterations : int
        Maximum number of charge/shell cycles (physical mode).
    max_cg_iterations : int
        Maximum conjugate-gradient iterations per charge solve.
    on_failure : {"raise", "warn"}
        What a non-converged solve does.
    min_distance : float
        Two atoms closer than this (Å) are an error (overlapping atoms).

    >>> pqeq = PQEq(["O", "H"])
    >>> pos = torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]], dtype=torch.float64)
    >>> out = pqeq(pos, torch.tensor([8, 1, 1]), None, torch.zeros(3, dtype=torch.float64))
    >>> round(float(out["charges"].sum()), 12)
    0.0
    """

    def __init__(
        self,
        elements: Sequence[Union[str, int]],
        params: str = "reaxnet",
        mode: str = "physical",
        real_space_cutoff: float = 10.0,
        ewald_tolerance: float = 1e-7,
        reciprocal: str = "auto",
        pme_threshold: int = 3000,
        charge_tolerance: float = 1e-6,
        shell_tolerance: float = 1e-5,
        max_iterations: int = 200,
        max_cg_iterations: int = 500,
        on_failure: str = "raise",
        min_distance: float = 0.3,
    ):
        super().__init__()
        if mode not in ("physical", "reaxnet"):
            raise ValueError(f"`mode` is {mode!r}; options are 'physical', 'reaxnet'")
        if reciprocal not in ("auto", "ewald", "pme"):
            raise ValueError(f"`reciprocal` is {reciprocal!r}; options are 'auto', 'ewald', 'pme'")
        if on_failure not in ("raise", "warn"):
            raise ValueError(f"`on_failure` is {on_failure!r}; options are 'raise', 'warn'")
        for name, value in (("charge_tolerance", charge_tolerance), ("shell_tolerance", shell_tolerance),
                            ("ewald_tolerance", ewald_tolerance), ("real_space_cutoff", real_space_cutoff)):
            if not value > 0:
                raise ValueError(f"`{name}` is {value} but must be positive")
        self.mode: str = mode
        self.params: str = params
        self.reciprocal: str = reciprocal
        self.pme_threshold: int = int(pme_threshold)
        self.charge_tolerance: float = float(charge_tolerance)
        self.shell_tolerance: float = float(shell_tolerance)
        self.max_iterations: int = int(max_iterations) if mode == "physical" else 2
        self.max_cg_iterations: int = int(max_cg_iterations)
        self.on_failure: str = on_failure
        self.min_distance: float = float(min_distance)
        self.shell_cap: float = RE_SHELL_CAP if mode == "reaxnet" else 0.0

        table = parameter_table(params, elements)
        lam = LAMBDA_PUBLISHED if mode == "reaxnet" else LAMBDA
        for key in ("chi", "J", "Z", "Ks", "polarizable", "supported"):
            self.register_buffer(f"table_{key}", table[key])
        self.register_buffer("table_exponent", torch.where(table["supported"] > 0, gaussian_exponent(
            torch.where(table["supported"] > 0, table["R"], torch.ones_like(table["R"])), lam), torch.zeros_like(table["R"])))
        self.element_names: List[str] = [SYMBOLS[z] for z in range(table["chi"].shape[0])]

        # Warm start (persists across calls, also inside a frozen TorchScript module).
        self.register_buffer("last_charges", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("last_shells", torch.zeros(0, 3, dtype=torch.float64))

        if mode == "reaxnet":
            k_e = COULOMB_EV_A_PUBLISHED
            self.cutoff: float = RE_CUTOFF
            self.beta: float = 0.0
            self.coulomb_open = GaussianCoulomb("tapered", k_e, taper_cutoff=RE_CUTOFF)
            self.coulomb_ewald = GaussianCoulomb("tapered", k_e, taper_cutoff=RE_CUTOFF)
            self.coulomb_pme = GaussianCoulomb("tapered", k_e, taper_cutoff=RE_CUTOFF)
        else:
            k_e = COULOMB_EV_A
            x = math.sqrt(-math.log(ewald_tolerance))
            a = self.table_exponent[table["supported"] > 0]
            alpha_min = float(pair_screening(a.min(), a.min()))
            self.beta = x / real_space_cutoff
            self.cutoff = max(real_space_cutoff, x / alpha_min)
            self.coulomb_open = GaussianCoulomb("direct", k_e)
            self.coulomb_ewald = GaussianCoulomb("ewald", k_e, beta=self.beta, reciprocal="ewald",
                                                 kspace_tolerance=ewald_tolerance)
            self.coulomb_pme = GaussianCoulomb("ewald", k_e, beta=self.beta, reciprocal="pme",
                                               kspace_tolerance=ewald_tolerance)
        self.neighbors = NeighborList(self.cutoff)

    # ------------------------------------------------------------------ inputs
    def _check_inputs(self, positions: torch.Tensor, numbers: torch.Tensor, cell: Optional[torch.Tensor]):
        if positions.dim() != 2 or positions.shape[1] != 3:
            raise ValueError("positions must have shape (N, 3), got " + str(list(positions.shape)))
        if numbers.shape[0] != positions.shape[0]:
            raise ValueError("numbers has " + str(numbers.shape[0]) + " entries but positions has "
                             + str(positions.shape[0]) + " atoms")
        if not bool(torch.isfinite(positions).all()):
            raise ValueError("positions contain NaN or infinite values")
        if cell is not None:
            if not bool(torch.isfinite(cell).all()):
                raise ValueError("cell contains NaN or infinite values")
            if float(torch.linalg.det(constant(cell)).abs()) < 1e-6:
                raise ValueError("cell is singular (volume ~ 0 Å^3); pass None for an open system")
            if self.mode == "reaxnet":
                # the published practice uses the minimum-image convention, defined only when
                # every perpendicular width of the cell is at least twice the 12.5 Å cutoff
                c = constant(cell)
                volume = torch.linalg.det(c).abs()
                faces = torch.stack([torch.linalg.cross(c[1], c[2]), torch.linalg.cross(c[2], c[0]),
                                     torch.linalg.cross(c[0], c[1])])
                areas = torch.sqrt((faces * faces).sum(1))
                width = float((volume / areas).min())
                if width < 2.0 * self.cutoff:
                    raise ValueError("mode 'reaxnet' uses the minimum-image convention and needs every cell width "
                                     + ">= 2 x " + str(self.cutoff) + " Å; this cell's smallest width is "
                                     + str(width) + " Å: use a supercell or mode 'physical' (Ewald, any cell)")
        n_table = self.table_supported.shape[0]
        bad = (numbers < 1) | (numbers >= n_table)
        if not bool(bad.any()):
            bad = self.table_supported.index_select(0, numbers) == 0
        if bool(bad.any()):
            z = int(numbers[bad][0])
            name = self.element_names[z] if 0 <= z < n_table else "Z=" + str(z)
            raise ValueError("element " + name + " (Z=" + str(z) + ") is not supported by this PQEq module "
                             + "(parameter set '" + self.params + "', elements given at construction)")

    def _pairs(
        self, positions: torch.Tensor, cell: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = positions.shape[0]
        if cell is None and self.mode == "physical":
            i, j = all_pairs(n, positions.device)
            shifts = torch.zeros((i.shape[0], 3), dtype=positions.dtype, device=positions.device)
        else:
            i, j, shifts = self.neighbors(positions, cell)
        pos = constant(positions)
        vec = pos.index_select(0, j) - pos.index_select(0, i)
        if cell is not None:
            vec = vec + shifts @ constant(cell)
        dist = safe_norm(vec)
        if self.mode == "reaxnet":
            keep = minimum_image_pairs(i, j, dist, n) & (dist < self.cutoff)
            i, j, shifts, dist = i[keep], j[keep], shifts[keep], dist[keep]
        if dist.numel() > 0:
            k = int(torch.argmin(dist))
            if float(dist[k]) < self.min_distance:
                raise ValueError("atoms " + str(int(i[k])) + " and " + str(int(j[k])) + " are "
                                 + str(float(dist[k])) + " Å apart (closer than min_distance="
                                 + str(self.min_distance) + " Å): overlapping atoms or wrong length unit?")
        return i, j, shifts

    # --------------------------------------------------------------- pieces
    def _use_pme(self, n_atoms: int, cell: Optional[torch.Tensor]) -> bool:
        if cell is None or self.mode == "reaxnet":
            return False
        if self.reciprocal == "pme":
            return True
        return self.reciprocal == "auto" and n_atoms >= self.pme_threshold

    def _coulomb_energy(
        self, positions: torch.Tensor, d: torch.Tensor, qc: torch.Tensor, qs: torch.Tensor, a: torch.Tensor,
        cell: Optional[torch.Tensor], i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor,
    ) -> torch.Tensor:
        if cell is None:
            return self.coulomb_open.energy(positions, d, qc, qs, a, cell, i, j, shifts)
        if self._use_pme(positions.shape[0], cell):
            return self.coulomb_pme.energy(positions, d, qc, qs, a, cell, i, j, shifts)
        return self.coulomb_ewald.energy(positions, d, qc, qs, a, cell, i, j, shifts)

    def _core_potential(
        self, charges: torch.Tensor, positions: torch.Tensor, cell: Optional[torch.Tensor],
        i: torch.Tensor, j: torch.Tensor, kernel: torch.Tensor,
    ) -> torch.Tensor:
        if cell is None:
            return self.coulomb_open.core_potential(charges, positions, cell, i, j, kernel)
        if self._use_pme(positions.shape[0], cell):
            return self.coulomb_pme.core_potential(charges, positions, cell, i, j, kernel)
        return self.coulomb_ewald.core_potential(charges, positions, cell, i, j, kernel)

    def field_coordinates(
        self, positions: torch.Tensor, cell: Optional[torch.Tensor], groups: torch.Tensor, n_groups: int,
        molecular: bool,
    ) -> torch.Tensor:
        """Coordinates (N, 3) Å that couple to the field: each group made whole around its
        first atom (minimum image) when ``molecular`` and periodic, else ``positions``."""
        if cell is None or not molecular:
            return positions
        index = torch.arange(positions.shape[0], device=positions.device)
        first = torch.full((n_groups,), positions.shape[0], dtype=torch.long, device=positions.device)
        first = first.scatter_reduce(0, groups, index, reduce="amin", include_self=True)
        anchor = positions.index_select(0, first.index_select(0, groups))
        frac = torch.linalg.solve(cell.transpose(0, 1), (positions - anchor).transpose(0, 1)).transpose(0, 1)
        frac = frac - torch.round(constant(frac))
        return anchor + frac @ cell

    def _energy(
        self, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor, p: Dict[str, torch.Tensor],
        cell: Optional[torch.Tensor], i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor,
        field: torch.Tensor, field_positions: torch.Tensor,
    ) -> torch.Tensor:
        z = p["Z"]
        onsite = (p["chi"] * q + 0.5 * p["J"] * q * q).sum() + 0.5 * (p["Ks"] * (d * d).sum(1)).sum()
        coulomb = self._coulomb_energy(positions, d, q + z, -z, p["a"], cell, i, j, shifts)
        dipole = (q.unsqueeze(1) * field_positions - z.unsqueeze(1) * d).sum(0)
        return onsite + coulomb - (field * dipole).sum()

    def _gradients(
        self, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor, p: Dict[str, torch.Tensor],
        cell: Optional[torch.Tensor], i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor,
        field: torch.Tensor, field_positions: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """∂E/∂q (N,) eV/e and ∂E/∂d (N, 3) eV/Å at fixed positions."""
        if not torch.is_grad_enabled():
            raise RuntimeError("PQEq needs autograd for its charge/shell solve: do not call it under torch.no_grad()")
        qv = constant(q).requires_grad_(True)
        dv = constant(d).requires_grad_(True)
        cell_d: Optional[torch.Tensor] = None
        if cell is not None:
            cell_d = constant(cell)
        energy = self._energy(constant(positions), qv, dv, p, cell_d, i, j, shifts, constant(field),
                              constant(field_positions))
        grads = torch.autograd.grad([energy], [qv, dv])
        gq, gd = grads[0], grads[1]
        assert gq is not None and gd is not None
        return constant(gq), constant(gd) * p["pol"].unsqueeze(1)

    def _solve_charges(
        self, rhs: torch.Tensor, p: Dict[str, torch.Tensor], positions: torch.Tensor, cell: Optional[torch.Tensor],
        i: torch.Tensor, j: torch.Tensor, kernel: torch.Tensor, groups: torch.Tensor, counts: torch.Tensor,
        tolerance: float,
    ) -> Tuple[torch.Tensor, int, float]:
        """Solve ``A δ = rhs`` in the constraint subspace by preconditioned CG (A: charge
        Hessian, J on the diagonal plus the core–core Coulomb block).  Returns (δ, iterations,
        final projected residual max-norm in eV/e)."""
        inv_diag = 1.0 / p["J"]
        weight_sums = group_sum(inv_diag, groups, counts.shape[0])
        delta = torch.zeros_like(rhs)
        # The residual is kept projected (group means removed): its group-constant part is the
        # Lagrange multiplier, orders of magnitude larger than the residual near convergence.
        r = project_out_group_means(rhs, groups, counts)
        z = project_preconditioned(r, inv_diag, groups, weight_sums)
        direction = z.clone()
        rz = (r * z).sum()
        residual = float(r.abs().max())
        iterations = 0
        while residual > tolerance and iterations < self.max_cg_iterations:
            hp = p["J"] * direction + self._core_potential(direction.unsqueeze(1), positions, cell, i, j, kernel).squeeze(1)
            curvature = (direction * hp).sum()
            if not bool(curvature > 0) or not bool(rz > 0):
                break
            step = rz / curvature
            delta = delta + step * direction
            r = project_out_group_means(r - step * hp, groups, counts)
            z = project_preconditioned(r, inv_diag, groups, weight_sums)
            rz_new = (r * z).sum()
            direction = z + (rz_new / rz) * direction
            rz = rz_new
            iterations += 1
            residual = float(r.abs().max())
        return delta, iterations, residual

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        positions: torch.Tensor,
        numbers: torch.Tensor,
        cell: Optional[torch.Tensor],
        field: torch.Tensor,
        total_charge: float = 0.0,
        groups: Optional[torch.Tensor] = None,
        group_charges: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Solve PQEq and return its energy and outputs.

        Parameters
        ----------
        positions : (N, 3) Å.  Gradients of the returned energy reach them.
        numbers : (N,) int64 atomic numbers.
        cell : (3, 3) Å, rows are cell vectors, or None for an open system.
        field : (3,) uniform external field in V/Å.
        total_charge : total charge in e (used when ``groups`` is None).
        groups : (N,) int64 group index 0..G-1 of each atom, for one charge constraint per group.
        group_charges : (G,) e, charge of each group (default zeros).

        Returns
        -------
        dict with ``energy`` () eV, ``charges`` (N,) e, ``shell_displacements`` (N, 3) Å,
        ``dipole`` (3,) e·Å, ``iterations`` (), ``cg_iterations`` (), ``charge_residual`` ()
        eV/e, ``shell_residual`` () eV/Å, ``converged`` () bool.
        """
        self._check_inputs(positions, numbers, cell)
        n = positions.shape[0]
        dtype = positions.dtype
        molecular = groups is not None
        if groups is None:
            groups_t = torch.zeros(n, dtype=torch.long, device=positions.device)
            charges_t = torch.full((1,), float(total_charge), dtype=dtype, device=positions.device)
        else:
            groups_t = groups.to(torch.long)
            if groups_t.shape[0] != n or bool((groups_t < 0).any()):
                raise ValueError("groups must have one non-negative index per atom")
            n_groups_found = int(groups_t.max()) + 1
            if group_charges is None:
                charges_t = torch.zeros(n_groups_found, dtype=dtype, device=positions.device)
            else:
                charges_t = group_charges.to(dtype)
                if charges_t.shape[0] != n_groups_found:
                    raise ValueError("group_charges has " + str(charges_t.shape[0]) + " entries but groups has "
                                     + str(n_groups_found) + " groups")
        n_groups = charges_t.shape[0]
        counts = group_sum(torch.ones(n, dtype=dtype, device=positions.device), groups_t, n_groups)
        if bool((counts == 0).any()):
            raise ValueError("every group index 0..G-1 must contain at least one atom")
        field = field.to(dtype)

        p: Dict[str, torch.Tensor] = {
            "chi": self.table_chi.to(dtype).index_select(0, numbers),
            "J": self.table_J.to(dtype).index_select(0, numbers),
            "Z": self.table_Z.to(dtype).index_select(0, numbers),
            "Ks": self.table_Ks.to(dtype).index_select(0, numbers),
            "pol": self.table_polarizable.to(dtype).index_select(0, numbers),
            "a": self.table_exponent.to(dtype).index_select(0, numbers),
        }
        inv_ks = torch.where(p["pol"] > 0, 1.0 / torch.where(p["pol"] > 0, p["Ks"], torch.ones_like(p["Ks"])),
                             torch.zeros_like(p["Ks"]))
        i, j, shifts = self._pairs(positions, cell)
        pos0 = constant(positions)
        cell0: Optional[torch.Tensor] = None
        if cell is not None:
            cell0 = constant(cell)
        field_pos0 = self.field_coordinates(pos0, cell0, groups_t, n_groups, molecular)
        kernel = self._core_kernel(pos0, p["a"], cell0, i, j, shifts)

        # start: warm (previous call) or uniform charges, no shell displacement
        warm = self.last_charges.shape[0] == n and self.mode == "physical"
        if warm:
            q = self.last_charges.to(dtype)
            d = self.last_shells.to(dtype)
        else:
            q = torch.zeros(n, dtype=dtype, device=positions.device)
            d = torch.zeros(n, 3, dtype=dtype, device=positions.device)
        q = make_feasible(q, groups_t, counts, charges_t)

        iterations = 0
        cg_iterations = 0
        q_res = float("inf")
        d_res = float("inf")
        converged = False
        worst_solve = 0.0
        cg_tolerance = 0.5 * self.charge_tolerance if self.mode == "physical" else 1e-3 * self.charge_tolerance
        for _ in range(self.max_iterations + 1):
            gq, gd = self._gradients(pos0, q, d, p, cell0, i, j, shifts, field, field_pos0)
            q_res = float(project_out_group_means(gq, groups_t, counts).abs().max())
            d_res = float(gd.abs().max())
            if self.mode == "physical" and q_res <= self.charge_tolerance and d_res <= self.shell_tolerance:
                converged = True
                break
            if iterations == self.max_iterations:
                break
            delta, n_cg, solve_res = self._solve_charges(-gq, p, pos0, cell0, i, j, kernel, groups_t, counts, cg_tolerance)
            q = q + delta
            cg_iterations += n_cg
            worst_solve = max(worst_solve, solve_res)
            gq, gd = self._gradients(pos0, q, d, p, cell0, i, j, shifts, field, field_pos0)
            d = d - gd * inv_ks.unsqueeze(1)
            if self.shell_cap > 0:
                norm = safe_norm(d).unsqueeze(1)
                d = torch.where(norm > self.shell_cap, d * self.shell_cap / torch.where(norm > 0, norm, torch.ones_like(norm)), d)
            iterations += 1
        if self.mode == "reaxnet":
            # published practice: a fixed number of cycles, so the final charges are not
            # stationary for the final shells (q_res, d_res report that); "converged" reports
            # the charge solves themselves
            converged = worst_solve <= cg_tolerance
        if not converged:
            message = ("PQEq charge/shell solve did not converge in " + str(iterations) + " cycles: charge residual "
                       + str(q_res) + " eV/e (tolerance " + str(self.charge_tolerance) + "), shell residual "
                       + str(d_res) + " eV/Å (tolerance " + str(self.shell_tolerance) + ")")
            if self.on_failure == "raise":
                raise RuntimeError(message)
            warnings.warn(message)

        # reassigned (not resized): buffers of a loaded TorchScript module cannot be resized
        self.last_charges = constant(q).to(torch.float64)
        self.last_shells = constant(d).to(torch.float64)

        q = constant(q)
        d = constant(d)
        field_pos = self.field_coordinates(positions, cell, groups_t, n_groups, molecular)
        energy = self._energy(positions, q, d, p, cell, i, j, shifts, field, field_pos)
        dipole = (q.unsqueeze(1) * constant(field_pos) - p["Z"].unsqueeze(1) * d).sum(0)
        return {
            "energy": energy,
            "charges": q,
            "shell_displacements": d,
            "dipole": dipole,
            "iterations": torch.tensor(iterations),
            "cg_iterations": torch.tensor(cg_iterations),
            "charge_residual": torch.tensor(q_res, dtype=dtype),
            "shell_residual": torch.tensor(d_res, dtype=dtype),
            "converged": torch.tensor(converged),
        }

    def _core_kernel(
        self, positions: torch.Tensor, a: torch.Tensor, cell: Optional[torch.Tensor],
        i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor,
    ) -> torch.Tensor:
        if cell is None:
            return self.coulomb_open.core_pair_kernel(positions, a, cell, i, j, shifts)
        return self.coulomb_ewald.core_pair_kernel(positions, a, cell, i, j, shifts)

    @torch.jit.export
    def reset(self) -> None:
        """Forget the warm start (the next call starts from uniform charges)."""
        self.last_charges = torch.zeros(0, dtype=torch.float64, device=self.last_charges.device)
        self.last_shells = torch.zeros(0, 3, dtype=torch.float64, device=self.last_shells.device)
