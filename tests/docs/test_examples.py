"""The Python examples of README.md and docs/guide/ run as written.

Every fenced ```` ```python ```` block runs in its own fresh interpreter, in an empty temporary
folder that holds a link to the repository's ``examples/`` (so paths like
``examples/data/Li2PO2N.cif`` resolve) and imports this checkout of the package.  A block that
cannot run here (it needs a file the repository does not ship, a GPU, or hours) is preceded by
the marker line

    <!-- example: skip REASON -->

and is reported as skipped with that reason.  Blocks in other languages (``bash``, ``text``,
``yaml``) are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
FENCE = re.compile(r"(?P<marker><!-- example: skip (?P<reason>[^>]*?) -->\s*\n)?^```python\n(?P<code>.*?)^```",
                   re.MULTILINE | re.DOTALL)
#: Seconds one example may take (the slowest, OpenMM MD of 32 waters, takes about 30 s).
TIMEOUT_S = 300


def python_blocks(path: Path):
    """``(line number, code, skip reason or None)`` of each Python block of ``path``."""
    text = path.read_text()
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        yield line, match.group("code"), match.group("reason")


EXAMPLES = [pytest.param(code, reason, id=f"{path.relative_to(ROOT)}:{line}")
            for path in DOCUMENTS for line, code, reason in python_blocks(path)]


def test_the_documents_have_examples():
    assert len(EXAMPLES) >= 3  # README: evaluate, the PQEq module, OpenMM


@pytest.mark.parametrize("code, reason", EXAMPLES)
def test_example_runs_as_written(code, reason, tmp_path):
    if reason is not None:
        pytest.skip(reason.strip())
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=TIMEOUT_S)
    assert run.returncode == 0, f"the example failed:\n{code}\n--- stderr ---\n{run.stderr[-3000:]}"
