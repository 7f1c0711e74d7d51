"""The sample step: ask the engine for exactly the samples a run directory lacks, and store each request's
samples the moment they arrive."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa

from harness.core.errors import EngineError, RunStoreError
from harness.core.interrupts import deferred
from harness.core.reasoning import ThinkTags
from harness.core.records import Problem, SamplingSettings
from harness.engines.base import (
    Completion,
    Engine,
    GenerationRequest,
    GenerationResult,
    accepts_on_tokens,
    request_seed,
)
from harness.engines.engine_log import ENGINE_LOG, engine_session
from harness.engines.forcing import BudgetForcingEngine
from harness.engines.registry import build_engine
from harness.pipeline.prepare import PreparedRun, package_versions
from harness.pipeline.reasoning import SamplingReasoning
from harness.pipeline.results import SamplingReport, SessionRecord
from harness.reporting.progress import Progress, ProgressMode
from harness.store import RunStore, Session, missing_ranges
from harness.store.shards import text_fingerprints

# Largest n in one request: beyond this a problem's samples are split over several requests (prefix caching
# still prefills the prompt once), which bounds what one finished request holds in memory.
MAX_SAMPLES_PER_REQUEST = 1024
# How often running throughput figures are saved to the manifest while sampling.
SESSION_SAVE_SECONDS = 30.0

Log = Callable[[str], None]


def plan_requests(
    problems: Sequence[Problem],
    stored: Mapping[str, Sequence[tuple[int, int]]],
    samples_per_problem: int | Mapping[str, int],
    base_seed: int,
    max_per_request: int = MAX_SAMPLES_PER_REQUEST,
    think_tags: ThinkTags | None = None,
    response_prefix: str = "",
) -> list[GenerationRequest]:
    """One request per missing index range of each problem (split at ``max_per_request``), in problem order.

    ``samples_per_problem`` is one target for all problems, or a target per problem id (adaptive budgets).
    ``think_tags`` and ``response_prefix`` go with every request (see ``GenerationRequest``).
    """
    requests = []
    for problem in problems:
        target = (
            samples_per_problem
            if isinstance(samples_per_problem, int)
            else int(samples_per_problem.get(problem.problem_id, 0))
        )
        for start, stop in missing_ranges(stored.get(problem.problem_id, ()), target):
            for first in range(start, stop, max_per_request):
                n = min(max_per_request, stop - first)
                requests.append(
                    GenerationRequest(
                        problem_id=problem.problem_id,
                        prompt=problem.prompt,
                        n=n,
                        first_index=first,
                        seed=request_seed(base_seed, problem.problem_id, first),
                        think_tags=think_tags,
                        response_prefix=response_prefix,
                    )
                )
    return requests


def result_table(result: GenerationResult, session_id: str) -> pa.Table:
    request, completions = result.request, result.completions
    if len(completions) != request.n:
        raise EngineError(
            f"engine returned {len(completions)} completions for {request.problem_id} (asked for {request.n})"
        )
    texts = [completion.text for completion in completions]
    return pa.table(
        {
            "problem_id": [request.problem_id] * request.n,
            "sample_idx": list(range(request.first_index, request.first_index + request.n)),
            "text": texts,
            "n_tokens": [completion.n_tokens for completion in completions],
            "finish_reason": [completion.finish_reason for completion in completions],
            "logprob_sum": [completion.logprob_sum for completion in completions],
            "prompt_tokens": [result.prompt_tokens] * request.n,
            "seed": [request.seed if result.seed is None else result.seed] * request.n,
            "session": [session_id] * request.n,
            "thinking_tokens": pa.array([completion.thinking_tokens for completion in completions], pa.int32()),
            "answer_tokens": pa.array([completion.answer_tokens for completion in completions], pa.int32()),
            **confidence_columns(completions),
            "fingerprint": text_fingerprints(texts),
            "forced": pa.array([completion.forced for completion in completions], pa.bool_()),
        }
    )


def confidence_columns(completions: Sequence[Completion]) -> dict[str, list[Any]]:
    """The samples' confidence statistics as the sample shards store them (null where an engine gave none)."""
    stats = [completion.confidence for completion in completions]
    columns: dict[str, list[Any]] = {
        f"conf_{name}": [None if stat is None else float(getattr(stat, name)) for stat in stats]
        for name in ("mean", "min_window", "tail", "bottom_window")
    }
    columns["conf_settings"] = [
        None if stat is None else completion.confidence_settings for stat, completion in zip(stats, completions)
    ]
    return columns


@dataclass
class SamplingOutcome:
    session: Session
    requested: int
    reasoning: SamplingReasoning | None = None


def sample_requests(
    store: RunStore,
    engine: Engine,
    requests: Sequence[GenerationRequest],
    settings: SamplingSettings,
    versions: Mapping[str, str],
    progress: Progress | None = None,
    reasoning: SamplingReasoning | None = None,
) -> SamplingOutcome:
    """Generate ``requests`` and store each result as one atomic shard as soon as it is complete.

    An interruption (Ctrl-C, a crash, ``kill -9``) loses only requests still in flight; the session's
    throughput figures are saved periodically and on exit, with the engine's description as it stands then
    (an engine may record what it learnt while sampling, e.g. a server's fallbacks). ``reasoning``: the run's
    reasoning decision, which the manifest records again as soon as a sample turns ``auto`` on.
    """
    session = store.start_session(engine.describe(), versions)
    requests_left = Counter(request.problem_id for request in requests)
    progress = progress or Progress(
        "sampling", sum(request.n for request in requests), problems=len(requests_left), mode="quiet"
    )
    started = last_save = time.monotonic()
    # the engine reports tokens while requests run, so progress moves before the first request finishes
    streaming = {"on_tokens": progress.add_tokens} if accepts_on_tokens(engine) else {}
    failure: BaseException | None = None
    try:
        for result in engine.generate(requests, settings, **streaming):
            with deferred():  # an interrupt meanwhile is raised once the shard is stored and counted
                store.write_samples(result_table(result, session.id))
                if reasoning is not None and reasoning.awaiting_evidence:
                    reasoning = reasoning.after_samples(completion.text for completion in result.completions)
                    if not reasoning.awaiting_evidence:
                        store.update_manifest(reasoning=reasoning.record())
                tokens = sum(completion.n_tokens for completion in result.completions)
                session.samples += result.request.n
                session.output_tokens += tokens
                session.prompt_tokens += result.prompt_tokens
                session.requests += 1
            requests_left[result.request.problem_id] -= 1
            progress.update(
                result.request.n, tokens=tokens, problems=int(requests_left[result.request.problem_id] == 0)
            )
            now = time.monotonic()
            if now - last_save >= SESSION_SAVE_SECONDS:
                session.seconds = now - started
                store.save_session(session)
                last_save = now
        session.status = "complete"
    except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP (harness.core.interrupts)
        session.status, failure = "interrupted", interrupt
        raise
    except BaseException as error:
        session.status, failure = "failed", error
        raise
    finally:
        progress.close()
        session.seconds = time.monotonic() - started
        session.finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        session.engine_figures = engine.session_figures()
        try:
            store.save_session(session, engine_description=engine.describe())
        except RunStoreError:
            if failure is None:
                raise
            # the run directory is gone (the error that stopped sampling says so): the stop's cause is reported
    return SamplingOutcome(session=session, requested=sum(request.n for request in requests), reasoning=reasoning)


def start_engine(prepared: PreparedRun, session_seed: int, log: Log = print) -> Engine:
    """The run's engine: one in this process, or replicas of it on Ray when ``prepared.options.scale`` asks;
    budget-forced (``harness.engines.forcing``) when the run forces budgets."""
    options, forcing = prepared.options, prepared.forcing
    if options.scale.uses_ray:
        from harness.engines.ray_pool import RayEnginePool  # Ray is imported only when asked for

        return RayEnginePool(
            options.engine, prepared.model, options.engine_options, session_seed, options.scale, log, forcing
        )
    engine = build_engine(options.engine, prepared.model, options.engine_options, session_seed)
    return BudgetForcingEngine(engine, forcing) if forcing.active else engine


def sample_run(
    store: RunStore,
    prepared: PreparedRun,
    targets: int | Mapping[str, int] | None = None,
    progress: ProgressMode = "auto",
    log: Log = print,
) -> SamplingReport:
    """Sample what the run in ``store`` lacks to reach ``targets`` samples per problem: one number, one per
    problem id (the adaptive pilot), or None for the run's own samples per problem. Starts the engine only
    when something is missing; reports the samples wanted, those already stored and the session run."""
    config = prepared.config
    targets = config.samples if targets is None else targets
    session = None
    stored = store.sample_ranges()
    reasoning = prepared.reasoning
    requests = plan_requests(
        prepared.problems,
        stored,
        targets,
        config.sampling.seed,
        think_tags=reasoning.tags,
        response_prefix=reasoning.response_prefix,
    )
    if isinstance(targets, int):
        wanted = len(prepared.problems) * targets
    else:
        wanted = sum(int(targets.get(problem.problem_id, 0)) for problem in prepared.problems)
    missing = sum(request.n for request in requests)
    log(f"run directory: {store.path}  ({wanted - missing}/{wanted} samples already stored)")
    if requests:
        store.allow_samples(max(request.first_index + request.n for request in requests))
        stored_total = sum(stop - start for ranges in stored.values() for start, stop in ranges)
        session_seed = request_seed(config.sampling.seed, "engine-session", stored_total)
        with engine_session(lambda: start_engine(prepared, session_seed, log), store.path / ENGINE_LOG, log) as engine:
            bar = Progress(
                "sampling",
                missing,
                problems=len({request.problem_id for request in requests}),
                mode=progress,
                max_tokens_per_unit=config.sampling.max_tokens,
            )
            outcome = sample_requests(store, engine, requests, config.sampling, package_versions(), bar, reasoning)
        session = outcome.session
        if outcome.reasoning is not None and outcome.reasoning != reasoning:
            prepared.reasoning = outcome.reasoning
            log(f"reasoning: on ({outcome.reasoning.decided_by})")
        rate = session.output_tokens / session.seconds if session.seconds else 0.0
        log(
            f"sampled {session.samples} samples, {session.output_tokens} tokens in {session.seconds:.0f} s "
            f"({rate:.0f} tok/s)"
        )
    return {
        "wanted": wanted,
        "already_stored": wanted - missing,
        "session": None if session is None else cast(SessionRecord, dict(session.__dict__)),
    }
