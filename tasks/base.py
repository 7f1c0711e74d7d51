"""What a task is: problems with prompts and references, and how they are loaded.

A task knows its benchmark (where the data lives, how a prompt is built, which verifier judges an answer),
and nothing of engines, storage or analysis.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness.core.errors import TaskError
from harness.core.jsonl import read_jsonl_lines
from harness.core.options import DeclaresOptions
from harness.core.records import Problem
from tasks.prompts import PromptBuilder


class Task(DeclaresOptions, abc.ABC):
    """A benchmark: its problems, how completions should stop, and which verifier judges them.

    Subclass it and implement two hooks; ``problems()`` and ``describe()`` are built on them:

    * ``load_problems()``: read the data and build every problem, in the benchmark's canonical order (a run
      takes the first N). Called once, on first use; ``problems()`` then hands out copies of that list.
    * ``options()``: what identifies the task's data and options (source, split, shots, ...), for
      ``describe()``, which adds the task's ``name`` and its prompt (``prompt_builder.describe()``: style,
      template and the template's hash). The run manifest records the description, and the configuration hash
      covers it, beside a digest of the problems that the harness computes.

    Set ``name`` (short, in default run directory names) and ``default_verifier`` (a verifier name or
    ``module:Class``), ``stop`` if completions should end at some strings, and ``prompt_builder`` (a
    ``tasks.prompts.PromptBuilder``) in the constructor. ``load_task`` builds a task as
    ``Cls(data=data, **options)``: ``data`` is a path or Hub id, None for the task's default source.

    The constructor's other keyword parameters are the task's options (``declared_options()``, see
    ``harness.core.options.DeclaresOptions``): their annotations type them, so ``task_options={"shots": 4}``
    and ``ttc run --task-option shots=4`` reach a task of your own checked and typed like a built-in one's.
    Override the classmethod ``validate_options`` for checks beyond types (ranges).

    Records are checked when they load, all of them, before any engine starts: ``check_field`` refuses a field
    of the wrong kind (a number where a worked solution belongs, an empty test list, a null id) naming the file,
    line and field; ``problems()`` refuses an empty id or prompt and a reference that is not an object. A task
    that calls ``located(problem_id, where)`` while it builds its problems lets these errors, and the verifier's
    check of each reference (``harness.pipeline.references``), name the record's file and line.
    """

    given_by_harness: ClassVar[tuple[str, ...]] = ("data",)
    #: Whether the constructor takes ``seed``, the run's seed (for what a task draws, e.g. an order of choices);
    #: such a task lists ``"seed"`` in ``given_by_harness`` too.
    takes_run_seed: ClassVar[bool] = False

    name: ClassVar[str]
    default_verifier: str
    stop: tuple[str, ...] = ()
    prompt_builder: PromptBuilder
    _loaded_problems: list[Problem] | None = None
    _sources: dict[str, str] | None = None

    @abc.abstractmethod
    def load_problems(self) -> list[Problem]:
        """Every problem, in the benchmark's canonical order (called once; ``problems()`` caches it)."""

    @abc.abstractmethod
    def options(self) -> dict[str, Any]:
        """The data source and options that identify this task's problems, for ``describe()``."""

    def problems(self) -> list[Problem]:
        """All problems, in the benchmark's canonical order (loaded, and checked, on first use)."""
        if self._loaded_problems is None:
            loaded = list(self.load_problems())
            for problem in loaded:
                self._check_problem(problem)
            self._loaded_problems = loaded
        return list(self._loaded_problems)

    def located(self, problem_id: str, where: str) -> None:
        """Record where the record of ``problem_id`` lies (``file:line``), for errors about it."""
        if self._sources is None:
            self._sources = {}
        self._sources[problem_id] = where

    def source_of(self, problem: Problem) -> str:
        """Where ``problem``'s record lies, as ``located`` recorded it (else the task and the problem's id)."""
        return (self._sources or {}).get(problem.problem_id) or f"task {self.name!r} problem {problem.problem_id!r}"

    def _check_problem(self, problem: Problem) -> None:
        if not isinstance(problem.problem_id, str) or not problem.problem_id.strip():
            raise TaskError(f"task {self.name!r}: a problem has the id {problem.problem_id!r}; ids are non-empty text")
        where = self.source_of(problem)
        prompt = problem.prompt
        if isinstance(prompt, str):
            empty = not prompt.strip()
        else:
            empty = not prompt or any(not str(message.get("content") or "").strip() for message in prompt)
        if empty:
            raise TaskError(f"{where}: problem {problem.problem_id!r} has an empty prompt")
        if not isinstance(problem.reference, Mapping):
            raise TaskError(f"{where}: problem {problem.problem_id!r}: its reference is not an object")

    def describe(self) -> dict[str, Any]:
        """What identifies this task's prompts and data, recorded in the run manifest."""
        return {"name": self.name, **self.options(), "prompt": self.prompt_builder.describe()}


def load_records(source: str | Path, *, split: str, config: str | None = None) -> list[dict[str, Any]]:
    """Load raw records from a local JSONL file, or from a Hugging Face Hub dataset id through ``datasets``.

    A path that exists (or ends in ``.jsonl``) is read as JSONL; anything else is taken as a Hub id.
    """
    return [record for _, record in load_located_records(source, split=split, config=config)]


def load_located_records(
    source: str | Path, *, split: str, config: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """``load_records``, each record with where it lies: ``file:line`` in a JSONL file, ``id[split] record N``
    in a Hub dataset."""
    text = str(source)
    if text.endswith(".jsonl") or Path(text).exists():
        return [(f"{text}:{line}", record) for line, record in read_jsonl_lines(text)]
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - datasets is a dependency
        raise TaskError("loading a Hub dataset needs the `datasets` package") from error
    try:
        dataset = datasets.load_dataset(text, config, split=split)
    except Exception as error:  # the Hub, the network or the dataset's own code: all say the id cannot be used
        raise TaskError(
            f"could not load Hub dataset {text!r} (config={config!r}, split={split!r}): {error}. "
            "Without internet, pass a local copy as data=PATH.jsonl."
        ) from error
    return [(f"{text}[{split}] record {index}", dict(row)) for index, row in enumerate(dataset)]


def require_fields(
    records: Sequence[Mapping[str, Any]],
    fields: Sequence[str],
    source: str,
    named_by: Mapping[str, str] | None = None,
    wheres: Sequence[str] | None = None,
) -> None:
    """Raise a clear error if any record lacks one of ``fields``; ``named_by`` maps a field to the task option
    that named it (``{"q": "prompt_field"}``), for the message; ``wheres`` says where each record lies
    (``file:line``; default: its number in ``source``)."""
    for index, record in enumerate(records):
        missing = [name for name in fields if name not in record]
        if missing:
            options = [f"{named_by[name]}={name!r}" for name in missing if named_by and name in named_by]
            named = f" ({', '.join(options)})" if options else ""
            where = wheres[index] if wheres is not None else f"{source}: record {index}"
            raise TaskError(f"{where}: the record lacks field(s) {missing}{named}; it has {sorted(record)}")


#: What ``check_field`` accepts of a field: text (a non-empty string), any string, an integer (JSON's, or a string
#: of digits), a non-empty list of non-empty strings, or an id (non-empty text or an integer).
FieldKind = Literal["text", "string", "integer", "strings", "id"]
_KIND_WORDS = {
    "text": "non-empty text",
    "string": "a string",
    "integer": "an integer",
    "strings": "a non-empty list of non-empty strings",
    "id": "non-empty text or an integer",
}


def check_field(record: Mapping[str, Any], name: str, kind: FieldKind, where: str, option: str | None = None) -> Any:
    """``record[name]`` if it is of ``kind``, else a TaskError naming ``where`` (``file:line``), the field, and the
    task option that named it (``option``: ``"answer_field"``)."""
    value = record.get(name)
    if kind == "text":
        valid = isinstance(value, str) and bool(value.strip())
    elif kind == "string":
        valid = isinstance(value, str)
    elif kind == "integer":
        valid = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.strip().isdigit()
        )
    elif kind == "strings":
        valid = (
            isinstance(value, list) and bool(value) and all(isinstance(item, str) and item.strip() for item in value)
        )
    else:
        valid = (isinstance(value, str) and bool(value.strip())) or (
            isinstance(value, int) and not isinstance(value, bool)
        )
    if not valid:
        named = f" ({option}={name!r})" if option else ""
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise TaskError(f"{where}: field {name!r}{named} must be {_KIND_WORDS[kind]}, got {shown}")
    return value


def problems_digest(problems: Sequence[Problem]) -> str:
    """A short SHA-256 of the problems' ids, prompts and references: it changes when what is asked or judged does."""
    records = [{key: value for key, value in p.to_record().items() if key != "metadata"} for p in problems]
    payload = json.dumps(records, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
