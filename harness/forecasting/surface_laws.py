"""Laws of the samples x thinking surface: a power law in k at each budget, a law in B at each k.

In k: at each thinking budget, the exponentiated power law of Large Language Monkeys, ``log(coverage) = a k^b``
(``PowerLaw``), fitted as ``fit_power_law`` fits a run's coverage (on k = 1, 2, 4, ..., n) and refitted on
every bootstrap resample of the problems (``fit_power_law_batch``), which gives the forecast's interval beyond
the sampled n, as the ``powerlaw`` forecasting model does.

In B: no single law is established for coverage against thinking budget (s1 and later work plot it against
log B, where it rises and bends over as the model stops using extra thinking). Several candidates are fitted at
every measured k, and the one that forecasts best is chosen by held-out fit: each law is fitted on the budgets
below a held-out budget and predicts coverage there (forward chaining, so the score measures extrapolation to
longer thinking, what the law is for); the smallest root-mean-square error over all k and held-out budgets
wins. Candidates (``BUDGET_LAWS``):

* ``logistic-log``: ``coverage = c / (1 + exp(-s (log B - m)))``, an S-curve in log B rising to a ceiling c;
* ``saturating-exp``: ``coverage = c - d exp(-B / tau)``, rising to c with a budget scale tau;
* ``power-law``: ``log(coverage) = a B^b``, the same exponentiated power law as in k;
* ``log-linear``: ``coverage = alpha + beta log B``, no ceiling (the baseline).

Three-parameter laws are fitted by profile least squares: for each value of the non-linear parameter on a grid
(the ceiling c, or tau), the rest is linear and solved in closed form, all rows at once; the best grid point
wins. Everything is vectorised over k, so the whole surface is fitted in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.core.errors import OptionError
from harness.forecasting.laws import PowerLaw, fit_power_law_batch
from harness.metrics.estimators import interval_containing, log_spaced_ks
from harness.metrics.surface import MeasuredSurface

PROFILE_GRID = 60  # grid points of the profiled parameter (ceiling or budget scale)
EPSILON = 1e-6


# ---------------------------------------------------------------------------------------------------------
# Laws in B: each fits many rows at once. x: budgets (m,); y: coverage (rows, m). Returns parameters (rows, p).
# ---------------------------------------------------------------------------------------------------------


def _line_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of y on x along the last axis (x broadcast against y)."""
    x, y = np.broadcast_arrays(x, y)
    mx, my = x.mean(-1, keepdims=True), y.mean(-1, keepdims=True)
    sxx = ((x - mx) ** 2).sum(-1)
    slope = np.where(sxx > 0, ((x - mx) * (y - my)).sum(-1) / np.where(sxx > 0, sxx, 1.0), 0.0)
    return slope, my[..., 0] - slope * mx[..., 0]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _fit_logistic_log(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    t = np.log(x)
    top = y.max(axis=1, keepdims=True)
    fractions = np.linspace(0.0, 1.0, PROFILE_GRID)[None, :]
    ceiling = np.clip(top + EPSILON + fractions * (1.0 - top), EPSILON, 1.0)  # (rows, G): c above every point
    share = np.clip(y[:, None, :] / ceiling[:, :, None], EPSILON, 1.0 - EPSILON)
    slope, intercept = _line_fit(t, np.log(share) - np.log1p(-share))  # logit(y / c) = s log B + i
    fitted = ceiling[:, :, None] * _sigmoid(slope[:, :, None] * t + intercept[:, :, None])
    best = np.argmin(((fitted - y[:, None, :]) ** 2).sum(-1), axis=1)
    rows = np.arange(y.shape[0])
    return np.stack([ceiling[rows, best], slope[rows, best], intercept[rows, best]], axis=1)


def _predict_logistic_log(params: np.ndarray, x: np.ndarray) -> np.ndarray:
    c, s, i = (params[:, j : j + 1] for j in range(3))
    return c * _sigmoid(s * np.log(x) + i)


def _fit_saturating_exp(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    scales = np.geomspace(x.min() / 4.0, x.max() * 4.0, PROFILE_GRID)  # (G,)
    decay = np.exp(-x[None, :] / scales[:, None])  # (G, m)
    slope, intercept = _line_fit(decay[None, :, :], y[:, None, :])  # y = intercept + slope * decay
    fitted = intercept[:, :, None] + slope[:, :, None] * decay[None, :, :]
    best = np.argmin(((fitted - y[:, None, :]) ** 2).sum(-1), axis=1)
    rows = np.arange(y.shape[0])
    return np.stack([intercept[rows, best], -slope[rows, best], scales[best]], axis=1)


def _predict_saturating_exp(params: np.ndarray, x: np.ndarray) -> np.ndarray:
    c, d, tau = (params[:, j : j + 1] for j in range(3))
    return c - d * np.exp(-x / tau)


def _fit_power_law(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    a, b = fit_power_law_batch(x, y)
    return np.stack([a, b], axis=1)


def _predict_power_law(params: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.exp(params[:, :1] * x ** params[:, 1:2])


def _fit_log_linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    slope, intercept = _line_fit(np.log(x), y)
    return np.stack([intercept, slope], axis=1)


def _predict_log_linear(params: np.ndarray, x: np.ndarray) -> np.ndarray:
    return params[:, :1] + params[:, 1:2] * np.log(x)


@dataclass(frozen=True)
class BudgetLawKind:
    name: str
    formula: str
    parameters: tuple[str, ...]
    fit: Callable[[np.ndarray, np.ndarray], np.ndarray]
    predict_raw: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def predict(self, params: np.ndarray, budgets: np.ndarray) -> np.ndarray:
        """Coverage (rows, len(budgets)), clipped to [0, 1] (NaN where the row could not be fitted)."""
        return np.clip(self.predict_raw(params, np.asarray(budgets, dtype=np.float64)), 0.0, 1.0)


BUDGET_LAWS: dict[str, BudgetLawKind] = {
    law.name: law
    for law in (
        BudgetLawKind(
            "logistic-log",
            "coverage = c / (1 + exp(-(s log B + i)))",
            ("c", "s", "i"),
            _fit_logistic_log,
            _predict_logistic_log,
        ),
        BudgetLawKind(
            "saturating-exp",
            "coverage = c - d exp(-B / tau)",
            ("c", "d", "tau"),
            _fit_saturating_exp,
            _predict_saturating_exp,
        ),
        BudgetLawKind("power-law", "log(coverage) = a B^b", ("a", "b"), _fit_power_law, _predict_power_law),
        BudgetLawKind(
            "log-linear", "coverage = alpha + beta log B", ("alpha", "beta"), _fit_log_linear, _predict_log_linear
        ),
    )
}


@dataclass(frozen=True)
class BudgetLaw:
    """The law in B chosen by held-out fit, fitted at every measured k.

    ``params`` (k, p) per measured k (NaN rows: not fittable); ``rmse`` and ``r2`` the in-sample fit per k;
    ``held_out`` the held-out root-mean-square error of every candidate (over ``held_out_budgets`` and all k
    that every candidate could fit, ``held_out_rows`` of them); the chosen law has the smallest.
    """

    kind: BudgetLawKind
    ks: np.ndarray
    params: np.ndarray
    rmse: np.ndarray
    r2: np.ndarray
    held_out: dict[str, float]
    held_out_budgets: list[int]
    held_out_rows: int

    @property
    def name(self) -> str:
        return self.kind.name

    def predict(self, k: int, budgets: np.ndarray | list[float]) -> np.ndarray:
        """Coverage at k samples (a measured k) for any thinking budgets."""
        row = np.flatnonzero(self.ks == k)
        if not row.size:
            raise OptionError("k", f"the law in B is fitted at the measured k = 1..{int(self.ks[-1])}, got {k}")
        return self.kind.predict(self.params[row], np.asarray(budgets, dtype=np.float64))[0]

    def to_json(self, ks: np.ndarray | None = None) -> dict[str, Any]:
        """The law, the held-out errors that chose it, and its parameters and fit at ``ks`` (default 1, 2, 4...)."""
        ks = log_spaced_ks(int(self.ks[-1])) if ks is None else ks
        return {
            "law": self.kind.name,
            "formula": self.kind.formula,
            "chosen_by": "held-out RMSE (fitted on the budgets below each held-out budget)",
            "held_out_rmse": self.held_out,
            "held_out_budgets": self.held_out_budgets,
            "held_out_ks": self.held_out_rows,
            "rmse_mean": float(np.nanmean(self.rmse)),
            "at_k": [
                {
                    "k": int(k),
                    **{name: _finite(self.params[k - 1, j]) for j, name in enumerate(self.kind.parameters)},
                    "rmse": _finite(self.rmse[k - 1]),
                    "r2": _finite(self.r2[k - 1]),
                }
                for k in ks
            ],
        }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def fit_budget_law(budgets: np.ndarray, coverage: np.ndarray, ks: np.ndarray) -> BudgetLaw | str:
    """Choose and fit the law in B for coverage rows (one per k of ``ks``; columns: ``budgets``).

    Returns the law, or the reason none can be chosen (too few budgets to hold one out).
    """
    x = np.asarray(budgets, dtype=np.float64)
    y = np.asarray(coverage, dtype=np.float64)
    m = x.size
    eligible = [law for law in BUDGET_LAWS.values() if len(law.parameters) + 1 < m]
    if not eligible:
        return f"a law in B needs at least 4 thinking budgets (3 to fit and 1 held out), got {m}"
    first = max(len(law.parameters) for law in eligible) + 1  # every candidate fits on at least p + 1 budgets
    held = range(first, m)
    predictions = {
        law.name: np.stack([law.predict(law.fit(x[:j], y[:, :j]), x[j : j + 1])[:, 0] for j in held], axis=1)
        for law in eligible
    }
    usable = np.all([np.isfinite(p).all(axis=1) for p in predictions.values()], axis=0)
    truth = y[:, first:]
    held_out = {
        name: float(np.sqrt(np.mean((p[usable] - truth[usable]) ** 2))) if usable.any() else float("nan")
        for name, p in predictions.items()
    }
    chosen = BUDGET_LAWS[min(held_out, key=lambda name: np.inf if np.isnan(held_out[name]) else held_out[name])]
    params = chosen.fit(x, y)
    fitted = chosen.predict(params, x)
    residual = ((fitted - y) ** 2).sum(axis=1)
    total = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    r2 = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), np.where(residual < 1e-12, 1.0, 0.0))
    return BudgetLaw(
        kind=chosen,
        ks=np.asarray(ks),
        params=params,
        rmse=np.sqrt(residual / m),
        r2=r2,
        held_out=held_out,
        held_out_budgets=[int(b) for b in x[first:]],
        held_out_rows=int(usable.sum()),
    )


# ---------------------------------------------------------------------------------------------------------
# The surface with its laws
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurfaceForecast:
    """A measured surface with its power law in k at each budget and its law in B at each k.

    ``coverage(ks, column)`` gives coverage with its interval at any k: measured for k <= n, forecast by the
    budget's power law beyond (its interval from the bootstrap refits). ``k_laws[b]`` is None where the
    budget's coverage cannot be fitted (its reason in ``k_law_errors[b]``); beyond n such a budget forecasts
    coverage 1 when every problem is solved at n, else nothing (NaN).
    """

    surface: MeasuredSurface
    k_laws: list[PowerLaw | None]
    k_law_errors: list[str | None]
    boot_a: np.ndarray  # (resamples, budgets) bootstrap refits of each budget's power law (NaN: not fitted)
    boot_b: np.ndarray
    budget_law: BudgetLaw | None
    budget_law_error: str | None

    @property
    def budgets(self) -> np.ndarray:
        return self.surface.budgets

    def coverage(self, ks: np.ndarray | list[int], column: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coverage, low, high) at each k of ``ks`` (>= 1) at budget index ``column``."""
        ks = np.asarray(ks, dtype=np.int64)
        if ks.size and ks.min() < 1:
            raise OptionError("k", f"must be at least 1, got {int(ks.min())}")
        n = self.surface.samples
        mean, low, high = (np.full(ks.shape, np.nan) for _ in range(3))
        measured = ks <= n
        for target, source in (
            (mean, self.surface.coverage),
            (low, self.surface.coverage_low),
            (high, self.surface.coverage_high),
        ):
            target[measured] = source[ks[measured] - 1, column]
        beyond = ~measured
        if not beyond.any():
            return mean, low, high
        law = self.k_laws[column]
        far = ks[beyond].astype(np.float64)
        if law is None:
            if self.surface.coverage[n - 1, column] >= 1.0:  # every problem solved at n: coverage stays 1
                mean[beyond] = low[beyond] = high[beyond] = 1.0
            return mean, low, high
        point = law.predict(far)
        fitted = np.isfinite(self.boot_a[:, column])
        if fitted.any():
            boot = np.exp(self.boot_a[fitted, column][:, None] * far[None, :] ** self.boot_b[fitted, column][:, None])
            tail = (1.0 - self.surface.confidence) / 2.0
            band_low, band_high = interval_containing(point, *np.quantile(boot, [tail, 1.0 - tail], axis=0))
            low[beyond], high[beyond] = band_low, band_high
        mean[beyond] = point
        return mean, low, high

    def grid(self, k_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coverage, low, high) at every k = 1..k_max (rows) and every budget (columns)."""
        ks = np.arange(1, k_max + 1)
        columns = [self.coverage(ks, column) for column in range(self.budgets.size)]
        mean, low, high = (np.stack([column[part] for column in columns], axis=1) for part in range(3))
        return mean, low, high

    def to_json(self) -> dict[str, Any]:
        """``summary.json["surface"]``: the measured surface, the power law in k per budget, the law in B."""
        k_laws = []
        for column, budget in enumerate(self.budgets):
            law = self.k_laws[column]
            entry: dict[str, Any] = {"budget": int(budget)}
            if law is None:
                entry |= {"fit": None, "fit_error": self.k_law_errors[column]}
            else:
                entry["fit"] = law.to_json()
            k_laws.append(entry)
        return {
            **self.surface.to_json(),
            "k_laws": k_laws,
            "budget_law": None if self.budget_law is None else self.budget_law.to_json(),
            "budget_law_error": self.budget_law_error,
        }


def fit_surface_laws(surface: MeasuredSurface) -> SurfaceForecast:
    """Fit the power law in k at every budget (with bootstrap refits) and choose and fit the law in B."""
    ks = log_spaced_ks(surface.samples)
    laws: list[PowerLaw | None] = []
    errors: list[str | None] = []
    for column in range(surface.budgets.size):
        try:
            laws.append(PowerLaw().fit(ks, surface.coverage[ks - 1, column]))
            errors.append(None)
        except ValueError as error:
            laws.append(None)
            errors.append(str(error))
    resamples, _, width = surface.coverage_resampled.shape
    rows = np.moveaxis(surface.coverage_resampled[:, ks - 1, :], 2, 1).reshape(resamples * width, ks.size)
    boot_a, boot_b = (values.reshape(resamples, width) for values in fit_power_law_batch(ks, rows))
    unfitted = np.array([law is None for law in laws])
    boot_a[:, unfitted] = boot_b[:, unfitted] = np.nan
    budget_law = fit_budget_law(surface.budgets, surface.coverage, surface.ks)
    return SurfaceForecast(
        surface=surface,
        k_laws=laws,
        k_law_errors=errors,
        boot_a=boot_a,
        boot_b=boot_b,
        budget_law=budget_law if isinstance(budget_law, BudgetLaw) else None,
        budget_law_error=budget_law if isinstance(budget_law, str) else None,
    )
