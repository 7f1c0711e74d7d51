"""Bring outside data into run directories: samples generated elsewhere, and per-sample scores.

``import_samples`` turns a JSONL file with one problem per line and list-valued sample fields (the output
format of Qwen2.5-Math's and math-evaluation-harness's evaluation scripts: ``question``, ``gt``, ``code``,
``pred``, ``score``, optionally ``pred_score``) into a run directory: problems, samples, a verdict set with
the extracted answers and correctness, and a score set if the file has reward scores. Every analysis
(``analyze``, ``compare-verifiers``, re-verification with ``ttc verify --verifier math``) then works on it.

``import_scores`` adds a score set to an existing run from JSONL rows ``{problem_id, sample_idx, score,
step_scores?}``. Both check everything before writing anything, and write each set as one atomic shard, so
a bad file never leaves stored data half changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from harness.core.errors import DataError, OptionError, RunStoreError
from harness.core.jsonl import read_jsonl_lines
from harness.core.options import check_fields
from harness.core.records import Problem
from harness.engines.models import file_digest
from harness.store import RunStore
from harness.store.outputs import check_run_directory_path
from harness.store.shards import text_fingerprints
from verifiers.base import CORRECT, NO_ANSWER, WRONG

IMPORTED_VERDICTS = "imported"
IMPORT_SESSION = "import"


@dataclass(frozen=True)
class SampleFields:
    """Which fields of an imported record hold what (defaults: the Qwen2.5-Math evaluation output).

    A field named here must be present: a record that lacks it is an error naming the file, line and fields.
    The two optional ones default to None: ``problem_id`` then means ``idx`` if the records have it, else the
    record's number; ``scores`` means ``pred_score`` if the records have it, else no scores.

    Attributes:
        problem_id: field with a problem id, in every record.
        prompt: the problem statement, stored as the problem's prompt.
        reference: the reference answer, stored as ``reference["answer"]``.
        samples: list of completions.
        answers: list of extracted answers, one per completion ("" or null: no answer).
        correct: list of correctness booleans, one per completion.
        scores: list of reward scores, one per completion (a number, or a list: one number is a score, several
            are step scores).
    """

    problem_id: str | None = None
    prompt: str = "question"
    reference: str = "gt"
    samples: str = "code"
    answers: str = "pred"
    correct: str = "score"
    scores: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)

    def resolved(self, records: Sequence[Mapping[str, Any]]) -> SampleFields:
        """These fields with the optional ones settled by the records: ``idx`` and ``pred_score`` where any
        record has them (then every record must), else none."""
        present = {key for record in records for key in record}
        return replace(
            self,
            problem_id=self.problem_id or (DEFAULT_ID_FIELD if DEFAULT_ID_FIELD in present else None),
            scores=self.scores or (DEFAULT_SCORES_FIELD if DEFAULT_SCORES_FIELD in present else None),
        )


DEFAULT_ID_FIELD = "idx"
DEFAULT_SCORES_FIELD = "pred_score"


def _sample_score(value: Any, where: str) -> tuple[float | None, list[float] | None]:
    """A per-sample score from a number, or a list (one value: a score; several: step scores)."""
    if isinstance(value, (list, tuple)) and len(value) == 1 and not isinstance(value[0], (list, tuple)):
        value = value[0]
    if isinstance(value, (list, tuple)):
        if not value:
            raise DataError(f"{where}: empty list of step scores")
        return None, [_finite(step, where) for step in value]
    return _finite(value, where), None


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: score {value!r} is not a number")
    if not math.isfinite(value):
        raise DataError(f"{where}: score {value!r} is not finite")
    return float(value)


def create_imported_run(
    source: str | Path,
    out: str | Path,
    fields: SampleFields = SampleFields(),
    *,
    score_set: str = "imported",
    default_verifier: str = "math",
) -> RunStore:
    """Create run directory ``out`` from a JSONL file of problems with their samples. Returns the open store.

    Every field ``fields`` names must be in every record (an error names the file, line and the fields there).
    """
    source = Path(source)
    check_run_directory_path(out, "out")
    numbered = read_jsonl_lines(source)
    if not numbered:
        raise DataError(f"{source}: no records")
    fields = fields.resolved([record for _, record in numbered])
    problems: list[Problem] = []
    samples: dict[str, list] = {"problem_id": [], "sample_idx": [], "text": []}
    verdicts: dict[str, list] = {"problem_id": [], "sample_idx": [], "correct": [], "reason": [], "answer": []}
    scores: dict[str, list] = {"problem_id": [], "sample_idx": [], "score": [], "step_scores": []}
    id_field, scores_field = fields.problem_id, fields.scores
    named = {name: value for name, value in vars(fields).items() if value is not None}
    present = sorted({key for _, record in numbered for key in record})
    for name, value in named.items():
        if value not in present:  # a typo in an option, not a gap in one record
            raise OptionError(f"fields.{name}", f"no record of {source} has a field {value!r}; they have {present}")
    mapped = set(named.values())
    seen: set[str] = set()
    for number, (line, record) in enumerate(numbered):
        where = f"{source}:{line}"
        missing = [value for value in named.values() if value not in record]
        if missing:
            raise DataError(f"{where}: the record lacks field(s) {missing}; it has {sorted(record)}")
        problem_id = str(record[id_field]) if id_field else str(number)
        if (id_field and not isinstance(record[id_field], (str, int))) or problem_id == "":
            given = record[id_field] if id_field else problem_id
            raise DataError(f"{where}: problem id {given!r} ({id_field!r}) is not a string or integer")
        if problem_id in seen:
            raise DataError(f"{where}: duplicate problem id {problem_id!r}")
        seen.add(problem_id)
        texts, answers, correct = record[fields.samples], record[fields.answers], record[fields.correct]
        lists = {fields.samples: texts, fields.answers: answers, fields.correct: correct}
        if scores_field is not None:
            lists[scores_field] = record[scores_field]
        for name, values in lists.items():
            if not isinstance(values, list):
                raise DataError(f"{where}: field {name!r} must be a list (one entry per sample)")
            if len(values) != len(texts):
                raise DataError(f"{where}: {len(values)} entries in {name!r} for {len(texts)} samples")
        if not texts:
            raise DataError(f"{where}: no samples")
        metadata = {
            key: value
            for key, value in record.items()
            if key not in mapped and isinstance(value, (str, int, float, bool)) and len(str(value)) <= 100
        }
        problems.append(Problem(problem_id, str(record[fields.prompt]), {"answer": record[fields.reference]}, metadata))
        for index, (text, answer, is_correct) in enumerate(zip(texts, answers, correct)):
            if not isinstance(is_correct, bool) and is_correct not in (0, 1):
                raise DataError(f"{where}: sample {index}: correctness {is_correct!r} is not a boolean")
            answer = None if answer is None or str(answer).strip() == "" else str(answer)
            samples["problem_id"].append(problem_id)
            samples["sample_idx"].append(index)
            samples["text"].append(str(text))
            verdicts["problem_id"].append(problem_id)
            verdicts["sample_idx"].append(index)
            verdicts["correct"].append(bool(is_correct))
            verdicts["reason"].append(CORRECT if is_correct else (NO_ANSWER if answer is None else WRONG))
            verdicts["answer"].append(answer)
            if scores_field is not None:
                score, steps = _sample_score(record[scores_field][index], f"{where}: sample {index}")
                scores["problem_id"].append(problem_id)
                scores["sample_idx"].append(index)
                scores["score"].append(score)
                scores["step_scores"].append(steps)
    description = {"file": source.name, "sha256": file_digest(source), "fields": vars(fields)}
    store = RunStore.create(
        out,
        {"task": "imported", "source": description},
        problems,
        budget={"problems": len(problems), "samples": max(samples["sample_idx"]) + 1},
        default_verifier=default_verifier,
        model_info={"name": source.stem},
        versions={},
    )
    try:
        rows = len(samples["text"])
        fingerprints = text_fingerprints(samples["text"])  # the imported verdicts judged these texts
        store.allow_samples(max(samples["sample_idx"]) + 1)
        store.write_samples(
            pa.table(
                {
                    **samples,
                    "n_tokens": pa.nulls(rows, pa.int32()),
                    "finish_reason": pa.nulls(rows, pa.string()),
                    "logprob_sum": pa.nulls(rows, pa.float64()),
                    "prompt_tokens": pa.nulls(rows, pa.int32()),
                    "seed": pa.nulls(rows, pa.int64()),
                    "session": [IMPORT_SESSION] * rows,
                    "fingerprint": fingerprints,
                }
            )
        )
        key = store.register_verdict_set({"name": IMPORTED_VERDICTS, "source": description, "field": fields.correct})
        store.write_verdicts(key, pa.table({**verdicts, "detail": [""] * rows, "fingerprint": fingerprints}))
        if scores_field is not None:
            store.register_score_set(score_set, {"kind": "imported", "source": description, "field": fields.scores})
            store.write_scores(score_set, pa.table(scores))
    except BaseException:
        store.close()
        raise
    return store


def read_score_rows(path: str | Path) -> list[dict[str, Any]]:
    """Validated score rows from JSONL: ``problem_id``, ``sample_idx``, ``score`` and/or ``step_scores``."""
    path = Path(path)
    rows = []
    for line, record in read_jsonl_lines(path):
        where = f"{path}:{line}"
        for name in ("problem_id", "sample_idx"):
            if name not in record:
                raise DataError(f"{where}: missing {name!r}")
        index = record["sample_idx"]
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise DataError(f"{where}: sample_idx {index!r} is not a non-negative integer")
        score = record.get("score")
        steps = record.get("step_scores")
        if score is None and steps is None:
            raise DataError(f"{where}: needs 'score' or 'step_scores'")
        if steps is not None:
            if not isinstance(steps, list) or not steps:
                raise DataError(f"{where}: step_scores must be a non-empty list of numbers")
            steps = [_finite(step, where) for step in steps]
        rows.append(
            {
                "problem_id": str(record["problem_id"]),
                "sample_idx": index,
                "score": None if score is None else _finite(score, where),
                "step_scores": steps,
            }
        )
    if not rows:
        raise DataError(f"{path}: no score rows")
    return rows


def add_scores(store: RunStore, path: str | Path, name: str) -> int:
    """Add the scores in JSONL file ``path`` to score set ``name`` of ``store``; returns the rows stored.

    Refused, with nothing written, when a row names an unknown problem or a sample that is not stored, when
    a (problem, sample) pair appears twice in the file, or is already scored in the set.
    """
    path = Path(path)
    rows = read_score_rows(path)
    known = store.sample_ranges()
    problem_ids = {problem.problem_id for problem in store.problems()}
    stored = store.scores(name).ranges()
    seen: set[tuple[str, int]] = set()
    for line, row in enumerate(rows, start=1):
        key = (row["problem_id"], row["sample_idx"])
        where = f"{path}: row {line}"
        if key[0] not in problem_ids:
            raise DataError(f"{where}: unknown problem {key[0]!r} (not among the run's {len(problem_ids)} problems)")
        if not _covered(key[1], known.get(key[0], [])):
            raise DataError(f"{where}: problem {key[0]!r} has no stored sample {key[1]}")
        if key in seen:
            raise DataError(f"{where}: duplicate row for problem {key[0]!r} sample {key[1]}")
        if _covered(key[1], stored.get(key[0], [])):
            raise DataError(f"{where}: problem {key[0]!r} sample {key[1]} is already scored in set {name!r}")
        seen.add(key)
    existing = store.score_sets().get(name)
    if existing is not None and existing.get("kind") != "imported":
        raise RunStoreError(
            f"score set {name!r} was made by a reward model ({existing.get('model')}); choose another --name"
        )
    store.register_score_set(name, {"kind": "imported"})
    store.write_scores(name, pa.Table.from_pylist(rows, schema=store.scores(name).schema))
    return len(rows)


def _covered(index: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(start <= index < stop for start, stop in ranges)
