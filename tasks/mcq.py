"""Multiple-choice questions from your own JSONL file (GPQA-style), no code needed::

    ttc run --task mcq --data gpqa_diamond.jsonl --reasoning on --samples 16

Each line is a question with its choices and the correct one. By default the fields are ``question``,
``choices`` (a list) and ``answer`` (the correct choice's 0-based index, its letter, or its text); other names
are mapped with ``prompt_field``, ``choices_field`` and ``answer_field``. ``choices_field`` may also name one
field per choice, as GPQA's release has them (``Correct Answer``, ``Incorrect Answer 1``, ...), with
``answer_field`` naming the one that holds the correct text.

The choices of every problem are shuffled with the run's seed (``random.Random(f"{seed}:{problem_id}")``), so
the correct letter is not always the same; the order is recorded with the problem (``metadata["choice_order"]``:
the original index of each shown choice), and the reference holds the correct letter. The ``choice`` verifier
reads the letter a completion gives (``Answer: C``, ``\\boxed{C}`` or ``(C)``).
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import TaskError
from harness.core.jsonl import read_jsonl_lines
from harness.core.records import Problem
from tasks.base import Task
from tasks.prompts import PromptBuilder

LETTERS = string.ascii_uppercase


class MultipleChoice(Task):
    """Multiple-choice problems from a local JSONL file.

    Args:
        data: path of the JSONL file (required).
        prompt_field: field holding the question.
        choices_field: the field holding the list of choices, or several fields, one choice each.
        answer_field: field holding the correct choice: its 0-based index, its letter (``"C"``) or its text.
        id_field: field holding a unique problem id; None numbers problems by record (``"0"``, ``"1"``, ...).
        shuffle: shuffle each problem's choices with the run's seed (recorded as ``choice_order``).
        prompt_style: ``chat`` (default: one user message) or ``completion``.
        prompt_template: a Jinja2 file replacing the default template; it sees the record's fields, ``question``,
            ``choices`` (``(letter, text)`` pairs in the order shown) and ``letters`` (``"ABCD"``).
        metadata_fields: fields kept as metadata for analysis (e.g. ``Subdomain``); None keeps none.
        seed: the run's seed (given by the harness).
    """

    name = "mcq"
    default_verifier = "choice"
    given_by_harness = ("data", "seed")
    takes_run_seed = True

    def __init__(
        self,
        data: str | Path | None = None,
        prompt_field: str = "question",
        choices_field: str | Sequence[str] = "choices",
        answer_field: str = "answer",
        id_field: str | None = None,
        shuffle: bool = True,
        prompt_style: str = "chat",
        prompt_template: str | Path | None = None,
        metadata_fields: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        if data is None:
            raise TaskError("the mcq task needs a data file: data=PATH.jsonl")
        self.source = str(data)
        self.prompt_field = prompt_field
        self.choices_fields = (choices_field,) if isinstance(choices_field, str) else tuple(choices_field)
        if not self.choices_fields:
            raise TaskError("the mcq task needs choices_field: the field of the choices, or one field per choice")
        self.answer_field = answer_field
        self.id_field = id_field
        self.shuffle = shuffle
        self.metadata_fields = tuple(metadata_fields)
        self.seed = seed
        self.prompt_builder = PromptBuilder.for_task("mcq", prompt_style, prompt_template)

    def load_problems(self) -> list[Problem]:
        lines = read_jsonl_lines(self.source)
        if not lines:
            raise TaskError(f"{self.source}: no records")
        seen: dict[str, int] = {}
        problems = []
        for index, (line, record) in enumerate(lines):
            where = f"{self.source}:{line}"
            problem_id = self._problem_id(record, index, where)
            if problem_id in seen:
                raise TaskError(f"{where}: the id {problem_id!r} is also line {seen[problem_id]}'s; ids must be unique")
            seen[problem_id] = line
            problems.append(self._problem(problem_id, record, where))
        return problems

    def _problem_id(self, record: Mapping[str, Any], index: int, where: str) -> str:
        if self.id_field is None:
            return str(index)
        if self.id_field not in record:
            raise TaskError(f"{where}: no field {self.id_field!r} (id_field); the record has {sorted(record)}")
        return str(record[self.id_field])

    def _problem(self, problem_id: str, record: Mapping[str, Any], where: str) -> Problem:
        missing = [name for name in (self.prompt_field, self.answer_field, *self.choices_fields) if name not in record]
        if missing:
            raise TaskError(f"{where}: no field(s) {missing}; the record has {sorted(record)}")
        question = record[self.prompt_field]
        if not isinstance(question, str):
            raise TaskError(f"{where}: {self.prompt_field!r} must hold the question's text, got {question!r:.60}")
        choices = self._choices(record, where)
        correct = correct_index(record[self.answer_field], choices, where, self.answer_field)
        order = list(range(len(choices)))
        if self.shuffle:
            random.Random(f"{self.seed}:{problem_id}").shuffle(order)
        letters = LETTERS[: len(choices)]
        shown = [(letters[position], choices[original]) for position, original in enumerate(order)]
        fields = {**record, "question": question, "choices": shown, "letters": letters, "record": record}
        return Problem(
            problem_id=problem_id,
            prompt=self.prompt_builder.build(fields, where),
            reference={"answer": letters[order.index(correct)], "letters": letters},
            metadata={"choice_order": order, **{name: record[name] for name in self.metadata_fields if name in record}},
        )

    def _choices(self, record: Mapping[str, Any], where: str) -> list[str]:
        if len(self.choices_fields) > 1:
            values: Any = [record[name] for name in self.choices_fields]
        else:
            values = record[self.choices_fields[0]]
            if not isinstance(values, list):
                raise TaskError(f"{where}: {self.choices_fields[0]!r} must hold a list of choices, got {values!r:.60}")
        if len(values) < 2:
            raise TaskError(f"{where}: a question needs at least two choices, got {len(values)}")
        if len(values) > len(LETTERS):
            raise TaskError(f"{where}: at most {len(LETTERS)} choices (A-Z), got {len(values)}")
        if any(value is None or isinstance(value, (dict, list)) for value in values):
            raise TaskError(f"{where}: every choice must be a text or a number, got {values!r:.80}")
        return [str(value) for value in values]

    def options(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "problems": len(self.problems()),
            "fields": {
                "question": self.prompt_field,
                "choices": list(self.choices_fields),
                "answer": self.answer_field,
                "id": self.id_field,
            },
            "shuffle": self.shuffle,
            "seed": self.seed if self.shuffle else None,
        }


def correct_index(answer: Any, choices: Sequence[str], where: str, field_name: str) -> int:
    """The 0-based index of the correct choice, from its index, its letter or its text; a ``TaskError`` naming
    ``where`` for an answer out of range or matching no choice."""
    count = len(choices)
    if isinstance(answer, int) and not isinstance(answer, bool):
        if not 0 <= answer < count:
            raise TaskError(f"{where}: {field_name!r} is {answer}, out of range for {count} choices (0 to {count - 1})")
        return answer
    if isinstance(answer, str):
        letter = answer.strip().strip("()").strip()
        if len(letter) == 1 and letter.isalpha() and letter.isupper():
            if letter not in LETTERS[:count]:
                raise TaskError(f"{where}: {field_name!r} is {answer!r}, out of range for choices {LETTERS[:count]}")
            return LETTERS.index(letter)
        if answer in choices:
            return choices.index(answer)
    raise TaskError(
        f"{where}: {field_name!r} is {answer!r}: not a choice's index (0 to {count - 1}), letter "
        f"({LETTERS[0]}-{LETTERS[count - 1]}) or text"
    )
