"""Counts JSONL files read at scale: a million problems parsed in one go by Arrow's JSON reader.

The pure layers (``harness.metrics``) read a counts file line by line, which names a bad line; this reader is
handed to them (``read_counts_jsonl(path, parse=plain_counts)``) for files whose every record is plain, and
builds exactly the ``Counts`` the line reader builds. Anything it cannot take (a nested or mixed-type field, a
bad value) it leaves to the line reader, for the message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from pyarrow import json as pa_json

from harness.metrics.counts import MAX_SAMPLES_PER_PROBLEM, REQUIRED_FIELDS, Counts, read_counts_jsonl

_SCALAR_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_floating)


def read_counts(path: str | Path) -> Counts:
    """The counts file ``path`` (a pipe too), parsed by Arrow where it can be, else line by line."""
    return read_counts_jsonl(path, parse=plain_counts)


def plain_counts(data: bytes) -> Counts | None:
    """``Counts`` from JSONL ``data`` if Arrow parses it and every record holds valid counts; else None (the
    caller reads it line by line, for the message). The same Counts ``Counts.from_records`` builds."""
    try:
        table = pa_json.read_json(pa.BufferReader(data))
    except (pa.ArrowException, ValueError):
        return None
    names = table.column_names
    if table.num_rows == 0 or any(name not in names for name in REQUIRED_FIELDS):
        return None
    columns = {name: table.column(name) for name in REQUIRED_FIELDS}
    if any(not pa.types.is_integer(column.type) or column.null_count for column in columns.values()):
        return None
    n = columns["num_samples"].to_numpy().astype(np.int64)
    c = columns["num_correct"].to_numpy().astype(np.int64)
    if n.min() < 0 or c.min() < 0 or n.max() > MAX_SAMPLES_PER_PROBLEM or np.any(c > n):
        return None
    fields = {}
    for name in sorted(set(names) - set(REQUIRED_FIELDS)):
        column = table.column(name)
        if column.null_count == len(column):  # no value at all: not a field (from_records keeps none either)
            continue
        if not (pa.types.is_boolean(column.type) or any(check(column.type) for check in _SCALAR_TYPES)):
            continue  # nested in every record that has it (Arrow refuses a mix): not a field, as in from_records
        fields[name] = np.array(column.to_pylist(), dtype=object)
    for name in ("problem_id", "problem_idx"):
        if name in fields:
            if table.column(name).null_count:
                return None
            ids = np.array([str(value) for value in fields[name]], dtype=object)
            break
    else:
        ids = np.array([str(index) for index in range(table.num_rows)], dtype=object)
    return Counts(num_samples=n, num_correct=c, problem_ids=ids, fields=fields)
