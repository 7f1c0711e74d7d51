"""The verification benchmark, on a small shape (the README figures come from the full run)."""

from __future__ import annotations

from benchmarks.verification import (
    PATHOLOGICAL_ANSWERS,
    main,
    pathological_batch_timing,
    run_verification_benchmark,
    synthetic_samples,
)
from harness.core.jsonl import read_jsonl
from verifiers.math import extract_answer


def test_synthetic_samples_are_deterministic_and_mostly_answered(shared_data):
    records = read_jsonl(shared_data / "math500_test.jsonl")
    problems = synthetic_samples(records, n_problems=3, samples_per_problem=200, seed=5)
    assert problems == synthetic_samples(records, n_problems=3, samples_per_problem=200, seed=5)
    reference, completions = problems[0]
    assert reference == {"answer": records[0]["answer"]} and len(completions) == 200
    answers = [extract_answer(text) for text in completions]
    assert 0.9 < sum(a is not None for a in answers) / len(answers) < 1.0
    assert len(set(answers)) < 40  # mostly repeated answers


def test_benchmark_figures(shared_data, capsys):
    figures = run_verification_benchmark(
        shared_data / "math500_test.jsonl",
        n_problems=2,
        samples_per_problem=40,
        baseline_samples_per_problem=10,
        repeats=1,
    )
    assert figures["cached"]["samples"] == 80 and figures["per_sample_math_verify"]["samples"] == 20
    assert figures["agreement"] == 1.0
    assert figures["speedup"] == figures["cached"]["samples_per_s"] / figures["per_sample_math_verify"]["samples_per_s"]
    main(
        [
            "--data",
            str(shared_data / "math500_test.jsonl"),
            "--problems",
            "1",
            "--samples",
            "20",
            "--baseline-samples",
            "5",
            "--repeats",
            "1",
        ]
    )
    assert "speed-up" in capsys.readouterr().out


def test_pathological_batch_reports_its_time_and_every_verdict(capsys):
    figures = pathological_batch_timing(timeout=1.0)  # a short budget: the test checks figures, not speed
    assert figures["answers"] == 32 and figures["pathological"] == 12 and figures["seconds"] > 0
    verdicts = figures["verdicts"]
    assert len(verdicts) == 32 and verdicts["ordinary \\frac{3}{4}"]["reason"] == "correct"
    refused = [name for name in PATHOLOGICAL_ANSWERS if verdicts[name]["detail"].startswith("refused before parsing")]
    assert len(refused) == 10 and not any(verdicts[name]["reason"] == "correct" for name in PATHOLOGICAL_ANSWERS)
    main(["--pathological", "--timeout", "1"])
    assert "32 distinct answers, 12 pathological: " in capsys.readouterr().out
