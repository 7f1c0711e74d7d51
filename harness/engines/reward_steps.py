"""Steps of a completion, for process reward models: how a completion is split into steps before scoring
(``split_steps``), and how a sample's step scores become one score when selecting (``aggregate_steps``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from harness.core.errors import DataError, OptionError

STEP_RULE = "blank-lines"  # how split_steps splits a completion into steps (recorded with the scores)
STEP_AGGREGATES = ("min", "last", "product", "mean")


def split_steps(text: str) -> list[str]:
    """The reasoning steps of a completion, for process reward models.

    Rule: a step is a block of text between blank lines (split on ``"\\n\\n"``), stripped; empty blocks are
    dropped; a completion with no text is one empty step (so every sample gets a score).
    """
    steps = [block.strip() for block in text.split("\n\n")]
    steps = [step for step in steps if step]
    return steps or [""]


def aggregate_steps(step_scores: Sequence[Sequence[float]], how: str) -> np.ndarray:
    """One score per sample from its step scores: ``min``, ``last``, ``product`` or ``mean``."""
    if how not in STEP_AGGREGATES:
        raise OptionError("aggregate", f"unknown step aggregate {how!r}; choose one of {', '.join(STEP_AGGREGATES)}")
    reductions: dict[str, Callable[[np.ndarray], float]] = {
        "min": np.min,
        "last": lambda steps: steps[-1],
        "product": np.prod,
        "mean": np.mean,
    }
    reduce = reductions[how]
    result = np.empty(len(step_scores))
    for index, steps in enumerate(step_scores):
        if steps is None or len(steps) == 0:
            raise DataError(f"sample {index} has no step scores to aggregate")
        result[index] = reduce(np.asarray(steps, dtype=np.float64))
    return result
