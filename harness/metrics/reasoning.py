"""What a reasoning model's thinking cost, and what it bought: token statistics of the thinking and answer
segments, samples cut off inside their thinking, and accuracy against thinking length.

Arrays in, numbers out (one entry per judged sample); the analyze step reads the arrays from the run directory.
A token count that is not known (a run sampled before thinking tokens were counted, an engine that cannot
count them) is NaN, and the figures say how many samples they rest on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

THINKING_BINS = 6  # accuracy against thinking length: bins of about equal numbers of samples


def token_statistics(tokens: np.ndarray) -> dict[str, float] | None:
    """Mean, median, 90th percentile and maximum of the known counts (NaN: unknown); None when none is known."""
    known = np.asarray(tokens, dtype=np.float64)
    known = known[np.isfinite(known)]
    if known.size == 0:
        return None
    median, p90 = np.quantile(known, [0.5, 0.9])
    return {"mean": float(known.mean()), "median": float(median), "p90": float(p90), "max": float(known.max())}


def accuracy_by_thinking(thinking: np.ndarray, correct: np.ndarray, bins: int = THINKING_BINS) -> list[dict[str, Any]]:
    """Accuracy of the samples in bins of thinking length: bins of about equal numbers of samples (quantiles of
    the known counts; tied counts share a bin). Each bin: ``low`` and ``high`` (thinking tokens, inclusive),
    ``samples``, ``correct``, ``accuracy``."""
    thinking = np.asarray(thinking, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    known = np.isfinite(thinking)
    values, hits = thinking[known], correct[known]
    if values.size == 0:
        return []
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    # bin i holds edges[i] <= value < edges[i + 1]; the last bin also holds the maximum
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, max(len(edges) - 2, 0))
    samples = np.bincount(index, minlength=max(len(edges) - 1, 1))
    right = np.bincount(index, weights=hits.astype(np.float64), minlength=samples.size)
    lows = np.full(samples.size, np.inf)
    highs = np.full(samples.size, -np.inf)
    np.minimum.at(lows, index, values)
    np.maximum.at(highs, index, values)
    return [
        {
            "low": int(lows[i]),
            "high": int(highs[i]),
            "samples": int(samples[i]),
            "correct": int(right[i]),
            "accuracy": float(right[i] / samples[i]),
        }
        for i in np.flatnonzero(samples)
    ]


def reasoning_figures(
    thinking: np.ndarray, answer: np.ndarray, correct: np.ndarray, truncated: np.ndarray
) -> dict[str, Any]:
    """The figures of ``summary.json``'s ``reasoning`` object, from one entry per judged sample: thinking and
    answer tokens (NaN: unknown), whether the sample is correct and whether its thinking was cut off.

    ``truncated`` counts the samples cut inside their thinking and ``truncated_share`` their share of all;
    ``thinking_tokens`` and ``answer_tokens`` are ``token_statistics``; ``mean_thinking_tokens_correct`` and
    ``..._wrong`` compare what correct and wrong samples thought; ``accuracy_by_thinking`` bins accuracy by
    thinking length; ``split_known`` is how many samples have a known split (the token figures rest on them).
    """
    thinking = np.asarray(thinking, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    truncated = np.asarray(truncated, dtype=bool)
    known = np.isfinite(thinking)
    samples = int(correct.size)
    return {
        "samples": samples,
        "truncated": int(truncated.sum()),
        "truncated_share": float(truncated.mean()) if samples else None,
        "split_known": int(known.sum()),
        "thinking_tokens": token_statistics(thinking),
        "answer_tokens": token_statistics(np.asarray(answer, dtype=np.float64)),
        "mean_thinking_tokens_correct": _mean(thinking[known & correct]),
        "mean_thinking_tokens_wrong": _mean(thinking[known & ~correct]),
        "accuracy_by_thinking": accuracy_by_thinking(thinking, correct),
    }


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None
