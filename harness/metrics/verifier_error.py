"""pass@k corrected for the verifier's own errors, with intervals that carry the uncertainty of its error rates.

The model
---------
Problem i has a true success rate ``theta_i``: each sample is truly correct with that probability. The verifier
calls a truly wrong sample correct with probability ``alpha`` (its false-positive rate, FPR) and a truly correct
one wrong with probability ``beta`` (its false-negative rate, FNR), independently of the problem and of
everything else given the truth ("non-differential" error, the key assumption). A sample is then *verified*
correct with probability

    phi_i = alpha + (1 - alpha - beta) * theta_i,

and the verified-correct count is ``c_i ~ Binomial(n_i, phi_i)``. The target is the true coverage
``pass@k = mean_i [1 - (1 - theta_i)^k]`` (over the population of problems the run's problems stand for).

What is identifiable
--------------------
* ``alpha`` and ``beta`` are not identifiable from the run: any pair with ``alpha + beta < 1`` fits the counts
  (it only rescales theta). They must come from outside: an audit against a trusted reference (``ttc
  agreement``), or a user's figures. Rates are restricted to [0, 0.5): a verifier wrong more often than not is
  not a verifier, and ``alpha + beta < 1`` keeps the map from theta to phi invertible.
* Given the rates, each ``phi_i`` is identified, so each ``theta_i = (phi_i - alpha) / (1 - alpha - beta)`` is,
  and pass@1 (linear in theta) is estimated as well as the raw pass@1.
* pass@k at large k depends on how many problems have a small but non-zero theta (``1 - (1 - theta)^k`` is
  about 1 once theta >> 1/k). With false positives, a problem the model never solves still shows about
  ``n alpha`` verified-correct samples, and with binomial noise of ``sqrt(n alpha (1 - alpha))`` samples a
  true rate below about ``resolution = z sqrt(alpha (1 - alpha) / n) / (1 - alpha - beta)`` cannot be told from
  0 for a single problem. There the raw estimator counts every such problem as solved at large k (it climbs to
  1); the corrected one must decide, across problems, how much of the mass near phi = alpha is theta = 0.
  Formally pass@k is still identified for k <= n (an unbiased estimator exists: the U-statistic
  ``1 - E_hyper[(-beta)^X (1 - beta)^(k - X)] / (1 - alpha - beta)^k``), but its variance grows like
  ``((1 - beta) / (1 - alpha - beta))^(2k)``, useless beyond small k, so we regularise instead. False
  negatives alone are benign (the same estimator is bounded by 1 when alpha = 0): it is the false positives
  that make large-k coverage hard to pin down, and the intervals widen accordingly.

The estimator
-------------
A likelihood deconvolution (g-modelling, Efron 2016; the binomial nonparametric maximum likelihood estimator
of Kiefer & Wolfowitz 1956): the distribution of theta over problems is fitted as weights ``w_g`` on a fixed
grid of true rates (0, a geometric grid that resolves rates near 1/n, and a linear grid up to 1, both ends
included), maximising ``sum_i log sum_g w_g Binomial(c_i; n_i, alpha + (1 - alpha - beta) theta_g)`` by EM
accelerated with SQUAREM (Varadhan & Roland 2008). Then

    corrected pass@k = sum_g w_g [1 - (1 - theta_g)^k].

With alpha = beta = 0 it agrees with the raw unbiased estimator to within a small fraction of its interval.
The atom at theta = 0 (problems never solved) is what lets false positives be discounted at large k.

Intervals: a percentile bootstrap over problems (resampled with replacement, ``resamples`` times) in which each
replicate also draws the error rates from their posteriors (an audit of ``e`` errors in ``t`` trials gives
the Jeffreys posterior Beta(e + 1/2, t - e + 1/2); a standard error or an interval gives a normal; each
truncated to [0, 0.5)) and refits the deconvolution (warm-started, a fixed number of SQUAREM cycles). So the
interval holds the sampling of problems and samples *and* the uncertainty of the rates. Replicates share a
rate draw in small groups so that their fits run as batched matrix products.

Checked on simulated runs with known error rates (``tests/test_verifier_error.py``; more simulations in
``benchmarks/research/verifier_stats_coverage.py``, figures in ``results/bench/verifier_stats_coverage.txt``):
nominal 95% intervals contain the true coverage in 89-96% of runs at every k up to n (FPR 0.05 and FNR 0.1
from audits of a few hundred samples, 200 problems x 100 samples; FPR 0.1 and FNR 0.05, 100 x 1,000), while
the raw curve's intervals contain it in none beyond k = 2. The shortfall from 95% is largest at large k, where
the deconvolution's regularisation leaves a small upward bias (about 0.03 at k = n = 100 with FPR 0.05). With
no errors the corrected curve is the raw one (within a fifth of its interval) and covers as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, xlog1py, xlogy
from scipy.stats import beta as beta_distribution
from scipy.stats import binom, norm

from harness.core.errors import OptionError, check_number
from harness.metrics.estimators import (
    _as_counts,
    bootstrap_mean_interval,
    interval_containing,
    log_spaced_ks,
    pass_at_k,
)

# Bootstrap replicates by default: enough for a 95% percentile interval, and 1,000 problems x 1,000 samples
# fit in about a second.
DEFAULT_RESAMPLES = 200
# Replicates that share one draw of the error rates (their refits run as one batched matrix product).
REPLICATES_PER_RATE_DRAW = 8
# SQUAREM cycles (3 EM steps each): the full-data fit runs to convergence (at most this many), replicates
# are warm-started from it and run a fixed number.
POINT_FIT_CYCLES = 2000
REPLICATE_CYCLES = 300
CONVERGED = 1e-10
# Counts that the rates make implausible: below the 0.1% quantile of false positives alone, or above that of
# a problem solved by every sample.
IMPLAUSIBLE = 1e-3
MAX_RATE = 0.5
VERIFIER_ERROR = "verifier_error"  # the option errors name (the CLI's --verifier-error)


@dataclass(frozen=True)
class ErrorRate:
    """A verifier error rate (FPR or FNR) and its uncertainty.

    Attributes:
        value: the point estimate, in [0, 0.5).
        distribution: ``"known"`` (no uncertainty), ``"beta"`` (``parameters`` = (a, b)) or ``"normal"``
            (``parameters`` = (mean, sd)); draws are truncated to [0, 0.5).
        parameters: the distribution's parameters.
    """

    value: float
    distribution: str = "known"
    parameters: tuple[float, float] = field(default=(0.0, 0.0))

    def __post_init__(self) -> None:
        check_error_rate(self.value)

    @classmethod
    def known(cls, value: float) -> ErrorRate:
        """A rate taken as exact (``--verifier-error FPR,FNR``): intervals then hold no rate uncertainty."""
        return cls(float(value))

    @classmethod
    def from_counts(cls, errors: float, trials: float) -> ErrorRate:
        """From an audit: ``errors`` among ``trials`` (e.g. false positives among truly wrong samples; effective,
        fractional counts allowed). Posterior: Jeffreys, Beta(errors + 1/2, trials - errors + 1/2)."""
        check_number(VERIFIER_ERROR, trials, above=0)
        check_number(VERIFIER_ERROR, errors, at_least=0, at_most=trials)
        return cls(errors / trials, "beta", (errors + 0.5, trials - errors + 0.5))

    @classmethod
    def from_standard_error(cls, value: float, standard_error: float) -> ErrorRate:
        """A rate with its standard error: a normal truncated to [0, 0.5)."""
        check_number(VERIFIER_ERROR, standard_error, at_least=0)
        if standard_error == 0:
            return cls.known(value)
        return cls(float(value), "normal", (float(value), float(standard_error)))

    @classmethod
    def from_interval(cls, low: float, high: float, confidence: float = 0.95) -> ErrorRate:
        """A rate known to lie in [low, high] at ``confidence``: a normal with that centre and spread."""
        check_number("confidence", confidence, above=0, below=1)
        check_error_rate(low)
        check_error_rate(high)
        if high < low:
            raise OptionError(VERIFIER_ERROR, f"interval [{low}, {high}] has its ends reversed")
        z = float(norm.ppf(0.5 + confidence / 2))
        return cls.from_standard_error((low + high) / 2, (high - low) / (2 * z))

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws from the rate's distribution, truncated to [0, 0.5) (the value itself when known)."""
        if self.distribution == "known":
            return np.full(size, self.value)
        if self.distribution == "beta":
            law = beta_distribution(*self.parameters)
        elif self.distribution == "normal":
            law = norm(*self.parameters)
        else:
            raise ValueError(f"unknown error-rate distribution {self.distribution!r}")
        low, high = law.cdf(0.0), law.cdf(MAX_RATE)
        draws = law.ppf(low + rng.random(size) * (high - low))
        return np.clip(draws, 0.0, np.nextafter(MAX_RATE, 0))

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "distribution": self.distribution, "parameters": list(self.parameters)}


def check_error_rate(value: float, which: str = "an error rate") -> None:
    """Raise ``OptionError("verifier_error", ...)`` unless ``value`` is a number in [0, 0.5)."""
    check_number(VERIFIER_ERROR, value)
    if not 0 <= value < MAX_RATE:
        raise OptionError(VERIFIER_ERROR, f"{which} must lie in [0, 0.5), got {value}")


def error_rates_from_agreement(data: Mapping[str, Any]) -> tuple[ErrorRate, ErrorRate]:
    """(FPR, FNR) from an agreement's JSON (``Agreement.to_dict()``, e.g. of an audited subset).

    Each rate becomes a Beta posterior on the audit's *effective* counts (its size over the design effect), so
    that errors concentrated in a few problems count as the little evidence they are.
    """
    rates = []
    for key in ("false_positive_rate", "false_negative_rate"):
        entry = data.get(key)
        if not isinstance(entry, Mapping) or entry.get("value") is None:
            raise OptionError("verifier_error_from", f"the agreement holds no {key.replace('_', ' ')}")
        value = float(entry["value"])
        check_error_rate(value, key.replace("_", " "))
        trials = entry.get("effective_total") or entry.get("total")
        if not trials:
            raise OptionError("verifier_error_from", f"the agreement's {key.replace('_', ' ')} has no audit size")
        rates.append(ErrorRate.from_counts(value * float(trials), float(trials)))
    return rates[0], rates[1]


@dataclass(frozen=True)
class CorrectedCoverage:
    """True coverage estimated through a verifier's errors, beside the raw (verified) coverage.

    Attributes:
        ks: the k of the curves.
        corrected, low, high: corrected pass@k and its interval, at each k.
        raw, raw_low, raw_high: the unbiased pass@k of the verified counts and its bootstrap interval.
        false_positive_rate, false_negative_rate: the rates used.
        confidence: the intervals' level.
        resamples: bootstrap replicates.
        success_rates: the grid of true success rates theta_g.
        weights: the fitted share of problems at each rate of the grid (sums to 1).
        resolution: the smallest true success rate a typical problem (median n) can tell from 0 given the
            false positives (see the module docstring); beyond k of about 1 / resolution the corrected curve
            leans on the fitted distribution, and its interval widens.
        too_few_correct: problems with fewer verified-correct samples than false positives alone would give
            (below their 0.1% quantile): a sign that the FPR is overstated.
        too_many_correct: problems with more than a problem solved by every sample would show: the FNR is
            overstated.
        replicate_weights: (resamples, grid): each bootstrap replicate's fitted distribution, from which
            ``curve_interval`` gives intervals at any k (a forecast beyond the run's n).
    """

    ks: np.ndarray
    corrected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    raw: np.ndarray
    raw_low: np.ndarray
    raw_high: np.ndarray
    false_positive_rate: ErrorRate
    false_negative_rate: ErrorRate
    confidence: float
    resamples: int
    success_rates: np.ndarray
    weights: np.ndarray
    resolution: float
    too_few_correct: int
    too_many_correct: int
    replicate_weights: np.ndarray | None = None

    def curve(self, ks: ArrayLike) -> np.ndarray:
        """Corrected pass@k of the fitted distribution at any k (beyond the run's n it is a forecast)."""
        return _coverage_matrix(np.asarray(ks, dtype=np.float64).reshape(-1), self.success_rates) @ self.weights

    def curve_interval(self, ks: ArrayLike, confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of ``curve(ks)`` at any k: percentiles of the bootstrap replicates' curves (each replicate
        resampled problems and drew the error rates), at ``confidence`` (default: this estimate's)."""
        if self.replicate_weights is None:
            raise ValueError("this estimate kept no bootstrap replicates")
        confidence = self.confidence if confidence is None else confidence
        check_number("confidence", confidence, above=0, below=1)
        matrix = _coverage_matrix(np.asarray(ks, dtype=np.float64).reshape(-1), self.success_rates)
        replicates = self.replicate_weights @ matrix.T  # (resamples, k)
        alpha = (1 - confidence) / 2
        return interval_containing(self.curve(ks), *np.quantile(replicates, [alpha, 1 - alpha], axis=0))

    def at(self, k: int) -> tuple[float, float, float]:
        """(corrected, low, high) at one of ``ks``."""
        index = int(np.flatnonzero(self.ks == k)[0])
        return float(self.corrected[index]), float(self.low[index]), float(self.high[index])

    def per_problem(
        self, num_samples: np.ndarray | Sequence[int], num_correct: np.ndarray | Sequence[int], ks: ArrayLike
    ) -> np.ndarray:
        """(problems, len(ks)): each problem's posterior mean of its true pass@k given its counts (empirical
        Bayes under the fitted distribution); averaged over the fitted problems it is close to ``curve``."""
        n, c = _as_counts(num_samples, num_correct)
        likelihood = _likelihood(
            n.reshape(-1).astype(np.float64),
            c.reshape(-1).astype(np.float64),
            self.success_rates,
            np.array([self.false_positive_rate.value]),
            np.array([self.false_negative_rate.value]),
        )[0]
        posterior = likelihood * self.weights
        posterior /= np.maximum(posterior.sum(axis=1, keepdims=True), np.finfo(float).tiny)
        ks = np.asarray(ks, dtype=np.float64).reshape(-1)
        return posterior @ _coverage_matrix(ks, self.success_rates).T

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": "binomial deconvolution (NPMLE on a grid) with error rates; percentile bootstrap over "
            "problems with the rates drawn from their posteriors",
            "false_positive_rate": self.false_positive_rate.to_dict(),
            "false_negative_rate": self.false_negative_rate.to_dict(),
            "confidence": self.confidence,
            "resamples": self.resamples,
            "resolution": self.resolution,
            "too_few_correct": self.too_few_correct,
            "too_many_correct": self.too_many_correct,
            "pass_at_k": [
                {
                    "k": int(k),
                    "corrected": float(value),
                    "low": float(low),
                    "high": float(high),
                    "raw": float(raw),
                    "raw_low": float(raw_low),
                    "raw_high": float(raw_high),
                }
                for k, value, low, high, raw, raw_low, raw_high in zip(
                    self.ks, self.corrected, self.low, self.high, self.raw, self.raw_low, self.raw_high
                )
            ],
        }


def corrected_coverage(
    num_samples: np.ndarray | Sequence[int],
    num_correct: np.ndarray | Sequence[int],
    false_positive_rate: ErrorRate | float,
    false_negative_rate: ErrorRate | float,
    ks: Sequence[int] | np.ndarray | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> CorrectedCoverage:
    """pass@k corrected for a verifier's error rates, with intervals (see the module docstring).

    Args:
        num_samples, num_correct: per problem, samples and *verified*-correct samples.
        false_positive_rate, false_negative_rate: the verifier's rates, as ``ErrorRate`` (with their
            uncertainty) or as plain numbers (taken as exact); each in [0, 0.5).
        ks: the k to report (default 1, 2, 4, ..., smallest n), each at most the smallest n.
        confidence: the intervals' level.
        resamples: bootstrap replicates (at least 20).
        seed: seeds the resampling and the rate draws (results are reproducible).
    """
    fpr = _error_rate(false_positive_rate, "the false-positive rate")
    fnr = _error_rate(false_negative_rate, "the false-negative rate")
    check_number("confidence", confidence, above=0, below=1)
    check_number("resamples", resamples, at_least=20)
    check_number("seed", seed, at_least=0)
    n, c = _as_counts(num_samples, num_correct)
    n, c = n.reshape(-1), c.reshape(-1)
    if n.size == 0:
        raise ValueError("no problems")
    if n.min() < 1:
        raise ValueError("some problems have no samples; verify or sample them first")
    ks_array = log_spaced_ks(int(n.min())) if ks is None else np.asarray(ks, dtype=np.int64).reshape(-1)
    if ks_array.size == 0 or ks_array.min() < 1 or ks_array.max() > n.min():
        raise OptionError("ks", f"each k must lie in 1..{int(n.min())} (the smallest n), got {ks_array.tolist()}")

    rates = success_rate_grid(int(n.max()))
    coverage = _coverage_matrix(ks_array.astype(np.float64), rates)  # (k, grid)
    keys, frequency = np.unique(np.stack([n, c], axis=1), axis=0, return_counts=True)
    key_n, key_c = keys[:, 0].astype(np.float64), keys[:, 1].astype(np.float64)

    likelihood = _likelihood(key_n, key_c, rates, np.array([fpr.value]), np.array([fnr.value]))
    start = np.full((1, rates.size, 1), 1.0 / rates.size)
    weights = _fit_mixture(likelihood, frequency[None, :, None].astype(np.float64), start, POINT_FIT_CYCLES)
    point = coverage @ weights[0, :, 0]

    rng = np.random.default_rng(seed)
    rate_draws = -(-resamples // REPLICATES_PER_RATE_DRAW)
    if fpr.distribution == fnr.distribution == "known":
        rate_draws = 1  # every replicate has the same likelihood: one batch
    per_draw = -(-resamples // rate_draws)
    replicate_likelihood = _likelihood(key_n, key_c, rates, fpr.draw(rng, rate_draws), fnr.draw(rng, rate_draws))
    problems = int(n.size)
    resampled = rng.multinomial(problems, frequency / problems, size=(rate_draws, per_draw)).transpose(0, 2, 1)
    replicate_weights = _fit_mixture(
        replicate_likelihood,
        resampled.astype(np.float64),
        np.broadcast_to(weights, (rate_draws, rates.size, per_draw)).copy(),
        REPLICATE_CYCLES,
    )
    replicates = np.einsum("kg,rgs->rsk", coverage, replicate_weights).reshape(-1, ks_array.size)[:resamples]
    alpha = (1 - confidence) / 2
    low, high = interval_containing(point, *np.quantile(replicates, [alpha, 1 - alpha], axis=0))

    raw_per_problem = pass_at_k(n[:, None], c[:, None], ks_array[None, :])
    raw_low, raw_high = bootstrap_mean_interval(raw_per_problem, confidence=confidence, seed=seed)
    z = float(norm.ppf(0.5 + confidence / 2))
    typical = float(np.median(n))
    detectable = max(z * np.sqrt(fpr.value * (1 - fpr.value) / typical), 1 / typical)
    return CorrectedCoverage(
        ks=ks_array,
        corrected=point,
        low=low,
        high=high,
        raw=raw_per_problem.mean(axis=0),
        raw_low=raw_low,
        raw_high=raw_high,
        false_positive_rate=fpr,
        false_negative_rate=fnr,
        confidence=confidence,
        resamples=resamples,
        success_rates=rates,
        weights=weights[0, :, 0],
        resolution=min(detectable / (1 - fpr.value - fnr.value), 1.0),
        too_few_correct=int(np.count_nonzero(binom.cdf(c, n, fpr.value) < IMPLAUSIBLE)),
        too_many_correct=int(np.count_nonzero(binom.sf(c - 1, n, 1 - fnr.value) < IMPLAUSIBLE)),
        replicate_weights=replicate_weights.transpose(0, 2, 1).reshape(-1, rates.size)[:resamples],
    )


def success_rate_grid(max_samples: int) -> np.ndarray:
    """The true success rates the deconvolution places weight on: 0, a geometric grid from a tenth of 1/n up
    to 0.5 (pass@k at k near n turns on rates near 1/n), and a linear grid from 0.5 to 1."""
    smallest = min(1e-3, 0.1 / max(max_samples, 1))
    return np.unique(np.concatenate([[0.0], np.geomspace(smallest, 0.5, 30), np.linspace(0.5, 1.0, 11)]))


def _error_rate(rate: ErrorRate | float, which: str) -> ErrorRate:
    if isinstance(rate, ErrorRate):
        return rate
    check_error_rate(rate, which)
    return ErrorRate.known(float(rate))


def _coverage_matrix(ks: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """(k, grid): 1 - (1 - theta)^k, stable for theta near 0 and exact at theta = 1."""
    with np.errstate(divide="ignore"):
        log_miss = np.log1p(-rates)
    return -np.expm1(ks[:, None] * log_miss[None, :])


def _likelihood(n: np.ndarray, c: np.ndarray, rates: np.ndarray, fpr: np.ndarray, fnr: np.ndarray) -> np.ndarray:
    """(draws, rows, grid): binomial likelihood of each (n, c) row at each grid rate, per draw of the error rates,
    scaled so that each row's largest value is 1 (the scale of a row does not change the fit)."""
    phi = fpr[:, None, None] + (1 - fpr - fnr)[:, None, None] * rates[None, None, :]
    log_choose = gammaln(n + 1) - gammaln(c + 1) - gammaln(n - c + 1)
    log_likelihood = log_choose[None, :, None] + xlogy(c[None, :, None], phi) + xlog1py((n - c)[None, :, None], -phi)
    return np.exp(log_likelihood - log_likelihood.max(axis=2, keepdims=True))


def _fit_mixture(likelihood: np.ndarray, frequency: np.ndarray, weights: np.ndarray, cycles: int) -> np.ndarray:
    """Mixture weights maximising ``sum_u frequency_u log(likelihood_u . w)`` for a batch of problems' resamples.

    ``likelihood`` (draws, rows, grid), ``frequency`` (draws, rows, replicates), ``weights`` (draws, grid,
    replicates), the start. EM with SQUAREM's extrapolation (scheme S3), falling back to the plain double EM
    step wherever the extrapolation does not raise the likelihood; stops early once no weight moves by more
    than ``CONVERGED``.
    """
    transposed = np.swapaxes(likelihood, 1, 2)
    totals = frequency.sum(axis=1, keepdims=True)
    tiny = np.finfo(np.float64).tiny

    def em_step(w: np.ndarray) -> np.ndarray:
        return w * (transposed @ (frequency / np.maximum(likelihood @ w, tiny))) / totals

    def log_likelihood(w: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return (frequency * np.log(likelihood @ w)).sum(axis=1)

    for _ in range(cycles):
        once = em_step(weights)
        twice = em_step(once)
        change = once - weights
        curvature = twice - once - change
        change_size = np.sqrt((change**2).sum(axis=1, keepdims=True))
        curvature_size = np.sqrt((curvature**2).sum(axis=1, keepdims=True))
        step = -np.where(curvature_size > 0, change_size / np.maximum(curvature_size, tiny), 1.0)
        step = np.minimum(step, -1.0)
        jumped = np.maximum(weights - 2 * step * change + step**2 * curvature, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            jumped = em_step(jumped / jumped.sum(axis=1, keepdims=True))
            better = np.isfinite(jumped).all(axis=1) & (log_likelihood(jumped) >= log_likelihood(twice))
        previous = weights
        weights = np.where(better[:, None, :], jumped, twice)
        if np.abs(weights - previous).max() < CONVERGED:
            break
    return weights
