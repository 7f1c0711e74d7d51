"""LLM judges on a run: a judge model's verdicts (``ttc verify --verifier judge``), its probability of "yes" as a
score set (``ttc score --judge-model``), and generative selection (``ttc genselect``: the judge reads k samples'
answers and names the correct one).

What the judge is asked and how its reply is read are ``verifiers.judge``'s; this module runs the judge model on
an engine (vLLM in process, or an OpenAI-compatible server), which verifiers may not import. Each distinct
(problem, answer segment) is judged once, greedily (temperature 0), with the top log-probabilities of its reply
for P(yes); its verdict goes to every sample with that segment. Requests go to the engine in chunks, and each
chunk's verdicts are stored as they come, so an interrupted judging resumes where it stopped. What the judge
spends (calls, prompt and reply tokens, seconds) is added to the manifest's ``judging`` entry for the set it
wrote, and reported. The judge's engine log goes to a temporary file (shown if it fails), so a judge model that
cannot load leaves nothing in the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from harness.core.errors import EngineError, OptionError, check_number
from harness.core.options import check_fields
from harness.core.reasoning import ThinkTags
from harness.core.records import Problem, SamplingSettings
from harness.engines.base import Engine, GenerationRequest
from harness.engines.engine_log import engine_session
from harness.engines.models import ModelRef
from harness.engines.registry import build_engine, engine_class
from harness.pipeline.reasoning import JudgingReasoning, judging_reasoning, verdict_description
from harness.pipeline.verify import answer_part
from harness.reporting.progress import Progress, ProgressMode
from harness.store import RunStore
from verifiers.judge import (
    DEFAULT_ANSWER_CHARS,
    DEFAULT_QUESTION_CHARS,
    Judgement,
    JudgeTemplate,
    answer_segment,
    check_judge_settings,
    judgement,
    parse_choice,
    question_text,
    reference_text,
)

JUDGE_ENGINES = ("vllm", "openai")
# Distinct items sent to the engine at once: a chunk's verdicts are stored when it ends.
CHUNK = 256
FLUSH_ROWS = 2000
FLUSH_SECONDS = 10.0
DEFAULT_CANDIDATE_CHARS = 600
UNPARSED_PICK = "unparsed"
JUDGE_TEMPLATE = "judge.jinja"
GENSELECT_TEMPLATE = "genselect.jinja"

Log = Callable[[str], None]


@dataclass(frozen=True)
class JudgeOptions:
    """The judge model and how it is asked.

    Attributes:
        model: the judge model: a local checkpoint or Hub id (vllm), or the name a server serves (openai).
        engine: ``vllm`` (in process), ``openai`` (an OpenAI-compatible server at ``base_url``) or an engine of
            your own, ``module:Class``.
        base_url: the server's API root for ``openai`` (default: ``$OPENAI_BASE_URL``).
        template: a Jinja file replacing the built-in prompt (``verifiers/templates/judge.jinja``, or
            ``genselect.jinja`` for generative selection).
        max_tokens: most tokens of a reply.
        answer_chars: characters of each sample's end the judge reads.
        top_logprobs: alternatives per reply token, for P(yes) (0: none; P(yes) is then 1 or 0 by the verdict).
        engine_options: further options of the judge's engine (e.g. ``max_model_len``).
    """

    model: str
    engine: str = "vllm"
    base_url: str | None = None
    template: str | Path | None = None
    max_tokens: int = 8
    answer_chars: int = DEFAULT_ANSWER_CHARS
    top_logprobs: int = 5
    engine_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.model or not str(self.model).strip():
            raise OptionError("judge_model", "names no model (empty)")
        if self.engine not in JUDGE_ENGINES and ":" not in self.engine:
            raise OptionError("judge_engine", f"must be vllm, openai or module:Class, got {self.engine!r}")
        if self.base_url is not None and self.engine != "openai":
            raise OptionError("judge_base_url", "is for --judge-engine openai")
        check_judge_settings(self.max_tokens, self.answer_chars, self.top_logprobs)

    def options_for_engine(self) -> dict[str, Any]:
        """The judge engine's options: the run's knobs off (no confidence statistics), the server's address."""
        options: dict[str, Any] = {"confidence": False, **self.engine_options}
        if self.base_url is not None:
            options["base_url"] = self.base_url
        return options


def prepared_judge(options: JudgeOptions, builtin: str) -> tuple[JudgeTemplate, ModelRef]:
    """The judge's template (the file given, else the built-in ``builtin``) and model, checked before anything
    is opened for writing or started."""
    return JudgeTemplate.load(options.template, builtin), resolve_judge(options)


def resolve_judge(options: JudgeOptions) -> ModelRef:
    """The judge model, resolved without starting anything (a model that does not exist is refused here)."""
    engine_options = options.options_for_engine()
    try:
        cls = engine_class(options.engine)
    except OptionError as error:
        raise OptionError("judge_engine", error.message) from None
    try:
        cls.check_options(engine_options, "judge_options", f"engine {options.engine!r}")
        return cls.resolve_model(str(options.model), engine_options)
    except OptionError as error:
        if error.option == "model":
            raise OptionError("judge_model", error.message) from None
        raise


@contextlib.contextmanager
def judge_engine(options: JudgeOptions, model: ModelRef, log: Log) -> Iterator[Engine]:
    """The judge's engine, started and closed; its log in a temporary file, shown when it fails."""
    with tempfile.TemporaryDirectory(prefix="ttc-judge-") as folder:
        start = partial(build_engine, options.engine, model, options.options_for_engine(), 0)
        quiet_log = partial(_without_log_path, log)  # the log file goes with the temporary folder
        started = False
        try:
            with engine_session(start, Path(folder) / "judge-engine.log", quiet_log) as engine:
                started = True
                yield engine
        except EngineError as error:
            if started:
                raise
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(error).__name__
            raise OptionError(
                "judge_model", f"{model.identity} cannot be loaded by the {options.engine} engine: {reason}"
            ) from error


def _without_log_path(log: Log, line: str) -> None:
    if not line.startswith("engine log:"):
        log(line)


@dataclass
class JudgeUsage:
    """What a judge spent."""

    calls: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "seconds": round(self.seconds, 3),
        }


def ask(
    engine: Engine, prompts: Sequence[list[dict[str, str]]], options: JudgeOptions, usage: JudgeUsage
) -> Iterator[tuple[int, str, list[dict[str, float]] | None, int, int]]:
    """Ask the judge each prompt once, greedily: (its position, reply, top log-probabilities per reply token,
    prompt tokens, reply tokens), as the engine finishes them."""
    settings = SamplingSettings(temperature=0.0, top_p=1.0, max_tokens=options.max_tokens, seed=0)
    requests = [
        GenerationRequest(
            problem_id=str(index), prompt=prompt, n=1, first_index=0, seed=0, top_logprobs=options.top_logprobs
        )
        for index, prompt in enumerate(prompts)
    ]
    started = time.monotonic()
    try:
        for result in engine.generate(requests, settings):
            completion = result.completions[0]
            usage.calls += 1
            usage.prompt_tokens += result.prompt_tokens
            usage.output_tokens += completion.n_tokens
            yield (
                int(result.request.problem_id),
                completion.text,
                completion.top_logprobs,
                result.prompt_tokens,
                completion.n_tokens,
            )
    finally:
        usage.seconds += time.monotonic() - started


# ---------------------------------------------------------------------------------------------------------
# Verdicts and scores
# ---------------------------------------------------------------------------------------------------------


def judge_description(options: JudgeOptions, model: ModelRef, template: JudgeTemplate) -> dict[str, Any]:
    """What defines a judge's verdicts (its verdict set's ``verifier.json``; a score set's ``scorer.json``)."""
    return {
        "name": "judge",
        "model": model.identity,
        "engine": options.engine,
        **template.describe(),
        "max_tokens": options.max_tokens,
        "answer_chars": options.answer_chars,
        "question_chars": DEFAULT_QUESTION_CHARS,
        "top_logprobs": options.top_logprobs,
        "decoding": "greedy",
    }


@dataclass
class JudgingOutcome:
    """What a judging did: the set written to, the samples judged now, the distinct answers asked about, the
    verdicts' reasons and what the judge spent."""

    key: str
    reasoning: JudgingReasoning
    judged: int = 0
    distinct: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    usage: JudgeUsage = field(default_factory=JudgeUsage)

    def report(self) -> dict[str, Any]:
        return {
            "verdict_set": self.key,
            "verified": self.judged,
            "distinct_answers": self.distinct,
            "reasons": dict(self.reasons),
            "judge": self.usage.to_json(),
            "seconds": round(self.usage.seconds, 3),
            "reasoning": {"mode": self.reasoning.mode, "think_tags": self.reasoning.tags.to_list()},
        }


def judged_text(text: str | None, tags: ThinkTags | None) -> str | Judgement:
    """What a judge reads of a sample: all of it, or with reasoning on (``tags``) its answer after the thinking;
    a sample whose thinking never closed, or with nothing after it, is wrong without asking the judge (the rule
    every verifier follows, ``harness.pipeline.verify.answer_part``), with P(yes) 0."""
    if tags is None:
        return text or ""
    part = answer_part(text or "", tags)
    if isinstance(part, str):
        return part
    return Judgement(False, part.reason, 0.0, part.detail or "", 0, 0)


def _pending_items(
    store: RunStore,
    target: Any,
    problems: Mapping[str, Problem],
    template: JudgeTemplate,
    options: JudgeOptions,
    tags: ThinkTags | None,
) -> Iterator[tuple[str, list[dict[str, str]] | Judgement, list[int]]]:
    """Each (problem, distinct answer segment) that ``target`` (a verdict or score set) lacks a judgement of: the
    problem, the judge's prompt (or the judgement a sample gets without asking, see ``judged_text``) and the
    sample indices with that segment."""
    for batch in store.iter_samples_lacking(target):
        problem = problems[batch.problem_id]
        by_segment: dict[str, list[int]] = {}
        unasked: dict[str, tuple[Judgement, list[int]]] = {}
        for index, text in zip(batch.indices, batch.texts):
            part = judged_text(text, tags)
            if isinstance(part, Judgement):
                unasked.setdefault(part.reason, (part, []))[1].append(index)
            else:
                by_segment.setdefault(answer_segment(part, options.answer_chars), []).append(index)
        for judged, indices in unasked.values():
            yield batch.problem_id, judged, indices
        question = question_text(problem.prompt)
        reference = reference_text(problem.reference)
        for segment, indices in by_segment.items():
            prompt = template.render(question=question, reference=reference, answer=segment)
            yield batch.problem_id, prompt, indices


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def judge_run(
    store: RunStore,
    options: JudgeOptions,
    *,
    score_set: str | None = None,
    reasoning: str = "auto",
    think_tags: str | Sequence[str] | ThinkTags | None = None,
    progress: ProgressMode = "auto",
    log: Log = print,
) -> JudgingOutcome:
    """Judge every stored sample the judge's verdict set (or, with ``score_set``, that score set) lacks: each
    distinct (problem, answer segment) once; verdicts carry the reply (``detail``) and P(yes) (``probability``); a
    score set holds P(yes). ``reasoning`` and ``think_tags`` as for every verifier (``auto``: as the run was
    sampled; with reasoning on the judge reads the answer after the thinking, and the mode and tags are part of
    the set's description). The model is resolved and the engine started before anything is written."""
    judging = judging_reasoning(store.manifest, reasoning, think_tags)
    template, model = prepared_judge(options, JUDGE_TEMPLATE)
    description = verdict_description(judge_description(options, model, template), judging)
    if score_set is None:
        key = store.verdict_key(description)
        target = store.verdicts(key)
    else:
        key = score_set
        if key in store.score_sets() and store.score_sets()[key] != description:
            store.register_score_set(key, description)  # refuses, naming what differs (nothing is written)
        target = store.scores(key)
    outcome = JudgingOutcome(key=key, reasoning=judging)
    missing = store.samples_missing_from(target)
    total = sum(stop - start for ranges in missing.values() for start, stop in ranges)
    if total == 0:
        return outcome
    problems = {problem.problem_id: problem for problem in store.problems()}
    log(f"judging {total} samples with {model.identity} ({options.engine})")
    with judge_engine(options, model, log) as engine:
        if score_set is None:
            store.register_verdict_set(description)
            writer = store.verdict_writer(key, FLUSH_ROWS, FLUSH_SECONDS)
        else:
            store.register_score_set(key, description)
            writer = store.score_writer(key, FLUSH_ROWS, FLUSH_SECONDS)
        bar = Progress("judging", total, mode=progress)
        try:
            with writer:
                verdicts = score_set is None

                def record(problem_id: str, judged: Judgement, indices: list[int], by_judge: bool) -> None:
                    writer.add(_rows(target, problem_id, indices, judged, verdicts))
                    outcome.judged += len(indices)
                    outcome.distinct += by_judge
                    outcome.reasons[judged.reason] += len(indices)
                    bar.update(len(indices))

                items = _pending_items(store, target, problems, template, options, judging.splits)
                for chunk in _chunks(items, CHUNK):
                    asked: list[tuple[str, list[dict[str, str]], list[int]]] = []
                    for problem_id, item, indices in chunk:
                        if isinstance(item, Judgement):  # decided without the judge (thinking never closed)
                            record(problem_id, item, indices, by_judge=False)
                        else:
                            asked.append((problem_id, item, indices))
                    prompts = [prompt for _, prompt, _ in asked]
                    replies = ask(engine, prompts, options, outcome.usage) if prompts else iter(())
                    for position, reply, tops, prompt_tokens, reply_tokens in replies:
                        problem_id, _, indices = asked[position]
                        record(problem_id, judgement(reply, tops, prompt_tokens, reply_tokens), indices, by_judge=True)
        finally:
            bar.close()
            usage = outcome.usage
            store.add_judge_usage(key, usage.calls, usage.prompt_tokens, usage.output_tokens, usage.seconds)
    return outcome


def _rows(target: Any, problem_id: str, indices: list[int], judged: Judgement, verdicts: bool) -> pa.Table:
    count = len(indices)
    if not verdicts:
        return target.table(
            {
                "problem_id": [problem_id] * count,
                "sample_idx": indices,
                "score": [judged.score] * count,
                "step_scores": [None] * count,
            }
        )
    return target.table(
        {
            "problem_id": [problem_id] * count,
            "sample_idx": indices,
            "correct": [judged.correct] * count,
            "reason": [judged.reason] * count,
            "answer": [None] * count,
            "detail": [judged.reply[:500]] * count,
            "probability": [judged.score] * count,
        }
    )


# ---------------------------------------------------------------------------------------------------------
# Generative selection
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenSelectPlan:
    """Which k-subsets of each problem's samples the judge is shown: ``subsets`` random ones per k of ``ks``
    (each in a random order), drawn from ``seed``, the problem and its samples; call ``i`` of a problem is the
    ``i``-th of its plan (k by k), so a resumed selection asks exactly the calls missing."""

    ks: tuple[int, ...]
    subsets: int
    seed: int

    def calls(self, problem_id: str, indices: Sequence[int]) -> list[tuple[int, list[int]]]:
        """(k, candidates' sample indices in the order shown) of each call for a problem with samples ``indices``."""
        digest = hashlib.blake2b(f"{self.seed}:{problem_id}".encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        pool = np.asarray(sorted(indices), dtype=np.int64)
        plan = []
        for k in self.ks:
            for _ in range(self.subsets):
                chosen = rng.choice(pool.size, size=min(k, pool.size), replace=False)
                plan.append((k, pool[chosen].tolist()))
        return plan


def _candidate(text: str, tags: ThinkTags | None, max_chars: int) -> str:
    """A candidate as the generative selector shows it: its answer segment, or why it has none."""
    part = judged_text(text, tags)
    return answer_segment(part, max_chars) if isinstance(part, str) else f"(no answer: {part.reply})"


def check_genselect(ks: Sequence[int], subsets: int, seed: int, candidate_chars: int) -> list[int]:
    """The k of a generative selection, sorted, once they and the other settings are checked."""
    for k in ks:
        check_number("ks", k, at_least=2, at_most=64, integer=True)
    if not ks:
        raise OptionError("ks", "give at least one k (a number of candidates)")
    check_number("subsets", subsets, at_least=1, integer=True)
    check_number("seed", seed, at_least=0, integer=True)
    check_number("candidate_chars", candidate_chars, at_least=1, integer=True)
    return sorted({int(k) for k in ks})


def genselect_run(
    store: RunStore,
    options: JudgeOptions,
    ks: Sequence[int],
    *,
    subsets: int = 4,
    seed: int = 0,
    name: str = "genselect",
    candidate_chars: int = DEFAULT_CANDIDATE_CHARS,
    progress: ProgressMode = "auto",
    log: Log = print,
) -> JudgingOutcome:
    """Ask the judge, for ``subsets`` random k-subsets of each problem's samples per k, which candidate is
    correct; store each pick (and what the call cost) in selection set ``name``. The ``genselect`` selector of
    ``compare-verifiers`` estimates accuracy@k from them."""
    ks = check_genselect(ks, subsets, seed, candidate_chars)
    judging = judging_reasoning(store.manifest)  # as the run was sampled: candidates are answers after thinking
    template, model = prepared_judge(options, GENSELECT_TEMPLATE)
    plan = GenSelectPlan(tuple(ks), subsets, seed)
    description = {
        **verdict_description(judge_description(options, model, template), judging),
        "name": "genselect",
        "ks": ks,
        "subsets": subsets,
        "seed": seed,
        "candidate_chars": candidate_chars,
    }
    sets = store.selection_sets()
    if name in sets and sets[name] != description:
        store.register_selection_set(name, description)  # refuses, naming what differs
    samples = store.read_samples(["text"])
    problems = {problem.problem_id: problem for problem in store.problems()}
    store.check_known_problems(set(samples.column("problem_id").to_pylist()), "samples")
    by_problem: dict[str, dict[int, str]] = defaultdict(dict)
    columns = (samples.column(column).to_pylist() for column in ("problem_id", "sample_idx", "text"))
    for problem_id, index, text in zip(*columns):
        by_problem[problem_id][index] = text or ""
    smallest = min((len(texts) for texts in by_problem.values()), default=0)
    if smallest < ks[-1]:
        raise OptionError("ks", f"k = {ks[-1]} exceeds the samples of some problem (smallest n is {smallest})")
    done = store.selections(name).ranges()
    calls: list[tuple[str, int, int, list[int]]] = []
    for problem_id in problems:
        if problem_id not in by_problem:
            continue
        taken = done.get(problem_id, [])
        for call, (k, candidates) in enumerate(plan.calls(problem_id, list(by_problem[problem_id]))):
            if not any(start <= call < stop for start, stop in taken):
                calls.append((problem_id, call, k, candidates))
    outcome = JudgingOutcome(key=name, reasoning=judging)
    if not calls:
        return outcome
    log(f"generative selection: {len(calls)} judge calls with {model.identity} ({options.engine})")
    with judge_engine(options, model, log) as engine:
        store.register_selection_set(name, description)
        selections = store.selections(name)
        bar = Progress("selecting", len(calls), unit="judge calls", mode=progress)
        try:
            with store.selection_writer(name, FLUSH_ROWS, FLUSH_SECONDS) as writer:
                for chunk in _chunks(iter(calls), CHUNK):
                    prompts = []
                    for problem_id, _, _, candidates in chunk:
                        problem = problems[problem_id]
                        shown = [
                            _candidate(by_problem[problem_id][i], judging.splits, candidate_chars) for i in candidates
                        ]
                        prompts.append(template.render(question=question_text(problem.prompt), candidates=shown))
                    answers = ask(engine, prompts, options, outcome.usage)
                    for position, reply, _, prompt_tokens, reply_tokens in answers:
                        problem_id, call, k, candidates = chunk[position]
                        picked = parse_choice(reply, len(candidates))
                        writer.add(
                            pa.table(
                                {
                                    "problem_id": [problem_id],
                                    "sample_idx": [call],
                                    "k": [k],
                                    "candidates": [candidates],
                                    "choice": [-1 if picked is None else candidates[picked]],
                                    "reply": [reply[:500]],
                                    "prompt_tokens": [prompt_tokens],
                                    "output_tokens": [reply_tokens],
                                },
                                schema=selections.schema,
                            )
                        )
                        outcome.judged += 1
                        outcome.reasons["picked" if picked is not None else UNPARSED_PICK] += 1
                        bar.update(1)
        finally:
            bar.close()
            usage = outcome.usage
            key = f"selections/{name}"
            store.add_judge_usage(key, usage.calls, usage.prompt_tokens, usage.output_tokens, usage.seconds)
    return outcome
