"""report.html: every section, self-contained, untrusted text escaped, and rendered by a real headless Chromium."""

from __future__ import annotations

import base64
import json
import re

import pytest

from harness import DEFAULT_RUN, analyze
from harness.forecasting.fitted import fit_laws
from harness.forecasting.forecast import AutoModel, PowerLawModel
from harness.forecasting.laws import PowerLaw
from harness.reporting import figures
from harness.reporting.format import format_quantity
from harness.reporting.html import build_report, example_samples
from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from tests.support.helpers import cli_flags, fake_model_dir, ttc
from tests.support.report_fixtures import HOSTILE_TEXT, verified_fake_run, write_level_problems

PROBLEMS, SAMPLES = 12, 8


def run_args(root, data, *extra: str) -> list[str]:
    engine, verifier = (
        "tests.support.report_fixtures:HostileEngine",
        "tests.support.report_fixtures:TimeoutNumericVerifier",
    )
    fields = cli_flags(prompt_field="q", answer_field="a", id_field="uid", metadata_field="level")
    flags = cli_flags(engine=engine, model=fake_model_dir(root), task="jsonl", data=data, verifier=verifier)
    return [*flags, *fields, *cli_flags(problems=0, samples=SAMPLES, workers=1), *extra]


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    """A run made by `ttc run` (which writes report.html at its end); returns (run dir, its --json result)."""
    root = tmp_path_factory.mktemp("report")
    data = write_level_problems(root / "levels.jsonl", PROBLEMS)
    done = ttc("run", *run_args(root, data, "--out", str(root / "run"), "--json", "--quiet"))
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run", json.loads(done.stdout)


def test_ttc_run_writes_the_report(report_run):
    run_dir, result = report_run
    assert result["report"] == str(run_dir / "report.html")
    assert (run_dir / "report.html").stat().st_size > 10_000


def test_ttc_report_prints_the_table_and_writes_every_section(report_run, tmp_path):
    run_dir, _ = report_run
    out = tmp_path / "priced.html"
    done = ttc("report", str(run_dir), "--out", str(out), "--price-per-mtok", "2.5")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pass@k" in done.stdout and f"report: {out}" in done.stdout
    html = out.read_text()
    store = RunStore.open(run_dir)
    for expected in (
        "Run configuration",
        store.manifest["config_hash"],
        "tests.support.report_fixtures:HostileEngine",
        "<th>temperature</th><th>top-p</th><th>top-k</th><th>max tokens</th><th>seed</th>",  # sampling settings
        (
            f"<td>{DEFAULT_RUN['temperature']}</td><td>{DEFAULT_RUN['top_p']}</td><td>-1</td>"
            f"<td>{DEFAULT_RUN['max_tokens']}</td><td>0</td>"
        ),  # the defaults of `ttc run`
        "Stop strings: none.",
        '<th class="text">dtype</th>',
        '<th class="text">prompt style</th>',
        '<th class="text">name</th><td class="config">numeric-with-timeouts</td>',  # the verifier, as rows
        "Coverage",
        "Fitted law and forecast",
        "90% interval",
        "by level",
        "Level 1",
        "Level 3",
        "Verifiers and selectors",
        "majority",
        "likelihood",
        "Budget for common coverage targets",
        "50%",
        "95%",
        "Tokens and cost of this run",
        "finish reasons",
        "Example samples by outcome",
        "correct (",
        "wrong (",
        "timeout (",
        "exceeded the time limit",
    ):
        assert expected in html, expected
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"pass@1 = {summary['pass_at_1']:.3f}" in html
    tokens = re.search(r"FLOPs \(2 × parameters × tokens\)</th><td>(.*?)</td>", html).group(1)
    assert tokens == "—", "unknown model size: FLOPs are unknown, not 0"
    money = float(re.search(r"<th class=\"text\">money</th><td>(.*?)</td>", html).group(1))
    usage = store.usage()
    expected_money = (usage["output_tokens"] + PROBLEMS * usage["prompt_tokens_per_problem"]) / 1e6 * 2.5
    assert money == pytest.approx(expected_money, abs=0.005)


def test_report_is_self_contained_and_escapes_model_output(report_run):
    run_dir, _ = report_run
    html = (run_dir / "report.html").read_text()
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", html), "no external resource"
    sources = re.findall(r"<img [^>]*src=\"([^\"]*)\"", html)
    assert len(sources) == 2  # the coverage figure and the selector figure
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;/html&gt;&lt;img src=x onerror=" in html
    assert html.count("</html>") == 1 and HOSTILE_TEXT not in html


def test_examples_are_cut_and_every_outcome_is_named(report_run):
    run_dir, _ = report_run
    store = RunStore.open(run_dir)
    examples = example_samples(store, store.resolve_verdict_key(), per_reason=2, max_chars=20)
    reasons = [group["reason"] for group in examples["groups"]]
    assert reasons[:3] == ["correct", "wrong", "timeout"] and examples["absent"] == []
    for group in examples["groups"]:
        assert 1 <= len(group["examples"]) <= 2
        ids = [example["problem_id"] for example in group["examples"]]
        assert len(set(ids)) == len(ids), "examples come from different problems where possible"
    hostile = examples["groups"][0]["examples"][0]
    assert (hostile["problem_id"], hostile["sample_idx"]) == ("p0", 0)
    assert hostile["text"].startswith(HOSTILE_TEXT[:20]) and "more characters not shown" in hostile["text"]


def test_report_without_verdicts_is_refused_clearly(tmp_path):
    data = write_level_problems(tmp_path / "levels.jsonl", 3)
    sampled = ttc("sample", *run_args(tmp_path, data, "--out", str(tmp_path / "run"), "--quiet"))
    assert sampled.returncode == 0, sampled.stderr[-3000:]
    done = ttc("report", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "has no verdicts yet: run `ttc verify" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "report.html").exists()


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report_run, chromium, tmp_path):
    run_dir, _ = report_run
    page = chromium.open_page((run_dir / "report.html").resolve().as_uri())
    assert page.errors() == []
    widths = page.evaluate("Array.from(document.images).map(image => image.complete ? image.naturalWidth : 0)")
    assert len(widths) == 2 and all(width > 0 for width in widths), widths
    assert HOSTILE_TEXT in page.evaluate("document.body.innerText"), "the hostile sample is shown as text"
    assert page.evaluate("typeof window.pwned") == "undefined", "no script from model output ran"
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    headings = page.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
    assert headings[:3] == ["Coverage", "Fitted law and forecast", "Budget for common coverage targets"]
    assert headings.index("Run configuration") > headings.index("Tokens and cost of this run"), "the result first"
    answer = page.evaluate("document.querySelector('p.answer').innerText")
    assert answer.startswith("pass@1 = ") and "forecast at k = 80" in answer
    screenshot = page.screenshot(tmp_path / "report.png")
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


@pytest.fixture(scope="module")
def library_run(tmp_path_factory):
    """A verified run made in this process (so that fits can be counted and figures intercepted)."""
    root = tmp_path_factory.mktemp("library")
    data = write_level_problems(root / "levels.jsonl", PROBLEMS)
    return verified_fake_run(root / "run", fake_model_dir(root), data, PROBLEMS, SAMPLES)


def test_analysis_fits_the_forecast_once_and_the_report_only_reads_it(library_run, monkeypatch):
    fits = []
    original_fit = AutoModel.fit

    def counted_fit(self, counts):
        fits.append(len(counts))
        return original_fit(self, counts)

    monkeypatch.setattr(AutoModel, "fit", counted_fit)
    summary = analyze(library_run)
    html = build_report(RunStore.open(library_run), summary)
    assert fits == [PROBLEMS], "one fit of the auto model per run: summary, figure and budget rows share it"
    budget = summary["budget"]
    assert [row["target"] for row in budget["targets"]] == [0.5, 0.8, 0.9, 0.95]
    assert budget["method"] == summary["forecast"]["method"] and f"Forecast method {budget['method']}." in html
    reached = [row for row in budget["targets"] if row["k"] is not None]
    assert reached and all(row["forecast"]["coverage"] >= row["target"] for row in reached)
    assert all(row["cost"]["samples"] == row["k"] * PROBLEMS and row["cost"]["money"] is None for row in reached)
    assert json.loads((library_run / "summary.json").read_text())["budget"] == budget


def test_the_printed_and_the_drawn_power_law_are_one_fit(library_run, monkeypatch):
    drawn = {}
    original_plot = figures.plot_coverage

    def intercepted(path, *curve, laws=None, **options):
        drawn.update(laws)
        return original_plot(path, *curve, laws=laws, **options)

    monkeypatch.setattr(figures, "plot_coverage", intercepted)
    summary = analyze(library_run)
    law = drawn["power law"]
    assert isinstance(law, PowerLaw)
    assert law.to_json() == summary["fit"], "coverage.png draws the law summary.json prints"
    assert summary["fit"]["ks"] == [1, 2, 4, 8]
    counts = run_counts(RunStore.open(library_run), summary["verdict_set"])
    assert PowerLawModel().fit(counts).law.to_json() == summary["fit"], "the powerlaw forecast extrapolates it too"
    band = drawn["auto"]
    assert band.ks[-1] == summary["forecast"]["k"] == 10 * SAMPLES
    assert band.coverage[-1] == summary["forecast"]["coverage"] and band.high[-1] == summary["forecast"]["high"]
    assert fit_laws(counts).summary()["fit"] == summary["fit"]


def test_quantities_have_one_formatter():
    assert format_quantity(12_345) == "12.3k" and format_quantity(2.5e15, "FLOPs") == "2.5PFLOPs"
    assert format_quantity(None) == format_quantity(float("nan")) == "—"
    assert format_quantity(None, missing="missing") == "missing" and format_quantity(0.5) == "0.5"
