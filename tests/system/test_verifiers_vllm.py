"""Issue 21 through real vLLM with the embedded model (slow): confidence statistics computed while sampling,
majority vote for code on HumanEval (clusters stable under re-execution), and the LLM judge and generative
selection with the embedded model as the judge (its verdicts may be poor; the mechanics must be right)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness import genselect, sample, verify
from harness.pipeline.verify import verification_reference
from harness.reporting.selector_comparison import compare_verifiers, parse_selectors
from harness.store import RunStore
from verifiers.code import PythonTestsVerifier
from verifiers.judge import answer_segment

pytestmark = pytest.mark.slow

PROBLEMS, SAMPLES = 4, 6


@pytest.fixture(scope="module")
def humaneval_run(tmp_path_factory) -> Path:
    """HumanEval's first problems sampled by the embedded model (chat prompts), confidence over 16-token windows."""
    run_dir = tmp_path_factory.mktemp("humaneval") / "run"
    sample(
        "humaneval",
        problems=PROBLEMS,
        samples=SAMPLES,
        temperature=1.0,
        max_tokens=96,
        out=run_dir,
        engine_options={"confidence_window": 16, "confidence_tail": 8},
        progress="quiet",
    )
    verify(run_dir, workers=1, progress="quiet")
    return run_dir


def test_confidence_statistics_from_real_vllm(humaneval_run):
    rows = RunStore.open(humaneval_run).read_samples().to_pylist()
    assert len(rows) == PROBLEMS * SAMPLES
    for row in rows:
        assert row["conf_settings"] == "logprob; window 16; tail 8; bottom 0.1"
        # the logprob variant's mean is the mean of the sampled tokens' log-probabilities, which vLLM also sums
        assert row["conf_mean"] == pytest.approx(row["logprob_sum"] / row["n_tokens"], rel=1e-6, abs=1e-6)
        assert row["conf_min_window"] <= row["conf_bottom_window"] + 1e-12
        assert row["conf_bottom_window"] <= 1e-12  # means of log-probabilities
        if row["n_tokens"] >= 16:
            assert row["conf_min_window"] <= row["conf_mean"] + 1e-12
        assert all(math.isfinite(row[name]) for name in ("conf_min_window", "conf_tail", "conf_bottom_window"))


def test_code_majority_on_humaneval_is_stable_and_in_the_selector_table(humaneval_run):
    store = RunStore.open(humaneval_run)
    verdicts = store.read_verdicts(columns=["answer", "reason"]).to_pylist()
    texts = {(row["problem_id"], row["sample_idx"]): row["text"] for row in store.read_samples(["text"]).to_pylist()}
    assert any(row["answer"] is not None for row in verdicts), "some programs run on the prompt's examples"
    # re-executed, every program behaves as stored
    verifier = PythonTestsVerifier(max_workers=2)
    problems = {problem.problem_id: problem for problem in store.problems()}
    for problem_id, problem in problems.items():
        mine = [row for row in verdicts if row["problem_id"] == problem_id]
        again = verifier.verify(
            verification_reference(problem), [texts[(problem_id, row["sample_idx"])] for row in mine]
        )
        assert [verdict.answer for verdict in again] == [row["answer"] for row in mine]
    names = [entry["selector"] for entry in compare_verifiers(store)["selectors"]]
    assert "majority" in names and "conf-min-window" in names and "conf-majority=10" in names


def test_the_embedded_model_as_judge_and_selector(humaneval_run):
    report = verify(humaneval_run, "judge", judge_model="embedded", progress="quiet")
    store = RunStore.open(humaneval_run)
    key = report["verdict_set"]
    judged = store.read_verdicts(key, ["correct", "reason", "detail", "probability"]).to_pylist()
    assert len(judged) == PROBLEMS * SAMPLES and report["verified"] == PROBLEMS * SAMPLES
    assert all(row["reason"] in ("judged", "judge_unparsed") for row in judged)
    assert all(0.0 <= row["probability"] <= 1.0 for row in judged)
    assert any(row["detail"] for row in judged), "the judge's replies are stored"
    texts = store.read_samples(["text"]).to_pylist()
    distinct = {(row["problem_id"], answer_segment(row["text"])) for row in texts}
    usage = store.manifest["judging"][key]
    assert usage["calls"] == len(distinct) and usage["prompt_tokens"] > 0 and usage["output_tokens"] > 0
    # generative selection: 2 candidates, one subset per problem
    picked = genselect(humaneval_run, "embedded", ks=[2], subsets=1, progress="quiet")
    assert picked["calls"] == PROBLEMS and picked["judge"]["prompt_tokens"] > 0
    result = compare_verifiers(RunStore.open(humaneval_run), parse_selectors("coverage,genselect"), [1, 2])
    entry = result["selectors"][1]
    assert entry["judge_tokens"]["calls"] == PROBLEMS and 0.0 <= entry["accuracy"][1] <= 1.0
