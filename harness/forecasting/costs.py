"""What sampling costs: generated and prefilled tokens, FLOPs, wall time and money.

The one place for cost arithmetic. Budgets price k samples per problem (``cost_of``), the report prices the
run itself, and ``compare`` prices one more sample and one prompt per problem, all with ``inference_flops``
and ``money_for``: FLOPs are 2 x parameters per token, generated or prefilled (each prompt once per problem);
money is tokens times a price per million tokens (prompt tokens included where known), else hours of wall
time times a GPU-hour price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from harness.core.errors import check_number
from harness.core.options import check_fields
from harness.metrics.counts import Counts


@dataclass(frozen=True)
class Usage:
    """Measured cost figures of a run (any may be unknown: None)."""

    output_tokens_per_sample: float | None = None
    prompt_tokens_per_problem: float | None = None
    output_tokens_per_second: float | None = None
    model_parameters: int | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        check_number("output_tokens_per_sample", self.output_tokens_per_sample, at_least=0)
        check_number("prompt_tokens_per_problem", self.prompt_tokens_per_problem, at_least=0)
        check_number("output_tokens_per_second", self.output_tokens_per_second, above=0)
        check_number("model_parameters", self.model_parameters, above=0)

    @classmethod
    def from_mapping(cls, usage: Mapping[str, Any]) -> Usage:
        """From ``RunStore.usage()`` (extra keys ignored). A measured throughput of 0 (a run that generated no
        tokens) says nothing about speed: it is unknown."""
        fields = {name: usage.get(name) for name in cls.__dataclass_fields__}
        if not fields["output_tokens_per_second"]:
            fields["output_tokens_per_second"] = None
        return cls(**fields)


@dataclass(frozen=True)
class Prices:
    per_million_tokens: float | None = None  # money per million tokens, generated and prompt
    gpu_hour: float | None = None  # money per hour of wall time

    def __post_init__(self) -> None:
        check_fields(self)
        check_number("per_million_tokens", self.per_million_tokens, at_least=0)
        check_number("gpu_hour", self.gpu_hour, at_least=0)


def inference_flops(parameters: float, generated_tokens: float, prefilled_tokens: float) -> float:
    """Forward-pass FLOPs of a decoder: 2 x parameters per token, generated or prefilled (prompts)."""
    return 2.0 * parameters * (generated_tokens + prefilled_tokens)


def token_money(tokens: float, per_million_tokens: float) -> float:
    """Money for ``tokens`` at a price per million tokens."""
    return tokens / 1e6 * per_million_tokens


def money_for(
    prices: Prices, generated_tokens: float | None, prefilled_tokens: float | None, seconds: float | None
) -> float | None:
    """Money at the token price when there is one and the generated tokens are known (prompt tokens count
    where known), else at the GPU-hour price when the wall time is known; None otherwise."""
    if prices.per_million_tokens is not None and generated_tokens is not None:
        return token_money(generated_tokens + (prefilled_tokens or 0.0), prices.per_million_tokens)
    if prices.gpu_hour is not None and seconds is not None:
        return seconds / 3600.0 * prices.gpu_hour
    return None


@dataclass(frozen=True)
class Cost:
    """What k samples per problem cost; figures that need unknown inputs are None and named in ``missing``."""

    k: int
    samples: int
    additional_samples: int  # beyond the samples already drawn
    generated_tokens: float | None
    prefilled_tokens: float | None  # each problem's prompt, once
    flops: float | None
    seconds: float | None
    money: float | None
    missing: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__} | {"missing": list(self.missing)}

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> Cost:
        return cls(**{**fields, "missing": tuple(fields["missing"])})

    def priced(self, prices: Prices) -> Cost:
        """The same cost with its money at ``prices`` (a cost is computed once, then priced as asked)."""
        missing = [item for item in self.missing if item != "price"]
        if prices.per_million_tokens is None and prices.gpu_hour is None:
            missing.append("price")
        spent = money_for(prices, self.generated_tokens, self.prefilled_tokens, self.seconds)
        return replace(self, money=spent, missing=tuple(missing))


def cost_of(k: int, counts: Counts, usage: Usage, prices: Prices | None = None) -> Cost:
    """Cost of bringing every problem of ``counts`` to k samples (prompts prefilled once per problem)."""
    problems = len(counts)
    samples = problems * int(k)
    additional = int(np.maximum(k - counts.num_samples, 0).sum())
    missing = []
    tokens = None
    if usage.output_tokens_per_sample is None:
        missing.append("tokens per sample")
    else:
        tokens = samples * usage.output_tokens_per_sample
    prefilled = None if usage.prompt_tokens_per_problem is None else problems * usage.prompt_tokens_per_problem
    flops = None
    if usage.model_parameters is None:
        missing.append("model parameters")
    elif tokens is not None:
        if prefilled is None:
            missing.append("prompt tokens")
        else:
            flops = inference_flops(usage.model_parameters, tokens, prefilled)
    seconds = None
    if usage.output_tokens_per_second is None:
        missing.append("throughput (tokens per second)")
    elif tokens is not None:
        seconds = tokens / usage.output_tokens_per_second
    cost = Cost(int(k), samples, additional, tokens, prefilled, flops, seconds, None, tuple(missing))
    return cost.priced(prices or Prices())
