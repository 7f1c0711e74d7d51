"""Forecast coverage at a sample count beyond the pilot, with an interval, by several methods.

A forecast answers: if every problem of this set got ``k`` samples (the ones drawn so far included), what
fraction would have at least one correct sample? Up to the pilot's sample count the answer is the unbiased
pass@k with a bootstrap interval over problems; beyond it a law extrapolates:

- ``powerlaw``: ``log(coverage) = a * k**b`` fitted to the pilot's coverage curve on k = 1, 2, 4, ... <= n
  (Large Language Monkeys) as the straight line ``log(-log coverage)`` on ``log k``; interval by bootstrap over
  problems. ``powerlaw-log``: the same law by least squares on log coverage.
- ``beta``: per-problem success rate p ~ Beta(alpha, beta) by maximum likelihood on the counts, coverage
  ``1 - E[(1-p)^k]`` (Schaeffer et al. 2025); interval by bootstrap over problems.
- ``bayes``: the same law fitted in a Bayesian way and used as a posterior predictive for *these* problems:
  a problem already solved stays solved, each unsolved one is solved with the probability its zero count
  implies, averaged over the posterior of (alpha, beta); the interval mixes parameter uncertainty with the
  chance of which unsolved problems fall.
- ``bayes-zi``: ``bayes`` with a point mass of unsolvable problems (p = 0).
- ``blend``: 0.3 x ``powerlaw`` + 0.7 x ``bayes``; the interval spans both intervals.
- ``auto``: ``blend``, checked by backtesting inside the pilot (``select_method``): sub-pilots of a quarter
  of the samples are drawn without replacement from the pilot and every candidate forecasts the pilot's own
  coverage from them; if the default's interval misses the truth in most sub-pilots, the candidate with the
  best interval score (width plus 20x any miss: the proper score of a 90% interval) among those that held
  replaces it. In-sample fit quality plays no part.

No law from nothing: a law needs successes on at least ``MIN_SOLVED_FOR_LAW`` problems. With fewer, any
point forecast beyond the pilot would be the prior's (0 successes in 640 samples "forecast" 0.16 at k = 320),
so ``fit_model`` gives ``BoundModel`` instead, whatever the method asked: no point estimate beyond the pilot
(``Forecast.coverage`` is None), only the interval the samples support (``coverage_bounds``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy import special

from harness.core.errors import DataError, OptionError, check_number
from harness.forecasting.laws import BetaBinomialLaw, BetaMLE, PowerLaw, fit_power_law_batch
from harness.metrics.analysis import measured_coverage
from harness.metrics.counts import Counts
from harness.metrics.estimators import bootstrap_means, interval_containing, log_spaced_ks, pass_at_k

DEFAULT_CONFIDENCE = 0.9
MAX_K = 10**12  # the largest k forecast: samples per problem far beyond any budget, exact in float64
AUTO_CANDIDATES = ("blend", "bayes", "bayes-zi", "beta", "powerlaw")  # the first is the default
# The Beta law has two parameters and the power law's shape is one problem's curve when one problem is solved:
# with successes on fewer problems than this, a forecast would be the prior's, so none is made.
MIN_SOLVED_FOR_LAW = 2


@dataclass(frozen=True)
class Forecast:
    """Forecast coverage at ``k`` samples per problem with a ``confidence`` interval [low, high].

    ``coverage`` is None where the counts support no point estimate (``method`` ``"bound"``: too few
    successes for a law; ``note`` says so): [low, high] is then what the samples alone rule in.
    """

    k: int
    coverage: float | None
    low: float
    high: float
    method: str
    confidence: float = DEFAULT_CONFIDENCE
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        fields = {"coverage": self.coverage, "low": self.low, "high": self.high, "method": self.method}
        return {**fields, "note": self.note} if self.note else fields


@dataclass(frozen=True)
class CurveForecast:
    """Forecast coverage over many k (one method): arrays ``coverage``, ``low``, ``high`` aligned with ``ks``."""

    ks: np.ndarray
    coverage: np.ndarray
    low: np.ndarray
    high: np.ndarray
    method: str
    sampled_k: int  # the pilot's samples per problem (smallest n): beyond it the values are extrapolated


class CoverageModel(Protocol):
    """A fitted forecasting method: ``interval(k, confidence)`` -> (coverage, low, high); measured up to
    ``sampled_k`` (the smallest n of the counts it was fitted to), extrapolated beyond."""

    name: str
    sampled_k: int

    def fit(self, counts: Counts) -> CoverageModel: ...

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]: ...

    def describe(self) -> dict[str, Any]: ...


def _checked(counts: Counts) -> Counts:
    if len(counts) == 0:
        raise DataError("no problems to forecast from (empty group?)")
    if np.any(counts.num_samples < 1):
        bad = counts.problem_ids[np.flatnonzero(counts.num_samples < 1)[0]]
        raise DataError(f"problem {bad!r} has no samples; forecasts need at least one sample per problem")
    return counts


def law_refusal(counts: Counts) -> str | None:
    """Why no law may be fitted to ``counts`` (successes on fewer than ``MIN_SOLVED_FOR_LAW`` problems);
    None when one may."""
    solved = int(np.count_nonzero(counts.num_correct))
    if solved >= MIN_SOLVED_FOR_LAW:
        return None
    successes = int(counts.num_correct.sum())
    return (
        f"{successes} success{'' if successes == 1 else 'es'} in {int(counts.num_samples.sum()):,} samples "
        f"({solved} of {len(counts)} problems solved): too few for a law, which needs successes on at least "
        f"{MIN_SOLVED_FOR_LAW} problems"
    )


def coverage_bounds(counts: Counts, k: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """What the samples alone say about coverage at ``k`` >= the pilot's n, as a ``confidence`` interval.

    Low: the lower end of the measured coverage's interval at n (coverage only rises with k). High: from an
    upper bound on the mean success rate over problems. The successes T are a sum of independent draws with
    mean sum n_i p_i >= m sum p_i (m the fewest samples of a problem), and a sum of independent Bernoulli
    draws is no likelier to fall this low than a binomial of the same mean (Hoeffding 1956), so the
    Clopper-Pearson upper bound on T / sum n_i at level alpha = (1 - confidence) / 2 bounds the mean rate:
    0 successes in M samples give 1 - alpha^(1/M), the rule of three's 3 / M at 95%. Coverage at k, the
    mean of 1 - (1 - p_i)^k, is concave in the rates, so it is at most 1 - (1 - mean rate)^k.
    """
    pilot = int(counts.num_samples.min())
    alpha = (1.0 - confidence) / 2
    low = measured_coverage(counts, [pilot], confidence).at(pilot)[1]
    successes, samples = int(counts.num_correct.sum()), int(counts.num_samples.sum())
    if successes >= samples:
        return low, 1.0
    rate = float(special.betaincinv(successes + 1, samples - successes, 1 - alpha))  # Clopper-Pearson upper
    mean_rate = min(1.0, rate * samples / (pilot * len(counts)))
    return low, float(-np.expm1(k * np.log1p(-mean_rate))) if mean_rate < 1 else 1.0


def fit_power_law(counts: Counts, objective: str = "linear") -> PowerLaw:
    """The exponentiated power law of the counts' measured coverage: the one fit that the summary prints,
    coverage.png draws, ``compare`` tabulates and the ``powerlaw`` forecast extrapolates.

    Fitted to the mean unbiased pass@k at k = 1, 2, 4, ..., n (n the smallest sample count). The grid is a
    choice, since another log grid (say 8 points per decade) moves a and b in the second decimal: powers of
    two are the k of the pass@k table printed beside the law, so the law fits the points shown, and the grid
    on which the ``powerlaw`` backtests of docs/forecasting.md were measured. Denser k add little: pass@k at
    neighbouring k comes from the same samples and moves together.
    """
    ks, per_pair, multiplicity = _pass_at_fitted_ks(counts)
    return PowerLaw(objective).fit(ks, multiplicity @ per_pair / multiplicity.sum())


def _pass_at_fitted_ks(counts: Counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k a power law is fitted on (``fit_power_law``), the unbiased pass@k at them of each distinct
    (n, c) pair of the counts, and how many problems have each pair (``distinct_counts``)."""
    ks = log_spaced_ks(int(counts.num_samples.min()))
    n, c, multiplicity, _ = counts.distinct()
    return ks, pass_at_k(n[:, None], c[:, None], ks[None, :]), multiplicity


class PowerLawModel:
    """``powerlaw`` / ``powerlaw-log``: the exponentiated power law fitted on k = 1, 2, 4, ... up to the pilot's n.

    Parameters: ``objective`` of the fit (``PowerLaw``: ``"linear"`` or ``"log"``); ``resamples`` bootstrap
    refits over problems give the interval.
    """

    def __init__(self, objective: str = "linear", resamples: int = 200, seed: int = 0) -> None:
        self.objective = objective
        self.name = "powerlaw" if objective == "linear" else f"powerlaw-{objective}"
        self.resamples = resamples
        self.seed = seed

    def fit(self, counts: Counts) -> PowerLawModel:
        self.counts = _checked(counts)
        self.sampled_k = int(counts.num_samples.min())
        self.ks, per_pair, multiplicity = _pass_at_fitted_ks(counts)
        self.law = PowerLaw(self.objective).fit(self.ks, multiplicity @ per_pair / multiplicity.sum())
        resampled = bootstrap_means(per_pair, resamples=self.resamples, seed=self.seed, multiplicity=multiplicity)
        self.boot_a, self.boot_b = fit_power_law_batch(self.ks, resampled, objective=self.objective)
        fitted = np.isfinite(self.boot_a)
        self.boot_a, self.boot_b = self.boot_a[fitted], self.boot_b[fitted]
        return self

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]:
        if k <= self.sampled_k:
            return measured_coverage(self.counts, [k], confidence, self.seed).at(k)
        boot = np.exp(self.boot_a * float(k) ** self.boot_b)
        tail = (1 - confidence) / 2
        point = float(self.law.predict(k))
        if not boot.size:  # no bootstrap refit succeeded: no interval
            return point, np.nan, np.nan
        low, high = interval_containing(point, *np.quantile(boot, [tail, 1 - tail]))
        return point, float(low), float(high)

    def describe(self) -> dict[str, Any]:
        return {"a": self.law.a_, "b": self.law.b_, "r2": self.law.r2_, "fitted_k": [int(k) for k in self.ks]}


class BetaMLEModel:
    """``beta``: Beta by maximum likelihood, population coverage; ``resamples`` bootstrap refits for the interval."""

    name = "beta"

    def __init__(self, resamples: int = 200, seed: int = 0) -> None:
        self.resamples = resamples
        self.seed = seed

    def fit(self, counts: Counts) -> BetaMLEModel:
        self.counts = _checked(counts)
        self.sampled_k = int(counts.num_samples.min())
        self.law = BetaMLE().fit(counts.num_samples, counts.num_correct, distinct=counts.distinct())
        self.boot_alpha, self.boot_beta = self.law.bootstrap(self.resamples, self.seed)
        return self

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]:
        if k <= self.sampled_k:
            return measured_coverage(self.counts, [k], confidence, self.seed).at(k)
        a, b = self.boot_alpha, self.boot_beta
        boot = -np.expm1(special.betaln(a, b + k) - special.betaln(a, b))
        tail = (1 - confidence) / 2
        point = float(self.law.predict(k))
        low, high = interval_containing(point, *np.quantile(boot, [tail, 1 - tail]))
        return point, float(low), float(high)

    def describe(self) -> dict[str, Any]:
        return {"alpha": self.law.alpha_, "beta": self.law.beta_}


class BayesModel:
    """``bayes`` / ``bayes-zi``: posterior predictive of the Bayesian beta-binomial law (``BetaBinomialLaw``)."""

    def __init__(self, zero_inflated: bool = False, seed: int = 0) -> None:
        self.zero_inflated = zero_inflated
        self.name = "bayes-zi" if zero_inflated else "bayes"
        self.seed = seed

    def fit(self, counts: Counts) -> BayesModel:
        self.counts = _checked(counts)
        self.sampled_k = int(counts.num_samples.min())
        self.law = BetaBinomialLaw(zero_inflated=self.zero_inflated).fit(
            counts.num_samples, counts.num_correct, distinct=counts.distinct()
        )
        return self

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]:
        if k <= self.sampled_k:
            return measured_coverage(self.counts, [k], confidence, self.seed).at(k)
        return self.law.forecast(k, confidence)

    def describe(self) -> dict[str, Any]:
        law = self.law
        described = {"alpha": law.alpha_, "beta": law.beta_, "intervals": law.intervals_}
        if self.zero_inflated:
            described["zero_mass"] = law.zero_mass_
        return described


class BlendModel:
    """``blend``: a weighted average of the ``powerlaw`` and ``bayes`` forecasts; the interval spans both.

    The two err in opposite ways: the power law extrapolates a Pythia-like curve precisely but misses low
    wherever the pilot's curve is still bending (hard problems, many zero-success pilots); ``bayes`` follows
    the counts, so it is right on average there but noisy, as the tail exponent is loosely identified. The
    weight of the power law is ``weight_powerlaw`` (see docs/forecasting.md for how it was measured);
    without a power law (a pilot with fewer than two k with 0 < coverage < 1) it is ``bayes`` alone.
    """

    name = "blend"

    def __init__(self, weight_powerlaw: float = 0.3, seed: int = 0) -> None:
        check_number("weight_powerlaw", weight_powerlaw, at_least=0, at_most=1)
        self.weight_powerlaw = weight_powerlaw
        self.seed = seed

    def fit(self, counts: Counts) -> BlendModel:
        self.counts = _checked(counts)
        self.sampled_k = int(counts.num_samples.min())
        self.bayes = BayesModel(seed=self.seed).fit(counts)
        self.law = self.bayes.law  # the fitted Beta law, for budgets that allocate samples by it
        try:
            self.powerlaw: PowerLawModel | None = PowerLawModel(seed=self.seed).fit(counts)
        except ValueError:  # no curve to fit: the counts alone speak
            self.powerlaw = None
        return self

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]:
        if k <= self.sampled_k:
            return measured_coverage(self.counts, [k], confidence, self.seed).at(k)
        bayes = self.bayes.interval(k, confidence)
        if self.powerlaw is None:
            return bayes
        powerlaw = self.powerlaw.interval(k, confidence)
        if not np.all(np.isfinite(powerlaw)):
            return bayes
        weight = self.weight_powerlaw
        coverage = weight * powerlaw[0] + (1 - weight) * bayes[0]
        return coverage, min(powerlaw[1], bayes[1]), max(powerlaw[2], bayes[2])

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"weight_powerlaw": self.weight_powerlaw if self.powerlaw else 0.0}
        described["bayes"] = self.bayes.describe()
        if self.powerlaw is not None:
            described["powerlaw"] = self.powerlaw.describe()
        return described


class BoundModel:
    """``bound``: no law, for counts with too few successes (``law_refusal``): measured coverage up to the
    pilot's n, beyond it no point estimate (NaN) and the interval of ``coverage_bounds``."""

    name = "bound"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, counts: Counts) -> BoundModel:
        self.counts = _checked(counts)
        self.sampled_k = int(counts.num_samples.min())
        self.reason = law_refusal(counts) or "bounds asked for"
        return self

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]:
        if k <= self.sampled_k:
            return measured_coverage(self.counts, [k], confidence, self.seed).at(k)
        return (math.nan, *coverage_bounds(self.counts, k, confidence))

    def describe(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "solved": int(np.count_nonzero(self.counts.num_correct)),
            "successes": int(self.counts.num_correct.sum()),
        }


class AutoModel:
    """``auto``: the candidate that forecasts best inside the pilot (``select_method``), then fitted on it all."""

    name = "auto"

    def __init__(self, candidates: Sequence[str] = AUTO_CANDIDATES, seed: int = 0) -> None:
        self.candidates = tuple(candidates)
        self.seed = seed

    def fit(self, counts: Counts) -> AutoModel:
        self.choice, self.scores = select_method(counts, self.candidates, seed=self.seed)
        self.model = make_model(self.choice, self.seed).fit(counts)
        self.name = self.model.name
        self.sampled_k = self.model.sampled_k
        return self

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]:
        return self.model.interval(k, confidence)

    def describe(self) -> dict[str, Any]:
        return {"chosen": self.choice, "selection_scores": self.scores, **self.model.describe()}


MODELS: dict[str, Callable[[int], CoverageModel]] = {
    "powerlaw": lambda seed: PowerLawModel("linear", seed=seed),
    "powerlaw-log": lambda seed: PowerLawModel("log", seed=seed),
    "beta": lambda seed: BetaMLEModel(seed=seed),
    "bayes": lambda seed: BayesModel(zero_inflated=False, seed=seed),
    "bayes-zi": lambda seed: BayesModel(zero_inflated=True, seed=seed),
    "blend": lambda seed: BlendModel(seed=seed),
    "auto": lambda seed: AutoModel(seed=seed),
}
METHODS = tuple(MODELS)


def make_model(method: str, seed: int = 0) -> CoverageModel:
    if method not in MODELS:
        raise OptionError("method", f"unknown forecast method {method!r}; choose one of {', '.join(METHODS)}")
    return MODELS[method](seed)


def fit_model(counts: Counts, method: str = "auto", seed: int = 0) -> CoverageModel:
    """``method`` fitted to ``counts``; ``BoundModel`` instead where the counts are too few for a law."""
    model = make_model(method, seed)
    counts = _checked(counts)
    return BoundModel(seed).fit(counts) if law_refusal(counts) is not None else model.fit(counts)


def model_forecast(model: CoverageModel, k: int, confidence: float = DEFAULT_CONFIDENCE) -> Forecast:
    """A fitted model's forecast at ``k`` (coverage None where it has no point estimate)."""
    coverage, low, high = model.interval(int(k), confidence)
    point = None if math.isnan(coverage) else float(coverage)
    note = getattr(model, "reason", "") if point is None else ""
    return Forecast(int(k), point, float(low), float(high), model.name, confidence, model.describe(), note)


def interval_score(truth: float, low: float, high: float, confidence: float) -> float:
    """Proper score of a central interval (Gneiting & Raftery 2007): width plus 2/(1-confidence) x any miss."""
    penalty = 2.0 / (1.0 - confidence)
    return (high - low) + penalty * max(low - truth, 0.0) + penalty * max(truth - high, 0.0)


def subsample(counts: Counts, samples: int, rng: np.random.Generator) -> Counts:
    """Keep ``samples`` of each problem's samples, drawn without replacement (hypergeometric counts)."""
    if np.any(counts.num_samples < samples):
        raise DataError(f"cannot draw {samples} samples from problems with as few as {counts.num_samples.min()}")
    correct = rng.hypergeometric(counts.num_correct, counts.num_samples - counts.num_correct, samples)
    return Counts(
        num_samples=np.full(len(counts), samples, dtype=np.int64),
        num_correct=np.asarray(correct, dtype=np.int64),
        problem_ids=counts.problem_ids,
        fields=counts.fields,
    )


def select_method(
    counts: Counts,
    candidates: Sequence[str] = AUTO_CANDIDATES,
    confidence: float = DEFAULT_CONFIDENCE,
    draws: int = 4,
    fraction: float = 0.25,
    seed: int = 0,
) -> tuple[str, dict[str, float]]:
    """Choose a method by backtesting inside the pilot; returns (method, mean interval score per method).

    The rule: draw ``draws`` sub-pilots of ``fraction`` x n samples per problem (n = the smallest sample
    count) without replacement from the pilot; every candidate forecasts coverage at k = n from each
    sub-pilot; its interval is checked against the pilot's own unbiased pass@n and scored with the interval
    score. The first candidate is the default and stays unless its interval missed the truth in more than
    half the sub-pilots; then the candidate with the best score among those whose intervals held in at least
    half wins (the default again if none did). Backtests of this rule on real and simulated counts (see
    docs/forecasting.md) showed that a 4x extrapolation inside the pilot does not rank methods for a
    100x extrapolation, so the in-pilot backtest acts as a check of the default rather than a contest.
    Pilots under 8 samples per problem are too small to split: the default is returned unscored.
    """
    counts = _checked(counts)
    pilot = int(counts.num_samples.min())
    sub_size = int(pilot * fraction)
    if sub_size < 2:
        return candidates[0], {}
    truth = float(pass_at_k(counts.num_samples, counts.num_correct, pilot).mean())
    rng = np.random.default_rng(seed)
    scores = np.full((len(candidates), draws), np.inf)
    hits = np.zeros((len(candidates), draws), dtype=bool)
    for draw in range(draws):
        sub = subsample(counts, sub_size, rng)
        for index, name in enumerate(candidates):
            try:
                _, low, high = make_model(name, seed).fit(sub).interval(pilot, confidence)
            except ValueError:  # e.g. a power law needs two k with 0 < coverage < 1
                continue
            scores[index, draw] = interval_score(truth, low, high, confidence)
            hits[index, draw] = low <= truth <= high
    means = scores.mean(axis=1)
    held = hits.mean(axis=1) >= 0.5
    choice = 0
    if not held[0] and held.any():
        choice = int(np.argmin(np.where(held, means, np.inf)))
    return candidates[choice], {name: float(mean) for name, mean in zip(candidates, means)}


def _validate_request(k: int | Sequence[int] | np.ndarray, confidence: float, seed: int = 0) -> None:
    """Refuse a k outside 1..MAX_K or not whole, a confidence outside (0, 1) and a negative seed, naming the
    parameter."""
    check_number("seed", seed, at_least=0)
    for value in np.atleast_1d(np.asarray(k, dtype=object)):  # objects: a k beyond int64 is seen, not wrapped
        whole = isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            raise OptionError("k", f"must be a whole number of samples, got {value!r}")
        check_number("k", int(value), at_least=1)
        check_number("k", int(value), at_most=MAX_K)  # a cap on what is forecast, named on its own
    check_number("confidence", confidence, above=0, below=1)


def forecast(
    counts: Counts, k: int, method: str = "auto", confidence: float = DEFAULT_CONFIDENCE, seed: int = 0
) -> Forecast:
    """Forecast coverage at ``k`` samples per problem from per-problem counts (see the module docstring);
    with too few successes for a law, bounds only (method ``"bound"``, coverage None)."""
    _validate_request(k, confidence, seed)
    return model_forecast(fit_model(counts, method, seed), k, confidence)


def forecast_curve(
    counts: Counts,
    ks: Sequence[int] | np.ndarray,
    method: str = "auto",
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> CurveForecast:
    """Forecast at every k of ``ks`` with one fitted model (for plots and budgets); NaN coverage beyond the
    pilot where the counts are too few for a law (``fit_model``)."""
    _validate_request(ks, confidence, seed)
    return model_curve(fit_model(counts, method, seed), ks, confidence)


def model_curve(
    model: CoverageModel, ks: Sequence[int] | np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> CurveForecast:
    """A fitted model's forecast at every k of ``ks``."""
    _validate_request(ks, confidence)
    ks = np.asarray(ks, dtype=np.int64)
    values = np.array([model.interval(int(k), confidence) for k in ks]).reshape(-1, 3)
    return CurveForecast(ks, values[:, 0], values[:, 1], values[:, 2], model.name, int(model.sampled_k))
