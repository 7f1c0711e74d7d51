"""Columns of issue 21 added to the shard schemas after runs were stored (the samples' confidence statistics, a
verdict's probability): a shard written before reads back with them null, and a writer that does not give them
stores nulls."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from harness.store.shards import ADDED_COLUMNS, RANGES_KEY, SAMPLE_SCHEMA, VERDICT_SCHEMA, ShardSet

CONFIDENCE = ["conf_mean", "conf_min_window", "conf_tail", "conf_bottom_window", "conf_settings"]


def old_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as it was before its added columns."""
    return pa.schema([field for field in schema if field.name not in ADDED_COLUMNS])


def test_a_shard_written_before_the_columns_were_added_reads_them_as_null(tmp_path):
    assert set(CONFIDENCE) <= ADDED_COLUMNS and set(CONFIDENCE) <= set(SAMPLE_SCHEMA.names)
    assert "probability" in ADDED_COLUMNS and "probability" in VERDICT_SCHEMA.names
    folder = tmp_path / "verdicts"
    folder.mkdir()
    old = pa.table(
        {"problem_id": ["a", "a"], "sample_idx": [0, 1], "correct": [True, False], "reason": ["correct", "wrong"]}
        | {"answer": ["1", "2"], "detail": ["", ""]},
        schema=old_schema(VERDICT_SCHEMA),
    ).replace_schema_metadata({RANGES_KEY: json.dumps([["a", 0, 2]]).encode()})
    pq.write_table(old, folder / "part-0.parquet")
    shards = ShardSet(folder, VERDICT_SCHEMA)
    read = shards.read(["correct", "probability"])
    assert read.column("probability").to_pylist() == [None, None]
    assert read.schema.field("probability").type == pa.float64()
    assert read.column("correct").to_pylist() == [True, False]
    # a table built without the column (a writer that predates it) stores nulls; one with it, its values
    shards.append(
        shards.table(
            {"problem_id": ["b"], "sample_idx": [0], "correct": [True], "reason": ["correct"], "answer": ["1"]}
            | {"detail": [""], "probability": [0.75]}
        )
    )
    shards.append(
        shards.table(
            {"problem_id": ["c"], "sample_idx": [0], "correct": [False], "reason": ["wrong"], "answer": [None]}
            | {"detail": [""]}
        )
    )
    assert shards.read(["probability"]).column("probability").to_pylist() == [None, None, 0.75, None]
    samples = tmp_path / "samples"
    samples.mkdir()
    old_samples = pa.table(
        {name: [None] for name in old_schema(SAMPLE_SCHEMA).names} | {"problem_id": ["a"], "sample_idx": [0]},
        schema=old_schema(SAMPLE_SCHEMA),
    ).replace_schema_metadata({RANGES_KEY: json.dumps([["a", 0, 1]]).encode()})
    pq.write_table(old_samples, samples / "part-0.parquet")
    assert ShardSet(samples, SAMPLE_SCHEMA).read(CONFIDENCE).column("conf_tail").to_pylist() == [None]
