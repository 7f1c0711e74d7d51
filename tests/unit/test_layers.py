"""The package layout is the architecture: imports point down the layers only, siblings stay independent.

    harness.cli > harness.pipeline > harness.reporting > harness.forecasting > harness.metrics
        > {harness.store, harness.engines, verifiers, tasks}   (siblings: no imports between them)
        > harness.core                                           (imports nothing of ttc, and only the stdlib)

A package may import its own modules and any package of a lower layer, except that metrics and forecasting are
pure (counts and arrays in, numbers out): they import only the core, numpy and scipy, and forecasting also
metrics. ``harness/__init__.py`` re-exports the public API from the top; of the layers, only the CLI uses it.
No module imports itself back through others (no import cycle). Checked on the source, every import statement
(also those inside functions and under ``TYPE_CHECKING``), so a lazy import cannot hide an edge.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("harness", "tasks", "verifiers")

# Top to bottom; the packages of one layer are siblings that do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("harness.cli",),
    ("harness.pipeline",),
    ("harness.reporting",),
    ("harness.forecasting",),
    ("harness.metrics",),
    ("harness.store", "harness.engines", "verifiers", "tasks"),
    ("harness.core",),
]
# Pure packages: of ttc, only these lower packages; of the rest, only the stdlib and these libraries.
PURE = {
    "harness.metrics": ({"harness.core"}, {"numpy", "scipy"}),
    "harness.forecasting": ({"harness.metrics", "harness.core"}, {"numpy", "scipy"}),
    "harness.core": (set(), set()),
}
PACKAGE_NAMES = [package for layer in LAYERS for package in layer]


def package_of(module: str) -> str | None:
    """The layered package a module belongs to (None: not ttc's, or ``harness`` itself)."""
    for package in PACKAGE_NAMES:
        if module == package or module.startswith(package + "."):
            return package
    return None


def layer_of(module: str) -> int | None:
    package = package_of(module)
    return None if package is None else next(i for i, layer in enumerate(LAYERS) if package in layer)


def may_import(importer: str, imported: str) -> bool:
    """Whether module ``importer`` may import module ``imported`` (both ttc's, or ``imported`` a library)."""
    source, target = package_of(importer), package_of(imported)
    if source is None or source == target:
        return True
    if target is None:
        top = imported.split(".")[0]
        if top in PACKAGES:  # `import harness`: the public API, which only the top layer (the CLI) may use
            return layer_of(importer) == 0
        allowed_libraries = PURE[source][1] if source in PURE else None
        return allowed_libraries is None or top in sys.stdlib_module_names or top in allowed_libraries
    if source in PURE:
        return target in PURE[source][0]
    return layer_of(target) > layer_of(source)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file; ``from a.b import c`` gives ``a.b.c`` where that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else node.module))
    return found


def source_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            modules[".".join(part for part in parts if part != "__init__")] = path
    return modules


MODULES = source_modules()


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the ttc modules it imports."""
    return {
        name: {module for _, module in imported_modules(path) if module in modules and module != name}
        for name, path in modules.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def forbidden_imports(name: str, path: Path) -> list[str]:
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    return [
        f"{shown}:{line} imports {module}" for line, module in imported_modules(path) if not may_import(name, module)
    ]


def test_every_module_sits_in_a_layer():
    loose = [name for name in MODULES if name != "harness" and package_of(name) is None]
    assert not loose, f"modules outside the layers {PACKAGE_NAMES}: {loose}"


@pytest.mark.parametrize("name", list(MODULES))
def test_imports_point_down_and_siblings_stay_apart(name):
    bad = forbidden_imports(name, MODULES[name])
    assert not bad, "imports that break the layers:\n" + "\n".join(bad)


def test_no_import_cycle():
    cycles = import_cycles(import_graph(MODULES))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(cycle) for cycle in cycles)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from harness.cli.app import app\n")
    assert imported_modules(module) == [(2, "harness.cli.app")]
    assert not may_import("harness.store.run_store", "harness.cli.app")
    assert forbidden_imports("harness.store.run_store", module) == [f"{module}:2 imports harness.cli.app"]
    assert may_import("harness.cli.app", "harness.store.run_store")


def test_the_layer_check_catches_an_import_between_siblings():
    assert not may_import("harness.store.config", "harness.engines.base")
    assert not may_import("harness.engines.reward_models", "verifiers.base")
    assert not may_import("verifiers", "tasks.base")
    assert not may_import("tasks.base", "harness.store.run_store")
    assert may_import("harness.store.config", "harness.core.records")


def test_the_layer_check_keeps_metrics_and_forecasting_pure():
    assert not may_import("harness.metrics.counts", "harness.store.run_store")  # lower, but not pure
    assert not may_import("harness.forecasting.forecast", "harness.engines.models")
    assert not may_import("harness.metrics.analysis", "harness.forecasting.laws")  # upward
    assert not may_import("harness.metrics.analysis", "pyarrow")
    assert not may_import("harness.core.errors", "numpy")
    assert may_import("harness.forecasting.forecast", "harness.metrics.estimators")
    assert may_import("harness.forecasting.laws", "scipy.special")
    assert not may_import("harness.reporting.html", "harness")  # the API is the top's to re-export
    assert not may_import("harness.pipeline.api", "harness")
    assert may_import("harness.cli.pipeline", "harness")  # the CLI calls the public API


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_benchmarks_are_not_shipped_in_the_runtime_package():
    assert not (REPO_ROOT / "harness" / "bench").exists()
    assert (REPO_ROOT / "benchmarks" / "suite.py").is_file()
    assert not list((REPO_ROOT / "results").rglob("*.py")), "results/ holds outputs only"
