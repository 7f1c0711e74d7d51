"""Majority vote for code (issue 21 item 6): programs grouped by what they return on the calls their prompt
shows (HumanEval's docstring examples, MBPP's first visible assert), never the hidden tests; the groups are the
samples' answers, so majority and weighted vote work on code runs."""

from __future__ import annotations

import ast
import json
import re

import pytest

from harness import load_run, sample, verify
from harness.pipeline.verify import verification_reference
from harness.reporting.selector_comparison import compare_verifiers
from harness.store import RunStore
from tasks import load_task
from tasks.code_examples import docstring_examples, first_assert_call
from tests.support.scripted_engine import SCRIPTED_ENGINE, scripted_model_dir
from verifiers.code import PythonTestsVerifier


def squashed(text: str) -> str:
    return re.sub(r"\s", "", text).replace("'", '"')


@pytest.fixture(scope="module")
def humaneval():
    return load_task("humaneval", prompt_style="completion").problems()


def test_humaneval_examples_are_the_prompts_own_calls(humaneval):
    with_examples = 0
    for problem in humaneval:
        entry = problem.metadata["entry_point"]
        examples = problem.metadata["examples"]
        assert examples == docstring_examples(problem.reference["prefix"], entry)
        with_examples += bool(examples)
        hidden = squashed(problem.reference["test"])
        for call in examples:
            node = ast.parse(call, mode="eval").body
            assert isinstance(node, ast.Call) and node.func.id == entry
            arguments = [squashed(ast.unparse(argument)) for argument in node.args]
            # every argument is written in the prompt: none comes from the hidden tests alone
            prompt = squashed(problem.reference["prefix"])
            assert all(argument in prompt or argument.strip('"') in prompt for argument in arguments), (call, hidden)
    assert with_examples >= 150, with_examples  # 154 of the 164 prompts show examples ttc can call


def test_mbpp_examples_are_the_first_visible_asserts_call(shared_data):
    problems = load_task("mbpp", data=str(shared_data / "mbpp.jsonl"), split="all").problems()
    records = {json.loads(line)["task_id"]: json.loads(line) for line in (shared_data / "mbpp.jsonl").open()}
    found = 0
    for problem in problems:
        record = records[problem.metadata["task_id"]]
        examples = problem.metadata["examples"]
        assert examples == first_assert_call(record["test_list"])
        if examples:
            found += 1
            calls = {
                ast.dump(node) for node in ast.walk(ast.parse(record["test_list"][0])) if isinstance(node, ast.Call)
            }
            assert ast.dump(ast.parse(examples[0], mode="eval").body) in calls
            assert len(examples) == 1  # the other asserts stay unseen
    assert found >= 960, found


def test_programs_that_behave_alike_share_an_answer(humaneval):
    problem = humaneval[0]  # has_close_elements
    reference = verification_reference(problem)
    assert reference["examples"] and "examples" not in problem.reference  # from the metadata, hash unchanged
    canonical = problem.metadata["canonical_solution"]
    pairs = "for i, a in enumerate(numbers) for j, b in enumerate(numbers) if i != j"
    rewritten = f"    return any(abs(a - b) < threshold {pairs})\n"
    wrong = "    return False\n"
    raises = "    raise ValueError('no')\n"
    verdicts = PythonTestsVerifier(max_workers=2).verify(
        reference, [canonical, rewritten, wrong, raises, "    return (\n", canonical]
    )
    answers = [verdict.answer for verdict in verdicts]
    assert answers[0] == answers[1] == answers[5] == "False | True"
    assert answers[2] == "False | False" != answers[0]
    assert answers[3] == "raises ValueError | raises ValueError"
    assert answers[4] is None and verdicts[4].reason == "syntax_error"
    assert [verdict.correct for verdict in verdicts] == [True, True, False, False, False, True]
    off = PythonTestsVerifier(behaviour=False)
    assert all(verdict.answer is None for verdict in off.verify(reference, [canonical]))
    assert "answers" in PythonTestsVerifier().describe() and "answers" not in off.describe()


def test_a_code_run_gains_majority_vote(tmp_path):
    """HumanEval on a scripted engine: each problem's samples are a right program written two ways, and two
    wrong programs that return the same; majority vote picks by behaviour."""
    task = load_task("humaneval", prompt_style="completion")
    problems = task.problems()[:3]
    script = {}
    for problem in problems:
        right = problem.metadata["canonical_solution"]
        script[problem.problem_id] = [right, right + "\n# same behaviour, other text\n", "    return None\n"] * 2
    model = scripted_model_dir(tmp_path, script)
    run_dir = sample(
        "humaneval",
        model=str(model),
        engine=SCRIPTED_ENGINE,
        problems=3,
        samples=6,
        task_options={"prompt_style": "completion"},
        out=tmp_path / "run",
        progress="quiet",
    ).run_dir
    verify(run_dir, workers=1, progress="quiet")
    store = RunStore.open(run_dir)
    answers = store.read_verdicts(columns=["answer"]).column("answer").to_pylist()
    assert all(answer is not None for answer in answers)
    result = compare_verifiers(store)
    names = [entry["selector"] for entry in result["selectors"]]
    assert "majority" in names
    majority = result["selectors"][names.index("majority")]
    # 4 of 6 samples behave as the right program: majority is right at every k from 3 on, 2/3 at k = 1
    assert majority["accuracy"][0] == pytest.approx(4 / 6)
    assert majority["accuracy"][-1] == pytest.approx(1.0)
    assert "majority" in set(load_run(run_dir).selectors()["selector"])
