"""What a run's samples cost on a model's cost model (``harness.forecasting.cost_model``): eFLOPs (or FLOPs) per
sample and per prompt, from the model's config.json and the run's stored tokens. Used by ``ttc compare`` (runs
matched at equal eFLOPs) and the report's cost table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import OptionError
from harness.forecasting.cost_model import CostModel, Hardware, ModelArchitecture
from harness.forecasting.planner import compute_cost
from harness.store import RunStore


def run_cost_model(store: RunStore, config: str | Path | None, dtype_bytes: float | None) -> CostModel:
    """A run's cost model from ``config`` or else its model's config.json; a config that cannot be read is an
    ``OptionError("model_config", ...)`` (eFLOPs never fall back to FLOPs)."""
    if config is None:
        model_path = (store.manifest.get("model") or {}).get("path")
        config = Path(model_path) / "config.json" if model_path else None
    if config is None or not Path(config).is_file():
        where = f"{store.path} records no local model" if config is None else f"{config} is not a readable file"
        raise OptionError("model_config", f"eFLOPs need each model's config.json ({where})")
    return CostModel(ModelArchitecture.from_config(Path(config), dtype_bytes=dtype_bytes))


def eflops_per_problem(
    store: RunStore, problem_ids: Iterable[str], model: CostModel, hardware: Hardware | None
) -> tuple[float, float]:
    """(eFLOPs of one more sample, eFLOPs of the prompt's prefill and its shared KV reads) per problem, from the
    run's stored tokens on ``problem_ids`` (each problem's first n samples, n the fewest any has)."""
    table = store.read_samples(columns=["n_tokens", "prompt_tokens"]).to_pylist()
    shared = set(problem_ids)
    tokens: dict[str, list[float]] = {}
    prompts: dict[str, float] = {}
    for row in table:
        if row["problem_id"] in shared and row["n_tokens"] is not None:
            tokens.setdefault(row["problem_id"], []).append(float(row["n_tokens"]))
            prompts[row["problem_id"]] = float(row["prompt_tokens"] or 0)
    if not tokens:
        raise OptionError("hardware", f"{store.path}: its samples have no token counts to price")
    n = min(len(values) for values in tokens.values())
    ids = sorted(tokens)
    grid = np.array([tokens[problem_id][:n] for problem_id in ids])[:, :, None]
    cost = compute_cost(model, grid, np.array([prompts[problem_id] for problem_id in ids]), hardware)
    return float(cost.per_sample[0]) / len(ids), float(cost.fixed[0]) / len(ids)


@dataclass(frozen=True)
class CostBasis:
    """What the report prices the run's samples on: a hardware, and the model's config.json (None: the run's
    model's), with ``dtype_bytes`` where it lacks a dtype."""

    hardware: Hardware
    model_config: str | Path | None = None
    dtype_bytes: float | None = None


def run_eflops(store: RunStore, basis: CostBasis) -> dict[str, Any]:
    """The report's memory-aware cost of the run: per sample and per prompt, FLOPs (the cost model's: attention
    over the context included) and eFLOPs on the hardware, per problem."""
    model = run_cost_model(store, basis.model_config, basis.dtype_bytes)
    problems = [problem.problem_id for problem in store.problems()]
    flops = eflops_per_problem(store, problems, model, None)
    eflops = eflops_per_problem(store, problems, model, basis.hardware)
    return {
        "hardware": basis.hardware.name,
        "model": model.architecture.name,
        "flops_per_sample": flops[0],
        "prefill_flops_per_problem": flops[1],
        "eflops_per_sample": eflops[0],
        "prefill_eflops_per_problem": eflops[1],
    }


def budget_eflops(store: RunStore, basis: CostBasis, problems: int, ks: Mapping[str, int]) -> dict[str, Any]:
    """eFLOPs of bringing ``problems`` problems to each k of ``ks`` (a budget plan's ``k``, ``k_optimistic``,
    ``k_conservative``): each prompt prefilled once, each sample at the run's measured cost per sample."""
    figures = run_eflops(store, basis)
    per_sample, prefill = figures["eflops_per_sample"], figures["prefill_eflops_per_problem"]
    return {
        "hardware": figures["hardware"],
        "model": figures["model"],
        **{name: problems * (k * per_sample + prefill) for name, k in ks.items()},
    }
