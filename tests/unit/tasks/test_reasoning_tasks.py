"""The reasoning benchmarks: AIME (integers judged exactly, 025 is 25) and multiple-choice questions from one's
own file (GPQA-style), with the ``choice`` verifier; AMC 2023 through the ``jsonl`` task."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness.core.errors import OptionError, TaskError
from tasks import load_task
from tasks.aime import integer_answer
from tasks.mcq import LETTERS
from verifiers import load_verifier
from verifiers.choice import extract_letter

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def aime_path(shared_data):
    return str(shared_data / "aime_2024_2025.jsonl")


@pytest.fixture(scope="module")
def math_verifier():
    return load_verifier("math")


# -- AIME -------------------------------------------------------------------------------------------------------


def test_aime_has_sixty_problems_thirty_a_year_with_the_reasoning_prompt(aime_path):
    problems = load_task("aime", data=aime_path).problems()
    assert len(problems) == 60 and len({problem.problem_id for problem in problems}) == 60
    assert Counter(problem.metadata["year"] for problem in problems) == {2024: 30, 2025: 30}
    first = problems[0]
    assert first.problem_id == "2024-I-1" and first.metadata == {"year": 2024, "contest": "AIME I", "number": 1}
    (message,) = first.prompt
    assert message["role"] == "user" and message["content"].endswith(
        "\nPlease reason step by step, and put your final answer within \\boxed{}."
    )
    assert message["content"].startswith("Every morning Aya goes for a $9$-kilometer-long walk")
    assert load_task("aime", data=aime_path).default_verifier == "math"


@pytest.mark.parametrize(("split", "count"), [("2024", 30), ("2025", 30), ("all", 60)])
def test_aime_splits_are_years(aime_path, split, count):
    problems = load_task("aime", data=aime_path, split=split).problems()
    assert len(problems) == count
    assert split == "all" or {problem.problem_id[:4] for problem in problems} == {split}


def test_every_aime_reference_verifies_against_itself_and_nothing_else(aime_path, math_verifier):
    problems = load_task("aime", data=aime_path).problems()
    for problem in problems:
        answer = problem.reference["answer"]
        assert answer == str(int(answer)) and 0 <= int(answer) <= 999, problem.problem_id
        padded = f"{int(answer):03d}"  # AIME's own way of writing it
        texts = [f"So the answer is \\boxed{{{answer}}}.", f"\\boxed{{{padded}}}", f"\\boxed{{{int(answer) + 1}}}"]
        verdicts = math_verifier.verify(problem.reference, texts)
        assert [verdict.correct for verdict in verdicts] == [True, True, False], (problem.problem_id, answer)


def test_the_2024_copys_025_verifies_as_25(aime_path, math_verifier):
    (problem,) = [p for p in load_task("aime", data=aime_path, split="2024").problems() if p.problem_id == "2024-I-2"]
    assert problem.reference == {"answer": "25"}
    assert integer_answer("025", "the 2024 copy") == "25"  # how the 2024 source wrote it
    verdicts = math_verifier.verify({"answer": integer_answer("025", "here")}, ["\\boxed{25}", "\\boxed{025}"])
    assert [verdict.correct for verdict in verdicts] == [True, True]


def test_an_aime_split_that_does_not_exist_names_the_option(aime_path):
    with pytest.raises(OptionError, match=r"has no AIME 2023; its years: \['2024', '2025'\]") as caught:
        load_task("aime", data=aime_path, split="2023").problems()
    assert caught.value.option == "task_options.split"
    with pytest.raises(OptionError, match="must be a year") as caught:
        load_task("aime", data=aime_path, split="24")
    assert caught.value.option == "task_options.split"
    with pytest.raises(TaskError, match="needs its data"):
        load_task("aime")


@pytest.mark.parametrize("value", ["12.5", "-3", "twelve", True])
def test_aime_answers_must_be_integers(value):
    with pytest.raises(TaskError, match="not an integer from 0 to 999"):
        integer_answer(value, "line 1")


def test_amc23_runs_through_the_jsonl_task_with_the_reasoning_prompt(shared_data, math_verifier):
    """docs/reasoning.md's command for AMC 2023: the jsonl task, AIME's template, the math verifier."""
    task = load_task(
        "jsonl",
        data=str(shared_data / "amc23.jsonl"),
        prompt_field="problem",
        id_field="id",
        verifier="math",
        prompt_style="chat",
        prompt_template=str(REPO / "tasks" / "templates" / "aime_chat.jinja"),
        metadata_fields=[],
    )
    problems = task.problems()
    assert len(problems) == 40 and problems[0].problem_id == "amc23-0"
    assert problems[0].prompt[0]["content"].endswith("put your final answer within \\boxed{}.")
    for problem in problems:
        verdicts = math_verifier.verify(problem.reference, [f"\\boxed{{{problem.reference['answer']}}}"])
        assert verdicts[0].correct, problem.problem_id


# -- multiple choice ----------------------------------------------------------------------------------------------


def write_jsonl(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return str(path)


QUESTIONS = [
    {"question": "2 + 2?", "choices": ["3", "4", "5", "22"], "answer": 1, "topic": "sums"},
    {"question": "Largest planet?", "choices": ["Mars", "Venus", "Jupiter", "Earth"], "answer": "C", "topic": "space"},
    {"question": "Yes or no?", "choices": ["yes", "no"], "answer": "no", "topic": "logic"},
]


def test_mcq_shuffles_choices_per_problem_from_the_seed_and_records_the_order(tmp_path):
    data = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    problems = load_task("mcq", data=data, run_seed=7, metadata_fields=["topic"]).problems()
    for problem, record in zip(problems, QUESTIONS):
        order = problem.metadata["choice_order"]
        assert sorted(order) == list(range(len(record["choices"]))) and problem.metadata["topic"] == record["topic"]
        content = problem.prompt[0]["content"]
        shown = [record["choices"][index] for index in order]
        for letter, choice in zip(LETTERS, shown):
            assert f"\n{letter}) {choice}\n" in content + "\n"
        correct = {0: "4", 1: "Jupiter", 2: "no"}[int(problem.problem_id)]
        assert shown[LETTERS.index(problem.reference["answer"])] == correct
        assert problem.reference["letters"] == LETTERS[: len(shown)]
        assert "'Answer: $LETTER'" in content and content.index(record["question"]) > 0
    again = load_task("mcq", data=data, run_seed=7).problems()
    other = load_task("mcq", data=data, run_seed=8).problems()
    assert [p.metadata["choice_order"] for p in again] == [p.metadata["choice_order"] for p in problems]
    orders = [p.metadata["choice_order"] for p in other] + [p.metadata["choice_order"] for p in problems]
    assert len({tuple(order) for order in orders}) > 2  # seeds and problems shuffle differently
    unshuffled = load_task("mcq", data=data, shuffle=False).problems()
    assert [p.reference["answer"] for p in unshuffled] == ["B", "C", "B"]


def test_mcq_takes_one_field_per_choice_as_gpqa_has_them(tmp_path):
    record = {
        "Question": "Which?",
        "Correct Answer": "right",
        "Incorrect Answer 1": "w1",
        "Incorrect Answer 2": "w2",
        "Incorrect Answer 3": "w3",
        "Record ID": "rec1",
    }
    data = write_jsonl(tmp_path / "gpqa.jsonl", [record])
    fields = ["Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]
    (problem,) = load_task(
        "mcq",
        data=data,
        prompt_field="Question",
        choices_field=fields,
        answer_field="Correct Answer",
        id_field="Record ID",
    ).problems()
    assert problem.problem_id == "rec1"
    letter = problem.reference["answer"]
    assert f"{letter}) right" in problem.prompt[0]["content"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"question": "q", "answer": 0}, r"no field\(s\) \['choices'\]"),
        ({"question": "q", "choices": ["only"], "answer": 0}, "at least two choices, got 1"),
        ({"question": "q", "choices": "a b", "answer": 0}, "must hold a list of choices"),
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, r"out of range for 2 choices \(0 to 1\)"),
        ({"question": "q", "choices": ["a", "b"], "answer": "C"}, "out of range for choices AB"),
        ({"question": "q", "choices": ["a", "b"], "answer": "c?"}, "not a choice's index"),
        ({"question": "q", "choices": ["a", None], "answer": 0}, "every choice must be a text or a number"),
    ],
)
def test_bad_mcq_records_name_the_file_and_line(tmp_path, record, message):
    good = QUESTIONS[0]
    data = write_jsonl(tmp_path / "q.jsonl", [good, record])
    with pytest.raises(TaskError, match=message) as caught:
        load_task("mcq", data=data).problems()
    assert str(caught.value).startswith(f"{data}:2: ")


# -- the choice verifier ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Step by step... Answer: C", "C"),
        ("**Answer:** (B)", "B"),
        ("The answer is D.", "D"),
        ("so $\\boxed{\\text{A}}$", "A"),
        ("\\boxed{(C)}", "C"),
        ("I rule out (A) and pick (D)", "D"),
        ("Answer: B\nwait, (C)?", "B"),  # a stated answer beats a letter in parentheses
        ("answer: c", None),  # lower case is not a choice's letter
        ("An answer of A is tempting", None),
        ("no letter here", None),
    ],
)
def test_choice_verifier_reads_the_letter(text, letter):
    assert extract_letter(text) == letter


def test_choice_verifier_verdicts():
    verdicts = load_verifier("choice").verify(
        {"answer": "C", "letters": "ABCD"}, ["Answer: C", "Answer: B", "Answer: F", "nothing"]
    )
    assert [(v.correct, v.reason, v.answer) for v in verdicts] == [
        (True, "correct", "C"),
        (False, "wrong", "B"),
        (False, "wrong", "F"),
        (False, "no_answer", None),
    ]
    assert verdicts[2].detail == "not one of the choices ABCD"
