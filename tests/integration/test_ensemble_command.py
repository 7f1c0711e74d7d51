"""``ttc ensemble`` (issue 21 item 5): score sets combined into a stored score set, cross-fitted by problem, so a
problem's labels never reach its own combined score; then a selector like any other. Bad input is refused
before anything is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from harness import ensemble, import_samples, import_scores, load_run
from harness.metrics.ensemble import fit_ensemble
from harness.store import RunStore
from tests.support.helpers import ttc

PROBLEMS, SAMPLES = 30, 10


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def scored_run(tmp_path) -> Path:
    """An imported run whose verdicts are random, with two noisy score sets that carry signal about them."""
    rng = np.random.default_rng(5)
    labels = rng.random((PROBLEMS, SAMPLES)) < 0.4
    records = [
        {"idx": p, "question": f"q{p}", "gt": "1", "code": [f"s{j}" for j in range(SAMPLES)]}
        | {"pred": [str(j % 3) for j in range(SAMPLES)], "score": row.tolist()}
        for p, row in enumerate(labels)
    ]
    run_dir = tmp_path / "run"
    import_samples(write_jsonl(tmp_path / "samples.jsonl", records), run_dir)
    for name, strength in (("reward", 1.0), ("judge", 0.8)):
        values = strength * labels + rng.normal(size=labels.shape)
        rows = [
            {"problem_id": str(p), "sample_idx": j, "score": float(values[p, j])}
            for p in range(PROBLEMS)
            for j in range(SAMPLES)
        ]
        import_scores(run_dir, write_jsonl(tmp_path / f"{name}.jsonl", rows), name)
    return run_dir


def stored_scores(run_dir: Path, name: str) -> dict[tuple[str, int], float]:
    table = RunStore.open(run_dir).scores(name).read(["score"])
    return {(p, i): s for p, i, s in zip(*(table.column(c).to_pylist() for c in ("problem_id", "sample_idx", "score")))}


def test_the_stored_ensemble_is_the_cross_fitted_combination_and_a_selector(scored_run):
    fitted = ensemble(scored_run, "reward,judge", name="combined", method="logistic", folds=3)
    store = RunStore.open(scored_run)
    description = store.score_sets()["combined"]
    assert description["kind"] == "ensemble" and description["inputs"] == ["reward", "judge"]
    assert len(description["fit"]["folds"]) == 3 and description["labels"].startswith("imported")
    scores = stored_scores(scored_run, "combined")
    assert len(scores) == PROBLEMS * SAMPLES
    # the same as fitting the run's inputs directly
    verdicts = store.read_verdicts(columns=["correct"]).to_pandas()
    reward, judge = stored_scores(scored_run, "reward"), stored_scores(scored_run, "judge")
    keys = list(zip(verdicts.problem_id, verdicts.sample_idx))
    order = sorted(range(len(keys)), key=lambda i: (int(keys[i][0]), keys[i][1]))  # the run's problem order
    keys = [keys[i] for i in order]
    direct = fit_ensemble(
        {"reward": [reward[key] for key in keys], "judge": [judge[key] for key in keys]},
        verdicts.correct.to_numpy()[order],
        [int(key[0]) for key in keys],
        folds=3,
    )
    assert direct.auroc == pytest.approx(fitted.auroc)
    # a selector like any other
    frame = load_run(scored_run).selectors("coverage,orm=combined,weighted=combined")
    assert set(frame["selector"]) == {"coverage", "orm=combined", "weighted=combined"}


def test_a_problems_own_labels_never_reach_its_stored_score(scored_run):
    ensemble(scored_run, "reward,judge", name="before", folds=3)
    with RunStore.open(scored_run, writable=True) as writer:  # the same verdicts with problem 7's flipped
        verdicts = writer.read_verdicts(columns=["correct", "reason", "answer", "detail"])
        mine = pa.compute.equal(verdicts.column("problem_id"), "7")
        flipped = pa.compute.if_else(mine, pa.compute.invert(verdicts.column("correct")), verdicts.column("correct"))
        key = writer.register_verdict_set({"name": "flipped"})
        writer.write_verdicts(key, verdicts.set_column(2, "correct", flipped))
    ensemble(scored_run, "reward,judge", name="after", verifier="flipped", folds=3)
    before, after = stored_scores(scored_run, "before"), stored_scores(scored_run, "after")
    own = [key for key in before if key[0] == "7"]
    assert [after[key] for key in own] == [before[key] for key in own]
    others = [key for key in before if key[0] != "7"]
    assert [after[key] for key in others] != [before[key] for key in others]  # their models did see the flip


def test_bad_ensembles_are_refused_and_write_nothing(scored_run, tmp_path):
    rows = [{"problem_id": str(p), "sample_idx": 0, "score": 1.0} for p in range(PROBLEMS)]
    import_scores(scored_run, write_jsonl(tmp_path / "partial.jsonl", rows), "partial")
    ttc_ok = ttc("ensemble", str(scored_run), "--score-sets", "reward,judge", "--name", "taken", "--json")
    assert ttc_ok.returncode == 0 and json.loads(ttc_ok.stdout)["score_set"] == "taken"
    before = sorted(str(path) for path in scored_run.rglob("*"))
    cases = {
        ("--score-sets", "reward", "--name", "e"): "--score-sets: an ensemble combines at least two",
        ("--score-sets", "reward,reward", "--name", "e"): "--score-sets: .* listed twice",
        ("--score-sets", "reward,missing", "--name", "e"): "--score-sets: .* has no score set 'missing'",
        ("--score-sets", "reward,partial", "--name", "e"): "--score-sets: the score sets cover different samples",
        ("--score-sets", "reward,likelihood", "--name", "e"): "--score-sets: likelihood: .* no recorded log-prob",
        ("--score-sets", "reward,judge", "--name", "taken"): "--name: .* holds score set 'taken' already",
        ("--score-sets", "reward,judge", "--name", "reward"): "--name: .* holds score set 'reward' already",
        ("--score-sets", "reward,judge", "--name", "e", "--method", "svm"): "--method: must be one of",
        ("--score-sets", "reward,judge", "--name", "e", "--folds", "31"): "--folds: must be at most",
    }
    for arguments, message in cases.items():
        result = ttc("ensemble", str(scored_run), *arguments)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and re.search(message, lines[0]), (arguments, result.stderr)
    assert sorted(str(path) for path in scored_run.rglob("*")) == before, "nothing written into the run"
