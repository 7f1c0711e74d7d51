"""Comparing verifiers: ``agreement`` (how often one verifier agrees with another) and ``ensemble`` (score sets
combined into one, cross-fitted by problem)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import JsonOption, Output, app
from harness.cli.pipeline import RunDir


@app.command("agreement")
def agreement_command(
    run_dir: RunDir,
    verdicts: Annotated[
        str,
        typer.Option(
            help="A: a verdict set (verifier name as `ttc verify --verifier` takes it, its key, or imported), or a "
            "score set with --threshold."
        ),
    ],
    against: Annotated[str, typer.Option(help="B, the reference: a verdict set, or a score set with --threshold.")],
    threshold: Annotated[
        str | None,
        typer.Option(help="A score at or above this counts as correct (for a score set, or a judge's verdict scores)."),
    ] = None,
    confidence: Annotated[float, typer.Option(help="Level of the intervals.")] = 0.95,
    disagreements: Annotated[
        Path | None,
        typer.Option(
            help="JSONL file for the disagreeing samples (default: RUN_DIR/agreement-A-vs-B.disagreements.jsonl)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """How often verdicts A agree with the reference B: confusion matrix, precision, recall, false-positive and
    false-negative rates with intervals clustered by problem, Cohen's kappa, AUROC of scores.

    Writes agreement-A-vs-B.json into the run (what `ttc analyze --verifier-error-from` reads) and the
    disagreeing samples, one JSON object a line, to read.
    """
    import harness
    from harness.reporting.agreement import format_agreement

    output = Output("agreement", json_output)
    with output.errors():
        result, files = harness.agreement(
            run_dir, verdicts, against, threshold=threshold, confidence=confidence, disagreements=disagreements
        )
    output.echo(format_agreement(result))
    output.echo(f"wrote {files[0]}; {len(result.disagreements):,} disagreeing samples in {files[1]}")
    output.result(**result.to_json(), files=[str(path) for path in files])
