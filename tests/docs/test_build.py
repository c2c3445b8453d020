"""The documentation builds with Sphinx, nitpicky, every warning an error (what ``make docs``
runs, with the fast ``dummy`` builder: sources are read, every docstring is imported and
parsed, and every cross-reference is resolved, but no HTML is written)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

pytest.importorskip("sphinx", reason="the documentation needs sphinx and myst-parser (requirements-test.txt)")
pytest.importorskip("myst_parser", reason="the documentation needs sphinx and myst-parser (requirements-test.txt)")


def test_docs_build_without_warnings(tmp_path):
    run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "dummy", "-n", "-W", "--keep-going", "-E", "-q",
                          "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "out")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert run.returncode == 0 and not warnings, "\n".join(warnings) or run.stderr[-3000:]


def test_every_public_module_has_an_api_page():
    sys.path.insert(0, str(DOCS))
    try:
        import conf
    finally:
        sys.path.remove(str(DOCS))
    modules = set(conf.public_modules())
    package = ROOT / "openmm_pqeq"
    on_disk = {".".join(("openmm_pqeq", *p.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
               for p in package.rglob("*.py") if not any(part.startswith("_") and part != "__init__.py"
                                                         for part in p.relative_to(package).parts)}
    assert on_disk - set(conf.EXCLUDED_MODULES) == modules


#: What no source file may cite: the project's planning notes outside the repository, and issue
#: numbers (spelled in pieces so that this file does not match itself).
FORBIDDEN = re.compile("|".join(["METHOD" + r"\.md", "shared" + "/docs", r"\(" + "issue ?" + r"\d", "issue" + r" \d"]),
                       re.IGNORECASE)


def test_docstrings_cite_only_files_inside_the_repository():
    """Docstrings and comments cite docs/ pages that exist, and no issue numbers."""
    cited = set()
    for path in [*(ROOT / "openmm_pqeq").rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
                 *(ROOT / "plugin").rglob("*.cpp"), *(ROOT / "plugin").rglob("*.h")]:
        text = path.read_text()
        assert not FORBIDDEN.search(text), f"{path}: {FORBIDDEN.search(text).group(0)!r}"
        cited |= set(re.findall(r"docs/[\w/]+\.md", text))
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, f"cited but missing: {missing}"
