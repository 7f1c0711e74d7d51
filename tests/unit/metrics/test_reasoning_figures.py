"""The reasoning figures of a summary: token statistics, samples cut off, accuracy by thinking length."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.metrics.reasoning import accuracy_by_thinking, reasoning_figures, token_statistics

NAN = float("nan")


def test_token_statistics_skip_unknown_counts():
    assert token_statistics(np.array([NAN, NAN])) is None
    stats = token_statistics(np.array([10.0, NAN, 20.0, 30.0, 40.0]))
    assert stats == {"mean": 25.0, "median": 25.0, "p90": pytest.approx(37.0), "max": 40.0}


def test_accuracy_by_thinking_bins_hold_every_known_sample_once():
    rng = np.random.default_rng(0)
    thinking = rng.integers(10, 5000, size=1000).astype(float)
    thinking[::7] = NAN
    correct = rng.random(1000) < 0.4
    bins = accuracy_by_thinking(thinking, correct, bins=6)
    known = np.isfinite(thinking)
    assert sum(row["samples"] for row in bins) == known.sum()
    assert sum(row["correct"] for row in bins) == (correct & known).sum()
    assert all(row["low"] <= row["high"] for row in bins)
    assert all(a["high"] < b["low"] for a, b in itertools.pairwise(bins)), "bins do not overlap"
    assert len(bins) == 6 and max(row["samples"] for row in bins) - min(row["samples"] for row in bins) <= 2
    for row in bins:  # each bin's accuracy is that of the samples in its range
        inside = known & (thinking >= row["low"]) & (thinking <= row["high"])
        assert row["samples"] == inside.sum() and row["accuracy"] == pytest.approx(correct[inside].mean())


def test_tied_counts_share_a_bin():
    """Samples cut off at the token limit all think the same length: one bin, not six empty ones."""
    bins = accuracy_by_thinking(np.array([512.0] * 8 + [100.0, 200.0]), np.array([False] * 8 + [True, True]))
    assert bins[-1] == {"low": 512, "high": 512, "samples": 8, "correct": 0, "accuracy": 0.0}
    assert sum(row["samples"] for row in bins) == 10
    assert accuracy_by_thinking(np.array([5.0, 5.0]), np.array([True, False])) == [
        {"low": 5, "high": 5, "samples": 2, "correct": 1, "accuracy": 0.5}
    ]


def test_reasoning_figures():
    thinking = np.array([100.0, 300.0, 512.0, NAN])
    answer = np.array([20.0, 10.0, 0.0, NAN])
    correct = np.array([True, False, False, False])
    truncated = np.array([False, False, True, False])
    figures = reasoning_figures(thinking, answer, correct, truncated)
    assert figures["samples"] == 4 and figures["truncated"] == 1 and figures["truncated_share"] == 0.25
    assert figures["split_known"] == 3
    assert figures["mean_thinking_tokens_correct"] == 100.0 and figures["mean_thinking_tokens_wrong"] == 406.0
    assert figures["answer_tokens"]["max"] == 20.0 and figures["thinking_tokens"]["median"] == 300.0
