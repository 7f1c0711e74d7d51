"""Per-problem (n, c) counts: the lingua franca of coverage analysis.

A counts file is JSONL, one problem per line, with ``num_samples`` and ``num_correct`` and any other fields
(model, level, subject, ...) usable for grouping; ``../shared/data/monkey_business_pythia_math_10k_counts.jsonl``
is one. A run directory reduces to the same table (``harness.reporting.run_counts.run_counts``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import DataError, OptionError
from harness.core.jsonl import numbered_records

REQUIRED_FIELDS = ("num_samples", "num_correct")
# The most samples per problem the estimators support: pass@k's log-gamma differences stay exact to ~1e-9,
# coverage curves for every k up to n fit in memory, and forecasts' hypergeometric subsampling (< 1e9) holds.
MAX_SAMPLES_PER_PROBLEM = 1_000_000


@dataclass(frozen=True)
class Counts:
    """Counts for a set of problems.

    Attributes:
        num_samples: samples drawn per problem (int array).
        num_correct: correct samples per problem (int array, ``0 <= num_correct <= num_samples``).
        problem_ids: one identifier per problem (strings).
        fields: other per-problem fields (e.g. ``{"model": array([...])}``), used by ``group_by``.
    """

    num_samples: np.ndarray
    num_correct: np.ndarray
    problem_ids: np.ndarray
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, c = self.num_samples, self.num_correct
        if n.shape != c.shape or n.ndim != 1 or self.problem_ids.shape != n.shape:
            raise DataError("num_samples, num_correct and problem_ids must be 1-D arrays of one length")
        for name, values in self.fields.items():
            if values.shape != n.shape:
                raise DataError(f"field {name!r} has {values.shape[0]} values for {n.shape[0]} problems")
        if np.any(n < 0) or np.any(c < 0):
            raise DataError("counts must be non-negative")
        if np.any(n > MAX_SAMPLES_PER_PROBLEM):
            bad = self.problem_ids[np.flatnonzero(n > MAX_SAMPLES_PER_PROBLEM)[0]]
            raise DataError(
                f"problem {bad!r} has {int(n.max()):,} samples; the estimators support 0..{MAX_SAMPLES_PER_PROBLEM:,} "
                "samples per problem"
            )
        if np.any(c > n):
            bad = self.problem_ids[np.flatnonzero(c > n)[0]]
            raise DataError(f"problem {bad!r} has num_correct > num_samples")

    def __len__(self) -> int:
        return int(self.num_samples.shape[0])

    def distinct(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``distinct_counts`` of these counts, computed once (the arrays of a Counts are never changed)."""
        cached = self.__dict__.get("_distinct")
        if cached is None:
            cached = distinct_counts(self.num_samples, self.num_correct)
            object.__setattr__(self, "_distinct", cached)  # a cache on a frozen instance
        return cached

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], source: str = "counts", lines: Sequence[int] | None = None
    ) -> Counts:
        """Build from dict records with ``num_samples``, ``num_correct`` and optional other fields; errors name
        ``source`` and the record's line (``lines``, as in the file) or row number."""
        rows = list(records)
        if not rows:
            raise DataError(f"{source}: no problems")
        for index, row in enumerate(rows):
            where = f"{source}:{lines[index]}" if lines is not None else f"{source}: row {index + 1}"
            missing = [name for name in REQUIRED_FIELDS if name not in row]
            if missing:
                raise DataError(f"{where}: lacks {missing} (needs {list(REQUIRED_FIELDS)})")
            for name in REQUIRED_FIELDS:
                value = row[name]
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                    raise DataError(f"{where}: {name} must be a non-negative integer, got {value!r}")
                if value > MAX_SAMPLES_PER_PROBLEM:
                    raise DataError(
                        f"{where}: {name} {value:,} is beyond the supported range 0..{MAX_SAMPLES_PER_PROBLEM:,} "
                        "samples per problem"
                    )
            if row["num_correct"] > row["num_samples"]:
                raise DataError(f"{where}: num_correct {row['num_correct']} > num_samples {row['num_samples']}")
        ids = [str(row.get("problem_id", row.get("problem_idx", index))) for index, row in enumerate(rows)]
        scalar_fields = {
            name
            for row in rows
            for name, value in row.items()
            if name not in REQUIRED_FIELDS and isinstance(value, (str, int, float, bool)) and value is not None
        }
        fields = {name: np.array([row.get(name) for row in rows], dtype=object) for name in sorted(scalar_fields)}
        return cls(
            num_samples=np.array([row["num_samples"] for row in rows], dtype=np.int64),
            num_correct=np.array([row["num_correct"] for row in rows], dtype=np.int64),
            problem_ids=np.array(ids, dtype=object),
            fields=fields,
        )

    def group_by(self, name: str | None) -> dict[str, Counts]:
        """Split by a field's value (``{"all": self}`` when ``name`` is None), groups in sorted order."""
        if name is None:
            return {"all": self}
        if name not in self.fields:
            raise OptionError("group_by", f"cannot group by {name!r}: the counts have fields {sorted(self.fields)}")
        values = self.fields[name]
        unset = [index for index, value in enumerate(values) if value is None or value == ""]
        if unset:
            raise DataError(
                f"cannot group by {name!r}: {len(unset)} problems have no value for it "
                f"(first: problem {self.problem_ids[unset[0]]!r})"
            )
        texts = np.array([str(value) for value in values], dtype=object)
        names, inverse = np.unique(texts, return_inverse=True)
        return {str(name): self.subset(inverse.reshape(-1) == index) for index, name in enumerate(names)}

    def subset(self, mask: np.ndarray) -> Counts:
        return Counts(
            num_samples=self.num_samples[mask],
            num_correct=self.num_correct[mask],
            problem_ids=self.problem_ids[mask],
            fields={name: values[mask] for name, values in self.fields.items()},
        )

    def to_records(self) -> list[dict[str, Any]]:
        records = []
        for index in range(len(self)):
            record = {name: _plain(values[index]) for name, values in self.fields.items()}
            record.update(
                problem_id=str(self.problem_ids[index]),
                num_samples=int(self.num_samples[index]),
                num_correct=int(self.num_correct[index]),
            )
            records.append(record)
        return records


def distinct_counts(
    num_samples: np.ndarray, num_correct: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (n, c) pairs of per-problem counts, sorted by n, then c: ``(n, c, multiplicity, inverse)``,
    ``multiplicity`` the problems with each pair and ``inverse`` each problem's pair. Whatever is a function of
    a problem's counts (pass@k, a likelihood) is computed once per pair: a million problems drawn 100 times
    each have at most 101 pairs."""
    n = np.asarray(num_samples, dtype=np.int64)
    c = np.asarray(num_correct, dtype=np.int64)
    width = int(c.max()) + 1 if c.size else 1
    key = n * width + c
    if c.size and int(key.max()) <= 4 * key.size + 1_000_000:  # few possible keys: count them, no sort
        tally = np.bincount(key)
        keys = np.flatnonzero(tally)
        inverse = (np.cumsum(tally > 0) - 1)[key]
        return keys // width, keys % width, tally[keys], inverse
    keys, inverse, multiplicity = np.unique(key, return_inverse=True, return_counts=True)
    return keys // width, keys % width, multiplicity, inverse.reshape(-1)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def read_counts_jsonl(path: str | Path, parse: Callable[[bytes], Counts | None] | None = None) -> Counts:
    """Read a counts JSONL file, with errors that name the file and line.

    Read once (a pipe too). ``parse`` is a faster reader of the whole file that returns None for what it cannot
    take (``harness.pipeline.counts_file``: Arrow's JSON reader, a million problems in a second; this layer
    stays free of it); without it, or when it returns None, the file is read line by line, which names the
    first bad line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"counts file not found: {path}")
    if path.is_dir():
        raise DataError(f"counts file {path} is a folder, not a file")
    data = path.read_bytes()
    counts = parse(data) if parse is not None else None
    if counts is not None:
        return counts
    numbered = numbered_records(io.BytesIO(data), path)
    return Counts.from_records(
        [record for _, record in numbered], source=str(path), lines=[line for line, _ in numbered]
    )


def write_counts_jsonl(counts: Counts, path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in counts.to_records())
