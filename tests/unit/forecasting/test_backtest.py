"""Backtests: pilots are hypergeometric draws, the truth comes from all samples, the table adds up."""

from __future__ import annotations

import numpy as np
import pytest

from harness.forecasting.backtest import (
    backtest,
    backtest_adaptive,
    backtest_group,
    format_adaptive_markdown,
    format_markdown,
    rows_to_json,
    summarize,
    true_coverage,
)
from harness.forecasting.forecast import METHODS, subsample
from harness.metrics.counts import Counts, read_counts_jsonl
from harness.metrics.estimators import pass_at_k

MONKEY = "monkey_business_pythia_math_10k_counts.jsonl"


def small_counts(seed: int = 0, problems: int = 120, samples: int = 400) -> Counts:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.3, 15.0, problems)
    return Counts(
        num_samples=np.full(problems, samples),
        num_correct=rng.binomial(samples, p),
        problem_ids=np.array([f"q{i}" for i in range(problems)], dtype=object),
        fields={"half": np.array(["a", "b"] * (problems // 2), dtype=object)},
    )


def test_pilots_are_draws_without_replacement():
    counts = small_counts()
    rng = np.random.default_rng(0)
    same = subsample(counts, 400, rng)
    assert np.array_equal(same.num_correct, counts.num_correct)
    draws = np.stack([subsample(counts, 100, rng).num_correct for _ in range(400)])
    assert np.all(draws <= counts.num_correct) and np.all(draws <= 100)
    # Hypergeometric mean c * pilot / n.
    assert np.allclose(draws.mean(0), counts.num_correct / 4, atol=0.35 + 0.1 * counts.num_correct / 4)


def test_pilot_equal_to_all_samples_reproduces_the_unbiased_pass_at_k():
    counts = small_counts()
    for k in (1, 10, 400):
        rows = backtest_group("all", counts, pilot=400, k=k, repeats=2, methods=METHODS)
        truth = float(pass_at_k(counts.num_samples, counts.num_correct, k).mean())
        for row in rows:
            assert row.truth == pytest.approx(truth)
            assert row.mean_abs_error == pytest.approx(0.0, abs=1e-12), row.method
            assert row.hit_rate == 1.0


def test_backtest_on_monkey_counts(shared_data):
    counts = read_counts_jsonl(shared_data / MONKEY)
    two = counts.subset(np.isin(counts.fields["model"], ["Pythia 70M", "Pythia 12B"]))
    rows = backtest(two, "model", pilot=100, k=10_000, repeats=2, seed=1, methods=("bayes", "powerlaw", "auto"))
    assert {(row.group, row.method) for row in rows} == {
        (group, method) for group in ("Pythia 12B", "Pythia 70M") for method in ("bayes", "powerlaw", "auto")
    }
    truths = {row.group: row.truth for row in rows}
    assert truths["Pythia 70M"] == pytest.approx(0.266, abs=0.001)  # SOURCES.md
    assert truths["Pythia 12B"] == pytest.approx(0.875, abs=0.001)
    for row in rows:
        assert 0 <= row.mean_abs_error < 0.3 and 0 <= row.hit_rate <= 1
        assert row.mean_abs_error >= abs(row.bias) - 1e-12
    auto = [row for row in rows if row.method == "auto"]
    assert all(sum(row.chosen.values()) == 2 for row in auto)
    table = format_markdown(rows)
    assert "| Pythia 70M | bayes |" in table and "median abs error over groups" in table
    summary = {item.method: item for item in summarize(rows)}
    assert summary["bayes"].groups == 2
    assert set(rows_to_json(rows)) == {"rows", "summary"}


def test_backtest_errors_are_clear():
    counts = small_counts()
    with pytest.raises(ValueError, match="pilot: must be in"):
        backtest(counts, None, pilot=500, k=400)
    with pytest.raises(ValueError, match="fewer than k"):
        backtest(counts, None, pilot=100, k=1000)
    with pytest.raises(ValueError, match="unknown methods"):
        backtest(counts, None, pilot=100, k=400, methods=("bayes", "nope"))
    with pytest.raises(ValueError, match="cannot group by"):
        backtest(counts, "model", pilot=100, k=400)
    with pytest.raises(ValueError, match="repeats"):
        backtest(counts, None, pilot=100, k=400, repeats=0)
    with pytest.raises(ValueError, match="no problems"):
        backtest_group("empty", counts.subset(np.zeros(len(counts), dtype=bool)), pilot=10, k=10)


def test_methods_that_cannot_use_a_pilot_are_counted_as_failures():
    correct = np.r_[np.zeros(29, dtype=np.int64), [1]]
    counts = Counts(np.full(30, 200), correct, np.arange(30).astype(str).astype(object))
    rows = backtest_group("rare", counts, pilot=20, k=200, repeats=3, methods=("powerlaw", "bayes"))
    rows = {row.method: row for row in rows}
    assert rows["powerlaw"].failures >= 2  # pilots of 20 mostly miss the one success: no curve to fit
    assert rows["bayes"].failures == 0
    assert "failed" in format_markdown(list(rows.values()))


def test_adaptive_pilot_backtest_narrows_the_interval():
    counts = small_counts(seed=3, problems=100, samples=2000)
    rows = backtest_adaptive(counts, None, pilot=50, extra_per_problem=100, k=2000, repeats=2)
    (row,) = rows
    assert row.adaptive_width < row.before_width
    assert row.truth == pytest.approx(true_coverage(counts, 2000))
    assert "before / adaptive / uniform" in format_adaptive_markdown(rows)
