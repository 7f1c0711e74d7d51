"""The data layer: run directories (samples, verdicts, scores as Parquet shards) and their configuration."""

from harness.store.config import RunConfig
from harness.store.manifest import Session
from harness.store.ranges import missing_ranges, subtract_ranges
from harness.store.run_store import RunStore
from harness.store.shards import PendingSamples

__all__ = ["PendingSamples", "RunConfig", "RunStore", "Session", "missing_ranges", "subtract_ranges"]
