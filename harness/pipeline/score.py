"""The score step: reward-model scores for a run's samples, outcome (one score a sample) or process (one a step).

``ttc score RUN_DIR --model ID_OR_PATH`` runs a Hugging Face reward model (``harness.engines.reward_models``:
what the model sees, the two kinds and the two backends) over every stored sample that has no score in the
target score set yet, in batches, and appends the scores to ``scores/<name>/`` as they come: an interrupted run
resumes where it stopped (the shards' footers say what is done, as for verdicts). Selection aggregates a
process model's step scores later (min, last, product or mean).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pyarrow as pa

from harness.core.errors import EngineError, check_choice, check_number
from harness.core.options import check_fields
from harness.engines.engine_log import ENGINE_LOG, engine_session
from harness.engines.models import resolve_model
from harness.engines.reward_models import BACKENDS, QWEN_PRM_STEP_TOKEN, SCORE_KINDS, RewardInputs, load_reward_model
from harness.engines.reward_steps import STEP_RULE
from harness.pipeline.results import Scoring
from harness.reporting.progress import Progress, ProgressMode
from harness.store import RunStore

FLUSH_ROWS = 512
FLUSH_SECONDS = 30.0
# Samples are batched across problems, sorted by length within windows of this many batches.
WINDOW_BATCHES = 8


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
        check_fields(self)
        check_choice("kind", self.kind, SCORE_KINDS)
        check_choice("backend", self.backend, BACKENDS)
        check_number("batch_size", self.batch_size, at_least=1)
        check_number("max_length", self.max_length, at_least=16)
        check_number("gpu_memory_utilization", self.gpu_memory_utilization, above=0, at_most=1)


@dataclass
class ScoringOutcome:
    name: str
    scored: int = 0
    seconds: float = 0.0
    backend: str | None = None
    truncated: int = 0
    description: dict[str, Any] = field(default_factory=dict)

    def report(self) -> Scoring:
        """What was done, as ``harness.score`` returns it and ``ttc score --json`` reports it."""
        return {
            "score_set": self.name,
            "backend": self.backend,
            "scored": self.scored,
            "truncated": self.truncated,
            "seconds": round(self.seconds, 3),
        }


def score_run(
    store: RunStore,
    options: ScoringOptions,
    *,
    progress: ProgressMode = "auto",
    log: Callable[[str], None] = print,
) -> ScoringOutcome:
    """Score every stored sample of ``store`` that set ``options.name`` lacks; resumable and batched."""
    from transformers import AutoTokenizer

    model = resolve_model(options.model, convert=False)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model.path)
    except (OSError, ValueError) as error:  # not a checkpoint with a tokenizer: the model given, not ttc
        raise EngineError(f"cannot load the tokenizer of {options.model}: {error}") from error
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
    score_set = store.scores(name)
    pending = store.samples_missing_from(score_set)
    total = sum(stop - start for ranges in pending.values() for start, stop in ranges)
    if total == 0:
        return outcome
    prompts = {problem.problem_id: problem.prompt for problem in store.problems()}
    notes: list[str] = []  # said while the model loads, when output goes to the engine log: shown after it
    load = partial(
        load_reward_model,
        model.path,
        inputs,
        backend=options.backend,
        dtype=options.dtype,
        gpu_memory_utilization=options.gpu_memory_utilization,
        log=notes.append,
    )
    with engine_session(load, store.path / ENGINE_LOG, log) as reward_model:
        for note in notes:
            log(note)
        outcome.backend = reward_model.backend
        bar = Progress(f"scoring ({reward_model.backend})", total, mode=progress)
        started = time.monotonic()
        writer = store.score_writer(name, FLUSH_ROWS, FLUSH_SECONDS)

        def run_batch(keys: list[tuple[str, int]], token_ids: list[list[int]]) -> None:
            results = reward_model.score(token_ids)
            writer.add(
                pa.table(
                    {
                        "problem_id": [key[0] for key in keys],
                        "sample_idx": [key[1] for key in keys],
                        "score": [score for score, _ in results],
                        "step_scores": [steps for _, steps in results],
                    },
                    schema=score_set.schema,
                )
            )
            outcome.scored += len(keys)
            bar.update(len(keys))

        window: list[tuple[int, tuple[str, int], list[int]]] = []

        def run_window() -> None:
            window.sort(key=lambda item: item[0])  # similar lengths together: little padding
            for start in range(0, len(window), options.batch_size):
                chunk = window[start : start + options.batch_size]
                run_batch([key for _, key, _ in chunk], [ids for _, _, ids in chunk])
            window.clear()

        try:
            for batch in store.iter_samples_lacking(score_set, missing=pending):
                prompt = prompts[batch.problem_id]
                for index, text in zip(batch.indices, batch.texts):
                    ids = inputs(prompt, text or "")
                    window.append((len(ids), (batch.problem_id, index), ids))
                if len(window) >= WINDOW_BATCHES * options.batch_size:
                    run_window()
            run_window()
        finally:
            writer.flush()
            bar.close()
            outcome.seconds = time.monotonic() - started
            outcome.truncated = inputs.truncated
    return outcome
