"""The samples x thinking surface (measured) and its laws in k and in B."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.planner import synthetic_sweep
from harness.core.errors import OptionError
from harness.core.forcing import check_budget_forcing
from harness.forecasting.laws import PowerLaw
from harness.forecasting.surface_laws import BUDGET_LAWS, fit_budget_law, fit_surface_laws
from harness.metrics.estimators import bootstrap_mean_interval, log_spaced_ks, pass_at_k
from harness.metrics.selection import majority_vote_curves
from harness.metrics.surface import check_budgets, measure_surface, pareto_front

BUDGETS = [256, 512, 1024, 2048, 4096]


def sweep(problems: int, samples: int, budgets=BUDGETS, seed: int = 0):
    """A synthetic one-trace sweep (the benchmark's): verdicts, answer ids and tokens per (problem, sample, B)."""
    return synthetic_sweep(problems, samples, budgets, seed)[:3]


def test_coverage_at_every_k_and_budget_is_the_unbiased_estimator():
    correct, answers, tokens = sweep(40, 12)
    surface = measure_surface(correct, BUDGETS, answers=answers, tokens=tokens, resamples=300, seed=3)
    assert surface.coverage.shape == (12, len(BUDGETS)) and surface.ks.tolist() == list(range(1, 13))
    num_correct = correct.sum(axis=1)
    for column in range(len(BUDGETS)):
        per_problem = pass_at_k(np.full((40, 1), 12), num_correct[:, column, None], np.arange(1, 13)[None, :])
        np.testing.assert_allclose(surface.coverage[:, column], per_problem.mean(axis=0), atol=1e-12)
        # one set of resampled problems for every budget: each budget's interval is the bootstrap's over it alone
        low, high = bootstrap_mean_interval(per_problem, confidence=0.9, resamples=300, seed=3)
        np.testing.assert_allclose(surface.coverage_low[:, column], low, atol=1e-12)
        np.testing.assert_allclose(surface.coverage_high[:, column], high, atol=1e-12)
        assert surface.solved[column] == int((num_correct[:, column] > 0).sum())
    assert np.all(surface.coverage_low <= surface.coverage) and np.all(surface.coverage <= surface.coverage_high)
    assert surface.coverage_resampled.shape == (300, 12, len(BUDGETS))
    np.testing.assert_allclose(surface.tokens_per_sample, tokens.mean(axis=(0, 1)))
    assert surface.at(4, 1024) == (
        surface.coverage[3, 2],
        surface.coverage_low[3, 2],
        surface.coverage_high[3, 2],
    )


def test_majority_vote_is_the_selection_estimator_per_budget():
    correct, answers, _ = sweep(30, 8)
    surface = measure_surface(correct, BUDGETS, answers=answers, resamples=200)
    assert surface.vote_method == "exact" and surface.vote_ks.tolist() == [1, 2, 4, 8]
    for column in range(len(BUDGETS)):
        exact = majority_vote_curves(list(answers[:, :, column]), list(correct[:, :, column]), [1, 2, 4, 8])
        np.testing.assert_allclose(surface.majority[:, column], exact.mean(), atol=1e-12)
        low, high = bootstrap_mean_interval(exact.values, confidence=0.9, resamples=200, seed=0)
        np.testing.assert_allclose(surface.majority_low[:, column], low, atol=1e-12)
        np.testing.assert_allclose(surface.majority_high[:, column], high, atol=1e-12)
    np.testing.assert_array_equal(surface.majority_error, 0.0)
    assert np.all(surface.majority_low <= surface.majority) and np.all(surface.majority <= surface.majority_high)
    # Monte-Carlo (the path for large surfaces) agrees within its reported error
    sampled = measure_surface(correct, BUDGETS, answers=answers, resamples=200, vote_subsets=400, seed=1)
    assert sampled.vote_method.startswith("monte-carlo (400")
    assert np.all(np.abs(sampled.majority - surface.majority) <= 5 * sampled.majority_error + 1e-9)
    assert np.any(sampled.majority_error > 0)


def test_frontier_is_the_pareto_set_of_tokens_and_coverage():
    correct, _answers, tokens = sweep(25, 10)
    surface = measure_surface(correct, BUDGETS, tokens=tokens, resamples=50)
    cost = surface.tokens_per_problem()
    np.testing.assert_allclose(cost, np.arange(1, 11)[:, None] * tokens.mean(axis=(0, 1))[None, :])
    frontier = {(point.k, point.budget) for point in surface.frontier()}
    brute = set()
    for r in range(10):
        for c in range(len(BUDGETS)):
            dominated = any(
                (cost[r2, c2] <= cost[r, c] and surface.coverage[r2, c2] > surface.coverage[r, c])
                or (cost[r2, c2] < cost[r, c] and surface.coverage[r2, c2] >= surface.coverage[r, c])
                for r2 in range(10)
                for c2 in range(len(BUDGETS))
            )
            if not dominated:
                brute.add((r + 1, BUDGETS[c]))
    assert frontier == brute
    costs = [point.cost for point in surface.frontier()]
    coverages = [point.coverage for point in surface.frontier()]
    assert costs == sorted(costs) and coverages == sorted(coverages)
    summary = json.loads(json.dumps(surface.to_json()))
    assert [entry["budget"] for entry in summary["per_budget"]] == BUDGETS
    assert [row["k"] for row in summary["per_budget"][0]["pass_at_k"]] == [1, 2, 4, 8, 10]
    assert len(summary["frontier"]) == len(frontier)
    assert measure_surface(correct, BUDGETS, resamples=50).frontier() == []


def test_pareto_front_keeps_the_first_of_equal_points():
    assert pareto_front(np.array([1.0, 1.0, 2.0, 0.5]), np.array([0.3, 0.3, 0.2, 0.1])).tolist() == [3, 0]


@pytest.mark.parametrize(
    "budgets, message",
    [
        ([512, 512, 1024], "budget 512 is repeated"),
        ([1024, 512], "must be increasing, got 512 after 1024"),
        ([0, 512], "at least 1 token"),
        ([256.5, 512], "whole numbers"),
        ([], "non-empty"),
    ],
)
def test_bad_budgets_are_named(budgets, message):
    with pytest.raises(OptionError, match=message) as error:
        check_budgets(budgets, "thinking_budgets")
    assert error.value.option == "thinking_budgets"


def test_bad_surface_input_is_named():
    correct, answers, tokens = sweep(5, 4)
    cases = [
        ({"correct": correct, "budgets": BUDGETS[::-1]}, "budgets"),
        ({"correct": correct, "budgets": BUDGETS[:3]}, "budgets"),
        ({"correct": correct[:, :, 0], "budgets": BUDGETS}, "correct"),
        ({"correct": correct * 2, "budgets": BUDGETS}, "correct"),
        ({"correct": correct, "budgets": BUDGETS, "answers": answers[:, :2]}, "answers"),
        ({"correct": correct, "budgets": BUDGETS, "tokens": -tokens}, "tokens"),
        ({"correct": correct, "budgets": BUDGETS, "confidence": 1.0}, "confidence"),
    ]
    for arguments, option in cases:
        with pytest.raises(OptionError) as error:
            measure_surface(**arguments)
        assert error.value.option == option, arguments.keys()


def test_budget_forcing_settings_are_checked():
    check_budget_forcing(1024, 512, 256)
    check_budget_forcing(None, 1)
    for arguments, option in [
        ((0, 512), "thinking_budget"),
        ((1024, 0), "answer_tokens"),
        ((1024, 512, 2048), "min_thinking"),
        ((1024, 512, -1), "min_thinking"),
        ((1024.5, 512), "thinking_budget"),
    ]:
        with pytest.raises(OptionError) as error:
            check_budget_forcing(*arguments)
        assert error.value.option == option


def test_power_law_in_k_at_each_budget_and_its_forecast():
    correct, _answers, tokens = sweep(60, 16)
    surface = measure_surface(correct, BUDGETS, tokens=tokens, resamples=300)
    forecast = fit_surface_laws(surface)
    ks = log_spaced_ks(16)
    for column in range(len(BUDGETS)):
        law = PowerLaw().fit(ks, surface.coverage[ks - 1, column])
        assert forecast.k_laws[column].a_ == pytest.approx(law.a_) and forecast.k_laws[column].b_ == pytest.approx(
            law.b_
        )
        mean, low, high = forecast.coverage([3, 16, 17, 160], column)
        assert mean[:2].tolist() == [surface.coverage[2, column], surface.coverage[15, column]]
        np.testing.assert_allclose(mean[2:], law.predict([17, 160]))
        assert np.all(low <= mean) and np.all(mean <= high) and np.all(high[2:] > low[2:])
    grid, grid_low, grid_high = forecast.grid(40)
    assert grid.shape == (40, len(BUDGETS)) and np.all(np.isfinite(grid))
    assert np.all(grid_low <= grid) and np.all(grid <= grid_high)
    summary = json.loads(json.dumps(forecast.to_json()))
    assert [entry["budget"] for entry in summary["k_laws"]] == BUDGETS
    assert summary["budget_law"]["law"] in BUDGET_LAWS


def test_a_budget_without_a_law_forecasts_only_what_is_certain():
    correct = np.zeros((6, 4, 4), dtype=bool)
    correct[:, :, 2:] = True  # the two long budgets solve everything; the short ones nothing
    forecast = fit_surface_laws(measure_surface(correct, [1, 2, 4, 8], resamples=20))
    assert forecast.k_laws == [None] * 4 and all(forecast.k_law_errors)
    assert np.isnan(forecast.coverage([8], 0)[0]).all()
    assert forecast.coverage([8], 3)[0].tolist() == [1.0]


@pytest.mark.parametrize(
    "law, truth",
    [
        ("logistic-log", lambda b: 0.85 / (1 + np.exp(-(1.3 * np.log(b) - 8.0)))),
        ("saturating-exp", lambda b: 0.9 - 0.7 * np.exp(-b / 3000.0)),
    ],
)
def test_the_law_in_budget_is_chosen_by_held_out_fit(law, truth):
    budgets = np.array([256, 512, 1024, 2048, 4096, 8192, 16384], dtype=float)
    rng = np.random.default_rng(0)
    ks = np.arange(1, 9)
    rows = np.clip(truth(budgets)[None, :] ** (1.0 / ks[:, None] ** 0.3) + rng.normal(0, 0.002, (8, 7)), 0, 1)
    fitted = fit_budget_law(budgets, rows, ks)
    assert fitted.name == law, fitted.held_out
    assert fitted.held_out[law] == min(fitted.held_out.values()) and fitted.held_out[law] < 0.02
    assert fitted.held_out_budgets == [4096, 8192, 16384] and fitted.held_out_rows == 8
    assert np.all(fitted.rmse < 0.02) and np.all(fitted.r2 > 0.99)
    np.testing.assert_allclose(fitted.predict(1, budgets), rows[0], atol=0.02)
    summary = fitted.to_json()
    assert summary["law"] == law and set(summary["held_out_rmse"]) == set(BUDGET_LAWS)
    assert [row["k"] for row in summary["at_k"]] == [1, 2, 4, 8]


def test_too_few_budgets_for_a_law_in_budget_is_said():
    correct, _, _ = sweep(20, 4, budgets=[256, 1024, 4096])
    forecast = fit_surface_laws(measure_surface(correct, [256, 1024, 4096], resamples=20))
    assert forecast.budget_law is None and "at least 4 thinking budgets" in forecast.budget_law_error
    # four budgets: only two-parameter laws can hold one out
    law = fit_budget_law(np.array([1.0, 2, 4, 8]), np.array([[0.1, 0.2, 0.3, 0.35]]), np.array([1]))
    assert set(law.held_out) == {"power-law", "log-linear"} and law.held_out_budgets == [8]
    assert math.isfinite(law.held_out[law.name])
