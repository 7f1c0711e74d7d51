"""A run's description: ``manifest.json`` (format, configuration and its hash, budget, model, versions, sampling
sessions) and ``problems.jsonl`` (the run's problems), read and checked here, written atomically.

A manifest that is not one, or a problems.jsonl cut short, is a ``RunStoreError`` naming the file (and line),
never a summary of something else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, RunStoreError
from harness.core.jsonl import read_json_file as read_json
from harness.core.jsonl import read_jsonl_lines
from harness.core.records import Problem
from harness.store.config import config_hash, identity_differences
from harness.store.files import write_atomic

FORMAT = "ttc-run/1"


def read_json_file(path: Path, expected: type = object) -> Any:
    """A JSON file of the run directory, as ``expected`` (dict, list); anything else is a RunStoreError naming it."""
    try:
        return read_json(path, expected, where=f"{path} is damaged")
    except DataError as error:
        raise RunStoreError(str(error)) from None


# What readers of a manifest rely on: field -> its JSON type (optional fields are checked when present).
MANIFEST_FIELDS = {"config": dict, "config_hash": str, "default_verifier": str, "sessions": list}
OPTIONAL_MANIFEST_FIELDS = {
    "budget": dict,
    "model": dict,
    "versions": dict,
    "engine": dict,
    "active_verdicts": str,
    "run_id": str,
    "sample_bound": int,
    "reasoning": dict,  # the run's reasoning mode and think tags (harness.pipeline.reasoning)
}
SESSION_NUMBERS = ("samples", "output_tokens", "prompt_tokens", "requests", "seconds")


def check_manifest(path: Path, manifest: Any) -> dict[str, Any]:
    """``manifest`` if it is a run manifest of this format with the fields readers rely on, else a RunStoreError."""

    def fail(problem: str) -> RunStoreError:
        return RunStoreError(f"{path} is not a run manifest: {problem}")

    if not isinstance(manifest, dict):
        raise fail(f"a JSON {type(manifest).__name__}, expected an object")
    if manifest.get("format") != FORMAT:
        raise fail(f"unknown run format {manifest.get('format')!r} (expected {FORMAT})")
    for name, kind in {**MANIFEST_FIELDS, **OPTIONAL_MANIFEST_FIELDS}.items():
        if name not in manifest and name in MANIFEST_FIELDS:
            raise fail(f"no {name!r}")
        if name in manifest and not isinstance(manifest[name], kind):
            raise fail(f"{name!r} is a {type(manifest[name]).__name__}, expected a {kind.__name__}")
    if not isinstance(manifest["config"].get("task"), str):
        raise fail("its config names no task")
    for session in manifest["sessions"]:
        if (
            not isinstance(session, dict)
            or not isinstance(session.get("id"), str)
            or any(
                isinstance(session.get(name), bool) or not isinstance(session.get(name), (int, float))
                for name in SESSION_NUMBERS
            )
        ):
            raise fail(f"a sampling session is not an object with an id and numeric figures: {str(session)[:80]}")
    if config_hash(manifest["config"]) != manifest["config_hash"]:
        raise RunStoreError(
            f"{path}: its config does not match its config_hash {manifest['config_hash']!r} (was it edited?): the "
            "settings it states may not be those the samples were drawn with; restore manifest.json from a copy"
        )
    for name, value in _bad_values(manifest):
        raise RunStoreError(f"{path}: {name} is {value!r}, which no run holds; restore manifest.json from a copy")
    return manifest


def _bad_values(manifest: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The values readers take on trust that are out of range: (field, value)."""
    bad = []
    budget = manifest.get("budget") or {}
    for name in ("problems", "samples"):
        value = budget.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            bad.append((f"budget.{name}", value))
    bound = manifest.get("sample_bound")
    if bound is not None and (isinstance(bound, bool) or bound < 1):
        bad.append(("sample_bound", bound))
    parameters = (manifest.get("model") or {}).get("parameters")
    if parameters is not None and (isinstance(parameters, bool) or not isinstance(parameters, int) or parameters < 1):
        bad.append(("model.parameters", parameters))
    for session in manifest["sessions"]:
        for name in SESSION_NUMBERS:
            if session[name] < 0:
                bad.append((f"sessions[{session['id']}].{name}", session[name]))
    return bad


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the run directory ``path`` (a RunStoreError if it is not a run directory)."""
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise RunStoreError(f"{path} is not a run directory (no manifest.json)")
    return check_manifest(manifest_path, read_json_file(manifest_path))


def new_manifest(
    identity: Mapping[str, Any],
    *,
    budget: Mapping[str, Any],
    default_verifier: str,
    model_info: Mapping[str, Any],
    versions: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of a new run whose samples ``identity`` defines (hashed into ``config_hash``)."""
    return {
        "format": FORMAT,
        "run_id": uuid.uuid4().hex,
        "created": now(),
        "config_hash": config_hash(identity),
        "config": dict(identity),
        "budget": dict(budget),
        "default_verifier": default_verifier,
        "model": dict(model_info),
        "versions": dict(versions),
        "engine": {},
        "sessions": [],
    }


def configuration_refusal(path: Path, stored: Mapping[str, Any], requested: Mapping[str, Any]) -> RunStoreError:
    """The error for resuming the run at ``path`` with another configuration: the fields that differ."""
    differences = identity_differences(stored, requested)
    hint = ""
    if any(line.startswith("sample_defining.") for line in differences):
        # repeating the option is not enough when the engine resolves it from the machine
        hint = (
            "\nsample_defining holds engine settings as the engine resolves them on this machine "
            "(e.g. a dtype of auto): resume where they resolve to the stored values."
        )
    return RunStoreError(
        f"{path} holds a run with a different configuration; refusing to mix samples.\n  "
        + "\n  ".join(differences or ["(configuration hash differs)"])
        + "\nUse another run directory (out), or repeat the stored settings to resume."
        + hint
    )


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Session:
    """Bookkeeping of one sampling session, stored in the manifest (throughput feeds the budget)."""

    id: str
    started: str
    samples: int = 0
    output_tokens: int = 0
    prompt_tokens: int = 0
    requests: int = 0
    seconds: float = 0.0
    finished: str | None = None
    status: str = "running"
    #: what only the engine knows of the session, e.g. per-replica throughput of a pool of engines on Ray
    engine_figures: dict[str, Any] = field(default_factory=dict)


def read_problems(path: Path) -> list[Problem]:
    """The problems in ``path`` (a run's problems.jsonl); a missing or damaged file is a RunStoreError naming it."""
    if not path.is_file():
        raise RunStoreError(f"{path} is missing: the run directory is damaged (restore problems.jsonl from a copy)")
    try:
        lines = read_jsonl_lines(path, kind="problems file")
    except DataError as error:
        raise RunStoreError(f"{error}: the run directory is damaged") from None
    problems = []
    for line, record in lines:
        missing = [name for name in ("problem_id", "prompt", "reference") if name not in record]
        if missing or not isinstance(record["problem_id"], str) or not isinstance(record["reference"], dict):
            raise RunStoreError(
                f"{path}:{line}: not a stored problem (needs a string problem_id, a prompt and a reference "
                f"object; has {sorted(record)}): the run directory is damaged"
            )
        problems.append(Problem.from_record(record))
    return problems


def write_problems(path: Path, problems: Sequence[Problem]) -> None:
    """Write ``problems`` to ``path`` atomically, refusing duplicate problem ids."""
    ids = [problem.problem_id for problem in problems]
    if len(set(ids)) != len(ids):
        duplicate = next(pid for pid in ids if ids.count(pid) > 1)
        raise RunStoreError(f"the task has a duplicate problem id {duplicate!r}")
    lines = [json.dumps(problem.to_record(), ensure_ascii=False) + "\n" for problem in problems]
    write_atomic(path, "".join(lines).encode("utf-8"))
