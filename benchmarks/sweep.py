"""Figure 12: a one-trace sweep over thinking budgets against sampling each budget afresh (issue 19).

On the embedded model through in-process vLLM, with ``--reasoning on``: sample a run (its thinking unbounded up to
``max_tokens``), then measure the run at every budget two ways, each with the same engine (started once, its
start-up time reported apart), the prefix cache emptied before each:

* the sweep (``harness.pipeline.sweep.sweep_run``): every stored trace cut at each budget, only the forced
  answers generated (at most A tokens per cut sample);
* afresh: one budget-forced sampling per budget (``--thinking-budget B``), every sample generated anew.

It reports the tokens each generated and its generation wall time (judging excluded from both). The sweep
generates at most A tokens per cut sample, so its tokens are bounded by budgets x samples x A, where sampling
afresh generates every sample's thinking at every budget. SmolLM2 does not reason: its thinking rarely closes,
so nearly every sample is cut at every budget (the sweep's worst case).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.suite import FigureResult, Row

FULL: dict[str, Any] = {
    "problems": 8,
    "samples": 4,
    "max_tokens": 128,
    "budgets": (16, 32, 64, 96),
    "answer_tokens": 16,
}
QUICK: dict[str, Any] = {"problems": 2, "samples": 2, "max_tokens": 48, "budgets": (16, 32), "answer_tokens": 8}


def _reset_prefix_cache(engine: Any) -> None:
    """Empty vLLM's prefix cache (the engine holds the adapter's OfflineLLM, which holds vLLM's LLM)."""
    if not engine._llm.llm.reset_prefix_cache():
        raise RuntimeError("vLLM did not empty its prefix cache")


def measure_sweep(
    problems: int, samples: int, max_tokens: int, budgets: tuple[int, ...], answer_tokens: int
) -> dict[str, Any]:
    from benchmarks.engine import gsm8k_data
    from harness.engines.forcing import BudgetForcingEngine
    from harness.engines.registry import build_engine
    from harness.pipeline.options import SampleOptions
    from harness.pipeline.prepare import open_run, package_versions, prepare
    from harness.pipeline.sample import plan_requests, sample_requests
    from harness.pipeline.sweep import sweep_run
    from harness.store import RunStore

    logging.getLogger("vllm").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ttc-bench-sweep-") as scratch:
        base = SampleOptions(
            task="gsm8k",
            data=gsm8k_data(),
            problems=problems,
            samples=samples,
            temperature=1.0,
            max_tokens=max_tokens,
            reasoning="on",
            out=Path(scratch) / "run",
        )
        prepared = prepare(base)
        started = time.perf_counter()
        engine = build_engine("vllm", prepared.model, {}, 0)
        engine_start = time.perf_counter() - started
        try:

            def sample(options: SampleOptions) -> dict[str, Any]:
                run = prepare(options)
                store = open_run(run)
                try:
                    requests = plan_requests(
                        run.problems,
                        {},
                        samples,
                        run.config.sampling.seed,
                        think_tags=run.reasoning.tags,
                        response_prefix=run.reasoning.response_prefix,
                    )
                    forced = BudgetForcingEngine(engine, run.forcing) if run.forcing.active else engine
                    _reset_prefix_cache(engine)
                    began = time.perf_counter()
                    outcome = sample_requests(store, forced, requests, run.config.sampling, package_versions())
                    seconds = time.perf_counter() - began
                    return {"seconds": seconds, "generated_tokens": outcome.session.output_tokens}
                finally:
                    store.close()

            traces = sample(base)
            afresh = {
                budget: sample(
                    replace(base, thinking_budget=budget, answer_tokens=answer_tokens, out=Path(scratch) / f"b{budget}")
                )
                for budget in budgets
            }
            _reset_prefix_cache(engine)
            with RunStore.open(prepared.out, writable=True) as store:
                report = sweep_run(
                    store,
                    list(budgets),
                    answer_tokens=answer_tokens,
                    workers=1,
                    progress="quiet",
                    log=lambda line: None,
                    engine=engine,
                )
        finally:
            engine.close()
    afresh_tokens = sum(entry["generated_tokens"] for entry in afresh.values())
    afresh_seconds = sum(entry["seconds"] for entry in afresh.values())
    return {
        "workload": {
            "model": prepared.model.name,
            "problems": problems,
            "samples_per_problem": samples,
            "max_tokens": max_tokens,
            "budgets": list(budgets),
            "answer_tokens": answer_tokens,
        },
        "engine_start_seconds": engine_start,
        "traces": traces,
        "sweep": {
            "seconds": report["seconds"],
            "generated_tokens": report["generated_tokens"],
            "per_budget": report["budgets"],
        },
        "afresh": {"seconds": afresh_seconds, "generated_tokens": afresh_tokens, "per_budget": afresh},
        "token_ratio": afresh_tokens / max(report["generated_tokens"], 1),
        "time_ratio": afresh_seconds / max(report["seconds"], 1e-9),
        "forced_answer_bound": sum(entry["forced"] for entry in report["budgets"]) * answer_tokens,
    }


def run_figure(quick: bool) -> FigureResult:
    """Figure 12. Skipped in --quick mode (its engine start alone is minutes on CPU, beyond the quick suite's
    budget); the skip is recorded in the JSON, not as a row without a value. The mechanics it measures are
    tested on the real engine by tests/system/test_thinking_vllm.py."""
    if quick:
        return FigureResult([], {"skipped": "--quick: a vLLM engine start does not fit the quick suite's budget"})
    workload = FULL
    figures = measure_sweep(**workload)
    sweep, afresh = figures["sweep"], figures["afresh"]
    budgets = len(workload["budgets"])
    rows = [
        Row(
            "12 thinking sweep",
            f"generated tokens: {budgets} budgets afresh / one-trace sweep",
            figures["token_ratio"],
            "x",
            target=f"sweep <= {figures['forced_answer_bound']:,} (A per cut sample)",
            met=sweep["generated_tokens"] <= figures["forced_answer_bound"],
            detail=f"afresh {afresh['generated_tokens']:,} tokens, sweep {sweep['generated_tokens']:,}",
        ),
        Row(
            "12 thinking sweep",
            f"generation time: {budgets} budgets afresh / one-trace sweep",
            figures["time_ratio"],
            "x",
            detail=(
                f"afresh {afresh['seconds']:.1f} s, sweep {sweep['seconds']:.1f} s; one engine "
                f"(start {figures['engine_start_seconds']:.0f} s, not counted), prefix cache emptied before each"
            ),
        ),
    ]
    return FigureResult(rows, figures)
