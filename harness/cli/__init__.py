"""Command-line interface: ``ttc``. Each command group lives in its own module and registers on ``app``."""

import sys

import typer

from harness.cli import (
    compare,  # noqa: F401  (compare)
    forecasting,  # noqa: F401  (forecast, backtest, budget)
    pipeline,  # noqa: F401  (run, sample, verify, analyze, report)
    selection,  # noqa: F401  (score, import-scores, import-samples, compare-verifiers)
    verifiers,  # noqa: F401  (agreement, ensemble)
)
from harness.cli.app import CommandError, Output, app
from harness.core.interrupts import install_handlers


def main() -> None:
    """``ttc``: the commands, with interrupts handled (a second one ends ttc at once) and, with ``--json``, a usage
    error reported as the JSON result ``{"ok": false, ...}`` rather than the parser's usage message."""
    install_handlers(exit_on_second=True)  # for good: a second interrupt while ttc shuts down still ends it
    if "--json" not in sys.argv[1:]:
        app()
        return
    try:
        status = app(standalone_mode=False)
    except typer.TyperException as error:  # the parser's: an unknown option, a value it cannot read
        context = getattr(error, "ctx", None)
        command = context.command.name if context is not None and context.parent is not None else None
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        try:
            Output(command or "ttc", as_json=True).fail(CommandError(message))
        except typer.Exit as failed:
            status = failed.exit_code
    except typer.Abort:
        status = 1
    sys.exit(status if isinstance(status, int) else 0)
