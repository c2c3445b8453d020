"""Training and test files of the shipped water model (water-demo, trained with pqeq-water and one
neutral charge group per molecule): examples/data/water_model_train.extxyz and
examples/data/water_model_test.extxyz.

The test file holds the 45 test frames of water-demo-v1 (its seeded split of
``water_demo_train.extxyz``: seed 1, 10 % validation, 10 % test), so both models are measured on
the same frames, never trained on by either.  The training file holds, in this order (each
frame's ``origin`` info key names its source):

- the other 407 frames of ``water_demo_train.extxyz`` (the training file of water-demo-v1: neutral
  gas-phase clusters, liquid cut-outs, one active-learning round with proton-transfer scans);
- the zero-field energies and forces of the water response set ``water_response_pbe.extxyz``
  (monomers, gas-phase clusters and liquid cut-outs of 2–6 molecules; the same PBE/def2-SVPD
  settings, with the grid response);
- the second active-learning round ``water_al2_pbe.extxyz`` (clusters cut out of liquid MD of a
  model trained on the frames above, ``12_active_learning_from_validation.py``), when it exists;
  the three clusters of every seventh MD snapshot are held out as ``water_al2_test.extxyz``.

Every frame carries a per-atom ``molecule`` column (:data:`openmm_pqeq.charge_constraint.MOLECULE_ARRAY`):
the molecule each atom came from (all frames list their atoms as O, H, H per molecule).  Training
takes its charge groups from it instead of the distance rule, so a frame in which a proton has
moved towards a neighbour (the proton-transfer scans, the clusters cut out of MD) has the groups
that an OpenMM run has when it gets there, the molecules of its Topology.  With the distance rule
the groups change as the O–H bond passes 1.26 Å and E_PQEq jumps by up to 2 eV, which E0, trained
on E_ref − E_PQEq − E_D3, cannot follow (the first retrained model learnt spurious proton
transfer from those targets).

All frames are neutral, so one neutral group per molecule holds for every one of them.  Frames
whose PQEq solve with the model's parameters (pqeq-water, one group per molecule) does not
converge, or gives an atom a charge beyond ±2 e, are left out and listed.  With the molecule
column none is: the five frames of the first active-learning round that the distance rule made
unsolvable (cut out of MD of a model that had failed, among them an H–H contact of 0.70 Å and an
O–O contact of 1.73 Å, which merged two molecules into one group) solve with their molecules.

    python examples/11_water_model_data.py
"""

from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

DATA = Path(__file__).resolve().parent / "data"
#: The clusters of every AL2_TEST_EVERY-th snapshot (three per snapshot) form the held-out AL2 test file.
AL2_TEST_EVERY = 7


def response_frames(path: Path) -> list:
    """Zero-field energy and forces of each response structure as a training frame."""
    from openmm_pqeq.data_generation.response import read_response

    frames = []
    for atoms in read_response(str(path)):
        if "forces" not in atoms.arrays:
            continue
        frame = atoms.copy()
        forces = np.asarray(atoms.arrays["forces"], dtype=float)
        for key in list(frame.arrays):
            if key not in ("numbers", "positions"):
                del frame.arrays[key]
        frame.info = {"charge": 0, "field": np.zeros(3), "n_molecules": atoms.info.get("n_molecules"),
                      "name": atoms.info.get("name"), "kind": atoms.info.get("kind"),
                      "dft_method": atoms.info.get("dft_method")}
        frame.calc = SinglePointCalculator(frame, energy=float(atoms.info["energy"]), forces=forces)
        frames.append(frame)
    return frames


#: Largest |charge| (e) of a solvable water frame: O carries about −1.1 e in the liquid.
MAX_ABS_CHARGE = 2.0


def label_molecules(atoms) -> None:
    """Set ``atoms.arrays["molecule"]`` (N,) to the molecule of each atom: atoms come as O, H, H."""
    from openmm_pqeq.charge_constraint import MOLECULE_ARRAY

    symbols = atoms.get_chemical_symbols()
    if len(symbols) % 3 or symbols != ["O", "H", "H"] * (len(symbols) // 3):
        raise ValueError(f"{atoms.get_chemical_formula()}: atoms are not listed as O, H, H per molecule")
    atoms.arrays[MOLECULE_ARRAY] = np.arange(len(atoms)) // 3


def pqeq_solvable(atoms, pqeq, policy) -> bool:
    """Whether PQEq (``pqeq``, the charge groups of ``policy``) converges on ``atoms`` (no field,
    or the frame's field) with every charge within ±MAX_ABS_CHARGE e."""
    import warnings

    import torch

    groups = policy.groups(atoms)
    field = np.asarray(atoms.info.get("field", np.zeros(3)), dtype=float)
    pqeq.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence is what is checked here
        out = pqeq(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), None, torch.tensor(field), 0.0,
                   None if groups is None else torch.as_tensor(groups))
    return bool(out["converged"]) and float(out["charges"].abs().max()) <= MAX_ABS_CHARGE


def main() -> None:
    from openmm_pqeq.charge_constraint import ChargeConstraint
    from openmm_pqeq.electrostatics import PQEq
    from openmm_pqeq.train.data import split_indices

    demo = ase.io.read(DATA / "water_demo_train.extxyz", ":")
    # the split of water-demo-v1 (examples/train_water_demo.yaml: seed 1, 10 % validation, 10 % test)
    demo_test = set(split_indices(len(demo), 0.1, 0.1, seed=1)["test"].tolist())
    test = [atoms for k, atoms in enumerate(demo) if k in demo_test]
    parts = [("water_demo_train", [atoms for k, atoms in enumerate(demo) if k not in demo_test]),
             ("water_response_pbe", response_frames(DATA / "water_response_pbe.extxyz"))]
    al2_test = []
    if (DATA / "water_al2_pbe.extxyz").is_file():
        al2 = ase.io.read(DATA / "water_al2_pbe.extxyz", ":")
        held_out = [(int(a.info["sample_index"]) // 3) % AL2_TEST_EVERY == AL2_TEST_EVERY - 1 for a in al2]
        al2_test = [a for a, out in zip(al2, held_out) if out]
        parts.append(("water_al2_pbe", [a for a, out in zip(al2, held_out) if not out]))
    pqeq = PQEq(["O", "H"], params="pqeq-water", on_failure="warn")
    policy = ChargeConstraint.from_dict({"rule": "molecules", "bond_factor": 1.3})
    frames = []
    for name, part in parts:
        for k, atoms in enumerate(part):
            atoms.info.setdefault("origin", name)
            if int(atoms.info.get("charge", 0)) != 0:
                raise ValueError(f"{name}: a frame with charge {atoms.info['charge']}; the water model is neutral")
            label_molecules(atoms)
            if pqeq_solvable(atoms, pqeq, policy):
                frames.append(atoms)
            else:
                print(f"left out: frame {k} of {name} ({atoms.get_chemical_formula()}): the pqeq-water solve "
                      f"does not converge or gives a charge beyond ±{MAX_ABS_CHARGE} e")
    for atoms in test:
        atoms.info.setdefault("origin", "water_demo_train")
        label_molecules(atoms)
    write_atomic(DATA / "water_model_train.extxyz", frames)
    write_atomic(DATA / "water_model_test.extxyz", test)
    for atoms in al2_test:
        atoms.info.setdefault("origin", "water_al2_pbe")
        label_molecules(atoms)
    if al2_test:
        write_atomic(DATA / "water_al2_test.extxyz", al2_test)
        print(f"wrote {len(al2_test)} held-out active-learning frames to {DATA / 'water_al2_test.extxyz'}")
    unsolvable = sum(not pqeq_solvable(atoms, pqeq, policy) for atoms in test)
    print(f"wrote {len(frames)} frames to {DATA / 'water_model_train.extxyz'} (of "
          + ", ".join(f"{name} {len(part)}" for name, part in parts)
          + f"); {len(test)} test frames to {DATA / 'water_model_test.extxyz'}, {unsolvable} of them unsolvable")


def write_atomic(path: Path, frames: list) -> None:
    """extxyz through a temporary file and a rename."""
    from openmm_pqeq._atomic import atomic_path

    with atomic_path(path) as temporary:
        ase.io.write(temporary, frames, format="extxyz")


if __name__ == "__main__":
    main()
