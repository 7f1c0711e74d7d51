"""The run directory: an append-only, crash-safe store of samples, verdicts and scores.

Layout::

    RUN_DIR/
      manifest.json            configuration + hash, versions, budget, sampling sessions
      problems.jsonl           the run's problems (prompt, reference, metadata): later steps need no dataset
      samples/part-*.parquet   problem_id, sample_idx, text, n_tokens, finish_reason, logprob_sum, ...
      verdicts/<verifier>-<hash>/part-*.parquet   problem_id, sample_idx, correct, reason, answer, detail
      scores/<name>/part-*.parquet                 problem_id, sample_idx, score (+ optional step scores)

Why Parquet shards rather than JSONL: samples are mostly text, which Parquet compresses several-fold;
columns are typed (no float/int/None ambiguity); analysis reads only the columns it needs (counts never
touch the text); and each shard's footer carries the (problem, sample range) it holds, so resuming reads
footers only. Why shards at all: a shard is written to a temporary name, fsynced and renamed, so it either
exists whole or not at all. Nothing stored is ever rewritten; a crash (even ``kill -9``) loses at most the
shard being written, and the next run recomputes exactly the missing ranges from the footers. Shards carry
page checksums, and every read checks them, the column types and the footer's index against the rows, so a
damaged shard is an error naming it, never a silently different table.

One writer at a time: a writer holds an exclusive ``flock`` on ``RUN_DIR/.lock``.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.core.errors import DataError, RunStoreError
from harness.core.jsonl import read_json_file as read_json
from harness.core.jsonl import read_jsonl_lines
from harness.core.records import Problem
from harness.store.config import RunConfig, config_hash, identity_differences

FORMAT = "ttc-run/1"
RANGES_KEY = b"ttc.ranges"

SAMPLE_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("sample_idx", pa.int32()),
        ("text", pa.string()),
        ("n_tokens", pa.int32()),
        ("finish_reason", pa.string()),
        ("logprob_sum", pa.float64()),
        ("prompt_tokens", pa.int32()),
        ("seed", pa.int64()),
        ("session", pa.string()),
    ]
)

VERDICT_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("sample_idx", pa.int32()),
        ("correct", pa.bool_()),
        ("reason", pa.string()),
        ("answer", pa.string()),
        ("detail", pa.string()),
    ]
)

SCORE_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("sample_idx", pa.int32()),
        ("score", pa.float64()),
        ("step_scores", pa.list_(pa.float64())),
    ]
)


Ranges = dict[str, list[tuple[int, int]]]


def read_json_file(path: Path, expected: type = object) -> Any:
    """A JSON file of the run directory, as ``expected`` (dict, list); anything else is a RunStoreError naming it."""
    try:
        return read_json(path, expected, where=f"{path} is damaged")
    except DataError as error:
        raise RunStoreError(str(error)) from None


# What readers of a manifest rely on: field -> its JSON type (optional fields are checked when present).
MANIFEST_FIELDS = {"config": dict, "config_hash": str, "default_verifier": str, "sessions": list}
OPTIONAL_MANIFEST_FIELDS = {"budget": dict, "model": dict, "versions": dict, "engine": dict, "active_verdicts": str}
SESSION_NUMBERS = ("samples", "output_tokens", "prompt_tokens", "requests", "seconds")


def check_manifest(path: Path, manifest: Any) -> dict[str, Any]:
    """``manifest`` if it is a run manifest of this format with the fields readers rely on, else a RunStoreError."""

    def fail(problem: str) -> RunStoreError:
        return RunStoreError(f"{path} is not a run manifest: {problem}")

    if not isinstance(manifest, dict):
        raise fail(f"a JSON {type(manifest).__name__}, expected an object")
    if manifest.get("format") != FORMAT:
        raise fail(f"unknown run format {manifest.get('format')!r} (expected {FORMAT})")
    for name, kind in {**MANIFEST_FIELDS, **OPTIONAL_MANIFEST_FIELDS}.items():
        if name not in manifest and name in MANIFEST_FIELDS:
            raise fail(f"no {name!r}")
        if name in manifest and not isinstance(manifest[name], kind):
            raise fail(f"{name!r} is a {type(manifest[name]).__name__}, expected a {kind.__name__}")
    if not isinstance(manifest["config"].get("task"), str):
        raise fail("its config names no task")
    for session in manifest["sessions"]:
        if (
            not isinstance(session, dict)
            or not isinstance(session.get("id"), str)
            or any(
                isinstance(session.get(name), bool) or not isinstance(session.get(name), (int, float))
                for name in SESSION_NUMBERS
            )
        ):
            raise fail(f"a sampling session is not an object with an id and numeric figures: {str(session)[:80]}")
    return manifest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ranges_of(problem_ids: Sequence[str], indices: Sequence[int]) -> list[tuple[str, int, int]]:
    """Contiguous (problem, start, stop) ranges covering the given (problem, index) pairs."""
    by_problem: dict[str, list[int]] = defaultdict(list)
    for problem_id, index in zip(problem_ids, indices):
        by_problem[problem_id].append(int(index))
    result = []
    for problem_id, values in by_problem.items():
        values.sort()
        start = previous = values[0]
        for value in values[1:]:
            if value != previous + 1:
                result.append((problem_id, start, previous + 1))
                start = value
            previous = value
        result.append((problem_id, start, previous + 1))
    return result


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def subtract_ranges(ranges: Iterable[tuple[int, int]], removed: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``ranges`` not covered by ``removed`` (half-open index ranges)."""
    removed = merge_ranges(removed)
    result = []
    for start, stop in merge_ranges(ranges):
        cursor = start
        for cut_start, cut_stop in removed:
            if cut_stop <= cursor or cut_start >= stop:
                continue
            if cut_start > cursor:
                result.append((cursor, cut_start))
            cursor = max(cursor, cut_stop)
        if cursor < stop:
            result.append((cursor, stop))
    return result


def missing_ranges(stored: Sequence[tuple[int, int]], target: int) -> list[tuple[int, int]]:
    """The parts of [0, target) not covered by the stored ranges."""
    return subtract_ranges([(0, target)], stored) if target > 0 else []


def in_ranges(indices: np.ndarray, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
    """Boolean mask: which indices fall inside the (merged, sorted) half-open ranges."""
    if not ranges:
        return np.zeros(len(indices), dtype=bool)
    starts = np.array([start for start, _ in ranges])
    stops = np.array([stop for _, stop in ranges])
    slot = np.searchsorted(starts, indices, side="right") - 1
    return (slot >= 0) & (indices < stops[np.clip(slot, 0, None)])


PARQUET_MAGIC = b"PAR1"


def read_footer_schema(path: Path) -> pa.Schema:
    """A Parquet file's schema (with its key-value metadata) from its footer alone.

    ``pq.read_schema`` reads the last 64 KiB of the file to find the footer, which for shards of a few
    hundred KB is much of the data; resuming a run scans every shard, so read exactly the footer instead.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size < 12:
            raise damaged_shard(path, "too short to be a Parquet file")
        handle.seek(size - 8)
        tail = handle.read(8)
        footer_length = int.from_bytes(tail[:4], "little")
        if tail[4:] != PARQUET_MAGIC or footer_length + 8 > size:
            raise damaged_shard(path, "not a complete Parquet file (cut short?)")
        handle.seek(size - 8 - footer_length)
        footer = handle.read(footer_length + 8)
    try:
        return pq.read_schema(pa.BufferReader(PARQUET_MAGIC + footer))
    except READ_ERRORS as error:
        raise damaged_shard(path, error) from None


# What pyarrow raises on bytes that are not the Parquet it expects (ArrowInvalid is a ValueError, ArrowIOError
# an OSError); a shard's reader turns each into one RunStoreError naming the shard.
READ_ERRORS = (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError, OverflowError)


def damaged_shard(path: Path, reason: BaseException | str) -> RunStoreError:
    """The error for a shard that cannot be read as written: names it, says why in one line, and what to do."""
    why = re.sub(r"\s+", " ", str(reason)).strip() or type(reason).__name__
    if len(why) > 200:
        why = why[:200] + "..."
    return RunStoreError(
        f"{path} is damaged ({why}): restore it from a copy, or move it out of the run directory and rerun the "
        "step that wrote it"
    )


def _footer_ranges(path: Path, metadata: Mapping[bytes, bytes]) -> list[tuple[str, int, int]] | None:
    """The (problem, start, stop) index a shard's footer declares (None for a shard written by other tools)."""
    if RANGES_KEY not in metadata:
        return None
    try:
        entries = json.loads(metadata[RANGES_KEY])
        return [(str(problem_id), int(start), int(stop)) for problem_id, start, stop in entries]
    except (ValueError, TypeError) as error:
        raise damaged_shard(path, f"its footer's index is unreadable: {error}") from None


def _key_ranges(table: pa.Table) -> list[tuple[str, int, int]]:
    """The contiguous (problem, start, stop) ranges of a table's keys (vectorised ``ranges_of``); a key held
    twice gives two ranges."""
    if table.num_rows == 0:
        return []
    keys = table.select(["problem_id", "sample_idx"]).sort_by(
        [("problem_id", "ascending"), ("sample_idx", "ascending")]
    )
    problem_ids = keys.column("problem_id").to_numpy(zero_copy_only=False)
    indices = keys.column("sample_idx").to_numpy().astype(np.int64)
    breaks = np.flatnonzero((problem_ids[1:] != problem_ids[:-1]) | (indices[1:] != indices[:-1] + 1)) + 1
    starts = np.r_[0, breaks]
    stops = np.r_[breaks, len(indices)]
    return [(str(problem_ids[a]), int(indices[a]), int(indices[b - 1]) + 1) for a, b in zip(starts, stops)]


class ShardSet:
    """A folder of append-only Parquet shards with a (problem, index range) index in their footers."""

    def __init__(self, folder: Path, schema: pa.Schema) -> None:
        self.folder = folder
        self.schema = schema

    def shard_paths(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("part-*.parquet"))

    def table(self, columns: Mapping[str, Any]) -> pa.Table:
        """Rows (column name -> values) as a table of this set's declared schema: a column that holds only
        nulls (no sample of a problem had an answer) keeps its declared type, so tables built separately
        concatenate. Every column of the schema must be given."""
        missing = [name for name in self.schema.names if name not in columns]
        if missing:
            raise ValueError(
                f"a table for {self.folder.name} lacks column(s) {missing}; its schema: {self.schema.names}"
            )
        return pa.table({name: columns[name] for name in self.schema.names}, schema=self.schema)

    def append(self, table: pa.Table | Sequence[pa.Table]) -> Path | None:
        """Write one shard atomically (temp name, fsync, rename), of a table or of several tables together,
        each cast to the declared schema first. Returns its path (None for no rows)."""
        tables = [table] if isinstance(table, pa.Table) else list(table)
        if not tables:
            return None
        table = pa.concat_tables([part.select(self.schema.names).cast(self.schema) for part in tables])
        if table.num_rows == 0:
            return None
        ranges = ranges_of(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist())
        table = table.replace_schema_metadata({RANGES_KEY: json.dumps(ranges).encode()})
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.folder / f".tmp-{name}"
        with tmp.open("wb") as handle:
            pq.write_table(table, handle, compression="zstd", write_page_checksum=True)
            handle.flush()
            os.fsync(handle.fileno())
        final = self.folder / name
        os.replace(tmp, final)
        _fsync_dir(self.folder)
        return final

    def ranges(self) -> Ranges:
        """Stored index ranges per problem, from shard footers only (no data pages are read)."""
        index: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for path in self.shard_paths():
            entries = _footer_ranges(path, read_footer_schema(path).metadata or {})
            if entries is None:  # a shard written by other tools: derive from its key columns
                entries = _key_ranges(self.read_shard(path, []))
            for problem_id, start, stop in entries:
                index[problem_id].append((int(start), int(stop)))
        return {problem_id: merge_ranges(spans) for problem_id, spans in index.items()}

    def read_shard(self, path: Path, columns: Sequence[str]) -> pa.Table:
        """One shard's ``columns`` and keys, checked: pages against their checksums, columns against the
        schema, keys against the index in the footer. Damage is a ``RunStoreError`` naming the shard."""
        names = list(dict.fromkeys(["problem_id", "sample_idx", *columns]))
        try:
            table = pq.read_table(path, columns=names, page_checksum_verification=True)
        except READ_ERRORS as error:
            raise damaged_shard(path, error) from None
        for name in names:
            if name not in self.schema.names:
                raise RunStoreError(f"{self.folder} has no column {name!r}; its columns are {self.schema.names}")
            expected = self.schema.field(name).type
            if table.schema.field(name).type != expected:  # a shard of other tools, or a damaged type
                try:
                    column = table.column(name).cast(expected)
                    table = table.set_column(table.schema.get_field_index(name), name, column)
                except READ_ERRORS:
                    raise damaged_shard(
                        path, f"column {name!r} is {table.schema.field(name).type}, not {expected}"
                    ) from None
        if table.column("problem_id").null_count or table.column("sample_idx").null_count:
            raise damaged_shard(path, "a row has no problem id or sample index")
        declared = _footer_ranges(path, table.schema.metadata or {})
        if declared is not None and sorted(declared) != _key_ranges(table):
            raise damaged_shard(path, "its rows differ from the index in its footer")
        return table.select(names)

    def read(self, columns: Sequence[str] | None = None, problem_ids: Iterable[str] | None = None) -> pa.Table:
        """All stored rows (duplicates of a (problem, index) pair dropped, first shard wins), sorted by key."""
        paths = self.shard_paths()
        wanted = list(columns) if columns is not None else self.schema.names
        for key in ("sample_idx", "problem_id"):
            if key not in wanted:
                wanted.insert(0, key)
        if not paths:
            return self.schema.empty_table().select(wanted)
        tables = [self.read_shard(path, wanted) for path in paths]
        table = pa.concat_tables(tables, promote_options="default")
        if problem_ids is not None:
            table = table.filter(pc.is_in(table.column("problem_id"), pa.array(list(problem_ids), pa.string())))
        table = _drop_duplicate_keys(table)
        return table.sort_by([("problem_id", "ascending"), ("sample_idx", "ascending")])


def _drop_duplicate_keys(table: pa.Table) -> pa.Table:
    if table.num_rows == 0:
        return table
    keys = pa.Table.from_arrays(
        [table.column("problem_id"), table.column("sample_idx"), pa.array(np.arange(table.num_rows))],
        names=["problem_id", "sample_idx", "row"],
    )
    first = keys.group_by(["problem_id", "sample_idx"], use_threads=False).aggregate([("row", "min")])
    if first.num_rows == table.num_rows:
        return table
    return table.take(first.column("row_min"))


@dataclass(frozen=True)
class PendingSamples:
    """One problem's stored samples that a verdict or score set lacks, in index order.

    Attributes:
        problem_id: the problem.
        indices: the samples' indices, ascending.
        columns: the requested sample columns (``SAMPLE_SCHEMA`` names), each a list aligned with ``indices``.
    """

    problem_id: str
    indices: list[int]
    columns: dict[str, list[Any]]

    @property
    def texts(self) -> list[str]:
        return self.columns["text"]


@dataclass
class Session:
    """Bookkeeping of one sampling session, stored in the manifest (throughput feeds the budget)."""

    id: str
    started: str
    samples: int = 0
    output_tokens: int = 0
    prompt_tokens: int = 0
    requests: int = 0
    seconds: float = 0.0
    finished: str | None = None
    status: str = "running"
    #: what only the engine knows of the session, e.g. per-replica throughput of a pool of engines on Ray
    engine_figures: dict[str, Any] = field(default_factory=dict)


class RunStore:
    """A run directory. Open with ``RunStore.open`` (read) or ``RunStore.create_or_resume`` (write)."""

    def __init__(self, path: Path, manifest: dict[str, Any], lock_handle: Any = None) -> None:
        self.path = path
        self.manifest = manifest
        self._lock_handle = lock_handle
        self.samples = ShardSet(path / "samples", SAMPLE_SCHEMA)

    # -- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, writable: bool = False) -> "RunStore":
        """Open an existing run directory; ``writable`` takes the directory's writer lock."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise RunStoreError(f"{path} is not a run directory (no manifest.json)")
        manifest = check_manifest(manifest_path, read_json_file(manifest_path))
        store = cls(path, manifest, _acquire_lock(path) if writable else None)
        if writable:
            store._remove_partial_writes()
        return store

    @classmethod
    def create_or_resume(
        cls,
        path: str | Path,
        config: RunConfig,
        problems: Sequence[Problem],
        *,
        default_verifier: str,
        model_info: Mapping[str, Any],
        versions: Mapping[str, Any],
    ) -> "RunStore":
        """Open ``path`` for sampling ``config``, creating it if new.

        An existing directory must hold the same configuration hash (else ``RunStoreError`` lists the
        differing fields and nothing is touched), and its problems must be a prefix of ``problems``
        (the run can grow, never change).
        """
        path = Path(path)
        identity = config.identity()
        if (path / "manifest.json").is_file():
            store = cls.open(path, writable=True)
            try:
                stored_identity = store.manifest["config"]
                if store.manifest["config_hash"] != config_hash(identity):
                    differences = identity_differences(stored_identity, identity)
                    hint = ""
                    if any(line.startswith("sample_defining.") for line in differences):
                        # repeating the option is not enough when the engine resolves it from the machine
                        hint = (
                            "\nsample_defining holds engine settings as the engine resolves them on this machine "
                            "(e.g. a dtype of auto): resume where they resolve to the stored values."
                        )
                    raise RunStoreError(
                        f"{path} holds a run with a different configuration; refusing to mix samples.\n  "
                        + "\n  ".join(differences or ["(configuration hash differs)"])
                        + "\nUse another run directory (out), or repeat the stored settings to resume."
                        + hint
                    )
                store._extend_problems(problems)
                store.manifest["budget"] = config.budget()
                store._save_manifest()
            except BaseException:
                store.close()
                raise
            return store
        return cls.create(
            path,
            identity,
            problems,
            budget=config.budget(),
            default_verifier=default_verifier,
            model_info=model_info,
            versions=versions,
        )

    @classmethod
    def create(
        cls,
        path: str | Path,
        identity: Mapping[str, Any],
        problems: Sequence[Problem],
        *,
        budget: Mapping[str, Any],
        default_verifier: str,
        model_info: Mapping[str, Any],
        versions: Mapping[str, Any],
    ) -> "RunStore":
        """Create a new run directory (refusing a non-empty one) holding ``problems``; opened for writing.

        ``identity`` is what defines the samples (hashed into ``config_hash``): a sampling configuration, or
        the description of imported data.
        """
        path = Path(path)
        if (path / "manifest.json").is_file():
            raise RunStoreError(f"{path} holds a run already; choose another run directory (out)")
        if path.exists() and any(path.iterdir()):
            raise RunStoreError(
                f"{path} exists, is not empty and is not a run directory; choose another run directory (out)"
            )
        path.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT,
            "created": _now(),
            "config_hash": config_hash(identity),
            "config": dict(identity),
            "budget": dict(budget),
            "default_verifier": default_verifier,
            "model": dict(model_info),
            "versions": dict(versions),
            "engine": {},
            "sessions": [],
        }
        store = cls(path, manifest, _acquire_lock(path))
        store._write_problems(problems)
        store._save_manifest()
        return store

    @property
    def holds_lock(self) -> bool:
        """Whether this store holds the run directory's writer lock (opened writable, or inside ``locked()``)."""
        return self._lock_handle is not None

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``RUN_DIR/name`` atomically (a summary, a comparison); needs the lock (``locked()``)."""
        self._require_writer()
        path = self.path / name
        _write_json_atomic(path, data)
        return path

    @contextmanager
    def locked(self) -> Iterator["RunStore"]:
        """Hold the run directory's writer lock while writing into it (summary, figures, reports): taken here,
        or refused with a RunStoreError while another process writes; a store opened writable holds it already."""
        if self._lock_handle is not None:
            yield self
            return
        self._lock_handle = _acquire_lock(self.path)
        try:
            yield self
        finally:
            self.close()

    def close(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- manifest and problems -----------------------------------------------------------------------------
    def _require_writer(self) -> None:
        if self._lock_handle is None:
            raise RunStoreError(f"{self.path} was opened read-only")

    def _save_manifest(self) -> None:
        self._require_writer()
        _write_json_atomic(self.path / "manifest.json", self.manifest)

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self._save_manifest()

    def _remove_partial_writes(self) -> None:
        """Delete temp files left by a writer that died mid-write (safe: we hold the writer lock)."""
        for pattern in ("samples/.tmp-*", "verdicts/*/.tmp-*", "scores/*/.tmp-*", ".*.tmp"):
            for tmp in self.path.glob(pattern):
                tmp.unlink(missing_ok=True)

    def problems(self) -> list[Problem]:
        """The run's problems, from problems.jsonl (a missing or damaged file is a RunStoreError naming it)."""
        path = self.path / "problems.jsonl"
        if not path.is_file():
            raise RunStoreError(f"{path} is missing: the run directory is damaged (restore problems.jsonl from a copy)")
        try:
            lines = read_jsonl_lines(path, kind="problems file")
        except DataError as error:
            raise RunStoreError(f"{error}: the run directory is damaged") from None
        problems = []
        for line, record in lines:
            missing = [name for name in ("problem_id", "prompt", "reference") if name not in record]
            if missing or not isinstance(record["problem_id"], str) or not isinstance(record["reference"], dict):
                raise RunStoreError(
                    f"{path}:{line}: not a stored problem (needs a string problem_id, a prompt and a reference "
                    f"object; has {sorted(record)}): the run directory is damaged"
                )
            problems.append(Problem.from_record(record))
        return problems

    def check_known_problems(
        self, problem_ids: Iterable[str], what: str, problems: Sequence[Problem] | None = None
    ) -> None:
        """Refuse ``what`` (samples, verdicts) stored for problems that problems.jsonl lacks: it was cut short
        or changed, and a summary without those problems would pass for the run's."""
        known = {problem.problem_id for problem in (self.problems() if problems is None else problems)}
        unknown = sorted(set(problem_ids) - known)
        if unknown:
            raise RunStoreError(
                f"{self.path}: {what} are stored for {len(unknown)} problems that problems.jsonl lacks (e.g. "
                f"{unknown[0]!r}): problems.jsonl is cut short or damaged"
            )

    def _write_problems(self, problems: Sequence[Problem]) -> None:
        ids = [problem.problem_id for problem in problems]
        if len(set(ids)) != len(ids):
            duplicate = next(pid for pid in ids if ids.count(pid) > 1)
            raise RunStoreError(f"the task has a duplicate problem id {duplicate!r}")
        path = self.path / "problems.jsonl"
        tmp = path.with_name(".problems.jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for problem in problems:
                handle.write(json.dumps(problem.to_record(), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.path)

    def _extend_problems(self, problems: Sequence[Problem]) -> None:
        stored = self.problems()
        stored_ids = [problem.problem_id for problem in stored]
        requested_ids = [problem.problem_id for problem in problems]
        common = min(len(stored_ids), len(requested_ids))
        if stored_ids[:common] != requested_ids[:common]:
            raise RunStoreError(f"{self.path}: the task's problems differ from the stored ones (order or ids)")
        if len(requested_ids) > len(stored_ids):
            self._write_problems(list(stored) + list(problems[len(stored) :]))

    # -- samples -------------------------------------------------------------------------------------------
    def sample_ranges(self) -> Ranges:
        return self.samples.ranges()

    def samples_missing_from(self, shards: ShardSet) -> Ranges:
        """Index ranges per problem stored as samples but absent from ``shards`` (verdicts or scores to do).

        Raises RunStoreError if samples are stored for a problem that problems.jsonl lacks.
        """
        done = shards.ranges()
        missing = {}
        for problem_id, ranges in self.sample_ranges().items():
            todo = subtract_ranges(ranges, done.get(problem_id, []))
            if todo:
                missing[problem_id] = todo
        self.check_known_problems(missing, "samples")
        return missing

    def iter_samples_lacking(
        self, shards: ShardSet, columns: Sequence[str] = ("text",), missing: Ranges | None = None
    ) -> Iterator[PendingSamples]:
        """The stored samples that ``shards`` (a verdict or score set) lacks, one problem at a time.

        A problem's batch holds all its pending samples; it is yielded as soon as the last of them has been
        read. Sample shards are read one at a time, keeping only pending rows of the problems still being
        gathered, so memory holds the problems in progress, not the run. A sample stored twice (a copied
        shard) comes once, from the first shard that holds it (as ``ShardSet.read`` keeps it).

        ``missing``: ``samples_missing_from(shards)``, when the caller has it already (for a total).
        """
        missing = self.samples_missing_from(shards) if missing is None else missing
        remaining = {problem_id: sum(stop - start for start, stop in ranges) for problem_id, ranges in missing.items()}
        gathered: dict[str, dict[int, tuple[Any, ...]]] = defaultdict(dict)
        names = list(columns)
        for path in self.samples.shard_paths():
            if not remaining:
                return
            shard = self.samples.read_shard(path, names)
            problem_ids = shard.column("problem_id").to_numpy(zero_copy_only=False)
            indices = shard.column("sample_idx").to_numpy()
            pending = np.zeros(shard.num_rows, dtype=bool)
            order = np.argsort(problem_ids, kind="stable")
            bounds = np.flatnonzero(np.r_[True, problem_ids[order][1:] != problem_ids[order][:-1], True])
            for first, stop in zip(bounds[:-1], bounds[1:]):
                rows = order[first:stop]
                problem_id = problem_ids[rows[0]]
                if problem_id in remaining:
                    pending[rows[in_ranges(indices[rows], missing[problem_id])]] = True
            rows = np.flatnonzero(pending)
            taken = [shard.column(name).take(rows).to_pylist() for name in names]
            touched = set()
            for position, (problem_id, index) in enumerate(zip(problem_ids[rows].tolist(), indices[rows].tolist())):
                found = gathered[problem_id]
                if index not in found:  # else a copy of a sample already read
                    found[index] = tuple(values[position] for values in taken)
                    remaining[problem_id] -= 1
                    touched.add(problem_id)
            for problem_id in sorted(touched):
                if remaining[problem_id] == 0:
                    del remaining[problem_id]
                    found = gathered.pop(problem_id)
                    ordered = sorted(found)
                    yield PendingSamples(
                        problem_id,
                        ordered,
                        {name: [found[index][position] for index in ordered] for position, name in enumerate(names)},
                    )
        if remaining:
            raise RunStoreError(
                f"{self.path}: the sample shards' footers list samples their data lacks, e.g. of problem "
                f"{sorted(remaining)[0]!r}; was a shard changed after it was written?"
            )

    def write_samples(self, table: pa.Table) -> None:
        self._require_writer()
        self.samples.append(table)

    def read_samples(self, columns: Sequence[str] | None = None, problem_ids: Iterable[str] | None = None) -> pa.Table:
        return self.samples.read(columns, problem_ids)

    def start_session(self, engine_description: Mapping[str, Any], versions: Mapping[str, Any]) -> Session:
        session = Session(id=uuid.uuid4().hex[:12], started=_now())
        self.manifest["engine"] = dict(engine_description)
        self.manifest["versions"] = dict(versions)
        self.manifest["sessions"].append(session.__dict__.copy())
        self._save_manifest()
        return session

    def save_session(self, session: Session, engine_description: Mapping[str, Any] | None = None) -> None:
        """Save a session's figures (and the engine's description, when it changed while sampling)."""
        if engine_description is not None:
            self.manifest["engine"] = dict(engine_description)
        for index, entry in enumerate(self.manifest["sessions"]):
            if entry["id"] == session.id:
                self.manifest["sessions"][index] = session.__dict__.copy()
        self._save_manifest()

    # -- verdicts ------------------------------------------------------------------------------------------
    def verdict_sets(self) -> dict[str, dict[str, Any]]:
        """Verdict sets present: key -> the verifier description stored with them."""
        folder = self.path / "verdicts"
        sets = {}
        for sub in sorted(folder.glob("*")) if folder.is_dir() else []:
            info = sub / "verifier.json"
            if info.is_file():
                sets[sub.name] = read_json_file(info, dict)
        return sets

    def verdict_key(self, verifier_description: Mapping[str, Any]) -> str:
        name = str(verifier_description.get("name", "verifier"))
        return f"{name}-{config_hash(verifier_description)[:8]}"

    def verdicts(self, key: str) -> ShardSet:
        return ShardSet(self.path / "verdicts" / key, VERDICT_SCHEMA)

    def register_verdict_set(self, verifier_description: Mapping[str, Any]) -> str:
        self._require_writer()
        key = self.verdict_key(verifier_description)
        folder = self.path / "verdicts" / key
        folder.mkdir(parents=True, exist_ok=True)
        info = folder / "verifier.json"
        if not info.is_file():
            _write_json_atomic(info, dict(verifier_description))
        self.update_manifest(active_verdicts=key)
        return key

    def write_verdicts(self, key: str, table: pa.Table | Sequence[pa.Table]) -> None:
        self._require_writer()
        self.verdicts(key).append(table)

    def resolve_verdict_key(self, verifier: str | None = None) -> str:
        """The verdict set to analyse: by key or verifier name, else the one last verified."""
        sets = self.verdict_sets()
        if not sets:
            raise RunStoreError(f"{self.path} has no verdicts yet: run `ttc verify {self.path}` first")
        if verifier is None:
            key = self.manifest.get("active_verdicts")
            if key in sets:
                return key
            return sorted(sets)[-1]
        if verifier in sets:
            return verifier
        matching = [key for key, info in sets.items() if info.get("name") == verifier]
        if not matching:
            raise RunStoreError(f"{self.path} has no verdicts from {verifier!r}; it has {sorted(sets)}")
        if len(matching) > 1 and self.manifest.get("active_verdicts") in matching:
            return self.manifest["active_verdicts"]
        return matching[-1]

    def read_verdicts(self, verifier: str | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        return self.verdicts(self.resolve_verdict_key(verifier)).read(columns)

    # -- scores (reward models, imported scores) -------------------------------------------------------------
    def scores(self, name: str) -> ShardSet:
        return ShardSet(self.path / "scores" / name, SCORE_SCHEMA)

    def score_sets(self) -> dict[str, dict[str, Any]]:
        """Score sets present: name -> how they were made (``scorer.json``: reward model, or imported)."""
        folder = self.path / "scores"
        sets = {}
        for sub in sorted(folder.glob("*")) if folder.is_dir() else []:
            info = sub / "scorer.json"
            if info.is_file():
                sets[sub.name] = read_json_file(info, dict)
        return sets

    def register_score_set(self, name: str, description: Mapping[str, Any]) -> None:
        """Create score set ``name`` made as ``description``, or check that the existing one was made alike."""
        self._require_writer()
        if not name or name.startswith(".") or "/" in name or name != name.strip():
            raise RunStoreError(f"invalid score set name {name!r}: use letters, digits, '-', '_' or '.'")
        folder = self.path / "scores" / name
        info = folder / "scorer.json"
        if info.is_file():
            stored = read_json_file(info, dict)
            if stored != dict(description):
                differences = identity_differences(stored, dict(description))
                raise RunStoreError(
                    f"score set {name!r} in {self.path} was made differently; refusing to mix scores.\n  "
                    + "\n  ".join(differences)
                    + "\nChoose another score set name (name)."
                )
            return
        folder.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(info, dict(description))

    # -- reductions for analysis -----------------------------------------------------------------------------
    def verdict_tallies(self, verifier: str | None = None) -> list[tuple[Problem, int, int]]:
        """Per problem with verdicts, in the run's order: the problem, its verdicts and how many say correct."""
        verdicts = self.read_verdicts(verifier, columns=["correct"])
        if verdicts.num_rows == 0:
            raise RunStoreError(f"{self.path}: the verdict set is empty")
        grouped = verdicts.group_by("problem_id", use_threads=False).aggregate(
            [("correct", "count"), ("correct", "sum")]
        )
        by_id = {
            problem_id: (int(n), int(c))
            for problem_id, n, c in zip(
                grouped.column("problem_id").to_pylist(),
                grouped.column("correct_count").to_pylist(),
                grouped.column("correct_sum").to_pylist(),
            )
        }
        problems = self.problems()
        self.check_known_problems(by_id, "verdicts", problems)
        return [(problem, *by_id[problem.problem_id]) for problem in problems if problem.problem_id in by_id]

    def usage(self) -> dict[str, Any]:
        """Measured cost figures: tokens per sample and per prompt, throughput, model size."""
        table = self.read_samples(columns=["n_tokens", "prompt_tokens"])
        if table.num_rows == 0:
            raise RunStoreError(f"{self.path} has no samples yet")
        per_problem = table.group_by("problem_id", use_threads=False).aggregate([("prompt_tokens", "max")])
        finished = [s for s in self.manifest.get("sessions", []) if s.get("seconds", 0) > 0]
        seconds = sum(s["seconds"] for s in finished)
        output_tokens = sum(s["output_tokens"] for s in finished)
        total_tokens = pc.sum(table.column("n_tokens")).as_py()  # None where samples were imported without counts
        tokens_per_sample = pc.mean(table.column("n_tokens")).as_py()
        prompt_tokens = pc.mean(per_problem.column("prompt_tokens_max")).as_py()
        return {
            "samples": table.num_rows,
            "output_tokens": None if total_tokens is None else int(total_tokens),
            "output_tokens_per_sample": None if tokens_per_sample is None else float(tokens_per_sample),
            "prompt_tokens_per_problem": None if prompt_tokens is None else float(prompt_tokens),
            "output_tokens_per_second": output_tokens / seconds if seconds > 0 else None,
            "model_parameters": self.manifest.get("model", {}).get("parameters"),
        }


def _acquire_lock(path: Path):
    handle = (path / ".lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise RunStoreError(f"{path} is in use by another ttc process ({owner}); wait for it or stop it") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {platform.node()}")
    handle.flush()
    return handle
