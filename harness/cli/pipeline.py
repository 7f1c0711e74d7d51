"""``ttc run`` and its steps: ``sample``, ``verify``, ``analyze``, ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.app import CommandError, JsonOption, Output, QuietOption, app, flag
from harness.core.errors import OptionError, RunStoreError, check_number
from harness.pipeline.options import DEFAULT_RUN

RunDir = Annotated[Path, typer.Argument(help="Run directory (as written by `ttc run` / `ttc sample`).")]
VerifierOption = Annotated[
    str | None,
    typer.Option(help="Verifier: numeric, math, python-tests, exact or module:Class (default: the task's)."),
]
WorkersOption = Annotated[int | None, typer.Option(help="Verification worker processes (default: all cores).")]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="Run on this Ray cluster: host:port, ray://host:port, or auto for the one this machine belongs to "
        "(docs/ray.md)."
    ),
]


def _make_sampling_command(name: str, full_pipeline: bool, help_text: str) -> None:
    def command(
        task: Annotated[
            str, typer.Option(help="Task: gsm8k, humaneval, mbpp, math500, jsonl or module:Class.")
        ] = DEFAULT_RUN["task"],
        data: Annotated[str | None, typer.Option(help="Local JSONL file or Hugging Face Hub dataset id.")] = None,
        model: Annotated[
            str | None, typer.Option(help="Hub id or local checkpoint (default: embedded SmolLM2-135M-Instruct).")
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
            Path | None, typer.Option(help="Run directory (default: results/<task>-<model>-<config hash>).")
        ] = None,
        engine: Annotated[
            str,
            typer.Option(help="Sampling engine: vllm (local), openai (any OpenAI-compatible server) or module:Class."),
        ] = "vllm",
        base_url: Annotated[
            str | None,
            typer.Option(help="--engine openai: API root, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL)."),
        ] = None,
        api_key_env: Annotated[
            str | None,
            typer.Option(
                help="--engine openai: environment variable holding the API key (default: OPENAI_API_KEY, if set)."
            ),
        ] = None,
        concurrency: Annotated[
            int | None, typer.Option(help="--engine openai: HTTP requests in flight at once (default 8).")
        ] = None,
        request_timeout: Annotated[
            float | None, typer.Option(help="--engine openai: seconds one HTTP request may take (default 600).")
        ] = None,
        max_retries: Annotated[
            int | None,
            typer.Option(
                help="--engine openai: retries of a failed request (429, 5xx, timeout) before stopping (default 5)."
            ),
        ] = None,
        dtype: Annotated[
            str, typer.Option(help="Model dtype for the engine (auto, bfloat16, float16, float32).")
        ] = "auto",
        gpu_memory_utilization: Annotated[
            float | None, typer.Option(help="Share of accelerator memory for vLLM (on CPU: of RAM).")
        ] = None,
        max_model_len: Annotated[int, typer.Option(help="Context length limit for the engine.")] = 4096,
        max_num_seqs: Annotated[int | None, typer.Option(help="Most sequences the engine decodes at once.")] = None,
        enforce_eager: Annotated[
            bool | None,
            typer.Option(
                "--enforce-eager/--compile",
                help="Skip graph compilation (faster start, slower decode) or compile. Default: eager on CPU, "
                "compiled on GPU.",
            ),
        ] = None,
        tensor_parallel_size: Annotated[
            int, typer.Option(help="GPUs each engine shards every layer over (vLLM); not part of the run's identity.")
        ] = 1,
        pipeline_parallel_size: Annotated[
            int, typer.Option(help="GPUs each engine splits the layers over (vLLM); not part of the run's identity.")
        ] = 1,
        engines: Annotated[
            int,
            typer.Option(
                help="Engine replicas on Ray, fed from one queue (local cluster unless --ray-address); any number "
                "resumes any run."
            ),
        ] = 1,
        ray_address: RayAddressOption = None,
        split: Annotated[str | None, typer.Option(help="Dataset split, for tasks that have several.")] = None,
        shots: Annotated[int | None, typer.Option(help="Few-shot exemplars, for tasks that use them.")] = None,
        fewshot_data: Annotated[str | None, typer.Option(help="Where few-shot exemplars come from.")] = None,
        prompt_style: Annotated[
            str | None, typer.Option(help="completion or chat, for tasks that offer both (default: the task's).")
        ] = None,
        prompt_template: Annotated[
            Path | None, typer.Option(help="Prompt template file overriding the task's.")
        ] = None,
        prompt_field: Annotated[str | None, typer.Option(help="jsonl task: field holding the prompt.")] = None,
        answer_field: Annotated[
            str | None, typer.Option(help="jsonl task: field holding the reference answer.")
        ] = None,
        id_field: Annotated[str | None, typer.Option(help="jsonl task: field holding a problem id.")] = None,
        metadata_field: Annotated[
            list[str] | None, typer.Option(help="jsonl task: a field kept for per-group analysis (repeatable).")
        ] = None,
        reference_field: Annotated[
            list[str] | None, typer.Option(help="jsonl task: a field passed to the verifier (repeatable).")
        ] = None,
        stop: Annotated[
            list[str] | None, typer.Option(help="Stop string replacing the task's (repeatable; jsonl, math500).")
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
        output = Output(name, json_output, quiet)
        if adaptive_pilot and not full_pipeline:
            output.fail(OptionError("adaptive_pilot", "needs verdicts between its two rounds: use `ttc run`"))
        server_options = {
            "base_url": base_url,
            "api_key_env": api_key_env,
            "concurrency": concurrency,
            "request_timeout": request_timeout,
            "max_retries": max_retries,
        }
        if engine == "openai":
            if tensor_parallel_size != 1 or pipeline_parallel_size != 1:
                output.fail(
                    ValueError(
                        "--tensor-parallel-size, --pipeline-parallel-size: the server sets them for --engine openai"
                    )
                )
            engine_options = {key: value for key, value in server_options.items() if value is not None}
        else:
            given = [flag(key) for key, value in server_options.items() if value is not None]
            if given:
                output.fail(ValueError(f"{', '.join(given)}: only for --engine openai (the engine is {engine!r})"))
            engine_options = {
                "dtype": dtype,
                "gpu_memory_utilization": gpu_memory_utilization,
                "max_model_len": max_model_len,
                "max_num_seqs": max_num_seqs,
                "enforce_eager": enforce_eager,
            }
            # only where asked: an engine class of one's own need not take them
            if tensor_parallel_size != 1:
                engine_options["tensor_parallel_size"] = tensor_parallel_size
            if pipeline_parallel_size != 1:
                engine_options["pipeline_parallel_size"] = pipeline_parallel_size
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
        }
        settings: dict[str, Any] = dict(
            data=data,
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
        scale = dict(engines=engines, ray_address=ray_address)
        task_options = {key: value for key, value in task_options.items() if value is not None}
        if full_pipeline:
            from harness.pipeline.api import run

            with output.errors():
                result = run(
                    task,
                    **settings,
                    **scale,
                    task_options=task_options,
                    verifier=verifier,
                    workers=workers,
                    adaptive_pilot=adaptive_pilot,
                    progress=output.progress_mode,
                    log=output.log,
                )
            if output.human:
                from harness.reporting.terminal import print_summary

                print_summary(result.summary)
            output.result(**result.to_json())
            return

        from harness.engines.ray_pool import ScaleOut
        from harness.pipeline.api import task_options_for
        from harness.pipeline.options import SampleOptions
        from harness.pipeline.prepare import prepare
        from harness.pipeline.sample import sample_run

        with output.errors():
            options = SampleOptions(
                task=task,
                task_options=task_options_for(task, task_options, verifier),
                scale=ScaleOut(**scale),
                **settings,
            )
            report = sample_run(prepare(options), progress_mode=output.progress_mode, log=output.log)
            report.store.close()
        output.result(run=str(report.store.path), sampling=report.to_dict())

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
    ray_address: RayAddressOption = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Judge every stored sample that has no verdict yet (resumable; runs on all cores, or a Ray cluster's)."""
    from harness.engines.ray_pool import ScaleOut
    from harness.pipeline.api import verification_fields
    from harness.pipeline.verify import verify
    from harness.store import RunStore

    output = Output("verify", json_output, quiet)
    with output.errors():
        check_number("workers", workers, at_least=1)  # as harness.run() checks it
        scale = ScaleOut(ray_address=ray_address)
        with RunStore.open(run_dir, writable=True) as store:
            outcome = verify(store, verifier, workers=workers, progress_mode=output.progress_mode, scale=scale)
    reasons = ", ".join(f"{name} {count}" for name, count in sorted(outcome.reasons.items()))
    output.log(f"verified {outcome.verified} samples into {outcome.key}" + (f": {reasons}" if reasons else ""))
    output.result(run=str(run_dir), verification=verification_fields(outcome))


@app.command("analyze")
def analyze_command(
    run_dir: RunDir, verifier: VerifierOption = None, quiet: QuietOption = False, json_output: JsonOption = False
) -> None:
    """Compute coverage (pass@k for every k) with intervals, the law and the forecast: summary.json, coverage.png."""
    from harness.pipeline.analyze import analyze
    from harness.store import RunStore

    output = Output("analyze", json_output, quiet)
    with output.errors():
        summary = analyze(RunStore.open(run_dir), verifier)
    output.echo(f"pass@1 {summary['pass_at_1']:.4f}; wrote {Path(run_dir) / 'summary.json'}")
    if summary["completeness"]["note"]:
        output.echo(summary["completeness"]["note"])
    output.result(run=str(run_dir), summary=summary)


@app.command("report")
def report_command(
    run_dir: RunDir,
    verifier: VerifierOption = None,
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default: RUN_DIR/report.html).")] = None,
    price_per_mtok: Annotated[
        float | None, typer.Option("--price-per-mtok", help="Money per million tokens, for the cost columns.")
    ] = None,
    gpu_hour_price: Annotated[
        float | None, typer.Option("--gpu-hour-price", help="Money per GPU hour, for the cost columns.")
    ] = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Print a run's table and write report.html (one self-contained page), from its summary.json."""
    from harness.forecasting.costs import Prices
    from harness.pipeline.api import load_run
    from harness.reporting.html import write_report
    from harness.store.outputs import check_output_path

    output = Output("report", json_output, quiet)
    if price_per_mtok is not None and gpu_hour_price is not None:
        output.fail(CommandError("give --price-per-mtok or --gpu-hour-price, not both"))
    with output.errors():
        prices = Prices(price_per_mtok, gpu_hour_price)
        if out is not None:
            check_output_path(out, "out", own_run=run_dir, own_files=("report.html",))
        stored = load_run(run_dir, verifier)
        if not stored.is_run_directory:
            raise RunStoreError(f"{run_dir} is not a run directory")
        summary = stored.summary
        path = write_report(stored.store, summary, out, prices=prices)
    if output.human:
        from harness.reporting.terminal import print_summary

        print_summary(summary)
    output.echo(f"report: {path}")
    output.result(run=str(run_dir), report=str(path), summary=summary)
