"""The ``jsonl`` task: users' own data, no code."""

from __future__ import annotations

import json

import pytest

from tasks import load_task
from tasks.jsonl import JSONLTask
from verifiers import load_verifier
from verifiers.base import CORRECT, WRONG


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture
def data(tmp_path):
    return write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"id": "a1", "q": "What is 6 times 7?", "a": 42, "topic": "arithmetic", "level": 1},
            {"id": "a2", "q": "Simplify 2/4.", "a": "\\frac{1}{2}", "topic": "fractions", "level": 2},
        ],
    )


def test_fields_ids_references_and_metadata(data):
    task = load_task("jsonl", data=str(data), prompt_field="q", answer_field="a", id_field="id", verifier="math")
    problems = task.problems()
    assert [p.problem_id for p in problems] == ["a1", "a2"]
    assert problems[0].prompt == "What is 6 times 7?"
    assert problems[0].reference == {"answer": "42"}  # numbers become strings
    assert problems[1].reference == {"answer": "\\frac{1}{2}"}
    assert problems[0].metadata == {"topic": "arithmetic", "level": 1}
    assert task.default_verifier == "math" and task.stop == ()


def test_default_ids_are_line_numbers_and_metadata_can_be_chosen(data):
    task = JSONLTask(data=data, prompt_field="q", answer_field="a", metadata_fields=["level"])
    problems = task.problems()
    assert [p.problem_id for p in problems] == ["0", "1"]
    assert problems[1].metadata == {"level": 2}
    assert task.default_verifier == "exact"


def test_template_sees_prompt_fields_and_record_and_chat_style(data, tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("[{{ topic }} / {{ record['level'] }}] {{ prompt }}\nAnswer in \\boxed{}.\n", encoding="utf-8")
    task = JSONLTask(data=data, prompt_field="q", answer_field="a", prompt_template=template, prompt_style="chat")
    prompt = task.problems()[0].prompt
    assert prompt == [{"role": "user", "content": "[arithmetic / 1] What is 6 times 7?\nAnswer in \\boxed{}."}]
    described = task.describe()
    assert described["prompt"] == {
        "style": "chat",
        "template": str(template),
        "template_sha256": described["prompt"]["template_sha256"],
    }
    assert described["problems"] == 2 and described["verifier"] == "exact"


def test_reference_fields_are_copied(data):
    task = JSONLTask(data=data, prompt_field="q", answer_field="a", reference_fields=["topic"])
    assert task.problems()[0].reference == {"answer": "42", "topic": "arithmetic"}


@pytest.mark.parametrize(
    "records, options, message",
    [
        (
            [{"q": "x"}],
            {"prompt_field": "q"},
            r"bad.jsonl:1: the record lacks field\(s\) \['answer'\] \(answer_field='answer'\); it has \['q'\]",
        ),
        ([{"q": 1, "answer": "1"}], {"prompt_field": "q"}, "prompt_field 'q' must hold a string"),
        ([{"prompt": "x", "answer": None}], {}, "not an answer"),
        (
            [{"prompt": "x", "answer": "1", "id": 1}, {"prompt": "y", "answer": "2", "id": 1}],
            {"id_field": "id"},
            "share the id",
        ),
        (
            [{"prompt": "x", "answer": "1"}],
            {"metadata_fields": ["nope"]},
            r"lacks field\(s\) \['nope'\] \(metadata_fields='nope'\)",
        ),
        (
            [{"prompt": "x", "answer": "1"}],
            {"reference_fields": ["prefix"]},
            r"\['prefix'\] \(reference_fields='prefix'\)",
        ),
    ],
)
def test_bad_records_get_clear_errors(tmp_path, records, options, message):
    task = JSONLTask(data=write_jsonl(tmp_path / "bad.jsonl", records), **options)
    with pytest.raises(ValueError, match=message):
        task.problems()


def test_needs_a_data_file_and_a_known_style(tmp_path):
    with pytest.raises(ValueError, match=r"needs a data file: data=PATH\.jsonl"):
        load_task("jsonl")
    with pytest.raises(ValueError, match="does not accept"):
        load_task("jsonl", data="x.jsonl", question_field="q")
    with pytest.raises(ValueError, match="prompt style"):
        JSONLTask(data="x.jsonl", prompt_style="instruct")
    with pytest.raises(FileNotFoundError):
        JSONLTask(data=tmp_path / "missing.jsonl").problems()


def test_end_to_end_with_the_math_verifier(data):
    task = JSONLTask(data=data, prompt_field="q", answer_field="a", verifier="math")
    verifier = load_verifier(task.default_verifier)
    first, second = task.problems()
    assert [v.reason for v in verifier.verify(first.reference, ["\\boxed{42}", "\\boxed{41}"])] == [CORRECT, WRONG]
    assert verifier.verify(second.reference, ["it is $\\boxed{0.5}$"])[0].correct
    verifier.close()


def test_end_to_end_with_the_exact_verifier_and_several_answers(tmp_path):
    data = write_jsonl(tmp_path / "labels.jsonl", [{"prompt": "Capital of France?", "answer": ["Paris", "paris"]}])
    task = JSONLTask(data=data)
    verifier = load_verifier(task.default_verifier)
    reference = task.problems()[0].reference
    assert [v.correct for v in verifier.verify(reference, [" Paris\n", "paris", "Lyon"])] == [True, True, False]


def test_end_to_end_with_the_numeric_verifier(data):
    pytest.importorskip("verifiers.numeric")
    task = JSONLTask(data=data, prompt_field="q", answer_field="a", verifier="numeric")
    verifier = load_verifier(task.default_verifier)
    verdicts = verifier.verify(task.problems()[0].reference, ["6 * 7 = 42\n#### 42", "#### 41"])
    assert [v.correct for v in verdicts] == [True, False]


def test_python_tests_reads_the_answer_field_as_test_code(tmp_path):
    records = [{"prompt": "Write add(a, b).", "tests": "assert add(2, 3) == 5", "prefix": "import math\n"}]
    data = write_jsonl(tmp_path / "code.jsonl", records)
    task = JSONLTask(data=data, answer_field="tests", verifier="python-tests", reference_fields=["prefix"])
    reference = task.problems()[0].reference
    assert reference == {"test": "assert add(2, 3) == 5", "prefix": "import math\n"}
    verifier = load_verifier(task.default_verifier)
    verdicts = verifier.verify(reference, ["def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"])
    assert [v.correct for v in verdicts] == [True, False]
