"""``ttc bench``: the benchmark suite of the harness's own speed (see ``harness.bench.suite``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from harness.cli.app import app


@app.command("bench")
def bench_command(
    quick: Annotated[bool, typer.Option(help="Tiny sizes (the CI mode: under 3 minutes).")] = False,
    only: Annotated[Optional[List[str]], typer.Option(help="Run only this figure (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the JSON figures.")] = Path("results/bench"),
    json_output: Annotated[bool, typer.Option("--json", help="Print the rows as JSON instead of a table.")] = False,
    markdown: Annotated[
        bool, typer.Option(help="Print the figures already stored in --out as a Markdown table (runs nothing).")
    ] = False,
) -> None:
    """Measure the harness's speed (sampling overhead, engine throughput, verification, analysis, store)."""
    from harness.bench.suite import load_rows, markdown_table, print_table, run_suite, select_figures

    if markdown:
        print(markdown_table(load_rows(out, quick)))
        return
    try:
        select_figures(only)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2)
    rows = run_suite(only, quick, out, log=lambda message: typer.echo(message, err=True))
    if json_output:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print_table(rows)
