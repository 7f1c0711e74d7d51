"""Command-line interface: ``ttc``. Each command group lives in its own module and registers on ``app``."""

from harness.cli.app import app


def main() -> None:
    app()
