"""Figures are written as PNG files and accept both a fitted PowerLaw and forecast curves."""

from __future__ import annotations

import numpy as np

from harness.forecasting.laws import PowerLaw
from harness.metrics.counts import Counts
from harness.reporting.figures import forecast_ks, law_curves, observed_curve, plot_budget, plot_coverage


def counts() -> Counts:
    rng = np.random.default_rng(0)
    return Counts(np.full(100, 100), rng.binomial(100, rng.beta(0.3, 10.0, 100)), np.arange(100).astype(object))


def test_plot_coverage_with_laws_and_bands(tmp_path):
    pilot = counts()
    ks, mean, low, high = observed_curve(pilot)
    assert np.all(low <= mean) and np.all(mean <= high)
    laws = {"power law": PowerLaw().fit(ks, mean), **law_curves(pilot, ["bayes", "powerlaw"], 10_000)}
    path = plot_coverage(tmp_path / "coverage.png", ks, mean, low, high, laws=laws, forecast_k=10_000)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plot_budget(tmp_path):
    pilot = counts()
    curve = law_curves(pilot, ["bayes"], 100_000)["bayes"]
    assert 100 in forecast_ks(100, 100_000)
    path = plot_budget(tmp_path / "budget.png", curve, pilot, target=0.8)
    assert path.read_bytes()[:4] == b"\x89PNG"
