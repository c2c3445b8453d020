"""Apply the rule for pairs without data to a split-charge set fitted before fit-pqeq applied it.

    python tools/generalize_split_set.py openmm_pqeq/data/pqeq_split.json examples/fit_pqeq_split.yaml

A per-pair fit moves only the element pairs that form bonds in its training structures; since
then ``fit-pqeq`` records only those pairs' own κ⁰ and per-element κ_Z fitted to them, so every
other pair gets √(κ_i κ_j) (docs/method/splitcharge.md, *Bond hardness of pairs without data*;
:func:`openmm_pqeq.fit.pqeq_fit.generalize_bond_hardness`).  This rewrites a set written before
that with the same step: the training split is recomputed from the recipe exactly as the fit made
it, the ``charge_transfer`` record replaced, and ``metrics.refined`` recomputed for the recorded
set; ``provenance.bond_hardness_without_data`` says what was done.  The file is rewritten
atomically.
"""

from __future__ import annotations

import argparse
import json

from openmm_pqeq._atomic import atomic_write_text
from openmm_pqeq.fit.pqeq_fit import (FitConfig, build_pqeq, data_files, generalize_bond_hardness, load_structures,
                                      metrics, split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set_file", help="the fitted split-charge set (JSON; rewritten in place)")
    parser.add_argument("recipe", help="its fit-pqeq configuration (YAML): data and split")
    args = parser.parse_args()
    config = FitConfig.from_yaml(args.recipe)
    with open(args.set_file) as handle:
        result = json.load(handle)
    if result.get("charge_transfer", {}).get("model") != "split":
        raise SystemExit(f"{args.set_file}: not a split-charge set")
    structures = [s for path in data_files(config) for s in load_structures(path, config.charge_constraint)]
    parts = split(structures, config.test_fraction, config.split_seed, config.test_families)
    train = [structures[k] for k in parts["train"]]
    test = [structures[k] for k in parts["test"]]
    if sorted(s.name for s in test) != sorted(result["provenance"]["test_structures"]):
        raise SystemExit("the recipe's test split is not the one the set records; wrong recipe?")
    elements = sorted({int(z) for s in structures for z in s.numbers.tolist()})
    pqeq = build_pqeq(elements, result["name"], None, config.charge_tolerance, config.shell_tolerance, "split", None)
    before = dict(result["charge_transfer"])
    record = generalize_bond_hardness(pqeq, train, elements)
    result["charge_transfer"] = record
    result["metrics"]["refined"] = {"train": metrics(pqeq, train), "test": metrics(pqeq, test)}
    result["provenance"]["bond_hardness_without_data"] = (
        f"own kappa0 kept for the {len(record['hardness'])} pairs bonded in the training structures (of "
        f"{len(before.get('hardness') or {})}); the rest from per-element values (geometric rule) fitted to them, "
        "after the fit: python tools/generalize_split_set.py")
    atomic_write_text(args.set_file, json.dumps(result, indent=1))
    print(f"{args.set_file}: {len(record['hardness'])} pairs with data, element values "
          + ", ".join(f"{k} {v:.3g}" for k, v in sorted(record["element_hardness"].items())))
    print("test: " + json.dumps(result["metrics"]["refined"]["test"]))


if __name__ == "__main__":
    main()
