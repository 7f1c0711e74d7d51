"""The sweep step (``ttc sweep``): every stored sample of a run at several thinking budgets, from its one trace.

Budget forcing at budget B changes a sample only where its thinking does not close on its own within B tokens:
the thinking is cut there, closed with the tag and the answer cue, and the model answers in at most A tokens.
Generation is causal, so the first B tokens of a trace sampled without a budget are distributed exactly as the
thinking of a sample forced at B up to its cut; a sample that closed its thinking within B is the sample
forcing at B would have drawn. So each stored trace gives the run at every budget up to its own: cut it at B,
force the answer from the cached prefix, judge it. Only the forced answers are generated (at most A tokens per
sample cut), not a sampling per budget.

Storage (``RunStore.sweep_samples``/``sweep_verdicts``): per budget, one row per sample (forced or not, where
its text was cut, the forced answer, its tokens), then its verdict by the run's verifier with the run's
reasoning mode. Both passes resume: what a budget lacks is range algebra over shard footers, as for sampling and
verifying; a crash loses at most the chunk of requests in flight.

Tokens are counted with the model's tokenizer on the stored text (``Engine.token_codec``): a trace is cut after
its first B tokens as the tokenizer splits its text again, which is the sampled ids wherever re-tokenizing a
text gives back its ids (almost always; a byte-level tokenizer can merge differently at rare boundaries).
"""

from __future__ import annotations

import bisect
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from harness.core.errors import EngineError, OptionError, RunStoreError, check_number
from harness.core.forcing import BudgetForcing, check_budgets, forced_thinking
from harness.core.reasoning import ThinkTags, split_completion
from harness.core.records import SamplingSettings
from harness.engines.base import Engine, GenerationRequest, accepts_on_tokens, request_seed
from harness.engines.engine_log import ENGINE_LOG, engine_session
from harness.engines.models import ModelRef
from harness.engines.registry import build_engine, engine_class
from harness.pipeline.reasoning import JudgingReasoning, judging_reasoning, verdict_description
from harness.pipeline.results import SweepBudget, SweepReport
from harness.pipeline.verify import JudgeBatch, judge_batches, verification_reference
from harness.reporting.progress import Progress, ProgressMode
from harness.store import RunStore
from harness.store.ranges import Ranges, merge_ranges, subtract_ranges
from harness.store.shards import pending_samples
from verifiers import load_verifier
from verifiers.base import Verdict

# Samples forced per chunk when the engine does not say how many it works on at once; a chunk's rows are stored
# when it is done, so a crash loses at most one chunk.
DEFAULT_CHUNK_SAMPLES = 256
SAMPLE_COLUMNS = ("text", "n_tokens", "thinking_tokens", "finish_reason", "seed", "forced")
Log = Callable[[str], None]


@dataclass(frozen=True)
class SweepLimits:
    """What a run's traces allow a sweep: budgets up to ``ceiling`` (the run's own thinking budget, else its
    ``max_tokens``: no trace thought longer), from ``floor`` (the run's ``min_thinking``), and the run's forcing."""

    ceiling: int
    ceiling_source: str
    floor: int
    forcing: BudgetForcing


def sweep_limits(manifest: Mapping[str, Any]) -> SweepLimits:
    config = manifest["config"]
    sampling = config.get("sampling")
    if not sampling:
        raise RunStoreError("a sweep needs a run sampled by ttc (its settings and model); this run was imported")
    forcing = BudgetForcing.from_record((config.get("sample_defining") or {}).get("budget_forcing"))
    if forcing.thinking_budget is not None:
        ceiling, source = forcing.thinking_budget, "its --thinking-budget"
    else:
        ceiling, source = int(sampling["max_tokens"]), "its --max-tokens"
    return SweepLimits(ceiling, source, forcing.min_thinking or 0, forcing)


def check_sweep_budgets(manifest: Mapping[str, Any], budgets: Sequence[int]) -> list[int]:
    """The budgets, checked against the run (``OptionError("thinking_budgets", ...)``): the run must split its
    samples into thinking and answer, and each budget lie within what its traces hold."""
    values = check_budgets(budgets, "thinking_budgets")
    judging = judging_reasoning(manifest)
    if judging.mode != "on":
        decided = (manifest.get("reasoning") or {}).get("decided_by") or "a run made before ttc knew reasoning models"
        raise OptionError(
            "thinking_budgets",
            f"the run judges completions whole (reasoning off: {decided}), so its samples have no thinking to cut; "
            "sample with --reasoning on",
        )
    limits = sweep_limits(manifest)
    above = [budget for budget in values if budget > limits.ceiling]
    if above:
        raise OptionError(
            "thinking_budgets",
            f"{above[0]} is above the run's own thinking budget, {limits.ceiling} ({limits.ceiling_source}): no "
            "trace thought longer, so none can be cut there",
        )
    below = [budget for budget in values if budget < limits.floor]
    if below:
        raise OptionError(
            "thinking_budgets",
            f"{below[0]} is below the run's --min-thinking ({limits.floor}): its traces were made to think longer",
        )
    return values


@dataclass(frozen=True)
class Cut:
    """One sample at one budget: whether it is forced there, how much of its text is kept (``chars``, None when
    not forced) and its thinking tokens there."""

    forced: bool
    chars: int | None
    thinking_tokens: int


def cut_at(
    text: str,
    ends: Sequence[int],
    tags: ThinkTags,
    budget: int,
    tag_inserted: bool = False,
    thinking_tokens: int | None = None,
) -> Cut:
    """Where budget forcing at ``budget`` cuts ``text``, whose tokens end at ``ends`` (``TokenCodec``): nowhere
    when the thinking closed within the budget (the closing tag's tokens included, unless the tag was
    ``tag_inserted`` by the run's own budget forcing: then its thinking is the ``thinking_tokens`` the engine
    counted, else the tokens before the tag); else after the first ``budget`` tokens of the thinking, or at the
    end of a thinking that stopped earlier without the tag."""
    segments = split_completion(text, tags)
    if segments.closed:
        if tag_inserted:  # the run forced it: its thinking is what was generated before the tag
            before = bisect.bisect_right(ends, segments.answer_start - len(tags.close))
            thinking = before if thinking_tokens is None else thinking_tokens
        else:
            thinking = bisect.bisect_left(ends, segments.answer_start) + 1  # up to the token that ends the tag
        if thinking <= budget:
            return Cut(False, None, thinking)
    else:
        thinking = len(ends)
    if thinking <= budget:  # the thinking stopped before the budget, without closing: forced where it stopped
        return Cut(True, len(text), thinking)
    return Cut(True, ends[budget - 1], budget)


def sweep_engine_options(engine_type: type[Engine], manifest: Mapping[str, Any], given: Mapping[str, Any]) -> dict:
    """The sweep's engine options: the run's engine settings as its manifest recorded them (its context length,
    dtype, a server's address), then ``given``; checked by the engine class. The manifest records the engine's
    description, whose fields are option values where an option's name is the field's (a field named so that
    only describes the setting, such as a confidence label, is left out)."""
    declared = engine_type.declared_options()
    named = f"engine {manifest['config']['engine']!r}"
    recorded = {}
    for name, value in (manifest.get("engine") or {}).items():
        if name not in declared or value is None or name in engine_type.given_by_harness or name in given:
            continue
        try:
            engine_type.check_options({name: value}, "engine_options", named)
        except OptionError:
            continue
        recorded[name] = value
    options = {**recorded, **given}
    engine_type.check_options(options, "engine_options", named)
    return options


def sweep_run(
    store: RunStore,
    budgets: Sequence[int],
    *,
    answer_tokens: int | None = None,
    answer_cue: str | None = None,
    engine_options: Mapping[str, Any] | None = None,
    workers: int | None = None,
    progress: ProgressMode = "auto",
    log: Log = print,
    engine: Engine | None = None,
) -> SweepReport:
    """Force every stored sample of ``store`` at each of ``budgets`` and judge it (see the module's notes).
    ``answer_tokens`` and ``answer_cue`` default to the run's own forcing, else 512 and ``"\\n\\nFinal answer:"``.
    Everything is checked before any engine starts; the engine starts only when a forced answer is missing
    (``engine``: one already running the run's model, used instead, e.g. by the sweep benchmark)."""
    manifest = store.manifest
    budgets = check_sweep_budgets(manifest, budgets)
    limits = sweep_limits(manifest)
    check_number("answer_tokens", answer_tokens, at_least=1)
    forcing = BudgetForcing(
        thinking_budget=budgets[-1],
        answer_tokens=limits.forcing.answer_tokens if answer_tokens is None else answer_tokens,
        answer_cue=limits.forcing.answer_cue if answer_cue is None else answer_cue,
    )
    judging = judging_reasoning(manifest)
    config = manifest["config"]
    engine_type = engine_class(config["engine"])
    options = sweep_engine_options(engine_type, manifest, engine_options or {})
    judge = load_verifier(manifest["default_verifier"])
    verdict_key = store.verdict_key(verdict_description(judge.describe(), judging))
    response_prefix = (manifest.get("reasoning") or {}).get("response_prefix") or ""
    description = {
        "config_hash": manifest["config_hash"],
        "think_tags": judging.tags.to_list(),
        "response_prefix": response_prefix,
        "answer_tokens": forcing.answer_tokens,
        "answer_cue": forcing.answer_cue,
    }
    key = store.register_sweep(description)
    shown = ", ".join(map(str, budgets))
    log(
        f"sweep {key}: thinking budgets {shown}; answers forced after {forcing.answer_cue!r}, "
        f"{forcing.answer_tokens} tokens at most"
    )
    generation = _SweepGeneration(store, key, budgets, judging.tags, forcing, response_prefix)
    generated, seconds, start_seconds = 0, 0.0, None
    if generation.missing_total and engine is not None:
        generated, seconds = generation.timed_run(engine, progress)
    elif generation.missing_total:
        model = ModelRef(**{name: manifest["model"][name] for name in ("path", "identity", "name")})
        stored = sum(stop - start for ranges in store.sample_ranges().values() for start, stop in ranges)
        seed = request_seed(int(config["sampling"]["seed"]), "sweep-session", stored)
        starting = time.monotonic()
        with engine_session(
            lambda: build_engine(config["engine"], model, options, seed), store.path / ENGINE_LOG, log
        ) as started_engine:
            start_seconds = time.monotonic() - starting
            generated, seconds = generation.timed_run(started_engine, progress)
    judged = _judge_sweep(store, key, budgets, verdict_key, judge, judging, workers, progress)
    record = dict((manifest.get("sweeps") or {}).get(key) or {"seconds": 0.0, "generated_tokens": 0})
    record = {"seconds": record["seconds"] + seconds, "generated_tokens": record["generated_tokens"] + generated}
    store.update_manifest(sweeps={**(manifest.get("sweeps") or {}), key: record})
    return sweep_report(store, key, verdict_key, budgets, seconds, generated, judged, start_seconds)


class _SweepGeneration:
    """The generation pass: the rows each budget lacks, forced answers generated a chunk at a time."""

    def __init__(
        self,
        store: RunStore,
        key: str,
        budgets: list[int],
        tags: ThinkTags,
        forcing: BudgetForcing,
        response_prefix: str,
    ) -> None:
        self.store, self.key, self.budgets, self.tags, self.forcing = store, key, budgets, tags, forcing
        self.response_prefix = response_prefix
        self.missing = {budget: store.samples_missing_from(store.sweep_samples(key, budget)) for budget in budgets}
        self.missing_total = sum(_count(ranges) for ranges in self.missing.values())
        sampling = dict(store.manifest["config"]["sampling"])
        sampling["stop"] = tuple(sampling.get("stop") or ())
        self.settings = SamplingSettings(**sampling)

    def timed_run(self, engine: Engine, progress: ProgressMode) -> tuple[int, float]:
        """``run``, and the seconds it took."""
        started = time.monotonic()
        generated = self.run(engine, progress)
        return generated, time.monotonic() - started

    def run(self, engine: Engine, progress: ProgressMode) -> int:
        """Generate and store every missing row; returns the tokens generated."""
        codec = engine.token_codec()
        if codec is None:
            raise EngineError(f"engine {type(engine).__name__} cannot tell where tokens end, which a sweep needs")
        problems = {problem.problem_id: problem for problem in self.store.problems()}
        union = _union(self.missing.values())
        chunk = engine.concurrent_samples() or DEFAULT_CHUNK_SAMPLES
        bar = Progress("sweeping", self.missing_total, mode=progress)
        rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
        requests: dict[tuple[str, int, int], GenerationRequest] = {}
        waiting: dict[tuple[str, int, int], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        generated = 0
        try:
            for batch in pending_samples(self.store.samples, union, SAMPLE_COLUMNS):
                problem = problems[batch.problem_id]
                prompt = engine.render_prompt(problem.prompt, self.response_prefix)
                for position, index in enumerate(batch.indices):
                    sample = {name: batch.columns[name][position] for name in SAMPLE_COLUMNS}
                    ends = codec.token_ends(sample["text"])
                    for budget in self._budgets_missing(batch.problem_id, index):
                        cut = cut_at(
                            sample["text"], ends, self.tags, budget, bool(sample["forced"]), sample["thinking_tokens"]
                        )
                        if not cut.forced:
                            rows[budget].append(_kept_row(batch.problem_id, index, sample, cut))
                            continue
                        assert cut.chars is not None
                        request_key = (batch.problem_id, index, cut.chars)
                        if request_key not in requests:
                            requests[request_key] = GenerationRequest(
                                problem_id=batch.problem_id,
                                prompt=prompt
                                + forced_thinking(sample["text"][: cut.chars], self.tags, self.forcing.answer_cue),
                                n=1,
                                first_index=index,
                                seed=request_seed(self.settings.seed, f"sweep:{batch.problem_id}:{cut.chars}", index),
                                max_tokens=self.forcing.answer_tokens,
                            )
                        waiting[request_key].append((budget, _forced_row(batch.problem_id, index, sample, cut)))
                if len(requests) >= chunk:
                    generated += self._generate(engine, requests, waiting, rows, bar)
                    requests, waiting = {}, defaultdict(list)
                    self._store_rows(rows, bar)
            generated += self._generate(engine, requests, waiting, rows, bar)
            self._store_rows(rows, bar)
        finally:
            bar.close()
        return generated

    def _budgets_missing(self, problem_id: str, index: int) -> Iterator[int]:
        for budget in self.budgets:
            if any(start <= index < stop for start, stop in self.missing[budget].get(problem_id, ())):
                yield budget

    def _generate(
        self,
        engine: Engine,
        requests: Mapping[tuple[str, int, int], GenerationRequest],
        waiting: Mapping[tuple[str, int, int], list[tuple[int, dict[str, Any]]]],
        rows: dict[int, list[dict[str, Any]]],
        bar: Progress,
    ) -> int:
        if not requests:
            return 0
        by_request = {(request.problem_id, request.first_index, request.seed): key for key, request in requests.items()}
        generated = 0
        streaming = {"on_tokens": bar.add_tokens} if accepts_on_tokens(engine) else {}
        for result in engine.generate(list(requests.values()), self.settings, **streaming):
            request = result.request
            answer = result.completions[0]
            generated += answer.n_tokens
            key = by_request[(request.problem_id, request.first_index, request.seed)]
            for budget, row in waiting[key]:
                row.update(
                    answer_text=self.forcing.answer_cue + answer.text,
                    n_tokens=row["thinking_tokens"] + answer.n_tokens,
                    answer_tokens=answer.n_tokens,
                    generated_tokens=answer.n_tokens,
                    finish_reason=answer.finish_reason,
                    seed=request.seed,
                )
                rows[budget].append(row)
        return generated

    def _store_rows(self, rows: dict[int, list[dict[str, Any]]], bar: Progress) -> None:
        """Write each budget's finished rows as one shard (a sample's rows at one budget are written once)."""
        for budget, finished in rows.items():
            if finished:
                shards = self.store.sweep_samples(self.key, budget)
                self.store.write_sweep(
                    shards, shards.table({name: [row[name] for row in finished] for name in shards.schema.names})
                )
                bar.update(len(finished), tokens=sum(row["generated_tokens"] for row in finished))
        rows.clear()


def _kept_row(problem_id: str, index: int, sample: Mapping[str, Any], cut: Cut) -> dict[str, Any]:
    """The row of a sample that budget forcing leaves as it is: its stored token figures (its thinking
    re-counted where the run does not know it)."""
    thinking = sample["thinking_tokens"] if sample["thinking_tokens"] is not None else cut.thinking_tokens
    n_tokens = sample["n_tokens"]
    return {
        "problem_id": problem_id,
        "sample_idx": index,
        "forced": False,
        "cut_chars": None,
        "answer_text": None,
        "n_tokens": n_tokens,
        "thinking_tokens": thinking,
        "answer_tokens": None if n_tokens is None else max(n_tokens - thinking, 0),
        "generated_tokens": 0,
        "finish_reason": sample["finish_reason"],
        "seed": sample["seed"],
    }


def _forced_row(problem_id: str, index: int, sample: Mapping[str, Any], cut: Cut) -> dict[str, Any]:
    """A forced sample's row, its answer's figures filled in when the answer comes."""
    return {
        "problem_id": problem_id,
        "sample_idx": index,
        "forced": True,
        "cut_chars": cut.chars,
        "thinking_tokens": cut.thinking_tokens,
    }


def _count(ranges: Ranges) -> int:
    return sum(stop - start for spans in ranges.values() for start, stop in spans)


def _union(all_ranges: Iterator[Ranges] | Any) -> Ranges:
    merged: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for ranges in all_ranges:
        for problem_id, spans in ranges.items():
            merged[problem_id].extend(spans)
    return {problem_id: merge_ranges(spans) for problem_id, spans in merged.items()}


def sweep_text(text: str, forced: bool, cut_chars: int | None, answer_text: str | None, tags: ThinkTags) -> str:
    """A sample's text at a budget: the stored text, or its cut thinking, the closing tag and the forced answer
    (``answer_text`` holds the cue)."""
    if not forced:
        return text
    assert cut_chars is not None
    return forced_thinking(text[:cut_chars], tags, "") + (answer_text or "")


def _judge_sweep(
    store: RunStore,
    key: str,
    budgets: list[int],
    verdict_key: str,
    judge: Any,
    judging: JudgingReasoning,
    workers: int | None,
    progress: ProgressMode,
) -> int:
    """The judging pass: every sweep row without a verdict, each distinct text of a problem judged once."""
    missing = {
        budget: {
            problem_id: todo
            for problem_id, ranges in store.sweep_samples(key, budget).ranges().items()
            if (
                todo := subtract_ranges(
                    ranges, store.sweep_verdicts(key, budget, verdict_key).ranges().get(problem_id, [])
                )
            )
        }
        for budget in budgets
    }
    total = sum(_count(ranges) for ranges in missing.values())
    if not total:
        return 0
    forced = {}
    for budget in budgets:
        table = store.sweep_samples(key, budget).read(["forced", "cut_chars", "answer_text"])
        for row in table.to_pylist():
            forced[(budget, row["problem_id"], row["sample_idx"])] = row
    references = {problem.problem_id: verification_reference(problem) for problem in store.problems()}
    union = _union(missing.values())
    bar = Progress("verifying", total, mode=progress)
    buffers: dict[int, list[tuple[str, int, Verdict]]] = defaultdict(list)

    def batches() -> Iterator[JudgeBatch]:
        for batch in pending_samples(store.samples, union, ("text",)):
            texts: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for index, text in zip(batch.indices, batch.texts):
                for budget in budgets:
                    if not any(start <= index < stop for start, stop in missing[budget].get(batch.problem_id, ())):
                        continue
                    row = forced[(budget, batch.problem_id, index)]
                    at_budget = sweep_text(text, row["forced"], row["cut_chars"], row["answer_text"], judging.tags)
                    texts[at_budget].append((budget, index))
            unique = list(texts)
            yield JudgeBatch(batch.problem_id, list(range(len(unique))), unique, [texts[text] for text in unique])

    def collect(piece: JudgeBatch, verdicts: list[Verdict]) -> None:
        judged = 0
        for position, verdict in zip(piece.indices, verdicts):
            for budget, index in piece.tag[position]:
                buffers[budget].append((piece.problem_id, index, verdict))
                judged += 1
        bar.update(judged)
        if sum(len(rows) for rows in buffers.values()) >= 5000:
            flush()

    def flush() -> None:
        for budget, rows in buffers.items():
            if rows:
                shards = store.sweep_verdicts(key, budget, verdict_key)
                store.write_sweep(shards, shards.table(_verdict_rows(rows)))
        buffers.clear()

    try:
        judge_batches(batches(), judge, references, judging.splits, collect, workers=workers)
    finally:
        flush()
        bar.close()
    return total


def _verdict_rows(rows: Sequence[tuple[str, int, Verdict]]) -> dict[str, list[Any]]:
    return {
        "problem_id": [problem_id for problem_id, _, _ in rows],
        "sample_idx": [index for _, index, _ in rows],
        "correct": [verdict.correct for _, _, verdict in rows],
        "reason": [verdict.reason for _, _, verdict in rows],
        "answer": [verdict.answer for _, _, verdict in rows],
        "detail": [verdict.detail[:500] for _, _, verdict in rows],
    }


def sweep_report(
    store: RunStore,
    key: str,
    verdict_key: str,
    budgets: Sequence[int],
    seconds: float,
    generated: int,
    judged: int,
    engine_start_seconds: float | None = None,
) -> SweepReport:
    """What the sweep holds at ``budgets`` and what this call did, beside what sampling each budget afresh
    would have generated (every sample's tokens at that budget) and taken at the run's measured throughput."""
    entries: list[SweepBudget] = []
    for budget in budgets:
        rows = store.sweep_samples(key, budget).read(["forced", "n_tokens", "generated_tokens"])
        verdicts = store.sweep_verdicts(key, budget, verdict_key).read(["correct", "reason"])
        correct = verdicts.column("correct").to_pylist()
        entries.append(
            {
                "budget": int(budget),
                "samples": rows.num_rows,
                "forced": int(sum(bool(value) for value in rows.column("forced").to_pylist())),
                "generated_tokens": int(sum(rows.column("generated_tokens").to_pylist())),
                "afresh_tokens": int(sum(value or 0 for value in rows.column("n_tokens").to_pylist())),
                "verified": len(correct),
                "pass_at_1": sum(correct) / len(correct) if correct else None,
                "reasons": dict(Counter(verdicts.column("reason").to_pylist())),
            }
        )
    rate = store.usage().get("output_tokens_per_second")
    afresh = sum(entry["afresh_tokens"] for entry in entries)
    stored = sum(entry["generated_tokens"] for entry in entries)
    return {
        "run": str(store.path),
        "sweep": key,
        "verdict_set": verdict_key,
        "description": store.sweeps()[key],
        "budgets": entries,
        "generated_tokens": generated,
        "seconds": round(seconds, 3),
        "engine_start_seconds": None if engine_start_seconds is None else round(engine_start_seconds, 3),
        "verified": judged,
        "stored_generated_tokens": stored,
        "afresh_tokens": afresh,
        "afresh_seconds": None if not rate else afresh / rate,
        "sampling_tokens_per_second": rate,
    }


def read_sweep_table(store: RunStore, key: str, budget: int, verdict_key: str) -> pa.Table:
    """A budget's rows joined with their verdicts (samples without one left out), sorted by key."""
    rows = store.sweep_samples(key, budget).read(["forced", "n_tokens", "thinking_tokens", "answer_tokens"])
    verdicts = store.sweep_verdicts(key, budget, verdict_key).read(["correct", "reason", "answer"])
    return rows.join(verdicts, ["problem_id", "sample_idx"], join_type="inner").sort_by(
        [("problem_id", "ascending"), ("sample_idx", "ascending")]
    )
