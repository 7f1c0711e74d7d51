"""Command-line interface: ``ttc``. Each command group lives in its own module and registers on ``app``."""

from harness.cli.app import app
from harness.cli import pipeline  # noqa: F401  (run, sample, verify, analyze, report)


def main() -> None:
    app()
