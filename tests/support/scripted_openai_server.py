"""A small OpenAI-compatible HTTP server on 127.0.0.1 whose faults a test scripts request by request.

It answers ``GET /v1/models``, ``POST /v1/completions`` and ``POST /v1/chat/completions``. A healthy answer
imitates vLLM's seeding: choice ``i`` of a request with seed ``s`` is sampled with seed ``s + i``, and its text
(``expected_text``) names the prompt and that seed, so a test can check every stored sample's text exactly.
Each sampled token has log-probability ``TOKEN_LOGPROB``; tokens are the text's whitespace-separated words.
A request with ``"stream": true`` is answered as vLLM streams: server-sent events, one token of one choice
each (the choices interleaved), then each choice's ``finish_reason``, ``usage`` when asked for, and ``[DONE]``.

A reasoning model behind a reasoning parser is scripted with ``Fault("reasoning", reasoning=Reasoning(...))``:
every choice returns its thinking apart (``reasoning_content``, or ``reasoning``), its answer (a text, ``""`` or
null) and finish reason, its tokens the words of the thinking, the closing tag ``</think>`` when the thinking
closed, then the words of the answer, and ``usage.completion_tokens_details.reasoning_tokens`` when scripted.
Inline thinking (``<think>...</think>`` in the text) needs no fault: ``Fault("text", text=...)`` answers it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

MODEL = "scripted-model"
TOKEN_LOGPROB = -0.25
SEED_MODULUS = 2**31


def prompt_key(prompt: Any) -> str:
    return hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()[:10]


def expected_text(prompt: Any, seed: int) -> str:
    """The completion a healthy server gives ``prompt`` sampled with ``seed``."""
    return f"prompt {prompt_key(prompt)} seed {seed % SEED_MODULUS}\nThe answer is {seed % 97}.\n#### {seed % 97}"


@dataclass
class Call:
    """One HTTP request the server received; ``attempt`` counts earlier calls with the same payload."""

    method: str
    path: str
    payload: dict[str, Any]
    headers: dict[str, str]
    attempt: int

    @property
    def prompt(self) -> Any:
        return self.payload.get("prompt", self.payload.get("messages"))


@dataclass
class Fault:
    """What to do instead of a healthy answer.

    kind: ``status`` (reply ``status`` with an OpenAI error body and ``headers``), ``truncated`` (a 200 whose
    JSON body is cut in half), ``cut`` (a 200 announcing the full length, then the connection closes half
    way), ``hang`` (answer nothing for ``seconds``), ``choices`` (a healthy answer with ``choices`` choices),
    ``short_stream`` (a stream that ends, cleanly, after half its events), ``slow_stream`` (a healthy stream,
    ``seconds`` between events), ``plain`` (a healthy answer as one JSON body even when asked to stream).
    """

    kind: str
    status: int = 500
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 30.0
    choices: int = 1
    reasoning: Reasoning | None = None
    text: str = ""


@dataclass
class Reasoning:
    """Every choice's answer from a reasoning parser: ``thinking`` returned apart (in field ``field``), the answer
    ``content`` (None: null, the thinking never closed), ``finish_reason``, and the usage's ``reasoning_tokens``
    (None: not given; a number: per choice, summed over the request's choices as servers report it)."""

    thinking: str
    content: str | None
    finish_reason: str = "stop"
    field: str = "reasoning_content"
    reasoning_tokens: int | None = None

    @property
    def closed(self) -> bool:
        return self.content is not None and not (self.content == "" and self.finish_reason == "length")

    def tokens(self) -> tuple[list[str], list[str]]:
        """The thinking's tokens (with the closing tag when closed) and the answer's: words, with their spaces."""
        thinking = re.findall(r"\s*\S+", self.thinking) + (["</think>"] if self.closed else [])
        return thinking, re.findall(r"\s*\S+", self.content or "")


Script = Callable[[Call], "Fault | None"]


def healthy_body(call: Call, choices: int | None = None) -> dict[str, Any]:
    payload = call.payload
    chat = "messages" in payload
    n = payload.get("n", 1) if choices is None else choices
    items, completion_tokens = [], 0
    for index in range(n):
        text = expected_text(call.prompt, payload["seed"] + index)
        tokens = text.split()
        completion_tokens += len(tokens)
        item: dict[str, Any] = {"index": index, "finish_reason": "stop"}
        if chat:
            item["message"] = {"role": "assistant", "content": text}
            if payload.get("logprobs"):
                item["logprobs"] = {
                    "content": [{"token": t, "logprob": TOKEN_LOGPROB, "top_logprobs": []} for t in tokens]
                }
        else:
            item["text"] = text
            if payload.get("logprobs") is not None:
                item["logprobs"] = {
                    "tokens": tokens,
                    "token_logprobs": [TOKEN_LOGPROB] * len(tokens),
                    "top_logprobs": [None] * len(tokens),
                    "text_offset": list(range(len(tokens))),
                }
        items.append(item)
    prompt_tokens = len(json.dumps(call.prompt).split())
    return {
        "id": "cmpl-scripted",
        "object": "chat.completion" if chat else "text_completion",
        "model": payload.get("model"),
        "choices": items,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def reasoning_body(call: Call, spec: Reasoning) -> dict[str, Any]:
    """A chat answer of ``payload["n"]`` choices, each ``spec``'s thinking and answer (see ``Reasoning``)."""
    n = call.payload.get("n", 1)
    thinking, answer = spec.tokens()
    message = {"role": "assistant", "content": spec.content, spec.field: spec.thinking}
    items = []
    for index in range(n):
        item: dict[str, Any] = {"index": index, "finish_reason": spec.finish_reason, "message": dict(message)}
        if call.payload.get("logprobs"):
            entries = [{"token": t, "logprob": TOKEN_LOGPROB, "top_logprobs": []} for t in thinking + answer]
            item["logprobs"] = {"content": entries}
        items.append(item)
    completion_tokens = n * (len(thinking) + len(answer))
    usage: dict[str, Any] = {"prompt_tokens": 5, "completion_tokens": completion_tokens}
    if spec.reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": n * spec.reasoning_tokens}
    body = {"id": "chat-scripted", "object": "chat.completion", "model": call.payload.get("model"), "choices": items}
    return {**body, "usage": usage, "_reasoning": spec}


def reasoning_events(call: Call, body: dict[str, Any]) -> list[dict[str, Any]]:
    """``reasoning_body`` streamed as vLLM's reasoning parser streams: the thinking's tokens as reasoning deltas,
    the closing tag's token with an empty delta (the parser drops its text), then the answer's tokens as content
    deltas (an empty answer as one empty content delta; a null one as none), each with its log-probability."""
    spec: Reasoning = body["_reasoning"]
    thinking, answer = spec.tokens()
    logprobs = bool(call.payload.get("logprobs"))
    events = []

    def event(index: int, delta: dict[str, Any], token: str | None, finish: str | None = None) -> None:
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish}
        if logprobs and token is not None:
            choice["logprobs"] = {"content": [{"token": token, "logprob": TOKEN_LOGPROB, "top_logprobs": []}]}
        events.append({"id": body["id"], "object": "chat.completion.chunk", "choices": [choice]})

    for index in range(len(body["choices"])):
        for token in thinking:
            event(index, {} if token == "</think>" else {spec.field: token}, token)
        for token in answer:
            event(index, {"content": token}, token)
        if spec.content == "":
            event(index, {"content": ""}, None)
        event(index, {}, None, spec.finish_reason)
    if (call.payload.get("stream_options") or {}).get("include_usage"):
        events.append({"id": body["id"], "object": "chat.completion.chunk", "choices": [], "usage": body["usage"]})
    return events


def text_body(call: Call, text: str) -> dict[str, Any]:
    """An answer whose every choice is ``text`` (e.g. inline thinking), tokens its words."""
    body = healthy_body(call)
    for item in body["choices"]:
        if "message" in item:
            item["message"]["content"] = text
        else:
            item["text"] = text
        tokens = re.findall(r"\s*\S+", text)
        if item.get("logprobs"):
            item["logprobs"] = (
                {"content": [{"token": t, "logprob": TOKEN_LOGPROB, "top_logprobs": []} for t in tokens]}
                if "message" in item
                else {"tokens": tokens, "token_logprobs": [TOKEN_LOGPROB] * len(tokens)}
            )
    body["usage"]["completion_tokens"] = len(body["choices"]) * len(re.findall(r"\s*\S+", text))
    return body


def stream_events(call: Call, body: dict[str, Any]) -> list[dict[str, Any]]:
    """``body`` as the events of a stream: a token of each choice in turn, then the finish reasons and usage."""
    chat = "messages" in call.payload
    pieces = {
        item["index"]: re.findall(r"\s*\S+", item["message"]["content"] if chat else item["text"])
        for item in body["choices"]
    }
    events = []
    for position in range(max(len(tokens) for tokens in pieces.values())):
        for index, tokens in pieces.items():
            if position >= len(tokens):
                continue
            choice: dict[str, Any] = {"index": index, "finish_reason": None}
            if chat:
                choice["delta"] = {"content": tokens[position]} | ({"role": "assistant"} if position == 0 else {})
                if call.payload.get("logprobs"):
                    choice["logprobs"] = {
                        "content": [{"token": tokens[position], "logprob": TOKEN_LOGPROB, "top_logprobs": []}]
                    }
            else:
                choice["text"] = tokens[position]
                if call.payload.get("logprobs") is not None:
                    choice["logprobs"] = {
                        "tokens": [tokens[position]],
                        "token_logprobs": [TOKEN_LOGPROB],
                        "top_logprobs": [None],
                        "text_offset": [0],
                    }
            events.append({"id": body["id"], "object": body["object"] + ".chunk", "choices": [choice]})
    for index in pieces:
        final = {"index": index, "finish_reason": "stop", **({"delta": {}} if chat else {"text": ""})}
        events.append({"id": body["id"], "object": body["object"] + ".chunk", "choices": [final]})
    if (call.payload.get("stream_options") or {}).get("include_usage"):
        events.append({"id": body["id"], "object": body["object"] + ".chunk", "choices": [], "usage": body["usage"]})
    return events


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gives up (a timeout, the end of a test) resets its connection: not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ScriptedServer:
    """Serve on a random loopback port; ``script(call)`` returns a ``Fault`` or None (a healthy answer).

    Use as a context manager; hanging handlers are released when it stops.
    """

    def __init__(self, script: Script | None = None, model: str = MODEL, api_key: str | None = None) -> None:
        self.script = script
        self.model = model
        self.api_key = api_key
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def sampling_calls(self) -> list[Call]:
        return [call for call in self.calls if call.method == "POST"]

    def _record(self, method: str, path: str, payload: dict[str, Any], headers: dict[str, str]) -> Call:
        with self._lock:
            signature = json.dumps(payload, sort_keys=True)
            attempt = sum(
                1 for c in self.calls if c.method == method and json.dumps(c.payload, sort_keys=True) == signature
            )
            call = Call(method, path, payload, headers, attempt)
            self.calls.append(call)
            return call

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if length is None else length))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _stream(self, events: list[dict[str, Any]], delay: float = 0.0, done: bool = True) -> None:
                """Server-sent events in chunked encoding, ``delay`` seconds apart, ``[DONE]`` last if ``done``."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                lines = [f"data: {json.dumps(event)}\n\n".encode() for event in events] + (
                    [b"data: [DONE]\n\n"] if done else []
                )
                for line in lines:
                    if delay:
                        time.sleep(delay)
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _answer(self, call: Call, body: dict[str, Any]) -> None:
                if call.payload.get("stream"):
                    self._stream(reasoning_events(call, body) if "_reasoning" in body else stream_events(call, body))
                else:
                    plain = {key: value for key, value in body.items() if key != "_reasoning"}
                    self._send(200, json.dumps(plain).encode())

            def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
                body = json.dumps({"error": {"message": message, "type": "scripted", "code": status}}).encode()
                self._send(status, body, headers)

            def _authorised(self) -> bool:
                if server.api_key is None or self.headers.get("Authorization") == f"Bearer {server.api_key}":
                    return True
                self._error(401, "Incorrect API key provided")
                return False

            def do_GET(self) -> None:
                server._record("GET", self.path, {}, dict(self.headers))
                if not self._authorised():
                    return
                if self.path != "/v1/models":
                    self._error(404, f"no route {self.path}")
                    return
                models = {
                    "object": "list",
                    "data": [{"id": server.model, "object": "model", "owned_by": "scripted", "max_model_len": 2048}],
                }
                self._send(200, json.dumps(models).encode())

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                call = server._record("POST", self.path, json.loads(raw), dict(self.headers))
                if not self._authorised():
                    return
                if self.path not in ("/v1/completions", "/v1/chat/completions"):
                    self._error(404, f"no route {self.path}")
                    return
                if call.payload.get("model") != server.model:
                    self._error(404, f"The model `{call.payload.get('model')}` does not exist.")
                    return
                fault = server.script(call) if server.script else None
                if fault is None:
                    self._answer(call, healthy_body(call))
                elif fault.kind == "status":
                    self._error(fault.status, fault.message, fault.headers)
                elif fault.kind == "truncated":
                    body = json.dumps(healthy_body(call)).encode()
                    self._send(200, body[: len(body) // 2])
                elif fault.kind == "cut":
                    body = json.dumps(healthy_body(call)).encode()
                    self._send(200, body[: len(body) // 2], length=len(body))
                    self.close_connection = True
                elif fault.kind == "hang":
                    server._release.wait(fault.seconds)
                    self.close_connection = True
                elif fault.kind == "choices":
                    self._answer(call, healthy_body(call, choices=fault.choices))
                elif fault.kind == "short_stream":
                    events = stream_events(call, healthy_body(call))
                    self._stream(events[: len(events) // 2], done=False)
                elif fault.kind == "slow_stream":
                    self._stream(stream_events(call, healthy_body(call)), delay=fault.seconds)
                elif fault.kind == "plain":
                    self._send(200, json.dumps(healthy_body(call)).encode())
                elif fault.kind == "reasoning" and fault.reasoning is not None:
                    self._answer(call, reasoning_body(call, fault.reasoning))
                elif fault.kind == "text":
                    self._answer(call, text_body(call, fault.text))
                else:
                    raise ValueError(f"unknown fault kind {fault.kind!r}")

        return Handler
