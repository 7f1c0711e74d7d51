"""The package layout is the architecture: imports point down the layers only.

cli -> pipeline -> reporting -> forecasting -> metrics -> store -> engines -> errors -> (tasks, verifiers), and
``verifiers`` may use ``tasks``; ``tasks`` uses neither. A module may import its own subpackage freely.
Checked on the source (every import statement, also those inside functions), so a lazy import cannot hide
an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    "harness.cli",
    "harness.pipeline",
    "harness.reporting",
    "harness.forecasting",
    "harness.metrics",
    "harness.store",
    "harness.engines",
    "verifiers",
    "tasks",
    "harness.core",
]


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return index
    return None


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def source_modules() -> list[tuple[str, Path]]:
    modules = []
    for package in ("harness", "tasks", "verifiers"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            modules.append((".".join(part for part in parts if part != "__init__"), path))
    return modules


def test_every_harness_module_sits_in_a_layer():
    loose = [name for name, _ in source_modules() if name != "harness" and layer_of(name) is None]
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"


@pytest.mark.parametrize("name,path", source_modules(), ids=[name for name, _ in source_modules()])
def test_imports_point_down(name, path):
    own = layer_of(name)
    if own is None:  # harness/__init__.py: the public API re-exports the top
        return
    upward = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {module}"
        for line, module in imported_modules(path)
        if (target := layer_of(module)) is not None and target < own
    ]
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from harness.cli.app import app\n")
    assert [(2, "harness.cli.app")] == imported_modules(module)
    assert layer_of("harness.cli.app") < layer_of("harness.store.run_store")


def test_benchmarks_are_not_shipped_in_the_runtime_package():
    assert not (REPO_ROOT / "harness" / "bench").exists()
    assert (REPO_ROOT / "benchmarks" / "suite.py").is_file()
    assert not list((REPO_ROOT / "results").rglob("*.py")), "results/ holds outputs only"
