"""What part of a run a verdict set covers, so that no summary passes a subset of the run off as the run.

A summary is computed from one verdict set. It covers the whole run when every stored sample has a verdict,
every problem has samples and verdicts, and sampling reached the run's budget; otherwise ``Completeness``
says what is missing (samples not yet verified after a killed or running ``verify``, or a lost verdict shard;
problems without verdicts; verdicts whose samples are gone; verdicts of texts since replaced; sampling short
of the budget) in one line, and ``summary.json``, the terminal, the JSON result and the report carry it.
Computed from shard footers, problems.jsonl and the fingerprint columns of samples and verdicts (no text is
read, but of sample shards written before fingerprints were stored).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.store.lock import current_writer
from harness.store.ranges import merge_ranges, subtract_ranges
from harness.store.run_store import RunStore


def _total(ranges: dict[str, list[tuple[int, int]]]) -> int:
    return sum(stop - start for spans in ranges.values() for start, stop in spans)


@dataclass(frozen=True)
class Completeness:
    """How much of a run one verdict set covers.

    Attributes:
        problems: problems of the run (problems.jsonl).
        problems_with_verdicts: problems with at least one verdict (the problems a summary covers).
        samples: samples stored.
        verified: stored samples with a verdict.
        unverified: stored samples without a verdict (``ttc verify`` judges them).
        verdicts_without_samples: verdicts of samples no longer stored (a sample shard removed).
        problems_short: problems with fewer samples than the run's budget (sampling interrupted).
        budget_samples: the run's samples per problem (None for imported runs).
        writer: the process writing into the run now (``pid ... on host``), if any.
        stale: stored samples whose verdicts judged a text since replaced (counted in ``unverified`` too:
            ``ttc verify`` judges them again).
    """

    problems: int
    problems_with_verdicts: int
    samples: int
    verified: int
    unverified: int
    verdicts_without_samples: int
    problems_short: int
    budget_samples: int | None
    writer: str | None
    stale: int = 0

    @property
    def complete(self) -> bool:
        return (
            self.unverified == 0
            and self.problems_with_verdicts == self.problems
            and self.verdicts_without_samples == 0
            and self.problems_short == 0
            and self.writer is None
        )

    def note(self) -> str | None:
        """One line saying what the summary leaves out, and how to complete it (None when complete)."""
        if self.complete:
            return None
        parts = [f"covers {self.problems_with_verdicts} of {self.problems} problems"]
        if self.unverified:
            stale = f", {self.stale} of them because their text changed since it was judged" if self.stale else ""
            parts.append(
                f"{self.unverified} of {self.samples} stored samples have no verdict yet{stale} (`ttc verify RUN_DIR`)"
            )
        if self.verdicts_without_samples:
            parts.append(f"{self.verdicts_without_samples} verdicts are of samples no longer stored")
        if self.problems_short:
            parts.append(f"{self.problems_short} problems have fewer than the run's {self.budget_samples} samples")
        if self.writer is not None:
            parts.append(f"the run is being written now ({self.writer})")
        return "partial summary: " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The fields, ``complete``, and the ``note`` (None when complete)."""
        return {**asdict(self), "complete": self.complete, "note": self.note()}


def completeness(store: RunStore, verdict_set: str) -> Completeness:
    """What ``verdict_set`` of ``store`` covers of the run (see ``Completeness``)."""
    problems = store.problems()
    sampled = store.sample_ranges()
    judged = store.verdicts(verdict_set).ranges()
    stale = store.stale_verdicts(verdict_set)
    unverified = {
        pid: merge_ranges(subtract_ranges(spans, judged.get(pid, [])) + stale.get(pid, []))
        for pid, spans in sampled.items()
    }
    orphans = {pid: subtract_ranges(spans, sampled.get(pid, [])) for pid, spans in judged.items()}
    budget = store.manifest.get("budget") or {}
    budget_samples = budget.get("samples") if "sampling" in store.manifest["config"] else None
    short = 0
    if isinstance(budget_samples, int):
        wanted = problems[: budget.get("problems") or len(problems)]
        short = sum(_total({"": sampled.get(problem.problem_id, [])}) < budget_samples for problem in wanted)
    ids = {problem.problem_id for problem in problems}
    return Completeness(
        problems=len(problems),
        problems_with_verdicts=len(ids & {pid for pid, spans in judged.items() if spans}),
        samples=_total(sampled),
        verified=_total(sampled) - _total(unverified),
        unverified=_total(unverified),
        verdicts_without_samples=_total(orphans),
        problems_short=short,
        budget_samples=budget_samples if isinstance(budget_samples, int) else None,
        writer=None if store.holds_lock else current_writer(store.path),
        stale=_total(stale),
    )
