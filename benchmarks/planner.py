"""Figure 19: the samples x thinking surface and the joint planner at scale (issue 19's performance target).

On 1,000 problems x 64 samples x 6 thinking budgets (synthetic, seeded): measure the surface (coverage at every
k and budget, majority vote at k = 1, 2, 4, ..., 64, bootstrap intervals over problems), fit its laws (a power
law in k per budget with bootstrap refits, the law in B chosen by held-out fit), price every (k, B) in eFLOPs
for Qwen3-8B on an H100 from the measured tokens, and plan: the cheapest (k, B) for a target, the best for a
spend, the frontier. Target: under 5 s on 2 cores. Timed as the median of repeats, each part separately.

The inputs are a synthetic one-trace sweep (``synthetic_sweep``): each sample has a natural thinking length
(log-normal); cut at budget B, its forced answer is right less often the more of its thinking was cut, and a
sample whose thinking ended before B keeps its verdict at every longer budget, as in a real sweep.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.common import median
from benchmarks.suite import FigureResult, Row
from harness.forecasting.cost_model import HARDWARE, CostModel, ModelArchitecture
from harness.forecasting.planner import compute_cost, plan_samples_and_thinking
from harness.forecasting.surface_laws import fit_surface_laws
from harness.metrics.surface import measure_surface

FULL_SHAPE = (1000, 64)
QUICK_SHAPE = (100, 16)
BUDGETS = (512, 1024, 2048, 4096, 8192, 16384)
QUICK_BUDGETS = (512, 2048, 8192, 16384)
TARGET_SECONDS = 5.0
WRONG_ANSWERS = 4

# The architecture fields of Qwen3-8B's config.json: the model the benchmark prices its samples for.
QWEN3_8B_CONFIG = {
    "model_type": "qwen3",
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def synthetic_sweep(
    problems: int, samples: int, budgets: tuple[int, ...] | np.ndarray = BUDGETS, seed: int = 0, thinking: float = 900
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(correct, answer ids, tokens, prompt tokens): the first three of shape (problems, samples, budgets).

    Answer id 0 is right, 1..4 wrong; tokens are the thinking kept (its natural length, at most B) plus an
    answer of 10 to 60 tokens; ``thinking`` is the median natural thinking length.
    """
    rng = np.random.default_rng(seed)
    budgets = np.asarray(budgets)
    skill = rng.beta(0.7, 1.0, size=(problems, 1, 1))
    length = rng.lognormal(np.log(thinking), 0.7, size=(problems, samples, 1))
    kept = np.minimum(budgets / length, 1.0)
    correct = rng.random((problems, samples, 1)) < skill * kept**1.5
    correct = np.broadcast_to(correct, (problems, samples, budgets.size)).copy()
    correct &= rng.random(correct.shape) < np.where(kept >= 1, 1.0, 0.9)  # a cut thought sometimes derails
    answers = np.where(correct, 0, rng.integers(1, WRONG_ANSWERS + 1, size=correct.shape))
    tokens = np.minimum(length, budgets) + rng.integers(10, 60, size=correct.shape)
    prompt = rng.integers(60, 400, size=problems).astype(np.float64)
    return correct, answers, tokens, prompt


def plan_once(
    correct: np.ndarray, answers: np.ndarray, tokens: np.ndarray, prompt: np.ndarray, budgets: tuple[int, ...]
) -> dict[str, Any]:
    """The timed work: surface, laws, eFLOPs costs, plan. Returns the seconds of each part and the answers."""
    parts: dict[str, float] = {}
    start = time.perf_counter()
    surface = measure_surface(correct, budgets, answers=answers, tokens=tokens)
    parts["surface"] = time.perf_counter() - start

    start = time.perf_counter()
    forecast = fit_surface_laws(surface)
    parts["laws"] = time.perf_counter() - start

    start = time.perf_counter()
    model = CostModel(ModelArchitecture.from_config(QWEN3_8B_CONFIG))
    cost = compute_cost(model, tokens, prompt, HARDWARE["h100"])
    middle = cost(np.array([surface.samples // 4]), len(budgets) // 2)[0]
    plan = plan_samples_and_thinking(forecast, cost, target=0.8, spend=float(middle))
    summary = forecast.to_json() | {"plan": plan.to_json()}
    parts["costs_and_plan"] = time.perf_counter() - start
    assert plan.target is not None and plan.spend is not None and plan.spend.point is not None
    point = plan.target.point or plan.target.best
    return {
        "seconds": parts,
        "total_seconds": sum(parts.values()),
        "vote_method": surface.vote_method,
        "budget_law": summary["budget_law"]
        and {key: summary["budget_law"][key] for key in ("law", "held_out_rmse", "rmse_mean")},
        "target": {
            "target": 0.8,
            "reached": plan.target.reached,
            "k": point.k,
            "budget": point.budget,
            "coverage": point.coverage,
            "cost_eflops": point.cost,
        },
        "spend": {
            "spend": float(middle),
            "k": plan.spend.point.k,
            "budget": plan.spend.point.budget,
            "coverage": plan.spend.point.coverage,
            "next": plan.spend.marginal and plan.spend.marginal.answer,
        },
        "frontier_points": len(plan.frontier),
    }


def run_planner_benchmark(
    problems: int, samples: int, budgets: tuple[int, ...], repeats: int = 3, seed: int = 0
) -> dict[str, Any]:
    inputs = synthetic_sweep(problems, samples, budgets, seed)
    runs = [plan_once(*inputs, budgets) for _ in range(repeats)]
    totals = [run["total_seconds"] for run in runs]
    return {
        "problems": problems,
        "samples_per_problem": samples,
        "budgets": list(budgets),
        "repeats": repeats,
        "total_seconds": totals,
        "median_total_seconds": median(totals),
        "median_part_seconds": {part: median([run["seconds"][part] for run in runs]) for part in runs[0]["seconds"]},
        "results": {key: value for key, value in runs[-1].items() if key not in ("seconds", "total_seconds")},
    }


def run_figure(quick: bool) -> FigureResult:
    problems, samples = QUICK_SHAPE if quick else FULL_SHAPE
    budgets = QUICK_BUDGETS if quick else BUDGETS
    figures = run_planner_benchmark(problems, samples, budgets, repeats=1 if quick else 3)
    parts = figures["median_part_seconds"]
    seconds = figures["median_total_seconds"]
    row = Row(
        "9 surface and planner",
        f"surface + laws + eFLOPs plan, {problems:,} x {samples} x {len(budgets)} budgets",
        seconds,
        "s",
        target="" if quick else f"< {TARGET_SECONDS:g} s",
        met=None if quick else seconds < TARGET_SECONDS,
        detail=(
            f"surface {parts['surface']:.2f} s ({figures['results']['vote_method']} vote), laws "
            f"{parts['laws']:.2f} s, costs and plan {parts['costs_and_plan']:.2f} s; median of {figures['repeats']}"
        ),
    )
    return FigureResult([row], figures)
