"""Damaged run directories and bad input (issue 14): never a traceback, never a silent partial result, never a
ruined run.

Every case is built here from a real stored run (the fake engine on the shared GSM8K data) or from the shared
data. A refused command exits with status 2 and one line naming the file or option and the problem, and leaves
the run directory byte for byte as it was (``.lock``, which a writer stamps with its pid, aside). Where damage
does not touch what a command reads, the command may succeed, but then with exactly the undamaged run's
result. Fuzz tests end the module: random truncations and byte flips of shards, manifests and problems.jsonl,
and garbage lines in counts, scores and import files (seeded, bounded).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import random
import shutil
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from harness import import_samples, sample
from harness.cli import app
from harness.cli.app import REPORTED_ERRORS
from harness.forecasting.forecast import METHODS, make_model, subsample
from harness.metrics.counts import Counts, read_counts_jsonl
from harness.pipeline.importing import read_score_rows
from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from tests.support.helpers import FAKE_ENGINE, cli_flags, fake_model_dir, fake_sample_arguments

PROBLEMS, SAMPLES = 6, 8
USER_ERRORS = REPORTED_ERRORS  # what the CLI reports in one line (harness.cli.app); anything else is a bug
OUTPUTS = {"summary.json", "coverage.png", "report.html", "verifiers.json", "verifiers.png"}  # written by commands


# ---------------------------------------------------------------------------------------------------------
# A stored run, its copies, and the CLI in-process
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory, make_fake_run) -> Path:
    """6 problems x 8 samples, verified in two passes (3 problems, then 6): two verdict shards."""
    root = tmp_path_factory.mktemp("stored")
    for problems in (3, PROBLEMS):
        make_fake_run(root=root, problems=problems, samples=SAMPLES)
    return root / "run"


@pytest.fixture
def run_dir(stored_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(stored_run, copy)
    return copy


def ttc(*args: object) -> tuple[int, str, str, BaseException | None]:
    """Run the CLI in this process: exit code, stdout, stderr, and the exception that ended it."""
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr, result.exception


def refused(*args: object, naming: tuple[str, ...]) -> str:
    """Run a command that must fail: status 2, one line on stderr naming each of ``naming``; returns the line."""
    code, out, err, exception = ttc(*args)
    assert code == 2 and isinstance(exception, SystemExit), f"exit {code}: {exception!r}\n{out}\n{err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for fragment in naming:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (``.lock`` aside: a writer stamps its pid there)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


@contextmanager
def unchanged(folder: Path, allowed: set[str] = frozenset()) -> Iterator[None]:
    """Assert that the files under ``folder`` are byte for byte the same afterwards (but those ``allowed``)."""
    before = digest(folder)
    yield
    after = digest(folder)
    changed = {name for name in set(before) | set(after) if before.get(name) != after.get(name)}
    assert changed <= set(allowed), f"changed: {sorted(changed - set(allowed))}"


def normalised(text: str, run_dir: Path) -> dict:
    """A command's --json result with the run directory's path replaced (copies live at other paths)."""
    return json.loads(text.replace(str(run_dir), "RUN"))


READ_COMMANDS = ("analyze", "report", "forecast", "budget", "compare-verifiers", "verify")


@pytest.fixture(scope="module")
def reference_results(stored_run, tmp_path_factory) -> dict[str, dict]:
    """Each command's --json result on an undamaged copy: what a command that succeeds on damage must give."""
    copy = tmp_path_factory.mktemp("reference") / "run"
    shutil.copytree(stored_run, copy)
    results = {}
    for command in READ_COMMANDS:
        code, out, err, _ = ttc(command, copy, "--json")
        assert code == 0, err
        results[command] = normalised(out, copy)
    return results


def shard(run_dir: Path, kind: str, index: int = 0) -> Path:
    folder = run_dir / "samples" if kind == "samples" else next((run_dir / "verdicts").iterdir())
    return sorted(folder.glob("part-*.parquet"))[index]


def flip(path: Path, offset: int, count: int = 4) -> None:
    data = bytearray(path.read_bytes())
    for position in range(offset, offset + count):
        data[position % len(data)] ^= 0xA5
    path.write_bytes(bytes(data))


def flip_column(path: Path, column: str) -> None:
    """Flip bytes in the middle of a column's data (problem_id: a column every reader reads)."""
    chunk = next(
        pq.ParquetFile(path).metadata.row_group(0).column(i)
        for i in range(pq.ParquetFile(path).metadata.num_columns)
        if pq.ParquetFile(path).metadata.row_group(0).column(i).path_in_schema == column
    )
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    flip(path, start + chunk.total_compressed_size // 2)


def edit_manifest(run_dir: Path, change: Callable[[dict], object]) -> None:
    """Apply ``change`` to the manifest in place (its return value is ignored) and store it."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def cut_problems_mid_line(run_dir: Path) -> str:
    path = run_dir / "problems.jsonl"
    data = path.read_bytes()
    cut = len(data) * 2 // 3
    path.write_bytes(data[:cut])
    line = len(data[:cut].splitlines())
    return f"problems.jsonl:{line}: not valid JSON"


def set_problem_line(run_dir: Path, number: int, content: bytes) -> None:
    path = run_dir / "problems.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number - 1] = content + b"\n"
    path.write_bytes(b"".join(lines))


def rewrite_half_of_shard(path: Path) -> None:
    """A shard whose rows no longer match the index its footer declares."""
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows // 2).replace_schema_metadata(table.schema.metadata), path)


# Each damage: (what it does to a run directory, fragments the one-line error must hold). The fragment
# "SHARD" stands for the damaged shard's file name.
DAMAGES: dict[str, tuple[Callable[[Path], object], tuple[str, ...]]] = {
    "manifest is a list": (lambda r: (r / "manifest.json").write_text("[]"), ("manifest.json", "a JSON list")),
    "manifest of no format": (
        lambda r: (r / "manifest.json").write_text("{}"),
        ("manifest.json", "unknown run format"),
    ),
    "manifest without config": (
        lambda r: edit_manifest(r, lambda m: m.pop("config")),
        ("manifest.json", "no 'config'"),
    ),
    "manifest config without task": (
        lambda r: edit_manifest(r, lambda m: m["config"].pop("task")),
        ("manifest.json", "names no task"),
    ),
    "manifest session not an object": (
        lambda r: edit_manifest(r, lambda m: m.update(sessions=[5])),
        ("manifest.json", "sampling session"),
    ),
    "manifest cut short": (
        lambda r: (r / "manifest.json").write_bytes((r / "manifest.json").read_bytes()[:200]),
        ("manifest.json", "not valid JSON"),
    ),
    "manifest not UTF-8": (lambda r: flip(r / "manifest.json", 30, 1), ("manifest.json", "not UTF-8")),
    # issue 22: a configuration edited after sampling would state settings the samples were not drawn with
    "manifest config edited": (
        lambda r: edit_manifest(r, lambda m: m["config"]["sampling"].update(temperature=0.1)),
        ("manifest.json", "does not match its config_hash"),
    ),
    "manifest budget out of range": (
        lambda r: edit_manifest(r, lambda m: m["budget"].update(samples=-3)),
        ("manifest.json", "budget.samples is -3"),
    ),
    "manifest model size not a number": (
        lambda r: edit_manifest(r, lambda m: m["model"].update(parameters="135M")),
        ("manifest.json", "model.parameters is '135M'"),
    ),
    "problems.jsonl deleted": (lambda r: (r / "problems.jsonl").unlink(), ("problems.jsonl is missing",)),
    "problems.jsonl cut at a line": (
        lambda r: set_problem_line(r, PROBLEMS, b""),
        ("problems.jsonl lacks", "cut short"),
    ),
    "problems.jsonl not UTF-8": (
        lambda r: set_problem_line(r, 2, b'{"problem_id": "\xff"}'),
        ("problems.jsonl:2", "not UTF-8"),
    ),
    "problems.jsonl line not a problem": (
        lambda r: set_problem_line(r, 3, b"[1, 2]"),
        ("problems.jsonl:3", "a JSON object"),
    ),
    "problems.jsonl record not a problem": (
        lambda r: set_problem_line(r, 4, b'{"id": 4}'),
        ("problems.jsonl:4", "not a stored problem"),
    ),
    "sample shard cut short": (
        lambda r: shard(r, "samples").write_bytes(shard(r, "samples").read_bytes()[:1000]),
        ("SHARD", "is damaged"),
    ),
    "sample shard bytes flipped": (lambda r: flip_column(shard(r, "samples"), "problem_id"), ("SHARD", "is damaged")),
    "sample shard rows differ from its footer": (
        lambda r: rewrite_half_of_shard(shard(r, "samples")),
        ("SHARD", "footer"),
    ),
    "verdict shard cut short": (
        lambda r: shard(r, "verdicts").write_bytes(shard(r, "verdicts").read_bytes()[:-30]),
        ("SHARD", "is damaged"),
    ),
    "verdict shard bytes flipped": (lambda r: flip_column(shard(r, "verdicts"), "problem_id"), ("SHARD", "is damaged")),
    "verdict shard footer flipped": (
        lambda r: flip(shard(r, "verdicts"), shard(r, "verdicts").stat().st_size - 120),
        ("SHARD", "is damaged"),
    ),
    "verdict shard not Parquet": (
        lambda r: shard(r, "verdicts").write_bytes(b"PAR1" + b"x" * 40),
        ("SHARD", "is damaged"),
    ),
    "verifier.json not JSON": (
        lambda r: next((r / "verdicts").iterdir()).joinpath("verifier.json").write_text("{name"),
        ("verifier.json is damaged", "not valid JSON"),
    ),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_run_is_refused_in_one_line_and_left_as_it_was(damage, run_dir, reference_results):
    """analyze and report read everything the damage touches: both refuse it. The other commands refuse it
    too, or, where they do not read the damaged part, give exactly the undamaged run's result."""
    break_run, fragments = DAMAGES[damage]
    names = {kind: shard(run_dir, kind).name for kind in ("samples", "verdicts")}
    break_run(run_dir)
    kind = "verdicts" if "verdict shard" in damage else "samples"
    fragments = tuple(names[kind] if fragment == "SHARD" else fragment for fragment in fragments)
    for command in ("analyze", "report"):
        with unchanged(run_dir):
            refused(command, run_dir, naming=fragments)
    for command in ("forecast", "budget", "compare-verifiers", "verify"):
        with unchanged(run_dir, allowed=OUTPUTS):
            code, out, err, exception = ttc(command, run_dir, "--json")
        if code == 0:
            assert normalised(out, run_dir) == reference_results[command], f"{command}: a different result"
        else:
            assert code == 2 and isinstance(exception, SystemExit) and len(err.strip().splitlines()) == 1, err
            message = json.loads(out)["error"]
            assert json.loads(err) == {"event": "error", "message": message}
            assert all(fragment in message for fragment in fragments), f"{command}: {message}"


def test_problems_jsonl_cut_mid_line_names_its_line(run_dir):
    fragment = cut_problems_mid_line(run_dir)
    with unchanged(run_dir):
        refused("analyze", run_dir, naming=(fragment,))


# ---------------------------------------------------------------------------------------------------------
# Partial runs: summaries say what they cover; writers take the lock
# ---------------------------------------------------------------------------------------------------------


def test_a_lost_verdict_shard_gives_a_summary_that_says_what_it_covers(run_dir, stored_run, tmp_path):
    shard(run_dir, "verdicts", 1).unlink()  # the second pass: problems 3, 4 and 5
    with unchanged(run_dir, allowed={"summary.json", "coverage.png"}):
        code, out, err, _ = ttc("analyze", run_dir, "--json")
    assert code == 0, err
    summary = json.loads(out)["summary"]
    covered = summary["completeness"]
    assert summary["problems"] == 3 and not covered["complete"]
    assert (covered["problems"], covered["problems_with_verdicts"], covered["samples"], covered["unverified"]) == (
        6,
        3,
        48,
        24,
    )
    assert "covers 3 of 6 problems" in covered["note"] and "24 of 48 stored samples have no verdict" in covered["note"]
    assert json.loads((run_dir / "summary.json").read_text())["completeness"] == covered

    code, out, _, _ = ttc("analyze", run_dir)
    assert code == 0 and covered["note"] in out, "the terminal says so too"
    code, out, _, _ = ttc("report", run_dir)
    assert code == 0 and covered["note"] in " ".join(out.split())  # the table's console wraps long lines
    assert (
        "Part of the run:" in (run_dir / "report.html").read_text()
        and "24 of 48" in (run_dir / "report.html").read_text()
    )
    for command in ("forecast", "budget"):
        code, out, _, _ = ttc(command, run_dir, "--json")
        assert code == 0 and json.loads(out)["completeness"]["note"] == covered["note"]
        code, out, _, _ = ttc(command, run_dir)
        assert code == 0 and covered["note"] in out

    complete = tmp_path / "complete"
    shutil.copytree(stored_run, complete)
    code, out, _, _ = ttc("compare", run_dir, complete, "--out", tmp_path / "compared")
    assert code == 0 and f"run: {covered['note']}" in out and f"complete: {covered['note']}" not in out

    assert ttc("verify", run_dir, "--workers", "1", "--quiet")[0] == 0
    code, out, _, _ = ttc("analyze", run_dir, "--json")
    summary = json.loads(out)["summary"]
    assert (
        summary["problems"] == PROBLEMS
        and summary["completeness"]["complete"]
        and summary["completeness"]["note"] is None
    )


def test_samples_drawn_after_the_last_verify_are_named(run_dir, stored_run, shared_data):
    """As after a killed verify: samples stored, some without verdicts."""
    sample(
        "gsm8k",
        **fake_sample_arguments(shared_data, stored_run.parent, problems=PROBLEMS, samples=SAMPLES + 4, out=run_dir),
    )
    code, out, _, _ = ttc("analyze", run_dir, "--json")
    covered = json.loads(out)["summary"]["completeness"]
    assert code == 0 and covered["unverified"] == PROBLEMS * 4 and covered["problems_with_verdicts"] == PROBLEMS
    assert f"{PROBLEMS * 4} of {PROBLEMS * (SAMPLES + 4)} stored samples have no verdict yet" in covered["note"]


def test_a_lost_sample_shard_is_named_as_verdicts_without_samples(run_dir):
    shard(run_dir, "samples", 0).unlink()  # as a killed sample run would leave the problem short of samples
    code, out, err, _ = ttc("analyze", run_dir, "--json")
    covered = json.loads(out)["summary"]["completeness"]
    assert code == 0, err
    assert covered["verdicts_without_samples"] == SAMPLES and covered["problems_short"] == 1
    assert f"{SAMPLES} verdicts are of samples no longer stored" in covered["note"]
    assert f"1 problems have fewer than the run's {SAMPLES} samples" in covered["note"]


def test_commands_that_write_into_a_run_wait_for_no_writer(run_dir):
    """While verify (or sample) holds the run's lock, analyze, report and compare-verifiers refuse; forecast,
    which writes nothing, says that the run is being written."""
    with (run_dir / ".lock").open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.truncate(0)
        handle.write("pid 4242 on elsewhere")
        handle.flush()
        for command in ("analyze", "report", "compare-verifiers"):
            with unchanged(run_dir):
                refused(command, run_dir, naming=(str(run_dir), "in use by another ttc process", "pid 4242"))
        code, out, _, _ = ttc("forecast", run_dir, "--json")
        assert code == 0 and "being written now (pid 4242 on elsewhere)" in json.loads(out)["completeness"]["note"]


# ---------------------------------------------------------------------------------------------------------
# Output paths
# ---------------------------------------------------------------------------------------------------------

COUNTS = "monkey_business_pythia_math_10k_counts.jsonl"
IMPORTED = "qwen25math_rm_maj_example_math_cot_100.jsonl"

# ttc run / ttc sample on the fake engine, with placeholders that test_output_paths_are_checked_... fills in
GSM8K_RUN = cli_flags(engine=FAKE_ENGINE, task="gsm8k", data="GSM8K", model="MODEL")
OUTPUT_CASES = {
    "report over the manifest": (["report", "RUN", "--out", "RUN/manifest.json"], ("--out", "own manifest.json")),
    "report over summary.json": (["report", "RUN", "--out", "RUN/summary.json"], ("--out", "own summary.json")),
    "report into a folder": (["report", "RUN", "--out", "RUN/samples"], ("--out", "is a folder")),
    "report below a file": (
        ["report", "RUN", "--out", "RUN/manifest.json/r.html"],
        ("--out", "lies below", "which is a file"),
    ),
    "report over another run's report": (["report", "RUN", "--out", "OTHER/report.html"], ("--out", "own report.html")),
    "forecast plot over coverage.png": (
        ["forecast", "RUN", "--plot", "RUN/coverage.png"],
        ("--plot", "own coverage.png"),
    ),
    "forecast plot into a folder": (["forecast", "RUN", "--plot", "RUN"], ("--plot", "is a folder")),
    "forecast plot over its counts": (
        ["forecast", "--counts", "COUNTS", "--plot", "COUNTS"],
        ("--plot", "input files"),
    ),
    "budget plot below a file": (["budget", "RUN", "--plot", "RUN/problems.jsonl/b.png"], ("--plot", "lies below")),
    "budget plot into a shard folder": (["budget", "RUN", "--plot", "RUN/verdicts/b.png"], ("--plot", "own verdicts")),
    "compare into a file": (
        ["compare", "RUN", "OTHER", "--out", "RUN/manifest.json"],
        ("--out", "is a file, not a folder"),
    ),
    "compare into the samples": (["compare", "RUN", "OTHER", "--out", "RUN/samples"], ("--out", "own samples")),
    "import over a file": (["import-samples", "IMPORTED", "--out", "RUN/manifest.json"], ("--out", "is a file")),
    "import inside a run": (
        ["import-samples", "IMPORTED", "--out", "RUN/imported"],
        ("--out", "inside the run directory"),
    ),
    "import over a run": (["import-samples", "IMPORTED", "--out", "RUN"], ("holds a run already",)),
    "run inside a run": (["run", *GSM8K_RUN, "--out", "RUN/samples/inner"], ("--out", "inside the run directory")),
    "run below a file": (["sample", *GSM8K_RUN, "--out", "RUN/problems.jsonl/x"], ("--out", "lies below")),
}


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_output_paths_are_checked_before_anything_runs(case, run_dir, stored_run, shared_data, tmp_path):
    args, fragments = OUTPUT_CASES[case]
    other = tmp_path / "other"
    shutil.copytree(stored_run, other)
    names = {
        "RUN": str(run_dir),
        "OTHER": str(other),
        "COUNTS": str(shared_data / COUNTS),
        "IMPORTED": str(shared_data / IMPORTED),
        "GSM8K": str(shared_data / "gsm8k_test.jsonl"),
        "MODEL": str(fake_model_dir(stored_run.parent)),
    }
    args = [
        arg.replace(arg.split("/")[0], names[arg.split("/")[0]], 1) if arg.split("/")[0] in names else arg
        for arg in args
    ]
    with unchanged(run_dir), unchanged(other):
        refused(*args, naming=fragments)


def test_a_command_may_write_its_own_outputs(run_dir, tmp_path):
    assert ttc("report", run_dir, "--out", run_dir / "report.html")[0] == 0
    assert "Part of the run" not in (run_dir / "report.html").read_text(), "a complete run has no partial banner"
    assert ttc("report", run_dir, "--out", run_dir / "notes" / "cheap.html", "--price-per-mtok", "0.1")[0] == 0
    assert ttc("forecast", run_dir, "--plot", tmp_path / "new" / "folder" / "f.png")[0] == 0
    assert (tmp_path / "new" / "folder" / "f.png").stat().st_size > 0


# ---------------------------------------------------------------------------------------------------------
# Bad input files and options
# ---------------------------------------------------------------------------------------------------------


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_import_options_that_name_no_field_are_refused_with_the_fields_present(shared_data, tmp_path):
    source = shared_data / IMPORTED
    for option in ("--id-field", "--scores-field", "--prompt-field", "--correct-field"):
        refused(
            "import-samples",
            source,
            "--out",
            tmp_path / "run",
            option,
            "nosuch",
            naming=(option, "'nosuch'", "'idx'", "'pred_score'", str(source)),
        )
        assert not (tmp_path / "run").exists()


def test_import_record_without_an_id_names_file_and_line(shared_data, tmp_path):
    records = [json.loads(line) for line in lines_of(shared_data / IMPORTED)[:6]]
    del records[3]["idx"]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    refused("import-samples", source, "--out", tmp_path / "run", naming=(f"{source}:4", "lacks", "'idx'"))
    assert not (tmp_path / "run").exists()


def with_line(source: Path, target: Path, number: int, content: bytes) -> Path:
    """A copy of ``source`` with line ``number`` replaced by ``content``."""
    lines = lines_of(source)
    lines[number - 1] = content + b"\n"
    target.write_bytes(b"".join(lines))
    return target


@pytest.mark.parametrize(
    "content, problem",
    [(b'{"idx": 1, "q": "\xff\xfe"}', "not UTF-8"), (b'{"idx": 1,', "not valid JSON"), (b"[]", "a JSON object")],
)
def test_bad_lines_in_every_input_file_name_file_and_line(content, problem, run_dir, shared_data, tmp_path):
    counts = with_line(shared_data / COUNTS, tmp_path / "counts.jsonl", 7, content)
    refused("forecast", "--counts", counts, naming=(f"{counts}:7", problem))
    imported = with_line(shared_data / IMPORTED, tmp_path / "import.jsonl", 5, content)
    refused("import-samples", imported, "--out", tmp_path / "imported", naming=(f"{imported}:5", problem))
    task = with_line(shared_data / "gsm8k_test.jsonl", tmp_path / "task.jsonl", 2, content)
    fields = cli_flags(task="jsonl", data=task, prompt_field="question", answer_field="answer", out=tmp_path / "t")
    refused(
        "sample",
        *cli_flags(engine=FAKE_ENGINE, model=fake_model_dir(tmp_path)),
        *fields,
        naming=(f"{task}:2", problem),
    )
    assert not (tmp_path / "imported").exists() and not (tmp_path / "t").exists()
    scores = tmp_path / "scores.jsonl"
    scores.write_bytes(b'{"problem_id": "gsm8k/test/0", "sample_idx": 0, "score": 0.5}\n' + content + b"\n")
    with unchanged(run_dir):
        refused("import-scores", run_dir, scores, "--name", "rm", naming=(f"{scores}:2", problem))


def test_sample_counts_beyond_the_estimators_range_say_the_range(tmp_path):
    for n in (10**7, 10**23):
        counts = tmp_path / f"counts-{n}.jsonl"
        counts.write_text(
            json.dumps({"num_samples": 4, "num_correct": 1})
            + "\n"
            + json.dumps({"num_samples": n, "num_correct": 3})
            + "\n"
        )
        refused("forecast", "--counts", counts, naming=(f"{counts}:2", "supported range 0..1,000,000"))


NUMERIC_CASES = [
    (["budget", "RUN", "--price-per-mtok", "-1"], "--price-per-mtok"),
    (["budget", "RUN", "--price-per-mtok", "nan"], "--price-per-mtok"),
    (["budget", "RUN", "--gpu-hour-price", "-2"], "--gpu-hour-price"),
    (["budget", "RUN", "--tokens-per-sample", "-5"], "--tokens-per-sample"),
    (["budget", "RUN", "--prompt-tokens", "-3"], "--prompt-tokens"),
    (["budget", "RUN", "--params", "-1"], "--params"),
    (["budget", "RUN", "--tokens-per-second", "0"], "--tokens-per-second"),
    (["budget", "RUN", "--target", "1.5"], "--target"),
    (["budget", "RUN", "--confidence", "1.5"], "--confidence"),
    (["budget", "RUN", "--adaptive-extra", "-3"], "--adaptive-extra"),
    (["forecast", "RUN", "--k", "0"], "--k"),
    (["forecast", "RUN", "--k", str(10**13)], "--k"),
    (["forecast", "RUN", "--confidence", "1"], "--confidence"),
    (["compare-verifiers", "RUN", "--subsets", "0"], "--subsets"),
    (["report", "RUN", "--price-per-mtok", "-1"], "--price-per-mtok"),
    (["compare", "RUN", "OTHER", "--parameters", "-1", "--out", "OUT"], "--parameters"),
    (["compare", "RUN", "OTHER", "--price-per-mtok", "-1", "--out", "OUT"], "--price-per-mtok"),
    (["backtest", "--counts", "COUNTS", "--pilot", "0", "--k", "10"], "--pilot"),
    (["backtest", "--counts", "COUNTS", "--pilot", "10", "--k", "100", "--confidence", "2"], "--confidence"),
    (["backtest", "--counts", "COUNTS", "--pilot", "10", "--k", "100", "--adaptive-extra", "-1"], "--adaptive-extra"),
    (["backtest", "--counts", "COUNTS", "--pilot", "10", "--k", "100", "--repeats", "0"], "--repeats"),
    (["sample", "--samples", "0"], "--samples"),
    (["sample", "--temperature", "nan"], "--temperature"),
    (["sample", "--max-model-len", "0"], "--max-model-len"),
    (["sample", "--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization"),
    (["verify", "RUN", "--workers", "0"], "--workers"),
    (["forecast", "RUN", "--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("args, flag", NUMERIC_CASES, ids=[" ".join(args[:1] + args[2:]) for args, _ in NUMERIC_CASES])
def test_numeric_options_out_of_range_are_refused_with_their_flag(
    args, flag, run_dir, stored_run, shared_data, tmp_path
):
    other = tmp_path / "other"
    shutil.copytree(stored_run, other)
    names = {"RUN": run_dir, "OTHER": other, "OUT": tmp_path / "out", "COUNTS": shared_data / COUNTS}
    with unchanged(run_dir):
        line = refused(*[names.get(arg, arg) for arg in args], naming=(f"error: {flag}: ",))
    assert "must" in line


def test_the_python_api_names_the_parameter(stored_run):
    from harness import load_run
    from harness.core.errors import OptionError

    stored = load_run(stored_run)
    for call, parameter in [
        (lambda: stored.pass_at_k([0]), "ks"),
        (lambda: stored.pass_at_k([1], confidence=1.5), "confidence"),
        (lambda: stored.forecast(0), "k"),
        (lambda: stored.forecast(100, seed=-1), "seed"),
        (lambda: stored.selectors(subsets=0), "subsets"),
    ]:
        with pytest.raises(OptionError) as error:
            call()
        assert error.value.option == parameter


def test_a_verifier_that_cannot_load_fails_before_the_engine_starts(shared_data, tmp_path, monkeypatch):
    import harness.pipeline.sample

    def no_engine(*args, **kwargs):
        raise AssertionError("the engine was started")

    monkeypatch.setattr(harness.pipeline.sample, "build_engine", no_engine)
    engine = cli_flags(engine=FAKE_ENGINE, model=fake_model_dir(tmp_path), out=tmp_path / "run")
    gsm8k = cli_flags(task="gsm8k", data=shared_data / "gsm8k_test.jsonl")
    refused("run", *engine, *gsm8k, "--verifier", "nosuch:Class", naming=("nosuch",))
    jsonl = cli_flags(
        task="jsonl", data=shared_data / "gsm8k_test.jsonl", prompt_field="question", answer_field="answer"
    )
    refused("sample", *engine, *jsonl, "--verifier", "nosuch:Class", naming=("nosuch",))
    assert not (tmp_path / "run").exists()


def test_every_forecast_point_lies_inside_its_interval(shared_data):
    """At the pilot's edge and far beyond it (where percentile and discrete-quantile intervals used to miss
    the point), for every method."""
    full = read_counts_jsonl(shared_data / COUNTS).group_by("model")["Pythia 160M"]
    rng = np.random.default_rng(0)
    pilots = [subsample(full, 10, rng), subsample(full, 100, rng)]
    sparse = np.random.default_rng(1).binomial(8, np.random.default_rng(2).beta(0.3, 3, 20))
    pilots.append(Counts(np.full(20, 8), sparse, np.arange(20).astype(str).astype(object)))
    for counts in pilots:
        for method in [name for name in METHODS if name != "auto"]:
            model = make_model(method).fit(counts)
            for k in (int(counts.num_samples.min()) + 1, 10**4, 10**8, 10**12):
                for confidence in (0.5, 0.9):
                    point, low, high = model.interval(k, confidence)
                    assert 0 <= low <= point <= high <= 1, (method, k, confidence, point, low, high)


# ---------------------------------------------------------------------------------------------------------
# Fuzzing the readers: a clear error (naming the file, one line) or exactly the right result
# ---------------------------------------------------------------------------------------------------------


def read_everything(run_dir: Path) -> dict[str, object]:
    """What the readers of a run give: per-problem counts, every stored sample and verdict, usage, what the
    verdicts cover, the problems."""
    from harness.store.completeness import completeness

    store = RunStore.open(run_dir)
    key = store.resolve_verdict_key()
    counts = run_counts(store, key)
    return {
        "counts": (counts.problem_ids.tolist(), counts.num_samples.tolist(), counts.num_correct.tolist()),
        "samples": store.read_samples().to_pylist(),
        "verdicts": store.read_verdicts(key).to_pylist(),
        "usage": store.usage(),
        "completeness": completeness(store, key).to_json(),
        "problems": [problem.to_record() for problem in store.problems()],
    }


# What must come out unchanged when a file is damaged but still readable. Manifest and problems.jsonl are JSON
# text without a checksum: a flip that leaves valid JSON (a digit for a digit, a letter in a prompt) is an edit
# the store cannot tell from a deliberate one, so what those files themselves define (sessions' figures and the
# budget, prompt text) is theirs; everything computed from the shards must still be exactly right.
COMPARED = {
    "sample shard": ("counts", "samples", "verdicts", "usage", "completeness", "problems"),
    "verdict shard": ("counts", "samples", "verdicts", "usage", "completeness", "problems"),
    "manifest.json": ("counts", "samples", "verdicts"),
    "problems.jsonl": ("counts", "samples", "verdicts", "usage"),
}


def clear_error_or_same(read: Callable[[], object], expected: object, names: str) -> str:
    """'error' or 'same'; anything else (a traceback's exception, a different result) fails the test."""
    try:
        result = read()
    except USER_ERRORS as error:
        message = str(error)
        assert "\n" not in message and names in message, f"{type(error).__name__}: {message}"
        return "error"
    assert result == expected, "a silently different result"
    return "same"


def read_compared(run: Path, compared: Collection[str]) -> dict[str, object]:
    """What ``read_everything`` reads of ``run``, the parts named in ``compared`` only."""
    return {name: value for name, value in read_everything(run).items() if name in compared}


def damage_bytes(data: bytes, rng: random.Random) -> bytes:
    """A random truncation, a few flipped bytes, or a garbage stretch."""
    how = rng.choice(("truncate", "flip", "garbage"))
    if how == "truncate":
        return data[: rng.randrange(len(data))]
    damaged = bytearray(data)
    if how == "flip":
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(data))] ^= rng.randint(1, 255)
    else:
        start = rng.randrange(len(data))
        damaged[start : start + 16] = bytes(rng.randrange(256) for _ in range(16))
    return bytes(damaged)


@pytest.mark.parametrize("target", ["sample shard", "verdict shard", "manifest.json", "problems.jsonl"])
def test_fuzzed_run_files_give_a_clear_error_or_the_same_result(target, stored_run, tmp_path):
    compared = COMPARED[target]
    expected = read_compared(stored_run, compared)
    rng = random.Random(f"fuzz {target}")
    outcomes = {"error": 0, "same": 0}
    for case in range(25):
        copy = tmp_path / f"case{case}"
        shutil.copytree(stored_run, copy)
        if target.endswith("shard"):
            path = shard(copy, "samples" if target == "sample shard" else "verdicts", rng.randrange(2))
        else:
            path = copy / target
        path.write_bytes(damage_bytes(path.read_bytes(), rng))
        outcomes[clear_error_or_same(partial(read_compared, copy, compared), expected, path.name)] += 1
    assert outcomes["error"] > 0, outcomes


GARBAGE = [
    b"\xff\xfe\x00garbage",
    b"{",
    b"}",
    b"[1, 2, 3]",
    b"42",
    b'"text"',
    b"null",
    b'{"a": 1}',
    b"{'single': 'quotes'}",
    b'{"num_samples": -1, "num_correct": 0}',
    b'{"num_samples": "ten", "num_correct": 1}',
    b'{"num_samples": 2, "num_correct": 3}',
    b'{"problem_id": "gsm8k/test/0", "sample_idx": -1, "score": 1}',
    b'{"problem_id": "x", "sample_idx": 0, "score": "high"}',
    b'{"problem_id": "x", "sample_idx": 0, "score": NaN}',
    b'{"problem_id": "x", "sample_idx": 0}',
    b"\x00\x01\x02",
    b"[" * 5000,
]


def insert_garbage(source: bytes, rng: random.Random) -> tuple[bytes, int]:
    """``source`` with a garbage line at a random place; returns the bytes and the garbage line's number."""
    lines = source.splitlines(keepends=True)
    at = rng.randrange(len(lines) + 1)
    if at == len(lines) and lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    noise = (
        rng.choice(GARBAGE) if rng.random() < 0.8 else bytes(rng.randrange(1, 256) for _ in range(rng.randint(1, 40)))
    )
    noise = noise.replace(b"\n", b" ").replace(b"\r", b" ")
    return b"".join([*lines[:at], noise + b"\n", *lines[at:]]), at + 1


def test_garbage_lines_in_counts_scores_and_import_files_are_named_by_line(shared_data, tmp_path):
    scores = b"".join(
        json.dumps({"problem_id": f"gsm8k/test/{p}", "sample_idx": i, "score": (p + i) / 10}).encode() + b"\n"
        for p in range(PROBLEMS)
        for i in range(SAMPLES)
    )
    readers: dict[str, tuple[bytes, Callable[[Path], object]]] = {
        "counts": (b"".join(lines_of(shared_data / COUNTS)[:40]), lambda path: read_counts_jsonl(path).to_records()),
        "scores": (scores, read_score_rows),
        "import": (b"".join(lines_of(shared_data / IMPORTED)[:8]), imported),
    }
    rng = random.Random("garbage lines")
    for name, (source, read) in readers.items():
        clean = tmp_path / f"{name}-clean.jsonl"
        clean.write_bytes(source)
        expected = read(clean)
        for case in range(12):
            damaged, line = insert_garbage(source, rng)
            path = tmp_path / f"{name}-{case}.jsonl"
            path.write_bytes(damaged)
            blank = not damaged.splitlines()[line - 1].decode("utf-8", "replace").strip()
            outcome = clear_error_or_same(partial(read, path), expected, str(path) if blank else f"{path}:{line}")
            assert outcome == "error" or blank, f"{name}: garbage line {line} was accepted"


def imported(path: Path) -> tuple:
    """What importing ``path`` stores (in a fresh run directory beside it), comparable across files."""
    out = path.with_suffix(".run")
    import_samples(path, out)
    with RunStore.open(out) as store:
        counts = run_counts(store)
        texts = store.read_samples(["text"]).column("text").to_pylist()
        result = (counts.problem_ids.tolist(), counts.num_samples.tolist(), counts.num_correct.tolist(), texts)
    shutil.rmtree(out)
    return result
