"""The samples x thinking surface: coverage and majority-vote accuracy at every (k, thinking budget B).

A reasoning model's budget has two axes: how many samples (k) and how long each may think (B). A sweep over
thinking budgets (one trace cut at each B, the answer forced; or one run per B) gives, per problem, n samples at
each of the budgets B_1 < ... < B_m. From arrays of shape (problems, samples, budgets):

* coverage (pass@k) at every k = 1..n and every B: the unbiased estimator (``coverage_curve``), averaged over
  problems;
* majority-vote accuracy at k = 1, 2, 4, ..., n and every B: the unbiased estimator over all k-subsets
  (``verifiers.selection.majority_vote_curves``; exact on small inputs, Monte-Carlo permutations beyond);
* percentile bootstrap intervals over problems for both, one set of resampled problems for every (k, B), so
  the intervals at two points are comparable (``coverage_resampled`` keeps the resampled means for the fits of
  ``harness.forecasting.surface_laws``);
* tokens: the mean tokens per sample (thinking and answer) at each budget, and the frontier: coverage against
  generated tokens per problem (k x tokens per sample at B), with the Pareto-optimal (k, B).

Everything here is arrays in, numbers out: no run directories, no fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.core import forcing
from harness.core.errors import OptionError, check_number
from harness.metrics.estimators import bootstrap_means, coverage_curve, log_spaced_ks, percentile_interval
from harness.metrics.selection import majority_vote_curves

DEFAULT_CONFIDENCE = 0.9  # as the forecasts beside the surface (harness.forecasting.forecast.DEFAULT_CONFIDENCE)
DEFAULT_RESAMPLES = 1000
# Exact majority vote costs about 2.5 ms per (problem, budget) at n = 64; beyond this many pairs the vote is
# estimated by VOTE_SUBSETS Monte-Carlo permutations per pair (its standard error is reported beside it).
EXACT_VOTE_MAX_PAIRS = 400
VOTE_SUBSETS = 64


def check_budgets(budgets: Sequence[int] | np.ndarray, option: str = "budgets") -> np.ndarray:
    """Thinking budgets as an int array (``harness.core.forcing.check_budgets``: at least one, each a whole
    number >= 1, strictly increasing); ``OptionError(option, ...)`` naming the first that is not."""
    values = np.asarray(budgets)
    if values.ndim != 1:
        raise OptionError(option, "must be a non-empty list of thinking budgets (tokens)")
    return np.asarray(forcing.check_budgets(values.tolist(), option), dtype=np.int64)


@dataclass(frozen=True)
class FrontierPoint:
    """One (k, B) of a cost-coverage frontier."""

    k: int
    budget: int
    cost: float  # here: generated tokens per problem (k x mean tokens per sample at B)
    coverage: float

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "budget": self.budget, "cost": self.cost, "coverage": self.coverage}


def pareto_front(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Indices of the Pareto-optimal points (lowest cost for their value: no other point costs at most as much
    and reaches more), in increasing cost. Among points of equal cost and value the first index is kept."""
    cost = np.asarray(cost, dtype=np.float64).ravel()
    value = np.asarray(value, dtype=np.float64).ravel()
    order = np.lexsort((np.arange(cost.size), -value, cost))  # by cost, then highest value, then index
    best_before = np.maximum.accumulate(np.r_[-np.inf, value[order]])[:-1]
    return order[value[order] > best_before]


@dataclass(frozen=True)
class MeasuredSurface:
    """Coverage and majority-vote accuracy measured at every (k, B).

    Arrays are indexed [k index, budget index]. ``coverage`` has a row for every k = 1..n (``ks``);
    ``majority`` a row for each of ``vote_ks`` (1, 2, 4, ..., n). Intervals are percentile bootstrap intervals
    over problems at ``confidence``; ``coverage_resampled`` holds the resampled means, shape
    (resamples, n, budgets). ``majority_error`` is the Monte-Carlo standard error of ``majority`` (0 where
    exact). ``tokens_per_sample`` is the mean tokens per sample at each budget (None when not given).
    """

    budgets: np.ndarray
    problems: int
    samples: int
    ks: np.ndarray
    coverage: np.ndarray
    coverage_low: np.ndarray
    coverage_high: np.ndarray
    coverage_resampled: np.ndarray
    solved: np.ndarray  # problems with at least one correct sample, per budget
    vote_ks: np.ndarray | None
    majority: np.ndarray | None
    majority_low: np.ndarray | None
    majority_high: np.ndarray | None
    majority_error: np.ndarray | None
    vote_method: str | None  # "exact" or "monte-carlo (S permutations per problem)"
    tokens_per_sample: np.ndarray | None
    confidence: float
    seed: int

    def at(self, k: int, budget: int) -> tuple[float, float, float]:
        """(coverage, low, high) measured at k samples and thinking budget ``budget`` (one of ``budgets``)."""
        if not 1 <= k <= self.samples:
            raise OptionError("k", f"must lie in 1..{self.samples} (the samples measured), got {k}")
        column = self.budget_index(budget)
        return (
            float(self.coverage[k - 1, column]),
            float(self.coverage_low[k - 1, column]),
            float(self.coverage_high[k - 1, column]),
        )

    def budget_index(self, budget: int) -> int:
        found = np.flatnonzero(self.budgets == budget)
        if not found.size:
            raise OptionError("budget", f"{budget} is not a measured budget ({', '.join(map(str, self.budgets))})")
        return int(found[0])

    def tokens_per_problem(self) -> np.ndarray | None:
        """Generated tokens per problem at every (k, B): k x the mean tokens per sample at B (None without tokens)."""
        if self.tokens_per_sample is None:
            return None
        return self.ks[:, None] * self.tokens_per_sample[None, :]

    def frontier(self) -> list[FrontierPoint]:
        """The Pareto-optimal (k, B): coverage against generated tokens per problem ([] without tokens)."""
        tokens = self.tokens_per_problem()
        if tokens is None:
            return []
        chosen = pareto_front(tokens, self.coverage)
        rows, columns = np.unravel_index(chosen, tokens.shape)
        return [
            FrontierPoint(int(self.ks[r]), int(self.budgets[c]), float(tokens[r, c]), float(self.coverage[r, c]))
            for r, c in zip(rows, columns)
        ]

    def to_json(self, ks: Sequence[int] | np.ndarray | None = None) -> dict[str, Any]:
        """The measured part of ``summary.json["surface"]``: per budget, coverage (and majority vote) at ``ks``
        (default 1, 2, 4, ..., n) with intervals, its tokens per sample, and the frontier."""
        ks = log_spaced_ks(self.samples) if ks is None else np.asarray(ks, dtype=np.int64)
        per_budget = []
        for column, budget in enumerate(self.budgets):
            entry: dict[str, Any] = {
                "budget": int(budget),
                "solved_problems": int(self.solved[column]),
                "tokens_per_sample": None if self.tokens_per_sample is None else float(self.tokens_per_sample[column]),
                "pass_at_k": [
                    {
                        "k": int(k),
                        "coverage": float(self.coverage[k - 1, column]),
                        "low": float(self.coverage_low[k - 1, column]),
                        "high": float(self.coverage_high[k - 1, column]),
                    }
                    for k in ks
                ],
            }
            if self.majority is not None:
                assert self.vote_ks is not None and self.majority_low is not None and self.majority_high is not None
                assert self.majority_error is not None
                entry["majority_at_k"] = [
                    {
                        "k": int(k),
                        "accuracy": float(self.majority[row, column]),
                        "low": float(self.majority_low[row, column]),
                        "high": float(self.majority_high[row, column]),
                        "monte_carlo_error": float(self.majority_error[row, column]),
                    }
                    for row, k in enumerate(self.vote_ks)
                ]
            per_budget.append(entry)
        return {
            "problems": self.problems,
            "samples_per_problem": self.samples,
            "budgets": [int(b) for b in self.budgets],
            "confidence": self.confidence,
            "majority_method": self.vote_method,
            "per_budget": per_budget,
            "frontier": [point.to_json() for point in self.frontier()],
            "frontier_cost": "generated tokens per problem",
        }


def _checked_arrays(
    correct: np.ndarray, answers: np.ndarray | None, tokens: np.ndarray | None, budgets: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    correct = np.asarray(correct)
    if correct.ndim != 3 or 0 in correct.shape:
        raise OptionError("correct", f"must have shape (problems, samples, budgets), none empty; got {correct.shape}")
    if correct.dtype != bool:
        if not np.isin(correct, (0, 1)).all():
            raise OptionError("correct", "must hold booleans (or 0/1)")
        correct = correct.astype(bool)
    if correct.shape[2] != budgets.size:
        raise OptionError("budgets", f"{budgets.size} budgets for {correct.shape[2]} columns of verdicts")
    if answers is not None:
        answers = np.asarray(answers)
        if answers.shape != correct.shape or answers.dtype.kind not in "iu":
            raise OptionError("answers", f"must be integer answer ids of shape {correct.shape} (-1: no answer)")
    if tokens is not None:
        tokens = np.asarray(tokens, dtype=np.float64)
        if tokens.shape != correct.shape:
            raise OptionError("tokens", f"must have shape {correct.shape}, got {tokens.shape}")
        if not np.isfinite(tokens).all() or np.any(tokens < 0):
            raise OptionError("tokens", "must be finite token counts, 0 or more")
    return correct, answers, tokens


def _majority(
    answers: np.ndarray, correct: np.ndarray, vote_ks: np.ndarray, subsets: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-(problem, budget) majority-vote accuracy at ``vote_ks``: (values (P, K, B), MC variances, method)."""
    problems, samples, budgets = correct.shape
    # one "problem" of the vote estimators per (problem, budget): rows in problem-major, budget-minor order
    ids = list(np.moveaxis(answers, 2, 1).reshape(problems * budgets, samples))
    verdicts = list(np.moveaxis(correct, 2, 1).reshape(problems * budgets, samples))
    exact = subsets is None and problems * budgets <= EXACT_VOTE_MAX_PAIRS
    if exact:
        estimate = majority_vote_curves(ids, verdicts, vote_ks, method="exact")
        method = "exact"
    else:
        subsets = subsets or VOTE_SUBSETS
        estimate = majority_vote_curves(ids, verdicts, vote_ks, method="monte-carlo", subsets=subsets, seed=seed)
        method = f"monte-carlo ({subsets} permutations per problem and budget)"
    shape = (problems, budgets, vote_ks.size)
    values = np.moveaxis(estimate.values.reshape(shape), 2, 1)
    variances = np.moveaxis(estimate.variances.reshape(shape), 2, 1)
    return values, variances, method


def measure_surface(
    correct: np.ndarray,
    budgets: Sequence[int] | np.ndarray,
    *,
    answers: np.ndarray | None = None,
    tokens: np.ndarray | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    vote_subsets: int | None = None,
) -> MeasuredSurface:
    """Measure the samples x thinking surface.

    Args:
        correct: verdicts, shape (problems, samples, budgets): sample i of problem p, its answer forced at
            thinking budget ``budgets[b]``.
        budgets: the thinking budgets, strictly increasing.
        answers: integer answer ids of the same shape (equal answers share an id within a problem and budget;
            -1 for no answer), for majority vote; None skips it.
        tokens: generated tokens per sample (thinking and answer) of the same shape; None: no frontier.
        confidence, resamples, seed: the bootstrap over problems (and the Monte-Carlo vote's seed).
        vote_subsets: Monte-Carlo permutations per (problem, budget) for majority vote; None: exact on up to
            ``EXACT_VOTE_MAX_PAIRS`` (problem, budget) pairs, else ``VOTE_SUBSETS`` permutations.
    """
    budgets = check_budgets(budgets)
    check_number("confidence", confidence, above=0, below=1)
    check_number("resamples", resamples, at_least=1)
    check_number("seed", seed, at_least=0)
    if vote_subsets is not None:
        check_number("vote_subsets", vote_subsets, at_least=2)
    correct, answers, tokens = _checked_arrays(correct, answers, tokens, budgets)
    problems, samples, width = correct.shape

    num_correct = correct.sum(axis=1)  # (P, B)
    per_problem = coverage_curve(np.full(problems * width, samples), num_correct.ravel(), samples)
    per_problem = np.moveaxis(per_problem.reshape(problems, width, samples), 2, 1)  # (P, K, B)
    coverage = per_problem.mean(axis=0)
    resampled = bootstrap_means(per_problem, resamples=resamples, seed=seed)
    low, high = percentile_interval(coverage, resampled, confidence)

    vote_ks = majority = majority_low = majority_high = majority_error = vote_method = None
    if answers is not None:
        vote_ks = log_spaced_ks(samples)
        votes, variances, vote_method = _majority(answers, correct, vote_ks, vote_subsets, seed)
        majority = votes.mean(axis=0)
        # same seed: the same resampled problems as coverage
        majority_low, majority_high = percentile_interval(
            majority, bootstrap_means(votes, resamples=resamples, seed=seed), confidence
        )
        majority_error = np.sqrt(variances.sum(axis=0)) / problems

    return MeasuredSurface(
        budgets=budgets,
        problems=problems,
        samples=samples,
        ks=np.arange(1, samples + 1),
        coverage=coverage,
        coverage_low=low,
        coverage_high=high,
        coverage_resampled=resampled,
        solved=(num_correct > 0).sum(axis=0),
        vote_ks=vote_ks,
        majority=majority,
        majority_low=majority_low,
        majority_high=majority_high,
        majority_error=majority_error,
        vote_method=vote_method,
        tokens_per_sample=None if tokens is None else tokens.mean(axis=(0, 1)),
        confidence=confidence,
        seed=seed,
    )
