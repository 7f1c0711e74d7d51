"""LLM judges (issue 21 item 3) with a scripted judge engine: the judge verifier (verdicts, replies, P(yes),
caching per distinct answer, token cost), the judge as a score set, and generative selection (genselect),
resumed and refused as the other steps are."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from harness import agreement, genselect, load_run, sample, score, verify
from harness.core.errors import OptionError
from harness.reporting.selector_comparison import compare_verifiers, parse_selectors
from harness.store import RunStore
from tests.support.helpers import fake_sample_arguments, ttc
from tests.support.judge_engine import JUDGE_ENGINE, final_answer, judge_model_dir
from tests.support.scripted_engine import SCRIPTED_ENGINE, scripted_model_dir
from verifiers.judge import answer_segment, parse_choice, parse_verdict, question_text, yes_probability


@pytest.fixture
def judged_run(shared_data, tmp_path) -> tuple[Path, Path]:
    """A GSM8K run of 6 problems x 8 samples on a scripted engine (each problem's samples repeat three answers,
    one right) verified by numeric, and a scripted judge."""
    from tasks import load_task

    problems = load_task("gsm8k", data=str(shared_data / "gsm8k_test.jsonl"), shots=0).problems()[:6]
    script = {
        p.problem_id: [f"So #### {p.reference['answer']}", "Then #### 7", "#### 11", f"So #### {p.reference['answer']}"]
        for p in problems
    }
    arguments = fake_sample_arguments(shared_data, tmp_path, problems=6, samples=8, task_options={"shots": 0})
    arguments.update(engine=SCRIPTED_ENGINE, model=str(scripted_model_dir(tmp_path, script)))
    run_dir = sample("gsm8k", **arguments).run_dir
    verify(run_dir, "numeric", workers=1, progress="quiet")
    key = {question_text(p.prompt).splitlines()[-1][:80]: str(p.reference["answer"]) for p in problems}
    return run_dir, judge_model_dir(tmp_path, key)


def listing(run_dir: Path) -> dict[str, int]:
    return {str(path): path.stat().st_mtime_ns for path in run_dir.rglob("*")}


def test_reply_parsing_and_yes_probability():
    assert parse_verdict("Yes.") is True and parse_verdict("**No**, the answer is 7") is False
    assert parse_verdict("The answer is correct") is True and parse_verdict("I am not sure") is None
    assert yes_probability([{"The": -0.1}, {" yes": np.log(0.6), "Yes": np.log(0.2), " no": np.log(0.2)}]) == (
        pytest.approx(0.8)
    )
    assert yes_probability(None) is None and yes_probability([{"maybe": -0.1}]) is None
    assert parse_choice("Answer 3 is right", 4) == 2 and parse_choice("Answer 7", 4) is None
    assert answer_segment("x" * 10 + "#### 5", 8) == "...xx#### 5"


def test_the_judge_verifier_judges_each_distinct_answer_once(judged_run):
    run_dir, model = judged_run
    report = verify(run_dir, "judge", judge_model=model, judge_engine=JUDGE_ENGINE, progress="quiet")
    store = RunStore.open(run_dir)
    key = report["verdict_set"]
    assert key.startswith("judge-") and store.verdict_sets()[key]["model"] == str(model.resolve())
    judge = store.read_verdicts(key, ["correct", "reason", "detail", "probability", "answer"]).to_pylist()
    numeric = store.read_verdicts("numeric", ["correct"]).to_pylist()
    assert len(judge) == len(numeric) == 48
    assert [row["correct"] for row in judge] == [row["correct"] for row in numeric]  # a perfect scripted judge
    assert {row["detail"] for row in judge} == {"Yes", "No"} and {row["reason"] for row in judge} == {"judged"}
    assert {round(row["probability"], 6) for row in judge} == {0.9, 0.2}
    texts = store.read_samples(["text"]).to_pylist()
    distinct = {(row["problem_id"], answer_segment(row["text"])) for row in texts}
    usage = store.manifest["judging"][key]
    assert report["distinct_answers"] == usage["calls"] == len(distinct) == 6 * 3  # cached per distinct answer
    assert report["judge"]["prompt_tokens"] == usage["prompt_tokens"] > 0
    # resumed: nothing left to judge, no call
    again = verify(run_dir, "judge", judge_model=model, judge_engine=JUDGE_ENGINE, progress="quiet")
    assert again["verified"] == 0 and RunStore.open(run_dir).manifest["judging"][key]["calls"] == usage["calls"]
    # its agreement with numeric, and the AUROC of its P(yes)
    result, _ = agreement(run_dir, key, "numeric")
    assert result.agreement.kappa.value == pytest.approx(1.0) and result.agreement.auroc.value == pytest.approx(1.0)
    thresholded = load_run(run_dir).agreement(key, "numeric", threshold=0.5)
    assert thresholded.agreement.accuracy.value == 1.0


def test_the_judge_as_a_score_set_and_a_selector(judged_run):
    run_dir, model = judged_run
    scoring = score(run_dir, judge_model=model, judge_engine=JUDGE_ENGINE, name="judge-scores", progress="quiet")
    assert scoring["score_set"] == "judge-scores" and scoring["scored"] == 48 and scoring["judge"]["calls"] > 0
    store = RunStore.open(run_dir)
    scores = store.scores("judge-scores").read(["score"]).column("score").to_pylist()
    assert set(np.round(scores, 6)) == {0.9, 0.2}
    result = compare_verifiers(store, parse_selectors("coverage,orm=judge-scores"), verifier="numeric")
    coverage, judge = (entry["accuracy"] for entry in result["selectors"])
    assert judge == pytest.approx(coverage)  # a perfect judge picks a right sample whenever there is one


def test_generative_selection_is_stored_estimated_and_costed(judged_run):
    run_dir, model = judged_run
    result = genselect(run_dir, model, ks=[2, 4], subsets=3, judge_engine=JUDGE_ENGINE, progress="quiet")
    assert result["calls"] == 6 * 2 * 3 and result["judge"]["prompt_tokens"] > 0
    store = RunStore.open(run_dir)
    picks = store.selections("genselect").read().to_pylist()
    assert len(picks) == 36 and {row["k"] for row in picks} == {2, 4}
    assert all(len(row["candidates"]) == row["k"] == len(set(row["candidates"])) for row in picks)
    comparison = compare_verifiers(store, parse_selectors("coverage,genselect"), [1, 2, 4], verifier="numeric")
    entry = comparison["selectors"][1]
    assert entry["judge_tokens"]["calls"] == 36 and entry["selection_set"] == "genselect"
    # by hand: a pick's correctness, an unparsed pick the share of its candidates that are correct
    verdicts = {(r["problem_id"], r["sample_idx"]): r["correct"] for r in store.read_verdicts("numeric").to_pylist()}
    per = defaultdict(list)
    for row in picks:
        chosen = row["choice"]
        pid = row["problem_id"]
        value = verdicts[(pid, chosen)] if chosen >= 0 else np.mean([verdicts[(pid, i)] for i in row["candidates"]])
        per[(pid, row["k"])].append(float(value))
    for column, k in enumerate((2, 4)):
        expected = np.mean([np.mean(per[(problem.problem_id, k)]) for problem in store.problems()])
        assert entry["accuracy"][column + 1] == pytest.approx(expected)
    # the judge names a right candidate whenever the subset has one: genselect@k is pass@k of its subsets
    texts = {(r["problem_id"], r["sample_idx"]): r["text"] for r in store.read_samples(["text"]).to_pylist()}
    for row in picks:
        if row["choice"] >= 0:
            assert verdicts[(row["problem_id"], row["choice"])]
            assert final_answer(texts[(row["problem_id"], row["choice"])]) is not None
    again = genselect(run_dir, model, ks=[2, 4], subsets=3, judge_engine=JUDGE_ENGINE, progress="quiet")
    assert again["calls"] == 0, "resumed: every call is stored"
    with pytest.raises(OptionError, match="genselect=genselect was run at k"):
        compare_verifiers(store, parse_selectors("genselect"), [1, 8], verifier="numeric")
    shown = ttc("compare-verifiers", str(run_dir), "--selectors", "coverage,genselect", "--k", "1,2,4")
    assert shown.returncode == 0 and "judge" in shown.stdout and "reply tokens" in shown.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["verify", "--verifier", "judge"], "--judge-model: --verifier judge needs the judge model"),
        (["verify", "--verifier", "judge", "--judge-model", "NOWHERE/judge.json"], "--judge-model"),
        (
            ["verify", "--verifier", "numeric", "--judge-model", "x"],
            "--judge-model: names the model of --verifier judge",
        ),
        (["verify", "--verifier", "judge", "--judge-model", "x", "--judge-base-url", "http://h"], "--judge-base-url"),
        (["verify", "--verifier", "judge", "--judge-model", "x", "--judge-engine", "nope"], "--judge-engine"),
        (["verify", "--verifier", "judge", "--judge-model", "x", "--judge-template", "none.jinja"], "--judge-template"),
        (["score", "--model", "m", "--judge-model", "x"], "--model: give a reward model"),
        (["genselect", "--judge-model", "x", "--k", "1"], r"--k: must lie in \[2, 64\], got 1"),
        (["genselect", "--judge-model", "x", "--k", "99"], "--k: must lie in"),
    ],
)
def test_bad_judge_input_is_one_line_and_writes_nothing(judged_run, arguments, message):
    run_dir, _ = judged_run
    if "NOWHERE" in arguments[-1]:
        arguments = [*arguments[:-1], str(run_dir / "manifest.json")]  # exists, and is not a checkpoint
    before = listing(run_dir)
    result = ttc(arguments[0], str(run_dir), *arguments[1:])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and re.search(message, lines[0]), result.stderr
    assert listing(run_dir) == before, "nothing written into the run"


def test_a_judge_engine_that_cannot_start_leaves_the_run_untouched(judged_run, tmp_path):
    run_dir, _ = judged_run
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "config.json").write_text("{}")  # a checkpoint directory the scripted judge cannot read (no key)
    before = listing(run_dir)
    result = ttc(
        "verify", str(run_dir), "--verifier", "judge", "--judge-model", str(empty), "--judge-engine", JUDGE_ENGINE
    )
    assert result.returncode == 2 and "key.json" in result.stderr, result.stderr
    lock = str(run_dir / ".lock")  # taken while the judge started: the one file touched
    assert {path: time for path, time in listing(run_dir).items() if path != lock} == {
        path: time for path, time in before.items() if path != lock
    }
    assert json.loads((run_dir / "manifest.json").read_text()).get("judging") is None


def test_with_reasoning_on_the_judge_reads_the_answer_after_the_thinking(shared_data, tmp_path):
    """A reasoning model's samples: the judge sees only the answer after </think>; thinking that never closed is
    wrong without asking the judge (never credited, though it holds the right answer), as for every verifier."""
    from tasks import load_task

    problems = load_task("gsm8k", data=str(shared_data / "gsm8k_test.jsonl"), shots=0).problems()[:3]
    script = {
        p.problem_id: [
            f"<think>maybe #### 11</think>So #### {p.reference['answer']}",  # right after the thinking
            f"<think>it is #### {p.reference['answer']}</think>So #### 11",  # right only inside the thinking
            f"<think>so #### {p.reference['answer']}",  # cut off in the thinking
            "<think>hm</think>  ",  # nothing after the thinking
        ]
        for p in problems
    }
    arguments = fake_sample_arguments(shared_data, tmp_path, problems=3, samples=4, task_options={"shots": 0})
    arguments.update(engine=SCRIPTED_ENGINE, model=str(scripted_model_dir(tmp_path, script)))
    run_dir = sample("gsm8k", **arguments).run_dir
    model = judge_model_dir(tmp_path, {})
    on = verify(run_dir, "judge", judge_model=model, judge_engine=JUDGE_ENGINE, reasoning="on", progress="quiet")
    assert on["reasoning"] == {"mode": "on", "think_tags": ["<think>", "</think>"]}
    assert on["distinct_answers"] == on["judge"]["calls"] == 3 * 2  # the two samples with an answer, per problem
    store = RunStore.open(run_dir)
    assert store.verdict_sets()[on["verdict_set"]]["reasoning"]["mode"] == "on"
    rows = store.read_verdicts(on["verdict_set"], ["sample_idx", "correct", "reason", "probability"]).to_pylist()
    by_index = defaultdict(set)
    for row in rows:
        by_index[row["sample_idx"] % 4].add((row["correct"], row["reason"], round(row["probability"], 6)))
    assert by_index == {
        0: {(True, "judged", 0.9)},
        1: {(False, "judged", 0.2)},
        2: {(False, "truncated_thinking", 0.0)},
        3: {(False, "no_answer", 0.0)},
    }
    # judged whole (reasoning off), the thinking is read too: another verdict set
    off = verify(run_dir, "judge", judge_model=model, judge_engine=JUDGE_ENGINE, reasoning="off", progress="quiet")
    assert off["verdict_set"] != on["verdict_set"] and off["judge"]["calls"] == 3 * 4
    whole = store.read_verdicts(off["verdict_set"], ["sample_idx", "correct"]).to_pylist()
    assert {row["correct"] for row in whole if row["sample_idx"] % 4 == 2} == {True}, "the cut-off thinking's answer"
