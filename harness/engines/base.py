"""The engine protocol: turn (prompt, n) requests into n sampled completions each.

Modelled on vLLM's ``SamplingParams``/``LLM.generate``: small, explicit and typed. An engine yields each
request's completions as soon as they are all finished, so the caller can store them before the next
request finishes (a crash then loses only requests in flight), and reports the tokens it generates while
requests are still running (``on_tokens``), so progress moves long before the first request finishes.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypedDict

from harness.core.errors import EngineError
from harness.core.options import DeclaresOptions
from harness.core.reasoning import ThinkTags
from harness.core.records import Prompt, SamplingSettings
from harness.engines import models
from harness.engines.confidence import ConfidenceStats
from harness.engines.models import ModelRef

if TYPE_CHECKING:
    from typing_extensions import Self


class TokenCodec(Protocol):
    """A tokenizer as budget forcing's sweep uses it: where each token of a text ends."""

    def token_ends(self, text: str) -> list[int]:
        """The end (a character offset into ``text``) of each of its tokens, in order, non-decreasing."""
        ...


#: ``on_tokens(new_tokens)``: called by an engine, from the thread iterating ``generate``, with the number of
#: tokens generated since its last call (for all requests in flight together).
TokenCallback = Callable[[int], None]


@dataclass(frozen=True)
class GenerationRequest:
    """``n`` samples of one prompt, which will be stored as sample indices ``first_index .. first_index+n-1``.

    Attributes:
        think_tags: the tags around a reasoning model's thinking: the engine reports how many tokens of each
            completion were thinking (``Completion.thinking_tokens``), and a server's separate reasoning text is
            stored between them (``harness.core.reasoning.joined_completion``). None: the caller wants no split.
        response_prefix: text the response starts with, put after the prompt (after the chat template's
            generation prompt, for chat messages): the opening think tag when ``--reasoning on`` meets a chat
            template that does not open the thinking itself. An engine that renders prompts must append it; it
            is part of the run's configuration hash.
        top_logprobs: return each generated token's ``top_logprobs`` most likely alternatives with their
            log-probabilities (``Completion.top_logprobs``; 0: none). A judge asks for them to read its
            probability of "yes"; sampling for a run never does.
        max_tokens: most tokens of each completion of this request, in place of the settings' ``max_tokens``
            (None: the settings'). Budget forcing continues traces with their own limits; an engine must honour
            it.
    """

    problem_id: str
    prompt: Prompt
    n: int
    first_index: int
    seed: int
    think_tags: ThinkTags | None = None
    response_prefix: str = ""
    top_logprobs: int = 0
    max_tokens: int | None = None

    def token_limit(self, settings: SamplingSettings) -> int:
        """Most tokens of each completion: the request's own limit, else the settings'."""
        return settings.max_tokens if self.max_tokens is None else self.max_tokens


@dataclass(frozen=True)
class Completion:
    """One sampled completion.

    Attributes:
        text: the generated text (stop string excluded).
        n_tokens: generated tokens.
        finish_reason: ``"stop"`` (EOS or stop string) or ``"length"`` (hit max_tokens).
        logprob_sum: sum of the sampled tokens' log-probabilities under the model (None if not available).
        thinking_tokens: how many of ``n_tokens`` were thinking, up to and including the closing think tag (all of
            them when the thinking never closed); None when unknown (see ``split_tokens``).
        answer_tokens: the rest, ``n_tokens - thinking_tokens``; None when unknown.
        confidence: the sample's confidence statistics, computed while sampling from its tokens'
            log-probabilities (``harness.engines.confidence``); None where the engine has none.
        confidence_settings: what they were computed with (``ConfidenceSettings.label``).
        top_logprobs: when the request asked for them (``GenerationRequest.top_logprobs``), per generated token
            its most likely tokens' log-probabilities, token text -> log-probability (a judge's verdict
            token); None otherwise.
        forced: budget forcing (``harness.engines.forcing``) appended the closing tag and the answer cue to this
            completion's thinking; None when the run does not force budgets.
    """

    text: str
    n_tokens: int
    finish_reason: str
    logprob_sum: float | None
    thinking_tokens: int | None = None
    answer_tokens: int | None = None
    confidence: ConfidenceStats | None = None
    confidence_settings: str | None = None
    top_logprobs: list[dict[str, float]] | None = None
    forced: bool | None = None


class TokenSplit(TypedDict):
    """``Completion``'s thinking and answer token fields, as ``split_tokens`` gives them."""

    thinking_tokens: int | None
    answer_tokens: int | None


def split_tokens(n_tokens: int, thinking_tokens: int | None) -> TokenSplit:
    """A completion's ``thinking_tokens`` and ``answer_tokens`` from its thinking count (None: unknown), for
    ``Completion(**...)``; a count above ``n_tokens`` (a server's figure that includes what it did not send) is
    capped at it."""
    if thinking_tokens is None:
        return {"thinking_tokens": None, "answer_tokens": None}
    thinking = max(0, min(int(thinking_tokens), n_tokens))
    return {"thinking_tokens": thinking, "answer_tokens": n_tokens - thinking}


@dataclass(frozen=True)
class GenerationResult:
    """A request's completions. ``seed`` is set when the engine did not use the request's seed (e.g. an
    engine-wide seed where per-request seeds are unsupported); it is what the samples record."""

    request: GenerationRequest
    completions: list[Completion]
    prompt_tokens: int
    seed: int | None = None


class Engine(DeclaresOptions, abc.ABC):
    """Samples completions: subclass it, implement ``generate``, ``describe`` and ``close``.

    The runner builds an engine as ``Class(model_path, **engine_options)`` (see
    ``harness.engines.registry.build_engine``), after asking the class, before any engine starts, whether the
    options are right, what model the run uses and which engine settings define its samples. The hooks below
    have defaults; override the ones your engine needs:

    * Options: the constructor's keyword parameters, after the model (and ``seed``, see below), are the
      engine's options (``declared_options()``, see ``harness.core.options.DeclaresOptions``). Their
      annotations type them: ``engine_options={"max_model_len": "4096"}`` is refused, and
      ``ttc run --engine-option max_model_len=4096`` arrives as an int. ``validate_options(options)``
      checks what types cannot say (ranges); it runs before any engine starts or anything is written.

    * ``resolve_model(spec, engine_options)``: what ``model`` names. Default: the embedded model, a local
      checkpoint directory or a Hub id (``harness.engines.models.resolve_model``). A server-backed engine
      names a served model instead, which is never loaded or converted here.
    * ``resolve_sample_defining(engine_options)``: the engine settings that change what is sampled (the rest
      only change speed), as this machine would run them; they enter the run's configuration hash. Default:
      the options named in ``sample_defining_options``, as given ("auto" when absent). Override it when what
      runs depends on the machine (vLLM's dtype "auto" is float32 on CPUs without native bf16).
    * ``chat_template(model, engine_options)``: the chat template chat messages are rendered with, if known
      before the engine starts (default: a local checkpoint's). ``--reasoning auto`` looks for the think tags
      in it; with ``--reasoning on`` and a template that does not open the thinking, requests carry the
      opening tag as ``response_prefix``.
    * ``takes_session_seed``: True for engines that draw from one engine-wide random stream rather than
      seeding each request. They are constructed with ``seed=<session seed>``, which differs between sampling
      sessions of a run, so a resumed or extended run never replays the stream that produced the samples
      already stored.

    An engine is a context manager: ``with build_engine(...) as engine:`` closes it on exit.
    """

    given_by_harness = ("model", "seed")
    #: Engine options that change what is sampled (default of ``resolve_sample_defining``).
    sample_defining_options: ClassVar[tuple[str, ...]] = ("dtype",)
    #: Whether the constructor takes ``seed``, the session's seed for an engine-wide random stream.
    takes_session_seed: ClassVar[bool] = False
    #: Whether the engine computes on an accelerator when there is one: replicas on Ray then get GPUs
    #: (``tensor_parallel_size`` x ``pipeline_parallel_size`` each), not a share of the CPUs.
    uses_accelerator: ClassVar[bool] = False

    @classmethod
    def resolve_model(cls, spec: str | None, engine_options: Mapping[str, Any]) -> ModelRef:
        """The model ``spec`` names (None: the embedded default), without starting the engine."""
        return models.resolve_model(spec)

    @classmethod
    def resolve_sample_defining(cls, engine_options: Mapping[str, Any]) -> dict[str, Any]:
        """The engine settings that define the samples, as this machine would run them (hashed by the runner)."""
        return {name: engine_options.get(name, "auto") for name in cls.sample_defining_options}

    @classmethod
    def chat_template(cls, model: ModelRef, engine_options: Mapping[str, Any]) -> str | None:
        """The chat template this engine renders chat messages with, read without starting the engine; None
        when it is not known here (a server applies its own; a Hub model not yet downloaded). ``--reasoning
        auto`` reads the think tags in it. Default: the template of a local checkpoint directory."""
        return models.read_chat_template(model.path)

    @abc.abstractmethod
    def generate(
        self,
        requests: Iterable[GenerationRequest],
        settings: SamplingSettings,
        on_tokens: TokenCallback | None = None,
    ) -> Iterator[GenerationResult]:
        """Yield each request's result as soon as all its completions are done (any order).

        ``on_tokens``, when given, is called with the number of tokens generated since its last call, from
        the thread iterating this generator, at least every second or so while tokens are being generated
        (before the requests they belong to finish): the caller shows progress from it. The counts are for
        progress only (what is stored is each completion's ``n_tokens``); an engine that cannot count them
        may never call it.
        """

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Engine name and version, model, and engine settings that can change samples (kept in the manifest)."""

    def render_prompt(self, prompt: Prompt, response_prefix: str = "") -> str:
        """The text the model continues for ``prompt``: chat messages rendered with the model's chat template
        (its generation prompt included), then ``response_prefix``. Budget forcing continues a trace from this
        text and the trace so far. Default: text prompts only."""
        if not isinstance(prompt, str):
            raise EngineError(
                f"engine {type(self).__name__} cannot render chat messages as text, which budget forcing needs "
                "(it continues each trace from the prompt's text); use text prompts or an engine that renders them"
            )
        return prompt + response_prefix

    def token_codec(self) -> TokenCodec | None:
        """The model's tokenizer, where each token of a text ends: a sweep cuts stored traces at a budget of
        tokens with it. None (default): this engine cannot tell."""
        return None

    def concurrent_samples(self) -> int | None:
        """How many samples the engine works on at once (None: it does not say). A pool of replicas hands each
        replica about this many at a time, so that its batch stays full."""
        return None

    def session_figures(self) -> dict[str, Any]:
        """Figures of the sampling session that only the engine knows (a pool: per-replica throughput), kept
        in the session record."""
        return {}

    @abc.abstractmethod
    def close(self) -> None:
        """Release the engine's resources (model memory, connections); the engine is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def accepts_on_tokens(engine: Engine) -> bool:
    """Whether ``engine.generate`` takes ``on_tokens`` (engines written before it joined the protocol do not)."""
    parameters = inspect.signature(engine.generate).parameters.values()
    return any(p.name == "on_tokens" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def request_seed(base_seed: int, problem_id: str, first_index: int) -> int:
    """A per-request seed that differs between problems and between extensions of the same problem.

    Seeding every request from the base seed alone would make two requests for the same prompt (a resumed or
    extended run) repeat the same samples.
    """
    import hashlib

    digest = hashlib.blake2b(f"{base_seed}:{problem_id}:{first_index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF
