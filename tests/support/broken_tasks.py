"""Tasks of a user's own (``--task tests.support.broken_tasks:Class``) that fail as user code can: with ttc's
error for bad input (reported in one line), or with a bug (reported with its traceback)."""

from __future__ import annotations

from typing import Any

from harness.core.errors import TaskError
from harness.core.records import Problem
from tasks.base import Task
from tasks.prompts import PromptBuilder


class _OneProblemTask(Task):
    name = "broken"
    default_verifier = "exact"

    def __init__(self, data: str | None = None) -> None:
        self.prompt_builder = PromptBuilder.for_task("jsonl")

    def options(self) -> dict[str, Any]:
        return {}


class RefusingTask(_OneProblemTask):
    """Refuses its data, as a task should: a ``TaskError``."""

    def load_problems(self) -> list[Problem]:
        raise TaskError("the broken task refuses its data: record 3 has no answer")


class DividingTask(_OneProblemTask):
    """A bug: divides by zero while loading its problems."""

    def load_problems(self) -> list[Problem]:
        return [Problem("p", "prompt", {"answer": str(1 / 0)})]


class UnreadableTask(_OneProblemTask):
    """A file it needs cannot be read: an ``OSError``."""

    def load_problems(self) -> list[Problem]:
        raise PermissionError(13, "Permission denied", "/data/locked.jsonl")
