"""Append-only Parquet shards: their schemas, the (problem, index range) index in each footer, checked reads, and
the buffered writer that the steps which produce rows (verify, score) use.

Why Parquet shards rather than JSONL: samples are mostly text, which Parquet compresses several-fold; columns
are typed (no float/int/None ambiguity); analysis reads only the columns it needs (counts never touch the text);
and each shard's footer carries the (problem, sample range) it holds, so resuming reads footers only. Why shards
at all: a shard is written to a temporary name, fsynced and renamed, so it either exists whole or not at all.
Nothing stored is ever rewritten; a crash (even ``kill -9``) loses at most the shard being written, and the next
run recomputes exactly the missing ranges from the footers. Shards carry page checksums, and every read checks
them, the column types and the footer's index against the rows, so a damaged shard is an error naming it, never
a silently different table.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.core.errors import RunStoreError
from harness.store.files import fsync_dir
from harness.store.ranges import Ranges, in_ranges, merge_ranges, ranges_of

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

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
        # reasoning models: tokens up to and including the closing think tag, and the rest (null: unknown)
        ("thinking_tokens", pa.int32()),
        ("answer_tokens", pa.int32()),
        # confidence statistics computed while sampling (harness.engines.confidence), null where the engine gave
        # no log-probabilities; conf_settings names the token values and windows they were computed with
        ("conf_mean", pa.float64()),
        ("conf_min_window", pa.float64()),
        ("conf_tail", pa.float64()),
        ("conf_bottom_window", pa.float64()),
        ("conf_settings", pa.string()),
        ("fingerprint", pa.int64()),  # text_fingerprint(text); null in shards written before it existed
        # budget forcing: whether the closing tag and the answer cue were appended (null: not forced at all)
        ("forced", pa.bool_()),
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
        # the verifier's probability that the sample is correct, where it has one (a judge's P(yes))
        ("probability", pa.float64()),
        ("fingerprint", pa.int64()),  # of the text judged; null in verdicts written before it existed
    ]
)

# A one-trace sweep (``ttc sweep``): each stored sample at one thinking budget B. A sample whose thinking did not
# close on its own within B is cut after its first B thinking tokens (``cut_chars`` characters of the stored
# text kept), closed with the tag and the answer cue, and answered anew (``answer_text``: the cue and the new
# answer); any other is the stored sample as it is (``forced`` false, no text of its own).
SWEEP_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("sample_idx", pa.int32()),
        ("forced", pa.bool_()),
        ("cut_chars", pa.int32()),
        ("answer_text", pa.string()),
        ("n_tokens", pa.int32()),  # the sample's generated tokens at B: thinking kept and answer
        ("thinking_tokens", pa.int32()),
        ("answer_tokens", pa.int32()),
        ("generated_tokens", pa.int32()),  # what the sweep generated for it (0: nothing)
        ("finish_reason", pa.string()),
        ("seed", pa.int64()),
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


# Columns added to a schema after run directories were first written: a shard without one (written before it
# existed) reads it as nulls, and a table given without it is stored with nulls. New columns go here, nullable.
ADDED_COLUMNS = frozenset(
    {
        "thinking_tokens",
        "answer_tokens",
        "conf_mean",
        "conf_min_window",
        "conf_tail",
        "conf_bottom_window",
        "conf_settings",
        "probability",
        "fingerprint",
        "forced",
    }
)

# A generative selection set (``ttc genselect``): one row per judge call, keyed by (problem, call index): the k
# candidates it was shown (sample indices, in the order shown), the sample it picked (-1: its reply named none),
# its reply and what the call cost.
SELECTION_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("sample_idx", pa.int32()),  # the call's index within its problem's plan
        ("k", pa.int32()),
        ("candidates", pa.list_(pa.int32())),
        ("choice", pa.int32()),
        ("reply", pa.string()),
        ("prompt_tokens", pa.int32()),
        ("output_tokens", pa.int32()),
    ]
)

PARQUET_MAGIC = b"PAR1"
#: The largest sample index the store can hold: ``sample_idx`` is an int32 (so are token counts).
MAX_SAMPLE_INDEX = 2**31 - 1


def text_fingerprint(text: str | None) -> int | None:
    """A 64-bit BLAKE2b hash of ``text`` as a signed int64 (None for None): stored with each sample and with
    each verdict, so that a verdict of a text since replaced (a sample shard re-drawn) is known to be stale."""
    if text is None:
        return None
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little", signed=True
    )


def text_fingerprints(texts: Iterable[str | None]) -> list[int | None]:
    """``text_fingerprint`` of each text."""
    return [text_fingerprint(text) for text in texts]


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


def footer_ranges(path: Path, metadata: Mapping[bytes, bytes]) -> list[tuple[str, int, int]] | None:
    """The (problem, start, stop) index a shard's footer declares (None for a shard written by other tools)."""
    if RANGES_KEY not in metadata:
        return None
    try:
        entries = json.loads(metadata[RANGES_KEY])
        return [(str(problem_id), int(start), int(stop)) for problem_id, start, stop in entries]
    except (ValueError, TypeError) as error:
        raise damaged_shard(path, f"its footer's index is unreadable: {error}") from None


def key_ranges(table: pa.Table) -> list[tuple[str, int, int]]:
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

    def __init__(self, folder: Path, schema: pa.Schema, root: Path | None = None) -> None:
        self.folder = folder
        self.schema = schema
        self.root = root  # the run directory the folder lies in: a shard is never written once it is gone

    def shard_paths(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("part-*.parquet"))

    def table(self, columns: Mapping[str, Any]) -> pa.Table:
        """Rows (column name -> values) as a table of this set's declared schema: a column that holds only
        nulls (no sample of a problem had an answer) keeps its declared type, so tables built separately
        concatenate. Every column of the schema must be given, except added ones (``ADDED_COLUMNS``): nulls."""
        missing = [name for name in self.schema.names if name not in columns and name not in ADDED_COLUMNS]
        if missing:
            raise ValueError(
                f"a table for {self.folder.name} lacks column(s) {missing}; its schema: {self.schema.names}"
            )
        rows = len(next(iter(columns.values()))) if columns else 0
        values = {
            name: columns[name] if name in columns else pa.nulls(rows, self.schema.field(name).type)
            for name in self.schema.names
        }
        return pa.table(values, schema=self.schema)

    def append(self, table: pa.Table | Sequence[pa.Table]) -> Path | None:
        """Write one shard atomically (temp name, fsync, rename), of a table or of several tables together,
        each cast to the declared schema first. Returns its path (None for no rows)."""
        tables = [table] if isinstance(table, pa.Table) else list(table)
        if not tables:
            return None
        table = pa.concat_tables([self._conformed(part).cast(self.schema) for part in tables])
        if table.num_rows == 0:
            return None
        ranges = ranges_of(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist())
        table = table.replace_schema_metadata({RANGES_KEY: json.dumps(ranges).encode()})
        if self.root is not None and not self.root.is_dir():  # removed meanwhile: never re-created in part
            raise RunStoreError(f"{self.root} no longer exists; nothing more is written there")
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.folder / f".tmp-{name}"
        with tmp.open("wb") as handle:
            pq.write_table(table, handle, compression="zstd", write_page_checksum=True)
            handle.flush()
            os.fsync(handle.fileno())
        final = self.folder / name
        os.replace(tmp, final)
        fsync_dir(self.folder)
        return final

    def _conformed(self, table: pa.Table) -> pa.Table:
        """``table``'s columns in the schema's order, an added column it lacks as nulls (``ADDED_COLUMNS``)."""
        for name in self.schema.names:
            if name not in table.column_names and name in ADDED_COLUMNS:
                table = table.append_column(name, pa.nulls(table.num_rows, self.schema.field(name).type))
        return table.select(self.schema.names)

    def ranges(self, limit: int = MAX_SAMPLE_INDEX + 1) -> Ranges:
        """Stored index ranges per problem, from shard footers only (no data pages are read). A shard holding an
        index outside ``[0, limit)`` (the run's samples per problem, where known) is damage, named."""
        index: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for path in self.shard_paths():
            entries = footer_ranges(path, read_footer_schema(path).metadata or {})
            if entries is None:  # a shard written by other tools: derive from its key columns
                entries = key_ranges(self.read_shard(path, []))
            for problem_id, start, stop in entries:
                if start < 0 or stop > limit:
                    raise damaged_shard(
                        path,
                        f"it holds sample indices {start}..{stop - 1} of problem {problem_id!r}, outside the run's "
                        f"0..{limit - 1}",
                    )
                index[problem_id].append((int(start), int(stop)))
        return {problem_id: merge_ranges(spans) for problem_id, spans in index.items()}

    def read_shard(self, path: Path, columns: Sequence[str]) -> pa.Table:
        """One shard's ``columns`` and keys, checked: pages against their checksums, columns against the
        schema, keys against the index in the footer. Damage is a ``RunStoreError`` naming the shard."""
        names = list(dict.fromkeys(["problem_id", "sample_idx", *columns]))
        for name in names:
            if name not in self.schema.names:
                raise RunStoreError(f"{self.folder} has no column {name!r}; its columns are {self.schema.names}")
        added = [name for name in names if name in ADDED_COLUMNS]
        present = set(read_footer_schema(path).names) if added else set()
        absent = [name for name in added if name not in present]  # a shard written before the column existed
        try:
            table = pq.read_table(
                path, columns=[name for name in names if name not in absent], page_checksum_verification=True
            )
        except READ_ERRORS as error:
            raise damaged_shard(path, error) from None
        for name in absent:
            table = table.append_column(name, pa.nulls(table.num_rows, self.schema.field(name).type))
        for name in names:
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
        declared = footer_ranges(path, table.schema.metadata or {})
        if declared is not None and sorted(declared) != key_ranges(table):
            raise damaged_shard(path, "its rows differ from the index in its footer")
        return table.select(names)

    def read(self, columns: Sequence[str] | None = None, problem_ids: Iterable[str] | None = None) -> pa.Table:
        """All stored rows (duplicates of a (problem, index) pair dropped, first shard wins), sorted by key."""
        table, _ = self.read_rows(columns, problem_ids)
        table = drop_duplicate_keys(table).drop_columns(["shard"])
        return table.sort_by([("problem_id", "ascending"), ("sample_idx", "ascending")])

    def read_rows(
        self, columns: Sequence[str] | None = None, problem_ids: Iterable[str] | None = None
    ) -> tuple[pa.Table, list[Path]]:
        """Every stored row, duplicates included, in shard order, with a ``shard`` column (the row's shard, an
        index into the paths returned beside the table)."""
        paths = self.shard_paths()
        wanted = list(columns) if columns is not None else self.schema.names
        for key in ("sample_idx", "problem_id"):
            if key not in wanted:
                wanted.insert(0, key)
        tables = []
        for number, path in enumerate(paths):
            shard = self.read_shard(path, wanted)
            tables.append(shard.append_column("shard", pa.array(np.full(shard.num_rows, number, np.int32))))
        if not tables:
            empty = self.schema.empty_table().select(wanted)
            return empty.append_column("shard", pa.array([], pa.int32())), paths
        table = pa.concat_tables(tables, promote_options="default")
        if problem_ids is not None:
            table = table.filter(pc.is_in(table.column("problem_id"), pa.array(list(problem_ids), pa.string())))
        return table, paths


def drop_duplicate_keys(table: pa.Table) -> pa.Table:
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


def pending_samples(samples: ShardSet, missing: Ranges, columns: Sequence[str] = ("text",)) -> Iterator[PendingSamples]:
    """The ``missing`` samples of the sample shards ``samples``, one problem at a time.

    A problem's batch holds all its pending samples; it is yielded as soon as the last of them has been read.
    Sample shards are read one at a time, keeping only pending rows of the problems still being gathered, so
    memory holds the problems in progress, not the run. A sample stored twice (a copied shard) comes once, from
    the first shard that holds it (as ``ShardSet.read`` keeps it). Raises RunStoreError when the shards' data
    lacks samples that their footers list.
    """
    remaining = {problem_id: sum(stop - start for start, stop in ranges) for problem_id, ranges in missing.items()}
    gathered: dict[str, dict[int, tuple[Any, ...]]] = defaultdict(dict)
    names = list(columns)
    for path in samples.shard_paths():
        if not remaining:
            return
        shard = samples.read_shard(path, names)
        problem_ids = shard.column("problem_id").to_numpy(zero_copy_only=False)
        indices = shard.column("sample_idx").to_numpy()
        pending = np.zeros(shard.num_rows, dtype=bool)
        order = np.argsort(problem_ids, kind="stable")
        bounds = np.flatnonzero(np.r_[True, problem_ids[order][1:] != problem_ids[order][:-1], True])
        for first, stop in itertools.pairwise(bounds):
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
            f"{samples.folder.parent}: the sample shards' footers list samples their data lacks, e.g. of problem "
            f"{min(remaining)!r}; was a shard changed after it was written?"
        )


class BufferedShards:
    """Rows gathered into one shard each time ``flush_rows`` rows or ``flush_seconds`` have accumulated, and when
    closed (also on an error or Ctrl-C): a crash loses at most what is buffered. ``write`` stores a list of
    tables as one shard (``RunStore.write_verdicts``, ``RunStore.write_scores``)."""

    def __init__(self, write: Callable[[list[pa.Table]], None], flush_rows: int, flush_seconds: float) -> None:
        self._write = write
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._tables: list[pa.Table] = []
        self._rows = 0
        self._last_flush = time.monotonic()

    def add(self, table: pa.Table) -> None:
        """Buffer ``table``; write the buffer as one shard when it is large or old enough."""
        self._tables.append(table)
        self._rows += table.num_rows
        if self._rows >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._tables:
            self._write(self._tables)
            self._tables = []
        self._rows, self._last_flush = 0, time.monotonic()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
