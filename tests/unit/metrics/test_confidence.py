"""Confidence statistics streamed as tokens arrive equal a direct computation from the full per-token list, and
the confidence selectors (best-of-k by a statistic, confidence-filtered vote) equal brute force."""

import itertools

import numpy as np
import pytest

from harness.core.errors import OptionError
from harness.engines.confidence import (
    ConfidenceAccumulator,
    confidence_stats,
    token_confidence,
)
from harness.metrics.confidence_selectors import (
    CONFIDENCE_SELECTORS,
    confidence_best_of_k,
    confidence_filtered_vote_curves,
    kept_count,
    parse_eta,
)
from harness.metrics.selection import majority_vote_curves


def direct_stats(values: list[float], window: int, tail: int, fraction: float) -> tuple[float, ...]:
    """DeepConf's definitions written out over the whole list (deepconf/utils.py: calculate_*_confidence)."""
    if not values:
        return (np.nan,) * 4
    mean = sum(values) / len(values)
    tail_values = values[-tail:]
    if len(values) < window:
        groups = [mean]
    else:
        groups = [sum(values[i : i + window]) / window for i in range(len(values) - window + 1)]
    lowest = sorted(groups)[: max(1, int(len(groups) * fraction))]
    return mean, min(groups), sum(tail_values) / len(tail_values), sum(lowest) / len(lowest)


def random_chunks(rng, values, largest):
    """Split values into consecutive chunks of random sizes (empty ones too)."""
    chunks, start = [], 0
    while start < len(values):
        size = int(rng.integers(0, largest + 1))
        chunks.append(values[start : start + size])
        start += size
    return chunks


@pytest.mark.parametrize("window,tail,fraction", [(5, 7, 0.1), (1, 1, 1.0), (8, 3, 0.3), (16, 16, 0.1)])
def test_streamed_statistics_equal_the_direct_computation_for_any_chunking(window, tail, fraction):
    rng = np.random.default_rng(window * 100 + tail)
    for _ in range(150):
        length = int(rng.integers(0, 80))
        values = list(np.log(rng.random(length)) * rng.random())
        max_tokens = max(length, 1) + int(rng.integers(0, 20)) if rng.random() < 0.5 else None
        accumulator = ConfidenceAccumulator(window, tail, fraction, max_tokens=max_tokens)
        for chunk in random_chunks(rng, values, largest=int(rng.choice([1, 3, window + 5, 100]))):
            accumulator.add(chunk)
        result = accumulator.result()
        expected = direct_stats(values, window, tail, fraction)
        got = (result.mean, result.min_window, result.tail, result.bottom_window)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        assert result.tokens == length
        if max_tokens is not None and length >= window:  # memory: the lowest window means only
            assert accumulator.window_means.size <= 2 * accumulator.keep + 100


def test_long_samples_with_deepconf_sized_windows_stay_exact():
    rng = np.random.default_rng(1)
    values = np.log(rng.random(40_000)) * 0.3
    accumulator = ConfidenceAccumulator(max_tokens=40_000)
    for chunk in np.array_split(values, 997):
        accumulator.add(chunk)
    result = accumulator.result()
    windows = np.convolve(values, np.ones(2048) / 2048, mode="valid")
    lowest = np.sort(windows)[: int(windows.size * 0.1)]
    np.testing.assert_allclose(
        [result.mean, result.min_window, result.tail, result.bottom_window],
        [values.mean(), windows.min(), values[-2048:].mean(), lowest.mean()],
        rtol=1e-9,
    )
    assert accumulator.ring.size == 2049 and accumulator.window_means.size <= 2 * 3795


def test_deepconf_token_confidence_is_minus_the_mean_top_k_logprob():
    top = np.log(np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]]))
    confidence = token_confidence(top)
    assert confidence == pytest.approx(-top.mean(axis=1))
    assert confidence[0] > confidence[1]  # a peaked distribution is the more confident
    padded = np.array([[-0.1, -3.0, np.nan], [-1.0, -1.0, -1.0]])
    assert token_confidence(padded) == pytest.approx([1.55, 1.0])
    accumulator = ConfidenceAccumulator(window=2, tail=2)
    accumulator.add_top_logprobs(top)
    assert accumulator.result().mean == pytest.approx(confidence.mean())


def test_a_sample_without_tokens_has_nan_statistics_and_one_shot_equals_streaming():
    empty = confidence_stats([])
    assert empty.tokens == 0 and np.isnan(empty.mean) and np.isnan(empty.bottom_window)
    values = np.linspace(-2, 0, 50)
    assert confidence_stats(values, 10, 5) == confidence_stats(values, 10, 5)
    short = confidence_stats(values[:5], window=10, tail=3)
    assert short.min_window == short.bottom_window == pytest.approx(values[:5].mean())


def test_bad_settings_and_input_are_refused():
    with pytest.raises(OptionError, match="confidence_window"):
        ConfidenceAccumulator(window=0)
    with pytest.raises(OptionError, match="confidence_tail"):
        ConfidenceAccumulator(tail=2.5)
    with pytest.raises(OptionError, match="bottom_fraction"):
        ConfidenceAccumulator(bottom_fraction=0)
    accumulator = ConfidenceAccumulator(window=2, tail=2, max_tokens=3)
    with pytest.raises(ValueError, match="finite"):
        accumulator.add([0.0, np.nan])
    accumulator.add([-1.0, -2.0])
    with pytest.raises(ValueError, match="max_tokens"):
        accumulator.add([-1.0, -1.0])
    with pytest.raises(ValueError, match="no log-probabilities"):
        token_confidence([[np.nan, np.nan]])


# -- confidence selectors ----------------------------------------------------------------------------------------


def brute_force_filtered_vote(answers, correct, confidence, k, eta):
    """conf-majority=ETA over every k-subset, written from its definition without the library."""
    n = len(answers)
    share = {}
    for answer in set(answers) - {-1}:
        members = [i for i in range(n) if answers[i] == answer]
        share[answer] = sum(correct[i] for i in members) / len(members)
    keep = max(1, int(np.ceil(round(eta * k / 100, 9))))
    outcomes = []
    for subset in itertools.combinations(range(n), k):
        threshold = sorted((confidence[i] for i in subset), reverse=True)[keep - 1]
        votes = {}
        for i in subset:
            if confidence[i] >= threshold and answers[i] != -1:
                votes[answers[i]] = votes.get(answers[i], 0) + 1
        if not votes:
            outcomes.append(0.0)
            continue
        top = max(votes.values())
        tied = [answer for answer, count in votes.items() if count == top]
        outcomes.append(sum(share[answer] for answer in tied) / len(tied))
    return float(np.mean(outcomes))


def random_problems(rng, count, n, answers=4):
    ids, right, conf = [], [], []
    for _ in range(count):
        problem_ids = rng.integers(-1, answers, n)
        truth = int(rng.integers(0, answers))
        ids.append(problem_ids)
        right.append((problem_ids == truth) & (rng.random(n) < 0.9))  # a verifier that sometimes disagrees
        conf.append(np.round(rng.normal(size=n), 1))  # ties
    return ids, right, conf


@pytest.mark.parametrize("eta", [10, 34, 50, 90, 100])
def test_confidence_filtered_vote_equals_brute_force(eta):
    rng = np.random.default_rng(eta)
    ids, right, conf = random_problems(rng, 12, 8)
    ks = [1, 2, 3, 5, 8]
    estimate = confidence_filtered_vote_curves(ids, right, conf, ks, eta=eta, method="exact")
    for problem in range(12):
        for column, k in enumerate(ks):
            expected = brute_force_filtered_vote(list(ids[problem]), list(right[problem]), list(conf[problem]), k, eta)
            assert estimate.values[problem, column] == pytest.approx(expected, abs=1e-12)
    assert estimate.exact.all() and np.all(estimate.variances == 0)


def test_confidence_filtered_vote_by_monte_carlo_agrees_with_the_exact_value():
    rng = np.random.default_rng(5)
    ids, right, conf = random_problems(rng, 30, 10)
    ks = [2, 4, 6]
    exact = confidence_filtered_vote_curves(ids, right, conf, ks, eta=50, method="exact")
    sampled = confidence_filtered_vote_curves(ids, right, conf, ks, eta=50, method="monte-carlo", subsets=400, seed=3)
    assert not sampled.exact[:, 1:].any() and sampled.subsets == 400
    error = np.abs(sampled.mean() - exact.mean())
    assert np.all(error < 4 * sampled.monte_carlo_standard_error() + 1e-12), (
        error,
        sampled.monte_carlo_standard_error(),
    )
    assert np.all(sampled.monte_carlo_standard_error() > 0)


def test_keeping_everything_is_majority_vote_and_keeping_one_is_best_of_k():
    rng = np.random.default_rng(6)
    ids, right, conf = random_problems(rng, 20, 9)
    ks = [1, 3, 9]
    everything = confidence_filtered_vote_curves(ids, right, conf, ks, eta=100)
    np.testing.assert_allclose(everything.values, majority_vote_curves(ids, right, ks).values)
    # distinct answers (each sample its own, judged alone) and distinct confidences: the filter keeps the
    # single most confident sample, which is best-of-k by confidence
    unique_ids = [np.arange(9) for _ in range(20)]
    distinct = [rng.permutation(9).astype(float) for _ in range(20)]
    one = confidence_filtered_vote_curves(unique_ids, right, distinct, [1, 3, 9], eta=1)
    np.testing.assert_allclose(one.values, confidence_best_of_k(distinct, right, [1, 3, 9]).values, atol=1e-12)


def test_large_problems_fall_back_to_monte_carlo_and_end():
    rng = np.random.default_rng(7)
    ids, right, conf = random_problems(rng, 50, 200, answers=6)
    estimate = confidence_filtered_vote_curves(ids, right, conf, [1, 4, 16, 64, 200], eta=25, subsets=32)
    assert estimate.exact[:, 0].all() and not estimate.exact[:, 2].any()  # k = 1 is majority, exact
    assert np.all((estimate.values >= 0) & (estimate.values <= 1))


def test_confidence_best_of_k_ranks_samples_without_tokens_last():
    correct = [np.array([True, False, False])]
    scores = [np.array([np.nan, -1.0, -2.0])]
    estimate = confidence_best_of_k(scores, correct, [1, 2, 3])
    assert estimate.values[0].tolist() == pytest.approx([1 / 3, 0.0, 0.0])
    assert set(CONFIDENCE_SELECTORS) == {"conf-min-window", "conf-tail", "conf-bottom10"}


@pytest.mark.parametrize("text", ["0", "100.5", "-3", "nan", "inf", "abc", ""])
def test_eta_outside_zero_to_one_hundred_is_refused(text):
    with pytest.raises(OptionError) as caught:
        parse_eta(text)
    assert caught.value.option == "selectors" and "conf-majority" in str(caught.value)


def test_eta_in_range_is_read_and_checked_by_the_estimator():
    assert parse_eta("10") == 10 and parse_eta("100") == 100 and parse_eta("0.5") == 0.5
    assert kept_count(64, 10) == 7 and kept_count(10, 10) == 1 and kept_count(3, 90) == 3 and kept_count(5, 1) == 1
    with pytest.raises(OptionError):
        confidence_filtered_vote_curves([np.zeros(2, int)], [np.ones(2, bool)], [np.zeros(2)], [1], eta=0)
