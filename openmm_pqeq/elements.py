"""Chemical elements: symbol <-> atomic number, with clear errors for unknown input."""

from __future__ import annotations

from typing import Iterable, List, Sequence, Union

#: Element symbols indexed by atomic number (index 0 is a placeholder).
SYMBOLS: List[str] = [
    "X",
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne",
    "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
    "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr",
    "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn",
    "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd",
    "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb",
    "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
    "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm",
    "Md", "No", "Lr",
]

_Z_OF = {s: z for z, s in enumerate(SYMBOLS) if z > 0}

#: Largest atomic number known to the package.
MAX_Z: int = len(SYMBOLS) - 1


def atomic_number(symbol: Union[str, int]) -> int:
    """Atomic number of an element symbol (case-insensitive) or a validated integer Z.

    >>> atomic_number("o"), atomic_number(8)
    (8, 8)
    """
    if isinstance(symbol, (int,)) and not isinstance(symbol, bool):
        if 1 <= symbol <= MAX_Z:
            return int(symbol)
        raise ValueError(f"atomic number {symbol} is outside 1..{MAX_Z}")
    key = str(symbol).strip().capitalize()
    if key not in _Z_OF:
        raise ValueError(f"unknown element symbol {symbol!r}")
    return _Z_OF[key]


def atomic_numbers(symbols: Iterable[Union[str, int]]) -> List[int]:
    """Atomic numbers of a sequence of symbols or integers."""
    return [atomic_number(s) for s in symbols]


def symbol(z: int) -> str:
    """Element symbol of atomic number ``z``."""
    if not 1 <= int(z) <= MAX_Z:
        raise ValueError(f"atomic number {z} is outside 1..{MAX_Z}")
    return SYMBOLS[int(z)]


def symbols(zs: Sequence[int]) -> List[str]:
    """Element symbols of a sequence of atomic numbers."""
    return [symbol(z) for z in zs]
