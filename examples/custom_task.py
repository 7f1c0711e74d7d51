"""An example of a task defined in code: multiplication of random integers, judged by the ``math`` verifier.

Use it (or your copy of it) by ``module:Class``; the module must be importable, e.g. run from the folder
that holds it or put that folder on PYTHONPATH::

    ttc run --task examples.custom_task:Multiplication --model ... --samples 100

A task subclasses ``tasks.base.Task``: it sets ``name``, ``default_verifier`` (and ``stop`` if completions
should end at some strings) and a ``prompt_builder``, takes ``Cls(data=None, **options)``, and implements two
hooks. Its constructor's keyword parameters are its options, typed by their annotations: the command line gives
them as ``--task-option n_problems=100`` (``task_options={"n_problems": 100}`` in Python), and the classmethod
``validate_options`` checks their ranges before anything runs. The two hooks are ``load_problems()``
returning ``tasks.Problem`` objects (called once; ``problems()`` caches them) and ``options()`` returning its
source and options (``describe()`` adds the name and prompt; the run manifest records it, beside a digest of
the problems that the harness computes). ``Problem.reference`` holds what the verifier needs:
``{"answer": ...}`` for ``math``, ``numeric`` and ``exact``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.core.errors import TaskError, check_number
from tasks import Problem, Task
from tasks.prompts import PromptBuilder, PromptTemplate

DEFAULT_TEMPLATE = PromptTemplate(
    name="examples.custom_task:DEFAULT_TEMPLATE",
    source="What is {{ a }} times {{ b }}? Put the final answer within \\boxed{}.",
)


class Multiplication(Task):
    """``n_problems`` products of two ``digits``-digit integers drawn with ``seed``.

    Args:
        data: not used (the problems are generated); must be None.
        n_problems: how many problems.
        digits: digits of each factor.
        seed: seed of the random factors; the same seed gives the same problems.
        prompt_style: ``"chat"`` (default) or ``"completion"``.
        prompt_template: a Jinja2 file replacing ``DEFAULT_TEMPLATE``; it sees ``a`` and ``b``.
    """

    name = "multiplication"
    default_verifier = "math"

    def __init__(
        self,
        data: str | None = None,
        n_problems: int = 50,
        digits: int = 3,
        seed: int = 0,
        prompt_style: str = "chat",
        prompt_template: str | Path | None = None,
    ) -> None:
        if data is not None:
            raise TaskError("the multiplication task generates its problems; it takes no data file")
        self.n_problems, self.digits, self.seed = n_problems, digits, seed
        template = PromptTemplate.from_file(prompt_template) if prompt_template else DEFAULT_TEMPLATE
        self.prompt_builder = PromptBuilder(template, prompt_style)

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        """Ranges the types cannot say; checked (by name) before anything is loaded or written."""
        check_number("n_problems", options.get("n_problems"), at_least=1)
        check_number("digits", options.get("digits"), at_least=1)

    def load_problems(self) -> list[Problem]:
        rng = random.Random(self.seed)
        low, high = 10 ** (self.digits - 1), 10**self.digits - 1
        problems = []
        for index in range(self.n_problems):
            a, b = rng.randint(low, high), rng.randint(low, high)
            problems.append(
                Problem(
                    problem_id=f"multiplication/{index}",
                    prompt=self.prompt_builder.build({"a": a, "b": b}, where=f"problem {index}"),
                    reference={"answer": str(a * b)},
                    metadata={"digits": self.digits},
                )
            )
        return problems

    def options(self) -> dict[str, Any]:
        return {"source": f"generated: {self.n_problems} problems, {self.digits} digits, seed {self.seed}"}
