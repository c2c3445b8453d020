"""Atomic file writes: a file holds either its old content or its complete new content.

Everything the project writes for keeps (model files, checkpoints, training outputs,
labelled data, JSON results) goes through here, so an interrupted write (Ctrl-C, a kill, a
full disk, an exception inside the writer) leaves the previous file intact instead of a
truncated one.  The new content goes to a temporary file in the same folder (same file
system, so the final rename is atomic), is flushed and fsync'ed, then replaces the target
with ``os.replace``; the folder is fsync'ed too, so the rename survives a power loss.

>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "result.json"
>>> _ = atomic_write(path, lambda handle: json.dump({"energy_eV": -1.5}, handle), mode="w")
>>> json.loads(path.read_text())
{'energy_eV': -1.5}
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Callable, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def _temporary_name(path: Path) -> Path:
    """A fresh name next to ``path`` that keeps its suffixes (writers that pick the format
    from the extension, e.g. ``ase.io.write`` or ``savefig``, see the same one)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{''.join(path.suffixes)}")


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename itself is still atomic
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    For writers that want a file name (``ase.io.write``, ``savefig``, ``PDBFile``).  If the
    block raises (or is interrupted), the temporary file is removed and ``path`` is untouched.
    The folder is created if needed; the new file gets the usual permissions (0666 & ~umask).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(target)
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"nothing was written to {temporary} (meant for {target})")
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
        _fsync_folder(target.parent)
    finally:
        if temporary.exists():
            temporary.unlink()


def atomic_write(path: PathLike, write: Callable[[IO], object], mode: str = "wb") -> Path:
    """Write ``path`` atomically: ``write(handle)`` fills a temporary file opened with
    ``mode`` (``"wb"`` or ``"w"``), which then replaces ``path``.  Returns the path.

    >>> import torch, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.pt"
    >>> _ = atomic_write(path, lambda handle: torch.save({"a": 1}, handle))
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` is {mode!r}; options are 'w' (text) and 'wb' (binary)")
    with atomic_path(path) as temporary:
        with open(temporary, mode) as handle:
            write(handle)
            handle.flush()
    return Path(path)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write the string ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), mode="wb")
