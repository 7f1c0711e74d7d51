"""A run directory's verdicts as ``Counts``, the input of every analysis: the store reads the tallies, this
turns them into per-problem arrays with the problems' metadata as grouping fields. Also the per-sample arrays
the reasoning figures need (``judged_tokens``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.metrics.counts import Counts
from harness.store import RunStore


def run_counts(store: RunStore, verifier: str | None = None) -> Counts:
    """Per-problem (n, c) of a verdict set of ``store`` (by key or verifier name; default: the one last
    verified); the problems' scalar metadata (str, int, float, bool) become grouping fields."""
    tallies = store.verdict_tallies(verifier)
    problems = [problem for problem, _, _ in tallies]
    scalar_keys = sorted(
        {
            key
            for problem in problems
            for key, value in problem.metadata.items()
            if isinstance(value, (str, int, float, bool))
        }
    )
    return Counts(
        num_samples=np.array([n for _, n, _ in tallies], dtype=np.int64),
        num_correct=np.array([c for _, _, c in tallies], dtype=np.int64),
        problem_ids=np.array([problem.problem_id for problem in problems], dtype=object),
        fields={
            key: np.array([problem.metadata.get(key) for problem in problems], dtype=object) for key in scalar_keys
        },
    )


@dataclass(frozen=True)
class JudgedTokens:
    """One entry per judged sample of a verdict set: its thinking and answer tokens (NaN: unknown), whether it is
    correct and its verdict's reason."""

    thinking: np.ndarray
    answer: np.ndarray
    correct: np.ndarray
    reasons: np.ndarray


def judged_tokens(store: RunStore, key: str) -> JudgedTokens:
    """The samples of verdict set ``key`` with their verdicts: what the reasoning figures are computed from."""
    verdicts = store.verdicts(key).read(["correct", "reason"])
    samples = store.read_samples(["thinking_tokens", "answer_tokens"])
    joined = verdicts.join(samples, keys=["problem_id", "sample_idx"], join_type="left outer", use_threads=False)

    def counts(name: str) -> np.ndarray:
        return joined.column(name).to_numpy(zero_copy_only=False).astype(np.float64)  # nulls become NaN

    return JudgedTokens(
        thinking=counts("thinking_tokens"),
        answer=counts("answer_tokens"),
        correct=joined.column("correct").fill_null(False).to_numpy(zero_copy_only=False).astype(bool),
        reasons=np.asarray(joined.column("reason").to_pylist(), dtype=object),
    )
