"""The plain records that several packages share: a benchmark's ``Problem`` (tasks make them, the store keeps
them, engines and verifiers read them) and a run's ``SamplingSettings`` (engines sample with them, the store
hashes them into the run's configuration)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.core.errors import OptionError, check_number
from harness.core.options import check_fields

#: The most tokens a completion may ask for: a run stores token counts as 32-bit integers.
MAX_TOKENS = 2**31 - 1

ChatMessages = Sequence[Mapping[str, str]]
Prompt = str | ChatMessages


@dataclass(frozen=True)
class Problem:
    """One problem of a benchmark.

    Attributes:
        problem_id: stable identifier, unique within the task (e.g. ``"HumanEval/0"``, ``"gsm8k/test/12"``).
        prompt: completion-style text, or chat messages (``[{"role": ..., "content": ...}]``) that the engine
            renders with the model's chat template.
        reference: everything the task's verifier needs to judge a completion (e.g. ``{"answer": "18"}`` or
            ``{"prompt": ..., "test": ..., "entry_point": ...}``); JSON-serialisable.
        metadata: descriptive fields kept for analysis (MATH level, subject, ...); JSON-serialisable.
    """

    problem_id: str
    prompt: Prompt
    reference: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """JSON-serialisable form, stored in a run directory so later steps need not reload the task."""
        prompt = self.prompt if isinstance(self.prompt, str) else [dict(m) for m in self.prompt]
        return {
            "problem_id": self.problem_id,
            "prompt": prompt,
            "reference": dict(self.reference),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Problem:
        return cls(
            problem_id=record["problem_id"],
            prompt=record["prompt"],
            reference=record["reference"],
            metadata=record.get("metadata", {}),
        )


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling parameters shared by every request of a run (the per-request ``n`` and seed are separate).
    Checked when made: a value of the wrong type or out of range raises ``OptionError`` naming the field.

    Attributes:
        temperature: softmax temperature; 0 means greedy (every sample identical).
        top_p: nucleus sampling mass.
        top_k: keep the k most likely tokens; -1 keeps all.
        max_tokens: most tokens generated per completion.
        stop: strings that end a completion (not included in its text).
        seed: base seed of the run; each request's seed is derived from it (see
            ``harness.engines.base.request_seed``).
    """

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = -1
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        object.__setattr__(self, "stop", tuple(self.stop))  # a list given is kept as the tuple it hashes as
        check_number("temperature", self.temperature, at_least=0)
        check_number("top_p", self.top_p, above=0, at_most=1)
        if self.top_k != -1 and self.top_k < 1:
            raise OptionError("top_k", f"must be -1 (off) or at least 1, got {self.top_k}")
        check_number("max_tokens", self.max_tokens, at_least=1)
        check_number("max_tokens", self.max_tokens, at_most=MAX_TOKENS)
        check_number("top_k", self.top_k, at_most=MAX_TOKENS)
        check_number("seed", self.seed, at_least=-(2**63), at_most=2**63 - 1)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data
