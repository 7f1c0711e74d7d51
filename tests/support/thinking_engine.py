"""A fake reasoning model for logic tests: each completion thinks, then answers, in one of six scripted shapes.
Where the prompt ends with the opening tag (the request's ``response_prefix``), completions do not open it again.

Problems are GSM8K's first ones, whose answers the fake engine knows (``RIGHT``): sample ``i`` of a problem takes
shape ``i % 6`` of ``SHAPES``, so a test knows each sample's verdict with reasoning on and with it off. Tokens are
whitespace-separated words; the thinking tokens are the words up to and including the one holding the closing
tag (``harness.core.reasoning.thinking_token_count`` over words), all of them when the thinking never closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from harness.core.reasoning import ThinkTags, thinking_token_count
from harness.core.records import SamplingSettings
from harness.engines.base import Completion, Engine, GenerationRequest, GenerationResult, TokenCallback, split_tokens

# The answers of GSM8K's first five test problems.
RIGHT = ("18", "3", "70000", "540", "20")
WRONG = "999"

# shape -> (text with {right}, {wrong}, {open}, {close}; verdict reason with reasoning on; with reasoning off)
SHAPES = (
    ("{open} Let me see. #### {right} {close}\n#### {wrong}", "wrong", "wrong"),  # right while thinking only
    ("{open} Maybe #### {wrong} ... no. {close}\n#### {right}", "correct", "correct"),  # right after thinking
    ("{open} I think #### {right} but I am still", "truncated_thinking", "correct"),  # never closed
    ("{open} All thought through. {close}", "no_answer", "no_answer"),  # empty answer
    ("Opened by the template #### {wrong} {close} #### {right}", "correct", "correct"),  # no opening tag
    ("{open} Short. {close}\n#### {wrong}", "wrong", "wrong"),
)


def shape_text(problem_index: int, sample_index: int, tags: ThinkTags, response_prefix: str = "") -> str:
    """Sample ``sample_index``'s text; a prompt that ends with the opening tag (``response_prefix``) opened the
    thinking already, so the text does not open it again."""
    text, _, _ = SHAPES[sample_index % len(SHAPES)]
    text = text.format(right=RIGHT[problem_index], wrong=WRONG, open=tags.open, close=tags.close)
    return text.removeprefix(f"{tags.open} ") if response_prefix == tags.open else text


def expected_reason(sample_index: int, reasoning: bool) -> str:
    return SHAPES[sample_index % len(SHAPES)][1 if reasoning else 2]


def word_thinking_tokens(text: str, tags: ThinkTags) -> int:
    """The thinking tokens of a fake completion, its tokens being its words."""
    words = text.split()
    counted = thinking_token_count(range(len(words)), lambda positions: " ".join(words[p] for p in positions), tags)
    return len(words) if counted is None else counted


class ThinkingFakeEngine(Engine):
    """Completions in the shapes above, with their thinking tokens counted at the request's think tags. Records
    the requests it was given (``requests_seen``), prefix included."""

    def __init__(self, model: str, **options: Any) -> None:
        self.model = model
        self.requests_seen: list[GenerationRequest] = []

    def describe(self) -> dict[str, Any]:
        return {"engine": "thinking-fake", "model": self.model}

    def generate(
        self, requests: Iterable[GenerationRequest], settings: SamplingSettings, on_tokens: TokenCallback | None = None
    ) -> Iterator[GenerationResult]:
        for request in requests:
            self.requests_seen.append(request)
            problem_index = int(request.problem_id.rsplit("/", 1)[1])
            tags = request.think_tags or ThinkTags()
            completions = []
            for offset in range(request.n):
                text = shape_text(problem_index, request.first_index + offset, tags, request.response_prefix)
                n_tokens = len(text.split())
                thinking = word_thinking_tokens(text, tags) if request.think_tags is not None else None
                completions.append(Completion(text, n_tokens, "stop", -1.0, **split_tokens(n_tokens, thinking)))
            yield GenerationResult(request=request, completions=completions, prompt_tokens=7)

    def close(self) -> None:
        pass
