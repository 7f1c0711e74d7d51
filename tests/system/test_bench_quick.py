"""The benchmark suite in quick mode: every figure gives a value and its JSON, so the suite cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.suite import (
    FIGURE_NAMES,
    FIGURES,
    Row,
    format_value,
    load_rows,
    markdown_table,
    run_suite,
    select_figures,
)
from tests.conftest import REPO_ROOT

NON_ENGINE = [figure.name for figure in FIGURES if not figure.uses_engine]


def test_unknown_figure_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown figure.*nope.*choose from"):
        select_figures(["nope"])
    assert [figure.name for figure in select_figures(["store", "analysis"])] == ["analysis", "store"]
    assert [figure.name for figure in select_figures(None)] == list(FIGURE_NAMES)


def test_quick_suite_without_engine_writes_every_figure(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("TTC_SHARED_DATA", str(shared_data))
    rows = run_suite(NON_ENGINE, quick=True, out=tmp_path, log=lambda message: None)
    assert {row.figure.split()[0] for row in rows} == {
        figure.title.split()[0] for figure in FIGURES if not figure.uses_engine
    }
    for row in rows:
        assert row.metric != "FAILED", row.detail
        assert row.value is not None and row.value > 0, row
    for name in NON_ENGINE:
        record = json.loads((tmp_path / f"{name}.quick.json").read_text())
        assert record["quick"] is True and record["figures"] and "error" not in record
        assert record["load_average_before"] >= 0 and record["machine"]["cpus"] >= 1
    resume = next(row for row in rows if row.metric.startswith("resume"))
    assert resume.met is True, resume.detail  # the resume read shard footers only

    stored = load_rows(tmp_path, quick=True)
    assert [row.metric for row in stored] == [row.metric for row in rows]
    assert all("load" in row.detail for row in stored)
    table = markdown_table(stored).splitlines()
    assert len(table) == 2 + len(rows) and table[0].startswith("| figure | metric | value")


def test_failed_figure_is_reported_not_raised(tmp_path, monkeypatch):
    from benchmarks import analysis

    def broken(quick):
        raise RuntimeError("boom")

    monkeypatch.setattr(analysis, "run_figure", broken)
    rows = run_suite(["analysis"], quick=True, out=tmp_path, log=lambda message: None)
    assert rows[0].metric == "FAILED" and "boom" in rows[0].detail
    assert "boom" in json.loads((tmp_path / "analysis.quick.json").read_text())["error"]


def test_format_value():
    assert format_value(None) == "-"
    assert format_value(1234.4) == "1,234"
    assert format_value(0.01234) == "0.0123"
    assert Row("1", "m", 1.0).met is None


def test_cli_rejects_unknown_figure():
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nope"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert process.returncode == 2 and "invalid choice" in process.stderr


@pytest.mark.slow
def test_quick_suite_with_real_engine(tmp_path, shared_data):
    """The CI mode: everything, one real vLLM engine start for figures 1 and 3 (minutes)."""
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**__import__("os").environ, "TTC_SHARED_DATA": str(shared_data)},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    rows = json.loads(process.stdout)
    assert all(row["metric"] != "FAILED" and row["value"] is not None for row in rows), rows
    # the figures' values and whether they met their targets are the benchmark's output (they depend on the
    # machine and its load), not assertions of a test
    assert {row["figure"] for row in rows} >= {"1 sampling overhead", "3 prefix sharing"}
    for name in FIGURE_NAMES:
        assert (tmp_path / f"{name}.quick.json").is_file()
