"""A task from your own JSONL file, no code needed::

    ttc run --task jsonl --data my.jsonl --prompt-field q --answer-field a --verifier math

Each line is one problem. The prompt is rendered from a template (default ``{{ prompt }}``: the prompt
field as is); a template of your own (``prompt_template=PATH``) sees ``prompt`` (the prompt field),
every field of the record by name, and ``record`` (the whole record, for names that are not identifiers).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import TaskError
from harness.core.jsonl import read_jsonl_lines
from harness.core.records import Problem
from tasks.base import Task, check_field, require_fields
from tasks.prompts import PromptBuilder


class JSONLTask(Task):
    """Problems from a local JSONL file.

    Args:
        data: path of the JSONL file (required).
        prompt_field: field holding the question (a string).
        answer_field: field holding the reference answer, ``reference["answer"]``; numbers become strings
            (``42`` -> ``"42"``), strings and lists (several acceptable answers, for ``exact``) are kept as
            they are. With ``verifier="python-tests"`` it holds the test code instead, ``reference["test"]``.
        id_field: field holding a unique problem id; None numbers problems by line (``"0"``, ``"1"``, ...).
        verifier: the verifier that judges this task (``math``, ``numeric``, ``exact``, ``python-tests`` or
            ``module:Class``); it becomes the task's ``default_verifier``.
        prompt_template: a Jinja2 file replacing the default template ``{{ prompt }}``.
        prompt_style: ``"completion"`` (the text) or ``"chat"`` (one user message).
        metadata_fields: fields kept as metadata for analysis; None keeps every field except the prompt,
            answer and id fields.
        reference_fields: further fields copied into the reference, for verifiers that need more than an
            answer (e.g. ``prefix`` for ``python-tests``).
        stop: stop strings for generation.
    """

    name = "jsonl"

    def __init__(
        self,
        data: str | Path | None = None,
        prompt_field: str = "prompt",
        answer_field: str = "answer",
        id_field: str | None = None,
        verifier: str = "exact",
        prompt_template: str | Path | None = None,
        prompt_style: str = "completion",
        metadata_fields: Sequence[str] | None = None,
        reference_fields: Sequence[str] = (),
        stop: Sequence[str] = (),
    ) -> None:
        if data is None:
            raise TaskError("the jsonl task needs a data file: data=PATH.jsonl")
        if not verifier:
            raise TaskError("the jsonl task needs a verifier name (e.g. math, numeric, exact, python-tests)")
        self.source = str(data)
        self.prompt_field = prompt_field
        self.answer_field = answer_field
        self.id_field = id_field
        self.default_verifier = verifier
        self.metadata_fields = None if metadata_fields is None else tuple(metadata_fields)
        self.reference_fields = tuple(reference_fields)
        self.stop: tuple[str, ...] = tuple(stop)
        self.prompt_builder = PromptBuilder.for_task("jsonl", prompt_style, prompt_template)

    def load_problems(self) -> list[Problem]:
        numbered = read_jsonl_lines(self.source)
        if not numbered:
            raise TaskError(f"{self.source}: no records")
        records = [record for _, record in numbered]
        wheres = [f"{self.source}:{line}" for line, _ in numbered]
        named_by = dict.fromkeys(self.metadata_fields or (), "metadata_fields")
        named_by.update(dict.fromkeys(self.reference_fields, "reference_fields"))
        if self.id_field:
            named_by[self.id_field] = "id_field"
        named_by.update({self.prompt_field: "prompt_field", self.answer_field: "answer_field"})
        require_fields(records, list(named_by), self.source, named_by, wheres)
        seen_ids: dict[str, str] = {}
        problems = []
        for index, (where, record) in enumerate(zip(wheres, records)):
            if self.id_field:
                problem_id = str(check_field(record, self.id_field, "id", where, "id_field"))
            else:
                problem_id = str(index)
            if problem_id in seen_ids:
                raise TaskError(
                    f"{where}: the id {problem_id!r} (id_field {self.id_field!r}) is also the id of the record at "
                    f"{seen_ids[problem_id]}: the records share the id; ids must be unique"
                )
            seen_ids[problem_id] = where
            self.located(problem_id, where)
            problems.append(self._problem(problem_id, where, record))
        return problems

    def _problem(self, problem_id: str, where: str, record: dict[str, Any]) -> Problem:
        question = record[self.prompt_field]
        if not isinstance(question, str):
            raise TaskError(
                f"{where}: prompt_field {self.prompt_field!r} must hold a string, got {type(question).__name__}"
            )
        fields = {**record, "prompt": question, "record": record}
        answer_key = "test" if self.default_verifier == "python-tests" else "answer"
        reference = {answer_key: _reference_answer(record[self.answer_field], where, self.answer_field)}
        reference.update({name: record[name] for name in self.reference_fields})
        own_fields = {self.prompt_field, self.answer_field, self.id_field}
        kept = self.metadata_fields if self.metadata_fields is not None else [k for k in record if k not in own_fields]
        return Problem(
            problem_id=problem_id,
            prompt=self.prompt_builder.build(fields, where),
            reference=reference,
            metadata={name: record[name] for name in kept},
        )

    def options(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "problems": len(self.problems()),
            "fields": {"prompt": self.prompt_field, "answer": self.answer_field, "id": self.id_field},
            "verifier": self.default_verifier,
        }


def _reference_answer(value: Any, where: str, field_name: str) -> Any:
    """The answer as the verifier gets it; what no verifier could judge against is refused here (whether the
    task's verifier can judge against it, a number for ``numeric``, is the verifier's to check)."""
    empty = value is None or (
        isinstance(value, (str, list, dict)) and not (value.strip() if isinstance(value, str) else value)
    )
    if isinstance(value, bool) or empty or isinstance(value, dict):
        raise TaskError(f"{where}: answer_field {field_name!r} holds {value!r}, not an answer")
    if isinstance(value, (int, float)):
        return str(value)
    return value
