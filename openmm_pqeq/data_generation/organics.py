"""Larger organic molecules for the electrostatic-response set: chains and rings of up to 12
heavy atoms.

The small-molecule response set (:func:`.response.response_molecules`) stops at 5 atoms, so
it cannot show how a charge model's polarizability scales with size (charge equilibration
over-polarizes long molecules, and the error grows with their length).  This set adds chemical
series that grow one unit at a time: n-alkanes, alkenes and polyenes, alcohols, ethers, amines,
carbonyls (aldehydes, ketones, acids, esters, amides), aromatics, halides, nitriles and sulfur
compounds, from 3 to 12 heavy atoms (elements H C N O F S Cl).

Geometries: RDKit (ETKDG embedding with a fixed seed, then an MMFF94 minimization), centred
at the atoms' mean position.  They are force-field minima, not DFT minima; the response labels
(:func:`.response.label_response`) are exact for the geometry given, which is what a fit needs.

Every molecule carries ``info``: ``name`` (``organic:<name>``), ``family`` (the name: one
molecule per family), ``series`` (its chemical series), ``kind`` (``organic``), ``charge`` (0),
``smiles`` and ``split``: ``test`` or ``train``.  The test molecules are chosen by hand so that
the test split covers every series and every size (3 to 12 heavy atoms), with two series held
out entirely (nitriles and sulfur compounds), so it measures generalization to molecules and
chemistry the fit never saw.

RDKit is optional and imported only here (``pip install rdkit``).
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

#: (series, name, SMILES, split) of the set, in order of increasing size within each series.
ORGANIC_MOLECULES: Tuple[Tuple[str, str, str, str], ...] = (
    ("alkane", "propane", "CCC", "train"),
    ("alkane", "n-butane", "CCCC", "test"),
    ("alkane", "n-pentane", "CCCCC", "train"),
    ("alkane", "isobutane", "CC(C)C", "train"),
    ("alkane", "neopentane", "CC(C)(C)C", "train"),
    ("alkane", "n-hexane", "CCCCCC", "train"),
    ("alkane", "n-heptane", "CCCCCCC", "test"),
    ("alkane", "n-octane", "CCCCCCCC", "train"),
    ("alkane", "n-decane", "CCCCCCCCCC", "train"),
    ("alkane", "n-dodecane", "CCCCCCCCCCCC", "test"),
    ("cycloalkane", "cyclopentane", "C1CCCC1", "train"),
    ("cycloalkane", "cyclohexane", "C1CCCCC1", "test"),
    ("cycloalkane", "methylcyclohexane", "CC1CCCCC1", "train"),
    ("alkene", "propene", "C=CC", "train"),
    ("alkene", "1,3-butadiene", "C=CC=C", "train"),
    ("alkene", "1-hexene", "C=CCCCC", "test"),
    ("alkene", "1,3,5-hexatriene", "C=CC=CC=C", "train"),
    ("alkene", "1,3,5,7-octatetraene", "C=CC=CC=CC=C", "test"),
    ("alkene", "propyne", "C#CC", "train"),
    ("alcohol", "ethanol", "CCO", "train"),
    ("alcohol", "1-propanol", "CCCO", "test"),
    ("alcohol", "1-butanol", "CCCCO", "train"),
    ("alcohol", "ethylene-glycol", "OCCO", "train"),
    ("alcohol", "1-hexanol", "CCCCCCO", "train"),
    ("alcohol", "cyclohexanol", "OC1CCCCC1", "test"),
    ("alcohol", "1-octanol", "CCCCCCCCO", "train"),
    ("alcohol", "1-decanol", "CCCCCCCCCCO", "test"),
    ("ether", "dimethyl-ether", "COC", "train"),
    ("ether", "diethyl-ether", "CCOCC", "test"),
    ("ether", "tetrahydrofuran", "C1CCOC1", "train"),
    ("ether", "1,4-dioxane", "C1COCCO1", "train"),
    ("ether", "1,2-dimethoxyethane", "COCCOC", "test"),
    ("ether", "di-n-butyl-ether", "CCCCOCCCC", "train"),
    ("amine", "ethylamine", "CCN", "train"),
    ("amine", "dimethylamine", "CNC", "test"),
    ("amine", "trimethylamine", "CN(C)C", "train"),
    ("amine", "n-propylamine", "CCCN", "train"),
    ("amine", "pyrrolidine", "C1CCNC1", "train"),
    ("amine", "piperidine", "C1CCNCC1", "test"),
    ("amine", "n-hexylamine", "CCCCCCN", "train"),
    ("amine", "n-octylamine", "CCCCCCCCN", "test"),
    ("carbonyl", "acetaldehyde", "CC=O", "train"),
    ("carbonyl", "acetone", "CC(C)=O", "test"),
    ("carbonyl", "acetic-acid", "CC(=O)O", "train"),
    ("carbonyl", "acetamide", "CC(N)=O", "train"),
    ("carbonyl", "methyl-acetate", "COC(C)=O", "test"),
    ("carbonyl", "butanone", "CCC(C)=O", "train"),
    ("carbonyl", "N,N-dimethylformamide", "CN(C)C=O", "train"),
    ("carbonyl", "cyclohexanone", "O=C1CCCCC1", "train"),
    ("carbonyl", "ethyl-acetate", "CCOC(C)=O", "train"),
    ("carbonyl", "2-hexanone", "CCCCC(C)=O", "test"),
    ("carbonyl", "octanoic-acid", "CCCCCCCC(=O)O", "train"),
    ("carbonyl", "2-decanone", "CCCCCCCCC(C)=O", "test"),
    ("aromatic", "furan", "c1ccoc1", "train"),
    ("aromatic", "pyrrole", "c1cc[nH]c1", "test"),
    ("aromatic", "benzene", "c1ccccc1", "train"),
    ("aromatic", "pyridine", "c1ccncc1", "train"),
    ("aromatic", "toluene", "Cc1ccccc1", "test"),
    ("aromatic", "phenol", "Oc1ccccc1", "train"),
    ("aromatic", "aniline", "Nc1ccccc1", "train"),
    ("aromatic", "benzaldehyde", "O=Cc1ccccc1", "train"),
    ("aromatic", "p-xylene", "Cc1ccc(C)cc1", "train"),
    ("aromatic", "anisole", "COc1ccccc1", "test"),
    ("aromatic", "styrene", "C=Cc1ccccc1", "train"),
    ("aromatic", "naphthalene", "c1ccc2ccccc2c1", "test"),
    ("aromatic", "biphenyl", "c1ccc(-c2ccccc2)cc1", "train"),
    ("halide", "chloroethane", "CCCl", "train"),
    ("halide", "1,2-dichloroethane", "ClCCCl", "train"),
    ("halide", "1-chloropropane", "CCCCl", "test"),
    ("halide", "2,2,2-trifluoroethanol", "OCC(F)(F)F", "train"),
    ("halide", "1-chlorobutane", "CCCCCl", "train"),
    ("halide", "fluorobenzene", "Fc1ccccc1", "train"),
    ("halide", "chlorobenzene", "Clc1ccccc1", "test"),
    ("halide", "1-chlorohexane", "CCCCCCCl", "train"),
    ("halide", "1-fluorooctane", "CCCCCCCCF", "test"),
    ("nitrile", "acetonitrile", "CC#N", "test"),
    ("nitrile", "propionitrile", "CCC#N", "test"),
    ("nitrile", "benzonitrile", "N#Cc1ccccc1", "test"),
    ("sulfur", "dimethyl-sulfide", "CSC", "test"),
    ("sulfur", "ethanethiol", "CCS", "test"),
    ("sulfur", "thiophene", "c1ccsc1", "test"),
)


def _import_rdkit():
    try:
        from rdkit import Chem
        from rdkit.Chem import AllChem
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("RDKit is needed to build the organic molecules but is not installed; install it with "
                          f"`pip install rdkit` (tested with rdkit 2026.9.1) (import error: {error})") from error
    return Chem, AllChem


def molecule_from_smiles(smiles: str, seed: int = 0):
    """ase.Atoms of one conformer of ``smiles`` (ETKDG with ``seed``, MMFF94-minimized), Å,
    centred at the atoms' mean position."""
    from ase import Atoms

    Chem, AllChem = _import_rdkit()
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse the SMILES {smiles!r}")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise RuntimeError(f"RDKit could not embed {smiles!r} in 3D")
    AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    positions = mol.GetConformer().GetPositions()
    atoms = Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=positions)
    atoms.positions -= atoms.get_positions().mean(0)
    return atoms


def organic_molecules(seed: int = 0, max_heavy: int = 12, series: Sequence[str] = ()) -> List:
    """The organic set (list of ase.Atoms with ``info``; see the module docstring), in order of
    increasing number of heavy atoms (the cheap ones first, so a partial labelling run is useful).

    ``max_heavy`` drops larger molecules; ``series`` keeps only the named series (all when
    empty)."""
    out = []
    for series_name, name, smiles, split in ORGANIC_MOLECULES:
        if series and series_name not in series:
            continue
        atoms = molecule_from_smiles(smiles, seed)
        heavy = int((atoms.get_atomic_numbers() > 1).sum())
        if heavy > max_heavy:
            continue
        atoms.info = {"name": "organic:" + name, "family": "organic:" + name, "series": series_name,
                      "kind": "organic", "charge": 0, "smiles": smiles, "split": split}
        out.append(atoms)
    out.sort(key=lambda a: (int((a.get_atomic_numbers() > 1).sum()), len(a)))
    return out
