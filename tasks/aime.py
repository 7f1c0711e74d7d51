"""AIME: the American Invitational Mathematics Examination, the reasoning-model benchmark (30 problems a year).

Every answer is an integer from 0 to 999, judged by the ``math`` verifier, which compares exact numbers exactly:
``025`` (how AIME writes 25, and how a model may box it) equals ``25``. The prompt is the usual one of
reasoning-model evaluations (DeepSeek-R1, Qwen): the problem, then "Please reason step by step, and put your
final answer within \\boxed{}.", as a chat message (``tasks/templates/aime_chat.jinja``).

The data is a JSONL file of the problems with ``id``, ``year``, ``problem`` and ``answer`` (as in the shared
``aime_2024_2025.jsonl``: AIME 2024 I and II and AIME 2025 I and II, 60 problems) or a Hub dataset with those
fields. Papers report pass@1 averaged over 16 to 64 samples per problem (avg@n, in ``summary.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.core.errors import OptionError, TaskError
from harness.core.records import Problem
from tasks.base import Task, load_records, require_fields
from tasks.prompts import PromptBuilder

FIELDS = ("id", "year", "problem", "answer")
ALL = "all"


class AIME(Task):
    """AIME problems, from a JSONL file (or Hub dataset) with the fields ``id``, ``year``, ``problem``, ``answer``.

    Args:
        data: the JSONL file or Hub id (required; e.g. ``aime_2024_2025.jsonl``).
        split: a year present in the data (``2024``, ``2025``) or ``all`` (default).
        prompt_style: ``chat`` (default: one user message) or ``completion`` (the same text, for base models).
        prompt_template: a Jinja2 file replacing the default template; it sees every field of a record.

    ``problem_id`` is the record's ``id`` (``2024-I-1``), ``reference`` is ``{"answer": ...}`` (leading zeros
    dropped) and ``metadata`` holds ``year`` and, where given, ``contest`` and ``number``, for per-year analysis.
    """

    name = "aime"
    default_verifier = "math"

    def __init__(
        self,
        data: str | Path | None = None,
        split: str = ALL,
        prompt_style: str = "chat",
        prompt_template: str | Path | None = None,
    ) -> None:
        if data is None:
            raise TaskError("the aime task needs its data: data=PATH.jsonl (e.g. aime_2024_2025.jsonl) or a Hub id")
        self.source = str(data)
        self.split = split
        self.prompt_builder = PromptBuilder.for_task("aime", prompt_style, prompt_template)

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        split = options.get("split", ALL)
        if split != ALL and not (isinstance(split, str) and split.isdigit() and len(split) == 4):
            raise OptionError("split", f"must be a year (e.g. 2024, 2025) or {ALL}, got {split!r}")

    def load_problems(self) -> list[Problem]:
        records = load_records(self.source, split="test")
        require_fields(records, FIELDS, self.source)
        years = sorted({str(record["year"]) for record in records})
        if self.split != ALL and self.split not in years:
            raise OptionError("task_options.split", f"{self.source} has no AIME {self.split}; its years: {years}")
        chosen = [record for record in records if self.split == ALL or str(record["year"]) == self.split]
        return [self._problem(index, record) for index, record in enumerate(chosen)]

    def _problem(self, index: int, record: Mapping[str, Any]) -> Problem:
        where = f"{self.source} problem {record['id']}"
        return Problem(
            problem_id=str(record["id"]),
            prompt=self.prompt_builder.build(record, where),
            reference={"answer": integer_answer(record["answer"], where)},
            metadata={
                "year": int(record["year"]),
                **{name: record[name] for name in ("contest", "number") if name in record},
            },
        )

    def options(self) -> dict[str, Any]:
        return {"source": self.source, "split": self.split, "problems": len(self.problems())}


def integer_answer(value: Any, where: str) -> str:
    """An AIME answer as its integer's text, without leading zeros (``"025"`` -> ``"25"``)."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise TaskError(f"{where}: the answer {value!r} is not an integer from 0 to 999")
    return str(int(text))
