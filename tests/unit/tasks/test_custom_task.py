"""A task defined in code (examples/custom_task.py), loaded by ``module:Class`` as ``--task`` does."""

from __future__ import annotations

import pytest

from harness.core.errors import OptionError
from tasks import load_task
from tasks.base import problems_digest
from tests.conftest import REPO_ROOT
from verifiers import load_verifier


@pytest.fixture
def importable_examples(monkeypatch):
    # What the README asks of users: the module's folder is on the import path.
    monkeypatch.syspath_prepend(str(REPO_ROOT))


def test_example_task_loads_by_module_and_class(importable_examples):
    task = load_task("examples.custom_task:Multiplication", n_problems=4, digits=2, seed=1)
    problems = task.problems()
    assert [p.problem_id for p in problems] == [f"multiplication/{i}" for i in range(4)]
    first = problems[0]
    assert first.prompt[0]["role"] == "user" and "\\boxed{}" in first.prompt[0]["content"]
    assert task.problems() == problems  # seeded: the same problems every time
    same = load_task("examples.custom_task:Multiplication", n_problems=4, digits=2, seed=1)
    assert task.describe() == same.describe()
    assert problems_digest(same.problems()) == problems_digest(problems)

    verifier = load_verifier(task.default_verifier)
    answer = first.reference["answer"]
    verdicts = verifier.verify(first.reference, [f"\\boxed{{{answer}}}", f"\\boxed{{{int(answer) + 1}}}"])
    assert [v.correct for v in verdicts] == [True, False]
    verifier.close()


def test_example_task_errors(importable_examples):
    with pytest.raises(ValueError, match="no data file"):
        load_task("examples.custom_task:Multiplication", data="x.jsonl")
    with pytest.raises(ValueError, match="does not accept"):
        load_task("examples.custom_task:Multiplication", colour="red")
    with pytest.raises(ValueError, match="has no task class"):
        load_task("examples.custom_task:Division")
    with pytest.raises(OptionError, match=r"is a PromptTemplate object, not a subclass of tasks\.Task") as refused:
        load_task("examples.custom_task:DEFAULT_TEMPLATE")
    assert refused.value.option == "task"
    for options, option, message in (
        ({"n_problems": 0}, "task_options.n_problems", "must be at least 1, got 0"),
        ({"digits": "3"}, "task_options.digits", "must be an integer, got '3'"),
    ):
        with pytest.raises(OptionError, match=message) as refused:
            load_task("examples.custom_task:Multiplication", **options)
        assert refused.value.option == option
