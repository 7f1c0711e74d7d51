"""A fake reasoning model that continues any text of its own traces, for budget forcing's logic tests.

Tokens are words (``\\s*\\S+``). Each sample has a natural trace fixed by its seed and problem: a thinking of
``length`` words, the first a header naming the trace (``[trace:SEED:PROBLEM]``), then the closing tag and
``#### ANSWER``. The model is a function of the text it continues, as a language model is:

* a prefix of a natural trace continues with the rest of it, whatever the request's seed (so cutting a stored
  trace and continuing it, or sampling it in pieces, gives what sampling it whole gave);
* a text whose thinking closed off the script (the tag and an answer cue inserted after k thinking words)
  answers ``#### RIGHT`` when the trace's answer is right and k reaches the words it needs (``needed``), else
  ``#### 999``: cut thinking too short and the answer goes wrong, as it would for a reasoning model;
* a thinking taken off the script (a wait word put in place of the tag) thinks ``EXTRA`` more words, closes and
  answers as above.

Every completion honours ``GenerationRequest.max_tokens`` (finish ``length`` when it cut the words).
Problems are GSM8K's first five, whose answers ``RIGHT`` holds (later problems reuse them in turn). Engine options:
``concurrent`` (the samples it says it works on at once: a sweep's chunk) and ``delay`` (seconds per request),
for kill-and-resume tests.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from harness.core.reasoning import ThinkTags, split_completion
from harness.core.records import Prompt, SamplingSettings
from harness.engines.base import (
    Completion,
    Engine,
    GenerationRequest,
    GenerationResult,
    TokenCallback,
    split_tokens,
)
from harness.engines.confidence import ConfidenceStats
from tests.support.thinking_engine import RIGHT, WRONG, word_thinking_tokens

TOKEN = re.compile(r"\s*\S+")
HEADER = re.compile(r"\[trace:(\d+):(\d+)\]")
EXTRA = 4


class WordCodec:
    """Words as tokens: each ends where its word ends."""

    def token_ends(self, text: str) -> list[int]:
        return [match.end() for match in TOKEN.finditer(text)]


def natural_trace(seed: int, problem: int, tags: ThinkTags) -> tuple[list[str], int, bool]:
    """(the trace's words, the thinking words its answer needs, whether its answer is right)."""
    rng = random.Random(f"trace:{seed}:{problem}")
    length = rng.randint(3, 30)
    needed = rng.randint(2, length)
    right = rng.random() < 0.7
    thinking = [f"[trace:{seed}:{problem}]"] + [f"w{index}" for index in range(2, length + 1)]
    answer = RIGHT[problem % len(RIGHT)] if right else WRONG
    return [*thinking, tags.close, "####", answer], needed, right


def continuation(generated: str, seed: int, problem: int, tags: ThinkTags) -> list[str]:
    """The words that follow ``generated``, the trace's text so far (see the module's rules)."""
    natural, needed, right = natural_trace(seed, problem, tags)
    words = generated.split()
    if words == natural[: len(words)]:
        return natural[len(words) :]
    segments = split_completion(generated, tags)
    thought = len(segments.thinking.split())
    if segments.closed:  # closed off the script: answer from the thinking it saw
        return ["####", RIGHT[problem % len(RIGHT)] if right and thought >= needed else WRONG]
    extra = [f"more{index}" for index in range(1, EXTRA + 1)]
    enough = right and thought + EXTRA >= needed
    return [*extra, tags.close, "####", RIGHT[problem % len(RIGHT)] if enough else WRONG]


class TraceEngine(Engine):
    """The model of the module's notes. Records the requests it was given (``requests_seen``)."""

    def __init__(self, model: str, **options: Any) -> None:
        self.model = model
        self.requests_seen: list[GenerationRequest] = []
        self.concurrent = int(options["concurrent"]) if "concurrent" in options else None
        self.delay = float(options.get("delay", 0.0))

    def concurrent_samples(self) -> int | None:
        return self.concurrent

    def describe(self) -> dict[str, Any]:
        return {"engine": "trace-fake", "model": self.model}

    def render_prompt(self, prompt: Prompt, response_prefix: str = "") -> str:
        if isinstance(prompt, str):
            return prompt + response_prefix
        return "".join(f"<{m['role']}> {m['content']}\n" for m in prompt) + "<assistant>" + response_prefix

    def token_codec(self) -> WordCodec:
        return WordCodec()

    def generate(
        self, requests: Iterable[GenerationRequest], settings: SamplingSettings, on_tokens: TokenCallback | None = None
    ) -> Iterator[GenerationResult]:
        for request in requests:
            self.requests_seen.append(request)
            time.sleep(self.delay)
            text = self.render_prompt(request.prompt, request.response_prefix)
            header = HEADER.search(text)
            tags = request.think_tags or ThinkTags()
            completions = []
            for offset in range(request.n):
                if header is None:  # a new trace, named by its sample's seed (vLLM seeds choice i with seed + i)
                    seed, problem, generated = request.seed + offset, _problem(request), ""
                else:
                    seed, problem, generated = int(header[1]), int(header[2]), text[header.start() :]
                words = continuation(generated, seed, problem, tags)
                limit = request.token_limit(settings)
                kept = words[:limit]
                piece = "".join(" " + word for word in kept)
                thinking = word_thinking_tokens(piece, tags) if request.think_tags is not None else None
                finish = "length" if len(kept) < len(words) else "stop"
                stats = ConfidenceStats(len(kept), -1.0, -1.0, -1.0, -1.0)  # each piece's, as an engine gives them
                completions.append(
                    Completion(
                        piece,
                        len(kept),
                        finish,
                        -float(len(kept)),
                        **split_tokens(len(kept), thinking),
                        confidence=stats,
                        confidence_settings="trace",
                    )
                )
            yield GenerationResult(request=request, completions=completions, prompt_tokens=len(text.split()))

    def close(self) -> None:
        pass


def _problem(request: GenerationRequest) -> int:
    return int(request.problem_id.rsplit("/", 1)[1])


def trace_of(seed: int, problem: int, tags: ThinkTags | None = None) -> Mapping[str, Any]:
    """A natural trace's figures, for tests: its words, thinking tokens (the tag included) and answer."""
    words, needed, right = natural_trace(seed, problem, tags or ThinkTags())
    thinking = words.index((tags or ThinkTags()).close) + 1
    return {"words": words, "thinking_tokens": thinking, "needed": needed, "right": right}
