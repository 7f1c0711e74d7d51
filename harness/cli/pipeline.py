"""``ttc run`` and its steps: ``sample``, ``verify``, ``analyze``, ``report``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from typing_extensions import Annotated

from harness.cli.app import app
from harness.store import RunStoreError
from tasks import DEFAULT_RUN

RunDir = Annotated[Path, typer.Argument(help="Run directory (as written by `ttc run` / `ttc sample`).")]
VerifierOption = Annotated[
    Optional[str],
    typer.Option(help="Verifier: numeric, math, python-tests, exact or module:Class (default: the task's)."),
]
WorkersOption = Annotated[Optional[int], typer.Option(help="Verification worker processes (default: all cores).")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Machine-readable output: JSON-lines progress events on stderr, one JSON result on stdout "
        "(with --quiet: the result only).",
    ),
]


class Output:
    """Where a command's progress, messages and result go: human text, JSON, or (almost) nothing."""

    def __init__(self, command: str, quiet: bool, as_json: bool) -> None:
        from harness.reporting.progress import configure_logging, message_logger

        self.command = command
        self.as_json = as_json
        self.progress_mode = "quiet" if quiet else ("json" if as_json else "auto")
        self.log = message_logger("quiet" if quiet else ("json" if as_json else "auto"))
        configure_logging(json_mode=as_json)

    def fail(self, error: Exception) -> None:
        """Report ``error`` and exit with status 2."""
        if self.as_json:
            from harness.reporting.progress import write_json_line

            write_json_line(sys.stderr, {"event": "error", "message": str(error)})
            self.result({"ok": False, "error": str(error)})
        else:
            typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2)

    def result(self, fields: dict[str, Any]) -> None:
        """The final JSON result on stdout (``--json`` only)."""
        if self.as_json:
            print(json.dumps({"command": self.command, **fields}, default=str), flush=True)


def fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=2)


def _verification_result(outcome) -> dict[str, Any]:
    return {
        "verdict_set": outcome.key,
        "verified": outcome.verified,
        "reasons": dict(outcome.reasons),
        "seconds": round(outcome.seconds, 3),
    }


def _report(store, quiet: bool, verifier: str | None = None) -> dict[str, Any]:
    from harness.reporting.terminal import print_summary
    from harness.pipeline.analyze import analyze

    summary = analyze(store, verifier)
    if not quiet:
        print_summary(summary)
    return summary


def _write_html_report(store, summary: dict[str, Any], path: Path | None = None, prices=None) -> Path:
    from harness.reporting.html import write_report

    return write_report(store, summary, path, prices=prices)


def _make_sampling_command(name: str, full_pipeline: bool, help_text: str) -> None:
    def command(
        task: Annotated[
            str, typer.Option(help="Task: gsm8k, humaneval, mbpp, math500, jsonl or module:Class.")
        ] = DEFAULT_RUN["task"],
        data: Annotated[Optional[str], typer.Option(help="Local JSONL file or Hugging Face Hub dataset id.")] = None,
        model: Annotated[
            Optional[str], typer.Option(help="Hub id or local checkpoint (default: embedded SmolLM2-135M-Instruct).")
        ] = None,
        problems: Annotated[
            int, typer.Option(help="Number of problems (the task's first N); 0 for all.")
        ] = DEFAULT_RUN["problems"],
        samples: Annotated[int, typer.Option(help="Samples per problem.")] = DEFAULT_RUN["samples"],
        temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = DEFAULT_RUN["temperature"],
        top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = DEFAULT_RUN["top_p"],
        top_k: Annotated[int, typer.Option(help="Top-k sampling; -1 for off.")] = -1,
        max_tokens: Annotated[int, typer.Option(help="Most tokens per completion.")] = DEFAULT_RUN["max_tokens"],
        seed: Annotated[int, typer.Option(help="Base seed; each request's seed is derived from it.")] = 0,
        out: Annotated[
            Optional[Path], typer.Option(help="Run directory (default: results/<task>-<model>-<config hash>).")
        ] = None,
        engine: Annotated[
            str, typer.Option(help="Sampling engine: vllm (local), openai (any OpenAI-compatible server) or module:Class.")
        ] = "vllm",
        base_url: Annotated[
            Optional[str],
            typer.Option(help="--engine openai: API root, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL)."),
        ] = None,
        api_key_env: Annotated[
            Optional[str],
            typer.Option(help="--engine openai: environment variable holding the API key (default: OPENAI_API_KEY, if set)."),
        ] = None,
        concurrency: Annotated[
            Optional[int], typer.Option(help="--engine openai: HTTP requests in flight at once (default 8).")
        ] = None,
        request_timeout: Annotated[
            Optional[float], typer.Option(help="--engine openai: seconds one HTTP request may take (default 600).")
        ] = None,
        max_retries: Annotated[
            Optional[int],
            typer.Option(help="--engine openai: retries of a failed request (429, 5xx, timeout) before stopping (default 5)."),
        ] = None,
        dtype: Annotated[str, typer.Option(help="Model dtype for the engine (auto, bfloat16, float16, float32).")] = "auto",
        gpu_memory_utilization: Annotated[
            Optional[float], typer.Option(help="Share of accelerator memory for vLLM (on CPU: of RAM).")
        ] = None,
        max_model_len: Annotated[int, typer.Option(help="Context length limit for the engine.")] = 4096,
        max_num_seqs: Annotated[Optional[int], typer.Option(help="Most sequences the engine decodes at once.")] = None,
        enforce_eager: Annotated[
            Optional[bool],
            typer.Option(
                "--enforce-eager/--compile",
                help="Skip graph compilation (faster start, slower decode) or compile. Default: eager on CPU, "
                "compiled on GPU.",
            ),
        ] = None,
        split: Annotated[Optional[str], typer.Option(help="Dataset split, for tasks that have several.")] = None,
        shots: Annotated[Optional[int], typer.Option(help="Few-shot exemplars, for tasks that use them.")] = None,
        fewshot_data: Annotated[Optional[str], typer.Option(help="Where few-shot exemplars come from.")] = None,
        prompt_style: Annotated[
            Optional[str], typer.Option(help="completion or chat, for tasks that offer both (default: the task's).")
        ] = None,
        prompt_template: Annotated[Optional[Path], typer.Option(help="Prompt template file overriding the task's.")] = None,
        prompt_field: Annotated[Optional[str], typer.Option(help="jsonl task: field holding the prompt.")] = None,
        answer_field: Annotated[Optional[str], typer.Option(help="jsonl task: field holding the reference answer.")] = None,
        id_field: Annotated[Optional[str], typer.Option(help="jsonl task: field holding a problem id.")] = None,
        metadata_field: Annotated[
            Optional[List[str]], typer.Option(help="jsonl task: a field kept for per-group analysis (repeatable).")
        ] = None,
        reference_field: Annotated[
            Optional[List[str]], typer.Option(help="jsonl task: a field passed to the verifier (repeatable).")
        ] = None,
        stop: Annotated[
            Optional[List[str]], typer.Option(help="Stop string replacing the task's (repeatable; jsonl, math500).")
        ] = None,
        verifier: VerifierOption = None,
        workers: WorkersOption = None,
        adaptive_pilot: Annotated[
            int,
            typer.Option(
                help="ttc run: after the pilot (--samples per problem), spend this many extra samples in total where "
                "they narrow the forecast interval at 10x the pilot most; reports the interval before and after."
            ),
        ] = 0,
        quiet: QuietOption = False,
        json_output: JsonOption = False,
    ) -> None:
        from harness.pipeline.prepare import SampleOptions, prepare
        from harness.pipeline.adaptive import adaptive_pilot as run_adaptive_pilot
        from harness.pipeline.analyze import analyze
        from harness.pipeline.sample import sample_run
        from harness.pipeline.verify import verify

        output = Output(name, quiet, json_output)
        if adaptive_pilot and not full_pipeline:
            output.fail(ValueError("--adaptive-pilot needs verdicts between its two rounds: use `ttc run`"))
        if adaptive_pilot < 0:
            output.fail(ValueError("--adaptive-pilot must be a non-negative number of samples"))

        task_options = {
            "split": split,
            "shots": shots,
            "fewshot_data": fewshot_data,
            "prompt_style": prompt_style,
            "prompt_template": str(prompt_template) if prompt_template else None,
            "prompt_field": prompt_field,
            "answer_field": answer_field,
            "id_field": id_field,
            "metadata_fields": metadata_field or None,
            "reference_fields": reference_field or None,
            "stop": stop or None,
            "verifier": verifier if task == "jsonl" else None,
        }
        server_options = {
            "base_url": base_url,
            "api_key_env": api_key_env,
            "concurrency": concurrency,
            "request_timeout": request_timeout,
            "max_retries": max_retries,
        }
        if engine == "openai":
            engine_options = {key: value for key, value in server_options.items() if value is not None}
        else:
            given = [f"--{key.replace('_', '-')}" for key, value in server_options.items() if value is not None]
            if given:
                output.fail(ValueError(f"{', '.join(given)}: only for --engine openai (the engine is {engine!r})"))
            engine_options = {
                "dtype": dtype,
                "gpu_memory_utilization": gpu_memory_utilization,
                "max_model_len": max_model_len,
                "max_num_seqs": max_num_seqs,
                "enforce_eager": enforce_eager,
            }
        options = SampleOptions(
            task=task,
            data=data,
            task_options={key: value for key, value in task_options.items() if value is not None},
            model=model,
            engine=engine,
            engine_options=engine_options,
            problems=problems or None,
            samples=samples,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_tokens=max_tokens,
            seed=seed,
            out=out,
        )
        try:
            prepared = prepare(options)
            report = sample_run(prepared, progress_mode=output.progress_mode, log=output.log)
        except (ValueError, FileNotFoundError, RunStoreError, RuntimeError) as error:
            output.fail(error)
        store = report.store
        result: dict[str, Any] = {"ok": True, "run": str(store.path), "sampling": report.to_dict()}
        with store:
            if full_pipeline:
                outcome = verify(store, verifier, workers=workers, progress_mode=output.progress_mode)
                if outcome.verified:
                    output.log(f"verified {outcome.verified} samples in {outcome.seconds:.1f} s")
                result["verification"] = _verification_result(outcome)
                if adaptive_pilot:
                    try:
                        result["adaptive_pilot"] = run_adaptive_pilot(
                            store, prepared, adaptive_pilot, verifier, workers, output.progress_mode, output.log
                        )
                    except ValueError as error:
                        output.fail(error)
                result["summary"] = analyze(store) if json_output else _report(store, quiet)
                output.log(f"summary: {store.path / 'summary.json'}")
                result["report"] = str(_write_html_report(store, result["summary"]))
                output.log(f"report: {result['report']}")
        output.result(result)

    command.__doc__ = help_text
    app.command(name)(command)


_make_sampling_command(
    "run",
    True,
    "Sample, verify and analyse: the whole pipeline (resumes an interrupted or smaller run).",
)
_make_sampling_command(
    "sample",
    False,
    "Generate the samples a run directory lacks (creating it if needed), storing each as it arrives.",
)


@app.command("verify")
def verify_command(
    run_dir: RunDir,
    verifier: VerifierOption = None,
    workers: WorkersOption = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Judge every stored sample that has no verdict yet (resumable; runs on all cores)."""
    from harness.pipeline.verify import verify
    from harness.store import RunStore

    output = Output("verify", quiet, json_output)
    try:
        with RunStore.open(run_dir, writable=True) as store:
            outcome = verify(store, verifier, workers=workers, progress_mode=output.progress_mode)
    except (ValueError, RunStoreError) as error:
        output.fail(error)
    reasons = ", ".join(f"{name} {count}" for name, count in sorted(outcome.reasons.items()))
    output.log(f"verified {outcome.verified} samples into {outcome.key}" + (f": {reasons}" if reasons else ""))
    output.result({"ok": True, "run": str(run_dir), "verification": _verification_result(outcome)})


@app.command("analyze")
def analyze_command(run_dir: RunDir, verifier: VerifierOption = None, quiet: QuietOption = False) -> None:
    """Compute coverage (pass@k for every k) with intervals and write summary.json."""
    from harness.pipeline.analyze import analyze
    from harness.store import RunStore

    try:
        summary = analyze(RunStore.open(run_dir), verifier)
    except (ValueError, RunStoreError) as error:
        fail(error)
    if not quiet:
        typer.echo(f"pass@1 {summary['pass_at_1']:.4f}; wrote {Path(run_dir) / 'summary.json'}")


@app.command("report")
def report_command(
    run_dir: RunDir,
    verifier: VerifierOption = None,
    out: Annotated[Optional[Path], typer.Option(help="HTML file to write (default: RUN_DIR/report.html).")] = None,
    price_per_mtok: Annotated[
        Optional[float], typer.Option("--price-per-mtok", help="Money per million tokens, for the cost columns.")
    ] = None,
    gpu_hour_price: Annotated[
        Optional[float], typer.Option("--gpu-hour-price", help="Money per GPU hour, for the cost columns.")
    ] = None,
) -> None:
    """Analyse a run, print its table and write report.html (one self-contained page)."""
    from harness.forecasting.budget import Prices
    from harness.store import RunStore

    try:
        if price_per_mtok is not None and gpu_hour_price is not None:
            raise ValueError("give --price-per-mtok or --gpu-hour-price, not both")
        store = RunStore.open(run_dir)
        summary = _report(store, quiet=False, verifier=verifier)
        path = _write_html_report(store, summary, out, Prices(price_per_mtok, gpu_hour_price))
    except (ValueError, RunStoreError, FileNotFoundError) as error:
        fail(error)
    typer.echo(f"report: {path}")
