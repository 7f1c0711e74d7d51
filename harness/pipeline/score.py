"""Reward-model scores for a run's samples: outcome (one score a sample) and process (one a step) models.

``ttc score RUN_DIR --model ID_OR_PATH`` runs a Hugging Face reward model over every stored sample that has
no score in the target score set yet, in batches, and appends the scores to ``scores/<name>/`` as they come:
an interrupted run resumes where it stopped (the shards' footers say what is done, as for verdicts).

What the model sees: the problem's prompt as the user turn (chat prompts as they are) and the completion as
the assistant turn, rendered with the reward model's chat template (plain concatenation if it has none),
tokenized once by us so that both backends score the very same tokens; inputs longer than ``max_length``
keep their last tokens (the end is what an outcome model reads).

* Outcome reward models (``--kind orm``): a ``*ForSequenceClassification`` checkpoint (e.g. Skywork-Reward,
  a Llama/Qwen with a scalar head). The score is the head's output at the last token: the raw value for one
  label, the probability of label 1 for two.
* Process reward models (``--kind prm``): a ``*ForTokenClassification`` checkpoint, or Qwen2.5-Math-PRM
  (``Qwen2ForProcessRewardModel``, vLLM only). The completion is split into steps by
  ``verifiers.selection.split_steps`` (blocks between blank lines), each step followed by the step token
  (``--step-token``; ``<extra_0>`` is taken when the tokenizer has it, as Qwen2.5-Math-PRM expects); a step's
  score is the head's output at its step token (one label: raw value; two: probability of label 1, the
  "step is correct" class). Selection aggregates step scores later (min, last, product or mean).

Backends: ``transformers`` (any device; batches padded on the right) and ``vllm`` (its pooling runner:
``classify`` for outcome models, ``token_classify`` for process models, activation off so that both backends
return the same raw outputs). ``auto`` uses vLLM where a GPU is present and falls back to transformers if vLLM
cannot load the model; on CPU it uses transformers (vLLM's CPU start-up costs minutes).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.engines.models import resolve_model
from harness.reporting.progress import Progress
from harness.store import RunStore, in_ranges
from tasks.base import Prompt
from verifiers.selection import split_steps

SCORE_KINDS = ("orm", "prm")
BACKENDS = ("auto", "vllm", "transformers")
QWEN_PRM_STEP_TOKEN = "<extra_0>"
STEP_RULE = "blank-lines"  # recorded with the scores: how completions were split into steps
FLUSH_ROWS = 512
FLUSH_SECONDS = 30.0
# Samples are batched across problems, sorted by length within windows of this many batches.
WINDOW_BATCHES = 8

ScoredSample = tuple[float | None, list[float] | None]


@dataclass(frozen=True)
class ScoringOptions:
    """What ``ttc score`` was asked for.

    Attributes:
        model: reward model: a local checkpoint directory or a Hugging Face Hub id.
        kind: ``"orm"`` (one score per sample) or ``"prm"`` (one score per step).
        backend: ``"auto"``, ``"vllm"`` or ``"transformers"``.
        batch_size: samples per model call (and per progress update).
        name: score set to write (default ``<kind>-<model name>``).
        step_token: token marking the end of a step for process models (default: ``<extra_0>`` if known).
        max_length: most tokens of one input (longer ones keep their end).
        dtype: weights' dtype ("auto" takes the checkpoint's).
        gpu_memory_utilization: vLLM's share of accelerator memory (None: 0.9 on GPUs, 0.3 on CPU).
    """

    model: str
    kind: str = "orm"
    backend: str = "auto"
    batch_size: int = 16
    name: str | None = None
    step_token: str | None = None
    max_length: int = 4096
    dtype: str = "auto"
    gpu_memory_utilization: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCORE_KINDS:
            raise ValueError(f"--kind must be one of {', '.join(SCORE_KINDS)}, got {self.kind!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        if self.max_length < 16:
            raise ValueError("--max-length must be at least 16")


def reward_messages(prompt: Prompt, completion: str) -> list[dict[str, str]]:
    """The conversation a reward model judges: the prompt (a text prompt becomes the user turn) + the answer."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    return messages + [{"role": "assistant", "content": completion}]


class RewardInputs:
    """Turns (prompt, completion) into the token ids a reward model scores."""

    def __init__(self, tokenizer: Any, kind: str, step_token: str | None, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.kind = kind
        self.max_length = max_length
        self.truncated = 0
        self.step_token = step_token
        self.step_token_id: int | None = None
        if kind == "prm":
            self.step_token_id = self._single_token(step_token)
        self.template = "chat" if getattr(tokenizer, "chat_template", None) else "plain"

    def _single_token(self, step_token: str | None) -> int:
        if step_token is None:
            raise ValueError(
                "a process reward model needs --step-token: the token after each step where the model scores it "
                f"(e.g. {QWEN_PRM_STEP_TOKEN} for Qwen2.5-Math-PRM)"
            )
        ids = self.tokenizer(step_token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"--step-token {step_token!r} is {len(ids)} tokens for this tokenizer; it must be one")
        return int(ids[0])

    def __call__(self, prompt: Prompt, completion: str) -> list[int]:
        if self.kind == "prm":
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
    raise ValueError(f"the reward model's head has {labels} labels; expected 1 (a reward) or 2 (wrong / right)")


class TransformersRewardModel:
    """A reward model run with ``transformers`` (GPU if available, else CPU)."""

    backend = "transformers"

    def __init__(self, path: str, kind: str, *, dtype: str = "auto", pad_token_id: int, step_token_id: int | None) -> None:
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
        results = []
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
        import vllm

        from harness.engines.vllm_engine import CPU_DEFAULT_MEMORY_FRACTION, is_cpu_platform

        on_cpu = is_cpu_platform()
        if on_cpu:
            os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        if gpu_memory_utilization is None:
            gpu_memory_utilization = CPU_DEFAULT_MEMORY_FRACTION if on_cpu else 0.9
        self.kind = kind
        self.step_token_id = step_token_id
        self._llm = vllm.LLM(
            model=path,
            runner="pooling",
            dtype=dtype,
            max_model_len=max_length,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=on_cpu,
        )
        supported = set(self._llm.supported_tasks)
        # outcome models: a sequence head ("classify"), or a per-token reward head read at the last token
        # (Qwen2ForRewardModel, e.g. Qwen2.5-Math-RM-72B); process models: per-token outputs
        self.task = "classify" if kind == "orm" and "classify" in supported else "token_classify"
        if self.task not in supported:
            raise ValueError(f"vLLM serves {path} for {sorted(supported)}, not as a {kind} reward model")
        self._params = vllm.PoolingParams(use_activation=False)

    def score(self, batch: Sequence[list[int]]) -> list[ScoredSample]:
        outputs = self._llm.encode(
            [{"prompt_token_ids": list(ids)} for ids in batch],
            pooling_task=self.task,
            pooling_params=self._params,
            use_tqdm=False,
        )
        results = []
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
                raise RuntimeError(f"vLLM returned {data.shape[0]} rows for {len(ids)} tokens and {positions.size} steps")
            results.append((None, head_scores(data).astype(float).tolist()))
        return results

    def close(self) -> None:
        self._llm = None


def _gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def load_reward_model(options: ScoringOptions, path: str, inputs: RewardInputs, log: Callable[[str], None]):
    """Start the requested backend (``auto``: vLLM on a GPU, falling back to transformers; else transformers)."""
    backend = options.backend
    if backend == "auto":
        backend = "vllm" if _gpu_available() else "transformers"
        if backend == "vllm":
            try:
                return _vllm_model(options, path, inputs)
            except Exception as error:  # vLLM lacks this architecture, or is missing: say so and carry on
                log(f"vLLM cannot run {options.model} ({type(error).__name__}: {error}); using transformers")
                backend = "transformers"
    if backend == "vllm":
        return _vllm_model(options, path, inputs)
    tokenizer = inputs.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError(f"the tokenizer of {options.model} has neither a pad nor an eos token to pad batches with")
    return TransformersRewardModel(path, options.kind, dtype=options.dtype, pad_token_id=pad, step_token_id=inputs.step_token_id)


def _vllm_model(options: ScoringOptions, path: str, inputs: RewardInputs) -> VLLMRewardModel:
    return VLLMRewardModel(
        path,
        options.kind,
        dtype=options.dtype,
        max_length=options.max_length,
        gpu_memory_utilization=options.gpu_memory_utilization,
        step_token_id=inputs.step_token_id,
    )


@dataclass
class ScoringOutcome:
    name: str
    scored: int = 0
    seconds: float = 0.0
    backend: str | None = None
    truncated: int = 0
    description: dict[str, Any] = field(default_factory=dict)


def score_run(
    store: RunStore,
    options: ScoringOptions,
    *,
    progress_mode: str = "auto",
    log: Callable[[str], None] = print,
) -> ScoringOutcome:
    """Score every stored sample of ``store`` that set ``options.name`` lacks; resumable and batched."""
    from transformers import AutoTokenizer

    model = resolve_model(options.model, convert=False)
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    step_token = options.step_token
    if options.kind == "prm" and step_token is None and QWEN_PRM_STEP_TOKEN in tokenizer.get_vocab():
        step_token = QWEN_PRM_STEP_TOKEN
    inputs = RewardInputs(tokenizer, options.kind, step_token, options.max_length)
    description = {
        "kind": options.kind,
        "model": model.identity,
        "template": inputs.template,
        "max_length": options.max_length,
    }
    if options.kind == "prm":
        description.update(step_token=step_token, step_rule=STEP_RULE)
    name = options.name or f"{options.kind}-{model.name}"
    store.register_score_set(name, description)
    outcome = ScoringOutcome(name=name, description=description)
    pending = store.samples_missing_from(store.scores(name))
    total = sum(stop - start for ranges in pending.values() for start, stop in ranges)
    if total == 0:
        return outcome
    prompts = {problem.problem_id: problem.prompt for problem in store.problems()}
    reward_model = load_reward_model(options, model.path, inputs, log)
    outcome.backend = reward_model.backend
    progress = Progress(f"scoring ({reward_model.backend})", total, mode=progress_mode)
    started = time.monotonic()
    buffer: list[pa.Table] = []
    buffered, last_flush = 0, time.monotonic()
    seen: set[tuple[str, int]] = set()

    def flush() -> None:
        nonlocal buffered, last_flush
        if buffer:
            store.scores(name).append(pa.concat_tables(buffer))
            buffer.clear()
        buffered, last_flush = 0, time.monotonic()

    def run_batch(keys: list[tuple[str, int]], token_ids: list[list[int]]) -> None:
        nonlocal buffered
        results = reward_model.score(token_ids)
        buffer.append(
            pa.table(
                {
                    "problem_id": [key[0] for key in keys],
                    "sample_idx": [key[1] for key in keys],
                    "score": [score for score, _ in results],
                    "step_scores": [steps for _, steps in results],
                },
                schema=store.scores(name).schema,
            )
        )
        outcome.scored += len(keys)
        buffered += len(keys)
        progress.update(len(keys))
        if buffered >= FLUSH_ROWS or time.monotonic() - last_flush >= FLUSH_SECONDS:
            flush()

    window: list[tuple[int, tuple[str, int], list[int]]] = []

    def run_window() -> None:
        window.sort(key=lambda item: item[0])  # similar lengths together: little padding
        for start in range(0, len(window), options.batch_size):
            chunk = window[start : start + options.batch_size]
            run_batch([key for _, key, _ in chunk], [ids for _, _, ids in chunk])
        window.clear()

    try:
        for path in store.samples.shard_paths():
            shard = pq.read_table(path, columns=["problem_id", "sample_idx", "text"])
            problem_ids = shard.column("problem_id").to_numpy(zero_copy_only=False)
            indices = shard.column("sample_idx").to_numpy()
            texts = shard.column("text").to_pylist()
            order = np.argsort(problem_ids, kind="stable")
            bounds = np.flatnonzero(np.r_[True, problem_ids[order][1:] != problem_ids[order][:-1], True])
            for first, stop in zip(bounds[:-1], bounds[1:]):
                rows = order[first:stop]
                problem_id = problem_ids[rows[0]]
                if problem_id not in pending:
                    continue
                for row in rows[in_ranges(indices[rows], pending[problem_id])]:
                    key = (problem_id, int(indices[row]))
                    if key not in seen:  # a sample stored twice (a copied shard) is scored once
                        seen.add(key)
                        ids = inputs(prompts[problem_id], texts[row] or "")
                        window.append((len(ids), key, ids))
                if len(window) >= WINDOW_BATCHES * options.batch_size:
                    run_window()
        run_window()
    finally:
        flush()
        progress.close()
        reward_model.close()
        outcome.seconds = time.monotonic() - started
        outcome.truncated = inputs.truncated
    return outcome
