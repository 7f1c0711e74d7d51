import random

import pytest

from harness.core.jsonl import read_jsonl
from tasks import load_task
from tasks.gsm8k import final_answer
from verifiers import load_verifier


@pytest.fixture(scope="module")
def task(shared_data):
    return load_task("gsm8k", data=str(shared_data / "gsm8k_test.jsonl"))


def test_every_reference_solution_verifies_as_correct(task, shared_data):
    records = read_jsonl(shared_data / "gsm8k_test.jsonl")
    verifier = load_verifier("numeric")
    problems = task.problems()
    assert len(problems) == len(records) == 1319
    verdicts = [verifier.verify(p.reference, [r["answer"]])[0] for p, r in zip(problems, records)]
    failures = [(p.problem_id, v) for p, v in zip(problems, verdicts) if not v.correct]
    assert failures == []


def test_shuffled_solutions_verify_as_wrong(task, shared_data):
    records = read_jsonl(shared_data / "gsm8k_test.jsonl")
    shuffled = [r["answer"] for r in records]
    random.Random(0).shuffle(shuffled)
    verifier = load_verifier("numeric")
    correct = sum(verifier.verify(p.reference, [s])[0].correct for p, s in zip(task.problems(), shuffled))
    # distinct problems can share a final answer by chance; that rate must stay small
    assert correct / len(shuffled) < 0.02


def test_prompt_is_eight_shot_from_the_train_split(task, shared_data):
    train = read_jsonl(shared_data / "gsm8k_train.jsonl")
    prompt = task.problems()[0].prompt
    assert prompt.count("Question:") == 9 and prompt.endswith("Answer:")
    assert train[0]["question"] in prompt and train[7]["question"] in prompt and train[8]["question"] not in prompt
    assert "<<" not in prompt, "calculator annotations are stripped from exemplars"
    assert "Janet" in prompt.rsplit("Question:", 1)[1]


def test_loader_errors_are_clear(tmp_path, shared_data):
    bad = tmp_path / "gsm8k_test.jsonl"
    bad.write_text('{"question": "q"}\n')
    (tmp_path / "gsm8k_train.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n')
    with pytest.raises(ValueError, match=r"gsm8k_test.jsonl:1: field 'answer' must be non-empty text"):
        load_task("gsm8k", data=str(bad)).problems()
    with pytest.raises(ValueError, match="no sibling train file"):
        load_task("gsm8k", data=str(tmp_path / "other.jsonl"))
    with pytest.raises(ValueError, match="does not accept"):
        load_task("gsm8k", data=str(shared_data / "gsm8k_test.jsonl"), colour="blue")
    with pytest.raises(ValueError, match="unknown task"):
        load_task("nope")
    assert final_answer("a\n#### 1,234") == "1,234"


def test_numeric_verifier_reasons_and_normalised_answers():
    verifier = load_verifier("numeric")
    verdicts = verifier.verify({"answer": "1,234"}, ["so #### 1234", "It costs $1,234.00.", "no idea", "#### 12/3"])
    assert [v.reason for v in verdicts] == ["correct", "correct", "no_answer", "wrong"]
    assert [v.answer for v in verdicts] == ["1234", "1234", None, "4"]


def test_prompt_template_override_and_chat_style(tmp_path, shared_data):
    template = tmp_path / "mine.jinja"
    template.write_text("{{ fewshot | length }} shots. Q: {{ question }}\nA:")
    task = load_task("gsm8k", data=str(shared_data / "gsm8k_test.jsonl"), prompt_template=str(template), shots=2)
    assert task.problems()[0].prompt.startswith("2 shots. Q: Janet") and task.problems()[0].prompt.endswith("A:")
    assert task.describe()["prompt"]["template"] == str(template)
    chat = load_task("gsm8k", data=str(shared_data / "gsm8k_test.jsonl"), prompt_style="chat")
    message = chat.problems()[0].prompt[0]
    assert message["role"] == "user" and "####" in message["content"] and "Question:" not in message["content"]
    assert chat.stop == ()
