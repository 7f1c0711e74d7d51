"""MBPP (Austin et al. 2021): 974 short Python programming problems, each with three assert tests.

Prompts follow the paper: three worked examples (task_ids 2, 3, 4), each "You are an expert Python programmer,
and here is your task: {text} Your code should pass these tests:\\n\\n{tests}" followed by its code between
``[BEGIN]`` and ``[DONE]``, then the problem itself, ending at ``[BEGIN]\\n``. The completion is the code; it
stops at ``[DONE]``. A completion is correct when it passes ``test_setup_code`` + ``test_list`` in the sandbox.

Splits are the standard task_id ranges: prompt 1-10, test 11-510, validation 511-600, train 601-974.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.errors import TaskError
from harness.core.records import Problem, Prompt
from tasks.base import Task, check_field, load_located_records
from tasks.code_examples import first_assert_call
from tasks.prompts import PromptBuilder

FIELDS = ("task_id", "text", "code", "test_list", "test_setup_code")
SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974), "all": (1, 974)}
FEW_SHOT_IDS = (2, 3, 4)
HUB_SPLITS = "train+validation+test+prompt"  # all of MBPP "full" from the Hub; splits are then cut by task_id
STOP = ("[DONE]",)


class MBPP(Task):
    """MBPP problems with the paper's 3-shot prompt, judged by running each program with its asserts.

    Args:
        data: a local JSONL file with MBPP's fields (e.g. ``../shared/data/mbpp.jsonl``) or a Hugging Face Hub
            dataset id (``"mbpp"`` or ``"google-research-datasets/mbpp"``, config ``full``). It must hold the
            few-shot examples (task_ids 2, 3, 4) as well as the split's problems.
        split: ``"test"`` (task_ids 11-510, the standard evaluation split), ``"validation"`` (511-600),
            ``"train"`` (601-974), ``"prompt"`` (1-10) or ``"all"`` (1-974).
        prompt_template: a Jinja2 file replacing ``tasks/templates/mbpp_completion.jinja``; it sees the record's
            fields plus ``tests`` (the asserts, one per line) and ``fewshot`` (``text``, ``tests``, ``code``).
    """

    name = "mbpp"
    default_verifier = "python-tests"
    stop = STOP

    def __init__(self, data: str | None = None, split: str = "test", prompt_template: str | Path | None = None) -> None:
        if split not in SPLITS:
            raise TaskError(f"unknown MBPP split {split!r}; choose one of {', '.join(SPLITS)}")
        self.data = "google-research-datasets/mbpp" if data is None else str(data)
        self.split = split
        self.prompt_builder = PromptBuilder.for_task("mbpp", "completion", prompt_template)

    def load_problems(self) -> list[Problem]:
        located = load_located_records(self.data, split=HUB_SPLITS, config="full")
        wheres: dict[int, str] = {}
        by_id: dict[int, dict[str, Any]] = {}
        for where, record in located:
            check_record(record, where)
            task_id = int(record["task_id"])
            if task_id in by_id:
                raise TaskError(f"{where}: task_id {task_id} is also the task_id of the record at {wheres[task_id]}")
            by_id[task_id], wheres[task_id] = record, where
        missing_shots = [task_id for task_id in FEW_SHOT_IDS if task_id not in by_id]
        if missing_shots:
            raise TaskError(f"{self.data}: lacks the few-shot examples, task_ids {missing_shots}")
        first, last = SPLITS[self.split]
        selected = [by_id[task_id] for task_id in sorted(by_id) if first <= task_id <= last]
        if not selected:
            raise TaskError(f"{self.data}: no problems with task_id {first}-{last} (split {self.split!r})")
        fewshot = [template_fields(by_id[task_id]) for task_id in FEW_SHOT_IDS]
        problems = []
        for record in selected:
            where = wheres[int(record["task_id"])]
            self.located(f"mbpp/{record['task_id']}", where)
            problems.append(
                to_problem(record, self.prompt_builder.build({**template_fields(record), "fewshot": fewshot}, where))
            )
        return problems

    def options(self) -> dict[str, Any]:
        return {
            "source": self.data,
            "split": self.split,
            "few_shot_task_ids": list(FEW_SHOT_IDS),
            "problems": len(self.problems()),
            "stop": list(self.stop),
        }


def check_record(record: dict[str, Any], where: str) -> None:
    """An MBPP record's fields, each of its kind: a task_id, the problem text, the reference code, the asserts (a
    non-empty list: without them every program would pass) and the setup code (often empty)."""
    check_field(record, "task_id", "integer", where)
    check_field(record, "text", "text", where)
    check_field(record, "code", "string", where)
    check_field(record, "test_list", "strings", where)
    check_field(record, "test_setup_code", "string", where)


def clean_code(code: str) -> str:
    """MBPP's code with Unix line ends and no trailing whitespace (as shown in a prompt)."""
    return "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").split("\n")).strip("\n")


def template_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A record's fields as a prompt template sees them: stripped text, asserts one per line, cleaned code."""
    return {
        **record,
        "text": record["text"].strip(),
        "tests": "\n".join(record["test_list"]),
        "code": clean_code(record["code"]),
    }


def to_problem(record: dict[str, Any], prompt: Prompt) -> Problem:
    """An MBPP record as a Problem: 3-shot prompt; the program is the completion, the setup code and the asserts."""
    test = "\n".join([record["test_setup_code"], *record["test_list"]]) + "\n"
    return Problem(
        problem_id=f"mbpp/{record['task_id']}",
        prompt=prompt,
        reference={"prefix": "", "test": test, "stop": list(STOP), "function_body": False},
        metadata={
            "task_id": int(record["task_id"]),
            "text": record["text"],
            "code": record["code"],
            "challenge_test_list": list(record.get("challenge_test_list") or []),
            # the call of the first assert the prompt shows: programs are grouped by what they return on it
            "examples": first_assert_call(record["test_list"]),
        },
    )
