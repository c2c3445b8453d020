"""Regenerate ``openmm_pqeq/data/pqeq_params.json`` from the published PQEq tables.

Usage (from the repository root; FOLDER holds PQEq0.txt, PQEq1.txt and PQEq3.txt as published
in the RexPoN repository, github.com/sabernaserifar/RexPoN, folder PQEq_params_file/)::

    python tools/make_pqeq_params.py FOLDER

Sets written (per element: chi_eV, J_eV, Z_e, R_A, Ks_eV_per_A2, polarizable):

- ``pqeq0``: Naserifar, Brooks, Goddard, J. Chem. Phys. 146, 124117 (2017), file PQEq0.txt.
- ``pqeq1``: pqeq0 with the re-optimized chi, J of PQEq1.txt (H C N O F Si P S Cl).
- ``pqeq3``: the later full table PQEq3.txt (quartic spring K4 is zero for every element
  and is not used).
- ``reaxnet``: the set of the published foundation model (Gao et al., Nat. Commun. 16,
  10484 (2025)): pqeq0, with H, N, O, P from pqeq1 and Li replaced by
  chi 3.87172 eV, J 14.85384 eV, R 0.69125 A, Ks 1083.03576 kcal/mol/A^2, Z 1.

Spring constants are tabulated in kcal/mol/A^2 and stored in eV/A^2 (divided by
``openmm_pqeq.units.EV_TO_KCAL_PER_MOL``, 23.060549 as in the published code).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from openmm_pqeq.units import EV_TO_KCAL_PER_MOL  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "openmm_pqeq" / "data" / "pqeq_params.json"


def read_table(path: Path, ks_column: int) -> dict:
    rows = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 8:
            continue
        try:
            values = [float(x) for x in fields[2:]]
        except ValueError:
            continue
        chi, j, z, rc, rs = values[0], values[1], values[2], values[3], values[4]
        if rc != rs:
            raise ValueError(f"{path.name}: {fields[0]} has R_core != R_shell")
        rows[fields[0]] = {
            "chi_eV": chi,
            "J_eV": j,
            "Z_e": z,
            "R_A": rc,
            "Ks_eV_per_A2": values[ks_column] / EV_TO_KCAL_PER_MOL,
            "polarizable": bool(int(fields[1])) and values[ks_column] > 0,
        }
    return rows


def main(data_dir: str) -> None:
    data = Path(data_dir)
    pqeq0 = read_table(data / "PQEq0.txt", 5)
    pqeq1_only = read_table(data / "PQEq1.txt", 5)
    pqeq3 = read_table(data / "PQEq3.txt", 5)
    pqeq1 = {k: dict(v) for k, v in pqeq0.items()}
    for el, row in pqeq1_only.items():
        pqeq1[el].update(chi_eV=row["chi_eV"], J_eV=row["J_eV"])
    reaxnet = {k: dict(v) for k, v in pqeq0.items()}
    for el in ("H", "N", "O", "P"):
        reaxnet[el] = dict(pqeq1[el])
    reaxnet["Li"] = {
        "chi_eV": 3.87172, "J_eV": 14.85384, "Z_e": 1.0, "R_A": 0.69125,
        "Ks_eV_per_A2": 1083.03576 / EV_TO_KCAL_PER_MOL, "polarizable": True,
    }
    cite0 = "Naserifar, Brooks, Goddard, J. Chem. Phys. 146, 124117 (2017)"
    out = {
        "format": "openmm_pqeq parameter sets v1",
        "units": {"chi": "eV", "J": "eV", "Z": "e", "R": "Angstrom", "Ks": "eV/Angstrom^2"},
        "sets": {
            "pqeq0": {"citation": cite0 + "; table PQEq0", "elements": pqeq0},
            "pqeq1": {"citation": cite0 + "; PQEq0 with re-optimized PQEq1 chi, J for H C N O F Si P S Cl",
                      "elements": pqeq1},
            "pqeq3": {"citation": cite0 + " and later updates; table PQEq3 (RexPoN repository)",
                      "elements": pqeq3},
            "reaxnet": {"citation": "Gao et al., Nat. Commun. 16, 10484 (2025): PQEq0 with H, N, O, P "
                                    "from PQEq1 and refitted Li", "elements": reaxnet},
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    counts = ", ".join(f"{name}: {len(s['elements'])}" for name, s in out["sets"].items())
    print(f"wrote {OUT} ({counts})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/make_pqeq_params.py FOLDER (the folder holding PQEq0.txt, PQEq1.txt, PQEq3.txt)")
    main(sys.argv[1])
