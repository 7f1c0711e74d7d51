"""Backtest forecasts: draw pilots from full counts, forecast coverage at k, compare with the full data's truth.

A pilot of ``pilot`` samples per problem is drawn without replacement from each problem's n samples, so its
correct count is hypergeometric (exactly what a smaller run of the same samples would have seen). Every
method forecasts coverage at ``k`` from the pilot; the truth is the unbiased pass@k of all n samples (for
k = n: the fraction of problems with any correct sample). Repeating over pilots gives, per method and
group, the absolute error and how often the interval contained the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from harness.core.errors import DataError, OptionError, check_number
from harness.forecasting.forecast import DEFAULT_CONFIDENCE, METHODS, make_model, subsample
from harness.metrics.counts import Counts
from harness.metrics.estimators import pass_at_k


@dataclass(frozen=True)
class BacktestRow:
    """One method on one group over all repeats."""

    group: str
    method: str
    problems: int
    truth: float
    mean_forecast: float
    mean_abs_error: float
    median_abs_error: float
    bias: float  # mean of forecast - truth
    hit_rate: float  # share of repeats whose interval contained the truth
    mean_width: float
    chosen: dict[str, int]  # for auto: how often each method was picked
    failures: int  # repeats where the method could not forecast from the pilot (left out of the figures)


@dataclass(frozen=True)
class BacktestSummary:
    """One method across groups: the accuracy criteria of the issue."""

    method: str
    median_abs_error: float  # median over groups of the group's mean absolute error
    max_abs_error: float
    groups_covered: int  # groups whose interval held the truth in at least half the repeats
    groups: int
    hit_rate: float  # over all repeats and groups


def true_coverage(counts: Counts, k: int) -> float:
    """Coverage at k from all samples (unbiased pass@k, mean over problems)."""
    if np.any(counts.num_samples < k):
        raise OptionError(
            "k", f"the full data has problems with {counts.num_samples.min()} samples, fewer than k = {k}"
        )
    return float(pass_at_k(counts.num_samples, counts.num_correct, k).mean())


def backtest_group(
    name: str,
    counts: Counts,
    pilot: int,
    k: int,
    repeats: int = 20,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    confidence: float = DEFAULT_CONFIDENCE,
    progress: Callable[[int], None] | None = None,
) -> list[BacktestRow]:
    """Backtest every method on one group of problems; pilots are shared across methods. ``progress(1)`` is
    called as each pilot's forecasts are done."""
    if len(counts) == 0:
        raise DataError(f"group {name!r} has no problems")
    if pilot < 1 or pilot > counts.num_samples.min():
        raise OptionError(
            "pilot", f"must be in 1..{counts.num_samples.min()} (the smallest n of group {name!r}), got {pilot}"
        )
    truth = true_coverage(counts, k)
    rng = np.random.default_rng(seed)
    results: dict[str, list[tuple[float, float, float, str]]] = {method: [] for method in methods}
    for repeat in range(repeats):
        pilot_counts = subsample(counts, pilot, rng)
        for method in methods:
            try:
                model = make_model(method, seed + repeat).fit(pilot_counts)
                coverage, low, high = model.interval(k, confidence)
            except ValueError:  # the method cannot use this pilot (e.g. a power law on a pilot with no success)
                results[method].append((np.nan, np.nan, np.nan, "failed"))
                continue
            results[method].append((coverage, low, high, model.name))
        if progress is not None:
            progress(1)
    rows = []
    for method, values in results.items():
        failures = sum(value[3] == "failed" for value in values)
        values = [value for value in values if value[3] != "failed"] or [(np.nan, np.nan, np.nan, "failed")]
        forecasts, lows, highs = (np.array([value[i] for value in values]) for i in range(3))
        error = forecasts - truth
        chosen: dict[str, int] = {}
        if method == "auto":
            for value in values:
                chosen[value[3]] = chosen.get(value[3], 0) + 1
        rows.append(
            BacktestRow(
                group=name,
                method=method,
                problems=len(counts),
                truth=truth,
                mean_forecast=float(forecasts.mean()),
                mean_abs_error=float(np.abs(error).mean()),
                median_abs_error=float(np.median(np.abs(error))),
                bias=float(error.mean()),
                hit_rate=float(np.mean((lows <= truth) & (truth <= highs))),
                mean_width=float((highs - lows).mean()),
                chosen=chosen,
                failures=failures,
            )
        )
    return rows


def backtest(
    counts: Counts,
    group_by: str | None,
    pilot: int,
    k: int,
    repeats: int = 20,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    confidence: float = DEFAULT_CONFIDENCE,
    progress: Callable[[int], None] | None = None,
) -> list[BacktestRow]:
    """Backtest every method on every group of ``counts`` (split by the field ``group_by``); ``progress(1)`` is
    called as each pilot is done (``repeats`` per group)."""
    check_number("repeats", repeats, at_least=1)
    check_number("seed", seed, at_least=0)
    check_number("k", k, at_least=1)
    check_number("confidence", confidence, above=0, below=1)
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        raise OptionError("methods", f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    rows = []
    for name, group in counts.group_by(group_by).items():
        rows.extend(backtest_group(name, group, pilot, k, repeats, seed, methods, confidence, progress))
    return rows


def summarize(rows: Sequence[BacktestRow]) -> list[BacktestSummary]:
    """Per method: median and max over groups of the mean absolute error, and interval hits."""
    summaries = []
    for method in dict.fromkeys(row.method for row in rows):
        mine = [row for row in rows if row.method == method]
        errors = np.array([row.mean_abs_error for row in mine])
        errors = np.where(np.isnan(errors), np.inf, errors)  # a method that never forecast a group is worst there
        summaries.append(
            BacktestSummary(
                method=method,
                median_abs_error=float(np.median(errors)),
                max_abs_error=float(errors.max()),
                groups_covered=sum(row.hit_rate >= 0.5 for row in mine),
                groups=len(mine),
                hit_rate=float(np.mean([row.hit_rate for row in mine])),
            )
        )
    return summaries


def format_markdown(rows: Sequence[BacktestRow]) -> str:
    """The backtest as markdown: per group and method, then the per-method summary."""
    lines = [
        "| group | method | truth | mean forecast | mean abs error | bias | 90% interval hit rate | mean width |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        method = row.method
        if row.chosen:
            method += " (" + ", ".join(f"{name} {count}" for name, count in sorted(row.chosen.items())) + ")"
        if row.failures:
            method += f" [failed {row.failures}x]"
        lines.append(
            f"| {row.group} | {method} | {row.truth:.3f} | {row.mean_forecast:.3f} | {row.mean_abs_error:.3f} "
            f"| {row.bias:+.3f} | {row.hit_rate:.2f} | {row.mean_width:.3f} |"
        )
    lines += [
        "",
        (
            "| method | median abs error over groups | max abs error | groups whose interval held the truth "
            "(>= half the repeats) | overall hit rate |"
        ),
        "|---|---:|---:|---:|---:|",
    ]
    for summary in summarize(rows):
        lines.append(
            f"| {summary.method} | {summary.median_abs_error:.3f} | {summary.max_abs_error:.3f} "
            f"| {summary.groups_covered}/{summary.groups} | {summary.hit_rate:.2f} |"
        )
    return "\n".join(lines)


def rows_to_json(rows: Sequence[BacktestRow]) -> dict:
    return {"rows": [asdict(row) for row in rows], "summary": [asdict(summary) for summary in summarize(rows)]}


@dataclass(frozen=True)
class AdaptiveRow:
    """The adaptive pilot on one group: forecasts before and after the extra samples, against spending the
    same samples uniformly (``bayes`` forecasts throughout)."""

    group: str
    problems: int
    truth: float
    extra_per_problem: int
    before_abs_error: float
    before_hit_rate: float
    before_width: float
    adaptive_abs_error: float
    adaptive_hit_rate: float
    adaptive_width: float
    uniform_abs_error: float
    uniform_hit_rate: float
    uniform_width: float


def _draw_more(full: Counts, pilot: Counts, extra: np.ndarray, rng: np.random.Generator) -> Counts:
    """Add ``extra`` samples per problem, drawn without replacement from the samples the pilot left."""
    remaining = full.num_samples - pilot.num_samples
    remaining_correct = full.num_correct - pilot.num_correct
    if np.any(extra > remaining):
        raise DataError("not enough samples left in the full data for the extra samples")
    correct = rng.hypergeometric(remaining_correct, remaining - remaining_correct, extra)
    return Counts(pilot.num_samples + extra, pilot.num_correct + correct, pilot.problem_ids, pilot.fields)


def check_adaptive_backtest(
    counts: Counts, group_by: str | None, pilot: int, extra_per_problem: int, repeats: int, confidence: float
) -> None:
    """``backtest_adaptive``'s arguments, checked: callers that run ``backtest`` first check them before it (a
    bad value must not wait for minutes of backtesting)."""
    check_number("extra_per_problem", extra_per_problem, at_least=1, integer=True)
    check_number("repeats", repeats, at_least=1)
    check_number("confidence", confidence, above=0, below=1)
    for name, group in counts.group_by(group_by).items():
        if pilot + extra_per_problem > group.num_samples.min():
            raise OptionError(
                "extra_per_problem",
                f"group {name!r}: pilot + extra exceeds the {group.num_samples.min()} samples per problem",
            )


def backtest_adaptive(
    counts: Counts,
    group_by: str | None,
    pilot: int,
    extra_per_problem: int,
    k: int,
    repeats: int = 20,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    progress: Callable[[int], None] | None = None,
) -> list[AdaptiveRow]:
    """Draw a pilot, plan ``extra_per_problem`` x problems extra samples adaptively, draw them for real from the
    full data, and compare the forecast at k before, after, and with the same samples spread uniformly;
    ``progress(1)`` as each pilot is done."""
    from harness.forecasting.budget import plan_adaptive_pilot

    check_adaptive_backtest(counts, group_by, pilot, extra_per_problem, repeats, confidence)
    rows = []
    for name, group in counts.group_by(group_by).items():
        truth = true_coverage(group, k)
        rng = np.random.default_rng(seed)
        figures: dict[str, list[tuple[float, bool, float]]] = {"before": [], "adaptive": [], "uniform": []}
        for _ in range(repeats):
            drawn = subsample(group, pilot, rng)
            plan = plan_adaptive_pilot(drawn, extra_per_problem * len(group), k, confidence, seed=seed)
            extra = np.array([plan.extra.get(str(problem), 0) for problem in drawn.problem_ids], dtype=np.int64)
            variants = {
                "before": drawn,
                "adaptive": _draw_more(group, drawn, extra, rng),
                "uniform": _draw_more(group, drawn, np.full(len(group), extra_per_problem), rng),
            }
            for variant, variant_counts in variants.items():
                coverage, low, high = make_model("bayes").fit(variant_counts).interval(k, confidence)
                figures[variant].append((abs(coverage - truth), low <= truth <= high, high - low))
            if progress is not None:
                progress(1)
        summary = {variant: np.mean(values, axis=0) for variant, values in figures.items()}
        rows.append(
            AdaptiveRow(
                name,
                len(group),
                truth,
                extra_per_problem,
                *(float(summary["before"][i]) for i in range(3)),
                *(float(summary["adaptive"][i]) for i in range(3)),
                *(float(summary["uniform"][i]) for i in range(3)),
            )
        )
    return rows


def format_adaptive_markdown(rows: Sequence[AdaptiveRow]) -> str:
    lines = [
        (
            "| group | extra per problem | truth | abs error before / adaptive / uniform "
            "| hit rate before / adaptive / uniform | width before / adaptive / uniform |"
        ),
        "|---|---:|---:|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.group} | {row.extra_per_problem} | {row.truth:.3f} "
            f"| {row.before_abs_error:.3f} / {row.adaptive_abs_error:.3f} / {row.uniform_abs_error:.3f} "
            f"| {row.before_hit_rate:.2f} / {row.adaptive_hit_rate:.2f} / {row.uniform_hit_rate:.2f} "
            f"| {row.before_width:.3f} / {row.adaptive_width:.3f} / {row.uniform_width:.3f} |"
        )
    return "\n".join(lines)
