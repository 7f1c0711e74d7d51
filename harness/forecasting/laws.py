"""Scaling laws for coverage: a curve law and a law for the distribution of per-problem success rates.

``PowerLaw`` is the exponentiated power law of Large Language Monkeys (Brown et al. 2024),
``log(coverage) = a * k**b``, fitted to a coverage curve either as a straight line
``log(-log coverage) = log(-a) + b log k`` (``objective="linear"``, the default) or by least squares on log
coverage (``objective="log"``). The straight line weighs the small unsolved mass at large k as much as the
large one at small k, which is what the extrapolation depends on.

``BetaBinomialLaw`` is the distributional view (Schaeffer et al. 2025, "How Do Large Language Monkeys Get
Their Power (Laws)?"): each problem has a single-sample success probability p drawn from Beta(alpha, beta),
optionally zero-inflated (p = 0 with probability ``zero_mass``, problems no number of samples solves). Fitted
to per-problem (n, c) counts with the beta-binomial likelihood, so a problem with c = 0 says exactly what it
should ("p is probably below about 1/n"), and coverage follows as ``1 - E[(1 - p)**k]``. The fit is Bayesian
on a grid over (log alpha, log beta[, zero_mass]): forecasts far beyond the sampled k depend on the left
tail of p, which a pilot pins down only loosely, and the posterior carries that uncertainty into intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import optimize, special
from scipy.interpolate import RegularGridInterpolator

from harness.core.errors import DataError, OptionError, check_number
from harness.metrics.counts import distinct_counts
from harness.metrics.estimators import interval_containing, pass_at_k

# ---------------------------------------------------------------------------------------------------------
# Power law
# ---------------------------------------------------------------------------------------------------------


POWER_LAW_OBJECTIVES = ("linear", "log")


def _check_objective(objective: str) -> None:
    if objective not in POWER_LAW_OBJECTIVES:
        raise OptionError(
            "objective", f"unknown power-law objective {objective!r}; choose one of {', '.join(POWER_LAW_OBJECTIVES)}"
        )


def fit_power_law_batch(
    ks: np.ndarray,
    coverage: np.ndarray,
    weights: np.ndarray | None = None,
    iterations: int = 60,
    objective: str = "linear",
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``log(coverage) = a * k**b`` to many curves at once (rows of ``coverage``; shape (curves, len(ks))).

    ``objective="linear"``: the weighted straight line ``log(-log coverage) = log(-a) + b log k`` through the
    points with 0 < coverage < 1. ``objective="log"``: weighted least squares on log coverage by
    Levenberg-Marquardt, started from that line (points with coverage <= 0 get weight 0). A row needs two
    points with 0 < coverage < 1. Returns arrays ``a`` and ``b`` (NaN for rows that cannot be fitted).
    """
    _check_objective(objective)
    ks = np.asarray(ks, dtype=np.float64)
    cov = np.atleast_2d(np.asarray(coverage, dtype=np.float64))
    w = np.ones_like(cov) if weights is None else np.broadcast_to(np.asarray(weights, dtype=np.float64), cov.shape)
    usable = cov > 0
    w = np.where(usable, w, 0.0)
    y = np.log(np.where(usable, cov, 1.0))
    log_k = np.log(ks)
    # Start: weighted line through log(-y) = log(-a) + b log k, on points strictly inside (0, 1).
    inner = usable & (cov < 1)
    wl = np.where(inner, w, 0.0)
    z = np.log(np.where(inner, -y, 1.0))
    sw = wl.sum(1)
    fittable = (inner.sum(1) >= 2) & (sw > 0)
    sw = np.where(fittable, sw, 1.0)
    mx = (wl * log_k).sum(1) / sw
    mz = (wl * z).sum(1) / sw
    sxx = (wl * (log_k - mx[:, None]) ** 2).sum(1)
    b = np.where(sxx > 0, (wl * (log_k - mx[:, None]) * (z - mz[:, None])).sum(1) / np.where(sxx > 0, sxx, 1), 0.0)
    a = -np.exp(mz - b * mx)
    if objective == "linear":
        return np.where(fittable, a, np.nan), np.where(fittable, b, np.nan)

    def cost(a_: np.ndarray, b_: np.ndarray) -> np.ndarray:
        return (w * (y - a_[:, None] * ks ** b_[:, None]) ** 2).sum(1)

    damping = np.full(a.shape, 1e-3)
    current = cost(a, b)
    for _ in range(iterations):
        kb = ks ** b[:, None]
        residual = y - a[:, None] * kb
        ja, jb = kb, a[:, None] * kb * log_k
        haa, hab, hbb = (w * ja * ja).sum(1), (w * ja * jb).sum(1), (w * jb * jb).sum(1)
        ga, gb = (w * ja * residual).sum(1), (w * jb * residual).sum(1)
        haa_d, hbb_d = haa * (1 + damping), hbb * (1 + damping)
        det = haa_d * hbb_d - hab * hab
        det = np.where(np.abs(det) > 1e-300, det, np.inf)
        step_a = (hbb_d * ga - hab * gb) / det
        step_b = (haa_d * gb - hab * ga) / det
        trial_a, trial_b = a + step_a, b + step_b
        trial = cost(trial_a, trial_b)
        better = np.isfinite(trial) & (trial <= current)
        a, b = np.where(better, trial_a, a), np.where(better, trial_b, b)
        current = np.where(better, trial, current)
        damping = np.where(better, damping / 3, damping * 4)
    return np.where(fittable, a, np.nan), np.where(fittable, b, np.nan)


class PowerLaw:
    """Exponentiated power law ``log(coverage) = a * k**b`` (Large Language Monkeys), scikit-learn style.

    ``objective``: ``"linear"`` fits the straight line ``log(-log coverage)`` on ``log k``; ``"log"`` fits by
    least squares on log coverage. ``fit(ks, coverage, weights=None)`` weighs each point (default 1; pass
    inverse variances to weight by precision). Fitted attributes: ``a_``
    (negative: log coverage at k = 1), ``b_`` (negative for coverage rising towards 1), ``r2_`` (weighted
    R^2 on log coverage). ``predict(k)`` gives coverage.
    """

    def __init__(self, objective: str = "linear") -> None:
        _check_objective(objective)
        self.objective = objective
        self.a_: float | None = None
        self.b_: float | None = None
        self.r2_: float | None = None
        self.ks_: np.ndarray | None = None

    def fit(
        self,
        ks: Sequence[float] | np.ndarray,
        coverage: Sequence[float] | np.ndarray,
        weights: Sequence[float] | np.ndarray | None = None,
    ) -> PowerLaw:
        ks = np.asarray(ks, dtype=np.float64)
        coverage = np.asarray(coverage, dtype=np.float64)
        if ks.ndim != 1 or ks.shape != coverage.shape:
            raise ValueError(f"ks and coverage must be 1-D arrays of one length, got {ks.shape} and {coverage.shape}")
        if np.any(ks < 1):
            raise ValueError("ks must be at least 1")
        if np.any((coverage < 0) | (coverage > 1)):
            raise ValueError("coverage values must lie in [0, 1]")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != ks.shape or np.any(weights < 0):
                raise ValueError("weights must be non-negative, one per k")
        if np.count_nonzero((coverage > 0) & (coverage < 1)) < 2:
            raise DataError("a power law needs at least two k with 0 < coverage < 1")
        a, b = fit_power_law_batch(
            ks, coverage[None, :], None if weights is None else weights[None, :], objective=self.objective
        )
        self.a_, self.b_ = float(a[0]), float(b[0])
        self.ks_ = ks
        used = coverage > 0
        w = np.ones_like(ks) if weights is None else weights
        w = np.where(used, w, 0.0)
        y = np.log(np.where(used, coverage, 1.0))
        mean = (w * y).sum() / w.sum()
        total = (w * (y - mean) ** 2).sum()
        residual = (w * (y - self.a_ * ks**self.b_) ** 2).sum()
        self.r2_ = float(1.0 - residual / total) if total > 0 else 1.0
        return self

    def _fitted(self, method: str) -> tuple[float, float, float, np.ndarray]:
        """(a, b, R^2, the k fitted on); ``method`` names the caller in the error before ``fit``."""
        if self.a_ is None or self.b_ is None or self.r2_ is None or self.ks_ is None:
            raise RuntimeError(f"PowerLaw.{method} before fit")
        return self.a_, self.b_, self.r2_, self.ks_

    def predict(self, k: float | Sequence[float] | np.ndarray) -> np.ndarray:
        a, b, _, _ = self._fitted("predict")
        return np.exp(a * np.asarray(k, dtype=np.float64) ** b)

    @property
    def params(self) -> dict[str, float]:
        a, b, r2, _ = self._fitted("params")
        return {"a": a, "b": b, "r2": r2}

    def to_json(self) -> dict[str, Any]:
        """The fitted law as ``summary.json`` holds it (``fit``): its formula, a, b, R^2 and the k fitted on."""
        ks = self._fitted("to_json")[3]
        return {"law": "log(coverage) = a * k^b", **self.params, "ks": [int(k) for k in ks]}

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> PowerLaw:
        """The law ``to_json`` wrote, as it was fitted (nothing is refitted)."""
        law = cls()
        law.a_, law.b_, law.r2_ = float(fields["a"]), float(fields["b"]), float(fields["r2"])
        law.ks_ = np.asarray(fields["ks"], dtype=np.float64)
        return law


# ---------------------------------------------------------------------------------------------------------
# Beta-binomial law
# ---------------------------------------------------------------------------------------------------------

ALPHA_RANGE = (0.003, 3.0)  # Beta shape near p = 0: density ~ p**(alpha - 1); small alpha = heavy left tail
BETA_RANGE = (0.3, 3e5)  # roughly 1 / (typical p) for small p: sets the difficulty scale
GRID_SHAPE = (90, 110)
ZERO_MASS_CELLS = 20
JEFFREYS_MAX_N = 200  # the prior's design size is capped: beyond it the prior barely changes


def _log_range(bounds: tuple[float, float]) -> tuple[float, float]:
    low, high = np.log(bounds)
    return float(low), float(high)


LOG_ALPHA_RANGE = _log_range(ALPHA_RANGE)
LOG_BETA_RANGE = _log_range(BETA_RANGE)


@lru_cache(maxsize=16)
def _jeffreys_log_prior(num_samples: int) -> RegularGridInterpolator:
    """log sqrt(det Fisher information) of Beta-binomial(n) in (log alpha, log beta), on the coarse grid."""
    log_a = np.linspace(*LOG_ALPHA_RANGE, GRID_SHAPE[0])
    log_b = np.linspace(*LOG_BETA_RANGE, GRID_SHAPE[1])
    a = np.exp(log_a)[:, None, None]
    b = np.exp(log_b)[None, :, None]
    c = np.arange(num_samples + 1, dtype=np.float64)[None, None, :]
    n = float(num_samples)
    log_pmf = (
        special.gammaln(n + 1)
        - special.gammaln(c + 1)
        - special.gammaln(n - c + 1)
        + special.betaln(a + c, b + n - c)
        - special.betaln(a, b)
    )
    pmf = np.exp(log_pmf)
    common = special.digamma(a + b) - special.digamma(a + b + n)
    score_a = a * (special.digamma(a + c) - special.digamma(a) + common)
    score_b = b * (special.digamma(b + n - c) - special.digamma(b) + common)
    iaa = (pmf * score_a**2).sum(-1)
    ibb = (pmf * score_b**2).sum(-1)
    iab = (pmf * score_a * score_b).sum(-1)
    log_prior = 0.5 * np.log(np.clip(iaa * ibb - iab**2, 1e-300, None))
    return RegularGridInterpolator((log_a, log_b), log_prior, bounds_error=False, fill_value=None)


def _unique_counts(
    num_samples: np.ndarray, num_correct: np.ndarray, distinct: tuple[np.ndarray, ...] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, c, multiplicity, _ = distinct if distinct is not None else distinct_counts(num_samples, num_correct)
    return n.astype(np.float64), c.astype(np.float64), multiplicity.astype(np.float64)


@dataclass(frozen=True)
class _Grid:
    """A rectangular grid over (log alpha, log beta, zero_mass) with prior mass per point."""

    log_alpha: np.ndarray
    log_beta: np.ndarray
    zero_mass: np.ndarray  # [0.0] when not zero-inflated
    log_prior: np.ndarray  # shape (A, B, Z)
    zero_log_prior: np.ndarray  # prior log mass of each zero_mass point


class BetaBinomialLaw:
    """Per-problem success probability p ~ Beta(alpha, beta), optionally zero-inflated; Bayesian grid fit.

    Parameters:
        zero_inflated: add a point mass at p = 0 of weight ``zero_mass``. Its prior puts
            ``no_zero_mass_prior`` on zero_mass = 0 (no unsolvable problems) and spreads the rest uniformly
            over (0, 1): a pilot can barely tell unsolvable problems from very hard ones, so both stay in play.
        alpha_scale: scale of a half-Cauchy prior on alpha, on top of the Jeffreys prior of the
            beta-binomial at the pilot's sample size. It keeps alpha away from implausibly light left tails
            (alpha >> 1) that a small pilot cannot rule out; None drops it.
        grid_shape: points on the (log alpha, log beta) grid; the grid zooms in when the posterior is narrow.

    ``fit(num_samples, num_correct)`` sets ``alpha_``, ``beta_``, ``zero_mass_`` (posterior medians) and
    the posterior over the grid; ``intervals_`` gives a 90% credible interval per parameter. Then:
    ``predict(k)`` is the population coverage ``1 - E[(1-p)^k]`` (posterior mean); ``forecast(k)`` is the
    posterior predictive of the coverage the *fitted problems* reach with k samples each (their samples so
    far included), with an interval.
    """

    def __init__(
        self,
        zero_inflated: bool = False,
        no_zero_mass_prior: float = 0.5,
        alpha_scale: float | None = 0.3,
        grid_shape: tuple[int, int] = GRID_SHAPE,
    ) -> None:
        check_number("no_zero_mass_prior", no_zero_mass_prior, at_least=0, below=1)
        self.zero_inflated = zero_inflated
        self.no_zero_mass_prior = no_zero_mass_prior
        self.alpha_scale = alpha_scale
        self.grid_shape = grid_shape

    # -- fitting ---------------------------------------------------------------------------------------------
    def fit(
        self,
        num_samples: Sequence[int] | np.ndarray,
        num_correct: Sequence[int] | np.ndarray,
        *,
        distinct: tuple[np.ndarray, ...] | None = None,
    ) -> BetaBinomialLaw:
        """Fit to per-problem counts; ``distinct``: their ``distinct_counts`` if at hand (``Counts.distinct``)."""
        n = np.asarray(num_samples, dtype=np.int64)
        c = np.asarray(num_correct, dtype=np.int64)
        if n.ndim != 1 or n.shape != c.shape or n.size == 0:
            raise ValueError("num_samples and num_correct must be non-empty 1-D arrays of one length")
        if np.any(n < 1):
            raise DataError("every problem needs at least one sample to fit a success-rate distribution")
        if np.any(c < 0) or np.any(c > n):
            raise DataError("counts must satisfy 0 <= num_correct <= num_samples")
        self.num_samples_, self.num_correct_ = n, c
        self._unique = _unique_counts(n, c, distinct)
        self._prior_n = int(min(float(np.median(n)), JEFFREYS_MAX_N))
        grid = self._grid(
            np.linspace(*LOG_ALPHA_RANGE, self.grid_shape[0]),
            np.linspace(*LOG_BETA_RANGE, self.grid_shape[1]),
            self._zero_axis(None),
        )
        log_post = self._log_posterior(grid)
        grid, log_post = self._zoom(grid, log_post)
        weights = np.exp(log_post - log_post.max())
        weights /= weights.sum()
        keep = weights > 1e-7 * weights.max()
        la, lb, zm = np.meshgrid(grid.log_alpha, grid.log_beta, grid.zero_mass, indexing="ij")
        self.alpha_grid_, self.beta_grid_ = np.exp(la[keep]), np.exp(lb[keep])
        self.zero_mass_grid_, self.weights_ = zm[keep], weights[keep] / weights[keep].sum()
        self.alpha_, self.beta_, self.zero_mass_ = (
            self._quantile(self.alpha_grid_, 0.5),
            self._quantile(self.beta_grid_, 0.5),
            self._quantile(self.zero_mass_grid_, 0.5),
        )
        return self

    @property
    def intervals_(self) -> dict[str, tuple[float, float]]:
        """90% credible interval of each parameter."""
        self._check_fitted()
        grids = {"alpha": self.alpha_grid_, "beta": self.beta_grid_, "zero_mass": self.zero_mass_grid_}
        return {name: (self._quantile(values, 0.05), self._quantile(values, 0.95)) for name, values in grids.items()}

    def _zero_axis(self, bounds: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
        """zero_mass points and their prior log mass: an atom at 0 plus equal cells of the uniform part."""
        if not self.zero_inflated:
            return np.zeros(1), np.zeros(1)
        low, high = (0.0, 1.0) if bounds is None else bounds
        cells = ZERO_MASS_CELLS if bounds is None else ZERO_MASS_CELLS // 2
        edges = np.linspace(low, high, cells + 1)
        values = (edges[:-1] + edges[1:]) / 2
        log_mass = np.full(cells, np.log((1 - self.no_zero_mass_prior) * (high - low) / cells))
        if low == 0.0 and self.no_zero_mass_prior > 0:
            values = np.concatenate([[0.0], values])
            log_mass = np.concatenate([[np.log(self.no_zero_mass_prior)], log_mass])
        return values, log_mass

    def _grid(self, log_alpha: np.ndarray, log_beta: np.ndarray, zero_axis: tuple[np.ndarray, np.ndarray]) -> _Grid:
        la, lb = np.meshgrid(log_alpha, log_beta, indexing="ij")
        log_prior = _jeffreys_log_prior(self._prior_n)(np.stack([la, lb], axis=-1))
        if self.alpha_scale is not None:
            alpha = np.exp(la)
            log_prior = log_prior + la - np.log1p((alpha / self.alpha_scale) ** 2)
        zero_mass, zero_log_prior = zero_axis
        log_prior = log_prior[:, :, None] + zero_log_prior[None, None, :]
        return _Grid(log_alpha, log_beta, zero_mass, log_prior, zero_log_prior)

    def _log_posterior(self, grid: _Grid) -> np.ndarray:
        n, c, multiplicity = self._unique
        a = np.exp(grid.log_alpha)[:, None]
        b = np.exp(grid.log_beta)[:, None]
        # log B(a + c, b + n - c) - log B(a, b), split into separable gammaln terms for speed.
        term_a = special.gammaln(a + c[None, :]) - special.gammaln(a)  # (A, U)
        term_b = special.gammaln(b + (n - c)[None, :]) - special.gammaln(b)  # (B, U)
        ab = a[:, None, :] + b[None, :, :]  # (A, B, 1)
        term_ab = special.gammaln(ab + n[None, None, :]) - special.gammaln(ab)  # (A, B, U)
        log_lik = term_a[:, None, :] + term_b[None, :, :] - term_ab  # (A, B, U)
        if not self.zero_inflated:
            return (log_lik @ multiplicity)[:, :, None] + grid.log_prior
        zero = c == 0
        pi = grid.zero_mass[None, None, :]
        solved = multiplicity[~zero]
        solved_part = (log_lik[:, :, ~zero] @ solved)[:, :, None] + solved.sum() * np.log1p(-pi)
        with np.errstate(divide="ignore"):  # the atom zero_mass = 0 has log 0 = -inf
            log_pi = np.log(pi)
        zero_lik = np.logaddexp(log_pi[..., None], np.log1p(-pi)[..., None] + log_lik[:, :, None, zero])
        return solved_part + zero_lik @ multiplicity[zero] + grid.log_prior

    def _zoom(self, grid: _Grid, log_post: np.ndarray) -> tuple[_Grid, np.ndarray]:
        """Refine the grid around the posterior when it sits on a handful of coarse points (large data)."""
        weights = np.exp(log_post - log_post.max())
        weights /= weights.sum()
        if np.sort(weights.ravel())[::-1][:40].sum() < 0.95:
            return grid, log_post
        mass = weights > 1e-8 * weights.max()
        ia, ib, iz = (np.flatnonzero(mass.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))

        def around(axis: np.ndarray, index: np.ndarray, points: int) -> np.ndarray:
            low, high = axis[max(index[0] - 1, 0)], axis[min(index[-1] + 1, axis.size - 1)]
            return np.linspace(low, high, points)

        zero_axis = (grid.zero_mass, grid.zero_log_prior)
        if self.zero_inflated:
            step = 1.0 / ZERO_MASS_CELLS
            low = grid.zero_mass[iz[0]] - step if grid.zero_mass[iz[0]] > 0 else 0.0
            zero_axis = self._zero_axis((max(low, 0.0), min(grid.zero_mass[iz[-1]] + step, 1.0)))
        fine = self._grid(around(grid.log_alpha, ia, 60), around(grid.log_beta, ib, 60), zero_axis)
        return fine, self._log_posterior(fine)

    def _quantile(self, values: np.ndarray, q: float) -> float:
        order = np.argsort(values, kind="stable")
        cumulative = np.cumsum(self.weights_[order])
        return float(values[order][min(int(np.searchsorted(cumulative, q)), values.size - 1)])

    # -- predictions -----------------------------------------------------------------------------------------
    def _log_unsolved(self, k: float) -> np.ndarray:
        """log P(no success in k samples) per grid point: log E[(1-p)^k] under the Beta part."""
        a, b = self.alpha_grid_, self.beta_grid_
        return special.betaln(a, b + k) - special.betaln(a, b)

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise RuntimeError("BetaBinomialLaw used before fit")

    def unsolved_fraction(self, k: float) -> np.ndarray:
        """P(a random problem has no success in k samples) at every posterior grid point."""
        self._check_fitted()
        pi = self.zero_mass_grid_
        return pi + (1 - pi) * np.exp(self._log_unsolved(float(k)))

    def predict(self, k: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Population coverage 1 - E[(1-p)^k], posterior mean, for each k."""
        self._check_fitted()
        ks = np.atleast_1d(np.asarray(k, dtype=np.float64))
        values = np.array([1.0 - self.weights_ @ self.unsolved_fraction(kk) for kk in ks])
        return values.reshape(np.shape(k))

    def predict_interval(self, k: float, confidence: float = 0.9) -> tuple[float, float, float]:
        """Posterior mean and credible interval of the population coverage at k."""
        values = 1.0 - self.unsolved_fraction(k)
        tail = (1 - confidence) / 2
        return float(self.weights_ @ values), self._quantile(values, tail), self._quantile(values, 1 - tail)

    def solve_probability(self, k: float, num_samples: float) -> np.ndarray:
        """P(solved within k samples | no success in the first ``num_samples``), per posterior grid point."""
        self._check_fitted()
        if k <= num_samples:
            return np.zeros_like(self.weights_)
        pi = self.zero_mass_grid_
        log_seen = self._log_unsolved(float(num_samples))
        seen = np.exp(log_seen)
        newly = (1 - pi) * seen * -np.expm1(self._log_unsolved(float(k)) - log_seen)
        return newly / (pi + (1 - pi) * seen)

    def forecast(self, k: float, confidence: float = 0.9) -> tuple[float, float, float]:
        """Posterior predictive coverage of the fitted problems with k samples each: (mean, low, high).

        A problem with a success so far is covered; one with ``n >= k`` samples contributes its unbiased
        pass@k; each problem still without success is solved with the probability its zero count implies
        under each posterior (alpha, beta, zero_mass), so the interval mixes parameter uncertainty with the
        chance of which unsolved problems fall.
        """
        self._check_fitted()
        n, c, multiplicity = self._unique  # per distinct (n, c) pair, weighted by its problems
        enough = n >= k
        fixed = float(multiplicity[enough] @ pass_at_k(n[enough], c[enough], int(k))) if enough.any() else 0.0
        fixed += float(multiplicity[~enough & (c > 0)].sum())
        unsolved = ~enough & (c == 0)
        waiting_n, waiting = n[unsolved], multiplicity[unsolved].astype(np.int64)  # distinct n: pairs are
        total = int(waiting.sum())
        size = int(multiplicity.sum())
        if total == 0:
            value = fixed / size
            return value, value, value
        mean_q = sum(count * self.solve_probability(k, n_value) for n_value, count in zip(waiting_n, waiting)) / total
        newly = _mixture_of_binomials(mean_q, self.weights_, total)
        coverage = (fixed + np.arange(total + 1)) / size
        cdf = np.cumsum(newly)
        tail = (1 - confidence) / 2
        mean = float(newly @ coverage)
        low, high = interval_containing(
            mean,
            coverage[min(int(np.searchsorted(cdf, tail)), total)],
            coverage[min(int(np.searchsorted(cdf, 1 - tail)), total)],
        )
        return mean, float(low), float(high)


def solvable_probability(
    alpha: np.ndarray | float,
    beta: np.ndarray | float,
    zero_mass: np.ndarray | float,
    num_samples: np.ndarray,
    num_correct: np.ndarray,
) -> np.ndarray:
    """P(a problem's success rate comes from the Beta part, not the atom at p = 0), given its counts, under
    the zero-inflated law (alpha, beta, zero_mass); broadcast over all arguments.

    A problem with a success is solvable; one without is solvable with the posterior odds of the Beta part,
    ``(1 - zero_mass) B(alpha, beta + n) / B(alpha, beta)`` against ``zero_mass``.
    """
    n = np.asarray(num_samples, dtype=np.float64)
    c = np.asarray(num_correct, dtype=np.float64)
    beta_part = (1 - zero_mass) * np.exp(special.betaln(alpha + c, beta + n - c) - special.betaln(alpha, beta))
    return np.where(c == 0, beta_part / np.maximum(zero_mass + beta_part, 1e-300), 1.0)


class BetaMLE:
    """Schaeffer et al.'s distributional estimator: p ~ Beta(alpha, beta) by maximum likelihood.

    ``fit(num_samples, num_correct)`` maximises the beta-binomial likelihood (continuous optimisation from
    the best point of a log grid) and sets ``alpha_``, ``beta_``; ``predict(k)`` is the population coverage
    ``1 - B(alpha, beta + k) / B(alpha, beta)``. ``bootstrap(resamples, seed)`` refits on problems drawn
    with replacement, on the grid (one matrix product for all resamples), and returns (alphas, betas).
    """

    def fit(
        self,
        num_samples: Sequence[int] | np.ndarray,
        num_correct: Sequence[int] | np.ndarray,
        *,
        distinct: tuple[np.ndarray, ...] | None = None,
    ) -> BetaMLE:
        """Fit to per-problem counts; ``distinct``: their ``distinct_counts`` if at hand (``Counts.distinct``)."""
        n = np.asarray(num_samples, dtype=np.int64)
        c = np.asarray(num_correct, dtype=np.int64)
        if n.ndim != 1 or n.shape != c.shape or n.size == 0 or np.any(n < 1) or np.any(c < 0) or np.any(c > n):
            raise ValueError(
                "counts must be non-empty 1-D arrays with 1 <= num_samples and 0 <= num_correct <= num_samples"
            )
        self._unique = _unique_counts(n, c, distinct)
        self._log_alpha = np.linspace(*LOG_ALPHA_RANGE, GRID_SHAPE[0])
        self._log_beta = np.linspace(*LOG_BETA_RANGE, GRID_SHAPE[1])
        self._per_count = self._log_lik(np.exp(self._log_alpha)[:, None, None], np.exp(self._log_beta)[None, :, None])
        log_lik = self._per_count @ self._unique[2]
        best = np.unravel_index(np.argmax(log_lik), log_lik.shape)
        start = np.array([self._log_alpha[best[0]], self._log_beta[best[1]]])

        def negative_log_lik(log_shape: np.ndarray) -> float:
            return -float(self._log_lik(np.exp(log_shape[0]), np.exp(log_shape[1])) @ self._unique[2])

        result = optimize.minimize(
            negative_log_lik,
            start,
            method="Nelder-Mead",
            bounds=[LOG_ALPHA_RANGE, LOG_BETA_RANGE],  # a flat ridge must not run off
            options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000},
        )
        self.alpha_, self.beta_ = (float(v) for v in np.exp(result.x))
        return self

    def _log_lik(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        """Beta-binomial log-likelihood of each unique (n, c), up to the binomial coefficient."""
        n, c, _ = self._unique
        a, b = np.asarray(a)[..., None], np.asarray(b)[..., None]
        return special.betaln(a + c, b + n - c) - special.betaln(a, b)

    def predict(self, k: float | Sequence[float] | np.ndarray) -> np.ndarray:
        if not hasattr(self, "alpha_"):
            raise RuntimeError("BetaMLE.predict before fit")
        k = np.asarray(k, dtype=np.float64)
        return -np.expm1(special.betaln(self.alpha_, self.beta_ + k) - special.betaln(self.alpha_, self.beta_))

    def bootstrap(self, resamples: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        count_kinds = self._unique[0].size
        per_count = self._per_count.reshape(-1, count_kinds)
        full = per_count @ self._unique[2]
        # Resampled maxima stay where the full data's likelihood is within e^-40 of its peak.
        candidates = np.flatnonzero(full >= full.max() - 40.0)
        problems = int(self._unique[2].sum())
        # Drawing problems with replacement = a multinomial over the distinct (n, c) pairs.
        multiplicity = np.random.default_rng(seed).multinomial(problems, self._unique[2] / problems, size=resamples)
        log_lik = multiplicity.astype(np.float64) @ per_count[candidates].T  # (resamples, candidates)
        ia, ib = np.unravel_index(candidates[np.argmax(log_lik, axis=1)], self._per_count.shape[:2])
        return np.exp(self._log_alpha[ia]), np.exp(self._log_beta[ib])


def _mixture_of_binomials(probabilities: np.ndarray, weights: np.ndarray, trials: int, bins: int = 256) -> np.ndarray:
    """pmf of X where X | q ~ Binomial(trials, q) and q takes ``probabilities`` with ``weights``.

    The mixing distribution is reduced to ``bins`` equal-mass groups (their weighted mean q), so the cost is
    bins x trials whatever the grid size.
    """
    order = np.argsort(probabilities, kind="stable")
    q, w = probabilities[order], weights[order]
    group = np.minimum((np.cumsum(w) - w / 2) * bins, bins - 1).astype(np.int64)
    mass = np.bincount(group, weights=w, minlength=bins)
    q_mean = np.bincount(group, weights=w * q, minlength=bins)
    used = mass > 0
    q_mean = np.clip(q_mean[used] / mass[used], 0.0, 1.0)
    # Each binomial's mass lies within a few standard deviations of its mean: evaluate the pmf there only (for
    # a million trials, a few thousand points instead of a million per group); beyond, it is below 1e-30.
    spread = 12.0 * np.sqrt(trials * q_mean * (1.0 - q_mean)) + 12.0
    lows = np.maximum(np.floor(trials * q_mean - spread), 0).astype(np.int64)
    highs = np.minimum(np.ceil(trials * q_mean + spread), trials).astype(np.int64)
    first = int(lows.min())
    x = np.arange(first, int(highs.max()) + 1)
    log_choose = special.gammaln(trials + 1.0) - special.gammaln(x + 1.0) - special.gammaln(trials - x + 1.0)
    pmf = np.zeros(trials + 1)
    for weight, q, low, high in zip(mass[used], q_mean, lows, highs):  # each group's window: a few sd wide
        window = slice(low - first, high - first + 1)
        pmf[low : high + 1] += weight * _binomial_pmf(x[window], trials, q, log_choose[window])
    return pmf / pmf.sum()


def _binomial_pmf(x: np.ndarray, trials: int, q: float, log_choose: np.ndarray) -> np.ndarray:
    """Binomial(trials, q) pmf at ``x``, given log C(trials, x): in log space, exact where q is 0 or 1."""
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0, and 0 x log 0 in the branch not taken
        successes = np.where(x == 0, 0.0, x * np.log(q))
        failures = np.where(x == trials, 0.0, (trials - x) * np.log1p(-q))
    return np.exp(log_choose + successes + failures)
