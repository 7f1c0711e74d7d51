"""A joint planner over samples and thinking: the cheapest (k, B) for a coverage target, the best for a spend.

The candidates are every k = 1..k_max at every measured thinking budget B: measured coverage for k up to the
samples drawn, the budget's power law beyond (``SurfaceForecast``). A cost function prices k samples per
problem at budget B for the whole problem set; its builders here take tokens per sample from what was measured
at each budget (thinking and answer), so a budget that models rarely use in full costs what it really cost:

* ``token_cost``: prompt tokens (once per problem) plus generated tokens;
* ``compute_cost``: FLOPs, or eFLOPs with a ``Hardware`` (``cost_model``: KV-cache traffic included);
* ``money_cost``: a price per million tokens, or a GPU-hour price times the time eFLOPs imply.

Answers (all typed, with ``to_json``):

* ``target``: the cheapest (k, B) whose coverage reaches it, with its interval, and the cheapest whose
  interval's bottom (conservative) and top (optimistic) reach it. A target that nothing reaches is an answer:
  ``reached`` False with the best reachable coverage and its cost.
* ``spend``: the (k, B) with the highest coverage that costs at most the spend, and "more samples or longer
  thinking?": coverage gained per unit of cost by one more sample (k + 1) and by the next budget, there.
* the frontier: the Pareto-optimal (k, B) in increasing cost (each is the best buy from its cost up to the
  next one's), and ``frontier_table(rows)`` at log-spaced spends.

Ties are broken the same way everywhere: lower cost, then higher coverage, then fewer samples, then the
shorter budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from harness.core.errors import OptionError, check_number
from harness.forecasting.cost_model import CostModel, Hardware, Tally
from harness.forecasting.costs import Prices, money_for
from harness.forecasting.fitted import FORECAST_FACTOR
from harness.forecasting.surface_laws import SurfaceForecast
from harness.metrics.surface import pareto_front

FRONTIER_ROWS = 12
MORE_SAMPLES = "more samples"
LONGER_THINKING = "longer thinking"
NEITHER = "neither"


class CostFunction(Protocol):
    """What k samples per problem at budget index ``column`` cost, for the whole problem set (vectorised in k)."""

    unit: str

    def __call__(self, ks: np.ndarray, column: int) -> np.ndarray: ...


CostLike = CostFunction | Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class LinearCost:
    """``fixed[b] + k * per_sample[b]``: what every cost of this module reduces to (per-request parts such as
    prefill are paid once, each sample adds its own)."""

    unit: str
    fixed: np.ndarray
    per_sample: np.ndarray

    def __call__(self, ks: np.ndarray, column: int) -> np.ndarray:
        return self.fixed[column] + np.asarray(ks, dtype=np.float64) * self.per_sample[column]

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "fixed": self.fixed.tolist(), "per_sample": self.per_sample.tolist()}


def _checked_tokens(
    tokens: np.ndarray, prompt_tokens: np.ndarray | None, required: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens per (problem, sample, budget) and per problem's prompt (zeros when not given and not required)."""
    tokens = np.asarray(tokens, dtype=np.float64)
    if tokens.ndim != 3 or 0 in tokens.shape:
        raise OptionError("tokens", f"must have shape (problems, samples, budgets), none empty; got {tokens.shape}")
    if not np.isfinite(tokens).all() or np.any(tokens < 0):
        raise OptionError("tokens", "must be finite token counts, 0 or more")
    if prompt_tokens is None:
        if required:
            raise OptionError("prompt_tokens", "are needed: prefill and the prompt's KV reads are part of the cost")
        return tokens, np.zeros(tokens.shape[0])
    prompt = np.asarray(prompt_tokens, dtype=np.float64)
    if prompt.shape != tokens.shape[:1]:
        raise OptionError("prompt_tokens", f"must hold one count per problem ({tokens.shape[0]}), got {prompt.shape}")
    if not np.isfinite(prompt).all() or np.any(prompt < 0):
        raise OptionError("prompt_tokens", "must be finite token counts, 0 or more")
    return tokens, prompt


def token_cost(tokens: np.ndarray, prompt_tokens: np.ndarray | None = None) -> LinearCost:
    """Tokens: each problem's prompt once (when given) plus the generated tokens of its k samples, each the
    mean measured per sample at the budget. ``tokens``: (problems, samples, budgets)."""
    tokens, prompt = _checked_tokens(tokens, prompt_tokens)
    fixed = np.full(tokens.shape[2], float(prompt.sum()))
    return LinearCost("tokens", fixed, tokens.mean(axis=1).sum(axis=0))


def _compute_parts(model: CostModel, tokens: np.ndarray, prompt: np.ndarray) -> tuple[Tally, Tally]:
    """(per-request part, per-sample part), each of shape (problems, budgets); the per-sample part is the mean
    over the measured samples."""
    samples = model.decode(tokens, prompt[:, None, None])
    per_sample = Tally(*(part.mean(axis=1) for part in (samples.flops, samples.weight_bytes, samples.kv_bytes)))
    prefill = model.prefill(prompt[:, None])  # (problems, 1): broadcasts over the budgets
    request = prefill + model.shared_prompt_reads(prompt[:, None], tokens.mean(axis=1))
    return request, per_sample


def compute_cost(
    model: CostModel, tokens: np.ndarray, prompt_tokens: np.ndarray, hardware: Hardware | None = None
) -> LinearCost:
    """FLOPs (no ``hardware``) or eFLOPs on ``hardware`` of k samples per problem: each prompt prefilled once and
    its KV cache read as ``model`` counts it, each sample's decode from its measured tokens (the mean cost of
    the measured samples at the budget, so long and short samples weigh as they cost, not at the mean length).
    """
    tokens, prompt = _checked_tokens(tokens, prompt_tokens, required=True)
    request, per_sample = _compute_parts(model, tokens, prompt)
    if hardware is None:
        return LinearCost("FLOPs", request.flops.sum(axis=0), per_sample.flops.sum(axis=0))
    return LinearCost(
        f"eFLOPs ({hardware.name})", request.eflops(hardware).sum(axis=0), per_sample.eflops(hardware).sum(axis=0)
    )


def money_cost(
    tokens: np.ndarray,
    prompt_tokens: np.ndarray,
    prices: Prices,
    model: CostModel | None = None,
    hardware: Hardware | None = None,
) -> LinearCost:
    """Money: at ``prices.per_million_tokens`` for prompt and generated tokens; else at ``prices.gpu_hour`` for
    the time the eFLOPs take at the hardware's peak (needs ``model`` and ``hardware``)."""
    tokens, prompt = _checked_tokens(tokens, prompt_tokens, required=True)
    if prices.per_million_tokens is not None:
        counted = token_cost(tokens, prompt)
        per_token = money_for(prices, 1.0, 0.0, None)  # one price for prompt and generated tokens
        assert per_token is not None
        return LinearCost("money", counted.fixed * per_token, counted.per_sample * per_token)
    if prices.gpu_hour is None:
        raise OptionError("prices", "money needs a price per million tokens or per GPU hour")
    if model is None or hardware is None:
        raise OptionError("hardware", "money at a GPU-hour price needs the model's cost model and the hardware")
    per_second = money_for(prices, None, None, 1.0)
    assert per_second is not None
    request, per_sample = _compute_parts(model, tokens, prompt)
    return LinearCost(
        "money",
        request.seconds(hardware).sum(axis=0) * per_second,
        per_sample.seconds(hardware).sum(axis=0) * per_second,
    )


@dataclass(frozen=True)
class PlanPoint:
    """k samples per problem at thinking budget ``budget``: coverage with its interval, and cost."""

    k: int
    budget: int
    coverage: float
    low: float
    high: float
    cost: float
    measured: bool  # k within the samples drawn (else forecast by the budget's power law)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Marginal:
    """At a point: coverage gained per unit of cost by one more sample and by the next thinking budget (None
    where that step leaves the candidates), and which is the better buy."""

    more_samples: float | None
    longer_thinking: float | None
    answer: str  # MORE_SAMPLES, LONGER_THINKING or NEITHER (no step gains coverage)
    next_sample: PlanPoint | None
    next_budget: PlanPoint | None

    def to_json(self) -> dict[str, Any]:
        return {  # a step that gains coverage at no extra cost has an infinite rate: "free" in JSON
            "more_samples": _rate_json(self.more_samples),
            "longer_thinking": _rate_json(self.longer_thinking),
            "answer": self.answer,
            "next_sample": None if self.next_sample is None else self.next_sample.to_json(),
            "next_budget": None if self.next_budget is None else self.next_budget.to_json(),
        }


def _rate_json(rate: float | None) -> float | str | None:
    return "free" if rate == np.inf else rate


@dataclass(frozen=True)
class TargetAnswer:
    target: float
    reached: bool
    point: PlanPoint | None  # the cheapest reaching the target (None when nothing does)
    conservative: PlanPoint | None  # the cheapest whose interval's bottom reaches it
    optimistic: PlanPoint | None  # the cheapest whose interval's top reaches it
    best: PlanPoint  # the highest coverage within reach, at its lowest cost
    marginal: Marginal | None
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "reached": self.reached,
            **{
                name: None if point is None else point.to_json()
                for name, point in (
                    ("point", self.point),
                    ("conservative", self.conservative),
                    ("optimistic", self.optimistic),
                    ("best", self.best),
                )
            },
            "marginal": None if self.marginal is None else self.marginal.to_json(),
            "note": self.note,
        }


@dataclass(frozen=True)
class SpendAnswer:
    spend: float
    point: PlanPoint | None  # the highest coverage costing at most the spend (None: nothing is that cheap)
    marginal: Marginal | None
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "spend": self.spend,
            "point": None if self.point is None else self.point.to_json(),
            "marginal": None if self.marginal is None else self.marginal.to_json(),
            "note": self.note,
        }


@dataclass(frozen=True)
class JointPlan:
    unit: str
    budgets: list[int]
    measured_k: int
    k_max: int
    confidence: float
    target: TargetAnswer | None
    spend: SpendAnswer | None
    frontier: list[PlanPoint] = field(default_factory=list)  # every Pareto-optimal (k, B), in increasing cost

    def frontier_table(self, rows: int = FRONTIER_ROWS) -> list[PlanPoint]:
        """The best point at ``rows`` spends, log-spaced from the cheapest frontier point to the costliest
        (repeats dropped): spend -> best k, B, coverage."""
        check_number("rows", rows, at_least=1)
        costs = np.array([point.cost for point in self.frontier])
        if costs.size <= rows:
            return list(self.frontier)
        if costs[0] > 0:
            spends = np.geomspace(costs[0], costs[-1], rows)
            chosen = np.searchsorted(costs, spends * (1 + 1e-12), side="right") - 1
        else:
            chosen = np.round(np.linspace(0, costs.size - 1, rows)).astype(np.int64)
        return [self.frontier[i] for i in np.unique(chosen)]

    def to_json(self, frontier_rows: int = FRONTIER_ROWS) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "budgets": self.budgets,
            "measured_k": self.measured_k,
            "k_max": self.k_max,
            "confidence": self.confidence,
            "target": None if self.target is None else self.target.to_json(),
            "spend": None if self.spend is None else self.spend.to_json(),
            "frontier": [point.to_json() for point in self.frontier_table(frontier_rows)],
            "frontier_points": len(self.frontier),
        }


class _Grid:
    """Every candidate (k, B), flattened k-major: coverage, interval, cost; NaN coverage = no forecast."""

    def __init__(self, forecast: SurfaceForecast, cost: CostLike, k_max: int) -> None:
        self.budgets = forecast.budgets
        self.width = self.budgets.size
        self.k_max = k_max
        self.measured_k = forecast.surface.samples
        ks = np.arange(1, k_max + 1)
        self.coverage, self.low, self.high = forecast.grid(k_max)
        self.cost = np.stack([np.asarray(cost(ks, column), dtype=np.float64) for column in range(self.width)], axis=1)
        if self.cost.shape != self.coverage.shape:
            raise OptionError("cost", f"must return one cost per k; got shape {self.cost.shape[:1]} for {k_max} k")
        if not np.isfinite(self.cost).all() or np.any(self.cost < 0):
            raise OptionError("cost", "must be finite and 0 or more at every (k, B)")
        self.valid = np.isfinite(self.coverage)

    def point(self, row: int, column: int) -> PlanPoint:
        return PlanPoint(
            k=row + 1,
            budget=int(self.budgets[column]),
            coverage=float(self.coverage[row, column]),
            low=float(self.low[row, column]),
            high=float(self.high[row, column]),
            cost=float(self.cost[row, column]),
            measured=row + 1 <= self.measured_k,
        )

    def cheapest(self, eligible: np.ndarray) -> PlanPoint | None:
        """The cheapest eligible point (ties: higher coverage, fewer samples, shorter budget)."""
        flat = np.flatnonzero((eligible & self.valid).ravel())
        if not flat.size:
            return None
        cost, coverage = self.cost.ravel()[flat], self.coverage.ravel()[flat]
        best = flat[np.lexsort((flat, -coverage, cost))[0]]  # flat index order: fewer samples, then budget
        return self.point(*divmod(int(best), self.width))

    def richest(self, eligible: np.ndarray) -> PlanPoint | None:
        """The eligible point with the highest coverage (ties: lower cost, fewer samples, shorter budget)."""
        flat = np.flatnonzero((eligible & self.valid).ravel())
        if not flat.size:
            return None
        cost, coverage = self.cost.ravel()[flat], self.coverage.ravel()[flat]
        best = flat[np.lexsort((flat, cost, -coverage))[0]]
        return self.point(*divmod(int(best), self.width))

    def marginal(self, point: PlanPoint) -> Marginal:
        row, column = point.k - 1, int(np.flatnonzero(self.budgets == point.budget)[0])
        steps: dict[str, tuple[float | None, PlanPoint | None]] = {}
        for name, (r, c) in ((MORE_SAMPLES, (row + 1, column)), (LONGER_THINKING, (row, column + 1))):
            if r >= self.k_max or c >= self.width or not self.valid[r, c]:
                steps[name] = (None, None)
                continue
            gain = float(self.coverage[r, c] - self.coverage[row, column])
            spent = float(self.cost[r, c] - self.cost[row, column])
            rate = gain / spent if spent > 0 else (np.inf if gain > 0 else None)
            steps[name] = (rate, self.point(r, c))
        rates = {name: rate for name, (rate, _) in steps.items() if rate is not None and rate > 0}
        answer = max(rates, key=rates.__getitem__) if rates else NEITHER
        return Marginal(
            steps[MORE_SAMPLES][0], steps[LONGER_THINKING][0], answer, steps[MORE_SAMPLES][1], steps[LONGER_THINKING][1]
        )

    def frontier(self) -> list[PlanPoint]:
        flat = np.flatnonzero(self.valid.ravel())
        chosen = flat[pareto_front(self.cost.ravel()[flat], self.coverage.ravel()[flat])]
        return [self.point(*divmod(int(index), self.width)) for index in chosen]


def _answer_target(grid: _Grid, target: float) -> TargetAnswer:
    best = grid.richest(np.ones(grid.coverage.shape, dtype=bool))
    if best is None:
        raise OptionError("target", "no (k, B) has a coverage to plan with (no budget could be measured or fitted)")
    point = grid.cheapest(grid.coverage >= target)
    conservative = grid.cheapest(grid.low >= target)
    optimistic = grid.cheapest(grid.high >= target)
    if point is None:
        note = (
            f"no (k, B) with k <= {grid.k_max} reaches coverage {target:g}; the best reachable is "
            f"{best.coverage:.3f} at k = {best.k}, B = {best.budget} (cost {best.cost:.4g})"
        )
        return TargetAnswer(target, False, None, conservative, optimistic, best, grid.marginal(best), note)
    where = "measured" if point.measured else "forecast by the budget's power law in k"
    note = f"coverage {point.coverage:.3f} at k = {point.k}, B = {point.budget} ({where})"
    return TargetAnswer(target, True, point, conservative, optimistic, best, grid.marginal(point), note)


def _answer_spend(grid: _Grid, spend: float) -> SpendAnswer:
    point = grid.richest(grid.cost <= spend)
    if point is None:
        cheapest = grid.cheapest(np.ones(grid.coverage.shape, dtype=bool))
        cost = "nothing" if cheapest is None else f"the cheapest (k, B) costs {cheapest.cost:.4g}"
        return SpendAnswer(spend, None, None, f"the spend {spend:.4g} buys no (k, B): {cost}")
    marginal = grid.marginal(point)
    return SpendAnswer(spend, point, marginal, f"next: {marginal.answer}")


def plan_samples_and_thinking(
    forecast: SurfaceForecast,
    cost: CostLike,
    *,
    target: float | None = None,
    spend: float | None = None,
    k_max: int | None = None,
) -> JointPlan:
    """Plan k samples per problem and the thinking budget B together.

    Args:
        forecast: the measured surface with its laws (``fit_surface_laws``).
        cost: prices (k, B) for the problem set (``token_cost``, ``compute_cost``, ``money_cost`` or any
            callable ``cost(ks, budget_index) -> array``; its ``unit`` attribute names the unit).
        target: coverage to reach, in (0, 1).
        spend: what may be spent, in the cost's unit.
        k_max: the largest k considered; default ``FORECAST_FACTOR`` x the samples measured (beyond them
            coverage is the budgets' power-law forecast); the samples measured: the measured surface only.
    """
    if target is not None:
        check_number("target", target, above=0, below=1)
    if spend is not None:
        check_number("spend", spend, above=0)
    measured = forecast.surface.samples
    k_max = FORECAST_FACTOR * measured if k_max is None else k_max
    check_number("k_max", k_max, at_least=measured)
    grid = _Grid(forecast, cost, int(k_max))
    return JointPlan(
        unit=str(getattr(cost, "unit", "cost")),
        budgets=[int(b) for b in forecast.budgets],
        measured_k=measured,
        k_max=int(k_max),
        confidence=forecast.surface.confidence,
        target=None if target is None else _answer_target(grid, target),
        spend=None if spend is None else _answer_spend(grid, spend),
        frontier=grid.frontier(),
    )
