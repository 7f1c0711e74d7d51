"""ttc: a harness for test-time compute scaling (repeated sampling, verification, pass@k, laws, forecasts).

The Python API::

    from harness import run, load_run

    result = run("gsm8k", data="gsm8k_test.jsonl", problems=20, samples=32)  # what `ttc run` does
    stored = load_run(result.run_dir)          # or a counts JSONL file
    stored.pass_at_k(), stored.law, stored.forecast(10_000), stored.selectors()

Both live in ``harness.pipeline.api`` and are imported on first use, so ``import harness`` (or a layer such as
``harness.store``) stays light: no engine, no vLLM, no torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.pipeline.api import Run, RunResult, load_run, run

__all__ = ["Run", "RunResult", "load_run", "run"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(import_module("harness.pipeline.api"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
