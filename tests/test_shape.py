"""The package's shape, read from its source: no import cycle, shipped code never imports
``testing``, modules under 400 lines and functions of at most 60, so that a change which
breaks one of these rules fails here rather than in a later review."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import flask_paxpar_checkout

PACKAGE = flask_paxpar_checkout.__name__
ROOT = Path(flask_paxpar_checkout.__file__).parent
TESTING = f"{PACKAGE}.testing"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Module:
    """One module of the package: its dotted name, its file and its parsed source."""

    name: str
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        """The package that ``from .x import y`` in this module is relative to."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def package_modules() -> dict[str, Module]:
    """Every ``.py`` file of the package, by dotted module name."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join((PACKAGE, *parts))
        modules[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    return modules


def imported_modules(module: Module, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports, at the top level or in a function."""
    targets: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            # `from . import x` imports the submodule x when there is one, else reads x
            # from the package's `__init__`.
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
    return {target for target in targets if target in known and target != module.name}


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The absolute name of the module an ``ImportFrom`` reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports."""
    modules = package_modules()
    known = set(modules)
    return {name: imported_modules(module, known) for name, module in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as the list of its modules, or None if it is acyclic."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        if name in done:
            return None
        visiting.append(name)
        for target in sorted(graph[name]):
            cycle = visit(target)
            if cycle is not None:
                return cycle
        visiting.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name)
        if cycle is not None:
            return cycle
    return None


def long_functions() -> Iterator[str]:
    """``path:line name (n lines)`` of every function longer than the limit, counted from
    its ``def`` line to its last line (decorators apart)."""
    for module in package_modules().values():
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    where = module.path.relative_to(ROOT.parent)
                    yield f"{where}:{node.lineno} {node.name} ({length} lines)"


def test_the_import_graph_is_read_from_the_package_itself() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.extension" in graph
    assert f"{PACKAGE}.trigger" in graph
    assert f"{PACKAGE}.event_factory" in graph[f"{PACKAGE}.trigger"]
    assert f"{PACKAGE}.event_factory" in graph[f"{PACKAGE}.testing.events"]
    assert f"{PACKAGE}.local_stripe" in graph[f"{PACKAGE}.testing"]


def test_a_cycle_is_found_and_named() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_outside_testing_imports_testing() -> None:
    offenders = {
        name: sorted(t for t in targets if t == TESTING or t.startswith(TESTING + "."))
        for name, targets in import_graph().items()
        if name != TESTING and not name.startswith(TESTING + ".")
    }
    assert {name: t for name, t in offenders.items() if t} == {}


def test_every_module_is_under_400_lines() -> None:
    too_long = {
        str(module.path.relative_to(ROOT.parent)): len(module.path.read_text().splitlines())
        for module in package_modules().values()
    }
    assert {path: n for path, n in too_long.items() if n >= MAX_MODULE_LINES} == {}


def test_no_function_is_over_60_lines() -> None:
    assert list(long_functions()) == []
