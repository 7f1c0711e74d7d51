"""report.html: one self-contained page per run, to read offline or paste into a paper draft or a PR.

Built from the ``analyze`` summary, which holds everything computed about the run (coverage, the fitted
law, the forecast, the budget rows; the report fits nothing), and from the run store for the configuration,
the selectors and the example samples, with Jinja2 templates (``harness/reporting/templates``) whose
autoescaping is on: model output is untrusted text and is only ever inserted as escaped text. Figures are
PNGs drawn by matplotlib and embedded as base64 data URIs, so the page loads no external resource and runs
no JavaScript (its Content-Security-Policy forbids both).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pyarrow as pa

from harness.core.errors import RunStoreError
from harness.forecasting.costs import Cost, Prices, inference_flops, money_for
from harness.reporting.format import MISSING, format_fixed, format_quantity
from harness.reporting.run_costs import CostBasis, run_eflops
from harness.store import RunStore
from harness.store.outputs import check_output_path

EXAMPLES_PER_REASON = 3
EXAMPLE_CHARS = 2000
REFERENCE_CHARS = 300
OUTCOME_ORDER = ("correct", "wrong", "timeout")  # always named; other reasons follow as present


def template_environment() -> jinja2.Environment:
    """Templates of ``harness/reporting/templates`` with autoescaping on and the number filters the pages use."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.reporting", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["quantity"] = format_quantity
    environment.filters["fixed"] = format_fixed
    environment.filters["percent"] = lambda value: MISSING if value is None else f"{value:.0%}"
    return environment


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def embedded_figure(draw: Callable[[Path], Any]) -> str:
    """Run ``draw(path)`` on a temporary PNG path and return the figure as a data URI."""
    from harness.reporting.figures import figure_png  # matplotlib: imported when a figure is drawn

    return png_data_uri(figure_png(draw))


Row = tuple[str, "str | list[str]"]  # (field, text or a list of texts)

SAMPLING_COLUMNS = (
    ("temperature", "temperature"),
    ("top_p", "top-p"),
    ("top_k", "top-k"),
    ("max_tokens", "max tokens"),
    ("seed", "seed"),
)


def configuration_sections(store: RunStore, summary: Mapping[str, Any]) -> dict[str, Any]:
    """How the run was made, as readable rows: the run, its sampling settings (a small table and the stop
    strings as a list), the task, the engine, the verifier and the package versions. A row's value is a text or
    a list of texts (strings shown as literals, so that a stop string's newline is visible)."""
    manifest = store.manifest
    config = manifest.get("config", {})
    model = manifest.get("model", {})
    sampling = config.get("sampling") or {}
    run: list[Row] = [
        ("run directory", str(store.path)),
        ("task", str(summary["task"])),
        ("model", str(model.get("name"))),
        ("model identity", str(model.get("identity", config.get("model")))),
        ("model parameters", format_quantity(model.get("parameters"))),
        ("engine", str(config.get("engine", MISSING))),
        ("config hash", str(manifest.get("config_hash"))),
        ("problems", str(summary["problems"])),
        ("samples per problem", _samples_per_problem(summary["samples_per_problem"])),
        ("verdict set", str(summary["verdict_set"])),
        ("sampling sessions", str(len(manifest.get("sessions", [])))),
        ("created", str(manifest.get("created", MISSING))),
    ]
    return {
        "run": run,
        "sampling": [(label, _text(sampling.get(name))) for name, label in SAMPLING_COLUMNS],
        "stop": [_literal(stop) for stop in sampling.get("stop") or []],
        "sample_defining": readable_rows(config.get("sample_defining") or {}),
        "sections": [
            ("Task", readable_rows(config.get("task_description") or {})),
            ("Engine", readable_rows(manifest.get("engine") or {})),
            ("Verifier", readable_rows(summary["verifier"])),
            ("Versions", readable_rows(manifest.get("versions") or {})),
        ],
    }


def readable_rows(value: Mapping[str, Any], prefix: str = "") -> list[Row]:
    """A nested mapping as (field, value) rows: nested keys joined by spaces, lists as lists of texts."""
    rows: list[Row] = []
    for key, item in value.items():
        name = f"{prefix}{key}".replace("_", " ")
        if isinstance(item, Mapping) and item:
            rows.extend(readable_rows(item, name + " "))
        elif isinstance(item, (list, tuple)):
            rows.append((name, [_literal(element) for element in item] if item else "none"))
        else:
            rows.append((name, _text(item)))
    return rows or [("(none)", MISSING)]


def _text(value: Any) -> str:
    if value is None or value == {}:
        return MISSING
    return str(value)


def _literal(value: Any) -> str:
    """A list element as text: strings as literals (``"\\ndef "``), other values as compact JSON."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _samples_per_problem(spread: Mapping[str, int]) -> str:
    low, high = spread["min"], spread["max"]
    return str(low) if low == high else f"{low} to {high}"


def _compact_json(value: Any) -> str:
    if value is None or value == {}:
        return MISSING
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def budget_rows(budget: Mapping[str, Any], prices: Prices) -> list[dict[str, Any]]:
    """The summary's budget rows (the k reaching each target coverage, from the one fitted forecast), each
    cost priced at ``prices``."""
    rows = []
    for row in budget["targets"]:
        cost = None if row["cost"] is None else Cost.from_json(row["cost"]).priced(prices)
        hours = None if cost is None or cost.seconds is None else cost.seconds / 3600
        rows.append({**row, "cost": cost, "hours": hours})
    return rows


def token_accounting(
    summary: Mapping[str, Any], sessions: Sequence[Mapping[str, Any]], prices: Prices
) -> dict[str, Any]:
    """What the run's samples cost: tokens, FLOPs (2 x parameters x tokens), wall time, money where priced."""
    usage = summary["usage"]
    seconds = sum(session.get("seconds", 0.0) for session in sessions)
    output_tokens = usage.get("output_tokens")
    prompt_tokens = usage.get("prompt_tokens_per_problem")
    parameters = usage.get("model_parameters")
    prefilled = None if prompt_tokens is None else summary["problems"] * prompt_tokens
    flops = None
    if parameters is not None and output_tokens is not None and prefilled is not None:
        flops = inference_flops(parameters, output_tokens, prefilled)
    return {
        "samples": usage.get("samples"),
        "output_tokens": output_tokens,
        "output_tokens_per_sample": usage.get("output_tokens_per_sample"),
        "prompt_tokens_per_problem": prompt_tokens,
        "prefilled_tokens": prefilled,
        "output_tokens_per_second": usage.get("output_tokens_per_second"),
        "sampling_seconds": seconds if seconds > 0 else None,
        "model_parameters": parameters,
        "flops": flops,
        "money": money_for(prices, output_tokens, prefilled, seconds if seconds > 0 else None),
        "finish_reasons": summary["finish_reasons"],
    }


def selector_section(store: RunStore, verdict_set: str) -> dict[str, Any] | None:
    """Each selector's accuracy@k next to coverage (``compare_verifiers``), when the run allows any selector."""
    from harness.reporting.selector_comparison import compare_verifiers
    from harness.reporting.selectors import plot_comparison

    result = compare_verifiers(store, verifier=verdict_set)
    if len(result["selectors"]) < 2:  # coverage alone: no answers to vote on, no scores, no log-probs
        return None
    return {"result": result, "figure": embedded_figure(lambda path: plot_comparison(result, path))}


# The report compares the analysed verdict set with at most this many others; a note counts the rest.
MAX_AGREEMENTS = 8


def agreement_section(store: RunStore, verdict_set: str) -> dict[str, Any]:
    """The analysed verdict set against the other verdict sets of the run as the reference (``ttc agreement``),
    where the two judged samples in common: ``rows`` for the first ``MAX_AGREEMENTS`` of them (in the store's
    order), ``omitted`` how many more there are."""
    from harness.reporting.agreement import run_agreement

    rows: list[dict[str, Any]] = []
    omitted = 0
    for key in store.verdict_sets():
        if key == verdict_set:
            continue
        if len(rows) == MAX_AGREEMENTS:
            omitted += 1
            continue
        try:
            rows.append(run_agreement(store, verdict_set, key).to_json())
        except RunStoreError:  # an empty set, or none of its samples in common with the analysed one
            continue
    return {"rows": rows, "omitted": omitted}


def reasoning_section(store: RunStore, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """The summary's reasoning figures, and with reasoning on and the token split known the figure of the
    thinking tokens of correct vs wrong samples and of accuracy against thinking length; None for a summary
    written before ttc judged reasoning models."""
    from harness.reporting.figures import plot_reasoning
    from harness.reporting.run_counts import judged_tokens

    reasoning = summary.get("reasoning")
    if reasoning is None:
        return None
    figure = None
    if reasoning["mode"] == "on" and reasoning["split_known"]:
        tokens = judged_tokens(store, summary["verdict_set"])
        figure = embedded_figure(
            lambda path: plot_reasoning(
                path, tokens.thinking, tokens.correct, reasoning["accuracy_by_thinking"], reasoning["truncated_share"]
            )
        )
    return {"summary": reasoning, "figure": figure}


def example_samples(
    store: RunStore,
    verdict_set: str,
    per_reason: int = EXAMPLES_PER_REASON,
    max_chars: int = EXAMPLE_CHARS,
) -> dict[str, Any]:
    """A few samples per verdict reason (correct, wrong, timeout first), each from a different problem where
    possible, with the text cut to ``max_chars`` characters. Returned as plain strings: the template escapes."""
    verdicts = store.current_verdicts(verdict_set, ["correct", "reason", "answer", "detail"])
    reasons = np.asarray(verdicts.column("reason").to_pylist(), dtype=object)
    present = sorted(set(reasons.tolist()), key=lambda reason: (reason not in OUTCOME_ORDER, _order(reason), reason))
    chosen_rows: dict[str, list[int]] = {}
    for reason in present:
        rows = np.flatnonzero(reasons == reason)
        problem_ids = np.asarray(verdicts.column("problem_id").take(pa.array(rows)).to_pylist(), dtype=object)
        _, first_of_problem = np.unique(problem_ids, return_index=True)
        spread = rows[np.sort(first_of_problem)]  # one sample per problem first, then more of the same
        chosen = np.concatenate([spread, np.setdiff1d(rows, spread)])[:per_reason]
        chosen_rows[reason] = [int(row) for row in chosen]
    wanted = sorted({verdicts.column("problem_id")[row].as_py() for rows in chosen_rows.values() for row in rows})
    samples = store.read_samples(["text", "n_tokens", "finish_reason", "thinking_tokens"], problem_ids=wanted)
    sample_at = {
        (problem_id, index): row
        for row, (problem_id, index) in enumerate(
            zip(samples.column("problem_id").to_pylist(), samples.column("sample_idx").to_pylist())
        )
    }
    references = {problem.problem_id: problem.reference for problem in store.problems() if problem.problem_id in wanted}
    groups = []
    for reason in present:
        examples = []
        for row in chosen_rows[reason]:
            problem_id = verdicts.column("problem_id")[row].as_py()
            index = int(verdicts.column("sample_idx")[row].as_py())
            sample_row = sample_at.get((problem_id, index))
            text = "" if sample_row is None else samples.column("text")[sample_row].as_py() or ""
            examples.append(
                {
                    "problem_id": problem_id,
                    "sample_idx": index,
                    "answer": verdicts.column("answer")[row].as_py(),
                    "detail": verdicts.column("detail")[row].as_py(),
                    "reference": _cut(_compact_json(references.get(problem_id)), REFERENCE_CHARS),
                    "n_tokens": None if sample_row is None else samples.column("n_tokens")[sample_row].as_py(),
                    "thinking_tokens": None
                    if sample_row is None
                    else samples.column("thinking_tokens")[sample_row].as_py(),
                    "finish_reason": None
                    if sample_row is None
                    else samples.column("finish_reason")[sample_row].as_py(),
                    "text": _cut(text, max_chars),
                }
            )
        groups.append({"reason": reason, "count": int((reasons == reason).sum()), "examples": examples})
    absent = [reason for reason in OUTCOME_ORDER if reason not in present]
    return {"groups": groups, "absent": absent}


def _order(reason: str) -> int:
    return OUTCOME_ORDER.index(reason) if reason in OUTCOME_ORDER else len(OUTCOME_ORDER)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit:,} more characters not shown]"


def surface_section(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """The samples x thinking surface (after ``ttc sweep``): the summary's figures and the figure of coverage
    against k per budget and against tokens per problem, the frontier marked; None without a sweep."""
    from harness.reporting.figures import plot_surface

    surface = summary.get("surface")
    if not surface:
        return None
    return {"summary": surface, "figure": embedded_figure(lambda path: plot_surface(path, surface))}


def build_report(
    store: RunStore,
    summary: Mapping[str, Any],
    *,
    prices: Prices | None = None,
    examples_per_reason: int = EXAMPLES_PER_REASON,
    cost_basis: CostBasis | None = None,
) -> str:
    """The report page (HTML text) of a run whose ``analyze`` summary is ``summary``.

    The coverage figure is ``coverage.png``, which ``analyze`` writes beside ``summary.json``. With
    ``cost_basis`` the cost table and the budget rows have the memory-aware cost (eFLOPs) on its hardware.
    """
    prices = prices or Prices()
    verdict_set = summary["verdict_set"]
    coverage_png = store.path / "coverage.png"
    if not coverage_png.is_file():
        raise FileNotFoundError(f"{coverage_png} is missing: run `ttc analyze {store.path}` first")
    if "budget" not in summary or "finish_reasons" not in summary:
        raise RunStoreError(
            f"the summary of {store.path} predates its budget rows: run `ttc analyze {store.path}` again"
        )
    groups = {
        name: sorted(values.items(), key=lambda item: _natural_key(item[0]))
        for name, values in (summary.get("groups") or {}).items()
    }
    budget = summary["budget"]
    context = {
        "title": f"{summary['task']} · {summary['model']}",
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": summary,
        "configuration": configuration_sections(store, summary),
        "coverage_figure": png_data_uri(coverage_png.read_bytes()),
        "groups": groups,
        "selectors": selector_section(store, verdict_set),
        "agreements": agreement_section(store, verdict_set),
        "budget": budget,
        "budget_rows": [] if budget is None else budget_rows(budget, prices),
        "eflops": None if cost_basis is None else run_eflops(store, cost_basis),
        "prices": prices,
        "tokens": token_accounting(summary, store.manifest.get("sessions", []), prices),
        "reasoning": reasoning_section(store, summary),
        "surface": surface_section(summary),
        "examples": example_samples(store, verdict_set, examples_per_reason),
        "missing": MISSING,
        "example_chars": EXAMPLE_CHARS,
    }
    return template_environment().get_template("report.html.jinja").render(**context)


def _natural_key(value: str) -> tuple:
    """'Level 2' before 'Level 10'."""
    parts = []
    for chunk in re.split(r"(\d+)", value):
        parts.append((0, int(chunk)) if chunk.isdigit() else (1, chunk))
    return tuple(parts)


def write_report(
    store: RunStore,
    summary: Mapping[str, Any],
    path: str | Path | None = None,
    **options: Any,
) -> Path:
    """Write ``build_report`` to ``path`` (default ``RUN_DIR/report.html``) and return the path.

    ``path`` may not be a folder, lie below a file or be another of the run's files (``check_output_path``);
    the run's lock is held while the report reads the run and writes into it. A report written elsewhere reads
    a run directory it may not write into (an archived, read-only copy) without the lock."""
    path = Path(path) if path is not None else store.path / "report.html"
    check_output_path(path, "out", own_run=store.path, own_files=("report.html",))
    inside = path.resolve().parent == store.path.resolve()
    with store.locked() if inside else store.locked_for_reading():
        html = build_report(store, summary, **options)
        if inside:  # into the run directory: through the store
            store.write_file(path.name, html)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(html, encoding="utf-8")
    return path
