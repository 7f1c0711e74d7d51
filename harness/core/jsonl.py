"""Reading JSON and JSONL files: the one place where bytes that are not UTF-8, text that is not JSON and values
of the wrong kind become a ``DataError`` naming the file and line.

Data files (a task's JSONL, counts, scores, samples to import) and a run directory's own files (manifest,
problems.jsonl, verifier.json) are all read here; the run store turns the error into a ``RunStoreError``
saying the run directory is damaged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.core.errors import DataError

_JSON_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


def json_type(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words (``object``, ``array``, ...)."""
    return "null" if value is None else _JSON_NAMES.get(type(value), type(value).__name__)


def parse_json(raw: bytes, where: str, expected: type = object) -> Any:
    """Decode UTF-8 JSON ``raw`` as a value of type ``expected`` (``dict``, ``list``; ``object``: any).

    Anything else is a ``DataError`` that starts with ``where`` (a file, or ``file:line``) and says what is
    wrong and where in ``raw`` (line and column; the column alone for one line).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _position(raw, error.start)
        raise DataError(f"{where}: not UTF-8 text (byte {raw[error.start]:#04x} at {_at(raw, line, column)})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error.msg} at {_at(raw, error.lineno, error.colno)})") from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply") from None
    if expected is not object and not isinstance(value, expected):
        raise DataError(f"{where}: expected a JSON {_JSON_NAMES[expected]}, got a JSON {json_type(value)}")
    return value


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _at(raw: bytes, line: int, column: int) -> str:
    return f"column {column}" if b"\n" not in raw.rstrip(b"\r\n") else f"line {line} column {column}"


def read_json_file(path: str | Path, expected: type = object, where: str | None = None) -> Any:
    """A JSON file as ``expected`` (see ``parse_json``); errors start with ``where`` (default: the path)."""
    path = Path(path)
    return parse_json(path.read_bytes(), where or str(path), expected)


def read_jsonl(path: str | Path, kind: str = "data file") -> list[dict[str, Any]]:
    """Read a JSONL file of objects, with a clear error naming the file and line of any malformed record."""
    return [record for _, record in read_jsonl_lines(path, kind)]


def read_jsonl_lines(path: str | Path, kind: str = "data file") -> list[tuple[int, dict[str, Any]]]:
    """``read_jsonl`` with each record's line number (blank lines are skipped, so records and lines differ).

    Lines are decoded one at a time, so bytes that are not UTF-8 are reported with their line, like JSON that
    does not parse and values that are not objects. A missing file is a ``FileNotFoundError`` naming ``kind``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{kind} not found: {path}")
    if path.is_dir():  # a pipe or FIFO is read like a file (``--counts <(zcat counts.jsonl.gz)``)
        raise DataError(f"{kind} {path} is a folder, not a file")
    with path.open("rb") as handle:
        return numbered_records(handle, path)


def numbered_records(lines: Iterable[bytes], source: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """``read_jsonl_lines`` of lines already at hand (bytes read from ``source``, which errors name)."""
    records = []
    for line_number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        records.append((line_number, parse_json(raw, f"{source}:{line_number}", dict)))
    return records
