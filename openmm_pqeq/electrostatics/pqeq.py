"""Polarizable charge equilibration (PQEq): self-consistent charges and shells.

Energy (Naserifar, Brooks, Goddard, J. Chem. Phys. 146, 124117 (2017); docs/method/pqeq.md)::

    E = Σ_i [χ_i q_i + ½ J_i q_i² + ½ K_s,i |d_i|²]
        + Coulomb energy of cores (q_i + Z_i at r_i) and shells (−Z_i at r_i + d_i)
        − E_field · Σ_i (q_i r̃_i − Z_i d_i)

minimized over charges q (subject to fixed total charge, or fixed charge per group) and
shell displacements d.  Forces and stress follow by autograd at the converged solution
(Hellmann–Feynman: ∂E/∂q is constant over each group and ∂E/∂d = 0 there).

Two modes:

- ``"physical"`` (default): converged self-consistency (tolerances in eV/e and eV/Å, an
  error or a warning when it does not converge), periodic Ewald/PME, the field term.
  The solve is matrix-free, memory O(N), and needs no autograd (project choice; docs/method/solver.md):

  * ∂E/∂q (potentials at the cores) and ∂E/∂d (fields at the shells) are analytic
    (:meth:`GaussianCoulomb.site_gradients`): real-space pair kernels and their
    derivatives, reciprocal potentials and fields from the Ewald sum or smooth PME;
  * each cycle is an inexact Newton step: the linear model is the exact (q, d) Hessian at
    zero shell displacement (charge–charge, charge–shell, shell–shell couplings, reciprocal
    charges and point dipoles; shells move a few hundredths of an Å, so the model is good to
    a few per cent), solved by conjugate gradients preconditioned by 1/J (with long-wavelength
    charge waves handled on the PME mesh) and 1/K_s, inside the charge constraints; Anderson
    acceleration mixes the steps of previous cycles;
  * per call, pair vectors, kernels and their derivatives are computed once (and the PME
    stencils, or the k-space phases of the exact Ewald sum below ``pme_threshold`` atoms);
    the periodic pair list is a Verlet list with a skin, rebuilt only when atoms moved more
    than half the skin; the start is extrapolated from the last three solutions (MD);
  * the pair loops run in compiled operators (``plugin/``, :mod:`openmm_pqeq.ops`) when
    built, else in PyTorch, with the same results.
- ``"reaxnet"``: the published ReaxNet practice (Gao et al., Nat. Commun. 16, 10484
  (2025)): tapered 12.5 Å kernel, minimum image, two cycles of {exact charge solve,
  one-shot shell update d = F/K_s capped at 0.25 Å}, no Ewald.  Its forces are the
  gradient at frozen charges and shells, as published; they are not exact gradients.

The solves of both modes are in :mod:`openmm_pqeq.electrostatics.solvers` (mixed into
:class:`PQEq`), the split-charge one in :mod:`.splitcharge`; this module checks the inputs,
lists the pairs (the periodic Verlet list is :mod:`.pair_list`), starts each solve from the
previous ones (:mod:`.warm_start`), evaluates the energy and runs the forward pass.

Field coordinates r̃ (project choice): with charge groups (e.g. one per molecule) each
group is made whole around its first atom by the minimum-image convention, so a neutral
molecule's field energy does not change when an atom is wrapped into the box.  With a
single total-charge constraint the coordinates are used as given, which is continuous in
MD because OpenMM passes unwrapped coordinates.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from .._torchscript import constant
from ..elements import SYMBOLS
from ..neighbors import NeighborList, pair_vectors
from ..units import COULOMB_EV_A, COULOMB_EV_A_PUBLISHED
from .bond_hardness import merge_transfer
from .constraints import group_sum, make_feasible
from .coulomb import GaussianCoulomb, all_pairs, minimum_image_pairs
from .kernels import LAMBDA, LAMBDA_PUBLISHED, gaussian_exponent, pair_screening, safe_norm
from .messages import decimal
from .pair_list import VerletList, check_overlap
from .parameters import charge_transfer_of, parameter_table, shell_anisotropy_of
from .shell_anisotropy import ShellAnisotropy, solve_anisotropy, spring_energy, spring_force
from .solvers import PhysicalSolve, PublishedSolve, SolveProblem
from .splitcharge import SplitChargeSolve, transfer_charges
from .trainable import BoundedPQEqParameters, split_anisotropy_spec, split_pair_spec
from .warm_start import WarmStart

#: The largest offset of an atom from the first atom of its charge group, in fractions of a cell
#: vector, that a periodic calculation under a field accepts (the minimum image flips at 0.5).
GROUP_EXTENT_LIMIT: float = 0.45

#: Shell displacement cap of the published practice (Å).
RE_SHELL_CAP: float = 0.25
#: Cutoff of the published tapered kernel (Å).
RE_CUTOFF: float = 12.5


class PQEq(PhysicalSolve, PublishedSolve, SplitChargeSolve, torch.nn.Module):
    """PQEq charges, shells, dipole and energy for one structure.

    Parameters
    ----------
    elements : sequence of str or int
        Elements the module must support (fixes parameter tables and the Ewald cutoff).
    params : str
        Parameter set: ``"reaxnet"`` (default), ``"pqeq0"``, ``"pqeq1"``, ``"pqeq3"``,
        ``"pqeq-refined"`` (refined against DFT response data; docs/method/learning.md).
    trainable : dict or None
        Per-element χ, J, R, K_s to free as bounded trainable parameters
        (:mod:`openmm_pqeq.electrostatics.trainable`); None (default) keeps them frozen.
    mode : {"physical", "reaxnet"}
        See the module docstring.
    real_space_cutoff : float
        Minimum real-space cutoff (Å) of the Ewald sum (physical mode, periodic).  The
        cutoff is enlarged automatically when wide Gaussians (soft cations: Na, K, Ba ...)
        need it, so the real-space sum stays converged; the Ewald β is then set from the
        cutoff actually used (a smaller β makes the reciprocal sum cheaper at no cost in
        real space).
    ewald_tolerance : float
        Relative truncation error of the real- and reciprocal-space sums (the PME mesh is
        chosen for 10× this relative accuracy of the reciprocal energy).
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
    neighbor_skin : float
        Verlet skin (Å) of the periodic real-space pair list (physical mode): the list is
        built with ``cutoff + neighbor_skin`` and reused until an atom has moved more than
        half the skin or the cell changes; pairs beyond the cutoff are skipped, so results
        do not depend on when the list was built.  0 rebuilds it at every call.
    predictor_order : int
        Warm start of the next call from the previous solutions: 0 reuses the last one,
        1 extrapolates linearly from the last two, 2 quadratically from the last three
        (as in MD, where positions move smoothly from step to step).
    anderson_depth : int
        Number of previous iterates mixed by Anderson acceleration of the charge/shell
        cycles (physical mode); 0 turns it off.
    use_custom_ops : bool or None
        Pair loops in the compiled operators ``torch.ops.openmm_pqeq.*`` (True), in PyTorch
        (False), or the operators whenever they are loaded (None); see ``uses_custom_ops``.
    charge_transfer : {"global", "split"} or None
        How charge moves (physical mode): ``"global"``, between any two atoms under the charge
        constraints (PQEq as published); ``"split"``, only along bonds with a bond hardness
        (split-charge equilibration, :mod:`.splitcharge`).  None (default): the parameter
        set's model (``"split"`` for ``pqeq-split``, else ``"global"``).
    transfer : dict or None
        Split-charge options over the parameter set's (:func:`.bond_hardness.normalize_transfer`):
        ``default_hardness``, ``element_hardness`` {element: κ_Z} with a ``combination`` rule
        (geometric or arithmetic) and ``hardness`` {pair: κ⁰} in eV/e², ``onset`` and ``cutoff``
        as multiples of the covalent-radius sum.  Bond hardnesses are freed with
        ``trainable={"kappa": ["C", "H", ...] or "all", "kappa_pairs": ["C-H", ...],
        "bounds": {"kappa": f}}``.
    shell_anisotropy : dict or None
        Bond-direction anisotropy of the shell springs over the parameter set's
        (:mod:`.shell_anisotropy`): ``{"O:H": a}``, K_i = K_s (I + Σ_b a g(r_b) r̂_b r̂_bᵀ) for the
        shell of O bonded to H (global transfer, physical mode; isotropic by default).  Freed with
        ``trainable={"Ks_aniso": ["O:H", ...] or "all", "bounds": {"Ks_aniso": w}}``.

    Attributes
    ----------
    uses_custom_ops : bool
        Whether this module (and a model scripted from it) calls the compiled operators; a
        scripted copy then needs them loaded (``import openmm_pqeq.electrostatics``) before
        ``torch.jit.load``.

    Notes
    -----
    The solve (physical mode) is matrix-free and needs no autograd: potentials at the cores
    (∂E/∂q) and fields at the shells (∂E/∂d) are analytic (:meth:`GaussianCoulomb.site_gradients`).
    Each cycle takes one preconditioned step, a charge step from a projected conjugate-gradient
    solve with the exact charge Hessian (cached pair kernel and k-space/PME set-up) and a shell
    step ``−(∂E/∂d)/K_s``, and Anderson acceleration mixes the steps of previous cycles.

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
        pme_threshold: int = 1000,
        charge_tolerance: float = 1e-6,
        shell_tolerance: float = 1e-5,
        max_iterations: int = 200,
        max_cg_iterations: int = 500,
        on_failure: str = "raise",
        min_distance: float = 0.3,
        neighbor_skin: float = 0.5,
        predictor_order: int = 2,
        anderson_depth: int = 4,
        use_custom_ops: Optional[bool] = None,
        trainable: Optional[dict] = None,
        charge_transfer: Optional[str] = None,
        transfer: Optional[dict] = None,
        shell_anisotropy: Optional[dict] = None,
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
        if not neighbor_skin >= 0:
            raise ValueError(f"`neighbor_skin` is {neighbor_skin} Å but must be zero or positive")
        if predictor_order not in (0, 1, 2):
            raise ValueError(f"`predictor_order` is {predictor_order!r}; options are 0, 1, 2")
        if not 0 <= anderson_depth <= 20:
            raise ValueError(f"`anderson_depth` is {anderson_depth!r}; it must be between 0 and 20")
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
        self.group_extent_limit: float = GROUP_EXTENT_LIMIT
        self.neighbor_skin: float = float(neighbor_skin)
        self.predictor_order: int = int(predictor_order)
        self.anderson_depth: int = int(anderson_depth)
        #: relative reduction of the residual (2-norm) by the CG solve of each Newton step
        self.newton_reduction: float = 0.02

        table = parameter_table(params, elements)
        lam = LAMBDA_PUBLISHED if mode == "reaxnet" else LAMBDA
        for key in ("chi", "J", "Z", "Ks", "polarizable", "supported"):
            self.register_buffer(f"table_{key}", table[key])
        self.register_buffer("table_exponent", torch.where(table["supported"] > 0, gaussian_exponent(
            torch.where(table["supported"] > 0, table["R"], torch.ones_like(table["R"])), lam), torch.zeros_like(table["R"])))
        self.element_names: List[str] = [SYMBOLS[z] for z in range(table["chi"].shape[0])]
        # refinable per-element χ, J, R, K_s (frozen, with no parameters, by default)
        supported = [z for z in range(table["supported"].shape[0]) if float(table["supported"][z]) > 0]
        element_spec, free_bonds = split_pair_spec(trainable)
        element_spec, free_anisotropy, anisotropy_bound = split_anisotropy_spec(element_spec)
        self.trainable_parameters = BoundedPQEqParameters(element_spec, supported)
        # charge transfer: global, or split charges on bonds (bond hardnesses from the set, then `transfer`)
        set_model, set_transfer = charge_transfer_of(params)
        model = charge_transfer if charge_transfer is not None else (set_model if mode == "physical" else "global")
        self._init_split(model, supported, merge_transfer(set_transfer, transfer, supported) if model == "split"
                         else transfer, free_bonds)
        # bond-direction shell anisotropy (isotropic springs, at no cost, by default)
        coefficients = dict(shell_anisotropy_of(params))
        coefficients.update(dict(shell_anisotropy or {}))
        self.shell_anisotropy = ShellAnisotropy(supported, coefficients, free_anisotropy, anisotropy_bound)
        if self.shell_anisotropy.enabled and (mode != "physical" or self.charge_transfer == "split"):
            raise ValueError("anisotropic shell springs (`shell_anisotropy`, trainable 'Ks_aniso') need mode 'physical' "
                             "with global charge transfer")
        self.n_trainable: int = self.trainable_parameters.n_free + self.transfer.n_free + self.shell_anisotropy.n_free
        #: whether training with freed parameters differentiates the solution (q, d) itself
        #: (:meth:`without_solution_derivatives` turns it off for a block)
        self.solution_derivatives: bool = True
        if self.n_trainable > 0 and mode != "physical":
            raise ValueError("trainable PQEq parameters need mode 'physical': the derivatives with respect to them "
                             "are exact only at a converged, variational solution (mode 'reaxnet' stops after two cycles)")
        #: largest open system for the dense implicit differentiation of (q, d) w.r.t. freed parameters
        self.implicit_max_atoms: int = 400

        # the previous solutions (run-time state; the published mode starts every solve from zero)
        self.warm_start = WarmStart(self.predictor_order if mode == "physical" else 0)

        if mode == "reaxnet":
            k_e = COULOMB_EV_A_PUBLISHED
            self.cutoff: float = RE_CUTOFF
            self.beta: float = 0.0
            self.coulomb = GaussianCoulomb("tapered", k_e, taper_cutoff=RE_CUTOFF, use_custom_ops=use_custom_ops)
        else:
            k_e = COULOMB_EV_A
            x = math.sqrt(-math.log(ewald_tolerance))
            a = self.table_exponent[table["supported"] > 0]
            alpha_min = float(pair_screening(a.min(), a.min()))
            self.cutoff = max(real_space_cutoff, x / alpha_min)
            # erfc(β r_c) and erfc(α_min r_c) both at the tolerance
            self.beta = x / self.cutoff
            # open structures summed directly, periodic ones by Ewald or PME (GaussianCoulomb.kind)
            self.coulomb = GaussianCoulomb("ewald", k_e, beta=self.beta, reciprocal=reciprocal,
                                           kspace_tolerance=ewald_tolerance, use_custom_ops=use_custom_ops,
                                           pme_threshold=self.pme_threshold)
        self.uses_custom_ops: bool = self.coulomb.uses_custom_ops
        self.neighbors = NeighborList(self.cutoff)
        #: the periodic pair list of the physical mode (run-time state of its own)
        self.verlet = VerletList(self.cutoff, self.neighbor_skin)

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

    def pairs(
        self, positions: torch.Tensor, cell: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """Half pair list ``(edge_i, edge_j, shifts)`` of a structure (positions (N, 3) Å, cell
        (3, 3) Å or None) and the distance (Å) beyond which listed pairs are skipped (0: every
        listed pair counts); periodic physical mode: from the Verlet list
        (:class:`~openmm_pqeq.electrostatics.pair_list.VerletList`), rebuilt when needed."""
        n = positions.shape[0]
        pos = constant(positions)
        if cell is None and self.mode == "physical":
            i, j = all_pairs(n, positions.device)
            shifts = torch.zeros((i.shape[0], 3), dtype=positions.dtype, device=positions.device)
            check_overlap(i, j, safe_norm(pair_vectors(pos, None, i, j, shifts)), self.min_distance)
            return i, j, shifts, 0.0
        if cell is not None and self.mode == "physical":
            return self.verlet(pos, constant(cell), self.min_distance)
        i, j, shifts = self.neighbors(positions, cell)
        cell0: Optional[torch.Tensor] = None
        if cell is not None:
            cell0 = constant(cell)
        dist = safe_norm(pair_vectors(pos, cell0, i, j, shifts))
        keep = minimum_image_pairs(i, j, dist, n) & (dist < self.cutoff)
        i, j, shifts, dist = i[keep], j[keep], shifts[keep], dist[keep]
        check_overlap(i, j, dist, self.min_distance)
        return i, j, shifts, 0.0

    # --------------------------------------------------------------- pieces
    def field_coordinates(
        self, positions: torch.Tensor, cell: Optional[torch.Tensor], groups: torch.Tensor, n_groups: int,
        molecular: bool,
    ) -> torch.Tensor:
        """Coordinates (N, 3) Å that couple to the field: each group made whole around its
        first atom (minimum image) when ``molecular`` and periodic, else ``positions``."""
        if cell is None or not molecular:
            return positions
        anchor, frac = self._offsets_from_group_anchor(positions, cell, groups, n_groups)
        return anchor + frac @ cell

    def _offsets_from_group_anchor(
        self, positions: torch.Tensor, cell: torch.Tensor, groups: torch.Tensor, n_groups: int,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The first atom's position of each atom's group (N, 3) Å and the minimum-image offset
        from it in fractions of the cell vectors (N, 3), each in [-0.5, 0.5]."""
        index = torch.arange(positions.shape[0], device=positions.device)
        first = torch.full((n_groups,), positions.shape[0], dtype=torch.long, device=positions.device)
        first = first.scatter_reduce(0, groups, index, reduce="amin", include_self=True)
        anchor = positions.index_select(0, first.index_select(0, groups))
        frac = torch.linalg.solve(cell.transpose(0, 1), (positions - anchor).transpose(0, 1)).transpose(0, 1)
        return anchor, frac - torch.round(constant(frac))

    def _check_groups_whole_in_field(
        self, frac: torch.Tensor, cell: torch.Tensor, field: torch.Tensor, groups: torch.Tensor,
    ):
        """Under a field, each charge group couples through its dipole, made whole around its
        first atom by minimum image (:meth:`field_coordinates`).  An atom more than
        ``GROUP_EXTENT_LIMIT`` of a cell vector from that atom is close to the point where its
        image flips and the field energy jumps by q E·a (a dissociated molecule, or a molecule
        larger than half the box): an error, before the jump.  Only cell vectors a with E·a ≠ 0
        count (a flip along a vector normal to the field leaves the energy unchanged).  ``frac``:
        the offsets of :meth:`_offsets_from_group_anchor`."""
        coupled = ((cell @ field).abs() > 0).to(frac.dtype)
        extent = (frac.abs() * coupled).amax(1)
        worst = int(torch.argmax(extent))
        if float(extent[worst]) > self.group_extent_limit:
            offset = frac[worst] @ cell
            first = int(torch.nonzero(groups == groups[worst])[0, 0])
            raise ValueError("under a field, atom " + str(worst) + " sits " + decimal(float(extent[worst]), 3)
                             + " of a cell vector (" + decimal(float(offset.norm()), 2) + " Å) from atom "
                             + str(first) + ", the first atom of its charge group "
                             + str(int(groups[worst])) + ": past " + decimal(self.group_extent_limit, 3) + " the group "
                             "cannot be made whole by minimum image and its field energy -E·μ would jump when the "
                             "atom's image flips at 0.5; a molecule has dissociated or is larger than half the box "
                             "(use a larger box, smaller charge groups, or charge_transfer='split')")

    def energy(
        self, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor, p: Dict[str, torch.Tensor],
        cell: Optional[torch.Tensor], i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor,
        field: torch.Tensor, field_positions: torch.Tensor, cutoff: float,
        real_space_energy: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """PQEq energy (eV) at given charges ``q`` (N,) e and shell displacements ``d`` (N, 3) Å
        (not necessarily the solution), differentiable in everything: positions (N, 3) Å, cell,
        the per-atom parameters ``p`` (:meth:`atom_parameters`), the field (3,) V/Å, ``q`` and
        ``d``.  Pairs ``(i, j, shifts)`` and ``cutoff`` as :meth:`pairs` returns them;
        ``field_positions`` as :meth:`field_coordinates`.  ``real_space_energy`` (): the known
        value of the real-space pair sum at these charges and shells (the last solver iteration
        computed it), so the forward pass skips that pair loop.  The implicit derivatives
        (:mod:`.implicit`) and the Born charges (:mod:`openmm_pqeq.electrostatics.response`)
        differentiate it."""
        z = p["Z"]
        anisotropy: Optional[torch.Tensor] = None
        if self.shell_anisotropy.enabled:
            anisotropy = self.shell_anisotropy.tensors(pair_vectors(positions, cell, i, j, shifts), p["number"], i, j,
                                                       positions.shape[0])
        onsite = (p["chi"] * q + 0.5 * p["J"] * q * q).sum() + spring_energy(p["Ks"], d, anisotropy)
        coulomb = self.coulomb.energy(positions, d, q + z, -z, p["a"], cell, i, j, shifts, cutoff, real_space_energy)
        dipole = (q.unsqueeze(1) * field_positions - z.unsqueeze(1) * d).sum(0)
        return onsite + coulomb - (field * dipole).sum()

    def _gradients(
        self, problem: SolveProblem, q: torch.Tensor, d: torch.Tensor, cutoff: float,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """∂E/∂q (N,) eV/e, ∂E/∂d (N, 3) eV/Å at charges ``q`` (N,) e and shells ``d`` (N, 3) Å
        and the fixed inputs of ``problem`` (analytic, no autograd), and the real-space Coulomb
        pair sum () eV there, over the pairs closer than ``cutoff`` Å (``<= 0``: all pairs)."""
        p, field = problem.params, problem.field
        z = p["Z"]
        phi_core, _, grad_shell, real_energy = self.coulomb.site_gradients(
            problem.cache, problem.positions, problem.cell, p["a"], problem.i, problem.j, q + z, -z, d, cutoff)
        gq = p["chi"] + p["J"] * q + phi_core - problem.field_positions @ field
        gd = spring_force(p["Ks"], d, solve_anisotropy(p)) + grad_shell + z.unsqueeze(1) * field.unsqueeze(0)
        return gq, gd * p["pol"].unsqueeze(1), real_energy

    # ------------------------------------------------------------------ parameters
    def atom_parameters(self, numbers: torch.Tensor, dtype: torch.dtype) -> Dict[str, torch.Tensor]:
        """Per-atom PQEq parameters ``chi``, ``J``, ``Z``, ``Ks``, ``pol``, ``a`` (N,) from the
        tables, with freed entries mapped from their trainable parameters (differentiable), and the
        atomic numbers ``number`` (N,) int64 (the anisotropic springs look up element pairs).
        :meth:`forward` adds ``shell_anisotropy`` (N, 3, 3) for its solve when the springs are
        anisotropic."""
        chi, J, Ks, a = self.trainable_parameters(self.table_chi, self.table_J, self.table_Ks, self.table_exponent)
        return {
            "chi": chi.to(dtype).index_select(0, numbers),
            "J": J.to(dtype).index_select(0, numbers),
            "Z": self.table_Z.to(dtype).index_select(0, numbers),
            "Ks": Ks.to(dtype).index_select(0, numbers),
            "pol": self.table_polarizable.to(dtype).index_select(0, numbers),
            "a": a.to(dtype).index_select(0, numbers),
            "number": numbers.to(torch.long),
        }

    @torch.jit.unused
    def _implicit_solution(
        self, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor, p: Dict[str, torch.Tensor],
        cell: Optional[torch.Tensor], i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor, field: torch.Tensor,
        groups: torch.Tensor, n_groups: int, molecular: bool,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(q̃, d̃)`` equal to the converged ``(q, d)`` whose derivatives with respect to the
        freed PQEq parameters (and positions, field) are those of the exact solution (implicit
        function theorem; :func:`.implicit.implicit_solution`).  Open systems only."""
        from .implicit import implicit_solution

        if cell is not None:
            raise NotImplementedError(
                "derivatives of PQEq charges and forces with respect to trainable PQEq parameters are implemented "
                "for open (non-periodic) systems; freeze the PQEq parameters for periodic training data")
        if positions.shape[0] > self.implicit_max_atoms:
            raise NotImplementedError(
                "trainable PQEq parameters: the dense implicit differentiation handles up to "
                + str(self.implicit_max_atoms) + " atoms, this structure has " + str(positions.shape[0]))
        return implicit_solution(self, positions, q, d, p, field, groups, n_groups, molecular)

    @contextlib.contextmanager
    def without_solution_derivatives(self) -> Iterator[None]:
        """Within the block, calls do not differentiate the converged charges and shells by the
        freed parameters (no implicit solution; the energy keeps its exact parameter derivatives
        by the envelope theorem, but the charges, dipole and forces have none).  For energies
        only, and for evaluation without gradients: it skips the dense implicit solve.

        >>> with pqeq.without_solution_derivatives():  # doctest: +SKIP
        ...     energy = pqeq(positions, numbers, None, field)["energy"]
        """
        saved = self.solution_derivatives
        self.solution_derivatives = False
        try:
            yield
        finally:
            self.solution_derivatives = saved

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
        eV/e, ``shell_residual`` () eV/Å, ``converged`` () bool; with ``charge_transfer="split"``
        also ``split_charges`` (B,) e (charge moved from ``bonds[0]`` to ``bonds[1]``),
        ``split_variables`` (B,) √eV (u = √κ p, the solve's variables), ``bonds`` (2, B) int64 and
        ``bond_shifts`` (B, 3) (integer image shifts of the bonded atom ``bonds[1]``).
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
        pos0 = constant(positions)
        cell0: Optional[torch.Tensor] = None
        if cell is not None:
            cell0 = constant(cell)
        field0 = constant(field)
        # the field coordinates (field_coordinates), with their offsets checked under a field
        field_pos0 = pos0
        if molecular and cell0 is not None:
            anchor, frac = self._offsets_from_group_anchor(pos0, cell0, groups_t, n_groups)
            if self.charge_transfer != "split" and bool((field0 != 0).any()):
                self._check_groups_whole_in_field(frac, cell0, field0, groups_t)
            field_pos0 = anchor + frac @ cell0

        p = self.atom_parameters(numbers, dtype)
        i, j, shifts, cutoff = self.pairs(positions, cell)
        if self.shell_anisotropy.enabled:
            # the solve's springs, at fixed positions (the energy below recomputes them with their graph)
            with torch.no_grad():
                p["shell_anisotropy"] = self.shell_anisotropy.tensors(pair_vectors(pos0, cell0, i, j, shifts),
                                                                      numbers, i, j, n)

        split = self.charge_transfer == "split"
        bond_i = torch.zeros(0, dtype=torch.long, device=positions.device)
        bond_j = bond_i
        keys = bond_i
        drive = torch.zeros(0, dtype=dtype, device=positions.device)
        bond_shifts = torch.zeros(0, 3, dtype=dtype, device=positions.device)
        u = torch.zeros(0, dtype=dtype, device=positions.device)
        q_ref = torch.zeros(n, dtype=dtype, device=positions.device)
        charge_gradient = q_ref
        if self.mode == "physical":
            q, d, warm = self.warm_start.predict(n, dtype, positions.device)
        else:
            q = torch.zeros(n, dtype=dtype, device=positions.device)
            d = torch.zeros(n, 3, dtype=dtype, device=positions.device)
            warm = False
        with torch.no_grad():
            cache = self.coulomb.setup(pos0, p["a"], cell0, i, j, shifts, cutoff)
            q = make_feasible(q, groups_t, counts, charges_t)
            d = d * p["pol"].unsqueeze(1)
            # split charges couple to the field through bond and shell dipoles, not atom positions
            problem = SolveProblem(cache, pos0, p, cell0, i, j, field0,
                                   torch.zeros_like(pos0) if split else field_pos0, cutoff, groups_t, counts)
            if split:
                (bond_i, bond_j, bond_shifts, keys, drive, q_ref, u, q, d, charge_gradient, stats,
                 real_energy) = self._split_solve_call(problem, numbers, d, shifts, charges_t)
            elif self.mode == "physical":
                q, d, stats, real_energy = self._solve_physical(problem, q, d)
            else:
                q, d, stats = self._solve_published(problem, q, d)
                real_energy = torch.zeros((), dtype=dtype, device=positions.device)
        iterations, cg_iterations = stats.iterations, stats.cg_iterations
        q_res, d_res, converged = stats.charge_residual, stats.shell_residual, stats.converged
        if not converged:
            message = ("PQEq charge/shell solve did not converge in " + str(iterations) + " cycles: charge residual "
                       + str(q_res) + " eV/e (tolerance " + str(self.charge_tolerance) + "), shell residual "
                       + str(d_res) + " eV/Å (tolerance " + str(self.shell_tolerance) + ")")
            if self.on_failure == "raise":
                raise RuntimeError(message)
            warnings.warn(message)
        if converged or self.on_failure == "warn":
            # in this branch, not before the check: a frozen TorchScript module would move the
            # warm-start writes above the raise and start the next call from a failed solution
            self.warm_start.remember(q, d)
            if split:
                self.bond_warm_start.remember(keys, drive)
        q = constant(q)
        d = constant(d)
        u = constant(u)
        exact = False
        if not torch.jit.is_scripting():
            # training with freed parameters: (q, d) carry their exact parameter derivatives
            # (evaluation, MD and scripted models skip this: the values are the same)
            if (self.n_trainable > 0 and self.solution_derivatives and self.training and torch.is_grad_enabled()
                    and self.mode == "physical"):
                exact = True
                if split:
                    u, d = self._implicit_split(positions, numbers, u, d, q_ref, p, cell, field, bond_i, bond_j,
                                                bond_shifts)
                else:
                    q, d = self._implicit_solution(positions, q, d, p, cell, i, j, shifts, field, groups_t, n_groups,
                                                   molecular)
        field_pos = self.field_coordinates(positions, cell, groups_t, n_groups, molecular)
        # physical mode: the real-space pair sum at (q, d) is known from the solve's last iteration
        known: Optional[torch.Tensor] = None
        if self.mode == "physical":
            # a copy: passing the solver's own tensor crashed frozen TorchScript modules (openmm-torch) at
            # the next call
            known = constant(real_energy)
        split_charges = u
        if split:
            energy, dipole, split_charges = self._split_energy(
                positions, numbers, q, d, u, charge_gradient, q_ref, p, cell, i, j, shifts, field, field_pos, cutoff,
                known, bond_i, bond_j, bond_shifts, exact)
            q = q_ref + transfer_charges(split_charges, bond_i, bond_j, n)
        else:
            energy = self.energy(positions, q, d, p, cell, i, j, shifts, field, field_pos, cutoff, known)
            dipole = (q.unsqueeze(1) * constant(field_pos) - p["Z"].unsqueeze(1) * d).sum(0)
        result = {
            "energy": energy,
            "charges": q,
            "shell_displacements": d,
            "dipole": dipole,
            "iterations": torch.tensor(iterations, device=positions.device),
            "cg_iterations": torch.tensor(cg_iterations, device=positions.device),
            "charge_residual": torch.tensor(q_res, dtype=dtype, device=positions.device),
            "shell_residual": torch.tensor(d_res, dtype=dtype, device=positions.device),
            "converged": torch.tensor(converged, device=positions.device),
        }
        if split:
            result["split_charges"] = split_charges
            result["split_variables"] = u
            result["bonds"] = torch.stack([bond_i, bond_j])
            result["bond_shifts"] = bond_shifts
        return result

    @torch.jit.export
    def reset(self) -> None:
        """Forget the warm start (the next call starts from zero charges and shells)."""
        self.warm_start.reset()
        self.bond_warm_start.reset()
