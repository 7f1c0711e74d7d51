"""compare-verifiers on real data (Qwen2.5-Math samples with reward scores), imports, and the CLI."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from harness import OptionError, RunStoreError, analyze, import_samples, import_scores, sample, verify
from harness.reporting.run_counts import run_counts
from harness.reporting.selector_comparison import compare_verifiers, parse_ks, parse_selectors
from harness.reporting.selectors import write_comparison
from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.support.helpers import fake_sample_arguments

QWEN = "qwen25math_rm_maj_example_math_cot_100.jsonl"


def qwen_records(shared_data: Path) -> list[dict]:
    return [json.loads(line) for line in (shared_data / QWEN).read_text().splitlines() if line.strip()]


def independent_at_n(records: list[dict]) -> dict[str, float]:
    """maj@n, RM@n and pass@n over all n samples, written from the raw file without our code.

    Ties are split evenly (the expected accuracy of a random tie-break), as the tool documents.
    """
    majority = reward = coverage = 0.0
    for record in records:
        votes = Counter(record["pred"])
        top = max(votes.values())
        tied = [answer for answer, count in votes.items() if count == top]
        share = {a: np.mean([s for p, s in zip(record["pred"], record["score"]) if p == a]) for a in tied}
        majority += sum(share.values()) / len(tied)
        scores = [value[0] for value in record["pred_score"]]
        best = [i for i, value in enumerate(scores) if value == max(scores)]
        reward += np.mean([record["score"][i] for i in best])
        coverage += any(record["score"])
    return {"majority": majority / len(records), "orm": reward / len(records), "coverage": coverage / len(records)}


@pytest.fixture(scope="module")
def qwen_run(shared_data, tmp_path_factory) -> Path:
    """The imported Qwen run, shared by tests that only read it."""
    out = tmp_path_factory.mktemp("qwen") / "run"
    import_samples(shared_data / QWEN, out)
    return out


@pytest.fixture
def fresh_qwen_run(shared_data, tmp_path) -> Path:
    """An imported Qwen run of the test's own, for tests that add scores."""
    out = tmp_path / "qwen-run"
    import_samples(shared_data / QWEN, out)
    return out


def test_imported_qwen_run_holds_the_file(qwen_run, shared_data):
    records = qwen_records(shared_data)
    store = RunStore.open(qwen_run)
    assert len(store.problems()) == 100 and store.problems()[0].reference == {"answer": records[0]["gt"]}
    verdicts = store.read_verdicts(columns=["correct", "answer"])
    assert verdicts.num_rows == 800
    by_key = {(row["problem_id"], row["sample_idx"]): row for row in verdicts.to_pylist()}
    for record in records:
        for index, (pred, score) in enumerate(zip(record["pred"], record["score"])):
            row = by_key[(str(record["idx"]), index)]
            assert row["answer"] == pred and row["correct"] == score
    scores = store.scores("imported").read()
    assert scores.num_rows == 800 and scores.column("score").null_count == 0
    assert store.score_sets()["imported"]["kind"] == "imported"
    assert run_counts(store).num_correct.sum() == sum(sum(r["score"]) for r in records)
    summary = analyze(qwen_run)  # the coverage analysis works on imported runs (no token counts, no sampling)
    assert summary["pass_at_1"] == pytest.approx(0.91) and summary["usage"]["output_tokens"] is None


def test_maj_rm_and_pass_at_8_equal_an_independent_computation(qwen_run, shared_data):
    expected = independent_at_n(qwen_records(shared_data))
    result = compare_verifiers(RunStore.open(qwen_run), parse_selectors("coverage,majority,orm,weighted"))
    assert result["ks"] == [1, 2, 4, 8]
    by_name = {entry["selector"]: entry for entry in result["selectors"]}
    for name in ("coverage", "majority", "orm"):
        assert by_name[name]["accuracy"][-1] == pytest.approx(expected[name], abs=1e-12), name
        assert by_name[name]["method"] == "exact"
    assert by_name["orm"]["score_set"] == "imported"
    # measured on this file: maj@8 0.925, RM@8 0.94, pass@8 0.96 (ties split evenly)
    assert (expected["majority"], expected["orm"], expected["coverage"]) == pytest.approx((0.925, 0.94, 0.96))

    coverage = np.array(by_name["coverage"]["accuracy"])
    assert np.all(np.diff(coverage) >= 0), "pass@k never decreases in k"
    for entry in result["selectors"]:
        value, low, high = (np.array(entry[key]) for key in ("accuracy", "low", "high"))
        assert np.all(low <= value) and np.all(value <= high), entry["selector"]
        assert np.all(value <= coverage + 1e-12), f"{entry['selector']} cannot beat 'some sample is right'"
        assert value[0] == pytest.approx(coverage[0]), "at k = 1 every selector picks the only sample"


def test_curves_at_every_k_equal_enumeration(qwen_run, shared_data):
    """accuracy@k for k < n on the real data: the mean over all C(8, k) subsets, enumerated plainly."""
    from itertools import combinations

    records = qwen_records(shared_data)
    result = compare_verifiers(RunStore.open(qwen_run), parse_selectors("majority,orm"), [2, 3, 5])
    for k_index, k in enumerate([2, 3, 5]):
        majority = reward = 0.0
        for record in records:
            subsets = list(combinations(range(8), k))
            for subset in subsets:
                votes = Counter(record["pred"][i] for i in subset)
                top = max(votes.values())
                tied = [a for a, c in votes.items() if c == top]
                share = {a: np.mean([s for p, s in zip(record["pred"], record["score"]) if p == a]) for a in tied}
                majority += sum(share.values()) / len(tied) / len(subsets)
                scores = {i: record["pred_score"][i][0] for i in subset}
                best = [i for i in subset if scores[i] == max(scores.values())]
                reward += np.mean([record["score"][i] for i in best]) / len(subsets)
        assert result["selectors"][0]["accuracy"][k_index] == pytest.approx(majority / 100, abs=1e-12)
        assert result["selectors"][1]["accuracy"][k_index] == pytest.approx(reward / 100, abs=1e-12)


def test_cli_imports_and_compares(shared_data, tmp_path):
    out = tmp_path / "run"

    def ttc(*args):
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
        )

    created = ttc("import-samples", str(shared_data / QWEN), "--out", str(out))
    assert created.returncode == 0, created.stderr
    assert "100 problems, 800 samples" in created.stdout
    compared = ttc("compare-verifiers", str(out), "--selectors", "coverage,majority,orm", "--k", "1,2,8")
    assert compared.returncode == 0, compared.stderr
    assert "majority" in compared.stdout and "0.925" in compared.stdout and "0.960" in compared.stdout
    saved = json.loads((out / "verifiers.json").read_text())
    assert saved["ks"] == [1, 2, 8] and [e["selector"] for e in saved["selectors"]] == ["coverage", "majority", "orm"]
    assert (out / "verifiers.png").stat().st_size > 10_000
    refused = ttc("compare-verifiers", str(out), "--selectors", "likelihood")
    assert refused.returncode == 2 and "no recorded log-probability" in refused.stderr
    refused = ttc("compare-verifiers", str(out), "--k", "16")
    assert refused.returncode == 2 and "smallest n is 8" in refused.stderr
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"problem_id": "0", "sample_idx": 0, "score": "x"}])
    refused = ttc("import-scores", str(out), str(bad), "--name", "mine")
    assert refused.returncode == 2 and "is not a number" in refused.stderr
    good = write_jsonl(tmp_path / "good.jsonl", [{"problem_id": "0", "sample_idx": 0, "score": 1}])
    imported = ttc("import-scores", str(out), str(good), "--name", "mine")
    assert imported.returncode == 0 and "imported 1 scores into score set 'mine'" in imported.stdout


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


def test_import_scores_refuses_bad_files_and_never_touches_stored_data(fresh_qwen_run, tmp_path):
    qwen_run = fresh_qwen_run
    good = [{"problem_id": "0", "sample_idx": i, "score": float(i)} for i in range(8)]
    bad_files = {
        "unknown problem 'nope'": [*good[:1], {"problem_id": "nope", "sample_idx": 0, "score": 1.0}],
        "has no stored sample 8": [*good[:1], {"problem_id": "0", "sample_idx": 8, "score": 1.0}],
        "duplicate row for problem '0' sample 1": [*good[:2], {"problem_id": "0", "sample_idx": 1, "score": 2.0}],
        "'high' is not a number": [{"problem_id": "0", "sample_idx": 0, "score": "high"}],
        "score nan is not finite": ['{"problem_id": "0", "sample_idx": 0, "score": NaN}'],
        "needs 'score' or 'step_scores'": [{"problem_id": "0", "sample_idx": 0}],
        "sample_idx -1 is not a non-negative integer": [{"problem_id": "0", "sample_idx": -1, "score": 1}],
        "not valid JSON": ['{"problem_id": "0", "sample_idx": 0, "score": 1.0'],
        "step_scores must be a non-empty list": [{"problem_id": "0", "sample_idx": 0, "step_scores": []}],
    }
    before = snapshot(qwen_run)
    for message, rows in bad_files.items():
        with pytest.raises(ValueError, match=message):
            import_scores(qwen_run, write_jsonl(tmp_path / "bad.jsonl", rows), "mine")
    assert snapshot(qwen_run) == before
    assert import_scores(qwen_run, write_jsonl(tmp_path / "good.jsonl", good), "mine") == 8
    with pytest.raises(ValueError, match="already scored in set 'mine'"):
        import_scores(qwen_run, write_jsonl(tmp_path / "again.jsonl", good[:1]), "mine")
    with RunStore.open(qwen_run, writable=True) as store, pytest.raises(RunStoreError, match="made differently"):
        store.register_score_set("mine", {"kind": "orm", "model": "other"})
    steps = [{"problem_id": "1", "sample_idx": i, "step_scores": [0.5, i / 8]} for i in range(8)]
    assert import_scores(qwen_run, write_jsonl(tmp_path / "steps.jsonl", steps), "mine") == 8
    table = RunStore.open(qwen_run).scores("mine").read()
    assert table.num_rows == 16
    assert table.column("score").to_pylist()[:8] == [float(i) for i in range(8)]


def test_selectors_read_the_named_score_set_and_aggregate_steps(fresh_qwen_run, tmp_path, shared_data):
    records = qwen_records(shared_data)
    # a PRM-like set: the last step's score is the imported reward, the first is noise
    rows = [
        {"problem_id": str(r["idx"]), "sample_idx": i, "step_scores": [float(j % 3), r["pred_score"][i][0]]}
        for j, r in enumerate(records)
        for i in range(8)
    ]
    import_scores(fresh_qwen_run, write_jsonl(tmp_path / "prm.jsonl", rows), "steps")
    store = RunStore.open(fresh_qwen_run)
    # one set per kind: plain names resolve (orm -> the per-sample set, prm -> the step set)
    last = compare_verifiers(store, parse_selectors("orm,prm"), [1, 8], aggregate="last")
    imported, prm = last["selectors"]
    assert (imported["score_set"], prm["score_set"]) == ("imported", "steps")
    assert prm["aggregate"] == "last" and prm["accuracy"] == pytest.approx(imported["accuracy"])
    minimum = compare_verifiers(store, parse_selectors("prm=steps,weighted=steps"), [8], aggregate="min")
    assert [entry["aggregate"] for entry in minimum["selectors"]] == ["min", "min"]
    with pytest.raises(ValueError, match="no score set 'absent'"):
        compare_verifiers(store, parse_selectors("orm=absent"), [8])
    with pytest.raises(OptionError, match="must be one of") as bad_aggregate:
        compare_verifiers(store, parse_selectors("prm=steps"), [8], aggregate="max")
    assert bad_aggregate.value.option == "aggregate"
    rows = [{"problem_id": str(r["idx"]), "sample_idx": i, "score": -float(i)} for r in records for i in range(8)]
    import_scores(fresh_qwen_run, write_jsonl(tmp_path / "second.jsonl", rows), "second")
    with pytest.raises(ValueError, match="several score sets suit 'orm'"):
        compare_verifiers(store, parse_selectors("orm"), [8])
    # scores falling with the sample index: best-of-k picks the lowest index, so RM@8 is sample 0's correctness
    second = compare_verifiers(store, parse_selectors("orm=second"), [8])["selectors"][0]
    assert second["accuracy"][-1] == pytest.approx(np.mean([r["score"][0] for r in records]))


def test_selector_and_k_parsing():
    assert [s.label for s in parse_selectors("coverage, majority,orm=rm-1,weighted")] == [
        "coverage",
        "majority",
        "orm=rm-1",
        "weighted",
    ]
    with pytest.raises(ValueError, match="unknown selector 'best'"):
        parse_selectors("best")
    with pytest.raises(ValueError, match="takes no score set"):
        parse_selectors("majority=rm")
    with pytest.raises(ValueError, match="listed twice"):
        parse_selectors("orm,orm")
    assert parse_ks("8,1,2,2") == [1, 2, 8]
    with pytest.raises(OptionError, match="comma-separated integers") as bad_ks:
        parse_ks("1,two")
    assert bad_ks.value.option == "ks"


def test_import_samples_refuses_malformed_files(tmp_path):
    record = {"idx": 0, "question": "1+1?", "gt": "2", "code": ["2", "3"], "pred": ["2", "3"], "score": [True, False]}
    cases = {
        "3 entries in 'pred' for 2 samples": [{**record, "pred": ["2", "3", "4"]}],
        "duplicate problem id '0'": [record, record],
        "is not a boolean": [{**record, "score": ["yes", False]}],
        "in3.jsonl:2: the record lacks field\\(s\\) \\['gt'\\]": [
            record,
            {k: v for k, v in record.items() if k != "gt"},
        ],
        "no record of .* has a field 'gt'": [{k: v for k, v in record.items() if k != "gt"}],
    }
    for index, (message, rows) in enumerate(cases.items()):
        with pytest.raises(ValueError, match=message):
            import_samples(write_jsonl(tmp_path / f"in{index}.jsonl", rows), tmp_path / f"run{index}")
        assert not (tmp_path / f"run{index}").exists(), "a refused import creates nothing"
    with pytest.raises(RunStoreError, match="not empty"):
        (tmp_path / "taken").mkdir()
        (tmp_path / "taken" / "keep.txt").write_text("mine")
        import_samples(write_jsonl(tmp_path / "ok.jsonl", [record]), tmp_path / "taken")


def test_sampled_run_compares_all_available_selectors(shared_data, tmp_path):
    """A run sampled by the (fake) engine: likelihood from recorded log-probs, majority from verdict answers."""
    from harness.metrics.selection import best_of_k

    run_dir = sample(
        "gsm8k", **fake_sample_arguments(shared_data, tmp_path, samples=6, task_options={"shots": 0})
    ).run_dir
    verify(run_dir, workers=1, progress="quiet")
    store = RunStore.open(run_dir)
    result = compare_verifiers(store)
    names = [entry["selector"] for entry in result["selectors"]]
    confidence = ["conf-min-window", "conf-tail", "conf-bottom10"]
    assert names == ["coverage", "majority", "likelihood", *confidence, "conf-majority=10"]
    with RunStore.open(store.path, writable=True) as writer:  # a verifier that extracts no answers
        verdicts = writer.read_verdicts(columns=["correct", "reason", "answer", "detail"])
        key = writer.register_verdict_set({"name": "no-answers"})
        writer.write_verdicts(key, verdicts.set_column(4, "answer", pa.nulls(verdicts.num_rows, pa.string())))
    store = RunStore.open(store.path)
    assert [e["selector"] for e in compare_verifiers(store, verifier="no-answers")["selectors"]] == [
        "coverage",
        "likelihood",
        *confidence,
    ]
    with pytest.raises(ValueError, match="votes over extracted answers"):
        compare_verifiers(store, parse_selectors("majority"), verifier="no-answers")
    store = RunStore.open(store.path)
    samples = store.read_samples(columns=["logprob_sum", "n_tokens"])
    verdicts = store.read_verdicts(columns=["correct"])
    expected = []
    for problem in store.problems():
        rows = [i for i, pid in enumerate(samples.column("problem_id").to_pylist()) if pid == problem.problem_id]
        mean_logprob = np.array(
            [samples.column("logprob_sum")[i].as_py() / samples.column("n_tokens")[i].as_py() for i in rows]
        )
        correct = np.array([verdicts.column("correct")[i].as_py() for i in rows])
        expected.append(best_of_k(mean_logprob, correct, result["ks"]))
    assert result["selectors"][2]["accuracy"] == pytest.approx(np.mean(expected, axis=0).tolist())
    json_path, png_path = write_comparison(result, store)
    assert json.loads(json_path.read_text())["verdict_set"] == result["verdict_set"] and png_path.is_file()
