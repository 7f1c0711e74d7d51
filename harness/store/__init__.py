"""The data layer: run directories (samples, verdicts, scores as Parquet shards), their configuration, and
per-problem counts, the lingua franca of the analysis."""

from harness.store.config import RunConfig
from harness.store.counts import Counts, read_counts_jsonl, write_counts_jsonl
from harness.store.run_store import PendingSamples, RunStore, Session, missing_ranges, subtract_ranges

__all__ = [
    "Counts",
    "PendingSamples",
    "RunConfig",
    "RunStore",
    "Session",
    "missing_ranges",
    "read_counts_jsonl",
    "subtract_ranges",
    "write_counts_jsonl",
]
