"""The analyze step: coverage (pass@k) for every k with intervals over problems, written to ``summary.json``.

Functions here take ``Counts`` (numpy arrays), not run directories, so they serve counts files as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from harness.core.errors import DataError, OptionError, check_number
from harness.metrics.counts import Counts
from harness.metrics.estimators import (
    avg_at_n,
    bootstrap_means,
    coverage_curve,
    log_spaced_ks,
    pass_at_k,
    pass_hat_k,
    percentile_interval,
)


class MeasuredCoverage(NamedTuple):
    """Mean unbiased pass@k (or pass^k) over problems at each k of ``ks``, with a bootstrap interval [low, high]."""

    ks: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def at(self, k: int) -> tuple[float, float, float]:
        """(coverage, low, high) at one of the measured k."""
        index = int(np.flatnonzero(self.ks == k)[0])
        return float(self.mean[index]), float(self.low[index]), float(self.high[index])


def measured_coverage(
    counts: Counts,
    ks: Sequence[int] | np.ndarray,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 2000,
) -> MeasuredCoverage:
    """Coverage measured at each k of ``ks`` (every k <= the smallest n): the unbiased pass@k averaged over
    problems, with a percentile bootstrap interval over problems (one set of resamples for all k)."""
    return _measured(pass_at_k, counts, ks, confidence, seed, resamples)


def measured_pass_hat_k(
    counts: Counts,
    ks: Sequence[int] | np.ndarray,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 2000,
) -> MeasuredCoverage:
    """pass^k (all k samples correct) at each k of ``ks``: the unbiased ``C(c,k)/C(n,k)`` averaged over
    problems, with a percentile bootstrap interval over problems, as ``measured_coverage``."""
    return _measured(pass_hat_k, counts, ks, confidence, seed, resamples)


def _measured(
    estimator: Callable[..., np.ndarray],
    counts: Counts,
    ks: Sequence[int] | np.ndarray,
    confidence: float,
    seed: int,
    resamples: int,
) -> MeasuredCoverage:
    check_number("confidence", confidence, above=0, below=1)
    check_number("seed", seed, at_least=0)
    ks = np.asarray(ks, dtype=np.int64).reshape(-1)
    if ks.size and ks.min() < 1:
        raise OptionError("ks", f"must be at least 1, got {int(ks.min())}")
    # per distinct (n, c): the estimate is a function of a problem's counts (bootstrap_means)
    n, c, multiplicity, _ = counts.distinct()
    per_pair = estimator(n[:, None], c[:, None], ks[None, :])
    mean = multiplicity @ per_pair / multiplicity.sum()
    resampled = bootstrap_means(per_pair, resamples=resamples, seed=seed, multiplicity=multiplicity)
    low, high = percentile_interval(mean, resampled, confidence)
    return MeasuredCoverage(ks, mean, low, high)


def coverage_summary(
    counts: Counts,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean coverage at every k = 1..min(n) and bootstrap intervals at k = 1, 2, 4, ..., min(n); beside it
    pass^k (all k samples correct) at the same k with the same intervals, and avg@n (pass@1 averaged over each
    problem's samples) with its standard errors.

    Problems with more samples than the smallest n contribute their unbiased estimate at each k, so an
    unevenly sampled run is still summarised without bias, up to the smallest n.
    """
    if len(counts) == 0:
        raise DataError("no problems to analyse")
    max_k = int(counts.num_samples.min())
    if max_k < 1:
        raise DataError("some problems have no samples; verify or sample them first")
    mean = coverage_curve(counts.num_samples, counts.num_correct, max_k).mean(axis=0)
    ks = log_spaced_ks(max_k)
    measured = measured_coverage(counts, ks, confidence, seed, resamples)
    reliability = measured_pass_hat_k(counts, ks, confidence, seed, resamples)
    averaged = avg_at_n(counts.num_samples, counts.num_correct)
    return {
        "problems": len(counts),
        "samples_per_problem": {"min": max_k, "max": int(counts.num_samples.max())},
        "samples": int(counts.num_samples.sum()),
        "correct": int(counts.num_correct.sum()),
        "solved_problems": int((counts.num_correct > 0).sum()),
        "confidence": confidence,
        "pass_at_1": float(mean[0]),
        "pass_at_k": [
            {"k": int(k), "coverage": float(value), "low": float(low), "high": float(high)}
            for k, value, low, high in zip(*measured)
        ],
        "coverage_all_k": mean.tolist(),
        "pass_hat_k": [
            {"k": int(k), "value": float(value), "low": float(low), "high": float(high)}
            for k, value, low, high in zip(*reliability)
        ],
        "avg_at_n": {name: _plain_number(value) for name, value in averaged._asdict().items()},
    }


def _plain_number(value: float) -> float | None:
    """A number for JSON: NaN (a standard error of one problem) becomes None."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def group_summaries(counts: Counts, field: str) -> dict[str, dict[str, Any]]:
    """Coverage at 1 and at the largest common k, per value of a metadata field (e.g. MATH level)."""
    result = {}
    for value, group in counts.group_by(field).items():
        max_k = int(group.num_samples.min())
        curve = coverage_curve(group.num_samples, group.num_correct, max_k)
        result[value] = {
            "problems": len(group),
            "pass_at_1": float(curve[:, 0].mean()),
            "k": max_k,
            "coverage": float(curve[:, -1].mean()),
        }
    return result


def groupable_fields(counts: Counts, max_groups: int = 20) -> list[str]:
    """Metadata fields worth a per-group breakdown: set on every problem, a few distinct values, not one per problem."""
    fields = []
    for name, values in counts.fields.items():
        if any(value is None or value == "" for value in values):
            continue
        distinct = len({str(value) for value in values})
        if 1 < distinct <= min(max_groups, max(len(counts) // 2, 1)):
            fields.append(name)
    return fields


def reasons_histogram(reasons: list[str]) -> dict[str, int]:
    values, tallies = np.unique(np.asarray(reasons, dtype=object).astype(str), return_counts=True)
    return {str(value): int(tally) for value, tally in zip(values, tallies)}
