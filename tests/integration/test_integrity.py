"""Verdicts and summaries never describe another state than the one stored (issue 22).

- Each verdict carries a fingerprint of the text it judged: after a sample shard is moved out and its samples
  re-drawn (an engine seeded per session, as vLLM on CPU, draws new texts under the old keys), the old verdicts
  are stale: left out of every count, reported, and judged again by ``ttc verify``.
- Verdicts written before fingerprints existed (shards without the column) are trusted, as they always were.
- Two verdict shards that disagree on the same samples, one sample stored twice with two texts, and samples
  outside ``[0, samples per problem)`` are damage named in one line, not settled by file name or counted.
- A summary.json records the run, its configuration hash and the shards it summarised: another run's summary,
  or one of an earlier state, is analysed again.
- A sampling session left ``running`` by ``kill -9`` is recorded as ``killed`` by the next writer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness import analyze, load_run, sample, verify
from harness.core.errors import RunStoreError
from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from harness.store.shards import text_fingerprint
from tests.integration.test_damage import refused, ttc, unchanged
from tests.support.helpers import fake_sample_arguments

SEEDED_PER_SESSION = "tests.support.fake_engine:EngineSeededFakeEngine"
PROBLEMS, SAMPLES = 4, 4


def seeded_run(shared_data: Path, root: Path) -> Path:
    """4 problems x 4 samples from the engine seeded per session (one shard per problem), verified."""
    arguments = fake_sample_arguments(shared_data, root, problems=PROBLEMS, samples=SAMPLES, engine=SEEDED_PER_SESSION)
    run_dir = sample("gsm8k", **arguments).run_dir
    verify(run_dir, workers=1, progress="quiet")
    return run_dir


def resample_one_shard(shared_data: Path, root: Path) -> tuple[Path, set[tuple[str, int]]]:
    """The recovery the damage message advises: move a sample shard out, sample again. Returns the run and the
    keys re-drawn (their texts now differ from those judged)."""
    run_dir = root / "run"
    moved = sorted((run_dir / "samples").glob("part-*.parquet"))[1]
    before = {(row["problem_id"], row["sample_idx"]): row["text"] for row in pq.read_table(moved).to_pylist()}
    shutil.move(moved, root / moved.name)
    arguments = fake_sample_arguments(shared_data, root, problems=PROBLEMS, samples=SAMPLES, engine=SEEDED_PER_SESSION)
    sample("gsm8k", **arguments)
    texts = {
        (row["problem_id"], row["sample_idx"]): row["text"] for row in RunStore.open(run_dir).read_samples().to_pylist()
    }
    redrawn = {key for key in before if texts[key] != before[key]}
    assert redrawn == set(before), "the engine seeded per session drew new texts under the old keys"
    return run_dir, redrawn


def test_verdicts_of_redrawn_texts_are_stale_reported_and_judged_again(shared_data, tmp_path):
    run_dir = seeded_run(shared_data, tmp_path)
    run_dir, redrawn = resample_one_shard(shared_data, tmp_path)
    store = RunStore.open(run_dir)
    (key,) = store.verdict_sets()
    assert store.stale_verdicts(key) == {next(iter(redrawn))[0]: [(0, SAMPLES)]}
    summary = analyze(run_dir)
    covered = summary["completeness"]
    assert not covered["complete"] and covered["stale"] == len(redrawn) == covered["unverified"]
    assert f"{len(redrawn)} of them because their text changed since it was judged" in covered["note"]
    assert summary["samples"] == PROBLEMS * SAMPLES - len(redrawn), "stale verdicts are not counted"

    done = verify(run_dir, workers=1, progress="quiet")
    assert done["verified"] == len(redrawn), "exactly the re-drawn samples are judged again"
    store = RunStore.open(run_dir)
    verdicts = store.read_verdicts(key)
    texts = {(row["problem_id"], row["sample_idx"]): row["text"] for row in store.read_samples().to_pylist()}
    assert verdicts.num_rows == PROBLEMS * SAMPLES
    for row in verdicts.to_pylist():
        assert row["fingerprint"] == text_fingerprint(texts[row["problem_id"], row["sample_idx"]])
    assert store.stale_verdicts(key) == {} and analyze(run_dir)["completeness"]["complete"]
    assert verify(run_dir, workers=1, progress="quiet")["verified"] == 0, "nothing left to judge"


def test_verdicts_written_before_fingerprints_are_trusted(make_fake_run, tmp_path):
    """A verdict set (and samples) of the earlier format, without the fingerprint column, reads back with the
    column null; its verdicts count as they always did, and the summary is complete."""
    run_dir = make_fake_run(root=tmp_path, problems=3, samples=4)
    for path in [*run_dir.glob("samples/part-*.parquet"), *run_dir.glob("verdicts/*/part-*.parquet")]:
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["fingerprint"]).replace_schema_metadata(table.schema.metadata), path)
    store = RunStore.open(run_dir)
    (key,) = store.verdict_sets()
    assert store.read_verdicts(key).column("fingerprint").null_count == 12
    assert store.sample_fingerprints().column("fingerprint").null_count == 0, "from the texts"
    summary = analyze(run_dir)
    assert summary["samples"] == 12 and summary["completeness"]["complete"]
    assert verify(run_dir, workers=1, progress="quiet")["verified"] == 0


def copy_shard(path: Path, change=None) -> Path:
    """A second shard beside ``path`` holding its rows (changed by ``change``), as a shard copied by hand."""
    table = pq.read_table(path)
    changed = change(table) if change else table
    copy = path.with_name(path.name.replace("part-", "part-9"))
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), copy)
    return copy


def negated(column: str):
    def change(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index(column)
        return table.set_column(index, column, pa.compute.invert(table.column(column)))

    return change


def test_verdict_shards_that_disagree_are_damage_named_with_both_shards(make_fake_run, tmp_path):
    run_dir = make_fake_run(root=tmp_path, problems=3, samples=4)
    (original,) = sorted(run_dir.glob("verdicts/*/part-*.parquet"))
    copy = copy_shard(original, negated("correct"))
    with unchanged(run_dir):
        line = refused("analyze", run_dir, naming=(original.name, copy.name, "disagree on 12 sample(s)"))
    assert "which verdicts hold cannot be told" in line
    copy.unlink()
    copy_shard(original)  # a copy that agrees is harmless
    assert analyze(run_dir)["samples"] == 12


def test_one_sample_stored_twice_with_two_texts_is_damage(make_fake_run, tmp_path):
    run_dir = make_fake_run(root=tmp_path, problems=3, samples=4)
    original = min(run_dir.glob("samples/part-*.parquet"))

    def other_texts(table: pa.Table) -> pa.Table:
        texts = [text + " (re-drawn)" for text in table.column("text").to_pylist()]
        table = table.set_column(table.schema.get_field_index("text"), "text", pa.array(texts))
        fingerprints = pa.array([text_fingerprint(text) for text in texts], pa.int64())
        return table.set_column(table.schema.get_field_index("fingerprint"), "fingerprint", fingerprints)

    copy = copy_shard(original, other_texts)
    refused("analyze", run_dir, naming=(original.name, copy.name, "samples disagree"))


@pytest.mark.parametrize("indices", [[8, 9], [-2, -1]], ids=["past the budget", "negative"])
def test_samples_outside_the_budget_are_damage(make_fake_run, tmp_path, indices):
    run_dir = make_fake_run(root=tmp_path, problems=3, samples=8)
    original = min(run_dir.glob("samples/part-*.parquet"))

    def shifted(table: pa.Table) -> pa.Table:
        table = table.slice(0, 2)
        return table.set_column(table.schema.get_field_index("sample_idx"), "sample_idx", pa.array(indices, pa.int32()))

    stray = copy_shard(original, shifted)
    table = pq.read_table(stray)  # a well-formed shard: its footer's index matches its rows
    ranges = [[table.column("problem_id")[0].as_py(), indices[0], indices[-1] + 1]]
    pq.write_table(table.replace_schema_metadata({b"ttc.ranges": json.dumps(ranges).encode()}), stray)
    for command in ("verify", "analyze"):
        refused(
            command,
            run_dir,
            naming=(stray.name, f"sample indices {indices[0]}..{indices[-1]}", "outside the run's 0..7"),
        )


def test_a_summary_of_another_run_or_state_is_analysed_again(make_fake_run, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_fake_run(root=tmp_path / "a", problems=3, samples=4)
    second = make_fake_run(root=tmp_path / "b", problems=3, samples=4, seed=7)
    own = json.loads((first / "summary.json").read_text())
    shutil.copy(second / "summary.json", first / "summary.json")
    other = json.loads((first / "summary.json").read_text())
    assert (other["samples"], other["verdict_set"], other["completeness"]["samples"]) == (
        own["samples"],
        own["verdict_set"],
        own["completeness"]["samples"],
    ), "counts and verdict set alike: only the identity tells them apart"
    reported = load_run(first).summary
    assert reported["run_id"] == own["run_id"] != other["run_id"] and reported["pass_at_k"] == own["pass_at_k"]
    assert json.loads((first / "summary.json").read_text())["run_id"] == own["run_id"], "written again"

    copy_shard(min(first.glob("verdicts/*/part-*.parquet")))  # a shard added: another state
    assert load_run(first).summary["fingerprint"] != own["fingerprint"]


def test_a_session_left_running_by_kill_9_is_recorded_as_killed(make_fake_run, tmp_path):
    run_dir = make_fake_run(root=tmp_path, problems=2, samples=2)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["sessions"][0]["status"] = "running"  # what kill -9 leaves
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert RunStore.open(run_dir).manifest["sessions"][0]["status"] == "running", "a reader changes nothing"
    RunStore.open(run_dir, writable=True).close()
    assert json.loads((run_dir / "manifest.json").read_text())["sessions"][0]["status"] == "killed"


def test_the_default_verifier_of_a_damaged_manifest_names_manifest_json(make_fake_run, tmp_path):
    run_dir = make_fake_run(root=tmp_path, problems=2, samples=2)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["default_verifier"] = "numerik"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(next((run_dir / "verdicts").iterdir()))
    line = refused("verify", run_dir, naming=("manifest.json", "default_verifier 'numerik'"))
    assert "--verifier:" not in line, "not an option the user did not give"
    code, _, err, _ = ttc("verify", run_dir, "--verifier", "numeric", "--quiet")
    assert code == 0, err


def test_a_damaged_store_error_is_a_run_store_error(make_fake_run, tmp_path):
    run_dir = make_fake_run(root=tmp_path, problems=2, samples=2)
    (original,) = sorted(run_dir.glob("verdicts/*/part-*.parquet"))
    copy_shard(original, negated("correct"))
    with pytest.raises(RunStoreError, match="disagree"):
        run_counts(RunStore.open(run_dir))
