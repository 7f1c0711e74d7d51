"""``ttc run`` and its steps: ``sample``, ``verify``, ``analyze``, ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harness import DEFAULT_RUN
from harness.cli.app import (
    FLAGS,
    BytesPerSOption,
    CommandError,
    DtypeBytesOption,
    FlopsPerSOption,
    HardwareOption,
    JsonOption,
    Output,
    QuietOption,
    app,
    check_one_price,
    flag,
)
from harness.core.errors import OptionError, RunStoreError
from harness.core.forcing import DEFAULT_ANSWER_CUE, DEFAULT_ANSWER_TOKENS, DEFAULT_WAIT_WORD
from harness.core.options import DeclaresOptions
from harness.core.reasoning import DEFAULT_CLOSE_TAG, DEFAULT_OPEN_TAG

RunDir = Annotated[Path, typer.Argument(help="Run directory (as written by `ttc run` / `ttc sample`).")]
VerifierOption = Annotated[
    str | None,
    typer.Option(help="Verifier: numeric, math, python-tests, exact, choice or module:Class (default: the task's)."),
]
WorkersOption = Annotated[int | None, typer.Option(help="Verification worker processes (default: all cores).")]
ReasoningOption = Annotated[
    str,
    typer.Option(
        help="auto, on or off: judge only the answer after a reasoning model's thinking (docs/reasoning.md). "
        "auto: on when the chat template holds the think tags or the samples show thinking."
    ),
]
JudgeModelOption = Annotated[
    str | None,
    typer.Option(help="The judge model (--verifier judge): a checkpoint or Hub id, or a served model's name."),
]
JudgeEngineOption = Annotated[
    str, typer.Option(help="The judge's engine: vllm (in this process) or openai (a server at --judge-base-url).")
]
JudgeBaseUrlOption = Annotated[
    str | None,
    typer.Option(help="--judge-engine openai: the server's API root (default: $OPENAI_BASE_URL)."),
]
JudgeTemplateOption = Annotated[
    Path | None, typer.Option(help="A Jinja file replacing the judge's built-in prompt (docs/verifiers.md).")
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="Run on this Ray cluster: host:port, ray://host:port, or auto for the one this machine belongs to "
        "(docs/ray.md)."
    ),
]


# The flags that set one engine option or one task option each: flag parameter -> option name. They are the
# options' CLI spellings: each goes where ``--engine-option KEY=VALUE`` / ``--task-option KEY=VALUE`` would put
# it, and the engine's or task's declaration (its constructor) types, checks and defaults it.
ENGINE_FLAGS = {
    name: name
    for name in (
        "dtype",
        "gpu_memory_utilization",
        "max_model_len",
        "max_num_seqs",
        "enforce_eager",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "base_url",
        "api_key_env",
        "concurrency",
        "request_timeout",
        "max_retries",
    )
}
TASK_FLAGS = {
    **{name: name for name in ("split", "shots", "fewshot_data", "prompt_style", "prompt_template", "stop")},
    **{name: name for name in ("prompt_field", "answer_field", "id_field", "choices_field")},
    "metadata_field": "metadata_fields",
    "reference_field": "reference_fields",
}
FLAGS.update({f"engine_options.{option}": f"--{name.replace('_', '-')}" for name, option in ENGINE_FLAGS.items()})
FLAGS.update({f"task_options.{option}": f"--{name.replace('_', '-')}" for name, option in TASK_FLAGS.items()})


def backend_options(
    backend: type[DeclaresOptions],
    parameter: str,
    named: str,
    assignments: list[str] | None,
    flags: dict[str, str],
    given: dict[str, Any],
) -> dict[str, Any]:
    """An engine's or task's options (``parameter``: ``engine_options`` or ``task_options``) from the command
    line: its ``--engine-option``/``--task-option`` ``KEY=VALUE`` texts, each typed by the option's declaration,
    and its dedicated flags (``flags``: flag parameter -> option) among the command's arguments ``given``, where
    set. An option set by both is refused."""
    try:
        options = backend.parse_options(assignments or [], parameter, named)
    except OptionError as error:  # named as given: --engine-option KEY, even where KEY has a flag of its own
        key = error.option.partition(".")[2]
        raise CommandError(f"{flag(parameter)}{' ' + key if key else ''}: {error.message}") from None
    for name, option in flags.items():
        value = given[name]
        if value is None or value == []:
            continue
        if option in options:
            raise OptionError(f"{parameter}.{option}", f"given twice, also as {flag(parameter)} {option}=...")
        options[option] = str(value) if isinstance(value, Path) else value
    return options


def _make_sampling_command(name: str, full_pipeline: bool, help_text: str) -> None:
    def command(
        task: Annotated[
            str, typer.Option(help="Task: gsm8k, humaneval, mbpp, math500, aime, mcq, jsonl or module:Class.")
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
        engine_option: Annotated[
            list[str] | None,
            typer.Option(
                "--engine-option",
                help="KEY=VALUE: an option of the engine (its constructor's keyword parameter, typed by it); "
                "repeatable. An unknown key is refused with the engine's options listed.",
            ),
        ] = None,
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
            str | None, typer.Option(help="Model dtype for the engine (auto, bfloat16, float16, float32; vLLM: auto).")
        ] = None,
        gpu_memory_utilization: Annotated[
            float | None, typer.Option(help="Share of accelerator memory for vLLM (on CPU: of RAM).")
        ] = None,
        max_model_len: Annotated[
            int | None, typer.Option(help="Context length limit for the engine (vLLM: 4096).")
        ] = None,
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
            int | None,
            typer.Option(help="GPUs each engine shards every layer over (vLLM: 1); not part of the run's identity."),
        ] = None,
        pipeline_parallel_size: Annotated[
            int | None,
            typer.Option(help="GPUs each engine splits the layers over (vLLM: 1); not part of the run's identity."),
        ] = None,
        engines: Annotated[
            int,
            typer.Option(
                help="Engine replicas on Ray, fed from one queue (local cluster unless --ray-address); any number "
                "resumes any run."
            ),
        ] = 1,
        ray_address: RayAddressOption = None,
        task_option: Annotated[
            list[str] | None,
            typer.Option(
                "--task-option",
                help="KEY=VALUE: an option of the task (its constructor's keyword parameter, typed by it); "
                "repeatable. An unknown key is refused with the task's options listed.",
            ),
        ] = None,
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
        choices_field: Annotated[
            list[str] | None,
            typer.Option(help="mcq task: the field of the list of choices, or one field per choice (repeatable)."),
        ] = None,
        stop: Annotated[
            list[str] | None, typer.Option(help="Stop string replacing the task's (repeatable; jsonl, math500).")
        ] = None,
        verifier: VerifierOption = None,
        reasoning: ReasoningOption = "auto",
        think_tags: Annotated[
            str, typer.Option(help="The tags around a reasoning model's thinking: OPEN,CLOSE.")
        ] = f"{DEFAULT_OPEN_TAG},{DEFAULT_CLOSE_TAG}",
        thinking_budget: Annotated[
            int | None,
            typer.Option(
                help="Budget forcing (needs --reasoning on): a thinking that does not close within this many tokens "
                "is closed with the tag and --answer-cue and answers in at most --answer-tokens (docs/thinking.md)."
            ),
        ] = None,
        answer_tokens: Annotated[
            int, typer.Option(help="Most tokens of a budget-forced answer.")
        ] = DEFAULT_ANSWER_TOKENS,
        answer_cue: Annotated[
            str | None,
            typer.Option(
                help="Text put after the closing tag of a budget-forced sample, before its answer (default: a blank "
                "line, then 'Final answer:')."
            ),
        ] = None,
        min_thinking: Annotated[
            int | None,
            typer.Option(
                help="A thinking closed before this many tokens has the tag replaced by --wait-word and goes on (s1)."
            ),
        ] = None,
        wait_word: Annotated[
            str, typer.Option(help="What replaces the closing tag of a thinking closed before --min-thinking.")
        ] = DEFAULT_WAIT_WORD,
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
        arguments = dict(locals())
        output = Output(name, json_output, quiet)
        if adaptive_pilot and not full_pipeline:
            output.fail(OptionError("adaptive_pilot", "needs verdicts between its two rounds: use `ttc run`"))
        with output.errors():
            import harness
            from harness.engines.registry import engine_class
            from tasks import task_class

            engine_options = backend_options(
                engine_class(engine), "engine_options", f"engine {engine!r}", engine_option, ENGINE_FLAGS, arguments
            )
            task_options = backend_options(
                task_class(task), "task_options", f"task {task!r}", task_option, TASK_FLAGS, arguments
            )
            settings: dict[str, Any] = dict(
                data=data,
                model=model,
                problems=problems or None,
                samples=samples,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                max_tokens=max_tokens,
                seed=seed,
                out=out,
                engine=engine,
                engine_options=engine_options,
                task_options=task_options,
                verifier=verifier,
                engines=engines,
                ray_address=ray_address,
                reasoning=reasoning,
                think_tags=think_tags,
                thinking_budget=thinking_budget,
                answer_tokens=answer_tokens,
                answer_cue=DEFAULT_ANSWER_CUE if answer_cue is None else answer_cue,
                min_thinking=min_thinking,
                wait_word=wait_word,
                progress=output.progress_mode,
                log=output.log,
            )
            if not full_pipeline:
                sampled = harness.sample(task, **settings)
            else:
                result = harness.run(task, **settings, workers=workers, adaptive_pilot=adaptive_pilot)
        if not full_pipeline:
            output.result(**sampled.to_json())
            return
        if output.human:
            from harness.reporting.terminal import print_summary

            print_summary(result.summary)
        output.result(**result.to_json())

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
    verifier: Annotated[
        str | None,
        typer.Option(
            help="Verifier: numeric, math, python-tests, exact, judge (an LLM judge: --judge-model) or module:Class "
            "(default: the task's)."
        ),
    ] = None,
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    reasoning: Annotated[
        str,
        typer.Option(
            help="auto (as the run was sampled), on (judge the answer after the thinking) or off (the whole text)."
        ),
    ] = "auto",
    think_tags: Annotated[
        str | None, typer.Option(help="The tags around the thinking: OPEN,CLOSE (default: the run's).")
    ] = None,
    judge_model: JudgeModelOption = None,
    judge_engine: JudgeEngineOption = "vllm",
    judge_base_url: JudgeBaseUrlOption = None,
    judge_template: JudgeTemplateOption = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Judge every stored sample that has no verdict yet (resumable; runs on all cores, or a Ray cluster's)."""
    import harness

    output = Output("verify", json_output, quiet)
    with output.errors():
        verification = harness.verify(
            run_dir,
            verifier,
            workers=workers,
            ray_address=ray_address,
            reasoning=reasoning,
            think_tags=think_tags,
            judge_model=judge_model,
            judge_engine=judge_engine,
            judge_base_url=judge_base_url,
            judge_template=judge_template,
            progress=output.progress_mode,
            log=output.log,
        )
    output.result(run=str(run_dir), verification=verification)


def parse_budgets(text: str, option: str) -> list[Any]:
    """``512,1024,2048``: comma-separated numbers (whole, increasing: checked by the library), else
    ``OptionError(option, ...)``."""
    values: list[Any] = []
    for part in text.split(","):
        try:
            number = float(part)
        except ValueError:
            raise OptionError(option, f"expected comma-separated numbers of tokens, got {part.strip()!r}") from None
        values.append(int(number) if number.is_integer() else number)
    return values


@app.command("sweep")
def sweep_command(
    run_dir: RunDir,
    thinking_budgets: Annotated[
        str,
        typer.Option(
            help="Increasing thinking budgets, comma-separated (512,1024,2048,4096): each at most the run's own "
            "(its --thinking-budget, else --max-tokens)."
        ),
    ],
    answer_tokens: Annotated[
        int | None, typer.Option(help="Most tokens of each forced answer (default: the run's, else 512).")
    ] = None,
    answer_cue: Annotated[
        str | None,
        typer.Option(
            help="Text after the closing tag, before the forced answer (default: the run's cue, else "
            "a blank line and 'Final answer:')."
        ),
    ] = None,
    engine_option: Annotated[
        list[str] | None,
        typer.Option(
            "--engine-option",
            help="KEY=VALUE: an option of the run's engine for the forced answers (default: the run's settings); "
            "repeatable.",
        ),
    ] = None,
    workers: WorkersOption = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Every stored sample of a reasoning run at each thinking budget, from its one trace: cut at B thinking
    tokens, the answer forced from the cached prefix, judged; stored per budget in the run (resumable)."""
    import harness

    output = Output("sweep", json_output, quiet)
    with output.errors():
        from harness.engines.registry import engine_class
        from harness.store import RunStore

        budgets = parse_budgets(thinking_budgets, "thinking_budgets")
        engine = RunStore.open(run_dir).manifest["config"]["engine"]
        engine_options = backend_options(
            engine_class(engine), "engine_options", f"engine {engine!r}", engine_option, {}, {}
        )
        report = harness.sweep(
            run_dir,
            budgets,
            answer_tokens=answer_tokens,
            answer_cue=answer_cue,
            engine_options=engine_options,
            workers=workers,
            progress=output.progress_mode,
            log=output.log,
        )
    output.result(**report)


@app.command("analyze")
def analyze_command(
    run_dir: RunDir,
    verifier: VerifierOption = None,
    verifier_error: Annotated[
        str | None,
        typer.Option(
            help="The verifier's false-positive and false-negative rates, FPR,FNR (e.g. 0.05,0.1): pass@k corrected "
            "for them is shown beside the raw curve (docs/verifiers.md)."
        ),
    ] = None,
    verifier_error_from: Annotated[
        Path | None,
        typer.Option(
            help="An agreement's JSON (`ttc agreement` on an audited subset): correct pass@k for its rates, with "
            "their uncertainty."
        ),
    ] = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Compute coverage (pass@k for every k) with intervals, the law and the forecast: summary.json, coverage.png."""
    import harness

    output = Output("analyze", json_output, quiet)
    with output.errors():
        summary = harness.analyze(
            run_dir, verifier, verifier_error=verifier_error, verifier_error_from=verifier_error_from
        )
    output.echo(f"pass@1 {summary['pass_at_1']:.4f}; wrote {Path(run_dir) / 'summary.json'}")
    if "corrected" in summary and output.human:
        from harness.reporting.terminal import print_corrected

        print_corrected(summary)
    surface = summary.get("surface")
    if surface:
        from harness.reporting.terminal import format_surface

        output.echo(format_surface(surface))
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
    hardware: HardwareOption = None,
    flops_per_s: FlopsPerSOption = None,
    bytes_per_s: BytesPerSOption = None,
    model_config: Annotated[
        Path | None, typer.Option(help="eFLOPs: the model's config.json (default: the run's model's).")
    ] = None,
    dtype_bytes: DtypeBytesOption = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
) -> None:
    """Print a run's table and write report.html (one self-contained page), from its summary.json."""
    import harness

    output = Output("report", json_output, quiet)
    check_one_price(output, price_per_mtok, gpu_hour_price)
    with output.errors():
        stored = harness.load_run(run_dir, verifier)
        if not stored.is_run_directory:
            raise RunStoreError(f"{run_dir} is not a run directory")
        path = stored.report(
            out,
            price_per_mtok=price_per_mtok,
            gpu_hour_price=gpu_hour_price,
            hardware=hardware,
            flops_per_s=flops_per_s,
            bytes_per_s=bytes_per_s,
            model_config=model_config,
            dtype_bytes=dtype_bytes,
        )
        summary = stored.summary
    if output.human:
        from harness.reporting.terminal import print_summary

        print_summary(summary)
    output.echo(f"report: {path}")
    output.result(run=str(run_dir), report=str(path), summary=summary)
