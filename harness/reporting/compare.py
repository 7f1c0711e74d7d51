"""Compare runs (models or settings) side by side on the same task: ``ttc compare RUN_A RUN_B ...``.

For each run: its coverage curve with intervals, the fitted power law and forecast, the k at which it reaches
common coverage targets (measured where the sampled k reaches them, else forecast and flagged), and what a
sample costs. Then the compute-matched comparison of Large Language Monkeys (Brown et al. 2024, the cost
comparison of their Section 3): coverage at equal FLOPs per problem, at equal eFLOPs (memory-aware, Kinetics)
when a hardware is given, and at equal money when prices are given.

Costs per problem at k samples are linear in k: ``k x per_sample + prefill``, with FLOPs per sample
``2 x parameters x generated tokens per sample`` and each prompt prefilled once per problem (``2 x parameters
x prompt tokens``); money is (k x tokens per sample + prompt tokens) / 1e6 x price per million tokens. At a
budget B a run affords ``k = floor((B - prefill) / per_sample)`` samples per problem; its coverage there is the
measured pass@k when k is within its samples, else the forecast (flagged), with a 90% interval either way.

The budgets are those at which the run with the costliest sample draws k = 1, 2, 4, ..., its samples: every
run can afford at least one sample at each of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import DataError, OptionError, check_number
from harness.forecasting.budget import K_LIMIT, smallest_k
from harness.forecasting.cost_model import Hardware
from harness.forecasting.costs import inference_flops, token_money
from harness.forecasting.fitted import fit_laws
from harness.forecasting.forecast import DEFAULT_CONFIDENCE, CoverageModel
from harness.metrics.analysis import coverage_summary, measured_coverage
from harness.metrics.counts import Counts
from harness.metrics.estimators import log_spaced_ks
from harness.reporting.run_costs import eflops_per_problem, run_cost_model
from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from harness.store.completeness import completeness
from harness.store.outputs import check_output_folder

COMPARE_TARGETS = (0.5, 0.8, 0.9, 0.95)
COST_UNITS = (("flops", "FLOPs"), ("eflops", "eFLOPs"), ("money", "money"))  # compute-matched comparisons


@dataclass
class ComparedRun:
    """One run of a comparison, its counts restricted to the problems every run shares."""

    label: str
    path: Path
    model: str | None
    task: str
    verdict_set: str
    counts: Counts
    problems_in_run: int
    tokens_per_sample: float | None
    prompt_tokens_per_problem: float | None
    parameters: float | None
    price_per_mtok: float | None
    eflops: tuple[float, float] | None = None  # (per sample, prefill per problem) on the hardware compared on

    def missing_cost_inputs(self, unit: str) -> list[str]:
        """What a cost in ``unit`` (flops, eflops or money) needs and this run lacks."""
        if unit == "eflops":
            return [] if self.eflops is not None else ["the hardware (--hardware or --flops-per-s/--bytes-per-s)"]
        needed = {
            "tokens per sample": self.tokens_per_sample,
            "prompt tokens": self.prompt_tokens_per_problem,
            **({"model parameters (--parameters)": self.parameters} if unit == "flops" else {}),
            **({"price (--price-per-mtok)": self.price_per_mtok} if unit == "money" else {}),
        }
        return [name for name, value in needed.items() if value is None]

    def per_problem_cost(self, unit: str) -> tuple[float, float] | None:
        """(cost of one more sample, cost of prefilling the prompt) per problem, in FLOPs, eFLOPs or money; None if
        unknown."""
        if unit == "eflops":
            return self.eflops
        tokens, prompt = self.tokens_per_sample, self.prompt_tokens_per_problem
        if tokens is None or prompt is None:
            return None
        if unit == "flops":
            if self.parameters is None:
                return None
            return inference_flops(self.parameters, tokens, 0.0), inference_flops(self.parameters, 0.0, prompt)
        if self.price_per_mtok is None:
            return None
        return token_money(tokens, self.price_per_mtok), token_money(prompt, self.price_per_mtok)


def _per_run(values: Sequence[Any] | None, runs: int, name: str) -> list[Any]:
    """An option given once for all runs or once per run."""
    if not values:
        return [None] * runs
    if len(values) == 1:
        return list(values) * runs
    if len(values) != runs:
        raise OptionError(name, f"give one value for all runs or one per run ({runs}), not {len(values)}")
    return list(values)


def load_runs(
    paths: Sequence[str | Path],
    *,
    labels: Sequence[str] | None = None,
    strict: bool = False,
    verifier: str | None = None,
    parameters: Sequence[float] | None = None,
    prices: Sequence[float] | None = None,
    hardware: Hardware | None = None,
    model_configs: Sequence[str | Path] | None = None,
    dtype_bytes: float | None = None,
    log: Callable[[str], None] = print,
) -> list[ComparedRun]:
    """Open the runs, check they are on one task, and restrict them to their shared problems (``strict``:
    refuse differing problem sets instead). ``parameters`` overrides the model size recorded in a run's
    manifest (needed for FLOPs where a server-backed engine could not count it). With ``hardware``, each run's
    memory-aware cost (eFLOPs, ``harness.forecasting.cost_model``) from its model's config.json
    (``model_configs``, once for all runs or once per run; default: each run's model's), its measured tokens per
    sample and prompts: runs are then also matched at equal eFLOPs."""
    if len(paths) < 2:
        raise OptionError("paths", "compare needs at least two run directories")
    if len({Path(path).resolve() for path in paths}) != len(paths):
        raise OptionError("paths", "a run directory is listed twice")
    labels = list(labels) if labels else _default_labels(paths)
    if len(labels) != len(paths):
        raise OptionError("labels", f"give one per run ({len(paths)}), not {len(labels)}")
    if len(set(labels)) != len(labels):
        raise OptionError("labels", f"labels must differ: {labels}")
    parameters = _per_run(parameters, len(paths), "parameters")
    prices = _per_run(prices, len(paths), "prices")
    for size, price in zip(parameters, prices):
        check_number("parameters", size, above=0)
        check_number("prices", price, at_least=0)
    stores = [RunStore.open(path) for path in paths]
    tasks = [store.manifest["config"].get("task") for store in stores]
    if len(set(tasks)) > 1:
        raise DataError(
            "the runs are on different tasks: "
            + ", ".join(f"{label} on {task!r}" for label, task in zip(labels, tasks))
            + "; compare runs of one task"
        )
    runs = []
    for store, label, size, price in zip(stores, labels, parameters, prices):
        key = store.resolve_verdict_key(verifier)
        counts = run_counts(store, key)
        usage = store.usage()
        note = completeness(store, key).note()
        if note:
            log(f"{label}: {note}")
        runs.append(
            ComparedRun(
                label=label,
                path=store.path,
                model=store.manifest.get("model", {}).get("name"),
                task=tasks[0],
                verdict_set=key,
                counts=counts,
                problems_in_run=len(counts),
                tokens_per_sample=usage["output_tokens_per_sample"],
                prompt_tokens_per_problem=usage["prompt_tokens_per_problem"],
                parameters=size if size is not None else usage["model_parameters"],
                price_per_mtok=price,
            )
        )
    configs = _per_run(model_configs, len(paths), "model_configs")
    cost_models = (
        [run_cost_model(store, config, dtype_bytes) for store, config in zip(stores, configs)] if hardware else []
    )
    _restrict_to_shared_problems(runs, strict, log)
    _check_same_references(runs, stores)
    for run, store, model in zip(runs, stores, cost_models):
        run.eflops = eflops_per_problem(store, run.counts.problem_ids.tolist(), model, hardware)
    return runs


def _check_same_references(runs: Sequence[ComparedRun], stores: Sequence[RunStore]) -> None:
    """Refuse runs whose shared problem ids are judged against different references (different data)."""
    shared = set(runs[0].counts.problem_ids.tolist())
    first = {problem.problem_id: problem.reference for problem in stores[0].problems() if problem.problem_id in shared}
    for run, store in zip(runs[1:], stores[1:]):
        differing = sorted(
            problem.problem_id
            for problem in store.problems()
            if problem.problem_id in shared and problem.reference != first[problem.problem_id]
        )
        if differing:
            raise DataError(
                f"{runs[0].label} and {run.label} hold different problems under the same ids "
                f"({len(differing)} differ, first {differing[0]!r}): they come from different data"
            )


def _default_labels(paths: Sequence[str | Path]) -> list[str]:
    names = [Path(path).resolve().name for path in paths]
    return names if len(set(names)) == len(names) else [str(path) for path in paths]


def _restrict_to_shared_problems(runs: list[ComparedRun], strict: bool, log: Callable[[str], None]) -> None:
    """Keep only problems that every run has verdicts for, saying so; with ``strict``, refuse instead."""
    id_sets = [set(run.counts.problem_ids.tolist()) for run in runs]
    shared = set.intersection(*id_sets)
    if all(ids == shared for ids in id_sets):
        return
    sizes = ", ".join(f"{run.label} has {run.problems_in_run}" for run in runs)
    if strict:
        raise DataError(
            f"the runs' problem sets differ ({sizes}; {len(shared)} shared) and a strict comparison refuses them"
        )
    if not shared:
        raise DataError(f"the runs share no problem ({sizes})")
    log(f"problem sets differ ({sizes}): comparing on the {len(shared)} problems all runs share")
    for run in runs:
        mask = np.array([problem_id in shared for problem_id in run.counts.problem_ids.tolist()])
        run.counts = run.counts.subset(mask)


def _coverage_at(counts: Counts, model: CoverageModel, k: int, confidence: float) -> dict[str, Any]:
    """Coverage at k samples per problem: measured (unbiased pass@k, bootstrap interval) within the sampled
    k, else the fitted model's forecast."""
    if k < 1:
        return {"k": int(k), "coverage": 0.0, "low": 0.0, "high": 0.0, "source": "no sample affordable"}
    if k <= int(counts.num_samples.min()):
        coverage, low, high = measured_coverage(counts, [k], confidence).at(k)
        return {"k": int(k), "coverage": coverage, "low": low, "high": high, "source": "measured"}
    coverage, low, high = model.interval(int(k), confidence)
    if np.isnan(coverage):  # too few successes for a law: the bounds only
        return {"k": int(k), "coverage": None, "low": low, "high": high, "source": "bound"}
    return {"k": int(k), "coverage": coverage, "low": low, "high": high, "source": "forecast"}


def _target_k(curve: np.ndarray, model: CoverageModel, target: float, confidence: float) -> dict[str, Any]:
    """Smallest k reaching ``target``: on the measured curve if it gets there, else by the forecast."""
    reached = np.flatnonzero(curve >= target)
    if reached.size:
        return {"target": target, "k": int(reached[0]) + 1, "source": "measured"}
    if model.name == "bound":
        return {"target": target, "k": None, "source": "no forecast (too few successes)"}
    k = smallest_k(model, target, confidence)
    return {"target": target, "k": k, "source": "forecast" if k is not None else f"not reached by k = {K_LIMIT:,}"}


def compare_runs(
    runs: Sequence[ComparedRun],
    targets: Sequence[float] = COMPARE_TARGETS,
    confidence: float = DEFAULT_CONFIDENCE,
    method: str = "auto",
    hardware: Hardware | None = None,
) -> dict[str, Any]:
    """The comparison (the ``compare.json`` content); each run's power law and forecast model fitted once.
    ``hardware``: what the runs' eFLOPs were priced on (``load_runs``), named in the result."""
    fitted = {run.label: fit_laws(run.counts, method, confidence) for run in runs}
    models = {}
    for label, laws in fitted.items():
        if laws.model is None:
            raise DataError(f"{label}: no forecast: {laws.errors['forecast']}")
        models[label] = laws.model
    entries = []
    for run in runs:
        summary = coverage_summary(run.counts, confidence=confidence)
        law_summary = fitted[run.label].summary()
        flops = run.per_problem_cost("flops")
        money = run.per_problem_cost("money")
        entries.append(
            {
                "label": run.label,
                "run": str(run.path),
                "model": run.model,
                "verdict_set": run.verdict_set,
                "problems_in_run": run.problems_in_run,
                "samples_per_problem": summary["samples_per_problem"],
                "pass_at_1": summary["pass_at_1"],
                "pass_at_k": summary["pass_at_k"],
                "coverage_all_k": summary["coverage_all_k"],
                "fit": law_summary["fit"],
                "forecast": law_summary["forecast"],
                "targets": [
                    _target_k(np.asarray(summary["coverage_all_k"]), models[run.label], target, confidence)
                    for target in targets
                ],
                "tokens_per_sample": run.tokens_per_sample,
                "prompt_tokens_per_problem": run.prompt_tokens_per_problem,
                "parameters": run.parameters,
                "flops_per_sample": None if flops is None else flops[0],
                "prefill_flops_per_problem": None if flops is None else flops[1],
                "eflops_per_sample": None if run.eflops is None else run.eflops[0],
                "prefill_eflops_per_problem": None if run.eflops is None else run.eflops[1],
                "price_per_mtok": run.price_per_mtok,
                "money_per_sample": None if money is None else money[0],
                "prefill_money_per_problem": None if money is None else money[1],
            }
        )
    return {
        "task": runs[0].task,
        "problems": len(runs[0].counts),
        "problems_in_runs": {run.label: run.problems_in_run for run in runs},
        "restricted_to_shared_problems": any(run.problems_in_run != len(run.counts) for run in runs),
        "confidence": confidence,
        "method": method,
        "targets": list(targets),
        "runs": entries,
        "hardware": None
        if hardware is None
        else {"name": hardware.name, "flops_per_s": hardware.flops_per_s, "bytes_per_s": hardware.bytes_per_s},
        "compute_matched": {unit: compute_matched(runs, models, unit, confidence) for unit, _ in COST_UNITS},
    }


def compute_matched(
    runs: Sequence[ComparedRun], models: Mapping[str, CoverageModel], unit: str, confidence: float
) -> dict[str, Any]:
    """Coverage of every run at equal cost per problem (``unit``: flops, eflops or money), or why it cannot be
    had."""
    costs: dict[str, tuple[float, float]] = {}
    unknown = []
    for run in runs:
        cost = run.per_problem_cost(unit)
        if cost is None:
            unknown.append(run)
        else:
            costs[run.label] = cost
    if unknown:
        reasons = [f"{run.label}: {', '.join(run.missing_cost_inputs(unit))} unknown" for run in unknown]
        return {"budgets": [], "missing": "; ".join(reasons)}
    costliest = max(runs, key=lambda run: costs[run.label][0])
    per_sample, prefill = costs[costliest.label]
    rows = []
    for k in log_spaced_ks(int(costliest.counts.num_samples.min())):
        budget = float(k * per_sample + prefill)
        coverage_of_run = {}
        for run in runs:
            run_per_sample, run_prefill = costs[run.label]
            # a relative tolerance keeps the budget's own k from rounding down by a floating-point ulp
            affordable = int(np.floor((budget - run_prefill) / run_per_sample * (1 + 1e-12)))
            coverage_of_run[run.label] = _coverage_at(run.counts, models[run.label], affordable, confidence)
        rows.append({"budget": budget, "runs": coverage_of_run})
    return {"budgets": rows, "missing": None, "budget_run": costliest.label}


COMPARISON_FILES = ("compare.json", "compare.html")


def write_comparison(result: Mapping[str, Any], runs: Sequence[ComparedRun], out: Path) -> tuple[Path, Path]:
    """``compare.json`` and ``compare.html`` (figures embedded) in ``out`` (checked: ``check_output_folder``)."""
    from harness.forecasting.laws import PowerLaw
    from harness.reporting.figures import observed_curve, plot_compared_coverage
    from harness.reporting.html import embedded_figure, template_environment

    check_output_folder(out, "out", COMPARISON_FILES)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "compare.json"
    json_path.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    confidence = result["confidence"]
    curves = {run.label: observed_curve(run.counts, confidence) for run in runs}
    laws = {entry["label"]: PowerLaw.from_json(entry["fit"]) for entry in result["runs"] if entry["fit"]}
    right = 10 * max(int(run.counts.num_samples.min()) for run in runs)
    figures = {
        "k": embedded_figure(
            lambda path: plot_compared_coverage(
                path, curves, "samples per problem k", f"{result['task']}: coverage vs samples", laws, right
            )
        )
    }
    entries = {entry["label"]: entry for entry in result["runs"]}
    for unit, name in COST_UNITS:
        per_sample, prefill = f"{unit}_per_sample", f"prefill_{unit}_per_problem"
        if any(entry[per_sample] is None for entry in entries.values()):
            continue
        costed = {  # x = cost per problem of k samples
            label: (ks * entries[label][per_sample] + entries[label][prefill], mean, low, high)
            for label, (ks, mean, low, high) in curves.items()
        }
        figures[unit] = embedded_figure(
            partial(
                plot_compared_coverage,
                curves=costed,
                xlabel=f"{name} per problem",
                title=f"{result['task']}: coverage at equal {name}",
            )
        )
    html = (
        template_environment()
        .get_template("compare.html.jinja")
        .render(
            title=f"{result['task']}: " + " vs ".join(entry["label"] for entry in result["runs"]),
            result=result,
            figures=figures,
            missing="—",
        )
    )
    html_path = out / "compare.html"
    html_path.write_text(html, encoding="utf-8")
    return json_path, html_path


def print_comparison(result: Mapping[str, Any], console: Any = None) -> None:
    """Three terminal tables: the runs, the k reaching each target, coverage at equal FLOPs (and money)."""
    from rich.console import Console
    from rich.table import Table

    from harness.reporting.format import format_quantity

    console = console or Console()
    percent = round(100 * result["confidence"])
    runs = result["runs"]
    table = Table(title=f"{result['task']} · {result['problems']} problems compared", title_justify="left")
    for column in ("run", "model", "samples", "pass@1", "pass@n", "power law a, b", "tokens/sample", "FLOPs/sample"):
        table.add_column(column, justify="left" if column in ("run", "model") else "right")
    for entry in runs:
        fit = entry["fit"]
        table.add_row(
            entry["label"],
            str(entry["model"]),
            str(entry["samples_per_problem"]["min"]),
            f"{entry['pass_at_1']:.3f}",
            f"{entry['coverage_all_k'][-1]:.3f}",
            "—" if not fit else f"{fit['a']:.3g}, {fit['b']:.3g}",
            format_quantity(entry["tokens_per_sample"]),
            format_quantity(entry["flops_per_sample"]),
        )
    console.print(table)
    title = "samples per problem to reach a coverage target (* forecast)"
    targets = Table(title=title, title_justify="left", min_width=len(title))
    targets.add_column("target", justify="right")
    for entry in runs:
        targets.add_column(entry["label"], justify="right")
    for row, target in enumerate(result["targets"]):
        cells = []
        for entry in runs:
            reached = entry["targets"][row]
            if reached["k"] is None:
                cells.append("no law" if reached["source"].startswith("no forecast") else "—")
                continue
            cells.append(f"{reached['k']:,}" + ("*" if reached["source"] == "forecast" else ""))
        targets.add_row(f"{target:.0%}", *cells)
    console.print(targets)
    for unit, name in COST_UNITS:
        matched = result["compute_matched"].get(unit)
        if matched is None:  # a comparison written before eFLOPs
            continue
        if not matched["budgets"]:
            console.print(f"coverage at equal {name}: not available ({matched['missing']})")
            continue
        table = Table(
            title=f"coverage at equal {name} per problem [{percent}% interval] (* forecast)", title_justify="left"
        )
        table.add_column(f"{name} per problem", justify="right")
        for entry in runs:
            table.add_column(entry["label"], justify="right")
        for budget in matched["budgets"]:
            cells = []
            for entry in runs:
                point = budget["runs"][entry["label"]]
                if point["coverage"] is None:
                    cells.append(f"k={point['k']:,}: at most {point['high']:.3f} (no forecast)")
                    continue
                star = "*" if point["source"] == "forecast" else ""
                cells.append(
                    f"k={point['k']:,}{star}: {point['coverage']:.3f} [{point['low']:.3f}, {point['high']:.3f}]"
                )
            table.add_row(format_quantity(budget["budget"]), *cells)
        console.print(table)
