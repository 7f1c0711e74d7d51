"""The joint planner over samples and thinking on a run's sweep (``Run.budget(over="samples,thinking")``, ``ttc
budget --over samples,thinking``): its choice is a brute-force search over the measured surface, eFLOPs reduce
to FLOPs at infinite bandwidth, an unreachable target is an answer, and bad cost settings are one error naming
the option."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness
from harness.core.errors import OptionError
from harness.forecasting.planner import JointPlan
from harness.metrics.estimators import pass_at_k
from harness.store import RunStore
from tests.integration.test_budget_forcing import PROBLEMS, SAMPLES, trace_run
from tests.support.helpers import ttc
from tests.support.model_configs import QWEN3_8B

BUDGETS = [4, 8, 16]


@pytest.fixture(scope="module")
def swept(shared_data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("swept")
    run = trace_run(shared_data, root)
    harness.sweep(run.run_dir, BUDGETS, answer_tokens=3, progress="quiet", log=lambda line: None)
    harness.analyze(run.run_dir)
    return run.run_dir


def measured_grid(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, token cost) at every k = 1..n (rows) and budget (columns), straight from the stored rows."""
    store = RunStore.open(run_dir)
    key = store.manifest["active_sweep"]
    verdict_key = store.resolve_verdict_key(None)
    prompts = store.read_samples(["prompt_tokens"]).to_pylist()
    prompt_total = sum({row["problem_id"]: row["prompt_tokens"] for row in prompts}.values())
    coverage = np.zeros((SAMPLES, len(BUDGETS)))
    cost = np.zeros((SAMPLES, len(BUDGETS)))
    for column, budget in enumerate(BUDGETS):
        correct: dict[str, int] = {}
        for row in store.sweep_verdicts(key, budget, verdict_key).read(["correct"]).to_pylist():
            correct[row["problem_id"]] = correct.get(row["problem_id"], 0) + int(row["correct"])
        tokens = store.sweep_samples(key, budget).read(["n_tokens"]).column("n_tokens").to_pylist()
        per_sample_total = sum(tokens) / SAMPLES  # the mean tokens per sample, summed over problems
        for k in range(1, SAMPLES + 1):
            coverage[k - 1, column] = np.mean([pass_at_k(SAMPLES, c, k) for c in correct.values()])
            cost[k - 1, column] = prompt_total + k * per_sample_total
    return coverage, cost


@pytest.mark.parametrize("target", [0.3, 0.6, 0.9])
def test_the_cheapest_k_and_budget_is_the_brute_force_one(swept, target):
    plan = harness.load_run(swept).budget(target, over="samples,thinking", k_max=SAMPLES)
    assert isinstance(plan, JointPlan) and plan.unit == "tokens" and plan.budgets == BUDGETS
    coverage, cost = measured_grid(swept)
    reaching = [(cost[r, c], -coverage[r, c], r + 1, BUDGETS[c]) for r, c in zip(*np.nonzero(coverage >= target))]
    best_cost, _, k, budget = min(reaching)
    assert plan.target is not None and plan.target.reached and plan.target.point is not None
    assert (plan.target.point.k, plan.target.point.budget) == (k, budget)
    assert plan.target.point.cost == pytest.approx(best_cost)
    assert plan.target.point.coverage == pytest.approx(coverage[k - 1, BUDGETS.index(budget)])


def test_the_best_point_for_a_spend_is_the_brute_force_one(swept):
    coverage, cost = measured_grid(swept)
    spend = float(np.median(cost))
    plan = harness.load_run(swept).budget(0.5, over="samples,thinking", spend=spend, k_max=SAMPLES)
    assert plan.spend is not None and plan.spend.point is not None
    within = coverage[cost <= spend]
    assert plan.spend.point.coverage == pytest.approx(within.max()) and plan.spend.point.cost <= spend
    assert plan.spend.marginal is not None and plan.spend.marginal.answer in (
        "more samples",
        "longer thinking",
        "neither",
    )


def test_an_unreachable_target_is_an_answer_with_the_best_reachable(swept):
    plan = harness.load_run(swept).budget(0.999999, over="samples,thinking", k_max=SAMPLES)
    coverage, _ = measured_grid(swept)
    assert plan.target is not None
    if coverage.max() < 0.999999:
        assert not plan.target.reached and plan.target.point is None
        assert plan.target.best.coverage == pytest.approx(coverage.max())
        assert "reaches coverage" in plan.target.note


def test_eflops_reduce_to_flops_at_infinite_bandwidth_and_exceed_them_otherwise(swept, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(QWEN3_8B))
    loaded = harness.load_run(swept)
    common: dict[str, Any] = dict(over="samples,thinking", model_config=config, k_max=SAMPLES)
    flops = loaded.budget(0.5, cost="flops", **common)
    free = loaded.budget(0.5, cost="eflops", flops_per_s=989e12, bytes_per_s=math.inf, **common)
    h100 = loaded.budget(0.5, cost="eflops", hardware="h100", **common)
    assert isinstance(flops, JointPlan) and isinstance(free, JointPlan) and isinstance(h100, JointPlan)
    assert flops.unit == "FLOPs" and h100.unit == "eFLOPs (h100)"
    flops_costs = [point.cost for point in flops.frontier]
    assert [point.cost for point in free.frontier] == pytest.approx(flops_costs)
    assert min(point.cost for point in h100.frontier) > min(flops_costs)  # memory traffic is not free


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"cost": "eflops", "model_config": "CONFIG"}, "hardware"),  # no hardware: never FLOPs in its place
        ({"cost": "eflops", "model_config": "CONFIG", "hardware": "x100"}, "hardware"),
        ({"cost": "eflops", "model_config": "CONFIG", "flops_per_s": 1e15}, "hardware"),
        ({"cost": "eflops", "hardware": "h100"}, "model_config"),  # the fake model's config has no model_type
        ({"cost": "flops", "model_config": "MISSING"}, "model_config"),
        ({"cost": "money"}, "cost"),
        ({"cost": "joules"}, "cost"),
        ({"cost": "tokens", "hardware": "h100"}, "hardware"),
        ({"target": 1.0}, "target"),
        ({"target": 0.0}, "target"),
    ],
)
def test_bad_cost_settings_are_one_error_naming_the_option(swept, tmp_path, options, option):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(QWEN3_8B))
    paths = {"CONFIG": config, "MISSING": tmp_path / "missing.json"}
    options = {name: paths.get(value, value) if isinstance(value, str) else value for name, value in options.items()}
    target = options.pop("target", 0.5)
    with pytest.raises(OptionError) as error:
        harness.load_run(swept).budget(target, over="samples,thinking", **options)
    assert error.value.option == option


def test_a_run_without_a_sweep_is_told_to_sweep(shared_data, tmp_path):
    run = trace_run(shared_data, tmp_path)
    with pytest.raises(OptionError, match="ttc sweep") as error:
        harness.load_run(run.run_dir).budget(0.5, over="samples,thinking")
    assert error.value.option == "over"
    with pytest.raises(OptionError) as error:
        harness.load_run(run.run_dir).budget(0.5, cost="eflops")
    assert error.value.option == "cost"


def test_budget_over_samples_and_thinking_from_the_command_line(swept):
    done = ttc("budget", str(swept), "--over", "samples,thinking", "--target", "0.6", "--spend", "4000", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["over"] == ["samples", "thinking"] and result["joint_plan"]["target"]["reached"]
    assert result["joint_plan"]["frontier"] and result["joint_plan"]["spend"]["spend"] == 4000
    shown = ttc("budget", str(swept), "--over", "samples,thinking", "--target", "0.9999", "--k-max", str(SAMPLES))
    assert shown.returncode == 0, shown.stderr  # an unreachable target is an answer, not an error
    assert "frontier" in shown.stdout and "more samples or longer thinking?" in shown.stdout
    bad = ttc("budget", str(swept), "--over", "samples,thinking", "--cost", "eflops")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --hardware: --cost eflops needs the hardware")


def test_the_report_prices_the_run_in_eflops_on_a_hardware(swept, tmp_path):
    from harness.forecasting.cost_model import HARDWARE, CostModel, ModelArchitecture
    from harness.reporting.run_costs import CostBasis, run_eflops

    config = tmp_path / "config.json"
    config.write_text(json.dumps(QWEN3_8B))
    page = harness.load_run(swept).report(tmp_path / "report.html", hardware="h100", model_config=config)
    text = Path(page).read_text()
    assert "eFLOPs per sample on h100 (memory traffic priced)" in text and "<th>eFLOPs (h100)</th>" in text
    figures = run_eflops(RunStore.open(swept), CostBasis(HARDWARE["h100"], config))
    assert figures["eflops_per_sample"] > figures["flops_per_sample"] > 0
    # the cost model's figures for the stored tokens: every sample's decode after its problem's prompt
    store = RunStore.open(swept)
    rows = store.read_samples(["n_tokens", "prompt_tokens"]).to_pylist()
    model = CostModel(ModelArchitecture.from_config(QWEN3_8B))
    decode = model.decode(np.array([row["n_tokens"] for row in rows]), np.array([row["prompt_tokens"] for row in rows]))
    assert figures["flops_per_sample"] == pytest.approx(float(decode.flops.mean()))
    with pytest.raises(OptionError) as error:
        harness.load_run(swept).report(tmp_path / "other.html", hardware="h100")  # the fake model has no config
    assert error.value.option == "model_config"
    with pytest.raises(OptionError) as error:
        harness.load_run(swept).report(tmp_path / "other.html", model_config=config)
    assert error.value.option == "hardware"


def test_a_budget_over_samples_alone_adds_each_ks_eflops_on_a_hardware(swept, tmp_path):
    from harness.forecasting.budget import BudgetPlan
    from harness.forecasting.cost_model import HARDWARE
    from harness.reporting.run_costs import CostBasis, run_eflops

    config = tmp_path / "config.json"
    config.write_text(json.dumps(QWEN3_8B))
    plan = harness.load_run(swept).budget(0.3, hardware="h100", model_config=config)
    assert isinstance(plan, BudgetPlan) and plan.eflops is not None and plan.eflops["hardware"] == "h100"
    figures = run_eflops(RunStore.open(swept), CostBasis(HARDWARE["h100"], config))
    for name, cost in plan.costs.items():
        expected = PROBLEMS * (cost.k * figures["eflops_per_sample"] + figures["prefill_eflops_per_problem"])
        assert plan.eflops[name] == pytest.approx(expected)
    assert plan.to_json()["eflops"] == plan.eflops
    assert harness.load_run(swept).budget(0.3).eflops is None  # no hardware, no eFLOPs (never FLOPs instead)
    for options, option in (({"model_config": config}, "hardware"), ({"spend": 5.0}, "spend")):
        with pytest.raises(OptionError) as error:
            harness.load_run(swept).budget(0.3, **options)
        assert error.value.option == option
