"""ttc: a harness for test-time compute scaling (repeated sampling, verification, pass@k, laws, forecasts).

The Python API::

    from harness import run, load_run

    result = run("gsm8k", data="gsm8k_test.jsonl", problems=20, samples=32)  # what `ttc run` does
    stored = load_run(result.run_dir)          # or a counts JSONL file
    stored.pass_at_k(), stored.law, stored.forecast(10_000), stored.budget(0.8), stored.selectors()

``run()`` is ``sample()``, ``verify()`` and ``analyze()`` (then the report) in one call; each step is also a
function of its own, as each is a ``ttc`` command, and so are ``sweep()`` (a reasoning run at several thinking
budgets), ``score()``, ``import_samples()`` and ``import_scores()``. Results are typed (``Summary`` is
summary.json), and every error about the input is a ``TTCError``; a bad parameter is an ``OptionError`` naming it.

The names are imported on first use, so ``import harness`` (or a layer such as ``harness.store``) stays light:
no engine, no vLLM, no torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.core.errors import (
        DataError,
        EngineError,
        OptionError,
        RunStoreError,
        SandboxError,
        TaskError,
        TTCError,
        VerifierError,
    )
    from harness.pipeline.api import (
        RunResult,
        SampleResult,
        analyze,
        genselect,
        import_samples,
        import_scores,
        run,
        sample,
        score,
        sweep,
        verify,
    )
    from harness.pipeline.options import DEFAULT_RUN
    from harness.pipeline.results import ImportedRun, SamplingReport, Scoring, Summary, SweepReport, Verification
    from harness.pipeline.stored_run import Run, load_run
    from harness.pipeline.verifier_stats import agreement, ensemble
    from harness.reporting.progress import ProgressMode

# name -> the module that defines it
_EXPORTS = {
    "run": "harness.pipeline.api",
    "sample": "harness.pipeline.api",
    "verify": "harness.pipeline.api",
    "analyze": "harness.pipeline.api",
    "genselect": "harness.pipeline.api",
    "score": "harness.pipeline.api",
    "sweep": "harness.pipeline.api",
    "import_samples": "harness.pipeline.api",
    "import_scores": "harness.pipeline.api",
    "RunResult": "harness.pipeline.api",
    "SampleResult": "harness.pipeline.api",
    "load_run": "harness.pipeline.stored_run",
    "agreement": "harness.pipeline.verifier_stats",
    "ensemble": "harness.pipeline.verifier_stats",
    "Run": "harness.pipeline.stored_run",
    "DEFAULT_RUN": "harness.pipeline.options",
    "Summary": "harness.pipeline.results",
    "SamplingReport": "harness.pipeline.results",
    "Verification": "harness.pipeline.results",
    "Scoring": "harness.pipeline.results",
    "ImportedRun": "harness.pipeline.results",
    "SweepReport": "harness.pipeline.results",
    "ProgressMode": "harness.reporting.progress",
    "TTCError": "harness.core.errors",
    "OptionError": "harness.core.errors",
    "DataError": "harness.core.errors",
    "TaskError": "harness.core.errors",
    "VerifierError": "harness.core.errors",
    "RunStoreError": "harness.core.errors",
    "EngineError": "harness.core.errors",
    "SandboxError": "harness.core.errors",
}

__all__ = [
    "DEFAULT_RUN",
    "DataError",
    "EngineError",
    "ImportedRun",
    "OptionError",
    "ProgressMode",
    "Run",
    "RunResult",
    "RunStoreError",
    "SampleResult",
    "SamplingReport",
    "SandboxError",
    "Scoring",
    "Summary",
    "SweepReport",
    "TTCError",
    "TaskError",
    "Verification",
    "VerifierError",
    "agreement",
    "analyze",
    "ensemble",
    "genselect",
    "import_samples",
    "import_scores",
    "load_run",
    "run",
    "sample",
    "score",
    "sweep",
    "verify",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
