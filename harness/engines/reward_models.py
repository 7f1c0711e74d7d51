"""The reward-model runtime: turn (prompt, completion) into tokens and score them with an outcome or process
reward model, on ``transformers`` or vLLM's pooling runner. The pipeline step that scores a run's samples
and stores the scores is ``harness.pipeline.score``.

What the model sees: the problem's prompt as the user turn (chat prompts as they are) and the completion as
the assistant turn, rendered with the reward model's chat template (plain concatenation if it has none),
tokenized once here so that both backends score the very same tokens; inputs longer than ``max_length``
keep their last tokens (the end is what an outcome model reads).

* Outcome reward models (kind ``"orm"``): a ``*ForSequenceClassification`` checkpoint (e.g. Skywork-Reward,
  a Llama/Qwen with a scalar head). The score is the head's output at the last token: the raw value for one
  label, the probability of label 1 for two.
* Process reward models (kind ``"prm"``): a ``*ForTokenClassification`` checkpoint, or Qwen2.5-Math-PRM
  (``Qwen2ForProcessRewardModel``, vLLM only). The completion is split into steps by
  ``harness.engines.reward_steps.split_steps`` (blocks between blank lines), each step followed by the step token
  (``<extra_0>`` for Qwen2.5-Math-PRM); a step's score is the head's output at its step token (one label: raw
  value; two: probability of label 1, the "step is correct" class).

Backends: ``transformers`` (any device; batches padded on the right) and ``vllm`` (its pooling runner:
``classify`` for outcome models, ``token_classify`` for process models, activation off so that both backends
return the same raw outputs). ``auto`` uses vLLM where a GPU is present and falls back to transformers if vLLM
cannot load the model; on CPU it uses transformers (vLLM's CPU start-up costs minutes).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from harness.core.errors import EngineError, OptionError
from harness.core.records import Prompt
from harness.engines.reward_steps import split_steps
from harness.engines.vllm_adapter import check_vllm, is_cpu_platform, shutdown_llm
from harness.engines.vllm_engine import CPU_DEFAULT_MEMORY_FRACTION
from harness.engines.watchdog import ensure_watchdog

SCORE_KINDS = ("orm", "prm")
BACKENDS = ("auto", "vllm", "transformers")
QWEN_PRM_STEP_TOKEN = "<extra_0>"

ScoredSample = tuple[float | None, list[float] | None]


def reward_messages(prompt: Prompt, completion: str) -> list[dict[str, str]]:
    """The conversation a reward model judges: the prompt (a text prompt becomes the user turn) + the answer."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    return [*messages, {"role": "assistant", "content": completion}]


class RewardInputs:
    """Turns (prompt, completion) into the token ids a reward model scores."""

    def __init__(self, tokenizer: Any, kind: str, step_token: str | None, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.kind = kind
        self.max_length = max_length
        self.truncated = 0
        self.step_token = step_token if kind == "prm" else None  # follows each step: process models only
        self.step_token_id: int | None = None
        if kind == "prm":
            self.step_token_id = self._single_token(step_token)
        self.template = "chat" if getattr(tokenizer, "chat_template", None) else "plain"

    def _single_token(self, step_token: str | None) -> int:
        if step_token is None:
            raise OptionError(
                "step_token",
                "a process reward model needs the token after each step where the model scores it "
                f"(e.g. {QWEN_PRM_STEP_TOKEN} for Qwen2.5-Math-PRM)",
            )
        ids = self.tokenizer(step_token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise OptionError("step_token", f"{step_token!r} is {len(ids)} tokens for this tokenizer; it must be one")
        return int(ids[0])

    def __call__(self, prompt: Prompt, completion: str) -> list[int]:
        if self.step_token is not None:
            completion = "".join(step + self.step_token for step in split_steps(completion))
        messages = reward_messages(prompt, completion)
        if self.template == "chat":
            text = self.tokenizer.apply_chat_template(messages, tokenize=False)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tokenizer("\n\n".join(m["content"] for m in messages))["input_ids"]
        if len(ids) > self.max_length:
            self.truncated += 1
            ids = ids[-self.max_length :]
        return list(ids)


def head_scores(logits: np.ndarray) -> np.ndarray:
    """Scores from a classification head's outputs (labels on the last axis): raw for 1 label, P(label 1) for 2."""
    labels = logits.shape[-1]
    if labels == 1:
        return logits[..., 0]
    if labels == 2:
        return 1.0 / (1.0 + np.exp(logits[..., 0] - logits[..., 1]))  # softmax probability of label 1
    raise EngineError(f"the reward model's head has {labels} labels; expected 1 (a reward) or 2 (wrong / right)")


class TransformersRewardModel:
    """A reward model run with ``transformers`` (GPU if available, else CPU)."""

    backend = "transformers"

    def __init__(
        self, path: str, kind: str, *, dtype: str = "auto", pad_token_id: int, step_token_id: int | None
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

        self._torch = torch
        self.kind = kind
        self.step_token_id = step_token_id
        self.pad_token_id = pad_token_id
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        model_class = AutoModelForSequenceClassification if kind == "orm" else AutoModelForTokenClassification
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = model_class.from_pretrained(path, dtype=torch_dtype).to(self.device).eval()
        if self.model.config.pad_token_id is None:  # needed to find each row's last token in a padded batch
            self.model.config.pad_token_id = pad_token_id

    def score(self, batch: Sequence[list[int]]) -> list[ScoredSample]:
        torch = self._torch
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device)).logits
        logits = logits.float().cpu().numpy()
        if self.kind == "orm":
            return [(float(value), None) for value in head_scores(logits)]
        results: list[ScoredSample] = []
        for row, ids in enumerate(batch):
            positions = np.flatnonzero(np.asarray(ids) == self.step_token_id)
            results.append((None, head_scores(logits[row, positions]).astype(float).tolist()))
        return results

    def close(self) -> None:
        self.model = None


class VLLMRewardModel:
    """A reward model run with vLLM's pooling runner (``classify`` / ``token_classify``)."""

    backend = "vllm"

    def __init__(
        self,
        path: str,
        kind: str,
        *,
        dtype: str = "auto",
        max_length: int,
        gpu_memory_utilization: float | None,
        step_token_id: int | None,
    ) -> None:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        check_vllm()  # it has what the adapter's shutdown uses
        import vllm

        on_cpu = is_cpu_platform()
        if on_cpu:
            os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        if gpu_memory_utilization is None:
            gpu_memory_utilization = CPU_DEFAULT_MEMORY_FRACTION if on_cpu else 0.9
        self.kind = kind
        self.step_token_id = step_token_id
        ensure_watchdog()  # vLLM's engine processes must not outlive this one, even after kill -9
        self._llm: vllm.LLM | None = vllm.LLM(
            model=path,
            runner="pooling",
            dtype=dtype,  # type: ignore[arg-type]  # the user's --dtype text: vLLM checks it against its names
            max_model_len=max_length,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=on_cpu,
        )
        supported = set(self._llm.supported_tasks)
        # outcome models: a sequence head ("classify"), or a per-token reward head read at the last token
        # (Qwen2ForRewardModel, e.g. Qwen2.5-Math-RM-72B); process models: per-token outputs
        self.task: Literal["classify", "token_classify"] = (
            "classify" if kind == "orm" and "classify" in supported else "token_classify"
        )
        if self.task not in supported:
            raise EngineError(f"vLLM serves {path} for {sorted(supported)}, not as a {kind} reward model")
        self._params = vllm.PoolingParams(use_activation=False)

    def score(self, batch: Sequence[list[int]]) -> list[ScoredSample]:
        from vllm.inputs import TokensPrompt

        if self._llm is None:
            raise EngineError("the reward model was closed")
        # vLLM imports NotRequired from typing, which mypy's Python 3.10 lacks: its optional keys read as required
        prompts = [TokensPrompt(prompt_token_ids=list(ids)) for ids in batch]  # type: ignore[typeddict-item]  # see above
        outputs = self._llm.encode(
            prompts,
            pooling_task=self.task,
            pooling_params=self._params,
            use_tqdm=False,
        )
        results: list[ScoredSample] = []
        for ids, output in zip(batch, outputs):
            data = output.outputs.data.float().cpu().numpy()
            if self.task == "classify":
                results.append((float(head_scores(data.reshape(-1))), None))
                continue
            data = data.reshape(data.shape[0], -1)
            if self.kind == "orm":
                results.append((float(head_scores(data[-1])), None))
                continue
            positions = np.flatnonzero(np.asarray(ids) == self.step_token_id)
            if data.shape[0] == len(ids):  # one row per token: keep the step tokens'
                data = data[positions]
            elif data.shape[0] != positions.size:  # else the model's step pooling already picked them
                raise EngineError(
                    f"vLLM returned {data.shape[0]} rows for {len(ids)} tokens and {positions.size} steps"
                )
            results.append((None, head_scores(data).astype(float).tolist()))
        return results

    def close(self) -> None:
        if self._llm is not None:
            shutdown_llm(self._llm)
            self._llm = None
            gc.collect()  # the engine's objects go now, with their finalizers, not during interpreter shutdown


def _gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def load_reward_model(
    path: str,
    inputs: RewardInputs,
    *,
    backend: str = "auto",
    dtype: str = "auto",
    gpu_memory_utilization: float | None = None,
    log: Callable[[str], None] = print,
) -> TransformersRewardModel | VLLMRewardModel:
    """Start the reward model at ``path`` for ``inputs`` (its kind, step token and length limit) on ``backend``,
    one of ``BACKENDS``: ``auto`` is vLLM on a GPU, falling back to transformers when vLLM cannot run the model,
    and transformers elsewhere."""
    if backend == "auto":
        backend = "vllm" if _gpu_available() else "transformers"
        if backend == "vllm":
            try:
                return _vllm_model(path, inputs, dtype, gpu_memory_utilization)
            except Exception as error:  # noqa: BLE001 - any vLLM failure (no vLLM, an architecture it lacks) falls back
                log(f"vLLM cannot run {path} ({type(error).__name__}: {error}); using transformers")
                backend = "transformers"
    if backend == "vllm":
        return _vllm_model(path, inputs, dtype, gpu_memory_utilization)
    tokenizer = inputs.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise EngineError(f"the tokenizer of {path} has neither a pad nor an eos token to pad batches with")
    return TransformersRewardModel(path, inputs.kind, dtype=dtype, pad_token_id=pad, step_token_id=inputs.step_token_id)


def _vllm_model(path: str, inputs: RewardInputs, dtype: str, gpu_memory_utilization: float | None) -> VLLMRewardModel:
    return VLLMRewardModel(
        path,
        inputs.kind,
        dtype=dtype,
        max_length=inputs.max_length,
        gpu_memory_utilization=gpu_memory_utilization,
        step_token_id=inputs.step_token_id,
    )
