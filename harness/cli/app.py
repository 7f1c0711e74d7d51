"""The ``ttc`` Typer application, and the one way every command reports its result or an error.

Command modules register themselves on ``app`` when imported. Each command makes an ``Output``: it parses
its options, calls the library inside ``with output.errors():``, and prints. ``--json`` means the same on
every command: one JSON object on stdout (``{"command": ..., "ok": true, ...}``), progress and messages as
JSON lines on stderr.

Errors take one of two paths. What ttc reports as a fault of its input or surroundings (a ``TTCError``: a bad
option, a malformed file, a damaged run directory, an engine that gave up; or an ``OSError``: a missing or
unreadable file) prints ``error: ...`` on stderr (with ``--json`` also ``{"command": ..., "ok": false, "error":
...}`` on stdout) and exits with status 2; an ``OptionError`` is shown with its flag. Any other exception is a
bug in ttc: its traceback, then one line saying so and how to report it, and exit status 1.

An interrupt (Ctrl-C, SIGTERM, SIGHUP: ``harness.core.interrupts``) stops the command within seconds, keeping
what was finished; it prints one line and exits with 128 + the signal's number (130, 143, 129). A second
interrupt ends the process at once. A usage error (an option value the parser cannot read) with ``--json`` is
reported like any other error: ``{"command": ..., "ok": false, "error": ...}`` on stdout.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from harness.core.errors import OptionError, TTCError
from harness.core.interrupts import exit_status

if TYPE_CHECKING:
    from harness.reporting.progress import ProgressMode

app = typer.Typer(
    name="ttc",
    help="Test-time compute scaling: sample, verify, analyse and forecast repeated sampling.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ttc {_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print ttc's version and exit."),
    ] = False,
) -> None:
    """Test-time compute scaling: sample, verify, analyse and forecast repeated sampling."""


JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON result object on stdout; progress and messages as JSON lines on stderr.",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or messages (errors still show).")]
# The memory-aware cost's hardware and model (docs/thinking.md), for the commands that price in eFLOPs
HardwareOption = Annotated[
    str | None, typer.Option("--hardware", help="eFLOPs (memory-aware cost) on h100, h200, a100 or b200.")
]
FlopsPerSOption = Annotated[
    float | None,
    typer.Option("--flops-per-s", help="eFLOPs: peak FLOP/s (with --bytes-per-s, or replacing the preset's)."),
]
BytesPerSOption = Annotated[
    float | None,
    typer.Option("--bytes-per-s", help="eFLOPs: memory bandwidth in bytes/s (with --flops-per-s, or replacing)."),
]
DtypeBytesOption = Annotated[
    float | None,
    typer.Option("--dtype-bytes", help="eFLOPs: bytes per weight, where the config has no torch_dtype."),
]

# What a command reports as a one-line error: ttc's own errors, and files that are missing or cannot be read or
# written. Anything else is a bug in ttc and keeps its traceback.
REPORTED_ERRORS = (TTCError, OSError)
# Commands whose finished work is stored as it comes, so that the same command resumes after an interrupt.
RESUMABLE = frozenset({"run", "sample", "verify", "score"})
BUG_REPORT = (
    "this is a bug in ttc, not in your input: please report it to the ttc issue tracker with the command and the "
    "traceback above"
)


class CommandError(TTCError):
    """Arguments of a command that do not go together (``--plot`` with several groups, two price options)."""


# Library parameters whose CLI flag is not their name with dashes.
FLAGS = {
    "ks": "--k",
    "extra_samples": "--adaptive-extra",
    "extra_per_problem": "--adaptive-extra",
    "prices": "--price-per-mtok",
    "labels": "--label",
    "paths": "RUN_DIRS",
    # an engine's or task's options: engine_options.KEY is --engine-option KEY (unless it has a flag of its own)
    "engine_options": "--engine-option",
    "task_options": "--task-option",
    # harness.forecasting.costs: Prices and Usage
    "per_million_tokens": "--price-per-mtok",
    "gpu_hour": "--gpu-hour-price",
    "output_tokens_per_sample": "--tokens-per-sample",
    "prompt_tokens_per_problem": "--prompt-tokens",
    "output_tokens_per_second": "--tokens-per-second",
    "model_parameters": "--params",
    # harness.pipeline.importing.SampleFields
    "fields.problem_id": "--id-field",
    "fields.prompt": "--prompt-field",
    "fields.reference": "--reference-field",
    "fields.samples": "--samples-field",
    "fields.answers": "--answers-field",
    "fields.correct": "--correct-field",
    "fields.scores": "--scores-field",
}


def flag(option: str) -> str:
    """The CLI flag of a library parameter: ``max_tokens`` -> ``--max-tokens``, ``ks`` -> ``--k``; an option of
    the engine or task, ``engine_options.KEY``, is its own flag if it has one (``--max-model-len``), else
    ``--engine-option KEY``."""
    if option in FLAGS:
        return FLAGS[option]
    parameter, dot, key = option.partition(".")
    if dot and parameter in FLAGS:
        return f"{FLAGS[parameter]} {key}"
    return "--" + option.replace("_", "-")


def check_one_price(output: Output, price_per_mtok: float | None, gpu_hour_price: float | None) -> None:
    """Costs take one price: refuse both (before anything is read)."""
    if price_per_mtok is not None and gpu_hour_price is not None:
        output.fail(CommandError("give --price-per-mtok or --gpu-hour-price, not both"))


def error_message(error: BaseException) -> str:
    if isinstance(error, OptionError):
        return f"{flag(error.option)}: {error.message}"
    return str(error)


class Output:
    """Where one command's messages, result and errors go: human text, JSON, or (with ``--quiet``) little."""

    def __init__(self, command: str, as_json: bool = False, quiet: bool = False) -> None:
        from harness.reporting.progress import configure_logging, message_logger

        self.command = command
        self.as_json = as_json
        self.quiet = quiet
        self.progress_mode: ProgressMode = "quiet" if quiet else ("json" if as_json else "auto")
        self.log = message_logger(self.progress_mode)
        configure_logging(json_mode=as_json)

    @property
    def human(self) -> bool:
        """Whether human-readable text (tables, messages) goes to stdout."""
        return not (self.as_json or self.quiet)

    def echo(self, text: str = "") -> None:
        """Human-readable text on stdout (not with ``--json`` or ``--quiet``)."""
        if self.human:
            typer.echo(text)

    def result(self, **fields: Any) -> None:
        """The command's result: one JSON object on stdout with ``--json``."""
        if self.as_json:
            print(json.dumps({"command": self.command, "ok": True, **fields}, default=_plain), flush=True)

    def fail(self, error: BaseException) -> NoReturn:
        """Report ``error`` (one line) and exit with status 2."""
        message = error_message(error)
        if self.as_json:
            from harness.reporting.progress import write_json_line

            write_json_line(sys.stderr, {"event": "error", "message": message})
            print(json.dumps({"command": self.command, "ok": False, "error": message}), flush=True)
        else:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=2)

    def interrupted(self, interrupt: KeyboardInterrupt) -> NoReturn:
        """Report an interrupt in one line and exit with 128 + its signal's number."""
        name = getattr(interrupt, "signal_name", "SIGINT")
        message = f"interrupted by {name}" + (
            ": stopped; what was finished is stored, and the same command resumes from there"
            if self.command in RESUMABLE
            else ""
        )
        status = exit_status(interrupt)
        if self.as_json:
            from harness.reporting.progress import write_json_line

            write_json_line(sys.stderr, {"event": "error", "message": message, "interrupted": name})
            print(json.dumps({"command": self.command, "ok": False, "error": message, "interrupted": name}), flush=True)
        else:
            typer.echo(("\n" if sys.stderr.isatty() else "") + message, err=True)  # past a live line or ^C
        raise typer.Exit(code=status)

    def bug(self, error: BaseException) -> NoReturn:
        """Report an exception that is not ttc's error: its traceback and a line saying it is a bug; exit status 1.
        With ``--json`` the traceback travels in the error event, and stdout holds the failed result."""
        trace = traceback.format_exc()
        message = f"{type(error).__name__}: {error}; {BUG_REPORT} (ttc {_version()}, Python {sys.version.split()[0]})"
        if self.as_json:
            from harness.reporting.progress import write_json_line

            write_json_line(sys.stderr, {"event": "error", "message": message, "bug": True, "traceback": trace})
            print(json.dumps({"command": self.command, "ok": False, "error": message, "bug": True}), flush=True)
        else:
            sys.stderr.write(trace)
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=1)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn ttc's errors (and file errors) into ``fail``, and any other exception into ``bug``."""
        try:
            yield
        except (typer.Exit, typer.Abort, typer.TyperException):  # the CLI's own exits and usage errors
            raise
        except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP (harness.core.interrupts)
            self.interrupted(interrupt)
        except REPORTED_ERRORS as error:
            self.fail(error)
        except Exception as error:  # noqa: BLE001 - anything else is a bug in ttc: reported as one, with its traceback
            self.bug(error)


def _version() -> str:
    try:
        return metadata.version("ttc-harness")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _plain(value: Any) -> Any:
    """JSON for what ``json`` cannot write itself: numpy numbers and arrays, paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
