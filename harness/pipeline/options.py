"""What a run samples: ``DEFAULT_RUN`` (the defaults of ``ttc run`` and ``harness.run()``) and
``SampleOptions``, the checked parameters of the sampling step."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.core.errors import OptionError, check_number
from harness.core.forcing import DEFAULT_ANSWER_CUE, DEFAULT_ANSWER_TOKENS, DEFAULT_WAIT_WORD, BudgetForcing
from harness.core.options import check_fields
from harness.core.reasoning import DEFAULT_CLOSE_TAG, DEFAULT_OPEN_TAG, ThinkTags, check_reasoning_mode
from harness.core.records import SamplingSettings
from harness.engines.ray_pool import ScaleOut
from harness.engines.registry import engine_class
from harness.metrics.counts import MAX_SAMPLES_PER_PROBLEM
from tasks import task_class

# The default run (`ttc run` and `harness.run()` without options, the defaults of every run): the embedded
# model on HumanEval's chat prompt (the task's default style), sized to show coverage rising with k within
# minutes on 2 CPU cores, first model conversion included (README, "Quick start", measured).
DEFAULT_RUN: Mapping[str, Any] = MappingProxyType(
    {"task": "humaneval", "problems": 36, "samples": 20, "temperature": 1.1, "top_p": 0.95, "max_tokens": 112}
)


@dataclass
class SampleOptions:
    """What a run samples: the parameters of ``harness.sample``/``harness.run`` and ``ttc sample``/``ttc run``.

    ``problems`` is the task's first N problems (None: all); ``samples`` at most ``MAX_SAMPLES_PER_PROBLEM``
    (what the estimators support; the store's 32-bit sample indices would hold more). Everything is checked when
    the options are made, before anything is loaded or written: each field's type, the ranges of the sampling
    settings (as the run's ``SamplingSettings``), and the task's and engine's options against those their
    classes declare (``harness.core.options.DeclaresOptions``). A bad value raises ``OptionError`` naming the field
    (``OptionError("max_tokens", "must be at least 1, got 0")``, ``OptionError("engine_options.dtype", ...)``).
    ``data`` and ``model`` may be given as paths (kept as strings), ``out`` as a string (kept as a ``Path``).
    ``reasoning`` is ``auto``, ``on`` or ``off`` and ``think_tags`` ``"OPEN,CLOSE"`` or a pair (kept as
    ``ThinkTags``): see ``harness.pipeline.reasoning``. ``thinking_budget``, ``answer_tokens``, ``answer_cue``,
    ``min_thinking`` and ``wait_word`` force each sample's thinking (``budget_forcing()``, docs/thinking.md).
    """

    task: str = DEFAULT_RUN["task"]
    data: str | None = None
    task_options: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    engine: str = "vllm"
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    problems: int | None = DEFAULT_RUN["problems"]
    samples: int = DEFAULT_RUN["samples"]
    temperature: float = DEFAULT_RUN["temperature"]
    top_p: float = DEFAULT_RUN["top_p"]
    top_k: int = -1
    max_tokens: int = DEFAULT_RUN["max_tokens"]
    seed: int = 0
    out: Path | None = None
    scale: ScaleOut = field(default_factory=ScaleOut)
    reasoning: str = "auto"
    think_tags: str | Sequence[str] | ThinkTags = (DEFAULT_OPEN_TAG, DEFAULT_CLOSE_TAG)
    thinking_budget: int | None = None
    answer_tokens: int = DEFAULT_ANSWER_TOKENS
    answer_cue: str = DEFAULT_ANSWER_CUE
    min_thinking: int | None = None
    wait_word: str = DEFAULT_WAIT_WORD

    def __post_init__(self) -> None:
        for name in ("data", "model"):  # a local file or checkpoint may be given as a Path
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        check_fields(self)
        check_reasoning_mode(self.reasoning)
        self.think_tags = ThinkTags.parse(self.think_tags)
        check_number("problems", self.problems, at_least=1)
        check_number("samples", self.samples, at_least=1, at_most=MAX_SAMPLES_PER_PROBLEM)
        self.sampling_settings()  # temperature, top_p, top_k, max_tokens, seed: checked as the run will use them
        forcing = self.budget_forcing()
        if forcing.thinking_budget is not None and forcing.thinking_budget > self.max_tokens:
            raise OptionError(
                "thinking_budget",
                f"must be at most --max-tokens ({self.max_tokens}), which bounds a sample's own generation; got "
                f"{forcing.thinking_budget}",
            )
        self.out = None if self.out is None else Path(self.out)
        self.task_options, self.engine_options = dict(self.task_options), dict(self.engine_options)
        task_class(self.task).check_options(self.task_options, "task_options", f"task {self.task!r}")
        engine_class(self.engine).check_options(self.engine_options, "engine_options", f"engine {self.engine!r}")

    def budget_forcing(self) -> BudgetForcing:
        """The run's budget forcing (``active`` False when neither a thinking budget nor a minimum is set)."""
        return BudgetForcing(
            thinking_budget=self.thinking_budget,
            answer_tokens=self.answer_tokens,
            answer_cue=self.answer_cue,
            min_thinking=self.min_thinking,
            wait_word=self.wait_word,
        )

    def sampling_settings(self, stop: tuple[str, ...] = ()) -> SamplingSettings:
        """The run's sampling settings, with the task's ``stop`` strings."""
        return SamplingSettings(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=self.max_tokens,
            stop=stop,
            seed=self.seed,
        )
