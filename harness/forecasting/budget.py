"""From a coverage target to a sample budget; where extra pilot samples shrink a forecast's interval most.

``plan_budget`` finds the smallest k (samples per problem) whose forecast reaches the target, with the
k at which the interval's upper and lower ends reach it (optimistic and conservative, ``target_ks``), and
prices each (``costs.cost_of``): samples, generated tokens (measured tokens per sample), FLOPs (2 x
parameters x tokens, each prompt prefilled once per problem), wall time at the measured throughput, and
money. It also allocates samples
by difficulty in the spirit of Snell et al. (2024): problems binned by pilot success rate, each problem
given the samples that buy the most expected coverage per sample, compared with the same k for all.

``plan_adaptive_pilot`` spends extra pilot samples where they shrink the expected forecast interval most
(simulated from the current posterior): on the problems still without a success, on a deeper subset of
them, or evenly over all problems.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from harness.core.errors import check_number
from harness.forecasting.costs import Cost, Prices, Usage, cost_of
from harness.forecasting.forecast import (
    DEFAULT_CONFIDENCE,
    CoverageModel,
    Forecast,
    _checked,
    fit_model,
    model_forecast,
)
from harness.forecasting.laws import BetaBinomialLaw, solvable_probability
from harness.metrics.counts import Counts

DIFFICULTY_EDGES = (0.0, 0.01, 0.05, 0.2, 0.5, 1.0)  # pilot success rate bins (a bin of its own for 0)
K_LIMIT = 10**7


def smallest_k(
    model: CoverageModel, target: float, confidence: float, statistic: int = 0, k_limit: int = K_LIMIT
) -> int | None:
    """Smallest k whose forecast statistic (0 coverage, 1 low, 2 high) reaches ``target``; None if not by k_limit.

    Doubling then bisection: forecasts rise with k.
    """

    def reaches(k: int) -> bool:
        return model.interval(k, confidence)[statistic] >= target

    if reaches(1):
        return 1
    low, high = 1, 2
    while not reaches(high):
        if high >= k_limit:
            return None
        low, high = high, min(high * 2, k_limit)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return high


@dataclass(frozen=True)
class DifficultyBin:
    """Problems whose pilot success rate lies in (low, high] (or is exactly 0 for the first bin)."""

    label: str
    problems: int
    samples_per_problem: float  # mean samples per problem under the compute-optimal allocation
    coverage_allocated: float  # expected coverage of the bin under that allocation
    coverage_uniform: float  # expected coverage of the bin with the same k for every problem


@dataclass(frozen=True)
class Allocation:
    """Samples by difficulty for a fresh run reaching ``target`` expected coverage."""

    target: float
    uniform_k: int | None
    uniform_samples: int | None
    allocated_samples: int | None
    bins: list[DifficultyBin]


@dataclass(frozen=True)
class BudgetPlan:
    target: float
    method: str
    confidence: float
    k: int | None  # forecast coverage reaches the target
    k_optimistic: int | None  # the interval's upper end reaches it
    k_conservative: int | None  # the interval's lower end reaches it
    forecast: Forecast | None  # at k
    costs: dict[str, Cost]  # "k", "k_optimistic", "k_conservative" where found
    allocation: Allocation
    k_limit: int = K_LIMIT
    notes: list[str] = field(default_factory=list)
    # memory-aware cost where a hardware was given: "hardware" and, per entry of ``costs``, its eFLOPs
    eflops: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "method": self.method,
            "confidence": self.confidence,
            "k": self.k,
            "k_optimistic": self.k_optimistic,
            "k_conservative": self.k_conservative,
            "forecast": None if self.forecast is None else self.forecast.to_json(),
            "costs": {name: cost.to_json() for name, cost in self.costs.items()},
            "allocation": {
                "target": self.allocation.target,
                "uniform_k": self.allocation.uniform_k,
                "uniform_samples": self.allocation.uniform_samples,
                "allocated_samples": self.allocation.allocated_samples,
                "bins": [vars(b) for b in self.allocation.bins],
            },
            "k_limit": self.k_limit,
            "notes": self.notes,
            "eflops": self.eflops,
        }


def _fresh_coverage(law: BetaBinomialLaw, n: np.ndarray, c: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """P(at least one success in k fresh samples) of a problem with pilot counts (n, c), at the posterior
    median law (vectorised over the counts and k)."""
    a, b, pi = law.alpha_, law.beta_, law.zero_mass_
    n = n.astype(np.float64)
    c = c.astype(np.float64)
    solvable = solvable_probability(a, b, pi, n, c)
    base = special.betaln(a + c, b + n - c)

    def coverage(k: np.ndarray) -> np.ndarray:
        return solvable * -np.expm1(special.betaln(a + c, b + n - c + k) - base)

    return coverage


def allocate_by_difficulty(
    counts: Counts, target: float, law: BetaBinomialLaw | None = None, k_limit: int = K_LIMIT
) -> Allocation:
    """Compute-optimal samples per problem for a fresh run reaching ``target`` expected coverage.

    Each problem's success rate has the posterior its pilot counts imply under the fitted Beta law; coverage
    per problem is concave in its samples, so the fewest total samples for a target mean coverage give every
    problem the samples whose marginal gain stays above one common threshold (found by bisection). Compared
    with the uniform k reaching the same target under the same model.
    """
    law = law or BetaBinomialLaw().fit(counts.num_samples, counts.num_correct, distinct=counts.distinct())
    # Problems with the same pilot counts get the same samples: everything is computed per distinct (n, c)
    # pair and weighted by its problems (a million problems cost what their hundred pairs do).
    n, c, multiplicity, _ = counts.distinct()
    coverage = _fresh_coverage(law, n, c)
    pairs, problems = len(n), int(multiplicity.sum())
    share = multiplicity / problems

    def mean(per_pair: np.ndarray, mask: np.ndarray | None = None) -> float:
        weights = multiplicity if mask is None else np.where(mask, multiplicity, 0)
        return float(weights @ per_pair / weights.sum())

    def uniform(k: int) -> float:
        return float(share @ coverage(np.full(pairs, float(k))))

    uniform_k = None
    if uniform(k_limit) >= target:
        low, high = 0, k_limit
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if uniform(middle) >= target else (middle, high)
        uniform_k = high

    def allocation_at(threshold: float) -> np.ndarray:
        # Largest k with marginal gain coverage(k) - coverage(k - 1) >= threshold, per problem (bisection).
        low, high = np.zeros(pairs), np.full(pairs, float(k_limit))
        for _ in range(int(np.ceil(np.log2(k_limit))) + 1):
            middle = np.floor((low + high + 1) / 2)
            gain = coverage(middle) - coverage(middle - 1)
            low, high = np.where(gain >= threshold, middle, low), np.where(gain >= threshold, high, middle - 1)
        return low

    allocated = None
    if uniform_k is not None:
        low_gain, high_gain = 0.0, 1.0
        for _ in range(60):  # bisection on log threshold
            middle_gain = float(np.sqrt(max(low_gain, 1e-300) * high_gain)) if low_gain > 0 else high_gain / 1e6
            if float(share @ coverage(allocation_at(middle_gain))) >= target:
                low_gain = middle_gain
            else:
                high_gain = middle_gain
            if low_gain > 0 and high_gain / low_gain < 1.001:
                break
        allocated = allocation_at(low_gain) if low_gain > 0 else np.full(pairs, float(uniform_k))
    rate = c / n
    edges = DIFFICULTY_EDGES
    masks = [(rate == 0, "0 (no success)")] + [
        ((rate > low) & (rate <= high), f"({low:.0%}, {high:.0%}]") for low, high in itertools.pairwise(edges)
    ]
    allocated_coverage = coverage(allocated) if allocated is not None else None
    uniform_coverage = coverage(np.full(pairs, float(uniform_k or k_limit)))
    bins = []
    for mask, label in masks:
        if not mask.any():
            continue
        bins.append(
            DifficultyBin(
                label=label,
                problems=int(multiplicity[mask].sum()),
                samples_per_problem=mean(allocated, mask) if allocated is not None else float("nan"),
                coverage_allocated=mean(allocated_coverage, mask) if allocated_coverage is not None else float("nan"),
                coverage_uniform=mean(uniform_coverage, mask),
            )
        )
    return Allocation(
        target=target,
        uniform_k=uniform_k,
        uniform_samples=None if uniform_k is None else uniform_k * problems,
        allocated_samples=None if allocated is None else int(multiplicity @ allocated),
        bins=bins,
    )


@dataclass(frozen=True)
class TargetKs:
    """Where a fitted model's forecast reaches a coverage target: the smallest k of its coverage, of its
    interval's top (optimistic) and of its bottom (conservative), None where not by the k limit."""

    target: float
    k: int | None
    k_optimistic: int | None
    k_conservative: int | None
    forecast: Forecast | None  # at k


def target_ks(
    model: CoverageModel, target: float, confidence: float = DEFAULT_CONFIDENCE, k_limit: int = K_LIMIT
) -> TargetKs:
    """The k at which a fitted model's forecast (and each end of its interval) reaches ``target``."""
    check_number("target", target, above=0, below=1)
    check_number("confidence", confidence, above=0, below=1)
    ks = {
        name: smallest_k(model, target, confidence, statistic, k_limit)
        for name, statistic in (("k", 0), ("k_conservative", 1), ("k_optimistic", 2))
    }
    point = None if ks["k"] is None else model_forecast(model, ks["k"], confidence)
    return TargetKs(target, ks["k"], ks["k_optimistic"], ks["k_conservative"], point)


def plan_budget(
    counts: Counts,
    target: float,
    method: str = "auto",
    confidence: float = DEFAULT_CONFIDENCE,
    usage: Usage | None = None,
    prices: Prices | None = None,
    k_limit: int = K_LIMIT,
    seed: int = 0,
    model: CoverageModel | None = None,
) -> BudgetPlan:
    """The smallest k reaching ``target`` coverage (with the interval's k range), its cost, and an allocation.

    ``model``: a forecasting model already fitted to ``counts``, used instead of fitting ``method``.
    """
    check_number("target", target, above=0, below=1)
    check_number("confidence", confidence, above=0, below=1)
    check_number("seed", seed, at_least=0)
    counts = _checked(counts)
    usage = usage or Usage()
    prices = prices or Prices()
    model = model or fit_model(counts, method, seed)
    reached = target_ks(model, target, confidence, k_limit)
    ks = {"k": reached.k, "k_conservative": reached.k_conservative, "k_optimistic": reached.k_optimistic}
    costs = {name: cost_of(k, counts, usage, prices) for name, k in ks.items() if k is not None}
    notes = []
    refusal = getattr(model, "reason", None)  # BoundModel: too few successes for a law
    if refusal is not None:
        notes.append(f"no forecast: {refusal}")
        allocation = Allocation(target, None, None, None, [])
        return BudgetPlan(
            target, model.name, confidence, None, reached.k_optimistic, None, None, costs, allocation, k_limit, notes
        )
    if reached.k is None:
        notes.append(f"the forecast does not reach {target:.0%} by k = {k_limit:,}")
    law = getattr(getattr(model, "model", model), "law", None)
    law = law if isinstance(law, BetaBinomialLaw) else None
    allocation = allocate_by_difficulty(counts, target, law, k_limit)
    if allocation.uniform_k is None:
        notes.append("the Beta law's expected coverage of a fresh run does not reach the target by the k limit")
    return BudgetPlan(
        target,
        model.name,
        confidence,
        reached.k,
        reached.k_optimistic,
        reached.k_conservative,
        reached.forecast,
        costs,
        allocation,
        k_limit,
        notes,
    )


# ---------------------------------------------------------------------------------------------------------
# Adaptive pilot
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptivePlan:
    """Extra samples per problem id, and the forecast interval now and expected after drawing them."""

    extra: dict[str, int]
    before: tuple[float, float, float]  # (coverage, low, high) at k from the counts as they are
    expected_width_after: float  # mean simulated interval width once the extra samples are in
    strategy: str  # where the samples go: "unsolved", "unsolved, half", "unsolved, quarter", "every problem"
    widths_by_strategy: dict[str, float]  # expected width after each candidate strategy
    k: int

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "extra": self.extra,
            "before": {"coverage": self.before[0], "low": self.before[1], "high": self.before[2]},
            "expected_width_after": self.expected_width_after,
            "strategy": self.strategy,
            "widths_by_strategy": self.widths_by_strategy,
        }


def _spread(num_samples: np.ndarray, budget: int) -> np.ndarray:
    """Split ``budget`` samples over problems so their totals end up as equal as possible (fewest first)."""
    extra = np.zeros(num_samples.size, dtype=np.int64)
    if num_samples.size == 0 or budget <= 0:
        return extra
    # Water level: the largest integer L with sum(max(L - n, 0)) <= budget.
    low, high = int(num_samples.min()), int(num_samples.max()) + budget
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if np.maximum(middle - num_samples, 0).sum() <= budget else (low, middle)
    extra = np.maximum(low - num_samples, 0).astype(np.int64)
    leftover = budget - int(extra.sum())
    extra[np.argsort(num_samples + extra, kind="stable")[:leftover]] += 1  # the rounding remainder
    return extra


def plan_adaptive_pilot(
    counts: Counts,
    extra_samples: int,
    k: int,
    confidence: float = DEFAULT_CONFIDENCE,
    simulations: int = 8,
    zero_inflated: bool = False,
    seed: int = 0,
) -> AdaptivePlan:
    """Where to draw ``extra_samples`` more samples so the forecast at ``k`` narrows most.

    Candidate strategies: all of them on the problems still without a success (one success settles a
    problem), on the least-sampled half or quarter of those (deeper samples, reaching rarer successes), or
    evenly over every problem (sharper counts everywhere, which also pins the law's shape). Each is simulated
    ``simulations`` times from the posterior of the Bayesian Beta law (draw the law, each problem's success
    rate given its counts, its extra successes; refit; forecast), with the same random draws for every
    strategy, and the one with the narrowest mean interval wins. ``zero_inflated`` uses ``bayes-zi``.
    """
    counts = _checked(counts)
    check_number("extra_samples", extra_samples, at_least=0, integer=True)
    law = BetaBinomialLaw(zero_inflated=zero_inflated).fit(counts.num_samples, counts.num_correct)
    before = law.forecast(k, confidence)
    unsolved = np.flatnonzero(counts.num_correct == 0)
    unsolved = unsolved[np.argsort(counts.num_samples[unsolved], kind="stable")]
    targets = {"every problem": np.arange(len(counts))}
    if unsolved.size:
        for share, name in ((1.0, "unsolved"), (0.5, "unsolved, half"), (0.25, "unsolved, quarter")):
            targets[name] = unsolved[: max(1, round(share * unsolved.size))]
    widths: dict[str, float] = {}
    plans: dict[str, np.ndarray] = {}
    for name, chosen in targets.items():
        extra = np.zeros(len(counts), dtype=np.int64)
        extra[chosen] = _spread(counts.num_samples[chosen], extra_samples)
        plans[name] = extra
        simulated_widths = []
        for simulation in range(simulations):
            simulated = _simulate_extra(law, counts, extra, np.random.default_rng([seed, simulation]))
            refit = BetaBinomialLaw(zero_inflated=zero_inflated).fit(simulated.num_samples, simulated.num_correct)
            _, low, high = refit.forecast(k, confidence)
            simulated_widths.append(high - low)
        widths[name] = float(np.mean(simulated_widths))
    best = min(widths, key=widths.__getitem__)
    extra = plans[best]
    return AdaptivePlan(
        extra={str(counts.problem_ids[i]): int(extra[i]) for i in np.flatnonzero(extra)},
        before=before,
        expected_width_after=widths[best],
        strategy=best,
        widths_by_strategy=widths,
        k=int(k),
    )


def _simulate_extra(law: BetaBinomialLaw, counts: Counts, extra: np.ndarray, rng: np.random.Generator) -> Counts:
    """Counts after drawing ``extra`` samples per problem, simulated from one posterior draw of the law."""
    point = rng.choice(law.weights_.size, p=law.weights_)
    a, b, pi = law.alpha_grid_[point], law.beta_grid_[point], law.zero_mass_grid_[point]
    n, c = counts.num_samples, counts.num_correct
    rate = rng.beta(a + c, b + n - c)
    unsolvable = 1.0 - solvable_probability(a, b, pi, n, c)
    rate = np.where(rng.random(len(counts)) < unsolvable, 0.0, rate)
    new_correct = rng.binomial(extra, rate)
    return Counts(n + extra, c + new_correct, counts.problem_ids, counts.fields)
