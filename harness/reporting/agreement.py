"""How often one verifier agrees with another on a run: ``ttc agreement RUN_DIR --verdicts A --against B``.

A and B name what judged the run's samples: a verdict set (by key or verifier name, as ``ttc verify
--verifier`` and ``ttc analyze --verifier`` take them; ``imported`` for imported verdicts), or a score set turned
into verdicts by ``threshold`` (a score at or above it says "correct"). B is the reference. Over the samples both
judged, ``harness.metrics.agreement`` gives the confusion matrix, precision, recall, the false-positive and
false-negative rates with intervals clustered by problem, Cohen's kappa and, where A has a score (a score set, a
judge's probability of "yes"), the AUROC. The samples A and B disagree on come with their texts, for reading.

The result's JSON (``AgreementResult.to_json``) is what ``ttc analyze --verifier-error-from FILE`` reads: the
rates measured on an audited subset then correct the pass@k of the whole run (``harness.metrics.verifier_error``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness.core.errors import OptionError, RunStoreError, check_number
from harness.metrics.agreement import Agreement, agreement
from harness.store import RunStore

# The texts of disagreeing samples are kept whole up to this many characters (the rest is cut, and said so).
TEXT_CHARS = 20_000


@dataclass(frozen=True)
class JudgementSource:
    """Where one side's verdicts come from.

    Attributes:
        name: as given (``--verdicts`` or ``--against``).
        kind: ``"verdicts"`` or ``"scores"``.
        key: the verdict set's key, or the score set's name.
        description: the verifier's description (``verifier.json``) or how the scores were made (``scorer.json``).
        threshold: for a score set, the score at or above which a sample counts as correct.
    """

    name: str
    kind: str
    key: str
    description: Mapping[str, Any]
    threshold: float | None = None

    @property
    def file_key(self) -> str:
        """How the side is named in file names: its key, then the threshold applied to its scores."""
        key = self.key if self.kind == "verdicts" else f"scores-{self.key}"
        return _safe(key if self.threshold is None else f"{key}-ge{self.threshold:g}")

    def to_json(self) -> dict[str, Any]:
        fields = {"name": self.name, "kind": self.kind, "key": self.key, "description": dict(self.description)}
        return fields | ({"threshold": self.threshold} if self.threshold is not None else {})


@dataclass(frozen=True)
class AgreementResult:
    """The agreement of ``verdicts`` with the reference ``against`` on one run.

    Attributes:
        run: the run directory.
        verdicts, against: the two sides (A and the reference B).
        agreement: the statistics (``harness.metrics.agreement.Agreement``).
        only_verdicts, only_against: samples judged by one side only (left out of the comparison).
        disagreements: the samples A and B disagree on, one dict each: problem, sample index, each side's
            verdict, reason, answer and score, and the sample's text.
    """

    run: str
    verdicts: JudgementSource
    against: JudgementSource
    agreement: Agreement
    only_verdicts: int
    only_against: int
    disagreements: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The result as ``ttc agreement --json`` prints it and ``agreement-A-vs-B.json`` holds it (without the
        disagreeing samples themselves, which go to their JSONL file)."""
        return {
            "run": self.run,
            "verdicts": self.verdicts.to_json(),
            "against": self.against.to_json(),
            "only_verdicts": self.only_verdicts,
            "only_against": self.only_against,
            **self.agreement.to_dict(),
        }

    @property
    def file_stem(self) -> str:
        """``agreement-A-vs-B``: the name of the files it is written to in the run directory."""
        return f"agreement-{self.verdicts.file_key}-vs-{self.against.file_key}"


def _safe(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name)


def parse_threshold(value: float | str | None) -> float | None:
    """``--threshold``: a finite number (text from the command line is parsed here, so a bad one is one line)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise OptionError("threshold", f"must be a number, got {value!r}") from None
    check_number("threshold", value)
    return float(value)


def resolve_source(store: RunStore, name: str, threshold: float | None, parameter: str) -> JudgementSource:
    """What ``name`` names in ``store``: a verdict set (by key or verifier name) first; with ``threshold``, a score
    set (or, for ``verdicts``, a verdict set's own scores, e.g. a judge's probability of "yes")."""
    if not isinstance(name, str) or not name.strip():
        raise OptionError(parameter, "names no verdict set or score set (empty)")
    verdict_sets = store.verdict_sets()
    score_sets = store.score_sets()
    if threshold is not None and name in score_sets:
        return JudgementSource(name, "scores", name, score_sets[name], threshold)
    if name in verdict_sets or any(info.get("name") == name for info in verdict_sets.values()):
        key = store.resolve_verdict_key(name)
        if threshold is not None and parameter == "verdicts" and _has_scores(store, key):
            return JudgementSource(name, "verdicts", key, verdict_sets[key], threshold)
        return JudgementSource(name, "verdicts", key, verdict_sets[key])
    if name in score_sets:
        raise OptionError(parameter, f"{name!r} is a score set: give --threshold T to count a score >= T as correct")
    names = sorted({info.get("name", key) for key, info in verdict_sets.items()} | set(verdict_sets))
    raise OptionError(
        parameter,
        f"{store.path} has no verdict set or score set {name!r}; verdict sets: {names or 'none'}, score sets: "
        f"{sorted(score_sets) or 'none'}",
    )


def _has_scores(store: RunStore, key: str) -> bool:
    """Whether every verdict of set ``key`` carries a probability of being correct (a judge's P(yes))."""
    scores = store.verdicts(key).read(["probability"]).column("probability")
    return len(scores) > 0 and scores.null_count == 0


def judgements(store: RunStore, source: JudgementSource) -> pa.Table:
    """One side's judgements: problem_id, sample_idx, correct, score (a score set's, or a verdict set's
    probability; null where none), reason, answer."""
    if source.kind == "scores":
        table = store.scores(source.key).read(["score"])
        scores = table.column("score")
        if table.num_rows == 0:
            raise RunStoreError(f"{store.path}: score set {source.key!r} is empty")
        if scores.null_count:
            raise OptionError(
                "threshold", f"score set {source.key!r} has no per-sample score for {scores.null_count} samples"
            )
        correct = pc.greater_equal(scores, pa.scalar(source.threshold, pa.float64()))
        rows = table.num_rows
        return pa.table(
            {
                "problem_id": table.column("problem_id"),
                "sample_idx": table.column("sample_idx"),
                "correct": correct,
                "score": scores,
                "reason": pa.array([None] * rows, pa.string()),
                "answer": pa.array([None] * rows, pa.string()),
            }
        )
    table = store.verdicts(source.key).read(["correct", "probability", "reason", "answer"])
    table = table.rename_columns(["score" if name == "probability" else name for name in table.column_names])
    if table.num_rows == 0:
        raise RunStoreError(f"{store.path}: verdict set {source.key} is empty")
    if source.threshold is not None:  # a verdict set's own probabilities, thresholded
        scores = table.column("score")
        if scores.null_count:
            raise OptionError(
                "threshold",
                f"verdict set {source.key} has no score for {scores.null_count} samples; --threshold applies to "
                "a score set or a verdict set with scores (a judge's)",
            )
        correct = pc.greater_equal(scores, pa.scalar(source.threshold, pa.float64()))
        table = table.set_column(table.column_names.index("correct"), "correct", correct)
    return table


def run_agreement(
    store: RunStore,
    verdicts: str,
    against: str,
    *,
    threshold: float | str | None = None,
    confidence: float = 0.95,
    text_chars: int = TEXT_CHARS,
) -> AgreementResult:
    """The agreement of ``verdicts`` (A) with the reference ``against`` (B) on ``store``'s samples (see the module
    docstring). Refuses the same set on both sides, a set the run lacks and a threshold that is not a number."""
    check_number("confidence", confidence, above=0, below=1)
    threshold = parse_threshold(threshold)
    a = resolve_source(store, verdicts, threshold, "verdicts")
    b = resolve_source(store, against, threshold, "against")
    if threshold is not None and a.threshold is None and b.threshold is None:
        raise OptionError("threshold", "applies to a score set (or a verdict set with scores), and neither side is one")
    if (a.kind, a.key) == (b.kind, b.key) and a.threshold == b.threshold:
        raise OptionError("against", f"compares {a.kind[:-1]} set {a.key} with itself; name another verdict set")
    left, right = judgements(store, a), judgements(store, b)
    joined = left.join(
        right, ["problem_id", "sample_idx"], join_type="inner", left_suffix="_a", right_suffix="_b", use_threads=False
    ).sort_by([("problem_id", "ascending"), ("sample_idx", "ascending")])
    if joined.num_rows == 0:
        raise RunStoreError(f"{store.path}: {a.name!r} and {b.name!r} judged no sample in common")
    store.check_known_problems(pc.unique(joined.column("problem_id")).to_pylist(), "verdicts")
    problem_ids = joined.column("problem_id").to_numpy(zero_copy_only=False)
    correct_a = joined.column("correct_a").to_numpy(zero_copy_only=False).astype(bool)
    correct_b = joined.column("correct_b").to_numpy(zero_copy_only=False).astype(bool)
    scores = joined.column("score_a")
    score_values = None if scores.null_count else scores.to_numpy(zero_copy_only=False).astype(np.float64)
    result = agreement(correct_a, correct_b, problem_ids, scores=score_values, confidence=confidence)
    rows = [int(row) for row in result.disagreements]
    return AgreementResult(
        run=str(store.path),
        verdicts=a,
        against=b,
        agreement=result,
        only_verdicts=left.num_rows - joined.num_rows,
        only_against=right.num_rows - joined.num_rows,
        disagreements=_disagreeing_samples(store, joined, rows, text_chars),
    )


def _disagreeing_samples(store: RunStore, joined: pa.Table, rows: list[int], text_chars: int) -> list[dict[str, Any]]:
    """The rows of ``joined`` A and B disagree on, with each side's judgement and the sample's text."""
    if not rows:
        return []
    chosen = joined.take(pa.array(rows)).to_pylist()
    wanted = sorted({row["problem_id"] for row in chosen})
    samples = store.read_samples(["text"], problem_ids=wanted).to_pylist()
    texts = {(row["problem_id"], row["sample_idx"]): row["text"] or "" for row in samples}
    lines = []
    for row in chosen:
        text = texts.get((row["problem_id"], row["sample_idx"]), "")
        if len(text) > text_chars:
            text = text[:text_chars] + f"... [{len(text) - text_chars:,} more characters]"
        line: dict[str, Any] = {"problem_id": row["problem_id"], "sample_idx": row["sample_idx"]}
        for side in ("a", "b"):
            score = row[f"score_{side}"]
            line[side] = {
                "correct": bool(row[f"correct_{side}"]),
                "reason": row[f"reason_{side}"],
                "answer": row[f"answer_{side}"],
                "score": None if score is None or not math.isfinite(score) else score,
            }
        line["text"] = text
        lines.append(line)
    return lines


def format_agreement(result: AgreementResult) -> str:
    """The agreement as readable lines (``ttc agreement`` prints them)."""
    stats = result.agreement
    a, b = result.verdicts, result.against
    percent = round(100 * stats.confidence)

    def side(source: JudgementSource) -> str:
        text = f"{source.name} ({source.key})" if source.name != source.key else source.key
        return text + (f" with scores >= {source.threshold:g} as correct" if source.threshold is not None else "")

    def rate(name: str, value: Any) -> str:
        if value.total == 0:
            return f"  {name:<21} undefined (no samples in its denominator)"
        return f"  {name:<21} {value.value:.4f}  [{value.low:.4f}, {value.high:.4f}]  ({value.count:,}/{value.total:,})"

    lines = [
        (
            f"{side(a)} against {side(b)} (the reference): {stats.samples:,} samples of {stats.problems:,} "
            "problems judged by both"
        ),
        f"  {'':<12}{'B correct':>12}{'B wrong':>12}",
        f"  {'A correct':<12}{stats.true_positives:>12,}{stats.false_positives:>12,}",
        f"  {'A wrong':<12}{stats.false_negatives:>12,}{stats.true_negatives:>12,}",
        f"rates with {percent}% intervals clustered by problem:",
        rate("precision", stats.precision),
        rate("recall", stats.recall),
        rate("false-positive rate", stats.false_positive_rate),
        rate("false-negative rate", stats.false_negative_rate),
        rate("agreement", stats.accuracy),
    ]
    kappa = stats.kappa
    lines.append(
        "  Cohen's kappa         "
        + ("undefined (a side holds one verdict only)" if not math.isfinite(kappa.value) else _interval(kappa))
    )
    if stats.auroc is not None:
        lines.append(
            "  AUROC of A's scores   "
            + (
                "undefined (B holds one verdict only)"
                if not math.isfinite(stats.auroc.value)
                else _interval(stats.auroc)
            )
        )
    if result.only_verdicts or result.only_against:
        lines.append(f"left out: {result.only_verdicts:,} samples judged by A only, {result.only_against:,} by B only")
    return "\n".join(lines)


def _interval(statistic: Any) -> str:
    if not math.isfinite(statistic.low):
        return f"{statistic.value:.4f}"
    return f"{statistic.value:.4f}  [{statistic.low:.4f}, {statistic.high:.4f}]"
