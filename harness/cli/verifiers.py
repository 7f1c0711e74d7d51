"""Comparing verifiers: ``agreement`` (how often one verifier agrees with another), ``ensemble`` (score sets
combined into one, cross-fitted by problem) and ``genselect`` (a judge model picks among k samples)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli.app import JsonOption, Output, QuietOption, app
from harness.cli.pipeline import (
    JudgeBaseUrlOption,
    JudgeEngineOption,
    JudgeTemplateOption,
    RunDir,
    VerifierOption,
)

if TYPE_CHECKING:
    from harness.metrics.ensemble import Ensemble


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


@app.command("ensemble")
def ensemble_command(
    run_dir: RunDir,
    score_sets: Annotated[
        str,
        typer.Option(
            help="Comma-separated inputs, at least two: score sets, and sample features likelihood, conf-mean, "
            "conf-min-window, conf-tail, conf-bottom10."
        ),
    ],
    name: Annotated[str, typer.Option(help="Score set to store the combined score as (selectors name it: orm=NAME).")],
    method: Annotated[str, typer.Option(help="logistic, naive-bayes or rank-mean.")] = "logistic",
    verifier: VerifierOption = None,
    folds: Annotated[int, typer.Option(help="Folds of problems for cross-fitting.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the dealing of problems into folds.")] = 0,
    l2: Annotated[float, typer.Option(help="logistic: penalty on the standardised weights.")] = 1.0,
    json_output: JsonOption = False,
) -> None:
    """Combine score sets into one, cross-fitted across problems (a problem's combined score never uses its own
    labels), stored as score set --name; prints each fold's fit on its held-out problems.

    The labels are a verdict set's (--verifier; default: the one last verified).
    """
    import harness

    output = Output("ensemble", json_output)
    with output.errors():
        fitted = harness.ensemble(
            run_dir, score_sets, name=name, method=method, verifier=verifier, folds=folds, seed=seed, l2=l2
        )
    output.echo(format_ensemble(fitted, name))
    output.result(run=str(run_dir), score_set=name, **fitted.to_dict())


def format_ensemble(fitted: Ensemble, name: str) -> str:
    """The ensemble's fit, fold by fold: held-out against in-sample log-loss and AUROC."""

    def number(value: float | None) -> str:
        return "-" if value is None or value != value else f"{value:.4f}"

    inputs = ", ".join(fitted.names)
    header = ("fold", "problems", "samples", "correct", "log-loss", "AUROC", "in-sample log-loss", "in-sample AUROC")
    widths = (4, 9, 8, 8, 9, 7, 19, 16)
    lines = [
        f"score set {name!r}: {fitted.method} over {inputs}, cross-fitted over {len(fitted.folds)} folds of problems",
        "  " + " ".join(f"{title:>{width}}" for title, width in zip(header, widths)),
    ]
    for fold in fitted.folds:
        figures = (fold.log_loss, fold.auroc, fold.train_log_loss, fold.train_auroc)
        cells = [str(count) for count in (fold.fold, fold.problems, fold.samples, fold.correct)]
        cells += [number(value) for value in figures]
        lines.append("  " + " ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths)))
    lines.append(f"held-out: log-loss {number(fitted.log_loss)}, AUROC (mean over folds) {number(fitted.auroc)}")
    for fold in fitted.folds[:1]:
        if fold.coefficients:
            weights = ", ".join(f"{key} {value:+.3f}" for key, value in fold.coefficients.items())
            lines.append(f"fold 0 weights (per standard deviation): {weights}")
    return "\n".join(lines)


@app.command("genselect")
def genselect_command(
    run_dir: RunDir,
    judge_model: Annotated[
        str, typer.Option(help="The judge model: a checkpoint or Hub id (vllm), or a served model's name (openai).")
    ],
    k: Annotated[str, typer.Option("--k", help="Comma-separated numbers of candidates shown at once.")] = "2,4",
    subsets: Annotated[int, typer.Option(help="Random k-subsets of each problem's samples per k.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the subsets.")] = 0,
    name: Annotated[
        str, typer.Option(help="Selection set to write (compare-verifiers: genselect=NAME).")
    ] = "genselect",
    candidate_chars: Annotated[int, typer.Option(help="Characters of each candidate's end the judge reads.")] = 600,
    judge_engine: JudgeEngineOption = "vllm",
    judge_base_url: JudgeBaseUrlOption = None,
    judge_template: JudgeTemplateOption = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Generative selection: the judge reads k samples' answers and names the correct one, for random k-subsets of
    each problem's samples; the picks and their token cost are stored for `compare-verifiers --selectors genselect`.
    """
    import harness
    from harness.reporting.selector_comparison import parse_ks

    output = Output("genselect", json_output, quiet)
    with output.errors():
        result = harness.genselect(
            run_dir,
            judge_model,
            ks=parse_ks(k),
            subsets=subsets,
            seed=seed,
            name=name,
            judge_engine=judge_engine,
            judge_base_url=judge_base_url,
            judge_template=judge_template,
            candidate_chars=candidate_chars,
            progress=output.progress_mode,
            log=output.log,
        )
    output.result(run=str(run_dir), **result)
