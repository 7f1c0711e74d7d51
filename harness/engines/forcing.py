"""Budget forcing at sampling time, for any engine that renders its prompts as text (``Engine.render_prompt``).

``BudgetForcingEngine`` wraps an engine and forces each sample's thinking to the settings of a
``harness.core.forcing.BudgetForcing`` (s1's budget forcing), in rounds over a group of requests:

1. every request is sampled as usual, but for at most ``thinking_budget`` B tokens (the run's ``max_tokens`` if
   lower);
2. a sample whose thinking did not close (it reached B, or ended before B without the closing tag) gets the
   closing tag and the answer cue appended, and is continued for at most ``answer_tokens`` A tokens; a sample
   that closed its thinking before ``min_thinking`` M tokens has the tag replaced by ``wait_word`` and thinks
   on, within what is left of B; one that closed within B and was stopped by the cap goes on as it would have
   (its answer within the run's ``max_tokens``);
3. continuations are requests of their own, one sample each, whose prompt is the rendered prompt and the trace
   so far: vLLM's prefix caching finds the prompt and the trace in its cache, so only the continuation is new
   work. An OpenAI-compatible server gets them as text on ``/completions`` (the chat template applied by ttc).

Every sample keeps its tokens apart: ``n_tokens`` counts what the model generated (not the inserted tag, cue or
wait word), ``thinking_tokens`` the generated thinking (at most B; a tag replaced by the wait word counts, as it
was generated), ``answer_tokens`` the rest, and ``forced`` says whether the tag and cue were inserted. Confidence
statistics (``harness.engines.confidence``) are kept for a sample generated in one piece; one generated in
pieces has none (null), since its windows would span them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.core.errors import EngineError
from harness.core.forcing import BudgetForcing, forced_thinking
from harness.core.reasoning import ThinkTags
from harness.core.records import Prompt, SamplingSettings
from harness.engines.base import (
    Completion,
    Engine,
    GenerationRequest,
    GenerationResult,
    TokenCallback,
    TokenCodec,
    accepts_on_tokens,
    request_seed,
)

# Samples forced together when the engine does not say how many it works on at once.
DEFAULT_GROUP_SAMPLES = 256
THINK, ANSWER, GO_ON = "think", "answer", "go on"


class TokenizerCodec:
    """A Hugging Face fast tokenizer as a ``TokenCodec``: token ends from its offset mapping."""

    def __init__(self, tokenizer: Any, model: str) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise EngineError(f"{model}'s tokenizer is not a fast tokenizer, whose token offsets a sweep needs")
        self.tokenizer = tokenizer

    def token_ends(self, text: str) -> list[int]:
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        ends, last = [], 0
        for _, end in offsets:
            last = max(last, int(end))
            ends.append(last)
        return ends


@dataclass
class _Trace:
    """One sample being forced: its text and token counts so far, and the next step (None: done)."""

    request: GenerationRequest
    offset: int
    prompt: str
    text: str = ""
    generated: int = 0
    thinking: int = 0
    forced: bool = False
    finish: str = "stop"
    pieces: list[Completion] = field(default_factory=list)
    step: tuple[str, int] | None = (THINK, 0)
    rounds: int = 0

    def completion(self) -> Completion:
        logprobs = [piece.logprob_sum for piece in self.pieces]
        known = None if None in logprobs else float(sum(value for value in logprobs if value is not None))
        # a sample generated in one piece, as it came, keeps that piece's confidence statistics; those of a
        # sample in pieces (forced, extended, continued) are unknown: their windows would span the pieces
        whole = self.pieces[0] if len(self.pieces) == 1 and self.pieces[0].text == self.text else None
        return Completion(
            text=self.text,
            n_tokens=self.generated,
            finish_reason=self.finish,
            logprob_sum=known,
            thinking_tokens=self.thinking,
            answer_tokens=self.generated - self.thinking,
            confidence=None if whole is None else whole.confidence,
            confidence_settings=None if whole is None else whole.confidence_settings,
            forced=self.forced,
        )


class BudgetForcingEngine(Engine):
    """``engine``, its samples budget-forced as ``forcing`` says (see the module's notes). The requests must
    carry their think tags (reasoning on)."""

    def __init__(self, engine: Engine, forcing: BudgetForcing) -> None:
        self.engine = engine
        self.forcing = forcing

    def describe(self) -> dict[str, Any]:
        return {**self.engine.describe(), "budget_forcing": self.forcing.record()}

    def concurrent_samples(self) -> int | None:
        return self.engine.concurrent_samples()

    def session_figures(self) -> dict[str, Any]:
        return self.engine.session_figures()

    def render_prompt(self, prompt: Prompt, response_prefix: str = "") -> str:
        return self.engine.render_prompt(prompt, response_prefix)

    def token_codec(self) -> TokenCodec | None:
        return self.engine.token_codec()

    def close(self) -> None:
        self.engine.close()

    def generate(
        self,
        requests: Iterable[GenerationRequest],
        settings: SamplingSettings,
        on_tokens: TokenCallback | None = None,
    ) -> Iterator[GenerationResult]:
        group: list[GenerationRequest] = []
        size = self.engine.concurrent_samples() or DEFAULT_GROUP_SAMPLES
        for request in requests:
            group.append(request)
            if sum(member.n for member in group) >= size:
                yield from self._force(group, settings, on_tokens)
                group = []
        if group:
            yield from self._force(group, settings, on_tokens)

    def _force(
        self, requests: Sequence[GenerationRequest], settings: SamplingSettings, on_tokens: TokenCallback | None
    ) -> Iterator[GenerationResult]:
        """Force one group of requests, yielding each as soon as all its samples are done."""
        first_limit = min(settings.max_tokens, self.forcing.thinking_budget or settings.max_tokens)
        if any(request.think_tags is None for request in requests):
            raise EngineError("budget forcing needs the requests' think tags (reasoning on)")
        originals = {(request.problem_id, request.first_index): request for request in requests}
        # every step continues the same text: the prompt rendered here (an OpenAI server then gets /completions)
        prompts = {
            key: self.engine.render_prompt(request.prompt, request.response_prefix)
            for key, request in originals.items()
        }
        first = [
            replace(request, prompt=prompts[key], response_prefix="", max_tokens=first_limit)
            for key, request in originals.items()
        ]
        traces: dict[tuple[str, int], list[_Trace]] = {}
        results: dict[tuple[str, int], GenerationResult] = {}
        for result in self._generate(first, settings, on_tokens):
            key = (result.request.problem_id, result.request.first_index)
            request = originals[key]
            traces[key] = [_Trace(request, offset, prompts[key]) for offset in range(request.n)]
            results[key] = result
            for trace, completion in zip(traces[key], result.completions):
                self._advance(trace, completion, first_limit, settings)
        yield from self._finished(traces, results)
        while traces:
            pending = {
                (trace.request.problem_id, trace.request.first_index + trace.offset): trace
                for group in traces.values()
                for trace in group
                if trace.step is not None
            }
            continuations = [self._continuation(trace) for trace in pending.values()]
            for result in self._generate(continuations, settings, on_tokens):
                trace = pending[(result.request.problem_id, result.request.first_index)]
                self._advance(trace, result.completions[0], result.request.token_limit(settings), settings)
            yield from self._finished(traces, results)

    def _generate(
        self, requests: list[GenerationRequest], settings: SamplingSettings, on_tokens: TokenCallback | None
    ) -> Iterator[GenerationResult]:
        streaming = {"on_tokens": on_tokens} if on_tokens is not None and accepts_on_tokens(self.engine) else {}
        for result in self.engine.generate(requests, settings, **streaming):
            limit = result.request.token_limit(settings)
            if any(completion.n_tokens > limit for completion in result.completions):
                raise EngineError(
                    f"engine {type(self.engine).__name__} generated more than the request's max_tokens ({limit}); "
                    "budget forcing needs engines that honour GenerationRequest.max_tokens"
                )
            yield result

    @staticmethod
    def _finished(
        traces: dict[tuple[str, int], list[_Trace]], results: dict[tuple[str, int], GenerationResult]
    ) -> Iterator[GenerationResult]:
        for key in [key for key, group in traces.items() if all(trace.step is None for trace in group)]:
            group = traces.pop(key)
            result = results.pop(key)
            completions = [trace.completion() for trace in group]
            yield GenerationResult(group[0].request, completions, result.prompt_tokens, result.seed)

    def _continuation(self, trace: _Trace) -> GenerationRequest:
        assert trace.step is not None
        kind, limit = trace.step
        trace.rounds += 1
        request = trace.request
        return GenerationRequest(
            problem_id=request.problem_id,
            prompt=trace.prompt + trace.text,
            n=1,
            first_index=request.first_index + trace.offset,
            seed=request_seed(request.seed + trace.offset, "budget forcing", trace.rounds),
            think_tags=request.think_tags if kind == THINK else None,  # an answer's tokens are no thinking
            max_tokens=limit,
        )

    def _advance(self, trace: _Trace, piece: Completion, limit: int, settings: SamplingSettings) -> None:
        """Take ``piece``, the trace's continuation at its step (generated with at most ``limit`` tokens), and
        decide the next step."""
        assert trace.step is not None
        kind = trace.step[0]
        trace.pieces.append(piece)
        trace.finish = piece.finish_reason
        if kind != THINK:  # the answer, forced or going on: the trace is done
            trace.text += piece.text
            trace.generated += piece.n_tokens
            trace.step = None
            return
        tags = trace.request.think_tags
        assert tags is not None
        if piece.thinking_tokens is None:
            raise EngineError(
                f"engine {type(self.engine).__name__} did not count the thinking tokens of a completion, which "
                "budget forcing needs (see harness.engines.base.Completion.thinking_tokens)"
            )
        budget, floor = self.forcing.thinking_budget, self.forcing.min_thinking or 0
        closes = piece.text.find(tags.close)
        if closes >= 0 and trace.thinking + piece.thinking_tokens < floor:  # closed too early: think on
            trace.thinking += piece.thinking_tokens
            trace.generated += piece.thinking_tokens
            trace.text += piece.text[:closes] + self.forcing.wait_word
            room = (budget if budget is not None else settings.max_tokens) - (
                trace.thinking if budget is not None else trace.generated
            )
            trace.step = (THINK, room) if room > 0 else self._forced(trace, tags)
            return
        trace.thinking += piece.thinking_tokens
        trace.generated += piece.n_tokens
        trace.text += piece.text
        if closes >= 0:  # closed within the budget: the answer goes on where the cap, not the run, stopped it
            room = settings.max_tokens - trace.generated
            stopped_by_cap = piece.finish_reason == "length" and piece.n_tokens >= limit
            trace.step = (GO_ON, room) if stopped_by_cap and room > 0 else None
            return
        trace.step = self._forced(trace, tags) if budget is not None else None

    def _forced(self, trace: _Trace, tags: ThinkTags) -> tuple[str, int] | None:
        """Close the trace's thinking with the tag and the answer cue; its next step is the answer (None
        without a budget: nothing is forced)."""
        if self.forcing.thinking_budget is None:
            return None
        trace.text = forced_thinking(trace.text, tags, self.forcing.answer_cue)
        trace.forced = True
        return (ANSWER, self.forcing.answer_tokens)
