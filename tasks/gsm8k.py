"""GSM8K: grade-school math word problems with a numeric final answer after ``####``.

The prompt is few-shot, built from the first ``shots`` problems of the train split (calculator annotations
``<<...>>`` removed), in the format ``Question: ...\\nAnswer: <worked solution> #### <number>``; generation
stops before the model starts the next ``Question:``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.core.errors import TaskError, check_number
from harness.core.records import Problem
from tasks.base import Task, check_field, load_located_records
from tasks.prompts import PromptBuilder

HUB_ID = "openai/gsm8k"
HUB_CONFIG = "main"
_CALCULATOR = re.compile(r"<<[^>]*>>")
COMPLETION_STOP = ("\n\nQuestion:", "\nQuestion:")


def final_answer(solution: str, where: str = "GSM8K") -> str:
    """The reference's final answer: the text after the last ``####``."""
    answer = solution.rsplit("####", 1)[1].strip() if "####" in solution else ""
    if not answer:
        raise TaskError(f"{where}: field 'answer' has no '#### N' final answer: {solution[-80:]!r}")
    return answer


class GSM8K(Task):
    """GSM8K test problems with a few-shot prompt.

    Args:
        data: local JSONL (``question``, ``answer`` fields) or Hub id; default ``openai/gsm8k``.
        split: split to evaluate when loading from the Hub.
        shots: few-shot exemplars taken, in order, from the start of the train split.
        fewshot_data: where the exemplars come from: a JSONL path or Hub id. Default: a sibling file of
            ``data`` named with ``train`` for ``test`` (``gsm8k_test.jsonl`` -> ``gsm8k_train.jsonl``), else the Hub.
        prompt_style: ``"completion"`` (few-shot, for any model) or ``"chat"`` (instruct models).
        prompt_template: a Jinja2 file replacing the style's default template.
    """

    name = "gsm8k"
    default_verifier = "numeric"

    def __init__(
        self,
        data: str | None = None,
        split: str = "test",
        shots: int = 8,
        fewshot_data: str | None = None,
        prompt_style: str = "completion",
        prompt_template: str | Path | None = None,
    ) -> None:
        check_number("shots", shots, at_least=0, integer=True)
        self.data = data or HUB_ID
        self.split = split
        self.shots = shots
        self.prompt_builder = PromptBuilder.for_task("gsm8k", prompt_style, prompt_template)
        self.stop = COMPLETION_STOP if prompt_style == "completion" else ()
        self.fewshot_data = fewshot_data or self._default_fewshot_source(self.data) if shots else None

    @staticmethod
    def _default_fewshot_source(data: str) -> str:
        path = Path(data)
        if path.suffix == ".jsonl":
            sibling = path.with_name(path.name.replace("test", "train"))
            if sibling != path and sibling.is_file():
                return str(sibling)
            raise TaskError(
                f"few-shot exemplars for {data}: no sibling train file {sibling.name}; pass fewshot_data=PATH"
            )
        return data

    def _records(self, source: str, split: str, limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        """The first ``limit`` records (None: all), each checked: a question, and a worked solution that ends in
        its ``#### N`` answer."""
        located = load_located_records(source, split=split, config=HUB_CONFIG)[:limit]
        for where, record in located:
            check_field(record, "question", "text", where)
            final_answer(check_field(record, "answer", "text", where), where)
        return located

    def fewshot(self) -> list[dict[str, str]]:
        """The exemplars shown to the model, calculator annotations removed."""
        if self.fewshot_data is None:  # shots=0
            return []
        exemplars = [record for _, record in self._records(self.fewshot_data, "train", self.shots)]
        return [{"question": r["question"], "answer": _CALCULATOR.sub("", r["answer"])} for r in exemplars]

    def load_problems(self) -> list[Problem]:
        fewshot = self.fewshot()
        problems = []
        for index, (where, record) in enumerate(self._records(self.data, self.split)):
            problem_id = f"gsm8k/{self.split}/{index}"
            self.located(problem_id, where)
            problems.append(
                Problem(
                    problem_id=problem_id,
                    prompt=self.prompt_builder.build({**record, "fewshot": fewshot}, where),
                    reference={"answer": final_answer(record["answer"], where)},
                    metadata={"index": index},
                )
            )
        return problems

    def options(self) -> dict[str, Any]:
        return {
            "data": Path(self.data).name if Path(self.data).suffix == ".jsonl" else self.data,
            "split": self.split,
            "shots": self.shots,
        }
