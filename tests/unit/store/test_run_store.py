"""The run store on its own: range algebra, shard reads and schemas, pending samples, buffered writes, the
writer lock."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet
import pytest

from harness.core.errors import RunStoreError
from harness.core.records import Problem
from harness.store import RunStore, missing_ranges, subtract_ranges
from harness.store.shards import SAMPLE_SCHEMA, VERDICT_SCHEMA


def test_range_arithmetic():
    assert missing_ranges([(0, 3), (5, 6)], 8) == [(3, 5), (6, 8)]
    assert missing_ranges([], 4) == [(0, 4)]
    assert missing_ranges([(0, 10)], 4) == []
    assert subtract_ranges([(0, 10)], [(2, 4), (8, 20)]) == [(0, 2), (4, 8)]


def test_non_run_directories_are_refused(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "file.txt").write_text("mine")
    with pytest.raises(RunStoreError, match="not a run directory"):
        RunStore.open(tmp_path / "stuff")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(RunStoreError, match="not valid JSON"):
        RunStore.open(tmp_path / "bad")


def bare_store(path, problem_ids) -> RunStore:
    problems = [Problem(problem_id, f"prompt of {problem_id}", {"answer": "1"}) for problem_id in problem_ids]
    return RunStore.create(path, {"test": 1}, problems, budget={}, default_verifier="exact", model_info={}, versions={})


def sample_rows(problem_id: str, indices) -> pa.Table:
    rows = [
        {"problem_id": problem_id, "sample_idx": i, "text": f"{problem_id}#{i}", "n_tokens": i * 10} for i in indices
    ]
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)


def test_samples_lacking_come_per_problem_once_all_are_read(tmp_path, monkeypatch):
    from harness.store import shards

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

        def shards() -> list[Path]:
            return sorted((tmp_path / "run" / "verdicts" / key).glob("part-*.parquet"))

        with store.verdict_writer(key, flush_rows=4, flush_seconds=3600) as writer:
            writer.add(verdict_rows("a", range(3)))
            assert shards() == []  # 3 rows buffered, below flush_rows
            writer.add(verdict_rows("b", range(2)))
            assert len(shards()) == 1  # 5 rows: one shard of both tables
        with pytest.raises(KeyboardInterrupt), store.verdict_writer(key, flush_rows=100, flush_seconds=3600) as writer:
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
