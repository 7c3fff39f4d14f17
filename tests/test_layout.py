"""The source tree keeps the shape docs/architecture.md describes: no import cycle
between modules, no import hidden inside a function to dodge one, modules of a
readable size."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
# Lazy imports on purpose: the CLI loads a subcommand's modules only when it runs,
# so `logcaster --help` and `logcaster query` start fast.
LAZY_IMPORTS_ALLOWED = {"logcaster.cli"}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(node: ast.stmt, modules: dict[str, Path]) -> list[str]:
    """The project's modules an import statement loads (a package's own module too)."""
    names: list[str] = []
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        for alias in node.names:
            sub = f"{node.module}.{alias.name}"
            names.append(sub if sub in modules else node.module)
    elif isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    return [n for n in names if n in modules]


def _top_level_imports(tree: ast.Module, modules: dict[str, Path]) -> set[str]:
    """What importing the module runs: top-level imports, TYPE_CHECKING blocks aside."""
    deps: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        for inner in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(inner, ast.stmt):
                deps.update(_imported(inner, modules))
    return deps


def test_no_import_cycle_between_modules() -> None:
    modules = _modules()
    graph = {
        name: _top_level_imports(ast.parse(path.read_text()), modules)
        for name, path in modules.items()
    }
    # A package imports its parents' __init__ too; they are empty or import down.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_no_import_hidden_inside_a_function() -> None:
    modules = _modules()
    hidden: list[str] = []
    for name, path in modules.items():
        if name in LAZY_IMPORTS_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                hidden.extend(
                    f"{name}:{inner.lineno}"
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.stmt) and _imported(inner, modules)
                )
    assert hidden == []


def _python_files() -> list[Path]:
    """The server's modules, the tests, and the benchmarks (their entry points are
    Python scripts without a .py suffix)."""
    bench = ROOT / "bench"
    scripts = [
        p
        for p in sorted(bench.iterdir())
        if p.is_file() and not p.suffix and "python" in p.read_text().partition("\n")[0]
    ]
    tests = sorted((ROOT / "tests").glob("*.py"))
    return [*_modules().values(), *tests, *bench.glob("*.py"), *scripts]


def test_modules_stay_readable() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _python_files()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
