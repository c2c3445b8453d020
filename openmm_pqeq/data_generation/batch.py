"""Label many structures: parallel over processes, resumable, one extxyz frame per finished job.

Every input frame gets a *label key*: ``k`` + 16 hex digits of a hash of its atomic numbers, positions (rounded to
10⁻⁸ Å), charge, multiplicity, field and the DFT settings.  Each finished frame is appended to the
output extxyz file at once (one write, flushed and fsynced), with the key in
``info["label_key"]``.  A restart reads the keys already in the output and skips those frames, so
an interrupted run loses at most the frames in flight.  A partially written last frame (the process
was killed mid-write) is detected and dropped with a warning.

The output is in completion order; ``info["source_index"]`` is the frame's index in the input.
Frames whose SCF fails are reported and left out (a later run retries them).

Threads: each worker runs PySCF with ``threads_per_worker`` OpenMP threads (default 1), so
``workers × threads_per_worker`` cores are busy.

>>> summary = label_file("clusters.extxyz", "labelled.extxyz", DFTSettings(basis="def2-svp"),
...                      workers=4)                                     # doctest: +SKIP
>>> summary["labelled"], summary["skipped"], summary["failed"]          # doctest: +SKIP
(120, 0, 0)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .._atomic import atomic_write_text
from .labelling import (DFTSettings, as_field, import_pyscf, label_atoms, structure_charge,
                        structure_field, structure_multiplicity)


def label_key(atoms, charge: int, multiplicity: int, field: np.ndarray, settings: DFTSettings) -> str:
    """A stable identity of one labelling job (structure + electronic state + method).

    ``"k"`` followed by 16 hex digits of a SHA-1: the letter keeps the extxyz reader from taking
    an all-digit key such as ``22753603382573e4`` for a number.
    """
    payload = {
        "numbers": [int(z) for z in atoms.get_atomic_numbers()],
        "positions": np.round(np.asarray(atoms.get_positions(), dtype=float), 8).tolist(),
        "charge": int(charge),
        "multiplicity": int(multiplicity),
        "field": np.round(np.asarray(field, dtype=float), 10).tolist(),
        "settings": settings.as_dict(),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return "k" + hashlib.sha1(text.encode()).hexdigest()[:16]


def read_finished(path: str) -> List:
    """Frames already in an output file; a broken trailing frame is cut off (with a warning)."""
    import ase.io

    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return []
    with open(path) as handle:
        text = handle.read()
    frames = []
    good_end = 0
    stream = io.StringIO(text)
    while True:
        start = stream.tell()
        header = stream.readline()
        if not header.strip():
            break
        try:
            n_atoms = int(header.split()[0])
            block = header + "".join(stream.readline() for _ in range(n_atoms + 1))
            if block.count("\n") < n_atoms + 2:
                raise ValueError("truncated frame")
            frames.append(ase.io.read(io.StringIO(block), format="extxyz"))
        except Exception:  # noqa: BLE001 - any parse failure means a broken tail
            stream.seek(start)
            break
        good_end = stream.tell()
    if text[good_end:].strip():
        warnings.warn(f"{path}: dropping an incomplete last frame (interrupted write); "
                      f"{len(frames)} complete frames kept", stacklevel=2)
        atomic_write_text(path, text[:good_end])
    return frames


def append_frame(path: str, atoms) -> None:
    """Append one structure to the extxyz file ``path`` and flush it to disk (a resumable run
    loses at most the frame being written; :func:`read_finished` drops a torn last frame)."""
    import ase.io

    buffer = io.StringIO()
    ase.io.write(buffer, atoms, format="extxyz")
    with open(path, "a") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())


def _worker_init(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    pyscf, _, _ = import_pyscf()
    pyscf.lib.num_threads(threads)


def _job(atoms, settings: DFTSettings, charge: int, multiplicity: int, field, threads: int):
    try:
        return label_atoms(atoms, settings, charge=charge, multiplicity=multiplicity, field=field,
                           threads=threads), None
    except Exception as error:  # noqa: BLE001 - reported to the parent, the run goes on
        return None, f"{type(error).__name__}: {error}"


def prepare_jobs(frames: Sequence, settings: DFTSettings, charge: Optional[int] = None,
                 field: Optional[Sequence[float]] = None) -> List[Dict]:
    """Resolve charge, multiplicity, field and key of every input frame.

    ``charge`` and ``field`` are defaults for frames whose ``info`` has none.
    """
    jobs = []
    default_field = as_field(field) if field is not None else np.zeros(3)
    for index, atoms in enumerate(frames):
        q = structure_charge(atoms, default=0 if charge is None else charge)
        m = structure_multiplicity(atoms, q)
        f = structure_field(atoms, default_field)
        clean = atoms.copy()
        clean.calc = None
        clean.info = {k: v for k, v in atoms.info.items()
                      if k not in ("energy", "free_energy", "dipole", "label_key")}
        clean.info["source_index"] = index
        jobs.append({"atoms": clean, "charge": q, "multiplicity": m, "field": f,
                     "key": label_key(atoms, q, m, f, settings)})
    return jobs


def label_file(input_path: str, output_path: str, settings: Optional[DFTSettings] = None,
               workers: int = 1, threads_per_worker: int = 1, charge: Optional[int] = None,
               field: Optional[Sequence[float]] = None, index: str = ":",
               progress: Optional[Callable[[str], None]] = None) -> Dict:
    """Label every frame of ``input_path`` with DFT and append the results to ``output_path``.

    Parameters
    ----------
    input_path : any file ASE reads (all frames by default, see ``index``); positions in Å.
    output_path : extxyz file, created or appended to (resumable).
    settings : DFT method and numerics (default :class:`DFTSettings`, PBE/def2-SVPD).
    workers : number of worker processes (1 runs in this process).
    threads_per_worker : OpenMP threads per worker.
    charge : net charge (e) for frames without ``info["charge"]`` (default 0).
    field : uniform field (3,) in V/Å for frames without ``info["field"]`` (default zero).
    index : ASE index string selecting input frames.
    progress : called with one line per finished, failed or skipped frame (default: print to stderr).

    Returns
    -------
    dict with ``labelled``, ``skipped`` (already in the output), ``failed`` (count),
    ``failures`` (list of (source_index, message)), ``wall_s`` and ``dft_wall_s`` (sum over
    the frames labelled in this run).

    Raises
    ------
    ValueError
        When ``output_path`` already holds frames labelled with another method.
    """
    import ase.io

    settings = settings if settings is not None else DFTSettings()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if threads_per_worker < 1:
        raise ValueError(f"threads_per_worker must be at least 1, got {threads_per_worker}")
    report = progress if progress is not None else (lambda line: print(line, file=sys.stderr, flush=True))
    import_pyscf()  # fail early, with the install hint

    frames = ase.io.read(input_path, index=index)
    frames = frames if isinstance(frames, list) else [frames]
    jobs = prepare_jobs(frames, settings, charge=charge, field=field)

    finished = read_finished(output_path)
    methods = {a.info.get("dft_method") for a in finished}
    if finished and methods != {settings.method}:
        raise ValueError(f"{output_path} holds frames labelled with {sorted(map(str, methods))}, not "
                         f"{settings.method}; write to another file or use the same settings")
    done = {str(a.info.get("label_key")) for a in finished}
    todo = [job for job in jobs if job["key"] not in done]
    skipped = len(jobs) - len(todo)
    if skipped:
        report(f"resuming: {skipped} of {len(jobs)} frames already in {output_path}")

    start = time.perf_counter()
    labelled, failures, dft_wall = 0, [], 0.0

    def handle(job, result, error):
        nonlocal labelled, dft_wall
        index_ = job["atoms"].info["source_index"]
        if result is None:
            failures.append((index_, error))
            report(f"[{labelled + len(failures)}/{len(todo)}] frame {index_} FAILED: {error}")
            return
        result.info["label_key"] = job["key"]
        append_frame(output_path, result)
        labelled += 1
        dft_wall += float(result.info.get("dft_wall_s", 0.0))
        report(f"[{labelled + len(failures)}/{len(todo)}] frame {index_} "
               f"{result.get_chemical_formula()} q={job['charge']:+d} "
               f"E={result.get_potential_energy():.6f} eV  {result.info['dft_wall_s']:.1f} s")

    if workers == 1:
        pyscf, _, _ = import_pyscf()
        previous_threads = pyscf.lib.num_threads()
        try:
            for job in todo:
                result, error = _job(job["atoms"], settings, job["charge"], job["multiplicity"], job["field"],
                                     threads_per_worker)
                handle(job, result, error)
        finally:
            pyscf.lib.num_threads(previous_threads)
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                                 initargs=(threads_per_worker,)) as pool:
            futures = {pool.submit(_job, job["atoms"], settings, job["charge"], job["multiplicity"],
                                   job["field"], threads_per_worker): job for job in todo}
            for future in as_completed(futures):
                result, error = future.result()
                handle(futures[future], result, error)

    return {"labelled": labelled, "skipped": skipped, "failed": len(failures), "failures": failures,
            "wall_s": time.perf_counter() - start, "dft_wall_s": dft_wall}
