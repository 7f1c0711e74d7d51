"""The adaptive pilot: after a pilot is sampled and verified, spend extra samples where they narrow the
forecast interval most."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from harness.core.errors import OptionError
from harness.forecasting.budget import plan_adaptive_pilot
from harness.forecasting.forecast import forecast
from harness.pipeline.prepare import PreparedRun
from harness.pipeline.results import AdaptivePilotReport
from harness.pipeline.sample import sample_run
from harness.pipeline.verify import verify_run
from harness.reporting.progress import ProgressMode
from harness.reporting.run_counts import run_counts
from harness.store import RunStore


def spend_adaptive_pilot(
    store: RunStore,
    prepared: PreparedRun,
    extra_samples: int,
    verifier: str | None = None,
    workers: int | None = None,
    progress: ProgressMode = "auto",
    log: Callable[[str], None] = print,
) -> AdaptivePilotReport:
    """Spend ``extra_samples`` more samples where they narrow the forecast interval most, then report it again.

    The pilot (``prepared.config.samples`` per problem) must be sampled and verified. The allocation is made
    once and kept in the manifest (``adaptive_pilot``), so re-running the same command resumes it instead of
    planning anew from counts that already include its samples. The interval is the Bayesian Beta law's at
    ``forecast_k`` = 10 x the pilot's samples, before and after.
    """

    pilot = prepared.config.samples
    forecast_k = 10 * pilot
    plan = store.manifest.get("adaptive_pilot")
    if plan is None or plan.get("extra_samples") != extra_samples:
        counts = run_counts(store, verifier)
        pilot_only = counts.num_samples == pilot
        if not pilot_only.all():
            raise OptionError(
                "adaptive_pilot",
                f"plans from a pilot of exactly {pilot} samples per problem; this run has problems with "
                f"{sorted(set(counts.num_samples.tolist()) - {pilot})} (choose another run directory)",
            )
        chosen = plan_adaptive_pilot(counts, extra_samples, forecast_k)
        plan = {"extra_samples": extra_samples, **chosen.to_json()}
        store.update_manifest(adaptive_pilot=plan)
    log(
        f"adaptive pilot: {extra_samples} extra samples to {len(plan['extra'])} problems ({plan['strategy']}); "
        f"forecast@{forecast_k} before: {plan['before']['coverage']:.3f} "
        f"[{plan['before']['low']:.3f}, {plan['before']['high']:.3f}]"
    )
    targets = {problem.problem_id: pilot + plan["extra"].get(problem.problem_id, 0) for problem in prepared.problems}
    sample_run(store, prepared, targets, progress, log)
    verify_run(store, verifier, workers=workers, progress=progress, scale=prepared.options.scale)
    after = forecast(run_counts(store, verifier), forecast_k, method="bayes")
    result = {
        **plan,
        "after": {"coverage": after.coverage, "low": after.low, "high": after.high},
        "width_before": plan["before"]["high"] - plan["before"]["low"],
        "width_after": after.high - after.low,
    }
    store.update_manifest(adaptive_pilot=result)
    log(
        f"adaptive pilot: forecast@{forecast_k} after: {after.coverage:.3f} [{after.low:.3f}, {after.high:.3f}] "
        f"(interval width {result['width_before']:.3f} -> {result['width_after']:.3f})"
    )
    return cast(AdaptivePilotReport, result)
