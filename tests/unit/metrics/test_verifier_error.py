"""pass@k corrected for verifier error: on simulated runs with known false-positive and false-negative rates the
corrected curve recovers the true coverage within its interval (at about the nominal rate over repeated
simulations), where the raw curve does not."""

import json

import numpy as np
import pytest
from scipy.special import betaln

from harness.core.errors import OptionError
from harness.metrics.agreement import agreement
from harness.metrics.verifier_error import (
    ErrorRate,
    corrected_coverage,
    error_rates_from_agreement,
    success_rate_grid,
)

KS = np.array([1, 2, 4, 8, 16, 32, 64])


def simulated_run(rng, problems: int, samples: int, fpr: float, fnr: float):
    """Verified counts of a run whose true success rates are 0 for 30% of problems and Beta(0.5, 2) otherwise."""
    theta = rng.beta(0.5, 2.0, problems)
    theta[rng.random(problems) < 0.3] = 0.0
    truly_correct = rng.binomial(samples, theta)
    verified = truly_correct - rng.binomial(truly_correct, fnr) + rng.binomial(samples - truly_correct, fpr)
    return np.full(problems, samples), verified


def true_coverage(ks: np.ndarray) -> np.ndarray:
    """Population pass@k of that law: 0.7 (1 - E[(1 - theta)^k]) with theta ~ Beta(0.5, 2)."""
    return 0.7 * (1 - np.exp(betaln(0.5, 2.0 + ks) - betaln(0.5, 2.0)))


def test_corrected_intervals_cover_the_truth_at_about_their_nominal_rate_and_the_raw_ones_do_not():
    rng = np.random.default_rng(0)
    truth = true_coverage(KS)
    simulations = 40
    corrected_hits = np.zeros(KS.size)
    raw_hits = np.zeros(KS.size)
    for simulation in range(simulations):
        n, c = simulated_run(rng, 150, 64, fpr=0.05, fnr=0.1)
        # the rates as an audit would give them: 400 truly wrong and 300 truly correct samples re-judged
        fpr = ErrorRate.from_counts(rng.binomial(400, 0.05), 400)
        fnr = ErrorRate.from_counts(rng.binomial(300, 0.1), 300)
        result = corrected_coverage(n, c, fpr, fnr, KS, resamples=100, seed=simulation)
        corrected_hits += (result.low <= truth) & (truth <= result.high)
        raw_hits += (result.raw_low <= truth) & (truth <= result.raw_high)
    corrected_rate, raw_rate = corrected_hits / simulations, raw_hits / simulations
    # nominal 0.95; with 40 simulations an observed rate below 0.8 would be a real shortfall
    assert corrected_rate.min() >= 0.8 and corrected_rate.mean() >= 0.88, corrected_rate
    assert raw_rate[2:].max() <= 0.05, raw_rate  # false positives lift the raw curve far above the truth


def test_without_errors_the_corrected_curve_is_the_raw_one():
    rng = np.random.default_rng(1)
    n, c = simulated_run(rng, 300, 100, fpr=0.0, fnr=0.0)
    result = corrected_coverage(n, c, 0.0, 0.0, KS)
    half_width = (result.raw_high - result.raw_low) / 2
    assert np.all(np.abs(result.corrected - result.raw) < 0.25 * half_width), (result.corrected, result.raw)
    assert result.too_few_correct == 0 and result.too_many_correct == 0


def test_corrected_pass_at_1_is_the_moment_estimate_and_larger_k_fall_below_raw():
    rng = np.random.default_rng(2)
    n, c = simulated_run(rng, 400, 200, fpr=0.08, fnr=0.05)
    result = corrected_coverage(n, c, 0.08, 0.05, KS)
    moment = ((c / n).mean() - 0.08) / (1 - 0.08 - 0.05)
    assert result.corrected[0] == pytest.approx(moment, abs=0.005)
    assert np.all(result.corrected[1:] < result.raw_low[1:])
    assert np.all(np.diff(result.corrected) >= 0) and np.all(result.low <= result.corrected)
    assert np.all(result.corrected <= result.high)
    # the fitted distribution gives the curve at any k, and the problems' posteriors average to it
    np.testing.assert_allclose(result.curve(KS), result.corrected, atol=1e-12)
    np.testing.assert_allclose(result.per_problem(n, c, KS).mean(axis=0), result.corrected, atol=2e-3)
    assert result.weights.sum() == pytest.approx(1) and result.weights[0] > 0.2  # the never-solved problems


def test_rate_uncertainty_widens_the_interval():
    rng = np.random.default_rng(3)
    n, c = simulated_run(rng, 200, 64, fpr=0.05, fnr=0.1)
    known = corrected_coverage(n, c, 0.05, 0.1, KS, seed=1)
    small_audit = corrected_coverage(n, c, ErrorRate.from_counts(2, 40), ErrorRate.from_counts(3, 30), KS, seed=1)
    assert np.all(small_audit.high - small_audit.low > known.high - known.low)
    assert small_audit.corrected == pytest.approx(known.corrected)  # the same point rates


def test_overstated_rates_are_flagged():
    # a perfect verifier's counts: 40 problems never solved, 10 always, 50 in between
    c = np.concatenate([np.zeros(40, dtype=int), np.full(10, 200), np.arange(50) * 4])
    result = corrected_coverage(np.full(100, 200), c, 0.2, 0.2, KS)
    assert result.too_few_correct >= 40  # the unsolved problems show none of the claimed false positives
    assert result.too_many_correct >= 10  # and the always-solved ones none of the false negatives
    honest = corrected_coverage(np.full(100, 200), c, 0.0, 0.0, KS)
    assert honest.too_few_correct == honest.too_many_correct == 0


def test_error_rates_come_from_an_agreement_file():
    rng = np.random.default_rng(5)
    problems = np.repeat(np.arange(100), 20)
    truth = rng.random(2000) < 0.5
    verdicts = np.where(truth, rng.random(2000) >= 0.1, rng.random(2000) < 0.05)
    data = json.loads(json.dumps(agreement(verdicts, truth, problems).to_dict()))
    fpr, fnr = error_rates_from_agreement(data)
    assert fpr.value == pytest.approx(data["false_positive_rate"]["value"])
    assert fnr.value == pytest.approx(data["false_negative_rate"]["value"])
    assert fpr.distribution == "beta" and sum(fpr.parameters) == pytest.approx(
        data["false_positive_rate"]["effective_total"] + 1
    )
    with pytest.raises(OptionError) as caught:
        error_rates_from_agreement({"false_positive_rate": {"value": 0.1, "total": 10}})
    assert caught.value.option == "verifier_error_from"


def test_error_rate_draws_stay_in_range_and_follow_their_posterior():
    rng = np.random.default_rng(6)
    audit = ErrorRate.from_counts(10, 200)
    draws = audit.draw(rng, 20_000)
    assert draws.mean() == pytest.approx(10.5 / 201, rel=0.02) and draws.min() >= 0
    wide = ErrorRate.from_standard_error(0.4, 0.2).draw(rng, 20_000)
    assert wide.min() >= 0 and wide.max() < 0.5
    interval = ErrorRate.from_interval(0.02, 0.06)
    assert interval.value == pytest.approx(0.04) and interval.parameters[1] == pytest.approx(0.02 / 1.96, rel=1e-3)
    assert np.all(ErrorRate.known(0.1).draw(rng, 5) == 0.1)


@pytest.mark.parametrize("fpr,fnr", [(0.5, 0.1), (0.1, 0.7), (-0.01, 0.1), (float("nan"), 0.1), ("x", 0.1)])
def test_rates_outside_zero_to_one_half_are_refused(fpr, fnr):
    with pytest.raises(OptionError) as caught:
        corrected_coverage([10, 10], [3, 4], fpr, fnr)
    assert caught.value.option == "verifier_error"


def test_bad_rate_objects_and_ks_are_refused():
    for make in (
        lambda: ErrorRate.known(0.5),
        lambda: ErrorRate.from_counts(300, 500),
        lambda: ErrorRate.from_counts(5, 0),
        lambda: ErrorRate.from_counts(6, 5),
        lambda: ErrorRate.from_interval(0.1, 0.6),
        lambda: ErrorRate.from_interval(0.2, 0.1),
        lambda: ErrorRate.from_standard_error(0.1, -1),
    ):
        with pytest.raises(OptionError) as caught:
            make()
        assert caught.value.option == "verifier_error"
    with pytest.raises(OptionError, match="ks"):
        corrected_coverage([10, 10], [3, 4], 0.1, 0.1, [1, 11])
    with pytest.raises(ValueError, match="c > n"):
        corrected_coverage([10, 10], [3, 11], 0.1, 0.1)


def test_success_rate_grid_resolves_rates_near_one_over_n():
    grid = success_rate_grid(10_000)
    assert grid[0] == 0 and grid[-1] == 1 and grid[1] <= 1e-5 and np.all(np.diff(grid) > 0)


def test_large_runs_end_and_stay_finite():
    rng = np.random.default_rng(7)
    n, c = simulated_run(rng, 1000, 1000, fpr=0.05, fnr=0.1)
    result = corrected_coverage(n, c, ErrorRate.from_counts(20, 400), ErrorRate.from_counts(30, 300))
    assert result.ks[-1] == 1000 and np.all(np.isfinite(result.low)) and np.all(np.isfinite(result.high))
    assert result.raw[-1] > 0.95 and result.corrected[-1] < 0.8  # the raw curve counts false positives as solves
    json.dumps(result.to_dict())
