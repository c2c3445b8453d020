"""Sphinx configuration of the openmm_pqeq documentation (built by ``make docs``).

Generated at build time (git-ignored): ``api/generated/`` holds one page per public module of
the package (a file or folder whose name does not start with ``_``) with an ``automodule``
directive, and ``guide/generated/commands.md`` the ``--help`` of every command.
``EXCLUDED_MODULES`` lists the modules left out of the API reference, with the reason.  See
docs/README.md.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path

from sphinx.ext import napoleon

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

project = "openmm_pqeq"
author = "the openmm_pqeq developers"
copyright = "2026, the openmm_pqeq developers"
release = importlib.import_module("openmm_pqeq").__version__
# openmm-ml imports its plugins (ours included) when it is first imported; importing it first
# lets autodoc import openmm_pqeq.integrations.openmmml_plugin
importlib.import_module("openmmml")

# napoleon is set up in setup() below (it skips attribute comments: "#: Name: text" stays text)
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["README.md", "_build", "guide/generated"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_static_path: list = []

# numpy-style docstrings; types are shown as text (the docstrings state shapes and units in
# them, e.g. "(N, 3) Å"), not resolved as cross-references
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = False
napoleon_use_rtype = False
napoleon_use_ivar = True
# each object is documented on the page of the module that defines it (packages' __all__
# re-exports are not repeated)
autodoc_default_options = {"members": True, "member-order": "bysource", "ignore-module-all": True}
autodoc_typehints = "none"
# an undocumented method (e.g. a forward) shows nothing rather than torch's docstring
autodoc_inherit_docstrings = False
autodoc_class_signature = "separated"

# every cross-reference the docs make must resolve (-n), except to other projects' objects
# (no intersphinx: the build runs offline)
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(torch|numpy|np|openmm|ase|e3nn|pathlib|typing|collections)(\..*)?")]

#: Modules left out of the API reference, with the reason.
EXCLUDED_MODULES = {
    "openmm_pqeq.cli.main": "the command line; documented by its --help (guide/cli.md)",
}


def public_modules(package: str = "openmm_pqeq") -> list:
    """Importable names of every public module of ``package``, sorted."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.name in EXCLUDED_MODULES:
            continue
        names.append(info.name)
    return sorted(names)


def write_api_pages(app) -> None:
    """One page per module under api/generated/ (rewritten only when its text changes)."""
    out = DOCS / "api" / "generated"
    out.mkdir(exist_ok=True)
    wanted = {}
    for name in public_modules():
        title = f"``{name}``"
        text = f"{title}\n{'=' * len(title)}\n\n.. automodule:: {name}\n"
        module = importlib.import_module(name)
        for exported in getattr(module, "__all__", []):
            obj = getattr(module, exported)
            defined_in = getattr(obj, "__module__", "") or ""
            # defined in a private module of this package: documented here
            if defined_in.startswith(name + "._") and callable(obj):
                kind = "autoclass" if isinstance(obj, type) else "autofunction"
                text += f"\n.. {kind}:: {name}.{exported}\n"
        wanted[f"{name}.rst"] = text
    for stale in out.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    for filename, text in wanted.items():
        path = out / filename
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def escape_bars(app, what, name, obj, options, lines) -> None:
    """Docstrings write |x| for norms; reST would read ``|x|`` as a substitution.  Escape every
    ``|`` outside literals, literal blocks (after ``::``), doctests and tables."""
    raw_indent = None  # indentation of the line that opened a literal block
    for k, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if raw_indent is not None:
            if stripped and indent <= raw_indent:
                raw_indent = None
            else:
                continue
        if stripped.endswith("::"):
            raw_indent = indent
        if "|" not in line or stripped.startswith(("|", "+-", "+=", ">>>", "...")):
            continue
        parts = _LITERAL.split(line)
        lines[k] = "".join(part if part.startswith("`") else part.replace("|", "\\|") for part in parts)


def numpy_docstrings(app, what, name, obj, options, lines) -> None:
    """napoleon (numpy style) for everything but attribute and data comments."""
    if what not in ("attribute", "data"):
        napoleon._process_docstring(app, what, name, obj, options, lines)


def write_cli_help(app) -> None:
    """guide/generated/commands.md: the --help text of every ``openmm-pqeq`` command."""
    import argparse
    import os

    from openmm_pqeq.cli.main import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help text to the terminal width
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = "## `openmm-pqeq --help`\n\n```text\n" + parser.format_help() + "```\n"
    for name, sub in commands.choices.items():
        text += f"\n## `openmm-pqeq {name} --help`\n\n```text\n{sub.format_help()}```\n"
    out = DOCS / "guide" / "generated"
    out.mkdir(exist_ok=True)
    path = out / "commands.md"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _lookup(dotted: str):
    """The object ``dotted`` names, found as Python finds it: attributes first, then
    submodules (so a name a package re-exports wins over a submodule of the same name)."""
    pieces = dotted.split(".")
    try:
        obj = importlib.import_module(pieces[0])
    except ImportError:
        return None
    for k, piece in enumerate(pieces[1:], start=1):
        if hasattr(obj, piece):
            obj = getattr(obj, piece)
            continue
        try:
            obj = importlib.import_module(".".join(pieces[:k + 1]))
        except ImportError:
            return None
    return obj


def _canonical_name(target: str, module: str):
    """The defining module's name of what ``target`` names, looked up from ``module`` as Python
    would (a name imported or re-exported there resolves to its definition), or None."""
    parts = module.split(".") if module else []
    prefixes = [".".join(parts[:k]) for k in range(len(parts), 0, -1)]
    for candidate in [f"{prefix}.{target}" for prefix in prefixes] + [target]:
        obj = _lookup(candidate)
        if obj is None:
            continue
        if type(obj).__name__ == "module":
            return obj.__name__
        if getattr(obj, "__module__", None) and getattr(obj, "__qualname__", None):
            return f"{obj.__module__}.{obj.__qualname__}"
        return None
    return None


def resolve_reexports(app, env, node, contnode):
    """Resolve a Python cross-reference to a re-exported or imported name (``PQEq`` from
    :mod:`openmm_pqeq`, ``GaussianCoulomb.site_gradients`` from the module that imports
    ``GaussianCoulomb``) to the object where it is defined and documented."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    canonical = _canonical_name(target, node.get("py:module") or "")
    if canonical is None or canonical == target:
        return None
    domain = env.get_domain("py")
    for kind in ("obj", node["reftype"]):
        resolved = domain.resolve_xref(env, node["refdoc"], app.builder, kind, canonical, node, contnode)
        if resolved is not None:
            return resolved
    return None


def setup(app):
    napoleon.setup(app)
    for listener in list(app.events.listeners["autodoc-process-docstring"]):
        if listener.handler is napoleon._process_docstring:
            app.disconnect(listener.id)
    app.connect("autodoc-process-docstring", escape_bars, priority=400)
    app.connect("autodoc-process-docstring", numpy_docstrings, priority=500)
    app.connect("builder-inited", write_api_pages)
    app.connect("builder-inited", write_cli_help)
    app.connect("missing-reference", resolve_reexports)
