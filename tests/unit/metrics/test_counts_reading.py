"""Counts files at scale (issue 22): a plain file is parsed in one go, with exactly the Counts the line-by-line
reader builds; anything else falls back to it, so bad lines are still named; distinct (n, c) pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.core.errors import DataError
from harness.core.jsonl import read_jsonl_lines
from harness.metrics.counts import Counts, distinct_counts
from harness.pipeline.counts_file import plain_counts, read_counts


def line_by_line(path: Path) -> Counts:
    numbered = read_jsonl_lines(path)
    return Counts.from_records([record for _, record in numbered], source=str(path), lines=[n for n, _ in numbered])


def assert_same(first: Counts, second: Counts) -> None:
    assert np.array_equal(first.num_samples, second.num_samples)
    assert np.array_equal(first.num_correct, second.num_correct)
    assert first.problem_ids.tolist() == second.problem_ids.tolist()
    assert sorted(first.fields) == sorted(second.fields)
    for name in first.fields:
        assert first.fields[name].tolist() == second.fields[name].tolist(), name


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_the_fast_reader_builds_what_the_line_reader_builds(shared_data, tmp_path):
    real = shared_data / "monkey_business_pythia_math_10k_counts.jsonl"
    assert plain_counts(real.read_bytes()) is not None, "a real counts file takes the fast path"
    assert_same(read_counts(real), line_by_line(real))
    crafted = write(
        tmp_path / "crafted.jsonl",
        [
            {"num_samples": 10, "num_correct": 3, "model": "a", "level": 1, "hard": True, "problem_idx": 7},
            {"num_samples": 10, "num_correct": 0, "model": "b", "level": 2, "hard": False, "problem_idx": 8},
            {"num_samples": 12, "num_correct": 12, "level": None, "problem_idx": 9},
        ],
    )
    assert_same(read_counts(crafted), line_by_line(crafted))


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"num_samples": 10, "num_correct": 3}, {"num_samples": 10, "num_correct": 11}], r":2: num_correct 11 >"),
        ([{"num_samples": 10, "num_correct": 3}, {"num_samples": 10.0, "num_correct": 1}], r":2: num_samples must be"),
        ([{"num_samples": 10, "num_correct": 3}, {"num_samples": 10}], r":2: lacks \['num_correct'\]"),
        ([{"num_samples": 10, "num_correct": -1}], r":1: num_correct must be a non-negative integer"),
    ],
)
def test_bad_lines_are_still_named(tmp_path, records, message):
    with pytest.raises(DataError, match=message):
        read_counts(write(tmp_path / "bad.jsonl", records))


def test_nested_and_mixed_fields_fall_back_to_the_line_reader(tmp_path):
    path = write(
        tmp_path / "mixed.jsonl",
        [
            {"num_samples": 4, "num_correct": 1, "extra": {"a": 1}, "tag": "x"},
            {"num_samples": 4, "num_correct": 2, "extra": {"a": 2}, "tag": 5},
        ],
    )
    assert_same(read_counts(path), line_by_line(path))


def test_distinct_counts_are_sorted_pairs_with_multiplicity_and_inverse():
    n = np.array([10, 10, 12, 10, 12])
    c = np.array([3, 0, 12, 3, 1])
    pairs_n, pairs_c, multiplicity, inverse = distinct_counts(n, c)
    assert list(zip(pairs_n.tolist(), pairs_c.tolist())) == [(10, 0), (10, 3), (12, 1), (12, 12)]
    assert multiplicity.tolist() == [1, 2, 1, 1]
    assert np.array_equal(pairs_n[inverse], n) and np.array_equal(pairs_c[inverse], c)
    wide = np.array([10**6, 5, 10**6]), np.array([999_999, 1, 999_999])  # too many possible pairs to tally
    pairs_n, pairs_c, multiplicity, inverse = distinct_counts(*wide)
    assert list(zip(pairs_n.tolist(), pairs_c.tolist(), multiplicity.tolist())) == [(5, 1, 1), (10**6, 999_999, 2)]
    assert inverse.tolist() == [1, 0, 1]
