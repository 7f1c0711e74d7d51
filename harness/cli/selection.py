"""Selection commands: ``score``, ``import-scores``, ``import-samples``, ``compare-verifiers``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import JsonOption, Output, QuietOption, app
from harness.cli.pipeline import (
    JudgeBaseUrlOption,
    JudgeEngineOption,
    JudgeTemplateOption,
    RunDir,
    VerifierOption,
)


@app.command("compare-verifiers")
def compare_verifiers_command(
    run_dir: RunDir,
    selectors: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: coverage, majority, orm[=SET], prm[=SET], weighted[=SET], likelihood, "
            "conf-min-window, conf-tail, conf-bottom10, conf-majority=ETA (default: all the run's data allows)."
        ),
    ] = None,
    k: Annotated[str | None, typer.Option("--k", help="Comma-separated k values (default: 1, 2, 4, ..., n).")] = None,
    aggregate: Annotated[
        str, typer.Option(help="How step scores become a sample's score: min, last, product, mean.")
    ] = "min",
    subsets: Annotated[
        int | None,
        typer.Option(help="Monte-Carlo random subsets per problem, where exact is too costly (default: automatic)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of Monte-Carlo subsets and bootstrap intervals.")] = 0,
    verifier: VerifierOption = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Accuracy@k of selectors (majority vote, reward model best-of-k, ...) next to coverage (pass@k).

    Prints a table (rows k, columns selectors, cells value [95% interval over problems]) and writes
    verifiers.json and verifiers.png into the run directory.
    """
    from harness.reporting.selector_comparison import compare_verifiers, parse_ks, parse_selectors
    from harness.reporting.selectors import print_comparison, write_comparison
    from harness.store import RunStore

    output = Output("compare-verifiers", json_output, quiet)
    with output.errors():
        specs = parse_selectors(selectors) if selectors else None
        ks = parse_ks(k) if k else None
        with RunStore.open(run_dir).locked() as store:  # writes verifiers.json and verifiers.png into the run
            result = compare_verifiers(
                store, specs, ks, verifier=verifier, aggregate=aggregate, subsets=subsets, seed=seed
            )
            json_path, png_path = write_comparison(result, store)
    if output.human:
        print_comparison(result)
    output.echo(f"wrote {json_path} and {png_path}")
    output.result(**result, files=[str(json_path), str(png_path)])


@app.command("import-scores")
def import_scores_command(
    run_dir: RunDir,
    file: Annotated[Path, typer.Argument(help="JSONL rows: problem_id, sample_idx, score and/or step_scores.")],
    name: Annotated[str, typer.Option(help="Score set to add the scores to (selectors name it, e.g. orm=NAME).")],
    json_output: JsonOption = False,
) -> None:
    """Add per-sample scores computed elsewhere to a run (checked first; nothing is written on error)."""
    import harness

    output = Output("import-scores", json_output)
    with output.errors():
        rows = harness.import_scores(run_dir, file, name)
    output.echo(f"imported {rows} scores into score set {name!r}")
    output.result(run=str(run_dir), score_set=name, imported=rows)


@app.command("import-samples")
def import_samples_command(
    file: Annotated[Path, typer.Argument(help="JSONL, one problem a line, with list fields of samples.")],
    out: Annotated[Path, typer.Option(help="Run directory to create.")],
    id_field: Annotated[
        str | None,
        typer.Option(help="Field with the problem id (default: idx if the records have it, else the record's number)."),
    ] = None,
    prompt_field: Annotated[str, typer.Option(help="Field with the problem statement.")] = "question",
    reference_field: Annotated[str, typer.Option(help="Field with the reference answer.")] = "gt",
    samples_field: Annotated[str, typer.Option(help="Field with the list of completions.")] = "code",
    answers_field: Annotated[str, typer.Option(help="Field with the list of extracted answers.")] = "pred",
    correct_field: Annotated[str, typer.Option(help="Field with the list of correctness booleans.")] = "score",
    scores_field: Annotated[
        str | None,
        typer.Option(help="Field with the list of reward scores (default: pred_score if the records have it)."),
    ] = None,
    score_set: Annotated[str, typer.Option(help="Name of the score set for imported reward scores.")] = "imported",
    json_output: JsonOption = False,
) -> None:
    """Create a run directory from samples generated and judged elsewhere (defaults: Qwen2.5-Math's format)."""
    import harness

    output = Output("import-samples", json_output)
    with output.errors():
        created = harness.import_samples(
            file,
            out,
            id_field=id_field,
            prompt_field=prompt_field,
            reference_field=reference_field,
            samples_field=samples_field,
            answers_field=answers_field,
            correct_field=correct_field,
            scores_field=scores_field,
            score_set=score_set,
        )
    sets = created["score_sets"]
    output.echo(
        f"created {out}: {created['problems']} problems, {created['samples']} samples with verdicts"
        + (f", score sets {sets}" if sets else "")
    )
    output.result(run=str(out), problems=created["problems"], samples=created["samples"], score_sets=sets)


@app.command("score")
def score_command(
    run_dir: RunDir,
    model: Annotated[
        str | None, typer.Option(help="Reward model: Hugging Face Hub id or local checkpoint directory.")
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(help="Instead of --model: an LLM judge whose probability of 'yes' is each sample's score."),
    ] = None,
    judge_engine: JudgeEngineOption = "vllm",
    judge_base_url: JudgeBaseUrlOption = None,
    judge_template: JudgeTemplateOption = None,
    kind: Annotated[str, typer.Option(help="orm (a score per sample) or prm (a score per reasoning step).")] = "orm",
    backend: Annotated[
        str, typer.Option(help="auto (vLLM on a GPU, else transformers), vllm or transformers.")
    ] = "auto",
    batch_size: Annotated[int, typer.Option(help="Samples per model call.")] = 16,
    name: Annotated[
        str | None, typer.Option(help="Score set to write (default: <kind>-<model name>, judge-<model name>).")
    ] = None,
    step_token: Annotated[
        str | None,
        typer.Option(help="prm: token after each step where the model scores it (default <extra_0> if known)."),
    ] = None,
    max_length: Annotated[int, typer.Option(help="Most tokens per input; longer inputs keep their end.")] = 4096,
    dtype: Annotated[str, typer.Option(help="Weights' dtype: auto, bfloat16, float16, float32.")] = "auto",
    gpu_memory_utilization: Annotated[
        float | None, typer.Option(help="vLLM's share of accelerator memory (on CPU: of RAM).")
    ] = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Score every sample of a run with a reward model or an LLM judge (resumable: scores are stored as they come)."""
    import harness

    output = Output("score", json_output, quiet)
    with output.errors():
        scoring = harness.score(
            run_dir,
            model,
            judge_model=judge_model,
            judge_engine=judge_engine,
            judge_base_url=judge_base_url,
            judge_template=judge_template,
            kind=kind,
            backend=backend,
            batch_size=batch_size,
            name=name,
            step_token=step_token,
            max_length=max_length,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            progress=output.progress_mode,
            log=output.log,
        )
    output.result(run=str(run_dir), scoring=scoring)
