"""Sampling from any OpenAI-compatible server (``vllm serve``, SGLang, hosted APIs) over HTTP.

Text prompts go to ``/completions`` and chat messages to ``/chat/completions``, with ``n`` samples per HTTP
request (at most ``max_n_per_request``), the request's seed and the sampled tokens' log-probabilities.
Answers are streamed (server-sent events, put back together here as the body a non-streamed request gets),
so the tokens a server generates are counted as they come (``on_tokens``: progress while requests run); a
server that answers with a plain body anyway is taken as it is, and one that refuses ``stream`` is asked
without it from then on.
Requests run on ``concurrency`` worker threads; a failed exchange (429, 5xx, connection error, timeout,
malformed body) is retried with exponential backoff and jitter, honouring ``Retry-After``. A request's
samples are handed to the caller only once all of them arrived whole, so the run store never holds a partial
request; a request that still fails after ``max_retries`` retries stops the run with ``OpenAIEngineError``.

Seeds: a chunk of a request starting at offset ``j`` is sent with seed ``request.seed + j``. vLLM seeds the
``i``-th of ``n`` choices with ``seed + i``, so every sample gets the same seed whether a server takes ``n``
per request or, when it refuses ``n > 1``, one request per sample.

Token counts (``n_tokens``): the number of sampled tokens' log-probabilities when the server returns them,
else ``usage.completion_tokens`` for a single choice, else that total split over the choices in proportion
to their text lengths (an estimate; ``describe()["n_tokens_from"]`` records which was used), else 0.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import numpy as np

from harness.core.errors import EngineError, OptionError, check_number
from harness.core.reasoning import ThinkTags, joined_completion, split_completion, thinking_token_count
from harness.core.records import Prompt, SamplingSettings
from harness.engines.base import (
    Completion,
    Engine,
    GenerationRequest,
    GenerationResult,
    TokenCallback,
    TokenCodec,
    split_tokens,
)
from harness.engines.confidence import (
    DEFAULT_TAIL,
    DEFAULT_WINDOW,
    ConfidenceAccumulator,
    ConfidenceSettings,
    ConfidenceStats,
)
from harness.engines.forcing import TokenizerCodec
from harness.engines.models import ModelRef

logger = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
# Longest wait a server's Retry-After may impose before a retry.
RETRY_AFTER_LIMIT = 600.0
# Most seconds between two reports of streamed tokens to ``on_tokens`` while answers arrive.
TOKEN_REPORT_SECONDS = 0.5
SEED_MODULUS = 2**31
_Result = TypeVar("_Result")


class OpenAIEngineError(EngineError):
    """The server cannot be used as asked, or a request failed for good; the run stops with this message."""


class _Retry(Exception):
    """A failed exchange worth repeating (rate limit, server error, timeout, connection or body broken)."""

    def __init__(self, failure: str, retry_after: float | None = None) -> None:
        super().__init__(failure)
        self.retry_after = retry_after


class _NUnsupported(Exception):
    """The server does not take ``n > 1``: sample one completion per request instead."""


class _LogprobsRejected(Exception):
    """The server rejected the log-probability request: repeat without it."""


class _StreamRejected(Exception):
    """The server rejected ``stream``: repeat without it."""


class _Cancelled(Exception):
    """The run stopped while this request waited to be retried."""


def _retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def resolve_base_url(base_url: str | None) -> str:
    """``base_url``, else ``$OPENAI_BASE_URL``; must be an http(s) URL (e.g. ``http://127.0.0.1:8000/v1``)."""
    value = base_url or os.environ.get(BASE_URL_ENV)
    if not value:
        raise OptionError(
            "base_url",
            f"the openai engine needs the server's API root (e.g. http://127.0.0.1:8000/v1) or ${BASE_URL_ENV}",
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError("base_url", f"{value!r} is not an http(s) URL such as http://127.0.0.1:8000/v1")
    return value.rstrip("/")


def _error_message(body: bytes) -> str:
    """The server's error text: OpenAI's ``{"error": {"message": ...}}``, other JSON shapes, or raw text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])[:300]
    return text[:300]


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if given."""
    if "retry-after-ms" in headers:
        try:
            return min(max(float(headers["retry-after-ms"]) / 1000.0, 0.0), RETRY_AFTER_LIMIT)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_LIMIT)


# Where servers put a reasoning model's thinking apart from its answer: vLLM's and SGLang's reasoning parsers
# (``reasoning_content``; vLLM from 0.10 also ``reasoning``), OpenRouter and others (``reasoning``).
REASONING_FIELDS = ("reasoning_content", "reasoning")


def _reasoning_of(message: Mapping[str, Any]) -> str | None:
    """The thinking a server returned apart from the answer (a message or a stream's delta), if any."""
    return next((message[key] for key in REASONING_FIELDS if isinstance(message.get(key), str)), None)


def _choice_parts(choice: Mapping[str, Any], chat: bool) -> tuple[str | None, str | None]:
    """A choice's answer text and, for a reasoning model behind a reasoning parser, its thinking. The answer
    may be null (or absent) next to thinking: the model stopped, or was cut off, before it closed its thinking."""
    if not chat:
        text, reasoning = choice.get("text"), None
    else:
        message = choice.get("message")
        text, reasoning = (
            (message.get("content"), _reasoning_of(message)) if isinstance(message, dict) else (None, None)
        )
    if not isinstance(text, str) and not (text is None and reasoning is not None):
        where = "message.content (or reasoning_content)" if chat else "text"
        raise _Retry(f"malformed response: choice {choice.get('index')} has no {where} string")
    return text, reasoning


def _stored_text(answer: str | None, reasoning: str | None, finish_reason: str, tags: ThinkTags) -> str:
    """What is stored of a choice: its text, or for thinking returned apart, the thinking and the answer between
    the think tags (``joined_completion``). The thinking never closed where the answer is null, or empty with
    finish reason ``length`` (cut off right at the closing tag)."""
    if reasoning is None:
        return answer or ""
    closed = answer is not None and not (answer == "" and finish_reason == "length")
    return joined_completion(reasoning, answer, tags, closed)


def _choice_tokens(choice: Mapping[str, Any], chat: bool) -> list[str] | None:
    """The sampled tokens' texts that come with their log-probabilities (None when not given): where the closing
    think tag falls among them."""
    tokens = _per_token(choice, chat, "token", "tokens")
    if tokens is None or not all(isinstance(token, str) for token in tokens):
        return None
    return tokens


def _choice_logprobs(choice: Mapping[str, Any], chat: bool) -> list[float] | None:
    """The sampled tokens' log-probabilities, or None when the choice carries none (or in another shape)."""
    values = _per_token(choice, chat, "logprob", "token_logprobs")
    if values is None or not all(isinstance(value, (int, float)) for value in values):
        return None
    return [float(value) for value in values]


def _per_token(choice: Mapping[str, Any], chat: bool, chat_key: str, text_key: str) -> list[Any] | None:
    """One field of a choice's per-token log-probability entries: ``chat_key`` of each entry of a chat choice's
    ``logprobs.content``, or the list ``logprobs[text_key]`` of a completion's; None when absent."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return None
    if chat:
        content = logprobs.get("content")
        return (
            [entry.get(chat_key) for entry in content if isinstance(entry, dict)] if isinstance(content, list) else None
        )
    values = logprobs.get(text_key)
    return values if isinstance(values, list) else None


def _choice_top_logprobs(choice: Mapping[str, Any], chat: bool) -> list[dict[str, float]] | None:
    """Per token, its most likely alternatives (token text -> log-probability), or None when the choice carries
    none. Completions: ``logprobs.top_logprobs`` (a dict per token); chat: ``logprobs.content[i].top_logprobs``
    (a list of ``{token, logprob}`` per token)."""
    rows = _per_token(choice, chat, "top_logprobs", "top_logprobs")
    if rows is None:
        return None
    parsed = []
    for row in rows:
        if chat and isinstance(row, list):
            pairs = [(item.get("token"), item.get("logprob")) for item in row if isinstance(item, dict)]
        elif not chat and isinstance(row, dict):
            pairs = list(row.items())
        else:
            return None
        parsed.append(
            {
                str(token): float(value)
                for token, value in pairs
                if token is not None and isinstance(value, (int, float)) and not isinstance(value, bool)
            }
        )
    return parsed


def top_matrix(rows: list[dict[str, float]], top: int) -> np.ndarray:
    """The ``top`` largest log-probabilities of each token's alternatives, as a (tokens, top) array (NaN-padded)."""
    matrix = np.full((len(rows), top), np.nan)
    for index, row in enumerate(rows):
        best = sorted(row.values(), reverse=True)[:top]
        matrix[index, : len(best)] = best
    return matrix


def _json_body(body: bytes) -> Any:
    """A non-streamed answer's JSON; a body that does not parse is retried."""
    try:
        return json.loads(body)
    except ValueError as error:
        raise _Retry(f"malformed response: not valid JSON ({error}; {len(body)} bytes)") from None


def split_by_length(total: int, texts: list[str]) -> list[int]:
    """Split ``total`` tokens over ``texts`` in proportion to their lengths (largest remainders; sums to total)."""
    lengths = [len(text) for text in texts]
    whole = sum(lengths)
    shares = [total / len(texts)] * len(texts) if whole == 0 else [total * length / whole for length in lengths]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(texts)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _joined_pieces(pieces: list[str], positions: Iterable[int]) -> str:
    """The text of the sampled tokens at ``positions`` (a ``decode`` over token texts)."""
    return "".join(pieces[position] for position in positions)


def _load_tokenizer(name: str, required: bool) -> Any:
    """A tokenizer from a local directory or the local Hugging Face cache (never downloaded); None when it
    cannot be loaded, unless ``required`` (an ``OptionError`` naming ``tokenizer``)."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as error:  # noqa: BLE001 - transformers raises many kinds for a tokenizer it cannot find
        if required:
            raise OptionError("tokenizer", f"cannot load a tokenizer from {name!r} locally ({error})") from None
        return None


@dataclass(frozen=True)
class _Chunk:
    """Samples ``offset .. offset+size-1`` of request number ``key``: one HTTP exchange (if ``n`` works)."""

    key: int
    request: GenerationRequest
    offset: int
    size: int


@dataclass
class _ChunkResult:
    completions: list[Completion]
    prompt_tokens: int


@dataclass
class _Assembly:
    """A request's completions as its chunks come back; complete when every slot is filled."""

    request: GenerationRequest
    completions: list[Completion | None] = field(default_factory=list)
    prompt_tokens: int = 0
    missing: int = 0

    def add(self, offset: int, result: _ChunkResult) -> None:
        self.completions[offset : offset + len(result.completions)] = result.completions
        self.prompt_tokens = max(self.prompt_tokens, result.prompt_tokens)
        self.missing -= len(result.completions)

    def finished(self) -> list[Completion]:
        """The completions, in order, once every slot is filled (``missing`` is 0)."""
        done = [completion for completion in self.completions if completion is not None]
        if len(done) != len(self.completions):  # a bug in the chunking, never the server's answer
            raise RuntimeError(f"{self.request.problem_id}: {len(self.completions) - len(done)} completions missing")
        return done


class _StreamedAnswer:
    """A streamed answer (server-sent events) put back together as the body a non-streamed request gets.

    Each event's choices carry the next piece of text (``text``, or ``delta.content`` for chat), its tokens'
    log-probabilities and, at the end, a ``finish_reason``; a last event may carry ``usage``. The tokens of
    each event (its log-probabilities, else one per piece of text) go to ``count_tokens`` as they arrive.
    """

    def __init__(
        self, chat: bool, count_tokens: Callable[[int], None], confidence: ConfidenceSettings | None = None
    ) -> None:
        self.chat = chat
        self.count_tokens = count_tokens
        self.confidence = confidence
        self.started = False
        self._pending = b""
        self._texts: dict[int, list[str]] = {}
        self._answered: set[int] = set()  # choices whose answer text arrived (else null next to thinking)
        self._reasoning: dict[int, list[str]] = {}
        self._logprobs: dict[int, list[float] | None] = {}
        self._tokens: dict[int, list[str] | None] = {}
        self._tops: dict[int, list[dict[str, float]] | None] = {}
        self._accumulators: dict[int, ConfidenceAccumulator | None] = {}
        self._finish: dict[int, str | None] = {}
        self._usage: Any = None

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the event stream."""
        self.started = True
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                self._event(line[5:].strip())

    def _event(self, payload: bytes) -> None:
        try:
            event = json.loads(payload)
        except ValueError as error:
            raise _Retry(f"malformed stream event: not valid JSON ({error})") from None
        if not isinstance(event, dict):
            raise _Retry("malformed stream event: not a JSON object")
        if event.get("error"):
            raise _Retry(f"the server reported an error mid-stream: {_error_message(payload)}")
        if isinstance(event.get("usage"), dict):
            self._usage = event["usage"]
        tokens = 0
        for choice in event.get("choices") or ():
            index = choice.get("index") if isinstance(choice, dict) else None
            if not isinstance(index, int):
                raise _Retry(f"malformed stream event: a choice without an integer index ({choice!r:.100})")
            delta = choice.get("delta")
            text = (delta.get("content") if isinstance(delta, dict) else None) if self.chat else choice.get("text")
            reasoning = _reasoning_of(delta) if self.chat and isinstance(delta, dict) else None
            values = _choice_logprobs(choice, self.chat)
            pieces = _choice_tokens(choice, self.chat)
            tops = _choice_top_logprobs(choice, self.chat)
            self._texts.setdefault(index, [])
            logprobs = self._logprobs.setdefault(index, [])
            token_texts = self._tokens.setdefault(index, [])
            kept_tops = self._tops.setdefault(index, [])
            if isinstance(text, str):
                self._texts[index].append(text)
                self._answered.add(index)
            if reasoning is not None:
                self._reasoning.setdefault(index, []).append(reasoning)
            if values is not None:
                tokens += len(values)
                if logprobs is not None:
                    logprobs.extend(values)
                    self._feed_confidence(index, values, tops)
                if token_texts is not None and pieces is not None and len(pieces) == len(values):
                    token_texts.extend(pieces)
                else:
                    self._tokens[index] = None
            elif text or reasoning:
                tokens += 1
                self._logprobs[index] = None  # a piece without log-probabilities: count tokens from usage
                self._tokens[index] = None
                self._accumulators[index] = None
            if kept_tops is not None and tops is not None and values is not None and len(tops) == len(values):
                kept_tops.extend(tops)
            elif values:
                self._tops[index] = None
            if choice.get("finish_reason"):
                self._finish[index] = str(choice["finish_reason"])
        if tokens:
            self.count_tokens(tokens)

    def _feed_confidence(self, index: int, values: list[float], tops: list[dict[str, float]] | None) -> None:
        """Feed a piece's tokens to the choice's confidence accumulator, as they arrive."""
        settings = self.confidence
        if settings is None or not values:
            return
        if index not in self._accumulators:
            self._accumulators[index] = settings.accumulator()
        accumulator = self._accumulators[index]
        if accumulator is None:
            return
        if not settings.top_logprobs:
            settings.feed(accumulator, values)
        elif tops is not None and len(tops) == len(values):
            settings.feed(accumulator, top_matrix(tops, settings.top_logprobs))
        else:  # the server did not return the top log-probabilities asked for
            self._accumulators[index] = None

    def body(self) -> dict[str, Any]:
        """The answer as a non-streamed body; a stream that ended before every choice finished is retried. Each
        choice's confidence statistics, computed as its tokens arrived, ride along as ``ttc_confidence``."""
        unfinished = sorted(set(self._texts) - set(self._finish))
        if not self._texts or unfinished:
            raise _Retry(f"the streamed answer ended before choices {unfinished or 'any'} finished")
        choices = []
        for index, pieces in sorted(self._texts.items()):
            text, values, token_texts = "".join(pieces), self._logprobs[index], self._tokens[index]
            tops = self._tops.get(index)
            choice: dict[str, Any] = {"index": index, "finish_reason": self._finish[index]}
            if self.chat:
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if index in self._reasoning:
                    message["reasoning_content"] = "".join(self._reasoning[index])
                    if index not in self._answered:
                        message["content"] = None
                choice["message"] = message
                entries: list[dict[str, Any]] | None = None if values is None else [{"logprob": v} for v in values]
                if entries is not None and token_texts is not None:
                    entries = [{**entry, "token": token} for entry, token in zip(entries, token_texts)]
                if entries is not None and tops:
                    for entry, row in zip(entries, tops):
                        entry["top_logprobs"] = [{"token": token, "logprob": value} for token, value in row.items()]
                choice["logprobs"] = None if entries is None else {"content": entries}
            else:
                choice["text"] = text
                choice["logprobs"] = None if values is None else {"token_logprobs": values, "tokens": token_texts}
                if values is not None and tops:
                    choice["logprobs"]["top_logprobs"] = tops
            accumulator = self._accumulators.get(index)
            if values is not None and accumulator is not None:
                choice["ttc_confidence"] = accumulator.result()
            choices.append(choice)
        return {"choices": choices, "usage": self._usage}


class OpenAIEngine(Engine):
    """Samples from an OpenAI-compatible server.

    Args:
        model: the model name the server serves (as listed by ``GET <base_url>/models``).
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (None: ``$OPENAI_BASE_URL``).
        api_key_env: environment variable holding the API key, sent as a bearer token. None: use
            ``$OPENAI_API_KEY`` if it is set (local servers need no key); a name given must be set.
        concurrency: HTTP requests in flight at once.
        request_timeout: seconds one HTTP exchange may take, from sending to the last byte of the answer.
        max_retries: retries of a failed exchange before the run stops.
        max_n_per_request: most samples asked for in one HTTP request (hosted APIs cap ``n``).
        backoff_base: seconds before the first retry; doubles each retry (with jitter), up to ``backoff_max``.
        backoff_max: longest wait between retries (a server's ``Retry-After`` is honoured up to 600 s).
        tokenizer: the model's tokenizer, a local directory or a Hub id in the local cache, for counting thinking
            tokens where the server gives neither ``usage.completion_tokens_details.reasoning_tokens`` nor the
            sampled tokens' texts. None: the served model's name, if the local Hugging Face cache holds its
            tokenizer (nothing is downloaded); without one the split is stored as unknown (null).
        confidence: compute each sample's confidence statistics (``harness.engines.confidence``) from the
            log-probabilities the server returns, fed to them as the stream arrives; stored with the sample.
        confidence_window, confidence_tail: tokens per sliding window and in the tail (DeepConf: 2048 each).
        confidence_top_logprobs: 0: token values are the sampled tokens' log-probabilities; k: DeepConf's token
            confidence over the top k log-probabilities, which the server is then asked for.

    Reasoning models: a server's reasoning parser returns the thinking apart from the answer
    (``reasoning_content`` or ``reasoning``), with the answer null when the thinking never closed. Both are
    stored as one text, the thinking between the run's think tags and then the answer, so nothing is lost and
    the text splits as inline thinking does (``harness.core.reasoning``). Thinking tokens per sample come from
    the server's ``reasoning_tokens`` (a single choice), else the position of the closing tag among the sampled
    tokens, else the tokenizer, else ``reasoning_tokens`` split over the choices by thinking length (an
    estimate); ``describe()["thinking_tokens_from"]`` records which.
    """

    # Nothing the engine options set changes what is sampled (the served model is in the identity).
    sample_defining_options = ()

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 8,
        request_timeout: float = 600.0,
        max_retries: int = 5,
        max_n_per_request: int = 128,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        tokenizer: str | None = None,
        confidence: bool = True,
        confidence_window: int = DEFAULT_WINDOW,
        confidence_tail: int = DEFAULT_TAIL,
        confidence_top_logprobs: int = 0,
    ) -> None:
        self.confidence = ConfidenceSettings.from_options(
            {
                "confidence": confidence,
                "confidence_window": confidence_window,
                "confidence_tail": confidence_tail,
                "confidence_top_logprobs": confidence_top_logprobs,
            }
        )
        self.model = model
        self.tokenizer_name = tokenizer
        # loaded when first needed; a tokenizer named by the user must load, the served model's may not
        self._tokenizer: Any = _load_tokenizer(tokenizer, required=True) if tokenizer else None
        self._tokenizer_tried = tokenizer is not None
        self.base_url = resolve_base_url(base_url)
        self.concurrency = concurrency
        self.request_timeout = float(request_timeout)
        self.max_retries = max_retries
        self.max_n_per_request = max_n_per_request
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.api_key_env = api_key_env or DEFAULT_API_KEY_ENV
        api_key = os.environ.get(self.api_key_env)
        if api_key_env is not None and not api_key:
            raise OptionError("api_key_env", f"${api_key_env} is not set (or is empty)")
        self._uses_key = bool(api_key)
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=httpx.Timeout(self.request_timeout),
            limits=httpx.Limits(max_connections=concurrency + 1, max_keepalive_connections=concurrency + 1),
        )
        self._lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self._n_supported = True
        self._logprobs_supported = True
        self._stream_supported = True
        self._streamed_tokens = 0  # counted by the workers, handed to on_tokens by the generating thread
        self._fallbacks: list[str] = []
        self._token_sources: set[str] = set()
        self._thinking_sources: set[str] = set()
        try:
            self._served_model = self._check_model()
        except BaseException:
            self._client.close()
            raise

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        check_number("concurrency", options.get("concurrency"), at_least=1)
        check_number("request_timeout", options.get("request_timeout"), above=0)
        check_number("max_retries", options.get("max_retries"), at_least=0)
        check_number("max_n_per_request", options.get("max_n_per_request"), at_least=1)
        check_number("backoff_base", options.get("backoff_base"), at_least=0)
        check_number("backoff_max", options.get("backoff_max"), at_least=0)
        ConfidenceSettings.from_options(options)

    @classmethod
    def resolve_model(cls, spec: str | None, engine_options: Mapping[str, Any]) -> ModelRef:
        """``spec`` names a served model, never a local path: nothing is loaded, converted or downloaded.

        The run's model identity is ``<model>@<host of base_url>`` (the port is left out, so a restarted
        local server on another port still resumes the run).
        """
        if not spec:
            raise OptionError(
                "model",
                "the openai engine needs the name the server serves the model under (GET <base_url>/models lists them)",
            )
        host = urlsplit(resolve_base_url(engine_options.get("base_url"))).hostname
        name = spec.rstrip("/").split("/")[-1] or spec
        return ModelRef(path=spec, identity=f"{spec}@{host}", name=name)

    @classmethod
    def chat_template(cls, model: ModelRef, engine_options: Mapping[str, Any]) -> str | None:
        """Unknown: the server renders chat messages with its own template, which ttc cannot see (``--reasoning
        auto`` then turns on when the server returns thinking, or completions hold the think tags)."""
        return None

    def render_prompt(self, prompt: Prompt, response_prefix: str = "") -> str:
        """Text prompts pass through; chat messages are rendered here with the model's chat template (from its
        tokenizer), for ``/completions``: budget forcing continues each trace from this text."""
        if isinstance(prompt, str):
            return prompt + response_prefix
        tokenizer = self._forcing_tokenizer("its chat template renders the prompts here, for /completions")
        if not getattr(tokenizer, "chat_template", None):
            raise OptionError("engine_options.tokenizer", f"{self.tokenizer_name or self.model} has no chat template")
        rendered = tokenizer.apply_chat_template(
            [dict(message) for message in prompt], tokenize=False, add_generation_prompt=True
        )
        return str(rendered) + response_prefix

    def token_codec(self) -> TokenCodec:
        """The model's tokenizer (``tokenizer``, else the served model's from the local cache)."""
        return TokenizerCodec(self._forcing_tokenizer("a sweep cuts traces at token budgets"), self.model)

    def _forcing_tokenizer(self, why: str) -> Any:
        tokenizer = self._local_tokenizer()
        if tokenizer is None:
            raise OptionError(
                "engine_options.tokenizer",
                f"budget forcing against a server needs the model's tokenizer ({why}): give its directory or a "
                f"Hub id in the local cache (--engine-option tokenizer=PATH); {self.model!r} is not in the cache",
            )
        return tokenizer

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "engine": "openai",
                "base_url": self.base_url,
                "model": self.model,
                "served_model": self._served_model,
                "api_key_env": self.api_key_env if self._uses_key else None,
                "concurrency": self.concurrency,
                "request_timeout": self.request_timeout,
                "max_retries": self.max_retries,
                "max_n_per_request": self.max_n_per_request,
                "n_per_request": self._n_supported,
                "logprobs": self._logprobs_supported,
                "streaming": self._stream_supported,
                "n_tokens_from": sorted(self._token_sources),
                "thinking_tokens_from": sorted(self._thinking_sources),
                "tokenizer": self.tokenizer_name,
                "fallbacks": list(self._fallbacks),
                "confidence": None if self.confidence is None else self.confidence.label,
            }

    def close(self) -> None:
        self._client.close()

    # -- the run -------------------------------------------------------------------------------------------
    def generate(
        self,
        requests: Iterable[GenerationRequest],
        settings: SamplingSettings,
        on_tokens: TokenCallback | None = None,
    ) -> Iterator[GenerationResult]:
        requests = list(requests)
        self._take_streamed_tokens()  # what an earlier, abandoned generate left
        assemblies: dict[int, _Assembly] = {}
        chunks = self._plan(requests, assemblies)
        tasks: queue.SimpleQueue = queue.SimpleQueue()
        results: queue.SimpleQueue = queue.SimpleQueue()
        stop = threading.Event()
        # Daemon threads: a run that stops on an error need not wait for exchanges still in flight.
        workers = [
            threading.Thread(
                target=self._work, args=(tasks, results, stop, settings), daemon=True, name=f"ttc-openai-{i}"
            )
            for i in range(self.concurrency)
        ]
        for worker in workers:
            worker.start()
        outstanding = 0
        try:
            for chunk in chunks:
                tasks.put(chunk)
                outstanding += 1
                if outstanding == self.concurrency:
                    break
            while outstanding:
                try:
                    chunk, outcome = results.get(timeout=TOKEN_REPORT_SECONDS)
                except queue.Empty:
                    self._report_tokens(on_tokens)
                    continue
                self._report_tokens(on_tokens)
                outstanding -= 1
                if isinstance(outcome, BaseException):
                    raise outcome
                following = next(chunks, None)  # keep the workers busy while the caller stores this result
                if following is not None:
                    tasks.put(following)
                    outstanding += 1
                assembly = assemblies[chunk.key]
                assembly.add(chunk.offset, outcome)
                if assembly.missing == 0:
                    del assemblies[chunk.key]
                    yield GenerationResult(
                        request=assembly.request,
                        completions=assembly.finished(),
                        prompt_tokens=assembly.prompt_tokens,
                    )
        finally:
            stop.set()
            for _ in workers:
                tasks.put(None)

    def _count_tokens(self, tokens: int) -> None:
        with self._lock:
            self._streamed_tokens += tokens

    def _take_streamed_tokens(self) -> int:
        with self._lock:
            tokens, self._streamed_tokens = self._streamed_tokens, 0
        return tokens

    def _report_tokens(self, on_tokens: TokenCallback | None) -> None:
        tokens = self._take_streamed_tokens()
        if tokens and on_tokens is not None:
            on_tokens(tokens)

    def _plan(self, requests: list[GenerationRequest], assemblies: dict[int, _Assembly]) -> Iterator[_Chunk]:
        """Chunks of at most ``max_n_per_request`` samples (1 once ``n`` is known unsupported), made lazily."""
        for key, request in enumerate(requests):
            assemblies[key] = _Assembly(request, [None] * request.n, missing=request.n)
            offset = 0
            while offset < request.n:
                size = min(self.max_n_per_request if self._n_supported else 1, request.n - offset)
                yield _Chunk(key, request, offset, size)
                offset += size

    def _work(
        self, tasks: queue.SimpleQueue, results: queue.SimpleQueue, stop: threading.Event, settings: SamplingSettings
    ) -> None:
        while (chunk := tasks.get()) is not None:
            try:
                results.put((chunk, self._sample_chunk(chunk, settings, stop)))
            except BaseException as error:  # noqa: BLE001 - handed to the generating thread, which raises it
                results.put((chunk, error))

    def _sample_chunk(self, chunk: _Chunk, settings: SamplingSettings, stop: threading.Event) -> _ChunkResult:
        request, offset = chunk.request, chunk.offset
        if chunk.size > 1 and self._n_supported:
            try:
                return self._exchange(request, offset, chunk.size, settings, stop)
            except _NUnsupported:
                pass
        parts = [self._exchange(request, offset + i, 1, settings, stop) for i in range(chunk.size)]
        return _ChunkResult(
            completions=[part.completions[0] for part in parts],
            prompt_tokens=max(part.prompt_tokens for part in parts),
        )

    def _exchange(
        self, request: GenerationRequest, offset: int, size: int, settings: SamplingSettings, stop: threading.Event
    ) -> _ChunkResult:
        """One HTTP request for ``size`` samples, retried until it gives exactly ``size`` well-formed choices."""
        first = request.first_index + offset
        label = f"request for {request.problem_id} samples {first}..{first + size - 1}"
        chat = not isinstance(request.prompt, str)
        if chat and request.response_prefix:  # the server renders the chat template: nothing can follow it here
            raise OpenAIEngineError(
                f"{label}: a response prefix ({request.response_prefix!r}) cannot follow a server's chat template"
            )
        while True:
            logprobs, stream = self._logprobs_supported, self._stream_supported
            payload = self._payload(request, offset, size, settings, logprobs, stream)
            keep_tops = request.top_logprobs > 0
            attempt = partial(self._attempt, payload, size, chat, logprobs, stream, request.think_tags, keep_tops)
            try:
                return self._retrying(label, attempt, stop)
            except (_LogprobsRejected, _StreamRejected):
                continue

    def _payload(
        self,
        request: GenerationRequest,
        offset: int,
        size: int,
        settings: SamplingSettings,
        logprobs: bool,
        stream: bool,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.token_limit(settings),
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": (request.seed + offset) % SEED_MODULUS,
        }
        if size > 1:
            payload["n"] = size
        if settings.top_k > 0:
            payload["top_k"] = settings.top_k  # not in OpenAI's API; vLLM and SGLang take it
        if settings.stop:
            payload["stop"] = list(settings.stop)
        if stream:
            payload.update(stream=True, stream_options={"include_usage": True})
        # the sampled tokens' log-probabilities, and the top ones where DeepConf's confidence or a judge asks
        top = max(request.top_logprobs, 0 if self.confidence is None else self.confidence.top_logprobs)
        if isinstance(request.prompt, str):
            payload["prompt"] = request.prompt + request.response_prefix
            if logprobs:
                payload["logprobs"] = top
        else:
            payload["messages"] = [dict(message) for message in request.prompt]
            if logprobs:
                payload.update(logprobs=True, top_logprobs=top)
        return payload

    def _attempt(
        self,
        payload: dict[str, Any],
        size: int,
        chat: bool,
        logprobs: bool,
        stream: bool,
        tags: ThinkTags | None,
        keep_tops: bool = False,
    ) -> _ChunkResult:
        path = "/chat/completions" if chat else "/completions"
        answer = _StreamedAnswer(chat, self._count_tokens, self.confidence) if stream else None
        status, body = self._send("POST", path, payload, answer)
        if status == 200:
            data = answer.body() if answer is not None and answer.started else _json_body(body)
            return self._parse(data, size, chat, tags, keep_tops)
        message = _error_message(body)
        if status in (400, 422):
            if stream and "stream" in message.lower():
                self._fall_back("stream", f"HTTP {status}: {message}")
                raise _StreamRejected
            if logprobs and ("logprob" in message.lower() or size == 1 or not self._n_supported):
                self._fall_back("logprobs", f"HTTP {status}: {message}")
                raise _LogprobsRejected
            if size > 1:
                self._fall_back("n", f"HTTP {status}: {message}")
                raise _NUnsupported
        raise OpenAIEngineError(self._refusal(status, message, path))

    def _parse(
        self, data: Any, size: int, chat: bool, tags: ThinkTags | None = None, keep_tops: bool = False
    ) -> _ChunkResult:
        """A body's choices as completions (``keep_tops``: with each token's top log-probabilities, asked for by
        the request, not only by the confidence statistics)."""
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list):
            raise _Retry("malformed response: no 'choices' list")
        if len(choices) != size:
            if size > 1 and len(choices) == 1:
                self._fall_back("n", f"the server answered n={size} with one choice")
                raise _NUnsupported
            raise _Retry(f"malformed response: {len(choices)} choices for n={size}")
        by_index: dict[int, Mapping[str, Any]] = {}
        for position, choice in enumerate(choices):
            index = choice.get("index", position) if isinstance(choice, dict) else None
            if not isinstance(index, int) or not 0 <= index < size or index in by_index:
                raise _Retry(f"malformed response: choice {position} has index {index!r} (n={size})")
            by_index[index] = choice
        ordered = [by_index[index] for index in range(size)]
        finish_reasons = [str(choice.get("finish_reason") or "unknown") for choice in ordered]
        parts = [_choice_parts(choice, chat) for choice in ordered]
        texts = [
            _stored_text(answer, reasoning, finish, tags or ThinkTags())
            for (answer, reasoning), finish in zip(parts, finish_reasons)
        ]
        token_logprobs = [_choice_logprobs(choice, chat) for choice in ordered]
        token_tops = [_choice_top_logprobs(choice, chat) for choice in ordered]
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        n_tokens = self._token_counts(texts, token_logprobs, usage.get("completion_tokens"))
        thinking: list[int | None] = [None] * size
        if tags is not None:
            details = usage.get("completion_tokens_details")
            reasoning_tokens = details.get("reasoning_tokens") if isinstance(details, dict) else None
            tokens = [_choice_tokens(choice, chat) for choice in ordered]
            thinking = self._thinking_counts(texts, n_tokens, tokens, reasoning_tokens, tags)
        prompt_tokens = usage.get("prompt_tokens")
        completions = []
        rows = zip(texts, n_tokens, finish_reasons, token_logprobs, thinking, ordered, token_tops)
        for text, count, finish, values, thought, choice, tops in rows:
            stats = self._confidence_of(choice, values, tops)
            completions.append(
                Completion(
                    text=text,
                    n_tokens=count,
                    finish_reason=finish,
                    logprob_sum=None if values is None else float(sum(values)),
                    **split_tokens(count, thought),
                    confidence=stats,
                    confidence_settings=None if stats is None or self.confidence is None else self.confidence.label,
                    top_logprobs=tops if keep_tops else None,
                )
            )
        return _ChunkResult(completions, prompt_tokens if isinstance(prompt_tokens, int) else 0)

    def _confidence_of(
        self, choice: Mapping[str, Any], values: list[float] | None, tops: list[dict[str, float]] | None
    ) -> ConfidenceStats | None:
        """A choice's confidence statistics: fed as its stream arrived, else from its log-probabilities now."""
        settings = self.confidence
        if settings is None or values is None:
            return None
        if isinstance(choice.get("ttc_confidence"), ConfidenceStats):
            return choice["ttc_confidence"]
        if settings.top_logprobs:
            if tops is None or len(tops) != len(values):
                return None
            return settings.stats(top_matrix(tops, settings.top_logprobs))
        return settings.stats(values)

    def _thinking_counts(
        self,
        texts: list[str],
        n_tokens: list[int],
        tokens: list[list[str] | None],
        reasoning_tokens: Any,
        tags: ThinkTags,
    ) -> list[int | None]:
        """How many tokens of each choice were thinking (see the class's notes on where the figure comes from)."""
        segments = [split_completion(text, tags) for text in texts]
        counts: list[int | None] = []
        sources = set()
        for segment, count, pieces in zip(segments, n_tokens, tokens):
            if not segment.closed:
                counts.append(count)
                sources.add("no closing tag: all thinking")
            elif isinstance(reasoning_tokens, int) and len(texts) == 1:
                counts.append(reasoning_tokens)
                sources.add("usage reasoning_tokens")
            elif pieces is not None and tags.close in "".join(pieces):
                counts.append(thinking_token_count(range(len(pieces)), partial(_joined_pieces, pieces), tags))
                sources.add("sampled tokens")
            elif (tokenizer := self._local_tokenizer()) is not None:
                thought = tokenizer.encode(segment.thinking + tags.close, add_special_tokens=False)
                counts.append(len(thought))
                sources.add("tokenizer")
            else:
                counts.append(None)
        unknown = [index for index, value in enumerate(counts) if value is None]
        if unknown and isinstance(reasoning_tokens, int):  # the request's total, over the choices not yet counted
            shares = split_by_length(reasoning_tokens, [segments[index].thinking for index in unknown])
            for index, share in zip(unknown, shares):
                counts[index] = share
            sources.add("usage reasoning_tokens split by thinking length")
        elif unknown:
            sources.add("unknown (stored null)")
        with self._lock:
            self._thinking_sources.update(sources)
        return counts

    def _local_tokenizer(self) -> Any:
        """The tokenizer given, else the served model's if the local cache holds it (tried once), else None."""
        with self._tokenizer_lock:  # not the engine's lock: loading takes seconds, and streams count tokens meanwhile
            if not self._tokenizer_tried:
                self._tokenizer_tried = True
                self._tokenizer = _load_tokenizer(self.model, required=False)
            return self._tokenizer

    def _token_counts(
        self, texts: list[str], token_logprobs: list[list[float] | None], completion_tokens: Any
    ) -> list[int]:
        known = [values for values in token_logprobs if values is not None]
        if len(known) == len(token_logprobs):
            source, counts = "logprobs", [len(values) for values in known]
        elif not isinstance(completion_tokens, int):
            source, counts = "unavailable (stored 0)", [0] * len(texts)
        elif len(texts) == 1:
            source, counts = "usage", [completion_tokens]
        else:
            source, counts = "usage split by text length", split_by_length(completion_tokens, texts)
        with self._lock:
            self._token_sources.add(source)
        return counts

    # -- HTTP, retries and refusals ------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, payload: dict[str, Any] | None = None, answer: _StreamedAnswer | None = None
    ) -> tuple[int, bytes]:
        """One exchange within ``request_timeout``; retryable failures raise ``_Retry``. A successful event
        stream goes to ``answer`` as it arrives (the body returned is then empty)."""
        deadline = time.monotonic() + self.request_timeout
        try:
            with self._client.stream(method, self.base_url + path, json=payload) as response:
                event_stream = response.headers.get("content-type", "").startswith("text/event-stream")
                stream_to = answer if response.status_code == 200 and event_stream else None
                body = bytearray()
                for piece in response.iter_bytes():
                    if stream_to is not None:
                        stream_to.feed(piece)
                    else:
                        body.extend(piece)
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("deadline passed while reading the body")
        except httpx.TimeoutException:
            raise _Retry(f"no complete response within {self.request_timeout:g} s") from None
        except httpx.TransportError as error:
            raise _Retry(f"connection failed ({type(error).__name__}: {error})") from None
        if _retryable(response.status_code):
            raise _Retry(f"HTTP {response.status_code}: {_error_message(bytes(body))}", _retry_after(response.headers))
        return response.status_code, bytes(body)

    def _retrying(self, label: str, attempt: Callable[[], _Result], stop: threading.Event) -> _Result:
        failures = 0
        while True:
            if stop.is_set():
                raise _Cancelled
            try:
                return attempt()
            except _Retry as retry:
                failures += 1
                if failures > self.max_retries:
                    raise OpenAIEngineError(
                        f"{label} at {self.base_url} failed {failures} times (max_retries={self.max_retries}); "
                        f"last error: {retry}"
                    ) from None
                delay = retry.retry_after
                if delay is None:
                    delay = min(self.backoff_base * 2 ** (failures - 1), self.backoff_max) * random.uniform(0.5, 1.0)
                logger.warning("%s: %s; retry %d of %d in %.1f s", label, retry, failures, self.max_retries, delay)
                if stop.wait(delay):
                    raise _Cancelled from None

    def _fall_back(self, capability: str, reason: str) -> None:
        """Stop asking for ``n > 1``, log-probabilities or streaming, and record why (kept in the manifest)."""
        with self._lock:
            if capability == "n" and self._n_supported:
                self._n_supported = False
                note = f"n>1 refused ({reason}): one request per sample, seeds seed+i"
            elif capability == "logprobs" and self._logprobs_supported:
                self._logprobs_supported = False
                note = f"logprobs refused ({reason}): logprob_sum stored as null"
            elif capability == "stream" and self._stream_supported:
                self._stream_supported = False
                note = f"stream refused ({reason}): answers arrive whole, no token progress while they run"
            else:
                return
            self._fallbacks.append(note)
        logger.warning("%s: %s", self.base_url, note)

    def _refusal(self, status: int, message: str, path: str) -> str:
        url = self.base_url + path
        if status in (401, 403):
            key = (
                f"check the key in ${self.api_key_env}"
                if self._uses_key
                else f"put the API key in ${DEFAULT_API_KEY_ENV} or name its variable with api_key_env"
            )
            return f"{url} refused the request (HTTP {status}: {message}); {key}"
        if status == 404:
            return f"{url} answered HTTP 404 ({message}); check base_url (usually ending in /v1) and the model name"
        return f"{url} rejected the request (HTTP {status}: {message})"

    def _check_model(self) -> dict[str, Any] | None:
        """Ask ``GET /models`` that the server is up and serves ``model``; returns its entry (None: no list).

        A server without the endpoint is accepted as is; a wrong model name, a refused key or an unreachable
        server stop here, before any sampling.
        """
        status, body = self._retrying("GET /models", lambda: self._send("GET", "/models"), threading.Event())
        if status in (401, 403):
            raise OpenAIEngineError(self._refusal(status, _error_message(body), "/models"))
        if status != 200:
            return None
        try:
            entries = json.loads(body).get("data")
        except (ValueError, AttributeError):
            return None
        if not isinstance(entries, list):
            return None
        served = {entry.get("id"): entry for entry in entries if isinstance(entry, dict)}
        if self.model not in served:
            listed = ", ".join(sorted(str(name) for name in served)) or "none"
            raise OpenAIEngineError(f"{self.base_url} does not serve model {self.model!r}; it serves: {listed}")
        entry = served[self.model]
        return {key: entry[key] for key in ("id", "owned_by", "root", "max_model_len") if key in entry}
