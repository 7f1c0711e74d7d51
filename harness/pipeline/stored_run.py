"""``load_run()``: a stored run directory, or a file of counts, for analysis in a notebook.

::

    from harness import load_run

    stored = load_run("results/gsm8k-...")   # or a counts JSONL file
    stored.counts              # per-problem counts (pandas DataFrame)
    stored.pass_at_k()         # k, coverage, low, high (from summary.json)
    stored.pass_hat_k()        # pass^k: all of k samples correct, with intervals
    stored.avg_at_n            # pass@1 averaged over each problem's samples, with standard errors
    stored.reasoning           # thinking tokens, samples cut off in their thinking, accuracy by thinking length
    stored.surface             # after `ttc sweep`: coverage per k and thinking budget, its laws, the frontier
    stored.law.predict(1000)   # the fitted power law
    stored.forecast(10_000)    # coverage at k = 10,000 with a 90% interval
    stored.budget(0.8)         # the smallest k whose forecast reaches 80% coverage, and what it costs
    stored.budget(0.8, over="samples,thinking", cost="eflops", hardware="h100")   # the cheapest (k, B), after a sweep
    stored.agreement("math", against="imported")   # how often one verifier agrees with another
    stored.corrected_coverage(verifier_error="0.05,0.1")  # pass@k corrected for the verifier's error rates
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from harness.core.errors import DataError, OptionError, check_number
from harness.core.options import check_value
from harness.forecasting.budget import BudgetPlan, plan_budget
from harness.forecasting.corrected import CorrectedModel
from harness.forecasting.cost_model import resolve_hardware
from harness.forecasting.costs import Prices, Usage
from harness.forecasting.forecast import DEFAULT_CONFIDENCE, Forecast, _validate_request, forecast_curve, model_forecast
from harness.forecasting.forecast import forecast as forecast_coverage
from harness.forecasting.laws import PowerLaw
from harness.forecasting.planner import JointPlan
from harness.metrics.analysis import MeasuredCoverage, coverage_summary, measured_coverage, measured_pass_hat_k
from harness.metrics.counts import Counts
from harness.metrics.estimators import log_spaced_ks
from harness.metrics.verifier_error import CorrectedCoverage, ErrorRate, corrected_coverage
from harness.pipeline.analyze import analyze_run, summarize_counts
from harness.pipeline.counts_file import read_counts
from harness.pipeline.results import AvgAtNFigures, ReasoningSummary, Summary, UsageFigures
from harness.pipeline.surface import CostSettings, parse_axes, plan_over_thinking
from harness.pipeline.verifier_stats import ErrorRates, resolve_error_rates, stored_error_rates
from harness.reporting.agreement import AgreementResult, run_agreement
from harness.reporting.html import write_report
from harness.reporting.run_costs import CostBasis, budget_eflops, run_cost_model
from harness.reporting.run_counts import run_counts
from harness.reporting.selector_comparison import compare_verifiers, parse_selectors
from harness.store import RunStore
from harness.store.completeness import Completeness, completeness
from harness.store.outputs import check_output_path

if TYPE_CHECKING:  # pandas is imported when a DataFrame is asked for
    import pandas as pd


class Run:
    """A stored run directory or a counts file, for analysis. Made by ``load_run()``.

    What ``summary.json`` holds (pass@k at k = 1, 2, 4, ..., the law, the forecast at 10 x the samples, usage)
    is read from it, not recomputed. A counts file (or one group of either) has no summary.json: its summary
    is computed once, when first needed; what needs the samples themselves (``selectors``) needs a run
    directory.
    """

    def __init__(
        self,
        source: Path,
        counts: Counts | None = None,
        store: RunStore | None = None,
        verdict_set: str | None = None,
        label: str | None = None,
        usage: UsageFigures | None = None,
    ) -> None:
        if (counts is None) == (store is None):
            raise ValueError("a Run reads a run directory or counts, exactly one")
        self.source = source
        self._store = store
        self.verdict_set = verdict_set
        self.label = label or source.name
        self._group_usage = usage
        if counts is not None:
            self._counts = counts

    def __repr__(self) -> str:
        kind = f"verdict set {self.verdict_set}" if self._store is not None else "counts"
        return f"<Run {self.label!r}: {len(self.to_counts())} problems, {kind}, from {self.source}>"

    @property
    def is_run_directory(self) -> bool:
        return self._store is not None

    def _run_store(self, needs: str) -> RunStore:
        """The run directory's store; ``needs`` says what asked for it, for the error a counts file gets."""
        if self._store is None:
            raise DataError(f"{self.label}: {needs}, which counts do not hold; load a run directory")
        return self._store

    @cached_property
    def _counts(self) -> Counts:
        return run_counts(self._run_store("counts"), self.verdict_set)

    def to_counts(self) -> Counts:
        """The per-problem counts as ``harness.metrics.counts.Counts``, the type every analysis function takes."""
        return self._counts

    @cached_property
    def summary(self) -> Summary:
        """``summary.json`` as a dict. A run directory's is analysed (and written) once if it is missing or
        stale (another run's, another verdict set, samples or verdicts added or removed since); counts get
        theirs computed. A run directory this process may not write into (an archived copy) gets its summary
        computed without writing it."""
        if self._store is None:
            return summarize_counts(self._counts)[0]
        store = self._store
        return self._summary_file() or analyze_run(store, self.verdict_set, write=store.writable())

    def _summary_file(self) -> Summary | None:
        """The run directory's summary.json if it summarises this run as it is stored now: the same run id,
        configuration hash and verdict set, and the same shards (``RunStore.content_fingerprint``). Anything
        else, an unreadable file included, is stale (``analyze`` writes it again)."""
        store = self._run_store("summary.json")
        try:
            stored = json.loads((store.path / "summary.json").read_bytes().decode("utf-8"))
        except (OSError, ValueError, RecursionError):  # missing, not UTF-8, not JSON
            return None
        if not isinstance(stored, dict) or not isinstance(stored.get("completeness"), dict):
            return None
        if any(name not in stored for name in ("pass_hat_k", "avg_at_n", "reasoning")):  # written by an older ttc
            return None
        key = self._verdict_key
        judged = sum(stop - start for spans in store.verdicts(key).ranges().values() for start, stop in spans)
        fresh = (
            stored.get("run_id") == store.run_id
            and stored.get("config_hash") == store.manifest["config_hash"]
            and stored.get("verdict_set") == self.verdict_set
            and stored.get("fingerprint") == store.content_fingerprint(key)
            and stored.get("samples") == judged  # and it counts them all (footers: no data read)
        )
        return cast(Summary, stored) if fresh else None

    @property
    def _verdict_key(self) -> str:
        return self._run_store("a verdict set").resolve_verdict_key(self.verdict_set)

    @property
    def completeness(self) -> Completeness | None:
        """What part of the run the verdict set covers (``harness.store.completeness``); None for counts."""
        return None if self._store is None else completeness(self._store, self._verdict_key)

    def _known_summary(self) -> Summary | None:
        """The summary if it is at hand without analysing: computed already, or an up-to-date summary.json."""
        if "summary" not in self.__dict__ and self._store is not None:
            stored = self._summary_file()
            if stored is not None:
                self.__dict__["summary"] = stored
        return self.__dict__.get("summary")

    @cached_property
    def counts(self) -> pd.DataFrame:
        """Per-problem counts: ``problem_id``, ``num_samples``, ``num_correct`` and the problems' metadata fields."""
        import pandas as pd

        counts = self._counts
        columns: dict[str, Any] = {
            "problem_id": counts.problem_ids.astype(str),
            "num_samples": counts.num_samples,
            "num_correct": counts.num_correct,
        }
        columns.update({name: values for name, values in counts.fields.items() if name not in columns})
        return pd.DataFrame(columns).infer_objects()

    @property
    def usage(self) -> UsageFigures | None:
        """Measured tokens per sample and per prompt, throughput and model size (None for counts, except the
        groups of a run directory, which share its figures)."""
        if self._store is None:
            return self._group_usage
        known = self._known_summary()
        return known["usage"] if known is not None else cast(UsageFigures, self._store.usage())

    def pass_at_k(self, ks: Sequence[int] | None = None, confidence: float = 0.95) -> pd.DataFrame:
        """Unbiased pass@k with a bootstrap ``confidence`` interval over problems: columns k, coverage, low, high.

        ``ks`` defaults to 1, 2, 4, ..., the smallest samples per problem; what the summary holds (its ks at
        its confidence) is read from it, other k are estimated from the counts.
        """
        return self._measured("pass_at_k", "coverage", measured_coverage, ks, confidence)

    def pass_hat_k(self, ks: Sequence[int] | None = None, confidence: float = 0.95) -> pd.DataFrame:
        """Unbiased pass^k (all of k samples correct, ``C(c,k)/C(n,k)``) with a bootstrap ``confidence`` interval
        over problems: columns k, value, low, high. ``ks`` defaults to 1, 2, 4, ..., the smallest samples per
        problem; the summary's are read from it, other k are estimated from the counts."""
        return self._measured("pass_hat_k", "value", measured_pass_hat_k, ks, confidence)

    def _measured(
        self,
        key: str,
        column: str,
        estimate: Callable[[Counts, Sequence[int] | np.ndarray, float], MeasuredCoverage],
        ks: Sequence[int] | None,
        confidence: float,
    ) -> pd.DataFrame:
        """The summary's rows ``key`` (k, ``column``, low, high) at ``ks`` if it holds them at ``confidence``,
        else ``estimate``'s from the counts."""
        import pandas as pd

        columns = ["k", column, "low", "high"]
        known: Mapping[str, Any] | None = self._known_summary()
        if known is None and ks is None:
            known = coverage_summary(self._counts, confidence=confidence)
        if known is not None and known["confidence"] == confidence:
            stored = {row["k"]: row for row in known[key]}
            wanted = list(stored) if ks is None else [int(k) for k in ks]
            if all(k in stored for k in wanted):
                return pd.DataFrame([stored[k] for k in wanted], columns=columns)
        wanted_ks = log_spaced_ks(int(self._counts.num_samples.min())) if ks is None else ks
        measured = estimate(self._counts, wanted_ks, confidence)
        return pd.DataFrame(
            {"k": measured.ks, column: measured.mean, "low": measured.low, "high": measured.high}, columns=columns
        )

    @property
    def avg_at_n(self) -> AvgAtNFigures:
        """avg@n: pass@1 averaged over each problem's samples, then over problems (the reasoning-benchmark
        convention), with its standard error over problems and samples, and over samples alone."""
        return self.summary["avg_at_n"]

    @property
    def reasoning(self) -> ReasoningSummary | None:
        """How the verdict set judged reasoning (mode, tags) and, with reasoning on, the thinking's figures:
        samples cut off in their thinking, thinking and answer tokens, accuracy by thinking length (the
        summary's ``reasoning``); None for counts."""
        if self._store is None:
            return None
        return self.summary["reasoning"]

    @property
    def surface(self) -> dict[str, Any] | None:
        """The samples x thinking surface after ``ttc sweep`` (the summary's ``surface``: coverage and majority
        vote per k and thinking budget with intervals, the laws in k and in B, the frontier); None before a
        sweep, and for counts. ``budget(over="samples,thinking")`` plans over it."""
        if self._store is None:
            return None
        return self.summary.get("surface")

    @property
    def law(self) -> PowerLaw:
        """The power law the analysis fitted and printed (``summary["fit"]``): ``a_``, ``b_``, ``r2_``,
        ``predict(k)``."""
        fit = self.summary.get("fit")
        if fit is None:
            reason = self.summary.get("fit_error", "unknown reason")
            raise DataError(f"{self.label}: no power law could be fitted: {reason}")
        return PowerLaw.from_json(fit)

    def forecast(
        self,
        k: int,
        method: str = "auto",
        confidence: float = DEFAULT_CONFIDENCE,
        seed: int = 0,
        *,
        corrected: bool = False,
        verifier_error: str | Sequence[float | ErrorRate] | None = None,
        verifier_error_from: str | Path | None = None,
    ) -> Forecast:
        """Coverage at ``k`` samples per problem with a ``confidence`` interval (``harness.forecasting.forecast``).

        The summary's own forecast (``auto`` at 10 x the samples, seed 0) is read from it. ``corrected``: the
        forecast of pass@k corrected for the verifier's error rates (``harness.forecasting.corrected``), the
        rates given as ``verifier_error``/``verifier_error_from`` or else those ``analyze`` recorded.
        """
        if corrected:
            _validate_request(k, confidence, seed)
            return model_forecast(self._corrected_model(verifier_error, verifier_error_from, seed), k, confidence)
        _refuse_rates_without_corrected(verifier_error, verifier_error_from)
        known = self._known_summary()
        stored = None if known is None else known["forecast"]
        if stored and (method, seed) == ("auto", 0) and (stored["k"], stored["confidence"]) == (k, confidence):
            return Forecast(k, stored["coverage"], stored["low"], stored["high"], stored["method"], confidence)
        return forecast_coverage(self._counts, k, method, confidence, seed)

    def budget(
        self,
        target: float = 0.8,
        *,
        method: str = "auto",
        confidence: float = DEFAULT_CONFIDENCE,
        price_per_mtok: float | None = None,
        gpu_hour_price: float | None = None,
        usage: Mapping[str, float | None] | None = None,
        seed: int = 0,
        plot: str | Path | None = None,
        corrected: bool = False,
        verifier_error: str | Sequence[float | ErrorRate] | None = None,
        verifier_error_from: str | Path | None = None,
        over: str | Sequence[str] = "samples",
        cost: str = "tokens",
        spend: float | None = None,
        model_config: str | Path | None = None,
        dtype_bytes: float | None = None,
        hardware: str | None = None,
        flops_per_s: float | None = None,
        bytes_per_s: float | None = None,
        k_max: int | None = None,
    ) -> BudgetPlan | JointPlan:
        """The smallest k whose forecast reaches ``target`` coverage (and where the interval's ends reach it),
        what bringing every problem to k costs, and samples allocated by difficulty: what ``ttc budget``
        prints (``plan.to_json()`` is its JSON).

        Costs come from the run's measured usage (``self.usage``); ``usage`` replaces any of its figures by
        name (``output_tokens_per_sample``, ``prompt_tokens_per_problem``, ``output_tokens_per_second``,
        ``model_parameters``), which a counts file needs for costs at all. Money needs a price, per million
        tokens or per GPU hour (not both). ``plot``: a PNG of the forecast coverage against its cost.
        ``corrected``: the budget by the forecast of pass@k corrected for the verifier's error rates (as for
        ``forecast``).

        ``over="samples,thinking"`` plans both axes over the run's sweep (``ttc sweep``; docs/thinking.md) and
        returns a ``JointPlan``: the cheapest (k, B) reaching ``target``, the best (k, B) for ``spend`` with
        "more samples or longer thinking?", and the frontier, priced by ``cost``: ``tokens``, ``flops`` or
        ``eflops`` (from ``model_config``, default the run's model's config.json, with ``dtype_bytes`` where it
        lacks a dtype; eFLOPs on a ``hardware`` preset or ``flops_per_s`` and ``bytes_per_s``) or ``money``
        (per million tokens, or per GPU hour on the hardware). ``k_max``: the largest k considered (default 10 x
        the samples measured). Planning over samples alone takes a ``hardware`` (with ``model_config`` and
        ``dtype_bytes`` as above) to add each k's eFLOPs (``plan.eflops``).
        """
        axes = parse_axes(over)
        if axes == ("samples", "thinking"):
            if plot is not None or usage is not None or method != "auto" or corrected:
                raise OptionError("over", "plot, usage, method and corrected apply to planning over samples alone")
            _refuse_rates_without_corrected(verifier_error, verifier_error_from)
            settings = CostSettings(
                cost=cost,
                model_config=model_config,
                dtype_bytes=dtype_bytes,
                hardware=hardware,
                flops_per_s=flops_per_s,
                bytes_per_s=bytes_per_s,
                price_per_mtok=price_per_mtok,
                gpu_hour_price=gpu_hour_price,
            )
            check_number("target", target, above=0, below=1)
            store = self._run_store("planning over thinking needs the run's sweep")
            return plan_over_thinking(store, self._verdict_key, settings, target=target, spend=spend, k_max=k_max)
        for name, value in {"spend": spend, "k_max": k_max}.items():
            if value is not None:
                raise OptionError(name, "applies to planning over samples and thinking (over='samples,thinking')")
        if cost != "tokens":
            raise OptionError("cost", "applies to planning over samples and thinking (over='samples,thinking')")
        basis = None  # a hardware adds the memory-aware cost (eFLOPs) of each k
        if hardware is not None or flops_per_s is not None or bytes_per_s is not None:
            store = self._run_store("eFLOPs need the run's stored tokens")
            basis = CostBasis(resolve_hardware(hardware, flops_per_s, bytes_per_s), model_config, dtype_bytes)
            run_cost_model(store, model_config, dtype_bytes)  # an unreadable config fails before any planning
        elif model_config is not None or dtype_bytes is not None:
            raise OptionError("hardware", "eFLOPs need the hardware: a preset, or flops_per_s and bytes_per_s")
        if plot is not None:
            check_output_path(plot, "plot", inputs=[self.source])
        if price_per_mtok is not None and gpu_hour_price is not None:
            raise OptionError("gpu_hour_price", "give price_per_mtok or gpu_hour_price, not both")
        check_value("usage", usage, Mapping[str, Any] | None)
        known = list(Usage.__dataclass_fields__)
        unknown = sorted(set(usage or {}) - set(known))
        if unknown:
            raise OptionError("usage", f"unknown figures {unknown}; the figures are {', '.join(known)}")
        measured = Usage.from_mapping(self.usage) if self.usage else Usage()
        given = {name: value for name, value in (usage or {}).items() if value is not None}
        figures = Usage(**{name: given.get(name, getattr(measured, name)) for name in known})
        prices = Prices(per_million_tokens=price_per_mtok, gpu_hour=gpu_hour_price)
        model = None
        if corrected:
            model = self._corrected_model(verifier_error, verifier_error_from, seed)
            if plot is not None:
                raise OptionError("plot", "draws the uncorrected forecast; leave out --plot with --corrected")
        else:
            _refuse_rates_without_corrected(verifier_error, verifier_error_from)
        plan = plan_budget(self._counts, target, method, confidence, figures, prices, seed=seed, model=model)
        if basis is not None:
            reached = {name: cost.k for name, cost in plan.costs.items()}
            plan = replace(plan, eflops=budget_eflops(self._run_store("eFLOPs"), basis, len(self._counts), reached))
        if plot is not None:
            from harness.reporting.figures import forecast_ks, plot_budget  # matplotlib: imported when drawing

            top = plan.k_conservative or plan.k or plan.k_limit
            ks = forecast_ks(int(self._counts.num_samples.min()), int(min(top * 2, plan.k_limit)))
            curve = forecast_curve(self._counts, ks, method, confidence, seed)
            plot_budget(plot, curve, self._counts, figures, prices, target)
        return plan

    def report(
        self,
        out: str | Path | None = None,
        *,
        price_per_mtok: float | None = None,
        gpu_hour_price: float | None = None,
        hardware: str | None = None,
        flops_per_s: float | None = None,
        bytes_per_s: float | None = None,
        model_config: str | Path | None = None,
        dtype_bytes: float | None = None,
    ) -> Path:
        """Write the run's report, one self-contained HTML page built from its summary, to ``out`` (default:
        ``report.html`` in the run directory) and return its path: what ``ttc report`` writes. A price (per
        million tokens or per GPU hour) adds money to the cost columns; a ``hardware`` preset (or
        ``flops_per_s`` and ``bytes_per_s``) adds the memory-aware cost (eFLOPs) from the model's config.json
        (``model_config``, default the run's model's)."""
        store = self._run_store("a report shows the samples")
        if out is not None:  # refused before a stale summary is analysed again
            check_output_path(out, "out", own_run=store.path, own_files=("report.html",))
        prices = Prices(per_million_tokens=price_per_mtok, gpu_hour=gpu_hour_price)
        basis = None
        if hardware is not None or flops_per_s is not None or bytes_per_s is not None:
            basis = CostBasis(resolve_hardware(hardware, flops_per_s, bytes_per_s), model_config, dtype_bytes)
            run_cost_model(store, model_config, dtype_bytes)  # an unreadable config fails before any writing
        elif model_config is not None or dtype_bytes is not None:
            raise OptionError("hardware", "eFLOPs need the hardware: a preset, or flops_per_s and bytes_per_s")
        return write_report(store, self.summary, out, prices=prices, cost_basis=basis)

    def selectors(
        self,
        selectors: str | Sequence[str] | None = None,
        ks: Sequence[int] | None = None,
        *,
        aggregate: str = "min",
        subsets: int | None = None,
        seed: int = 0,
        confidence: float = 0.95,
    ) -> pd.DataFrame:
        """Accuracy@k of selectors (majority vote, reward-model best-of-k, ...) next to coverage, with intervals.

        ``selectors``: e.g. ``"coverage,majority,orm=my-rm"`` or a list of such names (default: all the run's
        data allows). Long format: one row per (selector, k) with columns selector, kind, k, accuracy, low,
        high, method. ``df.pivot(index="k", columns="selector", values="accuracy")`` gives the table.
        """
        import pandas as pd

        store = self._run_store("selectors need the samples' answers and scores")
        specs = None
        if selectors is not None:
            specs = parse_selectors(selectors if isinstance(selectors, str) else ",".join(selectors))
        result = compare_verifiers(
            store,
            specs,
            ks,
            verifier=self.verdict_set,
            aggregate=aggregate,
            subsets=subsets,
            seed=seed,
            confidence=confidence,
        )
        rows = [
            {
                "selector": entry["selector"],
                "kind": entry["kind"],
                "k": k,
                "accuracy": accuracy,
                "low": low,
                "high": high,
                "method": entry["method"],
            }
            for entry in result["selectors"]
            for k, accuracy, low, high in zip(result["ks"], entry["accuracy"], entry["low"], entry["high"])
        ]
        return pd.DataFrame(rows, columns=["selector", "kind", "k", "accuracy", "low", "high", "method"])

    def agreement(
        self, verdicts: str, against: str, *, threshold: float | None = None, confidence: float = 0.95
    ) -> AgreementResult:
        """How often ``verdicts`` (a verdict set by key or verifier name, or a score set with ``threshold``) agrees
        with the reference ``against`` on this run (``ttc agreement``; ``harness.reporting.agreement``): the
        confusion matrix, precision, recall, false-positive and false-negative rates with intervals clustered by
        problem, Cohen's kappa, the AUROC of scores, and the disagreeing samples (``.disagreements``).
        ``.to_json()`` is what ``--verifier-error-from`` reads."""
        store = self._run_store("agreement compares the verdicts of a run directory")
        return run_agreement(store, verdicts, against, threshold=threshold, confidence=confidence)

    def corrected_coverage(
        self,
        verifier_error: str | Sequence[float | ErrorRate] | None = None,
        verifier_error_from: str | Path | None = None,
        ks: Sequence[int] | None = None,
        *,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> CorrectedCoverage:
        """pass@k corrected for the verifier's false-positive and false-negative rates (``"0.05,0.1"`` or a pair;
        or an agreement's JSON file), with intervals carrying their uncertainty, beside the raw curve
        (``harness.metrics.verifier_error``); the rates ``analyze`` recorded when none are given."""
        rates = self._error_rates(verifier_error, verifier_error_from)
        counts = self._counts
        return corrected_coverage(counts.num_samples, counts.num_correct, *rates, ks, confidence=confidence, seed=seed)

    def _error_rates(
        self,
        verifier_error: str | Sequence[float | ErrorRate] | None,
        verifier_error_from: str | Path | None,
    ) -> ErrorRates:
        rates = resolve_error_rates(verifier_error, verifier_error_from)
        if rates is None and self._store is not None:
            rates = stored_error_rates(self._known_summary())
        if rates is None:
            which = f" of verdict set {self.verdict_set}" if self.verdict_set else ""
            raise OptionError(
                "verifier_error",
                f"{self.label}: the verifier's error rates are needed (FPR,FNR, or an agreement's JSON): give them, "
                f"or record them in the summary{which} with `ttc analyze --verifier-error`",
            )
        return rates

    def _corrected_model(
        self,
        verifier_error: str | Sequence[float | ErrorRate] | None,
        verifier_error_from: str | Path | None,
        seed: int,
    ) -> CorrectedModel:
        return CorrectedModel(*self._error_rates(verifier_error, verifier_error_from), seed=seed).fit(self._counts)

    def groups(self, field: str) -> dict[str, Run]:
        """One ``Run`` per value of a per-problem field (e.g. ``model`` of a counts file, ``level`` of MATH).
        Groups of a run directory hold its counts, and share its measured ``usage`` (for their budgets)."""
        return {
            value: Run(self.source, counts=subset, label=f"{self.label} [{field}={value}]", usage=self.usage)
            for value, subset in self._counts.group_by(field).items()
        }

    def group(self, field: str, value: Any) -> Run:
        """The problems whose ``field`` is ``value``, as a ``Run`` of their counts."""
        groups = self.groups(field)
        if str(value) not in groups:
            raise OptionError(
                "value", f"{self.label}: no problems with {field} = {value!r}; its values are {sorted(groups)}"
            )
        return groups[str(value)]


def _refuse_rates_without_corrected(
    verifier_error: str | Sequence[float | ErrorRate] | None, verifier_error_from: str | Path | None
) -> None:
    if verifier_error is not None or verifier_error_from is not None:
        raise OptionError("corrected", "the verifier's error rates correct the forecast only with --corrected")


def load_run(path: str | Path, verifier: str | None = None) -> Run:
    """Open a run directory (as ``ttc run`` leaves it) or a counts JSONL file, for analysis.

    ``verifier``: a run directory's verdict set, by key or verifier name (default: the one last verified).
    A counts file holds ``num_samples`` and ``num_correct`` per line and any grouping fields (``model``, ...).
    """
    check_value("path", path, Path)
    check_value("verifier", verifier, str | None)
    path = Path(path)
    if path.is_dir():
        store = RunStore.open(path)
        return Run(path, store=store, verdict_set=store.resolve_verdict_key(verifier))
    if not path.exists():  # a file, or a pipe (``--counts <(...)``): read once, as counts
        raise FileNotFoundError(f"{path}: no such run directory or counts file")
    if verifier is not None:
        raise OptionError("verifier", f"selects a run directory's verdict set; {path} is a counts file")
    return Run(path, counts=read_counts(path))
