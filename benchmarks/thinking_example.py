"""The planner for an 8B reasoning model on an H100, computed from its config.json: docs/thinking.md's example.

``python -m benchmarks.thinking_example`` prints, as Markdown:

1. what one sample costs Qwen3-8B on an H100 at each thinking length, in FLOPs and in eFLOPs (the cost model of
   ``harness.forecasting.cost_model``, from the config's fields in ``benchmarks.planner.QWEN3_8B_CONFIG``), and
   the share of memory traffic that is KV-cache reads;
2. the joint planner's answers under tokens, FLOPs and eFLOPs for a target and a spend, on a surface shaped like a
   sweep of an AIME-sized run (60 problems x 64 samples, budgets 1k to 32k, median natural thinking 6k tokens):
   a synthetic, seeded surface (``benchmarks.planner.synthetic_sweep``), since no GPU measured one here. The
   costs are the model's; the coverage numbers only illustrate how the choice moves with the cost.

No GPU is needed: planning is arithmetic on a measured (here: synthetic) surface and the model's config.
"""

from __future__ import annotations

import numpy as np

from benchmarks.planner import QWEN3_8B_CONFIG, synthetic_sweep
from harness.forecasting.cost_model import HARDWARE, CostModel, ModelArchitecture
from harness.forecasting.planner import compute_cost, plan_samples_and_thinking, token_cost
from harness.forecasting.surface_laws import fit_surface_laws
from harness.metrics.surface import measure_surface

BUDGETS = (1024, 2048, 4096, 8192, 16384, 32768)
PROBLEMS, SAMPLES, THINKING, PROMPT = 60, 64, 6000, 200
TARGET = 0.8


def cost_table(model: CostModel) -> list[str]:
    hardware = HARDWARE["h100"]
    lines = [
        "| generated tokens | FLOPs | eFLOPs (H100) | eFLOPs / FLOPs | KV bytes / weight bytes |",
        "|---:|---:|---:|---:|---:|",
    ]
    for length in (1024, 4096, 8192, 16384, 32768):
        tally = model.decode(np.array([float(length)]), np.array([float(PROMPT)]))
        flops, eflops = float(tally.flops[0]), float(tally.eflops(hardware)[0])
        ratio = float(tally.kv_bytes[0] / tally.weight_bytes[0])
        lines.append(f"| {length:,} | {flops:.3g} | {eflops:.3g} | {eflops / flops:.1f} | {ratio:.2f} |")
    return lines


def main() -> None:
    model = CostModel(ModelArchitecture.from_config(QWEN3_8B_CONFIG))
    print(f"Qwen3-8B, one sample after a {PROMPT}-token prompt, batch {model.batch:g} (weights read once per step):\n")
    print("\n".join(cost_table(model)))
    correct, answers, tokens, _ = synthetic_sweep(PROBLEMS, SAMPLES, BUDGETS, seed=0, thinking=THINKING)
    prompt = np.full(PROBLEMS, float(PROMPT))
    forecast = fit_surface_laws(measure_surface(correct, BUDGETS, answers=answers, tokens=tokens))
    costs = {
        "tokens": token_cost(tokens, prompt),
        "FLOPs": compute_cost(model, tokens, prompt),
        "eFLOPs (H100)": compute_cost(model, tokens, prompt, HARDWARE["h100"]),
    }
    print(f"\nThe planner, target coverage {TARGET} (k up to {10 * SAMPLES}):\n")
    print("| cost | cheapest (k, B) | coverage [90% interval] | cost | then: more samples or longer thinking? |")
    print("|---|---|---|---:|---|")
    for name, cost in costs.items():
        plan = plan_samples_and_thinking(forecast, cost, target=TARGET)
        assert plan.target is not None
        point = plan.target.point or plan.target.best
        marginal = plan.target.marginal.answer if plan.target.marginal else "-"
        print(
            f"| {name} | k = {point.k}, B = {point.budget:,} | {point.coverage:.3f} [{point.low:.3f}, "
            f"{point.high:.3f}] | {point.cost:.3g} | {marginal} |"
        )
    eflops = costs["eFLOPs (H100)"]
    spend = float(eflops(np.array([8]), BUDGETS.index(8192))[0])
    plan = plan_samples_and_thinking(forecast, eflops, spend=spend)
    assert plan.spend is not None and plan.spend.point is not None
    point = plan.spend.point
    print(
        f"\nSpend {spend:.3g} eFLOPs (what k = 8 at B = 8,192 costs): best k = {point.k}, B = {point.budget:,}, "
        f"coverage {point.coverage:.3f}; next: {plan.spend.marginal.answer if plan.spend.marginal else '-'}."
    )
    print("\nFrontier in eFLOPs (spend -> best k, B, coverage):\n")
    print("| eFLOPs | k | B | coverage |\n|---:|---:|---:|---:|")
    for row in plan.frontier_table(8):
        print(f"| {row.cost:.3g} | {row.k} | {row.budget:,} | {row.coverage:.3f} |")


if __name__ == "__main__":
    main()
