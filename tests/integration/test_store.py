"""The run store under the sampling, verification and analysis steps (fake engine, real GSM8K data):
resumes, extensions, refusals, locks, partial writes."""

import json

import numpy as np
import pytest

from harness import DEFAULT_RUN, RunStoreError, analyze, sample, verify
from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from tests.support.fake_engine import fake_text
from tests.support.helpers import fake_sample_arguments


def sampled(shared_data, root, **overrides) -> RunStore:
    """The run ``harness.sample`` leaves (GSM8K on the fake engine, 5 x 4 unless ``overrides`` say otherwise),
    open for writing."""
    result = sample("gsm8k", **fake_sample_arguments(shared_data, root, **overrides))
    return RunStore.open(result.run_dir, writable=True)


def stored_keys(store: RunStore) -> list[tuple[str, int]]:
    table = store.read_samples(columns=["text"])
    return list(zip(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist()))


def test_sampling_stores_every_sample_once_with_its_metadata(shared_data, tmp_path):
    with sampled(shared_data, tmp_path) as store:
        table = store.read_samples()
        assert table.num_rows == 5 * 4
        assert len(set(stored_keys(store))) == 20
        for row in table.to_pylist():
            assert row["text"] == fake_text(row["problem_id"], row["sample_idx"], row["seed"])
            assert row["n_tokens"] > 0 and row["prompt_tokens"] == 7 and row["finish_reason"] == "stop"
        # one seed per request, different between problems
        seeds = {row["problem_id"]: row["seed"] for row in table.to_pylist()}
        assert len(set(seeds.values())) == 5
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert manifest["sessions"][-1]["status"] == "complete"
        assert manifest["sessions"][-1]["samples"] == 20


def test_rerun_generates_only_what_is_missing_and_extends_budgets(shared_data, tmp_path, monkeypatch):
    import harness.pipeline.sample

    seen = []
    original = harness.pipeline.sample.build_engine

    def recording_engine(*args, **kwargs):
        engine = original(*args, **kwargs)
        seen.append(engine)
        return engine

    monkeypatch.setattr(harness.pipeline.sample, "build_engine", recording_engine)
    sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path))
    sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path))
    assert len(seen) == 1, "a complete run must not start the engine again"

    with sampled(shared_data, tmp_path, samples=6, problems=7) as store:
        requests = seen[-1].requests_seen
        # 5 old problems get indices 4..5; 2 new problems get 0..5
        assert sorted((r.problem_id, r.first_index, r.n) for r in requests) == sorted(
            [(f"gsm8k/test/{i}", 4, 2) for i in range(5)] + [(f"gsm8k/test/{i}", 0, 6) for i in (5, 6)]
        )
        keys = stored_keys(store)
        assert len(keys) == len(set(keys)) == 7 * 6
        # extension requests get their own seeds: new samples are not copies of the old ones
        texts = store.read_samples(columns=["text"]).column("text").to_pylist()
        assert len(set(texts)) == len(texts)
        assert [p.problem_id for p in store.problems()] == [f"gsm8k/test/{i}" for i in range(7)]


def test_different_configuration_is_refused_and_nothing_is_touched(shared_data, tmp_path):
    sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path))
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(RunStoreError) as error:
        sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path, temperature=0.3))
    assert f"sampling.temperature: stored {DEFAULT_RUN['temperature']}, requested 0.3" in str(error.value)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == {name: t for name, t in before.items() if name != ".lock"}


def test_second_writer_is_locked_out(shared_data, tmp_path):
    with sampled(shared_data, tmp_path):
        with pytest.raises(RunStoreError, match="in use by another ttc process"):
            RunStore.open(tmp_path / "run", writable=True)
        RunStore.open(tmp_path / "run")  # readers are welcome


def test_refuses_to_turn_a_non_empty_foreign_directory_into_a_run(shared_data, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.txt").write_text("keep me")
    with pytest.raises(RunStoreError, match="not empty"):
        sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path))
    assert (tmp_path / "run" / "precious.txt").read_text() == "keep me"


def test_partial_writes_and_duplicate_shards_never_reach_readers(shared_data, tmp_path):
    sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path))
    samples_dir = tmp_path / "run" / "samples"
    (samples_dir / ".tmp-part-garbage.parquet").write_bytes(b"half a parquet file")
    with RunStore.open(tmp_path / "run", writable=True) as store:
        assert not list(samples_dir.glob(".tmp-*")), "a writer cleans up partial writes"
        first = store.read_samples()
        # a duplicate shard (e.g. copied by hand) must not double-count samples
        store.write_samples(first.slice(0, 3))
        again = store.read_samples()
        assert again.num_rows == first.num_rows
        assert again.column("text").to_pylist() == first.column("text").to_pylist()


def test_verify_and_analyze_resume_and_count_exactly(shared_data, tmp_path):
    run_dir = sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path, samples=10)).run_dir
    assert verify(run_dir, workers=2, progress="quiet")["verified"] == 50
    assert verify(run_dir, workers=2, progress="quiet")["verified"] == 0  # nothing left to judge
    summary = analyze(run_dir)
    with RunStore.open(run_dir) as store:
        counts = run_counts(store)
        table = store.read_samples(columns=["text", "problem_id"])
        references = {p.problem_id: p.reference["answer"] for p in store.problems()}
        expected = {}
        for pid, text in zip(table.column("problem_id").to_pylist(), table.column("text").to_pylist()):
            expected[pid] = expected.get(pid, 0) + (text.rsplit("#### ", 1)[1] == references[pid])
        assert sum(expected.values()) > 0, "the check needs some correct samples to mean anything"
        assert dict(zip(counts.problem_ids, counts.num_correct.tolist())) == expected
        assert np.all(counts.num_samples == 10)
        assert summary["pass_at_k"][0]["k"] == 1 and summary["pass_at_k"][-1]["k"] == 10
        assert summary["pass_at_1"] == pytest.approx(sum(expected.values()) / 50)
        assert json.loads((tmp_path / "run" / "summary.json").read_text())["problems"] == 5
        assert (tmp_path / "run" / "coverage.png").stat().st_size > 10_000
        forecast = summary["forecast"]
        assert forecast["k"] == 100 and forecast["low"] <= forecast["coverage"] <= forecast["high"]
        assert forecast["coverage"] >= summary["pass_at_k"][-1]["coverage"] - 1e-9, "coverage never falls with k"
        if summary["fit"] is not None:
            assert summary["fit"]["a"] < 0 and summary["fit"]["r2"] <= 1


def test_engine_wide_seeds_differ_between_sessions_so_extensions_never_replay(shared_data, tmp_path):
    engine = "tests.support.fake_engine:EngineSeededFakeEngine"
    sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path, engine=engine, problems=1, samples=3))
    with sampled(shared_data, tmp_path, engine=engine, problems=1, samples=6) as store:
        table = store.read_samples()
        seeds = table.column("seed").to_pylist()
        assert len(set(seeds[:3])) == 1 and len(set(seeds[3:])) == 1 and seeds[0] != seeds[3]
        texts = table.column("text").to_pylist()
        assert len(set(texts)) == 6, "the second session must not replay the first one's stream"
