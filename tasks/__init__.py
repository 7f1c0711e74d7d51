"""Benchmarks: problems, prompts and references. ``load_task`` builds one by name or ``module:Class``."""

from __future__ import annotations

from typing import Any

from harness.core.classes import resolve_class
from harness.core.errors import TaskError
from harness.core.records import Problem, Prompt
from tasks.base import Task

# name -> "module:Class"; imported lazily so that `ttc --help` loads no benchmark code.
BUILTIN_TASKS: dict[str, str] = {
    "gsm8k": "tasks.gsm8k:GSM8K",
    "humaneval": "tasks.humaneval:HumanEval",
    "mbpp": "tasks.mbpp:MBPP",
    "math500": "tasks.math500:MATH500",
    "jsonl": "tasks.jsonl:JSONLTask",
}


def load_task(name: str, data: str | None = None, **options: Any) -> Task:
    """Build a task: a built-in name (see ``BUILTIN_TASKS``) or ``module:Class`` for a task of your own.

    ``data`` is a local JSONL path or a Hugging Face Hub dataset id (None: the task's default source).
    Options the task does not take raise a clear error.
    """
    cls = resolve_class(name, BUILTIN_TASKS, "task")
    try:
        return cls(data=data, **options)
    except TypeError as error:
        raise TaskError(f"task {name!r} does not accept these options {sorted(options)}: {error}") from None


__all__ = ["BUILTIN_TASKS", "Problem", "Prompt", "Task", "load_task"]
