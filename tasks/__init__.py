"""Benchmarks: problems, prompts and references. ``load_task`` builds one by name or ``module:Class``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.core.classes import resolve_subclass
from harness.core.records import Problem, Prompt
from tasks.base import Task

# name -> "module:Class"; imported lazily so that `ttc --help` loads no benchmark code.
BUILTIN_TASKS: dict[str, str] = {
    "gsm8k": "tasks.gsm8k:GSM8K",
    "humaneval": "tasks.humaneval:HumanEval",
    "mbpp": "tasks.mbpp:MBPP",
    "math500": "tasks.math500:MATH500",
    "jsonl": "tasks.jsonl:JSONLTask",
    "aime": "tasks.aime:AIME",
    "mcq": "tasks.mcq:MultipleChoice",
}


def task_class(name: str) -> type[Task]:
    """The task class ``name`` names: a built-in name (``BUILTIN_TASKS``) or ``module:Class``.

    Raises ``OptionError("task", ...)`` when it cannot be imported or is not a ``Task`` subclass.
    """
    described = "tasks.Task (subclass it as examples/custom_task.py does)"
    return resolve_subclass(name, BUILTIN_TASKS, "task", Task, described)


def load_task(name: str, data: str | None = None, run_seed: int = 0, **options: Any) -> Task:
    """Build a task: a built-in name (see ``BUILTIN_TASKS``) or ``module:Class`` for a task of your own.

    ``data`` is a local JSONL path or a Hugging Face Hub dataset id (None: the task's default source).
    ``run_seed`` is the run's seed, given as ``seed`` to a task that takes one (``Task.takes_run_seed``: one
    that draws, such as the order of a multiple-choice problem's choices). ``options`` are the task's
    constructor parameters (``Task.declared_options()``); one the task does not take, or a value not of its
    type, raises ``OptionError("task_options.NAME", ...)`` before the task is made.
    """
    cls = task_class(name)
    cls.check_options(options, "task_options", f"task {name!r}")
    build: Callable[..., Task] = cls  # a subclass's constructor takes data and its options
    if cls.takes_run_seed:
        return build(data=data, seed=run_seed, **options)
    return build(data=data, **options)


__all__ = ["BUILTIN_TASKS", "Problem", "Prompt", "Task", "load_task", "task_class"]
