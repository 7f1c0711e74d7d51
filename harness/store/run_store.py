"""The run directory: an append-only, crash-safe store of samples, verdicts and scores, and the one way to write
into it.

Layout::

    RUN_DIR/
      manifest.json            configuration + hash, versions, budget, sampling sessions   (store.manifest)
      problems.jsonl           the run's problems (prompt, reference, metadata): later steps need no dataset
      samples/part-*.parquet   problem_id, sample_idx, text, n_tokens, finish_reason, logprob_sum, ...
      verdicts/<verifier>-<hash>/part-*.parquet   problem_id, sample_idx, correct, reason, answer, detail
      scores/<name>/part-*.parquet                 problem_id, sample_idx, score (+ optional step scores)
      selections/<name>/part-*.parquet             generative selection: a judge's pick among k samples per call
      sweeps/<sweep>/sweep.json                     how a one-trace sweep forces answers (``ttc sweep``)
      sweeps/<sweep>/budget-<B>/samples/part-*.parquet             each sample at thinking budget B
      sweeps/<sweep>/budget-<B>/verdicts/<verdict set>/part-*.parquet   their verdicts
      summary.json, coverage.png, report.html, verifiers.json, verifiers.png   what the analysis writes

Shards (``harness.store.shards``) are written atomically and never rewritten; what a step must still compute is
range algebra over their footers (``harness.store.ranges``). Every write goes through a ``RunStore`` that holds
the writer lock: one writer at a time, an exclusive ``flock`` on ``RUN_DIR/.lock``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness.core.errors import RunStoreError
from harness.core.records import Problem
from harness.store.config import RunConfig, config_hash, identity_differences
from harness.store.files import write_atomic, write_json_atomic
from harness.store.lock import acquire_lock
from harness.store.manifest import (
    Session,
    configuration_refusal,
    new_manifest,
    now,
    read_json_file,
    read_manifest,
    read_problems,
    write_problems,
)
from harness.store.ranges import Ranges, subtract_ranges
from harness.store.shards import (
    MAX_SAMPLE_INDEX,
    SAMPLE_SCHEMA,
    SCORE_SCHEMA,
    SELECTION_SCHEMA,
    SWEEP_SCHEMA,
    VERDICT_SCHEMA,
    BufferedShards,
    PendingSamples,
    ShardSet,
    drop_duplicate_keys,
    key_ranges,
    pending_samples,
    text_fingerprints,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11


class RunStore:
    """A run directory. Open with ``RunStore.open`` (read) or ``RunStore.create_or_resume`` (write)."""

    def __init__(self, path: Path, manifest: dict[str, Any], lock_handle: Any = None) -> None:
        self.path = path
        self.manifest = manifest
        self._lock_handle = lock_handle
        self.samples = ShardSet(path / "samples", SAMPLE_SCHEMA, root=path)

    # -- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, writable: bool = False) -> RunStore:
        """Open an existing run directory; ``writable`` takes the directory's writer lock."""
        path = Path(path)
        store = cls(path, read_manifest(path), acquire_lock(path) if writable else None)
        if writable:
            store._remove_partial_writes()
            store._end_orphaned_sessions()
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
    ) -> RunStore:
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
                if store.manifest["config_hash"] != config_hash(identity):
                    raise configuration_refusal(path, store.manifest["config"], identity)
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
    ) -> RunStore:
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
        manifest = new_manifest(
            identity, budget=budget, default_verifier=default_verifier, model_info=model_info, versions=versions
        )
        store = cls(path, manifest, acquire_lock(path))
        store._write_problems(problems)
        store._save_manifest()
        return store

    @property
    def run_id(self) -> str:
        """This run's identity: the id its manifest was created with (runs made before ids were recorded: their
        configuration hash and creation time)."""
        recorded = self.manifest.get("run_id")
        return (
            recorded if isinstance(recorded, str) else f"{self.manifest['config_hash']}@{self.manifest.get('created')}"
        )

    def content_fingerprint(self, verdict_set: str) -> str:
        """A hash of what a summary of ``verdict_set`` reads: the configuration, the problems file's size, and the
        names of the sample and verdict shards (written once, never changed, named uniquely), so that it
        changes whenever samples or verdicts are added or removed. Costs a listing, not a read."""
        parts = [
            self.manifest["config_hash"],
            str(_size(self.path / "problems.jsonl")),
            *(path.name for path in self.samples.shard_paths()),
            "verdicts",
            *(path.name for path in self.verdicts(verdict_set).shard_paths()),
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @property
    def holds_lock(self) -> bool:
        """Whether this store holds the run directory's writer lock (opened writable, or inside ``locked()``)."""
        return self._lock_handle is not None

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``RUN_DIR/name`` atomically (a summary, a comparison); needs the lock (``locked()``)."""
        self._require_writer()
        path = self.path / name
        write_json_atomic(path, data)
        return path

    def write_file(self, name: str, data: bytes | str) -> Path:
        """Write ``RUN_DIR/name`` atomically (a figure, a report); needs the lock (``locked()``)."""
        self._require_writer()
        path = self.path / name
        write_atomic(path, data.encode("utf-8") if isinstance(data, str) else data)
        return path

    @contextmanager
    def locked_for_reading(self) -> Iterator[RunStore]:
        """Hold the writer lock while reading the run for output written elsewhere (a report to another path),
        so that no writer changes it meanwhile; refused while another process writes. A run directory this
        process may not write into (an archived copy, read-only) is read without the lock: ``.lock`` cannot be
        opened there, and this process could not change the run anyway."""
        if self._lock_handle is None and not self.writable():
            yield self
            return
        with self.locked() as store:
            yield store

    def writable(self) -> bool:
        """Whether this process may write into the run directory (create files in it, take its lock)."""
        lock = self.path / ".lock"
        return os.access(self.path, os.W_OK) and (not lock.exists() or os.access(lock, os.W_OK))

    @contextmanager
    def locked(self) -> Iterator[RunStore]:
        """Hold the run directory's writer lock while writing into it (summary, figures, reports): taken here,
        or refused with a RunStoreError while another process writes; a store opened writable holds it already."""
        if self._lock_handle is not None:
            yield self
            return
        self._lock_handle = acquire_lock(self.path)
        try:
            yield self
        finally:
            self.close()

    def close(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- manifest and problems -----------------------------------------------------------------------------
    def _require_writer(self) -> None:
        """Refuse a write unless this store holds the lock of the run directory that is still at its path: one
        removed (``rm -rf``) or replaced while a command writes is an error, never re-created in part."""
        if self._lock_handle is None:
            raise RunStoreError(f"{self.path} was opened read-only")
        try:
            present = os.stat(self.path / ".lock")
        except OSError:
            present = None
        held = os.fstat(self._lock_handle.fileno())
        if present is None or (present.st_dev, present.st_ino) != (held.st_dev, held.st_ino):
            raise RunStoreError(
                f"{self.path} was removed or replaced while this command wrote into it; nothing more is written "
                "there (what was stored before is gone with it)"
            )

    def _save_manifest(self) -> None:
        self._require_writer()
        write_json_atomic(self.path / "manifest.json", self.manifest)

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self._save_manifest()

    def _end_orphaned_sessions(self) -> None:
        """Sessions still ``running`` when the lock is taken ended without recording it (``kill -9``, a lost
        machine): they are ``killed``, with the figures last saved."""
        orphaned = [entry for entry in self.manifest["sessions"] if entry.get("status") == "running"]
        for entry in orphaned:
            entry["status"] = "killed"
        if orphaned:
            self._save_manifest()

    def _remove_partial_writes(self) -> None:
        """Delete temp files left by a writer that died mid-write (safe: we hold the writer lock)."""
        patterns = ("samples/.tmp-*", "verdicts/*/.tmp-*", "scores/*/.tmp-*", "selections/*/.tmp-*", ".*.tmp")
        sweeps = ("sweeps/*/.*.tmp", "sweeps/*/budget-*/samples/.tmp-*", "sweeps/*/budget-*/verdicts/*/.tmp-*")
        for pattern in patterns + sweeps:
            for tmp in self.path.glob(pattern):
                tmp.unlink(missing_ok=True)

    def problems(self) -> list[Problem]:
        """The run's problems, from problems.jsonl (a missing or damaged file is a RunStoreError naming it)."""
        return read_problems(self.path / "problems.jsonl")

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
        write_problems(self.path / "problems.jsonl", problems)

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
    @property
    def sample_limit(self) -> int:
        """One past the largest sample index this run may hold: the most samples per problem it was ever asked
        for (``sample_bound`` in the manifest; runs made before it was recorded: what the store can hold)."""
        bound = self.manifest.get("sample_bound")
        return bound if isinstance(bound, int) else MAX_SAMPLE_INDEX + 1

    def allow_samples(self, samples_per_problem: int) -> None:
        """Record that this run may hold ``samples_per_problem`` samples per problem (indices below it), before
        they are sampled: a stored index beyond every target ever asked is damage (``sample_ranges``)."""
        if samples_per_problem > MAX_SAMPLE_INDEX + 1:
            raise RunStoreError(
                f"{self.path}: {samples_per_problem:,} samples per problem is beyond what a run directory holds "
                f"({MAX_SAMPLE_INDEX + 1:,})"
            )
        bound = self.manifest.get("sample_bound")
        if not isinstance(bound, int) or samples_per_problem > bound:
            self.update_manifest(sample_bound=int(samples_per_problem))

    def sample_ranges(self) -> Ranges:
        """Stored sample index ranges per problem (from shard footers); a shard with an index outside
        ``[0, sample_limit)`` is a RunStoreError naming it."""
        return self.samples.ranges(self.sample_limit)

    def sample_fingerprints(self) -> pa.Table:
        """``problem_id``, ``sample_idx``, ``fingerprint`` of every stored sample (the first shard's, as
        ``read_samples`` keeps it), sorted by key. Shards written before fingerprints were stored get theirs
        from their text. One sample stored twice with two different texts is a RunStoreError naming both shards."""
        tables = []
        paths = self.samples.shard_paths()
        for number, path in enumerate(paths):
            shard = self.samples.read_shard(path, ["fingerprint"])
            if shard.column("fingerprint").null_count:  # written before fingerprints: from the text
                texts = self.samples.read_shard(path, ["text"]).column("text").to_pylist()
                computed = pa.array(text_fingerprints(texts), pa.int64())
                shard = shard.set_column(2, "fingerprint", pc.coalesce(shard.column("fingerprint"), computed))
            tables.append(shard.append_column("shard", pa.array(np.full(shard.num_rows, number, np.int32))))
        if not tables:
            return pa.table(
                {
                    "problem_id": pa.array([], pa.string()),
                    "sample_idx": pa.array([], pa.int32()),
                    "fingerprint": pa.array([], pa.int64()),
                }
            )
        table = pa.concat_tables(tables, promote_options="default")
        _refuse_conflicts(table, "fingerprint", paths, "samples", "texts")
        return (
            drop_duplicate_keys(table)
            .drop_columns(["shard"])
            .sort_by([("problem_id", "ascending"), ("sample_idx", "ascending")])
        )

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
        """The stored samples that ``shards`` (a verdict or score set) lacks, one problem at a time (see
        ``harness.store.shards.pending_samples``: memory holds the problems in progress, not the run).

        ``missing``: ``samples_missing_from(shards)``, when the caller has it already (for a total).
        """
        missing = self.samples_missing_from(shards) if missing is None else missing
        return pending_samples(self.samples, missing, columns)

    def write_samples(self, table: pa.Table) -> None:
        self._require_writer()
        self.samples.append(table)

    def read_samples(self, columns: Sequence[str] | None = None, problem_ids: Iterable[str] | None = None) -> pa.Table:
        return self.samples.read(columns, problem_ids)

    def start_session(self, engine_description: Mapping[str, Any], versions: Mapping[str, Any]) -> Session:
        session = Session(id=uuid.uuid4().hex[:12], started=now())
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
        return ShardSet(self.path / "verdicts" / key, VERDICT_SCHEMA, root=self.path)

    def register_verdict_set(self, verifier_description: Mapping[str, Any]) -> str:
        self._require_writer()
        key = self.verdict_key(verifier_description)
        folder = self.path / "verdicts" / key
        folder.mkdir(parents=True, exist_ok=True)
        info = folder / "verifier.json"
        if not info.is_file():
            write_json_atomic(info, dict(verifier_description))
        self.update_manifest(active_verdicts=key)
        return key

    def write_verdicts(self, key: str, table: pa.Table | Sequence[pa.Table]) -> None:
        """Store verdicts of set ``key`` (one table, or several as one shard)."""
        self._require_writer()
        self.verdicts(key).append(table)

    def verdict_writer(self, key: str, flush_rows: int, flush_seconds: float) -> BufferedShards:
        """A buffered writer of verdicts of set ``key``: a shard every ``flush_rows`` rows or ``flush_seconds``."""
        return BufferedShards(lambda tables: self.write_verdicts(key, tables), flush_rows, flush_seconds)

    def resolve_verdict_key(self, verifier: str | None = None) -> str:
        """The verdict set to analyse: by key or verifier name, else the one last verified."""
        sets = self.verdict_sets()
        if not sets:
            raise RunStoreError(f"{self.path} has no verdicts yet: run `ttc verify {self.path}` first")
        if verifier is None:
            key = self.manifest.get("active_verdicts")
            if key in sets:
                return key
            return max(sets)
        if verifier in sets:
            return verifier
        matching = [key for key, info in sets.items() if info.get("name") == verifier]
        if not matching:
            raise RunStoreError(f"{self.path} has no verdicts from {verifier!r}; it has {sorted(sets)}")
        if len(matching) > 1 and self.manifest.get("active_verdicts") in matching:
            return self.manifest["active_verdicts"]
        return matching[-1]

    def read_verdicts(self, verifier: str | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """The verdicts of a set (by key or verifier name, as ``resolve_verdict_key``) that judge the samples
        stored now, one per sample, sorted by key (``current_verdicts``)."""
        return self.current_verdicts(self.resolve_verdict_key(verifier), columns)

    def current_verdicts(self, key: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The verdicts of set ``key`` that judge the samples stored now, one per sample, sorted by key.

        A verdict carries the fingerprint of the text it judged: one whose sample's text has changed since (a
        sample shard re-drawn) is stale, left out, and judged again by ``ttc verify``. Verdicts written before
        fingerprints existed judge whatever is stored (they are kept, as they always were); so are verdicts
        of samples no longer stored (``completeness`` counts them). Two current verdicts of one sample that
        disagree on its correctness are a RunStoreError naming both shards.
        """
        wanted = list(columns) if columns is not None else list(VERDICT_SCHEMA.names)
        verdicts, paths = self.verdicts(key).read_rows(list(dict.fromkeys([*wanted, "correct", "fingerprint"])))
        verdicts = verdicts.filter(pc.invert(self._stale(verdicts)))
        _refuse_conflicts(verdicts, "correct", paths, f"verdicts of set {key!r}", "verdicts")
        table = drop_duplicate_keys(verdicts).sort_by([("problem_id", "ascending"), ("sample_idx", "ascending")])
        return table.select(list(dict.fromkeys(["problem_id", "sample_idx", *wanted])))

    def stale_verdicts(self, key: str) -> Ranges:
        """Samples whose every verdict in set ``key`` judged a text that has since changed: to judge again."""
        verdicts, _ = self.verdicts(key).read_rows(["fingerprint"])
        stale = self._stale(verdicts)
        if not pc.any(stale).as_py():
            return {}
        current = verdicts.filter(pc.invert(stale))
        current_ranges: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for problem_id, start, stop in key_ranges(current):
            current_ranges[problem_id].append((start, stop))
        stale_ranges: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for problem_id, start, stop in key_ranges(verdicts.filter(stale)):
            stale_ranges[problem_id].append((start, stop))
        result = {pid: subtract_ranges(spans, current_ranges.get(pid, [])) for pid, spans in stale_ranges.items()}
        return {pid: spans for pid, spans in result.items() if spans}

    def _stale(self, verdicts: pa.Table) -> pa.Array:
        """Which ``verdicts`` rows (with ``fingerprint``) judged a text other than the sample's stored now."""
        judged = verdicts.column("fingerprint")
        if verdicts.num_rows == 0 or judged.null_count == verdicts.num_rows:
            return pa.array(np.zeros(verdicts.num_rows, dtype=bool))
        samples = self.sample_fingerprints()
        position = pc.index_in(_keys(verdicts), value_set=_keys(samples))
        stored = samples.column("fingerprint").take(position)  # null where the sample is not stored
        return pc.fill_null(pc.not_equal(judged, stored), False)

    # -- one-trace sweeps over thinking budgets ---------------------------------------------------------------
    def sweeps(self) -> dict[str, dict[str, Any]]:
        """Sweeps present: key -> how they force answers (``sweep.json``)."""
        folder = self.path / "sweeps"
        sets = {}
        for sub in sorted(folder.glob("*")) if folder.is_dir() else []:
            info = sub / "sweep.json"
            if info.is_file():
                sets[sub.name] = read_json_file(info, dict)
        return sets

    def register_sweep(self, description: Mapping[str, Any]) -> str:
        """The sweep that forces answers as ``description`` says (created if new); it becomes the run's active
        sweep, the one ``analyze`` reads."""
        self._require_writer()
        key = f"sweep-{config_hash(description)[:8]}"
        folder = self.path / "sweeps" / key
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "sweep.json").is_file():
            write_json_atomic(folder / "sweep.json", dict(description))
        self.update_manifest(active_sweep=key)
        return key

    def sweep_budgets(self, key: str) -> list[int]:
        """The thinking budgets sweep ``key`` holds samples of, increasing."""
        folder = self.path / "sweeps" / key
        budgets = [sub.name.removeprefix("budget-") for sub in folder.glob("budget-*")] if folder.is_dir() else []
        return sorted(int(budget) for budget in budgets if budget.isdigit())

    def sweep_samples(self, key: str, budget: int) -> ShardSet:
        """Sweep ``key``'s samples at thinking budget ``budget``."""
        return ShardSet(self.path / "sweeps" / key / f"budget-{int(budget)}" / "samples", SWEEP_SCHEMA)

    def sweep_verdicts(self, key: str, budget: int, verdict_key: str) -> ShardSet:
        """The verdicts of sweep ``key``'s samples at ``budget``, judged as verdict set ``verdict_key`` judges."""
        return ShardSet(self.path / "sweeps" / key / f"budget-{int(budget)}" / "verdicts" / verdict_key, VERDICT_SCHEMA)

    def write_sweep(self, shards: ShardSet, table: pa.Table | Sequence[pa.Table]) -> None:
        """Store rows of a sweep's samples or verdicts (``sweep_samples``, ``sweep_verdicts``) as one shard."""
        self._require_writer()
        shards.append(table)

    # -- scores (reward models, imported scores) -------------------------------------------------------------
    def scores(self, name: str) -> ShardSet:
        return ShardSet(self.path / "scores" / name, SCORE_SCHEMA, root=self.path)

    def score_sets(self) -> dict[str, dict[str, Any]]:
        """Score sets present: name -> how they were made (``scorer.json``: reward model, or imported)."""
        return self._described_sets("scores", "scorer.json")

    def register_score_set(self, name: str, description: Mapping[str, Any]) -> None:
        """Create score set ``name`` made as ``description``, or check that the existing one was made alike."""
        self._register_described_set("scores", "scorer.json", "score set", "scores", name, description)

    def _described_sets(self, folder_name: str, info_name: str) -> dict[str, dict[str, Any]]:
        """The sets in ``RUN_DIR/folder_name``: name -> the description in each one's ``info_name``."""
        folder = self.path / folder_name
        sets = {}
        for sub in sorted(folder.glob("*")) if folder.is_dir() else []:
            info = sub / info_name
            if info.is_file():
                sets[sub.name] = read_json_file(info, dict)
        return sets

    def _register_described_set(
        self, folder_name: str, info_name: str, what: str, contents: str, name: str, description: Mapping[str, Any]
    ) -> None:
        """Create ``RUN_DIR/folder_name/name`` with ``description`` as its ``info_name``, or check that the existing
        set was made alike (refusing to mix ``contents`` made otherwise)."""
        self._require_writer()
        if not name or name.startswith(".") or "/" in name or name != name.strip():
            raise RunStoreError(f"invalid {what} name {name!r}: use letters, digits, '-', '_' or '.'")
        folder = self.path / folder_name / name
        info = folder / info_name
        if info.is_file():
            stored = read_json_file(info, dict)
            if stored != dict(description):
                differences = identity_differences(stored, dict(description))
                raise RunStoreError(
                    f"{what} {name!r} in {self.path} was made differently; refusing to mix {contents}.\n  "
                    + "\n  ".join(differences)
                    + f"\nChoose another {what} name (name)."
                )
            return
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(info, dict(description))

    def write_scores(self, name: str, table: pa.Table | Sequence[pa.Table]) -> None:
        """Store scores of set ``name`` (registered first, ``register_score_set``; several tables as one shard)."""
        self._require_writer()
        if not (self.path / "scores" / name / "scorer.json").is_file():
            raise RunStoreError(f"{self.path} has no score set {name!r}: register it first")
        self.scores(name).append(table)

    def score_writer(self, name: str, flush_rows: int, flush_seconds: float) -> BufferedShards:
        """A buffered writer of scores of set ``name``: a shard every ``flush_rows`` rows or ``flush_seconds``."""
        return BufferedShards(lambda tables: self.write_scores(name, tables), flush_rows, flush_seconds)

    # -- generative selections (a judge's picks among k samples) -------------------------------------------
    def selections(self, name: str) -> ShardSet:
        return ShardSet(self.path / "selections" / name, SELECTION_SCHEMA)

    def selection_sets(self) -> dict[str, dict[str, Any]]:
        """Selection sets present: name -> how they were made (``selector.json``: judge model, k, subsets)."""
        return self._described_sets("selections", "selector.json")

    def register_selection_set(self, name: str, description: Mapping[str, Any]) -> None:
        """Create selection set ``name`` made as ``description``, or check that the existing one was made alike."""
        self._register_described_set("selections", "selector.json", "selection set", "picks", name, description)

    def selection_writer(self, name: str, flush_rows: int, flush_seconds: float) -> BufferedShards:
        """A buffered writer of selection set ``name`` (registered first)."""

        def write(tables: list[pa.Table]) -> None:
            self._require_writer()
            self.selections(name).append(tables)

        return BufferedShards(write, flush_rows, flush_seconds)

    # -- usage of judges ---------------------------------------------------------------------------------------
    def add_judge_usage(self, key: str, calls: int, prompt_tokens: int, output_tokens: int, seconds: float) -> None:
        """Add what a judge spent on verdict, score or selection set ``key`` to the manifest's ``judging``."""
        usage = self.manifest.setdefault("judging", {}).setdefault(
            key, {"calls": 0, "prompt_tokens": 0, "output_tokens": 0, "seconds": 0.0}
        )
        usage["calls"] += calls
        usage["prompt_tokens"] += prompt_tokens
        usage["output_tokens"] += output_tokens
        usage["seconds"] = round(usage["seconds"] + seconds, 3)
        self._save_manifest()

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


def _keys(table: pa.Table) -> pa.Array:
    """Each row's (problem, sample index) as one string, to look rows of one table up in another."""
    return pc.binary_join_element_wise(
        table.column("problem_id"), pc.cast(table.column("sample_idx"), pa.string()), "\x00"
    )


def _refuse_conflicts(table: pa.Table, column: str, paths: Sequence[Path], what: str, plural: str) -> None:
    """Raise a RunStoreError if two rows of one (problem, sample) pair in ``table`` (with a ``shard`` column
    indexing ``paths``) differ in ``column``: which of two disagreeing shards holds the truth cannot be told."""
    if table.num_rows < 2:
        return
    grouped = table.group_by(["problem_id", "sample_idx"], use_threads=False).aggregate(
        [(column, "min"), (column, "max"), ("shard", "min"), ("shard", "max")]
    )
    if grouped.num_rows == table.num_rows:  # no pair is stored twice
        return
    conflicting = grouped.filter(pc.not_equal(grouped.column(f"{column}_min"), grouped.column(f"{column}_max")))
    if conflicting.num_rows == 0:
        return
    first = conflicting.slice(0, 1).to_pylist()[0]
    shards = sorted({paths[first["shard_min"]].name, paths[first["shard_max"]].name})
    raise RunStoreError(
        f"{paths[0].parent}: {what} disagree on {conflicting.num_rows} sample(s), e.g. problem "
        f"{first['problem_id']!r} sample {first['sample_idx']} in {' and '.join(shards)}: which {plural} hold "
        "cannot be told; move the shard that should not be there out of the run directory"
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
