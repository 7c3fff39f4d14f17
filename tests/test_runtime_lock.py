"""`make serve` installs requirements.lock only: every module the server's code
imports must come from a distribution pinned there (the dev venv the tests run
in has more, which hid a missing one: google.rpc, from googleapis-common-protos)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "logcaster"
# Imported only by code the tests and benchmarks use, never by `logcaster serve`.
TEST_ONLY = {"testing.py"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_pins() -> set[str]:
    text = (ROOT / "requirements.lock").read_text()
    return {_normal(m[1]) for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", text, re.M)}


def _imported_modules() -> dict[str, Path]:
    """Every absolute import of a module outside the standard library and logcaster,
    with one file that imports it."""
    found: dict[str, Path] = {}
    for path in SRC.rglob("*.py"):
        if path.name in TEST_ONLY:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.partition(".")[0]
                if top != "logcaster" and top not in sys.stdlib_module_names:
                    found.setdefault(name, path)
    return found


def _owners() -> dict[str, str]:
    """Installed file (as its distribution's RECORD names it, relative to its
    site-packages) -> the distribution that installed it."""
    owners: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = _normal(dist.metadata["Name"])
        for file in dist.files or ():
            owners[file.as_posix()] = name
    return owners


def _relative(origin: str) -> str | None:
    """`origin` relative to the innermost sys.path entry that holds it (the
    project's root holds .venv too)."""
    path = Path(origin).resolve()
    bases = [Path(entry).resolve() for entry in sys.path if entry]
    holding = [base for base in bases if path.is_relative_to(base)]
    if not holding:
        return None
    return path.relative_to(max(holding, key=lambda b: len(b.parts))).as_posix()


def test_every_module_the_server_imports_is_pinned_in_the_runtime_lock() -> None:
    pins = _runtime_pins()
    owners = _owners()
    missing = []
    for module, user in sorted(_imported_modules().items()):
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{module} (imported by {user}) is not installed"
        origin = spec.origin
        if origin is None or origin in ("built-in", "frozen"):
            continue  # a namespace package: its submodules are checked on their own
        relative = _relative(origin)
        owner = owners.get(relative) if relative is not None else None
        assert owner is not None, f"no installed distribution owns {origin} ({module})"
        if owner not in pins:
            missing.append(f"{module} (imported by {user.relative_to(ROOT)}) from {owner}")
    assert not missing, "not in requirements.lock: " + "; ".join(missing)
