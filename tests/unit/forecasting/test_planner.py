"""The joint planner over samples and thinking: its choices equal a brute-force search over the candidates."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.planner import synthetic_sweep
from harness.core.errors import OptionError
from harness.forecasting.cost_model import HARDWARE, CostModel, ModelArchitecture
from harness.forecasting.costs import Prices
from harness.forecasting.planner import (
    LONGER_THINKING,
    MORE_SAMPLES,
    NEITHER,
    LinearCost,
    Marginal,
    compute_cost,
    money_cost,
    plan_samples_and_thinking,
    token_cost,
)
from harness.forecasting.surface_laws import fit_surface_laws
from harness.metrics.surface import measure_surface
from tests.support.model_configs import QWEN3_0_6B

BUDGETS = [128, 512, 2048, 8192]


def random_surface(seed: int, problems: int = 30, samples: int = 8):
    rng = np.random.default_rng(seed)
    budgets = np.sort(rng.choice(np.arange(64, 16384), size=4, replace=False))
    correct, _answers, tokens, prompt = synthetic_sweep(problems, samples, budgets, seed)
    forecast = fit_surface_laws(measure_surface(correct, budgets, tokens=tokens, resamples=100, seed=seed))
    return forecast, tokens, prompt


def cost_functions(tokens, prompt, seed):
    rng = np.random.default_rng(seed)
    model = CostModel(ModelArchitecture.from_config(QWEN3_0_6B), batch=int(rng.integers(1, 300)))
    width = tokens.shape[2]

    def convex(ks, column):  # not linear in k: the planner takes any cost
        return (1.0 + column) * np.asarray(ks, dtype=float) ** 1.3

    convex.unit = "convex"  # type: ignore[attr-defined]
    return [
        token_cost(tokens, prompt),
        token_cost(tokens),
        compute_cost(model, tokens, prompt),
        compute_cost(model, tokens, prompt, HARDWARE["h100"]),
        LinearCost("random", rng.random(width) * 10, rng.random(width)),
        LinearCost("per sample", np.zeros(width), np.ones(width)),  # every budget costs the same: ties
        convex,
    ]


def brute_force(forecast, cost, k_max, target, spend):
    """Plain loops over every (k, B): the reference the planner must equal."""
    points = []
    for column, budget in enumerate(forecast.budgets):
        for k in range(1, k_max + 1):
            coverage, low, high = (float(v[0]) for v in forecast.coverage([k], column))
            if math.isfinite(coverage):
                points.append((k, int(budget), column, coverage, low, high, float(cost(np.array([k]), column)[0])))

    def cheapest(condition):
        chosen = [p for p in points if condition(p)]
        return min(chosen, key=lambda p: (p[6], -p[3], p[0], p[2]), default=None)

    reached = cheapest(lambda p: p[3] >= target)
    conservative = cheapest(lambda p: p[4] >= target)
    optimistic = cheapest(lambda p: p[5] >= target)
    best = min(points, key=lambda p: (-p[3], p[6], p[0], p[2]))
    affordable = [p for p in points if p[6] <= spend]
    bought = min(affordable, key=lambda p: (-p[3], p[6], p[0], p[2]), default=None)
    frontier = [
        p for p in points if not any((q[6] <= p[6] and q[3] > p[3]) or (q[6] < p[6] and q[3] >= p[3]) for q in points)
    ]
    # of equal (cost, coverage) points the one with fewer samples, then the shorter budget; in increasing cost
    unique = {(p[6], p[3]): p for p in sorted(frontier, key=lambda p: (p[0], p[2]), reverse=True)}
    frontier = sorted(unique.values(), key=lambda p: (p[6], p[3]))
    return reached, conservative, optimistic, best, bought, frontier


def same(point, reference):
    if reference is None:
        return point is None
    return point is not None and (point.k, point.budget) == reference[:2] and point.cost == pytest.approx(reference[6])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("forecast_beyond", [False, True], ids=["measured", "forecast"])
def test_the_planner_equals_a_brute_force_search(seed, forecast_beyond):
    forecast, tokens, prompt = random_surface(seed)
    k_max = 8 if not forecast_beyond else 24
    rng = np.random.default_rng(100 + seed)
    for cost in cost_functions(tokens, prompt, seed):
        costs = [cost(np.arange(1, k_max + 1), column) for column in range(len(forecast.budgets))]
        spend = float(rng.uniform(np.min(costs), np.max(costs)))
        top = float(np.nanmax(forecast.grid(k_max)[0]))
        for target in (0.3 * top, 0.9 * top, min(0.999, top + 0.01)):
            plan = plan_samples_and_thinking(forecast, cost, target=target, spend=spend, k_max=k_max)
            reached, conservative, optimistic, best, bought, frontier = brute_force(
                forecast, cost, k_max, target, spend
            )
            answer = plan.target
            assert same(answer.point, reached), (cost.unit, target)
            assert answer.reached == (reached is not None)
            assert same(answer.conservative, conservative) and same(answer.optimistic, optimistic)
            assert same(answer.best, best)
            assert same(plan.spend.point, bought)
            assert [(p.k, p.budget) for p in plan.frontier] == [p[:2] for p in frontier]
            if answer.point is not None:
                assert answer.point.low <= answer.point.coverage <= answer.point.high
                assert answer.point.measured == (answer.point.k <= 8)


def test_an_unreachable_target_is_an_answer():
    forecast, tokens, prompt = random_surface(7)
    plan = plan_samples_and_thinking(forecast, token_cost(tokens, prompt), target=0.9999, k_max=8)
    answer = plan.target
    assert answer.reached is False and answer.point is None
    top = forecast.grid(8)[0].max()
    assert answer.best.coverage == top and answer.best.k == 8
    assert "no (k, B) with k <= 8 reaches coverage 0.9999; the best reachable is" in answer.note
    assert f"{top:.3f}" in answer.note and f"{answer.best.cost:.4g}" in answer.note
    summary = json.loads(json.dumps(plan.to_json()))
    assert summary["target"]["reached"] is False and summary["target"]["point"] is None
    assert summary["target"]["best"]["coverage"] == top


def test_a_spend_below_every_point_buys_nothing_and_says_so():
    forecast, tokens, prompt = random_surface(8)
    cost = token_cost(tokens, prompt)
    cheapest = min(float(cost(np.array([1]), column)[0]) for column in range(4))
    plan = plan_samples_and_thinking(forecast, cost, spend=cheapest / 2, k_max=8)
    assert plan.spend.point is None and f"the cheapest (k, B) costs {cheapest:.4g}" in plan.spend.note


def test_more_samples_or_longer_thinking():
    """A surface known in closed form: at B = 256 one of 8 samples is right (coverage k / 8), at B = 4096 six
    of 8 (coverage 0.75, 27/28, then 1). Where thinking costs 100 x a sample, one more sample is the better
    buy; where it costs 1.5 x, the longer budget is."""
    correct = np.zeros((10, 8, 2), dtype=bool)
    correct[:, :1, 0] = True
    correct[:, :6, 1] = True
    forecast = fit_surface_laws(measure_surface(correct, [256, 4096], resamples=20))
    np.testing.assert_allclose(forecast.grid(8)[0][:, 0], np.arange(1, 9) / 8)

    costly_thinking = LinearCost("x", np.zeros(2), np.array([1.0, 100.0]))
    spent = plan_samples_and_thinking(forecast, costly_thinking, spend=3.0, k_max=8).spend
    assert (spent.point.k, spent.point.budget) == (3, 256) and spent.point.coverage == pytest.approx(0.375)
    assert spent.marginal.more_samples == pytest.approx(0.125)
    assert spent.marginal.longer_thinking == pytest.approx((1.0 - 0.375) / (300.0 - 3.0))
    assert spent.marginal.answer == MORE_SAMPLES and spent.note == "next: more samples"
    assert (spent.marginal.next_sample.k, spent.marginal.next_budget.budget) == (4, 4096)

    cheap_thinking = LinearCost("x", np.zeros(2), np.array([1.0, 1.5]))
    spent = plan_samples_and_thinking(forecast, cheap_thinking, spend=1.2, k_max=8).spend
    assert (spent.point.k, spent.point.budget) == (1, 256)
    assert spent.marginal.more_samples == pytest.approx(0.125)
    assert spent.marginal.longer_thinking == pytest.approx((0.75 - 0.125) / 0.5)
    assert spent.marginal.answer == LONGER_THINKING

    # coverage 1 at k = 3 with the long budget: the best buy at any large spend, and no step gains more
    edge = plan_samples_and_thinking(forecast, cheap_thinking, spend=1e9, k_max=8).spend
    assert (edge.point.k, edge.point.budget, edge.point.cost) == (3, 4096, 4.5)
    assert edge.marginal.more_samples == 0.0 and edge.marginal.longer_thinking is None
    assert edge.marginal.answer == NEITHER and edge.marginal.next_budget is None

    # a longer budget at no extra cost is taken; a free step's rate is infinite, "free" in JSON
    free_thinking = LinearCost("x", np.zeros(2), np.array([1.0, 1.0]))
    spent = plan_samples_and_thinking(forecast, free_thinking, spend=1.0, k_max=8).spend
    assert (spent.point.k, spent.point.budget) == (1, 4096)
    spent = plan_samples_and_thinking(forecast, free_thinking, target=0.1, k_max=8).target
    assert (spent.point.k, spent.point.budget) == (1, 4096)
    free = Marginal(np.inf, None, LONGER_THINKING, None, None)
    assert json.loads(json.dumps(free.to_json()))["more_samples"] == "free"


def test_frontier_table_is_spend_to_best_point():
    forecast, tokens, prompt = random_surface(3, samples=16)
    plan = plan_samples_and_thinking(forecast, token_cost(tokens, prompt))
    assert plan.k_max == 160
    table = plan.frontier_table(6)
    assert 2 <= len(table) <= 6 and table[0] == plan.frontier[0] and table[-1] == plan.frontier[-1]
    costs = [point.cost for point in plan.frontier]
    for point in table:
        # each row is the best buy at its spend: nothing at most as costly covers more
        assert point.coverage == max(p.coverage for p in plan.frontier if p.cost <= point.cost)
    assert costs == sorted(costs)
    summary = json.loads(json.dumps(plan.to_json(frontier_rows=6)))
    assert len(summary["frontier"]) == len(table) and summary["frontier_points"] == len(plan.frontier)
    assert summary["unit"] == "tokens" and summary["measured_k"] == 16


def test_costs_from_measured_tokens():
    _forecast, tokens, prompt = random_surface(5)
    counted = token_cost(tokens, prompt)
    np.testing.assert_allclose(counted.per_sample, tokens.mean(axis=1).sum(axis=0))
    np.testing.assert_allclose(counted.fixed, prompt.sum())
    np.testing.assert_allclose(counted(np.array([1, 3]), 2), prompt.sum() + np.array([1, 3]) * counted.per_sample[2])
    # compute: the mean over measured samples of each sample's cost, not the cost of the mean length
    model = CostModel(ModelArchitecture.from_config(QWEN3_0_6B), batch=16)
    flops = compute_cost(model, tokens, prompt)
    for column in range(4):
        direct = sum(
            model.request(prompt[p], tokens[p, :, column]).flops for p in range(len(prompt))
        )  # k = n samples per problem, each request priced by the cost model
        assert flops(np.array([tokens.shape[1]]), column)[0] == pytest.approx(direct, rel=1e-12)
    eflops = compute_cost(model, tokens, prompt, HARDWARE["b200"])
    assert eflops.unit == "eFLOPs (b200)" and np.all(eflops.per_sample > flops.per_sample)
    # money: per token, or per GPU hour for the time eFLOPs take at peak
    priced = money_cost(tokens, prompt, Prices(per_million_tokens=2.0))
    np.testing.assert_allclose(priced.per_sample, counted.per_sample * 2e-6)
    np.testing.assert_allclose(priced.fixed, counted.fixed * 2e-6)
    hourly = money_cost(tokens, prompt, Prices(gpu_hour=3.6), model, HARDWARE["b200"])
    np.testing.assert_allclose(hourly.per_sample, eflops.per_sample / HARDWARE["b200"].flops_per_s / 3600 * 3.6)
    with pytest.raises(OptionError) as error:
        money_cost(tokens, prompt, Prices(gpu_hour=3.6))
    assert error.value.option == "hardware"
    with pytest.raises(OptionError) as error:
        money_cost(tokens, prompt, Prices())
    assert error.value.option == "prices"


def test_bad_input_is_named():
    forecast, tokens, prompt = random_surface(1)
    cost = token_cost(tokens, prompt)
    for arguments, option in [
        ({"target": 0.0}, "target"),
        ({"target": 1.0}, "target"),
        ({"target": 1.5}, "target"),
        ({"spend": 0.0}, "spend"),
        ({"k_max": 4}, "k_max"),
    ]:
        with pytest.raises(OptionError) as error:
            plan_samples_and_thinking(forecast, cost, **arguments)
        assert error.value.option == option
    with pytest.raises(OptionError) as error:
        plan_samples_and_thinking(forecast, LinearCost("x", np.zeros(4), -np.ones(4)), target=0.5)
    assert error.value.option == "cost"
    with pytest.raises(OptionError) as error:
        token_cost(tokens, prompt[:3])
    assert error.value.option == "prompt_tokens"
    with pytest.raises(OptionError) as error:
        token_cost(tokens[:, :, 0])
    assert error.value.option == "tokens"
    model = CostModel(ModelArchitecture.from_config(QWEN3_0_6B))
    with pytest.raises(OptionError, match="prefill") as error:
        compute_cost(model, tokens, None)
    assert error.value.option == "prompt_tokens"
