"""One measured coverage (pass@k with a bootstrap interval over problems): the summary's table, the figures'
points, compare's measured cells and every forecast model below the sampled k show ``measured_coverage``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.forecasting.forecast import METHODS, make_model
from harness.metrics.analysis import coverage_summary, measured_coverage
from harness.metrics.counts import Counts
from harness.reporting.compare import _coverage_at
from harness.reporting.figures import observed_curve


def pilot(problems: int = 40, samples: int = 64) -> Counts:
    rng = np.random.default_rng(7)
    correct = rng.binomial(samples, rng.beta(0.4, 4.0, problems))
    return Counts(np.full(problems, samples), correct, np.array([f"p{i}" for i in range(problems)], dtype=object))


def test_measured_coverage_is_the_mean_unbiased_pass_at_k_with_an_interval_around_it():
    counts = pilot()
    measured = measured_coverage(counts, [1, 3, 64], confidence=0.9, seed=3)
    for k, value in zip([1, 3, 64], measured.mean):
        by_hand = np.mean(
            [
                1 - math.comb(int(n - c), k) / math.comb(int(n), k)
                for n, c in zip(counts.num_samples, counts.num_correct)
            ]
        )
        assert value == pytest.approx(by_hand, rel=1e-12)
    assert np.all(measured.low < measured.mean) and np.all(measured.mean < measured.high)
    narrower = measured_coverage(counts, [1, 3, 64], confidence=0.5, seed=3)
    assert np.all(measured.low < narrower.low) and np.all(narrower.high < measured.high)
    assert measured.at(3) == (measured.mean[1], measured.low[1], measured.high[1])


def test_summary_figures_compare_and_forecasts_show_the_same_measured_coverage():
    counts = pilot()
    summary = coverage_summary(counts)
    table = measured_coverage(counts, [row["k"] for row in summary["pass_at_k"]], confidence=0.95)
    assert [(row["coverage"], row["low"], row["high"]) for row in summary["pass_at_k"]] == list(zip(*table[1:]))
    assert [row["coverage"] for row in summary["pass_at_k"]] == pytest.approx(
        [summary["coverage_all_k"][row["k"] - 1] for row in summary["pass_at_k"]], rel=1e-12
    )
    figure = observed_curve(counts, 0.9)
    assert len(figure.ks) > len(table.ks), "the figure's points are denser than the table's"
    again = measured_coverage(counts, figure.ks, 0.9)
    assert all(np.array_equal(drawn, measured) for drawn, measured in zip(figure, again))
    expected = measured_coverage(counts, [16], 0.9).at(16)
    for method in METHODS:
        model = make_model(method).fit(counts)
        assert model.interval(16, 0.9) == expected, method
    cell = _coverage_at(counts, model, 16, 0.9)
    assert (cell["coverage"], cell["low"], cell["high"], cell["source"]) == (*expected, "measured")
