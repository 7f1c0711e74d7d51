"""Budgets: the smallest k reaching a target, honest costs, allocation by difficulty, the adaptive pilot."""

from __future__ import annotations

import json

import numpy as np
import pytest

import harness.forecasting.budget as budget_module
from harness.forecasting.budget import (
    _spread,
    allocate_by_difficulty,
    plan_adaptive_pilot,
    plan_budget,
    smallest_k,
)
from harness.forecasting.costs import Cost, Prices, Usage, cost_of, money_for
from harness.forecasting.forecast import make_model
from harness.metrics.counts import Counts


def pilot_counts(seed: int = 0, problems: int = 150) -> Counts:
    rng = np.random.default_rng(seed)
    return Counts(
        num_samples=np.full(problems, 100),
        num_correct=rng.binomial(100, rng.beta(0.3, 20.0, problems)),
        problem_ids=np.array([f"p{i}" for i in range(problems)], dtype=object),
    )


class StepModel:
    """A stand-in model whose coverage crosses thresholds at known k."""

    name = "step"

    def interval(self, k: int, confidence: float) -> tuple[float, float, float]:
        value = 1 - 1 / (1 + k / 1000)
        return value, value - 0.1, value + 0.1


@pytest.mark.parametrize("target, statistic, expected", [(0.5, 0, 1000), (0.5, 1, 1500), (0.5, 2, 667), (0.9, 0, 9000)])
def test_smallest_k_is_exact(target, statistic, expected):
    assert smallest_k(StepModel(), target, 0.9, statistic) == expected


def test_smallest_k_gives_up_past_the_limit():
    assert smallest_k(StepModel(), 0.999, 0.9, 0, k_limit=10_000) is None


def test_costs_follow_the_formulas_and_name_what_is_missing():
    counts = pilot_counts(problems=10)
    usage = Usage(
        output_tokens_per_sample=250.0,
        prompt_tokens_per_problem=400.0,
        output_tokens_per_second=1000.0,
        model_parameters=7_000_000_000,
    )
    cost = cost_of(1000, counts, usage, Prices(per_million_tokens=2.0))
    assert cost.samples == 10_000 and cost.additional_samples == 9_000
    assert cost.generated_tokens == 2_500_000
    assert cost.flops == pytest.approx(2 * 7e9 * (2_500_000 + 10 * 400))  # prompts prefilled once per problem
    assert cost.seconds == pytest.approx(2500.0)
    assert cost.money == pytest.approx((2_500_000 + 4000) / 1e6 * 2.0)
    assert cost.missing == ()
    by_hour = cost_of(1000, counts, usage, Prices(gpu_hour=3.6))
    assert by_hour.money == pytest.approx(2.5)
    unknown = cost_of(1000, counts, Usage(), Prices())
    assert all(value is None for value in (unknown.generated_tokens, unknown.flops, unknown.seconds, unknown.money))
    assert set(unknown.missing) == {"tokens per sample", "model parameters", "throughput (tokens per second)", "price"}


def test_a_cost_priced_later_is_the_cost_priced_at_once():
    """The summary stores costs without a price; the report prices them: both paths give the same figures."""
    counts = pilot_counts(problems=10)
    usage = Usage(output_tokens_per_sample=250.0, prompt_tokens_per_problem=None, output_tokens_per_second=1000.0)
    unpriced = Cost.from_json(cost_of(1000, counts, usage).to_json())
    assert unpriced.money is None and "price" in unpriced.missing and "prompt tokens" not in unpriced.missing
    for prices in (Prices(per_million_tokens=2.0), Prices(gpu_hour=3.6), Prices()):
        assert unpriced.priced(prices) == cost_of(1000, counts, usage, prices)
    # unknown prompt tokens count as none for the token price; the GPU-hour price needs the wall time
    assert money_for(Prices(per_million_tokens=2.0), 2_500_000, None, None) == pytest.approx(5.0)
    assert money_for(Prices(gpu_hour=3.6), 2_500_000, 4000, None) is None


def test_plan_budget_plans_with_an_already_fitted_model(monkeypatch):
    counts = pilot_counts()
    fitted = make_model("bayes").fit(counts)
    expected = plan_budget(counts, 0.6, method="bayes").to_json()

    def no_refit(*args, **kwargs):
        raise AssertionError("plan_budget refitted a model it was given")

    monkeypatch.setattr(budget_module, "fit_model", no_refit)
    assert plan_budget(counts, 0.6, model=fitted).to_json() == expected


def test_plan_budget_finds_the_first_k_reaching_the_target():
    counts = pilot_counts()
    plan = plan_budget(counts, 0.6, method="bayes")
    model = make_model("bayes").fit(counts)
    assert model.interval(plan.k, 0.9)[0] >= 0.6 > model.interval(plan.k - 1, 0.9)[0]
    assert plan.k_optimistic <= plan.k <= (plan.k_conservative or np.inf)
    assert plan.forecast.coverage >= 0.6 and plan.costs["k"].samples == plan.k * len(counts)
    payload = plan.to_json()
    json.dumps(payload)
    assert payload["costs"]["k"]["missing"]


def test_unreachable_targets_are_reported():
    correct = np.r_[np.zeros(45, dtype=np.int64), [3, 5, 8, 20, 40]]
    counts = Counts(np.full(50, 100), correct, np.arange(50).astype(object))
    plan = plan_budget(counts, 0.95, method="bayes-zi", k_limit=100_000)
    assert plan.k is None and any("does not reach" in note for note in plan.notes)
    with pytest.raises(ValueError, match="target"):
        plan_budget(counts, 1.5)


def test_allocation_by_difficulty_beats_uniform_and_reaches_the_target():
    counts = pilot_counts(seed=2)
    allocation = allocate_by_difficulty(counts, 0.7)
    assert allocation.uniform_k is not None
    assert allocation.allocated_samples <= allocation.uniform_samples
    assert sum(item.problems for item in allocation.bins) == len(counts)
    weighted = sum(item.problems * item.coverage_allocated for item in allocation.bins) / len(counts)
    assert weighted >= 0.7 - 1e-6
    per_bin = {item.label: item.samples_per_problem for item in allocation.bins}
    assert per_bin["0 (no success)"] > max(value for label, value in per_bin.items() if label != "0 (no success)")


def test_spread_fills_the_least_sampled_first():
    extra = _spread(np.array([100, 100, 150, 300]), 120)
    assert extra.sum() == 120 and list(extra) == [57, 57, 6, 0]
    assert _spread(np.array([5, 5]), 0).sum() == 0


def test_adaptive_pilot_picks_the_strategy_that_narrows_the_interval_most():
    counts = pilot_counts(seed=3)
    plan = plan_adaptive_pilot(counts, extra_samples=100 * len(counts), k=10_000, simulations=4)
    assert set(plan.widths_by_strategy) == {"every problem", "unsolved", "unsolved, half", "unsolved, quarter"}
    assert plan.expected_width_after == min(plan.widths_by_strategy.values())
    assert sum(plan.extra.values()) == 100 * len(counts)
    if plan.strategy.startswith("unsolved"):
        unsolved = {str(problem) for problem in counts.problem_ids[counts.num_correct == 0]}
        assert set(plan.extra) <= unsolved
    coverage, low, high = plan.before
    assert low <= coverage <= high
    assert plan.expected_width_after < high - low
    json.dumps(plan.to_json())
