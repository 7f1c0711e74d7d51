"""The laws of a set of counts, each fitted once, and what a run's analysis derives from them.

``fit_laws`` fits the coverage power law (``fit_power_law``) and the forecasting model (``auto`` unless asked
otherwise) once; counts with too few successes for a law (``law_refusal``) get neither, and the forecasting
model is then ``BoundModel``: no point estimate beyond the samples, only the bounds they support. The summary's
``fit``, ``forecast`` and ``budget``, the forecast band of coverage.png, and ``compare``'s targets and
compute-matched coverage all read these two fits, so every output of a run shows the same law and the same
forecast, and none refits them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.errors import check_number
from harness.forecasting.budget import K_LIMIT, target_ks
from harness.forecasting.costs import Usage, cost_of
from harness.forecasting.forecast import (
    DEFAULT_CONFIDENCE,
    CoverageModel,
    CurveForecast,
    Forecast,
    fit_model,
    fit_power_law,
    law_refusal,
    model_curve,
    model_forecast,
)
from harness.forecasting.laws import PowerLaw
from harness.metrics.counts import Counts

FORECAST_FACTOR = 10  # the summary forecasts coverage at 10 x the sampled k
BUDGET_TARGETS = (0.5, 0.8, 0.9, 0.95)  # coverage targets of the summary's budget rows


@dataclass
class FittedLaws:
    """A set of counts with its power law and its forecasting model (fitted as ``method``; ``auto`` picks one;
    ``BoundModel`` where the counts are too few for a law), each None where it cannot be fitted (the reason
    in ``errors["fit"]`` or ``errors["forecast"]``)."""

    counts: Counts
    method: str
    confidence: float
    power_law: PowerLaw | None
    model: CoverageModel | None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def sampled_k(self) -> int:
        return int(self.counts.num_samples.min())

    def summary(self, forecast_factor: int = FORECAST_FACTOR) -> dict[str, Any]:
        """The summary's ``fit`` (the power law) and ``forecast`` (the model at ``forecast_factor`` x the
        sampled k, with its interval; ``coverage`` None and a ``note`` where the counts support only bounds);
        either None, with ``fit_error`` or ``forecast_error``, when missing."""
        result: dict[str, Any] = {"fit": None, "forecast": None}
        if self.power_law is None:
            result["fit_error"] = self.errors["fit"]
        else:
            result["fit"] = self.power_law.to_json()
        point = self.forecast(forecast_factor * self.sampled_k)
        if point is None:
            result["forecast_error"] = self.errors["forecast"]
        else:
            result["forecast"] = {"k": point.k, **point.to_json(), "confidence": point.confidence}
        return result

    def forecast(self, k: int) -> Forecast | None:
        """The model's forecast at k with its interval (None without a model)."""
        return None if self.model is None else model_forecast(self.model, k, self.confidence)

    def curve(self, ks: Sequence[int] | np.ndarray) -> CurveForecast | None:
        """The model's forecast at every k of ``ks`` (None without a model)."""
        return None if self.model is None else model_curve(self.model, ks, self.confidence)

    def budget(
        self, usage: Usage, targets: Sequence[float] = BUDGET_TARGETS, k_limit: int = K_LIMIT
    ) -> dict[str, Any] | None:
        """The summary's ``budget``: per target coverage, the k where the forecast reaches it (and where its
        interval's top and bottom do), the forecast there and what bringing every problem to k costs, before
        any price (``Cost.priced`` adds money); None without a model. Where the counts support only bounds,
        no k reaches a target by a forecast: ``k_optimistic`` is then the fewest samples that the bound's top
        allows, and ``note`` says why."""
        if self.model is None:
            return None
        rows = []
        for target in targets:
            reached = target_ks(self.model, target, self.confidence, k_limit)
            point = reached.forecast
            forecast = None if point is None else {"coverage": point.coverage, "low": point.low, "high": point.high}
            rows.append(
                {
                    "target": target,
                    "k": reached.k,
                    "k_optimistic": reached.k_optimistic,
                    "k_conservative": reached.k_conservative,
                    "measured": reached.k is not None and reached.k <= self.sampled_k,
                    "forecast": forecast,
                    "cost": None if reached.k is None else cost_of(reached.k, self.counts, usage).to_json(),
                }
            )
        budget = {"method": self.model.name, "confidence": self.confidence, "k_limit": k_limit, "targets": rows}
        note = getattr(self.model, "reason", None)
        return budget if note is None else {**budget, "note": note}


def fit_laws(counts: Counts, method: str = "auto", confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> FittedLaws:
    """Fit the counts' power law and their forecasting model ``method``, once each."""
    check_number("confidence", confidence, above=0, below=1)
    errors: dict[str, str] = {}
    power_law = model = None
    try:
        model = fit_model(counts, method, seed)
    except ValueError as error:
        errors["forecast"] = str(error)
    refusal = law_refusal(counts) if model is not None else None
    if refusal is not None:
        errors["fit"] = refusal
    else:
        try:
            power_law = fit_power_law(counts)
        except ValueError as error:
            errors["fit"] = str(error)
    return FittedLaws(counts, method, confidence, power_law, model, errors)
