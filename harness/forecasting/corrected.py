"""Forecasts and budgets from pass@k corrected for the verifier's errors (``--corrected``).

The corrected estimate (``harness.metrics.verifier_error``) fits the distribution of the problems' *true*
success rates by binomial deconvolution, given the verifier's false-positive and false-negative rates. That
distribution gives pass@k at any k, beyond the run's n too: ``CorrectedModel`` is the forecasting model
(``harness.forecasting.forecast.CoverageModel``) whose forecast at k is ``1 - E[(1 - theta)^k]`` under it, and
whose interval is the percentile interval of the bootstrap replicates (problems resampled, error rates drawn
from their uncertainty) at k. Beyond n it extrapolates as a nonparametric law does: the mass the fit puts on
rates below 1/n is what the forecast at large k turns on, and the interval widens there accordingly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.metrics.counts import Counts
from harness.metrics.verifier_error import DEFAULT_RESAMPLES, CorrectedCoverage, ErrorRate, corrected_coverage

METHOD = "corrected"


class CorrectedModel:
    """The deconvolved distribution of true success rates as a forecasting model (see the module docstring)."""

    name = METHOD

    def __init__(
        self,
        false_positive_rate: ErrorRate | float,
        false_negative_rate: ErrorRate | float,
        *,
        resamples: int = DEFAULT_RESAMPLES,
        seed: int = 0,
    ) -> None:
        self.false_positive_rate = false_positive_rate
        self.false_negative_rate = false_negative_rate
        self.resamples = resamples
        self.seed = seed
        self.sampled_k = 0
        self.estimate: CorrectedCoverage | None = None

    def fit(self, counts: Counts) -> CorrectedModel:
        self.estimate = corrected_coverage(
            counts.num_samples,
            counts.num_correct,
            self.false_positive_rate,
            self.false_negative_rate,
            ks=[1],
            resamples=self.resamples,
            seed=self.seed,
        )
        self.sampled_k = int(np.min(counts.num_samples))
        return self

    def _fitted(self) -> CorrectedCoverage:
        if self.estimate is None:
            raise ValueError("the corrected model is not fitted yet")
        return self.estimate

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]:
        estimate = self._fitted()
        low, high = estimate.curve_interval([k], confidence)
        return float(estimate.curve([k])[0]), float(low[0]), float(high[0])

    def describe(self) -> dict[str, Any]:
        estimate = self._fitted()
        return {
            "method": METHOD,
            "false_positive_rate": estimate.false_positive_rate.to_dict(),
            "false_negative_rate": estimate.false_negative_rate.to_dict(),
            "resamples": estimate.resamples,
            "resolution": estimate.resolution,
        }
