"""What README.md and docs/ state is what the code does: defaults, commands, options, progress modes, and links.

The code is read through what users see: ``harness.run``'s signature, the ``ttc`` command (found through the
entry point in pyproject.toml), the task and verifier registries. A default changed in the code and not in the
docs (or the reverse) fails here, naming the file and the option.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer

import harness


def repo_root() -> Path:
    """The checkout's root: the nearest folder above this file with a pyproject.toml."""
    return next(folder for folder in Path(__file__).resolve().parents if (folder / "pyproject.toml").is_file())


ROOT = repo_root()
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"
MARKDOWN = [README, *sorted((ROOT / "docs").glob("*.md"))]
SHARED_OPTIONS_HEADING = "Options many commands share"

CODE_SPAN = re.compile(r"`([^`]+)`")
FLAG = re.compile(r"^--?[A-Za-z][\w-]*$")


# ---------------------------------------------------------------------------------------------------------
# Reading the docs
# ---------------------------------------------------------------------------------------------------------


def prose(text: str) -> str:
    """The text without its fenced code blocks (their links and spans are examples, not statements)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row in ``text``; header rows (those above a separator row) left out."""
    rows: list[list[str]] = []
    for line in prose(text).splitlines():
        if not line.startswith("|"):
            continue
        if re.fullmatch(r"\|[\s|:-]+\|", line.strip()):
            rows.pop()  # the header
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def sections(text: str) -> dict[str, str]:
    """Second-level headings and the text under each, up to the next one."""
    parts = re.split(r"^## (.+)$", prose(text), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def flags_in(cell: str) -> list[str]:
    """The flags a table's first cell names: ``--top-p``, ``--quiet``, ``-q``."""
    return [span.split()[0] for span in CODE_SPAN.findall(cell) if FLAG.match(span.split()[0])]


# ---------------------------------------------------------------------------------------------------------
# Reading the code
# ---------------------------------------------------------------------------------------------------------


@functools.cache
def ttc_command() -> Any:
    """The ``ttc`` command, found through its entry point in pyproject.toml."""
    entry_point = re.search(r'^ttc\s*=\s*"([\w.]+):', (ROOT / "pyproject.toml").read_text(), flags=re.MULTILINE)
    assert entry_point, "pyproject.toml declares no ttc script"
    module_name = entry_point[1]
    module = importlib.import_module(module_name)
    (app,) = {id(value): value for value in vars(module).values() if isinstance(value, typer.Typer)}.values()
    return typer.main.get_command(app)


def options_of(command: Any) -> dict[str, Any]:
    """Every flag of a command (``--help`` included) and the option (a click ``Option``) it belongs to."""
    options = [param for param in command.params if param.param_type_name == "option"]
    flags = {flag: option for option in options for flag in option.opts + option.secondary_opts}
    return {"--help": SimpleNamespace(default=False, required=False), **flags}


def run_defaults() -> dict[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(harness.run).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def progress_modes() -> tuple[str, ...]:
    """The progress modes ``harness.run`` takes: its ``progress`` annotation once that is a ``Literal``."""
    annotation = typing.get_type_hints(harness.run)["progress"]
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    from harness.reporting.progress import PROGRESS_MODES  # while ``progress`` is annotated ``str``

    return tuple(PROGRESS_MODES)


# ---------------------------------------------------------------------------------------------------------
# The default run
# ---------------------------------------------------------------------------------------------------------

DEFAULT_RUN_SENTENCE = re.compile(
    r"The default run samples the first (?P<problems>\d+) `(?P<task>[\w-]+)` problems x (?P<samples>\d+) samples"
    r" per problem,\s+at temperature (?P<temperature>[\d.]+), top-p (?P<top_p>[\d.]+)"
    r" and at most (?P<max_tokens>\d+) tokens"
)


def test_the_readme_states_the_default_run_of_harness_run():
    found = DEFAULT_RUN_SENTENCE.search(prose(README.read_text(encoding="utf-8")))
    assert found, f"README.md no longer states the default run as {DEFAULT_RUN_SENTENCE.pattern!r}"
    defaults = run_defaults()
    stated = {
        "task": found["task"],
        "problems": int(found["problems"]),
        "samples": int(found["samples"]),
        "temperature": float(found["temperature"]),
        "top_p": float(found["top_p"]),
        "max_tokens": int(found["max_tokens"]),
    }
    assert stated == {name: defaults[name] for name in stated}


@pytest.mark.parametrize("command", ["run", "sample"])
def test_the_cli_defaults_are_those_of_harness_run(command):
    options = options_of(ttc_command().commands[command])
    defaults = run_defaults()
    for name in ("task", "problems", "samples", "temperature", "top_p", "top_k", "max_tokens", "seed", "engine"):
        flag = "--" + name.replace("_", "-")
        assert options[flag].default == defaults[name], f"ttc {command} {flag} vs harness.run({name}=...)"


# ---------------------------------------------------------------------------------------------------------
# docs/cli.md: commands, options and their defaults
# ---------------------------------------------------------------------------------------------------------


def documented_commands() -> dict[str, str]:
    """Each command docs/cli.md gives a section to, and that section's text."""
    return {
        name: body
        for heading, body in sections(CLI_DOC.read_text(encoding="utf-8")).items()
        for name in re.findall(r"`ttc ([\w-]+)`", heading)
    }


def shared_rows() -> list[list[str]]:
    return table_rows(sections(CLI_DOC.read_text(encoding="utf-8"))[SHARED_OPTIONS_HEADING])


def test_cli_md_documents_exactly_the_registered_commands():
    registered = set(ttc_command().commands)
    assert set(documented_commands()) == registered
    index = {
        name
        for row in table_rows(CLI_DOC.read_text(encoding="utf-8").split("\n## ")[0])
        for name in re.findall(r"`ttc ([\w-]+)`", row[0])
    }
    assert index == registered, "the command table at the top of docs/cli.md"


def check_default(where: str, option: Any, cell: str) -> None:
    """``required``; one code span: the default itself; anything else (prose) only for an unset default."""
    if cell == "required":
        assert option.required, f"{where}: documented as required, but it has a default"
        return
    assert not option.required, f"{where}: required, documented with default {cell!r}"
    literal = re.fullmatch(r"`([^`]*)`", cell)
    if literal:
        assert literal[1] == str(option.default), f"{where}: docs say {literal[1]!r}, the code {option.default!r}"
    else:
        assert option.default in (None, False), f"{where}: docs describe {cell!r}, the code's is {option.default!r}"


@pytest.mark.parametrize("name", sorted(ttc_command().commands))
def test_cli_md_options_and_defaults_are_the_commands(name):
    command = ttc_command().commands[name]
    options = options_of(command)
    own_rows = table_rows(documented_commands()[name])
    documented = set()
    for row in own_rows:
        flags = flags_in(row[0])
        assert flags, f"docs/cli.md, ttc {name}: a table row without an option: {row}"
        for flag in flags:
            assert flag in options, f"docs/cli.md documents {flag} for ttc {name}, which has no such option"
            check_default(f"docs/cli.md, ttc {name} {flag}", options[flag], row[1])
        documented.update(flags)
    for row in shared_rows():
        for flag in flags_in(row[0]):
            if flag in options:
                check_default(f"docs/cli.md, shared {flag} (ttc {name})", options[flag], row[1])
                documented.add(flag)
    missing = sorted(set(options) - documented)
    assert not missing, f"docs/cli.md does not document these options of ttc {name}: {missing}"


def test_the_shared_options_exist():
    every_flag = {flag for command in ttc_command().commands.values() for flag in options_of(command)}
    for row in shared_rows():
        assert set(flags_in(row[0])) <= every_flag, row


def test_the_openai_engine_defaults_in_the_docs_are_the_engines():
    from harness.engines import engine_class

    parameters = inspect.signature(engine_class("openai")).parameters
    for doc in (CLI_DOC, ROOT / "docs" / "openai.md"):
        rows = {flag: row for row in table_rows(doc.read_text(encoding="utf-8")) for flag in flags_in(row[0])}
        for name in ("concurrency", "request_timeout", "max_retries"):
            row = rows["--" + name.replace("_", "-")]
            numbers = [float(number) for number in re.findall(r"\d+(?:\.\d+)?", row[1])]
            assert numbers == [parameters[name].default], f"{doc.name}: --{name} default {row[1]!r}"


# ---------------------------------------------------------------------------------------------------------
# Progress modes, tasks and verifiers
# ---------------------------------------------------------------------------------------------------------


def test_the_progress_modes_stated_are_the_codes():
    statements = [
        (doc.name, line)
        for doc in MARKDOWN
        for line in prose(doc.read_text(encoding="utf-8")).splitlines()
        if any("progress=" in span for span in CODE_SPAN.findall(line))
    ]
    assert any(name == "README.md" for name, _ in statements), "README.md no longer lists the progress modes"
    for name, line in statements:
        spans = CODE_SPAN.findall(line)
        first = next(index for index, span in enumerate(spans) if "progress=" in span)
        stated = tuple(span for span in spans[first + 1 :] if re.fullmatch(r"\w+", span))
        assert stated == progress_modes(), f"{name}: {line}"


def builtin_classes(registry: dict[str, str]) -> dict[str, type]:
    classes = {}
    for name, target in registry.items():
        module_name, _, class_name = target.partition(":")
        classes[name] = getattr(importlib.import_module(module_name), class_name)
    return classes


def readme_table(first_column: str) -> list[list[str]]:
    """The README's table whose header starts with ``first_column``."""
    lines = prose(README.read_text(encoding="utf-8")).splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"\|\s*{first_column}\s*\|", line))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return table_rows("\n".join(lines[start:end]))


def test_the_readme_tasks_table_states_each_tasks_defaults():
    import tasks

    classes = builtin_classes(tasks.BUILTIN_TASKS)
    rows = {CODE_SPAN.findall(row[0])[0]: row for row in readme_table("task")}
    assert set(classes) <= set(rows), "README.md's task table lacks a built-in task"
    for name, cls in classes.items():
        _, _, prompt, verifier = rows[name]
        parameters = inspect.signature(cls).parameters
        default_verifier = getattr(cls, "default_verifier", None) or parameters["verifier"].default
        assert CODE_SPAN.findall(verifier)[0] == default_verifier, f"README.md, task {name}: verifier"
        default_style = parameters["prompt_style"].default if "prompt_style" in parameters else "completion"
        assert CODE_SPAN.findall(prompt)[0] == default_style, f"README.md, task {name}: default prompt style"


def test_the_readme_verifiers_table_is_the_registry():
    import verifiers

    stated = {CODE_SPAN.findall(row[0])[0] for row in readme_table("verifier")}
    assert stated == set(verifiers.BUILTIN_VERIFIERS)


# ---------------------------------------------------------------------------------------------------------
# Links and paths
# ---------------------------------------------------------------------------------------------------------


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub makes for a Markdown file."""
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", prose(path.read_text(encoding="utf-8")), flags=re.MULTILINE):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        anchor, count = slug, 1
        while anchor in found:
            anchor, count = f"{slug}-{count}", count + 1
        found.add(anchor)
    return found


def broken_links(doc: Path) -> list[str]:
    """The relative links in ``doc`` to a file or a heading that does not exist."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(doc.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.name}")
    return broken


def missing_paths(doc: Path, root: Path = ROOT) -> list[str]:
    """Repository paths such as `examples/api.py` that ``doc`` names and ``root`` lacks (patterns aside)."""
    text = doc.read_text(encoding="utf-8")
    named = re.findall(r"`((?:harness|tasks|verifiers|tests|benchmarks|examples|docs)/[^`\s]*)`", text)
    return sorted({path for path in named if not re.search(r"[*<{]", path) and not (root / path).exists()})


@pytest.mark.parametrize("doc", MARKDOWN, ids=[str(doc.relative_to(ROOT)) for doc in MARKDOWN])
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(doc):
    broken = broken_links(doc)
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("doc", MARKDOWN, ids=[str(doc.relative_to(ROOT)) for doc in MARKDOWN])
def test_every_repository_path_named_exists(doc):
    missing = missing_paths(doc)
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_the_checks_catch_a_broken_link_a_missing_heading_and_a_missing_path(tmp_path):
    (tmp_path / "b.md").write_text("# A `title`\n\n## A `title`\n")
    doc = tmp_path / "a.md"
    doc.write_text(
        "# Here\n\n[ok](b.md#a-title) [ok](b.md#a-title-1) [ok](#here) [gone](c.md) [no heading](b.md#nothing)\n"
        "[web](https://example.org) `examples/api.py` `tests/*.py` `docs/gone.md`\n"
        "```\n[in code](d.md)\n```\n"
    )
    assert broken_links(doc) == ["c.md: no such file", "b.md#nothing: no heading #nothing in b.md"]
    assert missing_paths(doc, root=ROOT) == ["docs/gone.md"]


# ---------------------------------------------------------------------------------------------------------
# CI
# ---------------------------------------------------------------------------------------------------------


def shell_commands(text: str) -> list[str]:
    """The commands of a shell script, or of a document's ```bash blocks: comments, set, cd and export aside."""
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL) if "```" in text else [text]
    lines = (line.split(" #")[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "set ", "cd ", "export "))]


def test_ci_runs_the_readmes_commands_install_checks_and_tests():
    ci = shell_commands((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    shown = shell_commands(README.read_text(encoding="utf-8"))
    assert [command for command in ci if command not in shown] == [], ".ci/run runs commands the README does not show"
    checks = [".venv/bin/ruff format --check .", ".venv/bin/ruff check .", ".venv/bin/mypy"]
    assert ci == ["./install.sh", *checks, ".venv/bin/python -m pytest"]
