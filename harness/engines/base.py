"""The engine protocol: turn (prompt, n) requests into n sampled completions each.

Modelled on vLLM's ``SamplingParams``/``LLM.generate``: small, explicit and typed. An engine yields each
request's completions as soon as they are all finished, so the caller can store them before the next
request finishes (a crash then loses only requests in flight).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator, Protocol

from tasks.base import Prompt


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling parameters shared by every request of a run (the per-request ``n`` and seed are separate).

    Attributes:
        temperature: softmax temperature; 0 means greedy (every sample identical).
        top_p: nucleus sampling mass.
        top_k: keep the k most likely tokens; -1 keeps all.
        max_tokens: most tokens generated per completion.
        stop: strings that end a completion (not included in its text).
        seed: base seed of the run; each request's seed is derived from it (see ``request_seed``).
    """

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = -1
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


@dataclass(frozen=True)
class GenerationRequest:
    """``n`` samples of one prompt, which will be stored as sample indices ``first_index .. first_index+n-1``."""

    problem_id: str
    prompt: Prompt
    n: int
    first_index: int
    seed: int


@dataclass(frozen=True)
class Completion:
    """One sampled completion.

    Attributes:
        text: the generated text (stop string excluded).
        n_tokens: generated tokens.
        finish_reason: ``"stop"`` (EOS or stop string) or ``"length"`` (hit max_tokens).
        logprob_sum: sum of the sampled tokens' log-probabilities under the model (None if not available).
    """

    text: str
    n_tokens: int
    finish_reason: str
    logprob_sum: float | None


@dataclass(frozen=True)
class GenerationResult:
    """A request's completions. ``seed`` is set when the engine did not use the request's seed (e.g. an
    engine-wide seed where per-request seeds are unsupported); it is what the samples record."""

    request: GenerationRequest
    completions: list[Completion]
    prompt_tokens: int
    seed: int | None = None


class Engine(Protocol):
    """Samples completions. ``describe()`` is recorded in the run manifest."""

    def generate(
        self, requests: Iterable[GenerationRequest], settings: SamplingSettings
    ) -> Iterator[GenerationResult]:
        """Yield each request's result as soon as all its completions are done (any order)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Engine name and version, model, and engine settings that can change samples."""
        ...

    def close(self) -> None:
        ...


def request_seed(base_seed: int, problem_id: str, first_index: int) -> int:
    """A per-request seed that differs between problems and between extensions of the same problem.

    Seeding every request from the base seed alone would make two requests for the same prompt (a resumed or
    extended run) repeat the same samples.
    """
    import hashlib

    digest = hashlib.blake2b(f"{base_seed}:{problem_id}:{first_index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF
