"""A deterministic engine for tests of the store and the pipeline (the real vLLM path is tested separately).

Each completion's text names its problem, sample index and request seed, so a test can prove that every
stored sample sits at the right place; the final answer after '####' is drawn from
the seed.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from harness.core.records import SamplingSettings
from harness.engines.base import Completion, Engine, GenerationRequest, GenerationResult, TokenCallback
from harness.engines.confidence import ConfidenceSettings

# The first five GSM8K test answers are 18, 3, 70000, 540 and 20: drawing from these makes some samples right.
FAKE_ANSWERS = (18, 3, 70000, 540, 20, 7, 11)


def fake_text(problem_id: str, index: int, seed: int) -> str:
    answer = random.Random(f"{seed}:{index}").choice(FAKE_ANSWERS)
    return f"sample {problem_id}#{index} seed {seed}\n#### {answer}"


def fake_token_logprobs(text: str) -> list[float]:
    """The log-probability of each of a fake completion's tokens (its words), drawn from its text."""
    rng = random.Random(f"logprobs:{text}")
    return [-rng.expovariate(1.0) for _ in text.split()]


def fake_completion(text: str, confidence: ConfidenceSettings | None) -> Completion:
    """A completion of ``text`` whose tokens are its words, with their log-probabilities summed and, as a real
    engine does while tokens stream in, fed two at a time to the confidence statistics."""
    values = fake_token_logprobs(text)
    stats = None
    if confidence is not None:
        accumulator = confidence.accumulator()
        for start in range(0, len(values), 2):
            confidence.feed(accumulator, values[start : start + 2])
        stats = accumulator.result()
    return Completion(
        text=text,
        n_tokens=len(values),
        finish_reason="stop",
        logprob_sum=float(sum(values)),
        confidence=stats,
        confidence_settings=None if confidence is None else confidence.label,
    )


class FakeEngine(Engine):
    """Returns deterministic samples, one request after another, after sleeping ``$TTC_FAKE_DELAY`` seconds per
    request (0 by default) and ``$TTC_FAKE_TOKEN_DELAY`` seconds per token step (0 by default: all tokens at
    once). A token step generates the next word of every completion of the request, reported to ``on_tokens``.
    At start it prints ``$TTC_FAKE_START_OUTPUT`` to stderr (as an engine's own output), if set, and then fails
    if ``$TTC_FAKE_START_FAILS`` is set.

    Options (engine options, so they reach replicas on Ray too): ``delay`` overrides ``$TTC_FAKE_DELAY``;
    ``crash_marker``, a path: the first engine to finish a request while that file does not exist creates it and
    kills its own process (a replica that dies mid-run). Its completions' tokens are their words, with
    log-probabilities drawn from the text (``fake_token_logprobs``) and confidence statistics over windows of
    ``confidence_window`` words and a tail of ``confidence_tail`` (``confidence=False``: none)."""

    def __init__(
        self,
        model: str,
        *,
        delay: float | None = None,
        crash_marker: str | None = None,
        confidence: bool = True,
        confidence_window: int = 3,
        confidence_tail: int = 2,
        **options: Any,
    ) -> None:
        if os.environ.get("TTC_FAKE_START_OUTPUT"):
            print(os.environ["TTC_FAKE_START_OUTPUT"], file=sys.stderr, flush=True)
        if os.environ.get("TTC_FAKE_START_FAILS"):
            raise RuntimeError("the fake engine failed to start")
        self.model = model
        self.delay = float(os.environ.get("TTC_FAKE_DELAY", "0")) if delay is None else delay
        self.crash_marker = crash_marker
        self.token_delay = float(os.environ.get("TTC_FAKE_TOKEN_DELAY", "0"))
        self.requests_seen: list[GenerationRequest] = []
        self.confidence = ConfidenceSettings(confidence_window, confidence_tail) if confidence else None

    def describe(self) -> dict[str, Any]:
        return {"engine": "fake", "model": self.model}

    def generate(
        self, requests: Iterable[GenerationRequest], settings: SamplingSettings, on_tokens: TokenCallback | None = None
    ) -> Iterator[GenerationResult]:
        for request in requests:
            self.requests_seen.append(request)
            time.sleep(self.delay)
            completions = []
            for offset in range(request.n):
                text = fake_text(request.problem_id, request.first_index + offset, request.seed)
                completions.append(fake_completion(text, self.confidence))
            if self.token_delay > 0:
                for step in range(max(completion.n_tokens for completion in completions)):
                    time.sleep(self.token_delay)
                    if on_tokens is not None:
                        on_tokens(sum(completion.n_tokens > step for completion in completions))
            yield GenerationResult(request=request, completions=completions, prompt_tokens=7)
            if self.crash_marker:
                try:
                    os.close(os.open(self.crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    continue
                os._exit(1)

    def close(self) -> None:
        pass


class EngineSeededFakeEngine(FakeEngine):
    """Like vLLM on CPU: ignores request seeds and draws every sample from one engine-wide stream."""

    takes_session_seed = True

    def __init__(self, model: str, seed: int = 0, **options: Any) -> None:
        super().__init__(model, **options)
        self.seed = seed

    def generate(
        self, requests: Iterable[GenerationRequest], settings: SamplingSettings, on_tokens: TokenCallback | None = None
    ) -> Iterator[GenerationResult]:
        stream = 0
        for request in requests:
            self.requests_seen.append(request)
            completions = []
            for _ in range(request.n):
                text = fake_text("stream", stream, self.seed)  # depends on the stream position, not the problem
                stream += 1
                completions.append(Completion(text=text, n_tokens=3, finish_reason="stop", logprob_sum=-1.0))
            yield GenerationResult(request=request, completions=completions, prompt_tokens=7, seed=self.seed)


class UnstartableEngine(FakeEngine):
    """An engine whose start always fails (a replica that cannot start, whatever its environment)."""

    def __init__(self, model: str, **options: Any) -> None:
        raise RuntimeError("the unstartable engine cannot start")
