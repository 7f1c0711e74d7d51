"""JSON and JSONL reading: the one place where bytes that are not UTF-8, text that is not JSON and values of the
wrong kind become a DataError naming the file, line and column."""

from __future__ import annotations

import os
import threading

import pytest

from harness.core.errors import DataError
from harness.core.jsonl import parse_json, read_json_file, read_jsonl, read_jsonl_lines


def test_records_come_with_their_lines_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\n')
    assert read_jsonl_lines(path) == [(1, {"a": 1}), (3, {"a": 2})]
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n{"a": "\xff"}\n', "data.jsonl:2: not UTF-8 text (byte 0xff at column 8)"),
        (b'{"a": 1}\n\n{"a": }\n', "data.jsonl:3: not valid JSON (Expecting value at column 7)"),
        (b"[1, 2]\n", "data.jsonl:1: expected a JSON object, got a JSON array"),
        (b"[" * 100_000 + b"\n", "data.jsonl:1: JSON nested too deeply"),
    ],
    ids=["not UTF-8", "not JSON", "not an object", "too deep"],
)
def test_a_bad_line_is_named_by_file_and_line(tmp_path, content, message):
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as refused:
        read_jsonl(path)
    assert str(refused.value) == f"{tmp_path}/{message}"


def test_a_json_file_names_line_and_column_and_the_kind_expected(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(
        DataError, match=r"manifest.json is damaged: not valid JSON \(Expecting value at line 4 column 1\)"
    ):
        read_json_file(path, dict, where=f"{path} is damaged")
    path.write_text("[]")
    with pytest.raises(DataError, match="expected a JSON object, got a JSON array"):
        read_json_file(path, dict)
    assert parse_json(b'"text"', "here") == "text"


def test_missing_files_and_folders_are_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="counts file not found"):
        read_jsonl(tmp_path / "absent.jsonl", kind="counts file")
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_jsonl(tmp_path)


def test_a_pipe_is_read_like_a_file(tmp_path):
    """``--counts <(...)``: the shell hands a pipe's path (/dev/fd/N), which is no regular file."""
    fifo = tmp_path / "records"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=('{"a": 1}\n\n{"a": 2}\n',))
    writer.start()
    assert read_jsonl_lines(fifo) == [(1, {"a": 1}), (3, {"a": 2})]
    writer.join(timeout=10)
