"""Records and references are checked when they are read, not after sampling (issue 22): every record of a
task when it loads, every reference by the verifier that will judge against it, and the problems asked for
against those there are. A bad one is one error naming the file, line and field before any engine starts:
the run directory is not even created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_damage import refused, ttc
from tests.support.helpers import FAKE_ENGINE, cli_flags, fake_model_dir


def jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def sample_args(tmp_path: Path, task: str, data: Path, *extra: str) -> list[str]:
    model = fake_model_dir(tmp_path)
    flags = cli_flags(task=task, data=data, engine=FAKE_ENGINE, model=model, samples=2, out=tmp_path / "run")
    return ["sample", *flags, *extra]


GOOD = {"prompt": "What is 6 x 7?", "answer": "42"}


@pytest.mark.parametrize(
    ("bad", "options", "naming"),
    [
        ({"prompt": "x", "answer": {"value": 1}}, (), ("answer_field 'answer' holds {'value': 1}, not an answer",)),
        ({"prompt": "x", "answer": []}, (), ("answer_field 'answer' holds [], not an answer",)),
        ({"prompt": "x", "answer": None}, (), ("answer_field 'answer' holds None",)),
        ({"prompt": "x", "answer": "  "}, (), ("answer_field 'answer' holds '  '",)),
        ({"prompt": "", "answer": "1"}, (), ("has an empty prompt",)),
        ({"prompt": "x", "answer": "1", "id": None}, ("--id-field", "id"), ("field 'id' (id_field='id')", "got None")),
        (
            {"prompt": "x", "answer": "seventeen"},
            ("--verifier", "numeric"),
            ("problem '2'", "reference['answer'] 'seventeen' is not a number", "verifier numeric"),
        ),
        ({"prompt": "x", "answer": ["a", ""]}, (), ("reference['answer'] must be a non-empty string",)),
    ],
    ids=["dict", "empty list", "null", "blank", "empty prompt", "null id", "words for numeric", "empty choice"],
)
def test_a_bad_record_of_a_jsonl_task_is_named_by_file_and_line_before_anything_starts(tmp_path, bad, options, naming):
    records = [GOOD, {**GOOD, "id": "b"} if "id" in bad else GOOD, bad]
    if "id" in bad:
        records = [{**GOOD, "id": "a"}, {**GOOD, "id": "b"}, bad]
    data = jsonl(tmp_path / "tasks.jsonl", records)
    refused(*sample_args(tmp_path, "jsonl", data, *options), naming=(f"{data}:3", *naming))
    assert not (tmp_path / "run").exists(), "refused before the run directory was made"


def test_the_choice_verifier_checks_its_letters_before_anything_starts(tmp_path):
    records = [{"prompt": "Pick one: (A) red (B) blue", "answer": "B"}] * 2 + [{"prompt": "x", "answer": "blue"}]
    data = jsonl(tmp_path / "tasks.jsonl", records)
    refused(
        *sample_args(tmp_path, "jsonl", data, "--verifier", "choice"),
        naming=(f"{data}:3", "problem '2'", "the choice verifier needs reference['answer'], a letter"),
    )
    assert not (tmp_path / "run").exists()


def test_gsm8k_records_are_checked_where_they_lie(tmp_path):
    train = jsonl(tmp_path / "gsm8k_train.jsonl", [{"question": "q", "answer": "so #### 1"}])
    good = {"question": "Two apples and one?", "answer": "2 + 1 = 3\n#### 3"}
    cases = {
        "a JSON number": ({"question": "q", "answer": 3}, "field 'answer' must be non-empty text, got 3"),
        "no final answer": ({"question": "q", "answer": "it is 3"}, "field 'answer' has no '#### N' final answer"),
        "a null question": ({"question": None, "answer": "#### 3"}, "field 'question' must be non-empty text"),
    }
    for bad, message in cases.values():
        data = jsonl(tmp_path / "gsm8k_test.jsonl", [good, good, bad])
        refused(*sample_args(tmp_path, "gsm8k", data), naming=(f"{data}:3: {message}",))
    data = jsonl(tmp_path / "gsm8k_test.jsonl", [good, {"question": "q", "answer": "#### seventeen"}])
    refused(*sample_args(tmp_path, "gsm8k", data), naming=(f"{data}:2", "'seventeen' is not a number"))
    assert train.exists() and not (tmp_path / "run").exists()


def test_mbpp_tests_are_checked_where_they_lie(tmp_path, shared_data):
    records = [json.loads(line) for line in (shared_data / "mbpp.jsonl").read_text().splitlines()[:12]]
    for value, message in [
        ("assert f(1) == 2", "field 'test_list' must be a non-empty list of non-empty strings, got 'assert"),
        ([], "field 'test_list' must be a non-empty list of non-empty strings, got []"),
    ]:
        broken = [dict(record) for record in records]
        broken[-1]["test_list"] = value
        data = jsonl(tmp_path / "mbpp.jsonl", broken)
        refused(*sample_args(tmp_path, "mbpp", data, "--split", "all"), naming=(f"{data}:12: {message}",))


def test_problems_beyond_the_file_say_how_many_there_are(tmp_path):
    """Said before sampling, not refused: the default number of problems (the default run's 36) often exceeds
    a small file of one's own."""
    data = jsonl(tmp_path / "tasks.jsonl", [GOOD, GOOD, GOOD])
    code, out, err, _ = ttc(*sample_args(tmp_path, "jsonl", data, "--problems", "5"))
    assert code == 0, err
    note, first = out.splitlines()[:2]
    assert note == f"note: task 'jsonl' has 3 problems in {data}, fewer than the 5 asked for: the run takes all 3"
    assert first.startswith("run directory:") and "(0/6 samples already stored)" in first


def test_verify_checks_the_references_against_the_verifier_asked_for(tmp_path):
    data = jsonl(tmp_path / "tasks.jsonl", [GOOD, {"prompt": "Name a colour", "answer": "blue"}])
    code, _, err, _ = ttc(*sample_args(tmp_path, "jsonl", data, "--quiet"))  # the exact verifier: fine
    assert code == 0, err
    run_dir = tmp_path / "run"
    line = refused("verify", run_dir, "--verifier", "numeric", naming=(f"{run_dir / 'problems.jsonl'}:2",))
    assert "'blue' is not a number" in line and not (run_dir / "verdicts" / "numeric").exists()
