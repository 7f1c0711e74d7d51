"""Laws: the power law recovers known curves; the Beta laws recover known success-rate distributions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import special, stats

from harness.forecasting.laws import BetaBinomialLaw, BetaMLE, PowerLaw, fit_power_law_batch, solvable_probability
from harness.metrics.estimators import pass_at_k


def beta_coverage(alpha: float, beta: float, k: float, zero_mass: float = 0.0) -> float:
    """Population coverage 1 - E[(1-p)^k] of a (zero-inflated) Beta, exactly."""
    return (1 - zero_mass) * -np.expm1(special.betaln(alpha, beta + k) - special.betaln(alpha, beta))


@pytest.mark.parametrize("objective", ["linear", "log"])
@pytest.mark.parametrize("a, b", [(-2.0, -0.3), (-0.5, -0.15), (-4.0, -0.6), (-1.2, -0.05)])
def test_power_law_recovers_known_parameters_within_one_percent(a, b, objective):
    ks = np.unique(np.round(np.logspace(0, 3, 25)))
    law = PowerLaw(objective).fit(ks, np.exp(a * ks**b))
    assert law.a_ == pytest.approx(a, rel=0.01)
    assert law.b_ == pytest.approx(b, rel=0.01)
    assert law.r2_ == pytest.approx(1.0, abs=1e-9)
    assert law.predict(10_000) == pytest.approx(np.exp(a * 10_000**b), rel=1e-6)


@pytest.mark.parametrize("objective", ["linear", "log"])
def test_power_law_with_noise_and_weights_stays_close(objective):
    rng = np.random.default_rng(0)
    ks = np.unique(np.round(np.logspace(0, 3, 30)))
    coverage = np.exp(-2.0 * ks**-0.3) * np.exp(rng.normal(0, 0.01, ks.size))
    law = PowerLaw(objective).fit(ks, np.clip(coverage, 0, 1), weights=np.linspace(1, 3, ks.size))
    assert law.a_ == pytest.approx(-2.0, rel=0.05)
    assert law.b_ == pytest.approx(-0.3, rel=0.05)
    assert 0.95 < law.r2_ <= 1.0


def test_linear_objective_is_the_weighted_line_through_log_minus_log_coverage():
    rng = np.random.default_rng(1)
    ks = np.array([1, 2, 4, 8, 16, 32, 64, 100], dtype=float)
    coverage = np.clip(np.exp(-1.5 * ks**-0.25 + rng.normal(0, 0.02, ks.size)), 0, 0.999)
    weights = np.linspace(1, 2, ks.size)
    slope, intercept = np.polyfit(np.log(ks), np.log(-np.log(coverage)), 1, w=np.sqrt(weights))
    law = PowerLaw("linear").fit(ks, coverage, weights)
    assert law.b_ == pytest.approx(slope, rel=1e-9)
    assert law.a_ == pytest.approx(-np.exp(intercept), rel=1e-9)
    # The two objectives weigh the points differently, so noisy data gives different fits.
    assert PowerLaw("log").fit(ks, coverage, weights).b_ != pytest.approx(slope, rel=1e-3)


@pytest.mark.parametrize("objective", ["linear", "log"])
def test_batch_fit_matches_single_fits(objective):
    ks = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=float)
    curves = np.stack([np.exp(a * ks**b) for a, b in [(-2.0, -0.3), (-1.0, -0.2), (-3.0, -0.5)]])
    curves[1, 2] *= 1.01  # one curve off the law, so the objectives disagree on it
    a, b = fit_power_law_batch(ks, curves, objective=objective)
    for row in range(3):
        single = PowerLaw(objective).fit(ks, curves[row])
        assert a[row] == pytest.approx(single.a_, rel=1e-6)
        assert b[row] == pytest.approx(single.b_, rel=1e-6)


def test_power_law_rejects_bad_input():
    with pytest.raises(ValueError, match="two k"):
        PowerLaw().fit([1, 2, 4], [0.0, 0.0, 0.1])
    with pytest.raises(ValueError, match="one length"):
        PowerLaw().fit([1, 2, 4], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PowerLaw().fit([1, 2, 4], [0.1, 0.2, 1.5])
    with pytest.raises(RuntimeError, match="before fit"):
        PowerLaw().predict(10)
    with pytest.raises(ValueError, match="unknown power-law objective"):
        PowerLaw("cubic")


@pytest.fixture(scope="module")
def beta_population():
    """3000 problems, 1000 samples each, p ~ Beta(0.2, 30): a heavy left tail, many zero counts."""
    rng = np.random.default_rng(1)
    p = rng.beta(0.2, 30.0, 3000)
    return np.full(3000, 1000), rng.binomial(1000, p)


def test_bayesian_beta_law_recovers_parameters_and_coverage_curve(beta_population):
    n, c = beta_population
    assert np.mean(c == 0) > 0.2  # the case that matters: many problems never solved in the sample
    law = BetaBinomialLaw().fit(n, c)
    assert law.alpha_ == pytest.approx(0.2, rel=0.1)
    assert law.beta_ == pytest.approx(30.0, rel=0.15)
    low, high = law.intervals_["alpha"]
    assert low <= 0.2 <= high
    for k in (10, 100, 1000, 10_000, 100_000):
        assert law.predict(k) == pytest.approx(beta_coverage(0.2, 30.0, k), abs=0.02)


def test_maximum_likelihood_beta_recovers_parameters(beta_population):
    n, c = beta_population
    law = BetaMLE().fit(n, c)
    assert law.alpha_ == pytest.approx(0.2, rel=0.1)
    assert law.beta_ == pytest.approx(30.0, rel=0.15)
    assert law.predict(10_000) == pytest.approx(beta_coverage(0.2, 30.0, 10_000), abs=0.02)
    alphas, _ = law.bootstrap(100, seed=0)
    assert np.quantile(alphas, 0.02) <= 0.2 <= np.quantile(alphas, 0.98)


def test_zero_inflated_law_finds_the_unsolvable_share():
    rng = np.random.default_rng(2)
    p = rng.beta(0.5, 20.0, 3000)
    p[rng.random(3000) < 0.3] = 0.0
    c = rng.binomial(1000, p)
    law = BetaBinomialLaw(zero_inflated=True).fit(np.full(3000, 1000), c)
    low, high = law.intervals_["zero_mass"]
    assert low <= 0.3 <= high
    assert high - low < 0.2
    for k in (100, 10_000):
        assert law.predict(k) == pytest.approx(beta_coverage(0.5, 20.0, k, 0.3), abs=0.03)
    # Without the zero mass the same data look like an ever-rising curve.
    assert BetaBinomialLaw().fit(np.full(3000, 1000), c).predict(1e6) > law.predict(1e6) + 0.05


def test_forecast_conditions_on_the_problems_at_hand():
    n = np.full(200, 100)
    c = np.r_[np.zeros(120, dtype=int), np.arange(1, 81)]
    law = BetaBinomialLaw().fit(n, c)
    coverage, low, high = law.forecast(10_000)
    # Solved problems stay solved: the forecast never falls below the pilot's coverage.
    assert 80 / 200 <= low <= coverage <= high <= 1
    # At k <= n the forecast is the pilot's unbiased pass@k, with nothing left to chance.
    value, low, high = law.forecast(50)
    assert value == low == high == pytest.approx(pass_at_k(n, c, 50).mean())


def test_beta_laws_reject_bad_counts():
    with pytest.raises(ValueError, match="num_correct"):
        BetaBinomialLaw().fit([10, 10], [3, 11])
    with pytest.raises(ValueError, match="at least one sample"):
        BetaBinomialLaw().fit([10, 0], [3, 0])
    with pytest.raises(ValueError):
        BetaMLE().fit([], [])
    with pytest.raises(RuntimeError, match="before fit"):
        BetaBinomialLaw().predict(10)


def test_power_law_survives_a_json_round_trip_unchanged():
    ks = 2.0 ** np.arange(8)
    law = PowerLaw().fit(ks, np.exp(-2.0 * ks**-0.4))
    stored = json.loads(json.dumps(law.to_json()))
    assert stored["ks"] == [int(k) for k in ks] and stored["law"] == "log(coverage) = a * k^b"
    again = PowerLaw.from_json(stored)
    assert again.params == law.params and again.predict(1e5) == law.predict(1e5)


def test_solvable_probability_is_bayes_rule_on_the_zero_count():
    a, b, zero_mass = 0.4, 30.0, 0.3
    n, c = np.array([10, 100, 1000, 100]), np.array([0, 0, 0, 3])
    no_success = stats.betabinom.pmf(0, n, a, b)  # P(c = 0 | the rate comes from the Beta part)
    expected = np.where(c == 0, (1 - zero_mass) * no_success / (zero_mass + (1 - zero_mass) * no_success), 1.0)
    solvable = solvable_probability(a, b, zero_mass, n, c)
    assert solvable == pytest.approx(expected, rel=1e-12)
    assert solvable[0] > solvable[1] > solvable[2] and solvable[3] == 1.0  # more failures, likelier unsolvable
    assert np.all(solvable_probability(a, b, 0.0, n, c) == 1.0)  # no atom at 0: everything is solvable
    grid = solvable_probability(np.array([0.2, 0.4])[None, :], b, zero_mass, n[:, None], c[:, None])
    assert grid.shape == (4, 2) and grid[:, 1] == pytest.approx(solvable)
