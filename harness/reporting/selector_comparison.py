"""Compare selectors with coverage on a run: how much of "some sample is right" a selector recovers.

Reads a run directory's verdicts (correctness and extracted answers), score sets and sample log-probs,
computes accuracy@k of each selector (``harness.metrics.selection``) next to pass@k, with intervals over problems
(the content of ``verifiers.json``; ``harness.reporting.selectors`` prints, plots and writes it).

Selectors (comma separated in ``parse_selectors``):

* ``coverage``: pass@k, the ceiling (some sample of the k is right).
* ``majority``: majority vote over extracted answers.
* ``orm[=SET]``: best-of-k by a score set's per-sample scores (an outcome reward model, or imported scores).
* ``prm[=SET]``: best-of-k by a score set's step scores, aggregated per sample by ``aggregate``.
* ``weighted[=SET]``: vote with each answer's support the sum of its samples' scores (step scores
  aggregated where the set has no per-sample score).
* ``likelihood``: best-of-k by the sample's mean token log-probability, recorded at sampling time.
* ``conf-min-window``, ``conf-tail``, ``conf-bottom10``: best-of-k by a confidence statistic recorded at sampling
  time (DeepConf's lowest group, tail and bottom-10% group confidence; ``harness.metrics.confidence_selectors``).
* ``conf-majority=ETA``: majority vote among the most confident ETA% of the k samples (DeepConf's filtering).
* ``genselect[=SET]``: a judge model's pick among k samples, stored by ``ttc genselect`` (a selection set); its
  accuracy@k is the mean over the random k-subsets the judge was shown, with its Monte-Carlo error.

Without ``=SET`` the run's only suitable score set is used. Samples are those with a verdict; scores are
matched to them by (problem, sample index).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness.core.errors import OptionError, RunStoreError, check_choice, check_number
from harness.engines.reward_steps import STEP_AGGREGATES, aggregate_steps
from harness.metrics.confidence_selectors import (
    CONF_MAJORITY,
    CONF_MAJORITY_STATISTIC,
    CONFIDENCE_SELECTORS,
    confidence_best_of_k,
    confidence_filtered_vote_curves,
    parse_eta,
)
from harness.metrics.confidence_selectors import DESCRIPTIONS as CONFIDENCE_DESCRIPTIONS
from harness.metrics.estimators import bootstrap_mean_interval, log_spaced_ks, pass_at_k
from harness.metrics.selection import Estimate, best_of_k_curves, majority_vote_curves, weighted_vote_curves
from harness.store import RunStore

GENSELECT = "genselect"
SELECTOR_KINDS = (
    "coverage",
    "majority",
    "orm",
    "prm",
    "weighted",
    "likelihood",
    *CONFIDENCE_SELECTORS,
    CONF_MAJORITY,
    GENSELECT,
)
SCORED_KINDS = ("orm", "prm", "weighted")
NAMED_KINDS = (*SCORED_KINDS, GENSELECT)  # take =SET
VOTING_KINDS = ("majority", "weighted", CONF_MAJORITY)  # need extracted answers
DESCRIPTIONS = {
    "coverage": "pass@k: some sample of the k is correct",
    "majority": "majority vote over extracted answers (ties split evenly)",
    "orm": "best-of-k by per-sample score",
    "prm": "best-of-k by aggregated step scores",
    "weighted": "vote weighted by the sum of scores per answer",
    "likelihood": "best-of-k by mean token log-probability",
    **CONFIDENCE_DESCRIPTIONS,
    GENSELECT: "a judge model's pick among the k samples (generative selection)",
}
# conf-majority in the default comparison: DeepConf@low's filter, the most confident 10%
DEFAULT_ETA = 10.0


@dataclass(frozen=True)
class SelectorSpec:
    """One selector to compare: a kind and, for score-based kinds, the score set it reads; for ``conf-majority``
    the percentage ``eta`` of the k it keeps."""

    kind: str
    score_set: str | None = None
    eta: float | None = None

    @property
    def label(self) -> str:
        if self.eta is not None:
            return f"{self.kind}={self.eta:g}"
        return self.kind if self.score_set is None else f"{self.kind}={self.score_set}"


def parse_selectors(text: str) -> list[SelectorSpec]:
    """``"coverage,majority,orm=my-rm"`` -> specs (clear errors for unknown kinds and duplicates)."""
    specs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kind, _, named_set = item.partition("=")
        kind, score_set = kind.strip(), named_set.strip() or None
        if kind not in SELECTOR_KINDS:
            raise OptionError("selectors", f"unknown selector {kind!r}; choose from {', '.join(SELECTOR_KINDS)}")
        if kind == CONF_MAJORITY:
            if score_set is None:
                raise OptionError(
                    "selectors", "conf-majority=ETA needs the percentage ETA of the k it keeps, in (0, 100]"
                )
            spec = SelectorSpec(kind, eta=parse_eta(score_set))
        elif score_set is not None and kind not in NAMED_KINDS:
            raise OptionError("selectors", f"selector {kind!r} takes no score set (got {item!r})")
        else:
            spec = SelectorSpec(kind, score_set)
        if spec in specs:
            raise OptionError("selectors", f"selector {item!r} is listed twice")
        specs.append(spec)
    if not specs:
        raise OptionError("selectors", "none given")
    return specs


def parse_ks(text: str) -> list[int]:
    """``"1,2,4,8"`` -> [1, 2, 4, 8] (sorted, distinct, positive)."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise OptionError("ks", f"must be comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise OptionError("ks", f"values must be positive integers, got {text!r}")
    return ks


@dataclass
class JudgedSamples:
    """A run's judged samples, grouped by problem (in the run's problem order).

    ``starts[p]:starts[p+1]`` are problem p's rows in the flat arrays, sorted by sample index.
    """

    problem_ids: list[str]
    starts: np.ndarray
    sample_idx: np.ndarray
    correct: np.ndarray
    answer_codes: np.ndarray  # run-wide code per distinct answer; -1 for no answer
    verdict_set: str

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        return [values[a:b] for a, b in zip(self.starts[:-1], self.starts[1:])]

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    def align(self, table: pa.Table, what: str) -> np.ndarray:
        """Row of ``table`` (with problem_id, sample_idx) for each judged sample; error if any is missing."""
        count = len(self.sample_idx)
        problem_of_row = np.repeat(np.arange(len(self.problem_ids)), self.sizes)
        wanted = pa.table(
            {
                "problem_id": pc.take(pa.array(self.problem_ids, pa.string()), pa.array(problem_of_row)),
                "sample_idx": pa.array(self.sample_idx, pa.int32()),
                "judged_row": pa.array(np.arange(count)),
            }
        )
        have = pa.table(
            {
                "problem_id": table.column("problem_id"),
                "sample_idx": table.column("sample_idx").cast(pa.int32()),
                "table_row": pa.array(np.arange(table.num_rows)),
            }
        )
        joined = wanted.join(have, ["problem_id", "sample_idx"], join_type="left outer", use_threads=False)
        rows = np.full(count, -1, dtype=np.int64)
        rows[joined.column("judged_row").to_numpy()] = pc.fill_null(joined.column("table_row"), -1).to_numpy()
        missing = np.flatnonzero(rows < 0)
        if missing.size:
            first = int(missing[0])
            raise RunStoreError(
                f"{what} lacks {missing.size} of the {count} judged samples "
                f"(first: problem {self.problem_ids[problem_of_row[first]]!r} sample {int(self.sample_idx[first])})"
            )
        return rows


def load_judged_samples(store: RunStore, verifier: str | None = None) -> JudgedSamples:
    """Correctness and extracted answers of every judged sample of ``store``."""
    key = store.resolve_verdict_key(verifier)
    table = store.current_verdicts(key, ["correct", "answer"])
    if table.num_rows == 0:
        raise RunStoreError(f"{store.path}: verdict set {key} is empty")
    problems = store.problems()
    order = {problem.problem_id: index for index, problem in enumerate(problems)}
    # rows come sorted by problem id: find each problem's block, then put blocks in the run's problem order
    column = table.column("problem_id").combine_chunks()
    changes = pc.not_equal(column.slice(1), column.slice(0, len(column) - 1)).to_numpy(zero_copy_only=False)
    bounds = np.concatenate([[0], np.flatnonzero(changes) + 1, [len(column)]])
    problem_ids = pc.take(column, pa.array(bounds[:-1])).to_pylist()
    store.check_known_problems(problem_ids, "verdicts", problems)
    counts = np.diff(bounds)
    ranked = sorted(range(len(problem_ids)), key=lambda i: order[problem_ids[i]])
    rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in ranked])
    table = table.take(pa.array(rows))
    sizes = counts[ranked]
    codes = pc.dictionary_encode(table.column("answer").combine_chunks()).indices
    return JudgedSamples(
        problem_ids=[problem_ids[i] for i in ranked],
        starts=np.concatenate([[0], np.cumsum(sizes)]),
        sample_idx=table.column("sample_idx").to_numpy(),
        correct=table.column("correct").to_numpy(zero_copy_only=False).astype(bool),
        answer_codes=pc.fill_null(codes, -1).to_numpy(zero_copy_only=False).astype(np.int64),
        verdict_set=key,
    )


def _score_set_kinds(store: RunStore, name: str) -> tuple[bool, bool]:
    """Whether score set ``name`` has per-sample scores and whether it has step scores (for every row)."""
    table = store.scores(name).read(["score", "step_scores"])
    if table.num_rows == 0:
        return False, False
    return table.column("score").null_count == 0, table.column("step_scores").null_count == 0


def _named_set(store: RunStore, name: str, sets: Mapping[str, Any], what: str) -> str:
    """``name``, once ``sets`` (the run's score or selection sets) are known to hold it."""
    if name not in sets:
        raise OptionError("selectors", f"{store.path} has no {what} {name!r}; it has {sorted(sets) or 'none'}")
    return name


def resolve_score_set(store: RunStore, spec: SelectorSpec) -> str:
    """The score set a selector reads: the one named, else the run's only suitable one."""
    sets = store.score_sets()
    if spec.score_set is not None:
        return _named_set(store, spec.score_set, sets, "score set")
    kinds = {name: _score_set_kinds(store, name) for name in sets}
    if spec.kind == "prm":
        suitable = [name for name, (_, steps) in kinds.items() if steps]
    else:
        suitable = [name for name, (scores, _) in kinds.items() if scores]
        if not suitable and spec.kind == "weighted":
            suitable = [name for name, (_, steps) in kinds.items() if steps]
    if len(suitable) == 1:
        return suitable[0]
    if not suitable:
        raise OptionError(
            "selectors",
            f"selector {spec.kind!r} needs a score set with {'step' if spec.kind == 'prm' else 'per-sample'} "
            f"scores; {store.path} has {sorted(sets) or 'none'}. Run `ttc score` or `ttc import-scores` first.",
        )
    raise OptionError(
        "selectors",
        f"several score sets suit {spec.kind!r}: {sorted(suitable)}; name one, e.g. {spec.kind}={suitable[0]}",
    )


def sample_scores(
    store: RunStore, judged: JudgedSamples, name: str, aggregate: str, use_steps: bool
) -> tuple[np.ndarray, str | None]:
    """Per judged sample: its score in set ``name``, or the ``aggregate`` of its step scores when
    ``use_steps`` or when the set has no per-sample scores. Returns (scores, the aggregate used or None)."""
    table = store.scores(name).read(["score", "step_scores"])
    table = table.take(pa.array(judged.align(table, f"score set {name!r}")))
    if not use_steps and table.column("score").null_count == 0:
        return table.column("score").to_numpy(zero_copy_only=False).astype(np.float64), None
    steps = table.column("step_scores")
    if steps.null_count:
        what = "step scores" if use_steps else "scores"
        raise RunStoreError(f"score set {name!r} has no {what} for {steps.null_count} judged samples")
    return aggregate_steps(steps.to_pylist(), aggregate), aggregate


def mean_logprobs(store: RunStore, judged: JudgedSamples) -> np.ndarray:
    """Per judged sample: mean token log-probability (-inf for an empty completion)."""
    table = store.read_samples(columns=["logprob_sum", "n_tokens"])
    table = table.take(pa.array(judged.align(table, "the samples")))
    logprob = table.column("logprob_sum")
    tokens = table.column("n_tokens")
    if logprob.null_count or tokens.null_count:
        raise OptionError(
            "selectors",
            f"{store.path}: {max(logprob.null_count, tokens.null_count)} samples have no recorded log-probability "
            "(imported samples, or an engine without log-probs); the likelihood selector needs them",
        )
    total = logprob.to_numpy(zero_copy_only=False).astype(np.float64)
    count = tokens.to_numpy(zero_copy_only=False).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), -np.inf)


def sample_confidence(store: RunStore, judged: JudgedSamples, statistic: str) -> tuple[np.ndarray, str]:
    """Per judged sample: its confidence ``statistic`` (``ConfidenceStats`` field) recorded at sampling time, and
    the settings it was computed with. Refused where samples lack it or were computed with other settings."""
    column = f"conf_{statistic}"
    table = store.read_samples(columns=[column, "conf_settings"])
    table = table.take(pa.array(judged.align(table, "the samples")))
    values, settings = table.column(column), table.column("conf_settings")
    if values.null_count:
        raise OptionError(
            "selectors",
            f"{store.path}: {values.null_count} samples have no confidence statistics (sampled before ttc recorded "
            "them, imported, or by an engine without log-probabilities); the conf-* selectors need them",
        )
    distinct = pc.unique(settings).to_pylist()
    if len(distinct) > 1:
        raise OptionError(
            "selectors",
            f"{store.path}: the samples' confidence statistics were computed with different settings ({distinct}); "
            "they do not compare",
        )
    return values.to_numpy(zero_copy_only=False).astype(np.float64), str(distinct[0])


def resolve_selection_set(store: RunStore, spec: SelectorSpec) -> str:
    """The selection set ``genselect`` reads: the one named, else the run's only one."""
    sets = store.selection_sets()
    if spec.score_set is not None:
        return _named_set(store, spec.score_set, sets, "selection set")
    if len(sets) == 1:
        return next(iter(sets))
    if not sets:
        raise OptionError(
            "selectors", f"{store.path} has no generative selections: run `ttc genselect {store.path} --judge-model M`"
        )
    raise OptionError("selectors", f"several selection sets: {sorted(sets)}; name one, e.g. genselect={min(sets)}")


def genselect_curves(
    store: RunStore, judged: JudgedSamples, spec: SelectorSpec, ks: np.ndarray, info: dict[str, Any]
) -> tuple[Estimate, dict[str, Any]]:
    """accuracy@k of a judge's picks: per problem and k, the mean correctness of its pick over the k-subsets it
    was shown (a pick its reply did not name counts as a random candidate: the subset's share correct); k = 1
    is pass@1. Monte-Carlo over the stored subsets, with their variance."""
    name = resolve_selection_set(store, spec)
    description = store.selection_sets()[name]
    allowed = {1, *description.get("ks", [])}
    outside = [int(k) for k in ks if int(k) not in allowed]
    if outside:
        raise OptionError(
            "ks", f"genselect={name} was run at k = {sorted(allowed)}; compare at those (--k), not at {outside}"
        )
    table = store.selections(name).read(["k", "candidates", "choice", "prompt_tokens", "output_tokens"])
    correct_of = {
        (problem_id, int(index)): bool(value)
        for problem_id, start, stop in zip(judged.problem_ids, judged.starts[:-1], judged.starts[1:])
        for index, value in zip(judged.sample_idx[start:stop], judged.correct[start:stop])
    }
    outcomes: dict[tuple[str, int], list[float]] = {}
    unparsed = 0
    for problem_id, k, candidates, choice in zip(
        *(table.column(column).to_pylist() for column in ("problem_id", "k", "candidates", "choice"))
    ):
        try:
            if choice >= 0:
                value = float(correct_of[(problem_id, choice)])
            else:
                unparsed += 1
                value = float(np.mean([correct_of[(problem_id, index)] for index in candidates]))
        except KeyError:
            raise RunStoreError(
                f"selection set {name!r} shows problem {problem_id!r} samples that verdict set {judged.verdict_set} "
                "has not judged"
            ) from None
        outcomes.setdefault((problem_id, int(k)), []).append(value)
    values = np.zeros((len(judged.problem_ids), ks.size))
    variances = np.zeros_like(values)
    exact = np.zeros(values.shape, dtype=bool)
    draws = 0
    for row, problem_id in enumerate(judged.problem_ids):
        correct = judged.correct[judged.starts[row] : judged.starts[row + 1]]
        for column, k in enumerate(ks):
            if int(k) == 1:
                values[row, column], exact[row, column] = float(correct.mean()), True
                continue
            picks = outcomes.get((problem_id, int(k)))
            if not picks:
                raise RunStoreError(
                    f"selection set {name!r} has no judge call for problem {problem_id!r} at k = {int(k)}: run "
                    f"`ttc genselect {store.path} --name {name}` again to finish it"
                )
            values[row, column] = float(np.mean(picks))
            variances[row, column] = float(np.var(picks, ddof=1)) / len(picks) if len(picks) > 1 else 0.0
            draws = max(draws, len(picks))
    columns = ("prompt_tokens", "output_tokens")
    info.update(
        selection_set=name,
        judge=description.get("model"),
        judge_tokens={
            "calls": table.num_rows,
            **{column: int(pc.sum(table.column(column)).as_py() or 0) for column in columns},
        },
        unparsed_picks=unparsed,
    )
    return Estimate(ks, values, variances, exact, draws), info


def has_confidence(store: RunStore) -> bool:
    """Whether every stored sample has confidence statistics."""
    samples = store.read_samples(columns=["conf_bottom_window"])
    return bool(samples.num_rows) and samples.column("conf_bottom_window").null_count == 0


def available_selectors(store: RunStore, judged: JudgedSamples) -> list[SelectorSpec]:
    """Every selector the run's data allows: the default of ``compare-verifiers``."""
    specs = [SelectorSpec("coverage")]
    answers = bool((judged.answer_codes >= 0).any())
    if answers:
        specs.append(SelectorSpec("majority"))
    for name in store.score_sets():
        scores, steps = _score_set_kinds(store, name)
        if scores:
            specs.append(SelectorSpec("orm", name))
        if steps:
            specs.append(SelectorSpec("prm", name))
        if answers and (scores or steps):
            specs.append(SelectorSpec("weighted", name))
    samples = store.read_samples(columns=["logprob_sum"])
    if samples.num_rows and samples.column("logprob_sum").null_count == 0:
        specs.append(SelectorSpec("likelihood"))
    if has_confidence(store):
        specs += [SelectorSpec(kind) for kind in CONFIDENCE_SELECTORS]
        if answers:
            specs.append(SelectorSpec(CONF_MAJORITY, eta=DEFAULT_ETA))
    return specs


def estimate(
    store: RunStore,
    judged: JudgedSamples,
    spec: SelectorSpec,
    ks: np.ndarray,
    *,
    aggregate: str = "min",
    subsets: int | None = None,
    seed: int = 0,
) -> tuple[Estimate, dict[str, Any]]:
    """Per-problem accuracy@k of one selector, and what it read (score set, aggregate)."""
    correct = judged.split(judged.correct)
    info: dict[str, Any] = {"description": DESCRIPTIONS[spec.kind]}
    if spec.kind in VOTING_KINDS and not (judged.answer_codes >= 0).any():
        raise OptionError(
            "selectors",
            f"selector {spec.kind!r} votes over extracted answers, and verdict set {judged.verdict_set} has none "
            "(its verifier extracts none: an LLM judge does not, nor python-tests where prompts show no examples)",
        )
    if spec.kind == "coverage":
        sizes, right = judged.sizes, np.array([c.sum() for c in correct])
        values = pass_at_k(sizes[:, None], right[:, None], ks[None, :])
        return Estimate(ks, values, np.zeros_like(values), np.ones(values.shape, dtype=bool)), info
    if spec.kind == "majority":
        return majority_vote_curves(judged.split(judged.answer_codes), correct, ks, subsets=subsets, seed=seed), info
    if spec.kind == "likelihood":
        return best_of_k_curves(judged.split(mean_logprobs(store, judged)), correct, ks), info
    if spec.kind == GENSELECT:
        return genselect_curves(store, judged, spec, ks, info)
    if spec.kind in CONFIDENCE_SELECTORS:
        values, info["confidence"] = sample_confidence(store, judged, CONFIDENCE_SELECTORS[spec.kind])
        return confidence_best_of_k(judged.split(values), correct, ks), info
    if spec.kind == CONF_MAJORITY:
        values, info["confidence"] = sample_confidence(store, judged, CONF_MAJORITY_STATISTIC)
        answers = judged.split(judged.answer_codes)
        eta = DEFAULT_ETA if spec.eta is None else spec.eta
        curve = confidence_filtered_vote_curves(
            answers, correct, judged.split(values), ks, eta=eta, subsets=subsets, seed=seed
        )
        return curve, info
    name = resolve_score_set(store, spec)
    info["score_set"] = name
    scores, used_aggregate = sample_scores(store, judged, name, aggregate, use_steps=spec.kind == "prm")
    if used_aggregate:
        info["aggregate"] = used_aggregate
    if spec.kind == "weighted":
        answers = judged.split(judged.answer_codes)
        return weighted_vote_curves(answers, correct, judged.split(scores), ks, subsets=subsets, seed=seed), info
    return best_of_k_curves(judged.split(scores), correct, ks), info


def compare_verifiers(
    store: RunStore,
    selectors: Sequence[SelectorSpec] | None = None,
    ks: Sequence[int] | None = None,
    *,
    verifier: str | None = None,
    aggregate: str = "min",
    subsets: int | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> dict[str, Any]:
    """Accuracy@k of each selector and pass@k, with intervals over problems (the ``verifiers.json`` content)."""
    check_choice("aggregate", aggregate, STEP_AGGREGATES)
    check_number("subsets", subsets, at_least=1, integer=True)
    check_number("seed", seed, at_least=0)
    check_number("confidence", confidence, above=0, below=1)
    judged = load_judged_samples(store, verifier)
    smallest = int(judged.sizes.min())
    ks_array = np.asarray(log_spaced_ks(smallest) if ks is None else sorted(set(ks)), dtype=np.int64)
    if ks_array[-1] > smallest:
        raise OptionError(
            "ks", f"k = {int(ks_array[-1])} exceeds the judged samples of some problem (smallest n is {smallest})"
        )
    specs = list(selectors) if selectors is not None else available_selectors(store, judged)
    results = []
    for spec in specs:
        curve, info = estimate(store, judged, spec, ks_array, aggregate=aggregate, subsets=subsets, seed=seed)
        low, high = bootstrap_mean_interval(curve.values, confidence=confidence, resamples=resamples, seed=seed)
        exact_share = float(curve.exact.mean())
        results.append(
            {
                "selector": spec.label,
                "kind": spec.kind,
                **info,
                "method": "exact" if exact_share == 1 else ("monte-carlo" if exact_share == 0 else "exact+monte-carlo"),
                "subsets": curve.subsets or None,
                "accuracy": curve.mean().tolist(),
                "low": low.tolist(),
                "high": high.tolist(),
                "monte_carlo_se": curve.monte_carlo_standard_error().tolist(),
            }
        )
    return {
        "run": str(store.path),
        "model": store.manifest.get("model", {}).get("name"),
        "verdict_set": judged.verdict_set,
        "problems": len(judged.problem_ids),
        "samples_per_problem": {"min": smallest, "max": int(judged.sizes.max())},
        "confidence": confidence,
        "seed": seed,
        "ks": ks_array.tolist(),
        "selectors": results,
    }
