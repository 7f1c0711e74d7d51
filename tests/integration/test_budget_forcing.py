"""Budget forcing (s1) and one-trace sweeps on a fake reasoning model whose traces are fixed by their seed
(``tests/support/trace_engine.py``): a sample is cut at exactly B thinking tokens, closed with the tag and the
answer cue, and answers within A tokens; ``min_thinking`` extends a thought closed too early with the wait word;
a sweep's verdicts at budget B are those of a run sampled with ``thinking_budget=B`` (same seeds); bad settings
are one error naming the option before any engine starts."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import harness
from harness.core.errors import OptionError
from harness.core.forcing import DEFAULT_ANSWER_CUE
from harness.core.reasoning import ThinkTags
from harness.store import RunStore
from tests.support.helpers import fake_model_dir
from tests.support.trace_engine import HEADER, trace_of

TRACE_ENGINE = "tests.support.trace_engine:TraceEngine"
PROBLEMS, SAMPLES = 5, 8
TAGS = ThinkTags()


def trace_run(shared_data: Path, root: Path, name: str = "run", **overrides: Any) -> harness.RunResult:
    arguments: dict[str, Any] = dict(
        data=str(shared_data / "gsm8k_test.jsonl"),
        model=str(fake_model_dir(root)),
        engine=TRACE_ENGINE,
        problems=PROBLEMS,
        samples=SAMPLES,
        out=root / name,
        workers=1,
        progress="quiet",
        reasoning="on",
        max_tokens=64,
        seed=3,
    )
    return harness.run("gsm8k", **{**arguments, **overrides})


def stored_samples(run_dir: Path) -> list[dict[str, Any]]:
    return RunStore.open(run_dir).read_samples().to_pylist()


def natural(row: dict[str, Any]) -> dict[str, Any]:
    """The trace the sample would have followed unforced (named by the header the fake model writes first)."""
    header = HEADER.search(row["text"])
    assert header is not None, row
    return trace_of(int(header[1]), int(header[2]))


def verdicts_by_sample(table: Any) -> dict[tuple[str, int], tuple[bool, str]]:
    return {(row["problem_id"], row["sample_idx"]): (row["correct"], row["reason"]) for row in table.to_pylist()}


def test_a_budget_cuts_the_thinking_at_exactly_b_tokens_and_forces_the_answer(shared_data, tmp_path):
    budget, answer = 9, 3
    result = trace_run(shared_data, tmp_path, thinking_budget=budget, answer_tokens=answer)
    rows = stored_samples(result.run_dir)
    assert len(rows) == PROBLEMS * SAMPLES
    forced = 0
    for row in rows:
        trace = natural(row)
        natural_text = "".join(" " + word for word in trace["words"])
        if trace["thinking_tokens"] <= budget:  # closed within the budget: the sample it would have been
            assert row["forced"] is False and row["text"] == natural_text, row
            assert row["thinking_tokens"] == trace["thinking_tokens"], row
            # sampled in one piece (all of it within B tokens): its statistics; else continued: unknown
            whole = len(trace["words"]) <= budget
            assert (row["conf_mean"], row["conf_settings"]) == ((-1.0, "trace") if whole else (None, None)), row
            continue
        assert row["conf_mean"] is None and row["conf_settings"] is None  # in pieces: unknown, not one piece's
        forced += 1
        thinking, cue, answer_text = row["text"].partition(TAGS.close + DEFAULT_ANSWER_CUE)
        assert row["forced"] is True and cue, row
        assert thinking.split() == trace["words"][:budget], row  # cut after exactly B thinking tokens
        assert row["thinking_tokens"] == budget and row["text"].count(TAGS.close) == 1, row
        assert 1 <= row["answer_tokens"] <= answer and len(answer_text.split()) == row["answer_tokens"], row
        assert row["n_tokens"] == budget + row["answer_tokens"], row  # the inserted tag and cue are not generated
    assert 0 < forced < len(rows)  # both kinds occur with these seeds
    assert result.summary["budget_forcing"] == {
        "thinking_budget": budget,
        "answer_tokens": answer,
        "answer_cue": DEFAULT_ANSWER_CUE,
        "samples": len(rows),
        "forced": forced,
    }
    # budgets change what is sampled: another budget is another run
    manifest = RunStore.open(result.run_dir).manifest
    assert manifest["config"]["sample_defining"]["budget_forcing"] == {
        "thinking_budget": budget,
        "answer_tokens": answer,
        "answer_cue": DEFAULT_ANSWER_CUE,
    }
    other = trace_run(shared_data, tmp_path, name="other", thinking_budget=budget + 1, answer_tokens=answer)
    assert RunStore.open(other.run_dir).manifest["config_hash"] != manifest["config_hash"]


def test_an_unforced_run_stores_no_forcing_and_keeps_its_hash(shared_data, tmp_path):
    result = trace_run(shared_data, tmp_path)
    manifest = RunStore.open(result.run_dir).manifest
    assert "budget_forcing" not in manifest["config"]["sample_defining"]
    assert all(row["forced"] is None for row in stored_samples(result.run_dir))
    assert result.summary["budget_forcing"] is None


def test_min_thinking_replaces_an_early_closing_tag_with_the_wait_word(shared_data, tmp_path):
    floor = 12
    result = trace_run(shared_data, tmp_path, min_thinking=floor, wait_word="Hmm")
    extended = 0
    for row in stored_samples(result.run_dir):
        trace = natural(row)
        if trace["thinking_tokens"] >= floor:
            assert "Hmm" not in row["text"] and row["thinking_tokens"] == trace["thinking_tokens"], row
            continue
        extended += 1
        thinking = row["text"].partition(TAGS.close)[0]
        assert thinking.split()[: trace["thinking_tokens"] - 1] == trace["words"][: trace["thinking_tokens"] - 1]
        assert "Hmm" in thinking and row["text"].count(TAGS.close) == 1, row
        assert row["thinking_tokens"] >= floor and row["forced"] is False, row
    assert extended


def test_a_sweep_at_b_judges_as_a_run_sampled_with_budget_b(shared_data, tmp_path):
    budgets = [4, 7, 12]
    unforced = trace_run(shared_data, tmp_path)
    report = harness.sweep(unforced.run_dir, budgets, answer_tokens=3, progress="quiet", log=lambda line: None)
    store = RunStore.open(unforced.run_dir)
    key, verdict_key = report["sweep"], report["verdict_set"]
    assert store.sweep_budgets(key) == budgets
    for budget in budgets:
        forced_run = trace_run(shared_data, tmp_path, name=f"forced-{budget}", thinking_budget=budget, answer_tokens=3)
        expected = verdicts_by_sample(RunStore.open(forced_run.run_dir).read_verdicts(columns=["correct", "reason"]))
        swept = verdicts_by_sample(store.sweep_verdicts(key, budget, verdict_key).read(["correct", "reason"]))
        assert swept == expected, budget
        samples = {(r["problem_id"], r["sample_idx"]): r for r in stored_samples(forced_run.run_dir)}
        for row in store.sweep_samples(key, budget).read().to_pylist():
            sample = samples[(row["problem_id"], row["sample_idx"])]
            assert (row["forced"], row["thinking_tokens"], row["n_tokens"]) == (
                sample["forced"],
                sample["thinking_tokens"],
                sample["n_tokens"],
            ), row
    # it generated only the forced answers (at most A tokens per cut sample), nothing for samples that closed
    entries = {entry["budget"]: entry for entry in report["budgets"]}
    for entry in entries.values():
        assert entry["samples"] == PROBLEMS * SAMPLES and entry["verified"] == entry["samples"]
        assert entry["generated_tokens"] <= 3 * entry["forced"]
    assert report["generated_tokens"] == sum(entry["generated_tokens"] for entry in entries.values())
    assert entries[4]["forced"] > entries[12]["forced"]
    # a second call resumes: nothing is left to generate or judge
    again = harness.sweep(unforced.run_dir, budgets, answer_tokens=3, progress="quiet", log=lambda line: None)
    assert (again["generated_tokens"], again["verified"]) == (0, 0) and again["budgets"] == report["budgets"]


def test_a_sweep_resumes_what_a_budget_lacks(shared_data, tmp_path):
    unforced = trace_run(shared_data, tmp_path)
    first = harness.sweep(unforced.run_dir, [4, 8], answer_tokens=3, progress="quiet", log=lambda line: None)
    store = RunStore.open(unforced.run_dir)
    key, verdict_key = first["sweep"], first["verdict_set"]
    # lose budget 8's samples and verdicts, as a crash before they were written would
    for folder in ("samples", f"verdicts/{verdict_key}"):
        for shard in (store.path / "sweeps" / key / "budget-8" / folder).glob("*.parquet"):
            shard.unlink()
    again = harness.sweep(unforced.run_dir, [4, 8], answer_tokens=3, progress="quiet", log=lambda line: None)
    by_budget = {entry["budget"]: entry for entry in again["budgets"]}
    assert again["generated_tokens"] == by_budget[8]["generated_tokens"] > 0
    assert again["verified"] == PROBLEMS * SAMPLES and again["budgets"] == first["budgets"]


@pytest.mark.parametrize(
    ("overrides", "option"),
    [
        ({"thinking_budget": 0}, "thinking_budget"),
        ({"thinking_budget": 8, "answer_tokens": 0}, "answer_tokens"),
        ({"thinking_budget": 8, "min_thinking": 9}, "min_thinking"),
        ({"thinking_budget": 2.5}, "thinking_budget"),
        ({"thinking_budget": 128}, "thinking_budget"),  # above --max-tokens
        ({"thinking_budget": 8, "reasoning": "off"}, "thinking_budget"),
        ({"min_thinking": 8, "reasoning": "off"}, "min_thinking"),
        ({"thinking_budget": 8, "wait_word": " "}, "wait_word"),
    ],
)
def test_bad_forcing_settings_are_one_error_before_any_engine(shared_data, tmp_path, overrides, option):
    with pytest.raises(OptionError) as error:
        trace_run(shared_data, tmp_path, **overrides)
    assert error.value.option == option
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ([8, 4], "increasing"),
        ([4, 4], "repeated"),
        ([0, 4], "at least 1"),
        ([], "non-empty"),
        ([4, 65], "above the run's own thinking budget"),
    ],
)
def test_bad_sweep_budgets_are_one_error_naming_the_option(shared_data, tmp_path, budgets, message):
    unforced = trace_run(shared_data, tmp_path)
    with pytest.raises(OptionError, match=message) as error:
        harness.sweep(unforced.run_dir, budgets, progress="quiet", log=lambda line: None)
    assert error.value.option == "thinking_budgets"
    assert not (unforced.run_dir / "sweeps").exists() or not any((unforced.run_dir / "sweeps").iterdir())


def test_a_sweep_above_a_forced_runs_budget_or_of_a_run_without_thinking_is_refused(shared_data, tmp_path):
    forced = trace_run(shared_data, tmp_path, thinking_budget=8)
    with pytest.raises(OptionError, match=r"above the run's own thinking budget, 8 \(its --thinking-budget\)"):
        harness.sweep(forced.run_dir, [4, 16], progress="quiet", log=lambda line: None)
    whole = trace_run(shared_data, tmp_path, name="whole", reasoning="off")
    with pytest.raises(OptionError, match="reasoning off") as error:
        harness.sweep(whole.run_dir, [4], progress="quiet", log=lambda line: None)
    assert error.value.option == "thinking_budgets"


def test_analyze_measures_the_surface_of_the_sweep_and_the_report_draws_it(shared_data, tmp_path):
    from harness.metrics.estimators import pass_at_k

    unforced = trace_run(shared_data, tmp_path)
    report = harness.sweep(unforced.run_dir, [4, 8, 16], answer_tokens=3, progress="quiet", log=lambda line: None)
    summary = harness.analyze(unforced.run_dir)
    surface = summary["surface"]
    assert surface["sweep"] == report["sweep"] and surface["budgets"] == [4, 8, 16]
    assert (surface["problems"], surface["samples_per_problem"], surface["left_out_problems"]) == (PROBLEMS, SAMPLES, 0)
    store = RunStore.open(unforced.run_dir)
    for entry in surface["per_budget"]:
        rows = store.sweep_samples(report["sweep"], entry["budget"]).read(["n_tokens"]).column("n_tokens").to_pylist()
        assert entry["tokens_per_sample"] == pytest.approx(sum(rows) / len(rows))
        verdicts = store.sweep_verdicts(report["sweep"], entry["budget"], report["verdict_set"]).read(["correct"])
        correct: dict[str, int] = {}
        for row in verdicts.to_pylist():
            correct[row["problem_id"]] = correct.get(row["problem_id"], 0) + int(row["correct"])
        for point in entry["pass_at_k"]:
            expected = sum(pass_at_k(SAMPLES, c, point["k"]) for c in correct.values()) / len(correct)
            assert point["coverage"] == pytest.approx(expected), (entry["budget"], point)
            assert point["low"] <= point["coverage"] <= point["high"]
    assert surface["frontier"] and all(point["budget"] in (4, 8, 16) for point in surface["frontier"])
    assert len(surface["k_laws"]) == 3 and (surface["budget_law"] or surface["budget_law_error"])
    assert harness.load_run(unforced.run_dir).surface == surface
    page = Path(harness.load_run(unforced.run_dir).report()).read_text()
    assert 'id="surface"' in page and "Samples x thinking budget" in page
    # a run without a sweep has no surface
    assert trace_run(shared_data, tmp_path, name="plain").summary["surface"] is None


def test_where_a_sweep_cuts_a_trace():
    from harness.pipeline.sweep import Cut, cut_at
    from tests.support.trace_engine import WordCodec

    def cut(text: str, budget: int, **options: Any) -> Cut:
        return cut_at(text, WordCodec().token_ends(text), TAGS, budget, **options)

    closed = " a b c </think> #### 1"  # 4 thinking tokens, the tag's included
    assert cut(closed, 4) == Cut(False, None, 4) and cut(closed, 9) == Cut(False, None, 4)
    assert cut(closed, 3) == Cut(True, len(" a b c"), 3)
    assert cut(closed, 1) == Cut(True, len(" a"), 1)
    open_ended = " a b c d"  # never closed: forced where it stopped when that is within the budget
    assert cut(open_ended, 6) == Cut(True, len(open_ended), 4) and cut(open_ended, 2) == Cut(True, len(" a b"), 2)
    # a run's own forced sample: the tag follows its last thinking token with no space, so re-tokenizing merges
    # them; the engine's count (3) is its thinking, whatever the merge
    forced = " a b c</think>" + DEFAULT_ANSWER_CUE + " #### 1"
    assert cut(forced, 3, tag_inserted=True, thinking_tokens=3) == Cut(False, None, 3)
    assert cut(forced, 2, tag_inserted=True, thinking_tokens=3) == Cut(True, len(" a b"), 2)


def test_a_sweep_reuses_the_runs_recorded_engine_settings_but_not_its_descriptions():
    from harness.engines.vllm_engine import VLLMEngine
    from harness.pipeline.sweep import sweep_engine_options

    manifest = {
        "config": {"engine": "vllm"},
        "engine": {
            "engine": "vllm",
            "model": "/somewhere",
            "dtype": "float32",
            "max_model_len": 4096,
            "enforce_eager": True,
            "confidence": "logprob; window 2048; tail 2048; bottom 0.1",  # a description, not the option's value
        },
    }
    options = sweep_engine_options(VLLMEngine, manifest, {"max_model_len": 2048})
    assert options == {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048}
    with pytest.raises(OptionError):
        sweep_engine_options(VLLMEngine, manifest, {"max_model_len": 0})


def brute_force_arrays(store: RunStore, key: str, verdict_key: str, budgets: list[int]) -> dict[str, Any]:
    """The surface's arrays as their definition reads: samples judged at every budget, the count most problems
    share, each such problem's first samples; answers compared as texts."""
    from collections import Counter

    from harness.pipeline.sweep import read_sweep_table

    rows = [
        {(r["problem_id"], r["sample_idx"]): r for r in read_sweep_table(store, key, b, verdict_key).to_pylist()}
        for b in budgets
    ]
    present = sorted(set(rows[0]).intersection(*rows[1:]))
    by_problem: dict[str, list[int]] = {}
    for problem_id, index in present:
        by_problem.setdefault(problem_id, []).append(index)
    samples = Counter(len(found) for found in by_problem.values()).most_common(1)[0][0]
    kept = [problem_id for problem_id in sorted(by_problem) if len(by_problem[problem_id]) >= samples]
    table = {
        name: [[[rows[b][(p, i)][name] for b in range(len(budgets))] for i in by_problem[p][:samples]] for p in kept]
        for name in ("correct", "n_tokens", "answer")
    }
    swept = {problem_id for by_key in rows for problem_id, _ in by_key}  # at any budget
    return {"problems": kept, "left_out": len(swept) - len(kept), **table}


def test_the_surface_arrays_are_their_definition_also_when_a_budget_lacks_rows(shared_data, tmp_path):
    from harness.pipeline.surface import sweep_arrays

    run = trace_run(shared_data, tmp_path)
    report = harness.sweep(  # chunks of 8 samples: budget 8's rows come in several shards
        run.run_dir, [4, 8], answer_tokens=3, engine_options={"concurrent": "8"}, progress="quiet", log=lambda _: None
    )
    store = RunStore.open(run.run_dir)
    key, verdict_key = report["sweep"], report["verdict_set"]
    for lacking in (False, True):
        if lacking:  # lose one shard of budget 8's rows: those samples are not judged at every budget
            shards = sorted((store.path / "sweeps" / key / "budget-8" / "samples").glob("part-*.parquet"))
            assert len(shards) > 1
            shards[0].unlink()
        arrays = sweep_arrays(RunStore.open(run.run_dir), verdict_key)
        expected = brute_force_arrays(RunStore.open(run.run_dir), key, verdict_key, [4, 8])
        assert arrays is not None and arrays.problem_ids == expected["problems"]
        assert arrays.left_out_problems == expected["left_out"] and (expected["left_out"] > 0) == lacking
        assert arrays.correct.tolist() == expected["correct"]
        assert arrays.tokens.tolist() == [[[float(v or 0) for v in s] for s in p] for p in expected["n_tokens"]]
        for p, problem in enumerate(expected["answer"]):
            for b in range(2):
                texts = [sample[b] for sample in problem]
                ids = arrays.answers[p, :, b].tolist()
                for i, j in itertools.combinations(range(len(texts)), 2):  # equal ids exactly for equal answers
                    assert (ids[i] == ids[j] != -1) == (bool(texts[i]) and texts[i] == texts[j])
                assert all((ids[i] == -1) == (not texts[i]) for i in range(len(texts)))
