"""A run directory's verdicts as ``Counts``, the input of every analysis: the store reads the tallies, this
turns them into per-problem arrays with the problems' metadata as grouping fields."""

from __future__ import annotations

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
