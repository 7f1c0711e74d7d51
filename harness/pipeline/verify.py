"""The verify step: judge every stored sample that has no verdict yet, on all cores, resumably.

Verifiers run in worker processes (spawned, so they start clean even after vLLM and torch were loaded):
math-verify's timeouts need a process's main thread, and a verifier that crashes takes down a worker, not the
run. All unverified samples of a problem go to one call (in chunks of the verifier's ``batch_size`` if it
has one), so a verifier can share work across the samples of a problem (answer-level caching).
Verdicts are stored in atomic shards as results come back; a rerun skips everything already judged.
Nothing outlives a killed verification: the workers die with this process (``PR_SET_PDEATHSIG``), and the
watchdog (``harness.engines.watchdog``) ends what they started (math workers, code sandboxes) and
multiprocessing's resource tracker, and removes the sandboxes' working directories (``harness.core.scratch``).
An interrupt (Ctrl-C, SIGTERM, SIGHUP: ``harness.core.interrupts``) stops it within seconds: the judgements
that have finished are stored, those queued are cancelled, and the workers and everything they started are
ended at once rather than waited for (the workers ignore the terminal's Ctrl-C themselves: the step ends them).

Each verdict carries the fingerprint of the text it judged (``harness.store.shards.text_fingerprint``): a
verdict of a sample whose text has since changed is stale, and judged again here.

On Ray (``scale.uses_ray``) the same calls run as Ray tasks spread over the cluster's CPUs, one CPU each:
the verifier and its limits (math workers, sandboxes) are the same objects, so the verdicts are the same.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import OptionError, RunStoreError, VerifierError
from harness.core.interrupts import children_ignore_interrupts, ignore_interrupts
from harness.core.reasoning import ThinkTags, split_completion
from harness.core.records import Problem
from harness.core.scratch import SCRATCH_ENV, scratch_dir
from harness.engines.ray_pool import ScaleOut
from harness.engines.watchdog import descendants, die_with_parent, ensure_watchdog, process_table
from harness.pipeline.reasoning import JudgingReasoning, judging_reasoning, verdict_description
from harness.pipeline.references import check_references
from harness.pipeline.results import Verification
from harness.reporting.progress import Progress, ProgressMode
from harness.store import RunStore
from harness.store.ranges import merge_ranges
from harness.store.shards import text_fingerprints
from verifiers import load_verifier
from verifiers.base import NO_ANSWER, TRUNCATED_THINKING, Verdict, Verifier

FLUSH_ROWS = 5000
FLUSH_SECONDS = 5.0
DEFAULT_SCALE = ScaleOut()  # one machine, no Ray


def judge_texts(
    verifier: Verifier, reference: Mapping[str, Any], texts: Sequence[str], think_tags: ThinkTags | None = None
) -> list[Verdict]:
    """The verdicts of one problem's completions. With ``think_tags`` (reasoning on), each completion is split
    (``harness.core.reasoning.split_completion``) and the verifier sees its answer segment only; a completion
    whose thinking never closed is ``truncated_thinking`` and one with an empty answer ``no_answer``, without
    asking the verifier (so every verifier, a custom one too, judges the answer after the thinking only)."""
    if think_tags is None:
        return _verified(verifier, reference, texts)
    parts = [answer_part(text, think_tags) for text in texts]
    answered = [position for position, part in enumerate(parts) if isinstance(part, str)]
    judged = _verified(verifier, reference, [str(parts[position]) for position in answered]) if answered else []
    verdicts = dict(zip(answered, judged))
    return [verdicts[position] if isinstance(part, str) else part for position, part in enumerate(parts)]


def answer_part(text: str, think_tags: ThinkTags) -> str | Verdict:
    """A completion's answer after its thinking, or the verdict it gets without asking a verifier (or a judge):
    ``truncated_thinking`` where the thinking never closed, ``no_answer`` where nothing follows it."""
    segment = split_completion(text, think_tags)
    if not segment.closed:
        return Verdict(False, TRUNCATED_THINKING, None, f"the thinking never closed (no {think_tags.close})")
    if not segment.answer.strip():
        return Verdict(False, NO_ANSWER, None, f"nothing after {think_tags.close}")
    return segment.answer


def _verified(verifier: Verifier, reference: Mapping[str, Any], texts: Sequence[str]) -> list[Verdict]:
    verdicts = verifier.verify(reference, texts)
    if len(verdicts) != len(texts):
        raise VerifierError(
            f"verifier {verifier.describe()} returned {len(verdicts)} verdicts for {len(texts)} samples"
        )
    return verdicts


class _WorkerProcess(multiprocessing.context.SpawnProcess):
    """A spawned worker that ignores the terminal's Ctrl-C from its start (its import included)."""

    def start(self) -> None:
        with children_ignore_interrupts():
            super().start()


class _WorkerContext(multiprocessing.context.SpawnContext):
    """multiprocessing's spawn, with workers that leave Ctrl-C to the step (which ends them)."""

    Process = _WorkerProcess


def _start_worker(parent_pid: int, scratch: str | None) -> None:
    """A verification worker's start: it dies with its parent, leaves the terminal's Ctrl-C to it, and keeps
    its sandboxes' working directories in ``scratch`` (removed when the verification ends, however it ends)."""
    die_with_parent(parent_pid)
    ignore_interrupts()
    if scratch is not None:
        os.environ[SCRATCH_ENV] = scratch


def _end_processes(pids: Sequence[int]) -> None:
    """Kill ``pids`` and every process below them at once (a worker's math workers and sandboxes)."""
    table = process_table()
    for pid in descendants(set(pids), table):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already, or no longer ours
            os.kill(pid, signal.SIGKILL)


class RayTasks(Executor):
    """``submit`` runs a function as a Ray task on one CPU of the cluster (joined with
    ``harness.engines.ray_pool.connect``); its future is Ray's. Leaving cancels what has not finished."""

    def __init__(self, address: str | None) -> None:
        from harness.engines import ray_pool

        ray_pool.connect(address)
        import ray

        self._ray = ray
        self._remote: dict[Callable, Any] = {}
        self._inflight: set[Any] = set()  # only these: a finished task's result is freed once collected
        self.cpus = int(ray.cluster_resources().get("CPU", 1))

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        remote = self._remote.get(fn) or self._remote.setdefault(fn, self._ray.remote(num_cpus=1, max_retries=1)(fn))
        ref = remote.remote(*args, **kwargs)
        self._inflight.add(ref)
        future = ref.future()
        future.add_done_callback(lambda _: self._inflight.discard(ref))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for ref in list(self._inflight):
            # Ray raises whatever its worker's state gives (the task finished meanwhile, its worker is gone):
            # cancelling is best effort, and nothing is left to cancel either way
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)
        self._inflight.clear()


def verification_reference(problem: Problem) -> Mapping[str, Any]:
    """What a verifier judges a problem's samples against: its reference, with the example calls the task found
    in its prompt (``metadata["examples"]``), on which ``python-tests`` groups programs by behaviour. They sit
    in the metadata, outside the problems' digest, so adding them left the hash of earlier runs as it was."""
    examples = problem.metadata.get("examples")
    if examples and "examples" not in problem.reference:
        return {**problem.reference, "examples": list(examples)}
    return problem.reference


@dataclass
class VerificationOutcome:
    key: str
    reasoning: JudgingReasoning
    verified: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: float = 0.0

    def report(self) -> Verification:
        """What was done, as ``harness.verify`` returns it and ``ttc verify --json`` reports it."""
        return {
            "verdict_set": self.key,
            "verified": self.verified,
            "reasons": dict(self.reasons),
            "seconds": round(self.seconds, 3),
            "reasoning": {"mode": self.reasoning.mode, "think_tags": self.reasoning.tags.to_list()},
        }


def verify_run(
    store: RunStore,
    verifier: str | None = None,
    *,
    workers: int | None = None,
    progress: ProgressMode = "auto",
    scale: ScaleOut = DEFAULT_SCALE,
    reasoning: str = "auto",
    think_tags: str | Sequence[str] | ThinkTags | None = None,
) -> VerificationOutcome:
    """Judge every unjudged sample of ``store`` with ``verifier`` (a name or ``module:Class``; default: the
    run's); returns counts of what was done.

    ``workers`` is the number of processes here, or on Ray (``scale.uses_ray``, the cluster at
    ``scale.ray_address``) the calls in flight at once (default: all cores, or the cluster's CPUs).
    ``reasoning`` (``auto``: as the run was sampled, see ``harness.pipeline.reasoning.judging_reasoning``) and
    ``think_tags`` (None: the run's) say whether verifiers judge the answer after the thinking; they are part
    of the verdict set's identity.
    """
    judging = judging_reasoning(store.manifest, reasoning, think_tags)
    judge = _load_judge(store, verifier)
    key = store.register_verdict_set(verdict_description(judge.describe(), judging))
    outcome = VerificationOutcome(key=key, reasoning=judging)
    verdict_set = store.verdicts(key)
    pending = _merged(store.samples_missing_from(verdict_set), store.stale_verdicts(key))
    expected = {pid: sum(b - a for a, b in ranges) for pid, ranges in pending.items()}
    total = sum(expected.values())
    if total == 0:
        return outcome
    problems = store.problems()
    check_references(judge, problems, str(store.path / "problems.jsonl"), verifier or "the run's verifier")
    references = {problem.problem_id: verification_reference(problem) for problem in problems}
    bar = Progress("verifying", total, problems=len(expected), mode=progress)
    unjudged = dict(expected)
    started = time.monotonic()
    writer = store.verdict_writer(key, FLUSH_ROWS, FLUSH_SECONDS)

    def collect(piece: JudgeBatch, verdicts: list[Verdict]) -> None:
        writer.add(
            verdict_set.table({**verdict_columns(piece, verdicts), "fingerprint": text_fingerprints(piece.texts)})
        )
        for verdict in verdicts:
            outcome.reasons[verdict.reason] += 1
        outcome.verified += len(piece.indices)
        unjudged[piece.problem_id] -= len(piece.indices)
        bar.update(len(piece.indices), problems=int(unjudged[piece.problem_id] == 0))

    batches = (
        JudgeBatch(batch.problem_id, batch.indices, batch.texts)
        for batch in store.iter_samples_lacking(verdict_set, missing=pending)
    )
    try:
        judge_batches(batches, judge, references, judging.splits, collect, workers=workers, scale=scale)
    finally:
        writer.flush()  # what was judged is kept, also after an interrupt or an error
        bar.close()
        outcome.seconds = time.monotonic() - started
    return outcome


@dataclass(frozen=True)
class JudgeBatch:
    """Samples of one problem to judge: their indices and texts, and a label of the caller's (``tag``)."""

    problem_id: str
    indices: list[int]
    texts: list[str]
    tag: Any = None


def verdict_columns(batch: JudgeBatch, verdicts: Sequence[Verdict]) -> dict[str, list[Any]]:
    """The columns of a verdict shard (``VERDICT_SCHEMA``, the fingerprint aside) for ``batch``'s verdicts."""
    return {
        "problem_id": [batch.problem_id] * len(batch.indices),
        "sample_idx": list(batch.indices),
        "correct": [verdict.correct for verdict in verdicts],
        "reason": [verdict.reason for verdict in verdicts],
        "answer": [verdict.answer for verdict in verdicts],
        "detail": [verdict.detail[:500] for verdict in verdicts],
    }


def judge_batches(
    batches: Iterable[JudgeBatch],
    judge: Verifier,
    references: Mapping[str, Mapping[str, Any]],
    splits: ThinkTags | None,
    collect: Callable[[JudgeBatch, list[Verdict]], None],
    *,
    workers: int | None = None,
    scale: ScaleOut = DEFAULT_SCALE,
) -> None:
    """Judge ``batches`` (``judge_texts``, split at ``splits``) on worker processes here, or as Ray tasks with
    ``scale.uses_ray`` (``workers``: the processes, or the calls in flight on Ray; default all cores, or the
    cluster's CPUs), in pieces of the verifier's ``batch_size``; ``collect(piece, verdicts)`` gets each piece's
    verdicts as they come (in this thread), with a bounded number in flight. Stopped (an interrupt, an error),
    it collects what finished and ends the workers and everything they started at once."""
    batch_size = getattr(judge, "batch_size", None)
    executor: Executor
    scratch = None
    if scale.uses_ray:
        ray_tasks = RayTasks(scale.ray_address)
        executor, workers = ray_tasks, workers or ray_tasks.cpus
    else:
        workers = workers or os.cpu_count() or 1
        ensure_watchdog()  # the workers' own children (math workers, sandboxes) must not outlive this process
        scratch = tempfile.mkdtemp(prefix="verify-", dir=scratch_dir())
        executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_WorkerContext(),
            initializer=_start_worker,
            initargs=(os.getpid(), scratch),
        )
    inflight: dict[Future, JudgeBatch] = {}

    def take(future: Future) -> None:
        piece = inflight.pop(future)
        try:
            verdicts = future.result()
        except BrokenProcessPool:
            raise VerifierError(
                "a verification worker process died (its error, if any, is on stderr above). A script that calls "
                'harness at its top level must do so under `if __name__ == "__main__":`: each worker imports it '
                "again when it starts"
            ) from None
        collect(piece, verdicts)

    def drain(limit: int) -> None:
        while len(inflight) > limit:
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for future in done:
                take(future)

    finished = False
    try:
        for batch in batches:
            size = batch_size or len(batch.indices)
            for start in range(0, len(batch.indices), size):
                piece = JudgeBatch(
                    batch.problem_id, batch.indices[start : start + size], batch.texts[start : start + size], batch.tag
                )
                future = executor.submit(judge_texts, judge, references[batch.problem_id], piece.texts, splits)
                inflight[future] = piece
                drain(4 * workers)
        drain(0)
        finished = True
    finally:
        try:
            if not finished:  # stopped (an interrupt, an error): keep every judgement that has finished
                _keep_finished(inflight, take)
        finally:
            _stop(executor, finished)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


def _keep_finished(inflight: Mapping[Future, Any], collect: Callable[[Future], None]) -> None:
    """Store the results of the futures in ``inflight`` that finished without an error (an interrupt ends the
    step: what was judged is kept, what failed or was still running is not)."""
    for future in list(inflight):
        if future.done() and not future.cancelled() and future.exception() is None:
            collect(future)


def _stop(executor: Executor, finished: bool) -> None:
    """Shut the workers down: after a finished verification, as usual; after an interrupt or an error, at once
    (queued calls cancelled, the workers and everything they started killed, nothing waited for)."""
    if finished:
        executor.shutdown(wait=True)
        return
    if isinstance(executor, ProcessPoolExecutor):
        # the pool's own record of its worker processes (no public accessor): they are ended, not waited on;
        # then the pool, broken, cancels what is queued and its manager thread ends at once (it is joined, so
        # that nothing of the pool is left running while the interpreter exits)
        _end_processes(list(getattr(executor, "_processes", None) or {}))
        executor.shutdown(wait=True, cancel_futures=True)
    else:
        executor.shutdown(wait=False, cancel_futures=True)


def _load_judge(store: RunStore, verifier: str | None) -> Verifier:
    """The verifier asked for, else the run's default (manifest.json's ``default_verifier``: a name that does
    not load is an error naming manifest.json, not an option the user did not give)."""
    if verifier is not None:
        return load_verifier(verifier)
    default = store.manifest["default_verifier"]
    try:
        return load_verifier(default)
    except OptionError as error:
        raise RunStoreError(
            f"{store.path / 'manifest.json'}: default_verifier {default!r}: {error.message}; pass a verifier "
            "(--verifier) or restore manifest.json"
        ) from None


def _merged(first: Mapping[str, list[tuple[int, int]]], second: Mapping[str, list[tuple[int, int]]]) -> dict:
    """The union of two sets of index ranges per problem."""
    return {pid: merge_ranges([*first.get(pid, []), *second.get(pid, [])]) for pid in {*first, *second}}
