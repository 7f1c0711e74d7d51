"""What a run samples: ``DEFAULT_RUN`` (the defaults of ``ttc run`` and ``harness.run()``) and
``SampleOptions``, the checked parameters of the sampling step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.core.errors import OptionError, check_number
from harness.engines.ray_pool import ScaleOut

# The default run (`ttc run` and `harness.run()` without options, the defaults of every run): the embedded
# model on HumanEval's chat prompt (the task's default style), sized to show coverage rising with k within
# minutes on 2 CPU cores, first model conversion included (README, "Quick start", measured).
DEFAULT_RUN = MappingProxyType(
    {"task": "humaneval", "problems": 36, "samples": 20, "temperature": 1.1, "top_p": 0.95, "max_tokens": 112}
)


@dataclass
class SampleOptions:
    """What a run samples: the parameters of ``harness.run`` and ``ttc run`` / ``ttc sample``, checked.

    ``problems`` is the task's first N problems (None: all). A bad value raises ``OptionError`` naming the
    field (``OptionError("max_tokens", "must be at least 1, got 0")``) before anything is loaded or written.
    """

    task: str = DEFAULT_RUN["task"]
    data: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    engine: str = "vllm"
    engine_options: dict[str, Any] = field(default_factory=dict)
    problems: int | None = DEFAULT_RUN["problems"]
    samples: int = DEFAULT_RUN["samples"]
    temperature: float = DEFAULT_RUN["temperature"]
    top_p: float = DEFAULT_RUN["top_p"]
    top_k: int = -1
    max_tokens: int = DEFAULT_RUN["max_tokens"]
    seed: int = 0
    out: Path | None = None
    scale: ScaleOut = field(default_factory=ScaleOut)

    def __post_init__(self) -> None:
        if self.problems is not None and self.problems < 1:
            raise OptionError("problems", f"must be at least 1, got {self.problems}")
        if self.samples < 1:
            raise OptionError("samples", f"must be at least 1, got {self.samples}")
        if self.max_tokens < 1:
            raise OptionError("max_tokens", f"must be at least 1, got {self.max_tokens}")
        check_number("temperature", self.temperature, at_least=0)
        if not 0 < self.top_p <= 1:  # also refuses nan
            raise OptionError("top_p", f"must lie in (0, 1], got {self.top_p}")
        if self.top_k != -1 and self.top_k < 1:
            raise OptionError("top_k", f"must be -1 (off) or at least 1, got {self.top_k}")
        # engine settings every engine that takes them reads alike; refused here, before an engine loads a model
        options = self.engine_options
        check_number("max_model_len", options.get("max_model_len"), at_least=1)
        check_number("max_num_seqs", options.get("max_num_seqs"), at_least=1)
        check_number("gpu_memory_utilization", options.get("gpu_memory_utilization"), above=0, at_most=1)
        check_number("tensor_parallel_size", options.get("tensor_parallel_size"), at_least=1)
        check_number("pipeline_parallel_size", options.get("pipeline_parallel_size"), at_least=1)
