"""A run directory written before ttc split thinking from answer tokens (sample shards without the columns
``thinking_tokens`` and ``answer_tokens``, a summary.json without pass^k, avg@n and reasoning) still opens,
analyses and reports; its split is unknown, and said so."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import harness
from harness.store import RunStore
from harness.store.shards import ADDED_COLUMNS, SAMPLE_SCHEMA

ADDED_SAMPLE_COLUMNS = ADDED_COLUMNS & set(SAMPLE_SCHEMA.names)  # others are added to other schemas

OLD_SAMPLE_COLUMNS = [
    "problem_id",
    "sample_idx",
    "text",
    "n_tokens",
    "finish_reason",
    "logprob_sum",
    "prompt_tokens",
    "seed",
    "session",
]


def made_old(run_dir: Path) -> None:
    """Rewrite ``run_dir`` as ttc wrote it before: sample shards of the old schema (footers kept), no manifest
    record of reasoning, and a summary without the new keys."""
    for path in sorted((run_dir / "samples").glob("part-*.parquet")):
        table = pq.read_table(path)
        old = table.select(OLD_SAMPLE_COLUMNS).replace_schema_metadata(table.schema.metadata)
        pq.write_table(old, path, compression="zstd", write_page_checksum=True)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["reasoning"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("pass_hat_k", "avg_at_n", "reasoning"):
        del summary[key]
    (run_dir / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def old_run(make_fake_run, tmp_path) -> Path:
    run_dir = make_fake_run(root=tmp_path, problems=4, samples=4)
    made_old(run_dir)
    assert set(RunStore.open(run_dir).read_samples().column_names) >= ADDED_SAMPLE_COLUMNS  # read back as nulls
    assert not ADDED_SAMPLE_COLUMNS & set(pq.read_schema(next((run_dir / "samples").glob("part-*"))).names)
    return run_dir


def test_an_old_run_opens_analyses_and_reports(old_run):
    stored = harness.load_run(old_run)
    summary = stored.summary  # the old summary.json lacks the new keys: analysed again
    assert summary["reasoning"]["mode"] == "off" and summary["reasoning"]["sampled"] is None
    assert len(summary["pass_hat_k"]) == len(summary["pass_at_k"]) and summary["avg_at_n"]["samples"] == 16
    assert stored.pass_hat_k()["k"].tolist() == [row["k"] for row in summary["pass_at_k"]]
    samples = RunStore.open(old_run).read_samples(["thinking_tokens", "answer_tokens"]).to_pylist()
    assert all(row["thinking_tokens"] is None and row["answer_tokens"] is None for row in samples)
    report = stored.report()
    assert "Completions were judged whole" in report.read_text()


def test_an_old_run_verified_with_reasoning_on_says_its_split_is_unknown(old_run):
    verification = harness.verify(old_run, reasoning="on", workers=1, progress="quiet")
    assert verification["reasoning"]["mode"] == "on"
    assert verification["reasons"] == {"truncated_thinking": 16}  # the fake engine's samples never think
    summary = harness.analyze(old_run, verification["verdict_set"])
    reasoning = summary["reasoning"]
    assert reasoning["mode"] == "on" and reasoning["split_known"] == 0 and reasoning["thinking_tokens"] is None
    assert reasoning["note"].startswith("thinking and answer tokens unknown")
    assert harness.load_run(old_run, verification["verdict_set"]).report().is_file()


def test_old_and_new_shards_read_together(old_run, make_fake_run):
    """A run extended after the change holds shards of both schemas, and reads as one table."""
    shards_before = set((old_run / "samples").glob("part-*.parquet"))
    make_fake_run(root=old_run.parent, problems=4, samples=6)
    added = set((old_run / "samples").glob("part-*.parquet")) - shards_before
    assert added and all(set(pq.read_schema(path).names) >= ADDED_SAMPLE_COLUMNS for path in added)
    rows = RunStore.open(old_run).read_samples(["thinking_tokens", "n_tokens"]).to_pylist()
    assert sorted(row["sample_idx"] for row in rows) == sorted(list(range(6)) * 4)
    # the old shards' split is unknown; so is the new ones': the fake engine does not count thinking tokens
    assert all(row["thinking_tokens"] is None for row in rows)
