"""Range algebra over sample indices: half-open ``(start, stop)`` ranges per problem, which say what a run stores,
what a verdict or score set lacks, and what sampling must still generate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

#: Index ranges per problem: problem id -> merged, sorted half-open ranges.
Ranges = dict[str, list[tuple[int, int]]]


def ranges_of(problem_ids: Sequence[str], indices: Sequence[int]) -> list[tuple[str, int, int]]:
    """Contiguous (problem, start, stop) ranges covering the given (problem, index) pairs."""
    by_problem: dict[str, list[int]] = defaultdict(list)
    for problem_id, index in zip(problem_ids, indices):
        by_problem[problem_id].append(int(index))
    result = []
    for problem_id, values in by_problem.items():
        values.sort()
        start = previous = values[0]
        for value in values[1:]:
            if value != previous + 1:
                result.append((problem_id, start, previous + 1))
                start = value
            previous = value
        result.append((problem_id, start, previous + 1))
    return result


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def subtract_ranges(ranges: Iterable[tuple[int, int]], removed: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``ranges`` not covered by ``removed`` (half-open index ranges)."""
    removed = merge_ranges(removed)
    result = []
    for start, stop in merge_ranges(ranges):
        cursor = start
        for cut_start, cut_stop in removed:
            if cut_stop <= cursor or cut_start >= stop:
                continue
            if cut_start > cursor:
                result.append((cursor, cut_start))
            cursor = max(cursor, cut_stop)
        if cursor < stop:
            result.append((cursor, stop))
    return result


def missing_ranges(stored: Sequence[tuple[int, int]], target: int) -> list[tuple[int, int]]:
    """The parts of [0, target) not covered by the stored ranges."""
    return subtract_ranges([(0, target)], stored) if target > 0 else []


def in_ranges(indices: np.ndarray, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
    """Boolean mask: which indices fall inside the (merged, sorted) half-open ranges."""
    if not ranges:
        return np.zeros(len(indices), dtype=bool)
    starts = np.array([start for start, _ in ranges])
    stops = np.array([stop for _, stop in ranges])
    slot = np.searchsorted(starts, indices, side="right") - 1
    return (slot >= 0) & (indices < stops[np.clip(slot, 0, None)])
