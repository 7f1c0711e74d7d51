"""Selector estimators against brute-force enumeration over every k-subset."""

import itertools

import numpy as np
import pytest

from harness.engines.reward_steps import aggregate_steps, split_steps
from harness.metrics.selection import (
    best_of_k,
    best_of_k_curves,
    encode_answers,
    majority_vote_curves,
    majority_vote_exact,
    weighted_vote_curves,
)


def brute_force_vote(answers, correct, weights, k):
    """Mean over all k-subsets of the winning answer's correctness (ties split evenly), written plainly.

    An answer's correctness is the share of the problem's samples with that answer judged correct.
    """
    n = len(answers)
    by_answer = {}
    for answer, right in zip(answers, correct):
        if answer >= 0:
            by_answer.setdefault(answer, []).append(right)
    share = {answer: sum(values) / len(values) for answer, values in by_answer.items()}
    total = 0.0
    subsets = list(itertools.combinations(range(n), k))
    for subset in subsets:
        support = {}
        for i in subset:
            if answers[i] >= 0:
                support[answers[i]] = support.get(answers[i], 0) + (1 if weights is None else weights[i])
        if support:
            top = max(support.values())
            tied = [answer for answer, value in support.items() if value == top]
            total += sum(share[answer] for answer in tied) / len(tied)
    return total / len(subsets)


def brute_force_best_of_k(scores, correct, k):
    subsets = list(itertools.combinations(range(len(scores)), k))
    total = 0.0
    for subset in subsets:
        top = max(scores[i] for i in subset)
        tied = [i for i in subset if scores[i] == top]
        total += sum(correct[i] for i in tied) / len(tied)
    return total / len(subsets)


def random_problem(rng, n=None):
    n = n or int(rng.integers(1, 11))
    answers = rng.integers(-1, int(rng.integers(1, 5)), size=n)
    correct = rng.random(n) < 0.4
    # dyadic scores with ties: sums are exact in floating point, so "equal sums" means the same everywhere
    scores = rng.integers(-3, 4, size=n) / 4.0
    return answers, correct, scores


def test_every_estimator_equals_enumeration_on_small_random_problems():
    rng = np.random.default_rng(7)
    for _ in range(60):
        answers, correct, scores = random_problem(rng)
        n = len(answers)
        ks = np.arange(1, n + 1)
        expected_majority = [brute_force_vote(answers, correct, None, k) for k in ks]
        expected_weighted = [brute_force_vote(answers, correct, scores, k) for k in ks]
        expected_best = [brute_force_best_of_k(scores, correct, k) for k in ks]
        np.testing.assert_allclose(majority_vote_exact(answers, correct, n), expected_majority, atol=1e-12)
        majority = majority_vote_curves([answers], [correct], ks)
        assert majority.exact.all() and majority.subsets == 0
        np.testing.assert_allclose(majority.values[0], expected_majority, atol=1e-12)
        weighted = weighted_vote_curves([answers], [correct], [scores], ks)
        assert weighted.exact.all()
        np.testing.assert_allclose(weighted.values[0], expected_weighted, atol=1e-12)
        np.testing.assert_allclose(best_of_k(scores, correct, ks), expected_best, atol=1e-12)


def test_exact_majority_vote_at_larger_n_matches_enumeration_where_feasible():
    rng = np.random.default_rng(3)
    answers = rng.integers(-1, 6, size=18)
    correct = answers == 2
    exact = majority_vote_exact(answers, correct, 18)
    for k in (1, 2, 5, 9, 17, 18):
        assert exact[k - 1] == pytest.approx(brute_force_vote(answers, correct, None, k), abs=1e-12)


def test_monte_carlo_agrees_with_exact_within_its_reported_error():
    rng = np.random.default_rng(11)
    problems = [random_problem(rng, n=12) for _ in range(30)]
    answers, correct, scores = (list(column) for column in zip(*problems))
    ks = np.array([1, 2, 3, 5, 8, 12])
    for run in ("majority", "weighted"):
        if run == "majority":
            exact = majority_vote_curves(answers, correct, ks, method="exact")
            sampled = majority_vote_curves(answers, correct, ks, method="monte-carlo", subsets=400, seed=5)
        else:
            exact = weighted_vote_curves(answers, correct, scores, ks, method="exact")
            sampled = weighted_vote_curves(answers, correct, scores, ks, method="monte-carlo", subsets=400, seed=5)
        assert not sampled.exact[:, :-1].any() and sampled.subsets == 400
        # k = n has one subset: Monte-Carlo is exact there and reports no error
        np.testing.assert_allclose(sampled.values[:, -1], exact.values[:, -1], atol=1e-12)
        assert np.all(sampled.variances[:, -1] == 0)
        error = sampled.monte_carlo_standard_error()
        assert np.all(error[:-1] > 0)
        z = np.abs(sampled.mean() - exact.mean())[:-1] / error[:-1]
        assert np.all(z < 4), (run, z)
        # per problem, too: the reported variances are calibrated (squared errors average to about them)
        squared_error = np.mean((sampled.values - exact.values)[:, :-1] ** 2)
        assert 0.4 < squared_error / np.mean(sampled.variances[:, :-1]) < 2.5, run


def test_monte_carlo_is_reproducible_and_seeded():
    rng = np.random.default_rng(4)
    answers = [rng.integers(0, 5, size=600) for _ in range(3)]
    correct = [a == 0 for a in answers]
    ks = [1, 10, 100, 600]
    first = majority_vote_curves(answers, correct, ks, method="monte-carlo", subsets=20, seed=1)
    again = majority_vote_curves(answers, correct, ks, method="monte-carlo", subsets=20, seed=1)
    other = majority_vote_curves(answers, correct, ks, method="monte-carlo", subsets=20, seed=2)
    np.testing.assert_array_equal(first.values, again.values)
    assert not np.array_equal(first.values, other.values)


def test_auto_uses_monte_carlo_beyond_the_exact_limits():
    rng = np.random.default_rng(8)
    answers = [rng.integers(-1, 40, size=1000)]
    correct = [answers[0] == 3]
    estimate = majority_vote_curves(answers, correct, [1, 16, 1000], subsets=50)
    # k = 1 has a closed form and k = n one subset (all samples): exact; k = 16 is Monte-Carlo
    assert estimate.exact[0].tolist() == [True, False, True] and estimate.subsets == 50
    assert estimate.variances[0, 1] > 0 and estimate.variances[0, [0, 2]].tolist() == [0, 0]
    weighted = weighted_vote_curves(answers, correct, [np.ones(1000)], [1, 2, 500, 999, 1000], subsets=50)
    # k = 1 has a closed form and k = n one subset; the others are too many subsets to enumerate
    assert weighted.exact[0].tolist() == [True, False, False, False, True]
    assert weighted.values[0, 0] == pytest.approx(correct[0].mean())
    with pytest.raises(ValueError, match="exact computation supports"):
        majority_vote_curves(answers, correct, [1], method="exact")


def test_tie_rules():
    # two answers tied 2-2 at k = 4: the right one wins half the time
    answers = np.array([0, 0, 1, 1])
    correct = np.array([True, True, False, False])
    assert majority_vote_exact(answers, correct, 4)[-1] == pytest.approx(0.5)
    # samples without an answer never win; a subset with no answer scores 0
    answers = np.array([-1, -1, -1, 0])
    correct = np.array([False, False, False, True])
    assert majority_vote_exact(answers, correct, 4).tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # equal reward scores: the pick is uniform among the tied samples
    assert best_of_k(np.array([1.0, 1.0, 0.0]), np.array([True, False, True]), [3])[0] == pytest.approx(0.5)
    # weighted vote: only answers present in the subset compete, even when all sums are negative
    answers = np.array([0, 1])
    weights = np.array([-2.0, -1.0])
    value = weighted_vote_curves([answers], [np.array([True, False])], [weights], [1, 2]).values[0]
    assert value.tolist() == pytest.approx([0.5, 0.0])


def test_first_k_samples_differ_from_the_mean_over_subsets():
    """Why we average over k-subsets: maj@k on the first k samples depends on the sample order."""
    answers = np.array([1, 1, 0, 0, 0])
    correct = answers == 0
    over_subsets = majority_vote_exact(answers, correct, 5)[1]  # k = 2
    assert 0 < over_subsets < 1  # the first two samples alone would say 0


def test_best_of_k_is_exact_at_ten_thousand_samples():
    rng = np.random.default_rng(5)
    n = 10_000
    scores = rng.normal(size=n)
    correct = rng.random(n) < 0.3
    values = best_of_k(scores, correct, [1, 2, 100, n])
    assert values[0] == pytest.approx(correct.mean())
    assert values[-1] == float(correct[np.argmax(scores)])
    # k = 2: the better of two random samples; closed form over ordered pairs
    ranks = np.argsort(np.argsort(scores))
    assert values[1] == pytest.approx((correct * ranks).sum() / (n * (n - 1) / 2))
    assert np.all(np.isfinite(values))


def test_answer_encoding_and_compaction():
    ids = encode_answers(["42", None, "7", "42", None])
    assert ids.tolist() == [0, -1, 1, 0, -1]
    # any integer labels work: run-wide codes are compacted per problem
    sparse = majority_vote_curves([np.array([900, 900, 5])], [np.array([True, True, False])], [1, 3])
    dense = majority_vote_curves([np.array([0, 0, 1])], [np.array([True, True, False])], [1, 3])
    np.testing.assert_allclose(sparse.values, dense.values)


def test_step_rule_and_aggregates():
    text = "Step one.\n\n\n\nStep two: 2 + 2 = 4.\n\n  \nSo the answer is 4."
    assert split_steps(text) == ["Step one.", "Step two: 2 + 2 = 4.", "So the answer is 4."]
    assert split_steps("") == [""]
    steps = [[0.9, 0.2, 0.8], [0.5]]
    assert aggregate_steps(steps, "min").tolist() == [0.2, 0.5]
    assert aggregate_steps(steps, "last").tolist() == [0.8, 0.5]
    assert aggregate_steps(steps, "product").tolist() == pytest.approx([0.144, 0.5])
    assert aggregate_steps(steps, "mean").tolist() == pytest.approx([1.9 / 3, 0.5])
    with pytest.raises(ValueError, match="unknown step aggregate"):
        aggregate_steps(steps, "max")
    with pytest.raises(ValueError, match="no step scores"):
        aggregate_steps([[]], "min")


def test_bad_input_gets_clear_errors():
    answers, correct = [np.array([0, 1, 1])], [np.array([True, False, False])]
    with pytest.raises(ValueError, match="exceeds the samples"):
        majority_vote_curves(answers, correct, [1, 4])
    with pytest.raises(ValueError, match="strictly increasing"):
        majority_vote_curves(answers, correct, [2, 1])
    with pytest.raises(ValueError, match="2 answer ids for 3 samples"):
        majority_vote_curves([np.array([0, 1])], correct, [1])
    with pytest.raises(ValueError, match="NaN scores"):
        best_of_k_curves([np.array([0.1, np.nan, 0.3])], correct, [1])
    with pytest.raises(ValueError, match="non-finite weights"):
        weighted_vote_curves(answers, correct, [np.array([1.0, np.inf, 0.0])], [1])
    with pytest.raises(ValueError, match="method must be one of"):
        majority_vote_curves(answers, correct, [1], method="fast")
