"""Verifier agreement and corrected pass@k on run directories (issue 21 items 1 and 2): ``ttc agreement`` on the
real Qwen2.5-Math samples (imported verdicts against math-verify's), simulated verdict sets with known error
rates, ``ttc analyze --verifier-error`` on a simulated run whose truth is known, and the bad input of each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from harness import agreement, analyze, import_samples, load_run, verify
from harness.core.errors import OptionError
from harness.reporting.html import MAX_AGREEMENTS, agreement_section
from harness.store import RunStore
from tests.support.helpers import ttc

QWEN = "qwen25math_rm_maj_example_math_cot_100.jsonl"


@pytest.fixture(scope="module")
def qwen_run(shared_data, tmp_path_factory) -> Path:
    """The real Qwen2.5-Math samples imported (verdict set ``imported``), judged again by math-verify."""
    run_dir = tmp_path_factory.mktemp("qwen") / "run"
    import_samples(shared_data / QWEN, run_dir)
    verify(run_dir, "math", workers=1, progress="quiet")
    return run_dir


def listing(run_dir: Path) -> list[str]:
    return sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("*"))


def test_agreement_of_imported_verdicts_with_math_verify_on_real_samples(qwen_run):
    result, files = agreement(qwen_run, "imported", "math")
    stats = result.agreement
    store = RunStore.open(qwen_run)
    a = store.read_verdicts("imported", ["correct"]).to_pandas()
    b = store.read_verdicts("math", ["correct"]).to_pandas()
    both = a.merge(b, on=["problem_id", "sample_idx"], suffixes=("_a", "_b"))
    cells = [stats.true_positives, stats.false_positives, stats.false_negatives, stats.true_negatives]
    assert sum(cells) == stats.samples == len(both) == 800 and stats.problems == 100
    assert stats.true_positives == int((both.correct_a & both.correct_b).sum())
    assert stats.false_positives == int((both.correct_a & ~both.correct_b).sum())
    assert stats.false_negatives == int((~both.correct_a & both.correct_b).sum())
    assert result.only_verdicts == result.only_against == 0
    assert stats.kappa.value > 0.9  # two careful math checkers agree almost everywhere
    stored = json.loads(files[0].read_text())
    assert stored["confusion"] == {
        "true_positives": stats.true_positives,
        "false_positives": stats.false_positives,
        "false_negatives": stats.false_negatives,
        "true_negatives": stats.true_negatives,
    }
    lines = [json.loads(line) for line in files[1].read_text().splitlines()]
    assert len(lines) == stats.false_positives + stats.false_negatives == len(result.disagreements)
    for line in lines:
        row = both[(both.problem_id == line["problem_id"]) & (both.sample_idx == line["sample_idx"])].iloc[0]
        assert line["a"]["correct"] == bool(row.correct_a) != line["b"]["correct"] == bool(row.correct_b)
        assert line["text"]  # the sample, to read
    # the reward model's scores as verdicts at a threshold, with their AUROC; the same through the API's Run
    scored = load_run(qwen_run).agreement("imported", "math", threshold=0.5)
    assert scored.verdicts.kind == "scores" and scored.agreement.auroc is not None
    assert 0.6 < scored.agreement.auroc.value < 1
    assert scored.agreement.samples == 800


def test_intervals_contain_simulated_error_rates_at_their_nominal_rate(qwen_run, tmp_path):
    """Verdict sets flipped from math-verify's with known rates (varying by problem, as a checker's errors do),
    stored in a copy of the run and compared through it: the intervals contain the rates at about 95%."""
    qwen_run = Path(shutil.copytree(qwen_run, tmp_path / "run"))  # the other tests see the run's two sets only
    store = RunStore.open(qwen_run)
    reference = store.read_verdicts("math", ["correct", "reason", "answer", "detail"])
    truth = reference.column("correct").to_numpy(zero_copy_only=False).astype(bool)
    problems = reference.column("problem_id").to_numpy(zero_copy_only=False)
    codes = np.unique(problems, return_inverse=True)[1]
    rng = np.random.default_rng(11)
    fnr, simulations, hits = 0.1, 80, {"false_negative_rate": 0, "recall": 0}
    with RunStore.open(qwen_run, writable=True) as writer:
        for simulation in range(simulations):
            per_problem = rng.beta(2, 18, size=codes.max() + 1)  # mean 0.1, varying by problem
            flipped = truth & (rng.random(truth.size) < per_problem[codes])
            key = writer.register_verdict_set({"name": f"simulated-{simulation}"})
            writer.write_verdicts(key, reference.set_column(2, "correct", pa.array(truth & ~flipped)))
    run = load_run(qwen_run)
    for simulation in range(simulations):
        result = run.agreement(f"simulated-{simulation}", "math").agreement
        hits["false_negative_rate"] += result.false_negative_rate.low <= fnr <= result.false_negative_rate.high
        hits["recall"] += result.recall.low <= 1 - fnr <= result.recall.high
    coverage = {name: count / simulations for name, count in hits.items()}
    assert all(0.85 <= value <= 1.0 for value in coverage.values()), coverage
    # the report's section compares with the first MAX_AGREEMENTS other sets and counts the rest
    section = agreement_section(RunStore.open(qwen_run), store.verdict_key({"name": "simulated-0"}))
    assert len(section["rows"]) == MAX_AGREEMENTS and section["omitted"] == simulations + 1 - MAX_AGREEMENTS


def test_bad_agreement_input_is_one_line_naming_the_flag_and_writes_nothing(qwen_run):
    before = listing(qwen_run)
    cases = {
        ("--verdicts", "math", "--against", "math"): "--against: compares verdict set",
        ("--verdicts", "math", "--against", "judge"): "--against: .* has no verdict set or score set 'judge'",
        ("--verdicts", "nothing", "--against", "math"): "--verdicts: .* has no verdict set",
        ("--verdicts", "imported", "--against", "math", "--threshold", "high"): "--threshold: must be a number",
        ("--verdicts", "math", "--against", "imported-d931044e", "--threshold", "0.5"): "--threshold: applies to",
        ("--verdicts", "math", "--against", "imported", "--confidence", "1.5"): "--confidence",
    }
    import re

    for arguments, message in cases.items():
        result = ttc("agreement", str(qwen_run), *arguments)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and re.search(message, lines[0]), (arguments, result.stderr)
    assert listing(qwen_run) == before, "nothing written into the run"


def test_ttc_agreement_json_and_disagreements_file(qwen_run, tmp_path):
    out = tmp_path / "disagree.jsonl"
    result = ttc(
        "agreement", str(qwen_run), "--verdicts", "math", "--against", "imported", "--json", "--disagreements", str(out)
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] and payload["samples"] == 800 and payload["files"][1] == str(out)
    assert len(out.read_text().splitlines()) == payload["disagreements"]
    refused = ttc(
        "agreement",
        str(qwen_run),
        "--verdicts",
        "math",
        "--against",
        "imported",
        "--disagreements",
        str(qwen_run / "manifest.json"),
    )
    assert refused.returncode == 2 and "--disagreements" in refused.stderr


def simulated_run(tmp_path: Path, fpr: float, fnr: float, problems: int = 200, samples: int = 32, seed: int = 1):
    """A run whose samples' true correctness is known (true success rates from a Beta law) and whose imported
    verdicts err with the given rates: returns the run directory and the true pass@k per k."""
    rng = np.random.default_rng(seed)
    theta = np.where(rng.random(problems) < 0.3, 0.0, rng.beta(0.6, 1.5, problems))
    true = rng.random((problems, samples)) < theta[:, None]
    noise = rng.random(true.shape)
    verdicts = np.where(true, noise >= fnr, noise < fpr)
    records = [
        {
            "idx": index,
            "question": f"problem {index}",
            "gt": "1",
            "code": [f"sample {j}" for j in range(samples)],
            "pred": [str(int(v)) for v in row],
            "score": [bool(v) for v in row],
        }
        for index, row in enumerate(verdicts)
    ]
    source = tmp_path / "simulated.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    run_dir = tmp_path / "simulated"
    import_samples(source, run_dir)
    ks = np.array([1, 2, 4, 8, 16, 32])
    truth = (1 - (1 - theta[:, None]) ** ks[None, :]).mean(axis=0)
    return run_dir, dict(zip(ks.tolist(), truth.tolist()))


def test_analyze_corrects_pass_at_k_for_known_error_rates(tmp_path):
    run_dir, truth = simulated_run(tmp_path, fpr=0.08, fnr=0.1)
    summary = analyze(run_dir, verifier_error="0.08,0.1")
    rows = {row["k"]: row for row in summary["corrected"]["pass_at_k"]}
    assert set(rows) == set(truth)
    for k, value in truth.items():
        assert rows[k]["low"] <= value <= rows[k]["high"], (k, value, rows[k])
    assert not rows[32]["raw_low"] <= truth[32] <= rows[32]["raw_high"], "the raw curve misses the truth"
    raw = {row["k"]: row["coverage"] for row in summary["pass_at_k"]}
    assert rows[1]["raw"] == pytest.approx(raw[1])
    stored = json.loads((run_dir / "summary.json").read_text())["corrected"]
    assert stored["false_positive_rate"]["value"] == 0.08 and stored["forecast"]["k"] == 320
    # forecast and budget from the corrected curve, the rates read back from the summary
    run = load_run(run_dir)
    forecast = run.forecast(32, confidence=0.95, corrected=True)
    assert forecast.method == "corrected" and forecast.low <= truth[32] <= forecast.high
    assert forecast.coverage == pytest.approx(rows[32]["corrected"], abs=1e-9)
    plan = run.budget(0.5, corrected=True)
    assert plan.method == "corrected" and plan.k is not None
    assert run.forecast(plan.k, corrected=True).coverage >= 0.5 > run.forecast(plan.k - 1, corrected=True).coverage
    # the CLI beside the raw curve
    shown = ttc("analyze", str(run_dir), "--verifier-error", "0.08,0.1")
    assert shown.returncode == 0 and "corrected" in shown.stdout and "raw pass@k" in shown.stdout
    forecast_cli = ttc("forecast", str(run_dir), "--corrected", "--k", "64", "--json")
    assert json.loads(forecast_cli.stdout)["forecasts"]["all"]["method"] == "corrected"


def test_error_rates_from_an_agreement_file(qwen_run, tmp_path):
    result, files = agreement(qwen_run, "imported", "math")
    summary = analyze(qwen_run, "imported", verifier_error_from=files[0])
    corrected = summary["corrected"]
    assert corrected["false_negative_rate"]["distribution"] == "beta"
    assert corrected["false_negative_rate"]["value"] == pytest.approx(result.agreement.false_negative_rate.value)
    # the report shows the corrected curve beside the raw one, and the two verdict sets' agreement
    html = load_run(qwen_run, "imported").report(tmp_path / "report.html").read_text()
    for expected in ("Corrected for verifier error", "raw pass@k", "Agreement between verifiers", "math-"):
        assert expected in html, expected


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--verifier-error", "0.5,0.1"], r"--verifier-error: the false-positive rate must lie in \[0, 0.5\)"),
        (["--verifier-error", "0.1,-0.1"], r"--verifier-error: the false-negative rate must lie in \[0, 0.5\)"),
        (["--verifier-error", "0.1"], "--verifier-error: give two rates"),
        (["--verifier-error", "low,high"], "--verifier-error: rates must be numbers"),
        (["--verifier-error", "0.1,0.1", "--verifier-error-from", "x.json"], "not both"),
        (["--verifier-error-from", "missing.json"], "missing.json"),
    ],
)
def test_bad_error_rates_are_refused_before_anything_is_written(qwen_run, flags, message):
    import re

    before = {path: path.stat().st_mtime_ns for path in qwen_run.rglob("*")}
    result = ttc("analyze", str(qwen_run), *flags)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and re.search(message, lines[0]), result.stderr
    assert {path: path.stat().st_mtime_ns for path in qwen_run.rglob("*")} == before


def test_forecast_needs_rates_for_corrected(tmp_path):
    run_dir, _ = simulated_run(tmp_path, fpr=0.0, fnr=0.0, problems=20, samples=8)
    analyze(run_dir)
    with pytest.raises(OptionError, match="error rates are needed"):
        load_run(run_dir).forecast(100, corrected=True)
    with pytest.raises(OptionError, match="only with --corrected"):
        load_run(run_dir).forecast(100, verifier_error="0.1,0.1")
