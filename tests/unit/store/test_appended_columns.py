"""Columns appended to a shard schema after runs were stored: a shard written before reads back with them null,
and a writer that does not know them stores nulls."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from harness.store.shards import RANGES_KEY, SAMPLE_SCHEMA, VERDICT_SCHEMA, ShardSet, appended_columns


def old_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as it was before its appended columns."""
    kept = [field for field in schema if field.name not in appended_columns(schema)]
    return pa.schema(kept)


def test_a_shard_written_before_the_columns_were_appended_reads_them_as_null(tmp_path):
    assert {"conf_min_window", "conf_settings"} <= appended_columns(SAMPLE_SCHEMA)
    assert appended_columns(VERDICT_SCHEMA) == {"score"}
    folder = tmp_path / "verdicts"
    folder.mkdir()
    old = pa.table(
        {"problem_id": ["a", "a"], "sample_idx": [0, 1], "correct": [True, False], "reason": ["correct", "wrong"]}
        | {"answer": ["1", "2"], "detail": ["", ""]},
        schema=old_schema(VERDICT_SCHEMA),
    ).replace_schema_metadata({RANGES_KEY: json.dumps([["a", 0, 2]]).encode()})
    pq.write_table(old, folder / "part-0.parquet")
    shards = ShardSet(folder, VERDICT_SCHEMA)
    read = shards.read(["correct", "score"])
    assert read.column("score").to_pylist() == [None, None]
    assert read.schema.field("score").type == pa.float64()
    assert read.column("correct").to_pylist() == [True, False]
    # a new shard without the column (a writer that predates it) stores nulls; one with it, its values
    shards.append(pa.table({name: old.column(name) for name in old.column_names}).slice(0, 0))
    shards.append(
        shards.table(
            {"problem_id": ["b"], "sample_idx": [0], "correct": [True], "reason": ["correct"], "answer": ["1"]}
            | {"detail": [""], "score": [0.75]}
        )
    )
    shards.append(
        shards.table(
            {"problem_id": ["c"], "sample_idx": [0], "correct": [False], "reason": ["wrong"], "answer": [None]}
            | {"detail": [""]}
        )
    )
    assert shards.read(["score"]).column("score").to_pylist() == [None, None, 0.75, None]
    assert set(shards.ranges()) == {"a", "b", "c"}
