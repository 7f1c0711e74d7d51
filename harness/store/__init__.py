"""The data layer: run directories (samples, verdicts, scores as Parquet shards) and their configuration."""

from harness.store.config import RunConfig
from harness.store.run_store import PendingSamples, RunStore, Session, missing_ranges, subtract_ranges

__all__ = ["PendingSamples", "RunConfig", "RunStore", "Session", "missing_ranges", "subtract_ranges"]
