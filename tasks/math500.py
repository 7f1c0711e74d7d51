"""MATH-500: 500 competition problems (Lightman et al.'s split of Hendrycks' MATH), judged by their final answer.

Two prompt styles:

- ``"completion"`` (default, for base models): the 4-shot Minerva prompt (Lewkowycz et al. 2022) that
  Large Language Monkeys used for MATH, ``tasks/templates/math500_completion.jinja``; completions stop at the
  next ``"Problem:"``.
- ``"chat"`` (for instruct models): the problem followed by "Please reason step by step, and put your final
  answer within \\boxed{}.", ``tasks/templates/math500_chat.jinja``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import TaskError
from harness.core.records import Problem
from tasks.base import Task, check_field, load_located_records, require_fields
from tasks.prompts import PromptBuilder

HUB_ID = "HuggingFaceH4/MATH-500"
FIELDS = ("problem", "solution", "answer", "subject", "level", "unique_id")
# A few-shot completion goes on to invent the next problem; this is where lm-eval's minerva_math stops it.
FEW_SHOT_STOP = ("Problem:",)


class MATH500(Task):
    """The MATH-500 benchmark.

    Args:
        data: a local JSONL file with MATH-500's fields (``problem, solution, answer, subject, level,
            unique_id``) or a Hugging Face Hub id; None loads ``HuggingFaceH4/MATH-500``.
        prompt_style: ``"completion"`` (4-shot Minerva prompt) or ``"chat"`` (one user message).
        prompt_template: a Jinja2 file replacing the default template; it sees every field of a record.
        stop: stop strings; None means the style's default (``"Problem:"`` for completion, none for chat).

    Problems keep MATH-500's order; ``problem_id`` is ``unique_id`` (e.g. ``"test/precalculus/807.json"``),
    ``reference`` is ``{"answer": ...}`` and ``metadata`` holds ``subject`` and ``level`` for per-level analysis.
    """

    name = "math500"
    default_verifier = "math"

    def __init__(
        self,
        data: str | Path | None = None,
        prompt_style: str = "completion",
        prompt_template: str | Path | None = None,
        stop: Sequence[str] | None = None,
    ) -> None:
        self.source = str(data) if data is not None else HUB_ID
        self.prompt_builder = PromptBuilder.for_task("math500", prompt_style, prompt_template)
        default_stop = FEW_SHOT_STOP if prompt_style == "completion" else ()
        self.stop: tuple[str, ...] = tuple(default_stop if stop is None else stop)

    def load_problems(self) -> list[Problem]:
        located = load_located_records(self.source, split="test")
        require_fields([record for _, record in located], FIELDS, self.source, wheres=[where for where, _ in located])
        problems = []
        for where, record in located:
            for name in ("problem", "unique_id", "subject"):
                check_field(record, name, "text", where)
            check_field(record, "level", "integer", where)
            if not str(record["answer"]).strip() or not isinstance(record["answer"], (str, int, float)):
                raise TaskError(f"{where}: field 'answer' must be a non-empty answer, got {record['answer']!r}")
            self.located(record["unique_id"], where)
            problems.append(
                Problem(
                    problem_id=record["unique_id"],
                    prompt=self.prompt_builder.build(record, where),
                    reference={"answer": record["answer"]},
                    metadata={"subject": record["subject"], "level": int(record["level"])},
                )
            )
        return problems

    def options(self) -> dict[str, Any]:
        return {"source": self.source, "problems": len(self.problems())}
