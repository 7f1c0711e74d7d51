import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet
import pytest

from harness.core.errors import RunStoreError
from harness.core.records import Problem
from harness.pipeline.analyze import analyze
from harness.pipeline.options import DEFAULT_RUN
from harness.pipeline.prepare import prepare
from harness.pipeline.sample import sample
from harness.pipeline.verify import verify
from harness.reporting.run_counts import run_counts
from harness.store import RunStore, missing_ranges, subtract_ranges
from harness.store.shards import SAMPLE_SCHEMA, VERDICT_SCHEMA
from tests.fake_engine import fake_text
from tests.helpers import gsm8k_options


def stored_keys(store: RunStore) -> list[tuple[str, int]]:
    table = store.read_samples(columns=["text"])
    return list(zip(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist()))


def test_range_arithmetic():
    assert missing_ranges([(0, 3), (5, 6)], 8) == [(3, 5), (6, 8)]
    assert missing_ranges([], 4) == [(0, 4)]
    assert missing_ranges([(0, 10)], 4) == []
    assert subtract_ranges([(0, 10)], [(2, 4), (8, 20)]) == [(0, 2), (4, 8)]


def test_sampling_stores_every_sample_once_with_its_metadata(shared_data, tmp_path):
    store = sample(prepare(gsm8k_options(shared_data, tmp_path)), quiet=True, log=lambda *_: None)
    with store:
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
    quiet = dict(quiet=True, log=lambda *_: None)
    sample(prepare(gsm8k_options(shared_data, tmp_path)), **quiet).close()
    sample(prepare(gsm8k_options(shared_data, tmp_path)), **quiet).close()
    assert len(seen) == 1, "a complete run must not start the engine again"

    store = sample(prepare(gsm8k_options(shared_data, tmp_path, samples=6, problems=7)), **quiet)
    with store:
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
    sample(prepare(gsm8k_options(shared_data, tmp_path)), quiet=True, log=lambda *_: None).close()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(RunStoreError) as error:
        sample(prepare(gsm8k_options(shared_data, tmp_path, temperature=0.3)), quiet=True, log=lambda *_: None)
    assert f"sampling.temperature: stored {DEFAULT_RUN['temperature']}, requested 0.3" in str(error.value)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == {name: t for name, t in before.items() if name != ".lock"}


def test_second_writer_is_locked_out(shared_data, tmp_path):
    store = sample(prepare(gsm8k_options(shared_data, tmp_path)), quiet=True, log=lambda *_: None)
    with store:
        with pytest.raises(RunStoreError, match="in use by another ttc process"):
            RunStore.open(tmp_path / "run", writable=True)
        RunStore.open(tmp_path / "run")  # readers are welcome


def test_non_run_directories_are_refused(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "file.txt").write_text("mine")
    with pytest.raises(RunStoreError, match="not a run directory"):
        RunStore.open(tmp_path / "stuff")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(RunStoreError, match="not valid JSON"):
        RunStore.open(tmp_path / "bad")


def test_refuses_to_turn_a_non_empty_foreign_directory_into_a_run(shared_data, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.txt").write_text("keep me")
    with pytest.raises(RunStoreError, match="not empty"):
        sample(prepare(gsm8k_options(shared_data, tmp_path)), quiet=True, log=lambda *_: None)
    assert (tmp_path / "run" / "precious.txt").read_text() == "keep me"


def test_partial_writes_and_duplicate_shards_never_reach_readers(shared_data, tmp_path):
    store = sample(prepare(gsm8k_options(shared_data, tmp_path)), quiet=True, log=lambda *_: None)
    store.close()
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
    store = sample(prepare(gsm8k_options(shared_data, tmp_path, samples=10)), quiet=True, log=lambda *_: None)
    with store:
        outcome = verify(store, workers=2, quiet=True)
        assert outcome.verified == 50
        assert verify(store, workers=2, quiet=True).verified == 0  # nothing left to judge
        counts = run_counts(store)
        table = store.read_samples(columns=["text", "problem_id"])
        references = {p.problem_id: p.reference["answer"] for p in store.problems()}
        expected = {}
        for pid, text in zip(table.column("problem_id").to_pylist(), table.column("text").to_pylist()):
            expected[pid] = expected.get(pid, 0) + (text.rsplit("#### ", 1)[1] == references[pid])
        assert sum(expected.values()) > 0, "the check needs some correct samples to mean anything"
        assert dict(zip(counts.problem_ids, counts.num_correct.tolist())) == expected
        assert np.all(counts.num_samples == 10)
        summary = analyze(store)
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
    engine = "tests.fake_engine:EngineSeededFakeEngine"
    quiet = dict(quiet=True, log=lambda *_: None)
    sample(prepare(gsm8k_options(shared_data, tmp_path, engine=engine, problems=1, samples=3)), **quiet).close()
    store = sample(prepare(gsm8k_options(shared_data, tmp_path, engine=engine, problems=1, samples=6)), **quiet)
    with store:
        table = store.read_samples()
        seeds = table.column("seed").to_pylist()
        assert len(set(seeds[:3])) == 1 and len(set(seeds[3:])) == 1 and seeds[0] != seeds[3]
        texts = table.column("text").to_pylist()
        assert len(set(texts)) == 6, "the second session must not replay the first one's stream"


def bare_store(path, problem_ids) -> RunStore:
    problems = [Problem(problem_id, f"prompt of {problem_id}", {"answer": "1"}) for problem_id in problem_ids]
    return RunStore.create(path, {"test": 1}, problems, budget={}, default_verifier="exact", model_info={}, versions={})


def sample_rows(problem_id: str, indices) -> pa.Table:
    rows = [
        {"problem_id": problem_id, "sample_idx": i, "text": f"{problem_id}#{i}", "n_tokens": i * 10} for i in indices
    ]
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)


def test_samples_lacking_come_per_problem_once_all_are_read(tmp_path, monkeypatch):
    import harness.store.shards as shards

    with bare_store(tmp_path / "run", ["a", "b", "c"]) as store:
        store.write_samples(
            pa.concat_tables([sample_rows("b", [2, 0]), sample_rows("a", range(3)), sample_rows("c", [0])])
        )
        # copies of a sample (a shard copied by hand): b#2 while b is still being gathered, a#1 after a is done
        store.write_samples(pa.concat_tables([sample_rows("c", [1, 2]), sample_rows("b", [2])]))
        store.write_samples(pa.concat_tables([sample_rows("b", [1, 3]), sample_rows("a", [1])]))
        verdicts = store.verdicts("v")
        judged = [{"problem_id": "c", "sample_idx": 1, "correct": True}]  # c#1 needs no verdict
        verdicts.append(pa.Table.from_pylist(judged, schema=VERDICT_SCHEMA))
        shards_read = []
        original_read = shards.pq.read_table
        monkeypatch.setattr(
            shards.pq, "read_table", lambda path, **kw: shards_read.append(path) or original_read(path, **kw)
        )

        batches = []
        for batch in store.iter_samples_lacking(verdicts, columns=("text", "n_tokens")):
            batches.append((batch, len(shards_read)))
    shard_paths = sorted((tmp_path / "run" / "samples").glob("part-*.parquet"))
    assert shards_read == shard_paths
    assert [(batch.problem_id, batch.indices, read) for batch, read in batches] == [
        ("a", [0, 1, 2], 1),  # complete after the first shard: yielded before the second is read
        ("c", [0, 2], 2),
        ("b", [0, 1, 2, 3], 3),
    ]
    for batch, _ in batches:
        assert batch.texts == [f"{batch.problem_id}#{index}" for index in batch.indices]
        assert batch.columns["n_tokens"] == [index * 10 for index in batch.indices]


def test_samples_lacking_stop_at_a_shard_whose_data_lacks_what_its_footer_lists(tmp_path):
    with bare_store(tmp_path / "run", ["a"]) as store:
        store.write_samples(sample_rows("a", range(4)))
        (shard,) = (tmp_path / "run" / "samples").glob("part-*.parquet")
        table = pa.parquet.read_table(shard)
        pa.parquet.write_table(table.slice(0, 2).replace_schema_metadata(table.schema.metadata), shard)
        assert store.samples_missing_from(store.verdicts("v")) == {"a": [(0, 4)]}
        with pytest.raises(RunStoreError, match="is damaged \\(its rows differ from the index in its footer\\)"):
            list(store.iter_samples_lacking(store.verdicts("v")))


def test_every_shard_is_written_in_its_declared_schema(tmp_path):
    """A problem whose samples all lack an answer gives a null-typed column; built apart, such tables still
    concatenate and are stored in the set's schema (issue 13: ArrowInvalid in verify's flush)."""
    with bare_store(tmp_path / "run", ["a", "b"]) as store:
        verdicts = store.verdicts("v")
        no_answers = verdicts.table(
            {
                "problem_id": ["a"],
                "sample_idx": [0],
                "correct": [False],
                "reason": ["no_answer"],
                "answer": [None],
                "detail": [""],
            }
        )
        assert no_answers.schema == VERDICT_SCHEMA
        untyped = pa.table(
            {
                "problem_id": ["b"],
                "sample_idx": [0],
                "correct": [False],
                "reason": ["wrong"],
                "answer": ["3"],
                "detail": [None],
            }
        )
        path = verdicts.append([no_answers, untyped])
        assert pyarrow.parquet.read_schema(path).remove_metadata() == VERDICT_SCHEMA
        assert verdicts.read().column("answer").to_pylist() == [None, "3"]
        assert verdicts.append([]) is None
        with pytest.raises(ValueError, match=r"lacks column\(s\) \['detail'\]"):
            verdicts.table(
                {"problem_id": ["a"], "sample_idx": [1], "correct": [True], "reason": ["x"], "answer": ["1"]}
            )


def verdict_rows(problem_id: str, indices) -> pa.Table:
    rows = [{"problem_id": problem_id, "sample_idx": i, "correct": i % 2 == 0} for i in indices]
    return pa.Table.from_pylist(rows, schema=VERDICT_SCHEMA)


def test_buffered_verdicts_go_to_one_shard_per_flush_and_are_kept_on_an_error(tmp_path):
    with bare_store(tmp_path / "run", ["a", "b"]) as store:
        key = store.register_verdict_set({"name": "v"})
        shards = lambda: sorted((tmp_path / "run" / "verdicts" / key).glob("part-*.parquet"))  # noqa: E731
        with store.verdict_writer(key, flush_rows=4, flush_seconds=3600) as writer:
            writer.add(verdict_rows("a", range(3)))
            assert shards() == []  # 3 rows buffered, below flush_rows
            writer.add(verdict_rows("b", range(2)))
            assert len(shards()) == 1  # 5 rows: one shard of both tables
        with pytest.raises(KeyboardInterrupt):
            with store.verdict_writer(key, flush_rows=100, flush_seconds=3600) as writer:
                writer.add(verdict_rows("a", [3]))
                raise KeyboardInterrupt  # Ctrl-C: what was judged is stored all the same
        assert len(shards()) == 2
        assert store.verdicts(key).ranges() == {"a": [(0, 4)], "b": [(0, 2)]}


def test_every_write_needs_the_writer_lock_and_a_registered_set(tmp_path):
    store = bare_store(tmp_path / "run", ["a"])
    store.close()  # as if opened read-only
    for write in (
        lambda: store.write_file("coverage.png", b"png"),
        lambda: store.write_json("summary.json", {}),
        lambda: store.write_verdicts("v", verdict_rows("a", [0])),
    ):
        with pytest.raises(RunStoreError, match="opened read-only"):
            write()
    with store.locked():
        assert store.write_file("report.html", "<html>").read_text() == "<html>"
        with pytest.raises(RunStoreError, match="no score set 'rm'"):
            store.write_scores("rm", pa.table({"problem_id": ["a"], "sample_idx": [0], "score": [1.0]}))
    assert not list((tmp_path / "run").glob(".*.tmp")), "atomic writes leave no temporary file"
