"""The samples x thinking surface of a run: its active sweep's verdicts as arrays, measured and fitted.

A sweep (``ttc sweep``) stores every sample at each thinking budget with a verdict; this module reads the run's
active sweep for a verdict set into arrays of shape (problems, samples, budgets) (``SweepArrays``: verdicts,
answer ids for majority vote, generated tokens; prompt tokens per problem), then measures the surface
(``harness.metrics.surface``) and fits its laws (``harness.forecasting.surface_laws``). ``analyze`` writes it
as ``summary.json["surface"]``; ``Run.budget(over="samples,thinking")`` plans over it (``plan_over_thinking``,
priced by ``CostSettings``: tokens, FLOPs, memory-aware eFLOPs or money).

Only problems whose samples are judged at every budget enter, the same number of samples each (the largest
count most complete problems share); the others are counted in ``left_out_problems``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness.core.errors import OptionError, check_choice
from harness.forecasting.cost_model import HARDWARE, CostModel, Hardware, ModelArchitecture, resolve_hardware
from harness.forecasting.costs import Prices
from harness.forecasting.planner import (
    JointPlan,
    LinearCost,
    compute_cost,
    money_cost,
    plan_samples_and_thinking,
    token_cost,
)
from harness.forecasting.surface_laws import SurfaceForecast, fit_surface_laws
from harness.metrics.surface import measure_surface
from harness.pipeline.sweep import read_sweep_table
from harness.store import RunStore


@dataclass(frozen=True)
class SweepArrays:
    """A sweep's verdicts at every budget as arrays of shape (problems, samples, budgets)."""

    sweep: str
    budgets: np.ndarray
    problem_ids: list[str]
    correct: np.ndarray
    answers: np.ndarray  # answer ids per (problem, budget): equal answers share one; -1 for no answer
    tokens: np.ndarray  # generated tokens (thinking kept and answer) of each sample at each budget
    prompt_tokens: np.ndarray  # per problem
    left_out_problems: int


def sweep_arrays(store: RunStore, verdict_key: str, sweep: str | None = None) -> SweepArrays | None:
    """The arrays of ``sweep`` (default: the run's active sweep) judged as ``verdict_key`` judges; None when
    the run has no such sweep or no problem is judged at every budget."""
    sweep = sweep or store.manifest.get("active_sweep")
    if sweep is None or sweep not in store.sweeps():
        return None
    budgets = store.sweep_budgets(sweep)
    if not budgets:
        return None
    tables = [read_sweep_table(store, sweep, budget, verdict_key) for budget in budgets]
    names = sorted(set().union(*(pc.unique(table.column("problem_id")).to_pylist() for table in tables)))
    if not names:
        return None
    code = {name: position for position, name in enumerate(names)}
    width = 1 + max(int(pc.max(table.column("sample_idx")).as_py() or 0) for table in tables)
    keys = [  # (problem, sample) as one integer per row, in each table's order
        np.array([code[name] for name in table.column("problem_id").to_pylist()], dtype=np.int64) * width
        + table.column("sample_idx").to_numpy()
        for table in tables
    ]
    present = functools.reduce(np.intersect1d, keys)  # judged at every budget; sorted by problem, then sample
    if not present.size:
        return None
    problem_of = present // width
    per_problem = np.bincount(problem_of, minlength=len(names))
    counts = per_problem[per_problem > 0]
    samples = int(np.bincount(counts).argmax())  # the count most problems share
    kept = np.flatnonzero(per_problem >= samples)
    rank = np.arange(present.size) - np.searchsorted(present, problem_of * width)  # position within its problem
    chosen = present[np.isin(problem_of, kept) & (rank < samples)]  # each kept problem's first samples, in order
    shape = (kept.size, samples, len(budgets))
    correct = np.zeros(shape, dtype=bool)
    answers = np.full(shape, -1, dtype=np.int64)
    tokens = np.zeros(shape, dtype=np.float64)
    given = pc.unique(pa.chunked_array([table.column("answer") for table in tables]).drop_null())
    for column, (table, table_keys) in enumerate(zip(tables, keys)):
        order = np.argsort(table_keys)
        rows = order[np.searchsorted(table_keys[order], chosen)]
        correct[:, :, column] = table.column("correct").to_numpy(zero_copy_only=False)[rows].reshape(shape[:2])
        counted = pc.fill_null(table.column("n_tokens"), 0).to_numpy()
        tokens[:, :, column] = counted[rows].reshape(shape[:2])
        # answer ids: equal answers share one (across problems too, which majority vote never compares); an
        # empty or missing answer is -1
        ids = pc.fill_null(pc.index_in(table.column("answer"), value_set=given), -1).to_numpy()
        empty = pc.fill_null(pc.equal(table.column("answer"), ""), True).to_numpy(zero_copy_only=False)
        answers[:, :, column] = np.where(empty, -1, ids)[rows].reshape(shape[:2])
    problem_ids = [names[position] for position in kept]
    prompt = store.read_samples(columns=["prompt_tokens"])
    per_problem = prompt.group_by("problem_id", use_threads=False).aggregate([("prompt_tokens", "max")])
    by_problem = dict(zip(per_problem.column("problem_id").to_pylist(), per_problem.column(1).to_pylist()))
    prompt_tokens = np.array([by_problem.get(problem_id) or 0 for problem_id in problem_ids], dtype=np.float64)
    return SweepArrays(
        sweep=sweep,
        budgets=np.asarray(budgets, dtype=np.int64),
        problem_ids=problem_ids,
        correct=correct,
        answers=answers,
        tokens=tokens,
        prompt_tokens=prompt_tokens,
        left_out_problems=len(names) - int(kept.size),
    )


def run_surface(store: RunStore, verdict_key: str) -> tuple[SurfaceForecast, SweepArrays] | None:
    """The run's surface, measured and fitted, with the arrays it came from (None: no sweep judged so)."""
    arrays = sweep_arrays(store, verdict_key)
    if arrays is None:
        return None
    seed = int((store.manifest["config"].get("sampling") or {}).get("seed") or 0)
    surface = measure_surface(arrays.correct, arrays.budgets, answers=arrays.answers, tokens=arrays.tokens, seed=seed)
    return fit_surface_laws(surface), arrays


def surface_summary(forecast: SurfaceForecast, arrays: SweepArrays) -> dict[str, Any]:
    """``summary.json["surface"]``: the sweep it measures, the measured surface and its laws."""
    return {"sweep": arrays.sweep, "left_out_problems": arrays.left_out_problems, **forecast.to_json()}


COSTS = ("tokens", "flops", "eflops", "money")
AXES = ("samples", "thinking")


@dataclass(frozen=True)
class CostSettings:
    """How the joint planner prices (k, B) (``ttc budget --cost``), checked when made: ``model_config`` (a
    config.json path; default: the run's model's) for FLOPs and eFLOPs, a ``hardware`` preset or both
    ``flops_per_s`` and ``bytes_per_s`` for eFLOPs and for money at a GPU-hour price, a price for money."""

    cost: str = "tokens"
    model_config: str | Path | None = None
    dtype_bytes: float | None = None
    hardware: str | None = None
    flops_per_s: float | None = None
    bytes_per_s: float | None = None
    price_per_mtok: float | None = None
    gpu_hour_price: float | None = None

    def __post_init__(self) -> None:
        check_choice("cost", self.cost, COSTS)
        if self.price_per_mtok is not None and self.gpu_hour_price is not None:
            raise OptionError("gpu_hour_price", "give price_per_mtok or gpu_hour_price, not both")
        Prices(per_million_tokens=self.price_per_mtok, gpu_hour=self.gpu_hour_price)  # checks the prices
        if self.cost == "money" and self.price_per_mtok is None and self.gpu_hour_price is None:
            raise OptionError("cost", "money needs --price-per-mtok or --gpu-hour-price")
        if self.needs_hardware:
            self.resolved_hardware()  # an unknown preset, or figures missing, fail here
        elif self.hardware is not None or self.flops_per_s is not None or self.bytes_per_s is not None:
            raise OptionError(
                "hardware",
                f"prices memory traffic: it applies to --cost eflops (or money per GPU hour), not --cost {self.cost}",
            )

    @property
    def needs_hardware(self) -> bool:
        return self.cost == "eflops" or (self.cost == "money" and self.gpu_hour_price is not None)

    @property
    def needs_model(self) -> bool:
        return self.cost in ("flops", "eflops") or self.needs_hardware

    def resolved_hardware(self) -> Hardware:
        if self.hardware is None and (self.flops_per_s is None or self.bytes_per_s is None):
            raise OptionError(
                "hardware",
                f"--cost {self.cost} needs the hardware: a preset ({', '.join(HARDWARE)}) or both --flops-per-s "
                "and --bytes-per-s (eFLOPs never fall back to FLOPs)",
            )
        return resolve_hardware(self.hardware, self.flops_per_s, self.bytes_per_s)

    def cost_model(self, default_config: Path | None) -> CostModel:
        """The model's cost model, from ``model_config`` or else ``default_config`` (the run's model)."""
        config = self.model_config if self.model_config is not None else default_config
        if config is None or not Path(config).is_file():
            where = "no model_config given" if config is None else f"{config} is not a readable file"
            raise OptionError("model_config", f"--cost {self.cost} needs the model's config.json ({where})")
        return CostModel(ModelArchitecture.from_config(Path(config), dtype_bytes=self.dtype_bytes))

    def cost_function(self, arrays: SweepArrays, default_config: Path | None) -> LinearCost:
        """What k samples per problem at each budget cost for the problem set, from the sweep's measured tokens."""
        if self.cost == "tokens":
            return token_cost(arrays.tokens, arrays.prompt_tokens)
        prices = Prices(per_million_tokens=self.price_per_mtok, gpu_hour=self.gpu_hour_price)
        if self.cost == "money" and not self.needs_hardware:
            return money_cost(arrays.tokens, arrays.prompt_tokens, prices)
        model = self.cost_model(default_config)
        hardware = self.resolved_hardware() if self.needs_hardware else None
        if self.cost == "money":
            return money_cost(arrays.tokens, arrays.prompt_tokens, prices, model, hardware)
        return compute_cost(model, arrays.tokens, arrays.prompt_tokens, hardware)


def parse_axes(over: str | Sequence[str]) -> tuple[str, ...]:
    """``samples`` or ``samples,thinking`` (a text or a sequence) as a tuple; ``OptionError("over", ...)``."""
    parts = over.split(",") if isinstance(over, str) else list(over)
    axes = tuple(str(part).strip() for part in parts)
    if not axes or any(axis not in AXES for axis in axes) or len(set(axes)) != len(axes) or "samples" not in axes:
        raise OptionError("over", f"must be samples or samples,thinking, got {over!r}")
    return tuple(axis for axis in AXES if axis in axes)


def plan_over_thinking(
    store: RunStore,
    verdict_key: str,
    settings: CostSettings,
    *,
    target: float | None = None,
    spend: float | None = None,
    k_max: int | None = None,
) -> JointPlan:
    """The joint plan over samples and thinking of a run's active sweep (``ttc budget --over samples,thinking``):
    the cheapest (k, B) reaching ``target``, the best for ``spend``, and the frontier, priced by ``settings``."""
    measured = run_surface(store, verdict_key)
    if measured is None:
        raise OptionError(
            "over",
            f"planning over thinking needs the run at several thinking budgets: run `ttc sweep {store.path} "
            "--thinking-budgets B1,B2,...` first",
        )
    forecast, arrays = measured
    model_path = (store.manifest.get("model") or {}).get("path")
    default_config = Path(model_path) / "config.json" if model_path else None
    cost = settings.cost_function(arrays, default_config)
    return plan_samples_and_thinking(forecast, cost, target=target, spend=spend, k_max=k_max)
