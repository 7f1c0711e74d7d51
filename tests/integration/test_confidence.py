"""Confidence statistics recorded at sampling time (issue 21 item 4): each stored sample's statistics equal a
direct computation from its tokens' log-probabilities, and the conf-* selectors read them in
compare-verifiers, the API and the report; bad input is refused before anything is written."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from harness import load_run, sample, verify
from harness.core.errors import OptionError
from harness.metrics.selection import best_of_k
from harness.reporting.selector_comparison import compare_verifiers, parse_selectors
from harness.store import RunStore
from tests.support.fake_engine import fake_token_logprobs
from tests.support.helpers import fake_sample_arguments, ttc


def direct_stats(values: list[float], window: int, tail: int, bottom: float = 0.1) -> dict[str, float]:
    """The four statistics by their definitions, from every token's value at once."""
    array = np.asarray(values)
    if array.size < window:
        means = np.array([array.mean()])
    else:
        means = np.array([array[i : i + window].mean() for i in range(array.size - window + 1)])
    lowest = np.sort(means)[: max(1, int(bottom * means.size))]
    return {
        "conf_mean": array.mean(),
        "conf_min_window": means.min(),
        "conf_tail": array[-tail:].mean(),
        "conf_bottom_window": lowest.mean(),
    }


@pytest.fixture(scope="module")
def sampled(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("confidence")
    run_dir = sample("gsm8k", **fake_sample_arguments(shared_data, root, samples=6, task_options={"shots": 0})).run_dir
    verify(run_dir, workers=1, progress="quiet")
    return run_dir


def test_stored_statistics_equal_a_direct_computation_from_token_logprobs(sampled):
    rows = RunStore.open(sampled).read_samples().to_pylist()
    assert rows and all(row["conf_settings"] == "logprob; window 3; tail 2; bottom 0.1" for row in rows)
    windows_differ = 0
    for row in rows:
        values = fake_token_logprobs(row["text"])
        expected = direct_stats(values, window=3, tail=2)
        for column, value in expected.items():
            assert row[column] == pytest.approx(value, abs=1e-12), (column, row["problem_id"], row["sample_idx"])
        assert row["logprob_sum"] == pytest.approx(sum(values))
        windows_differ += expected["conf_min_window"] < expected["conf_mean"] - 1e-9
    assert windows_differ > len(rows) / 2, "the statistics differ from the mean: the test can tell them apart"


def test_confidence_selectors_in_compare_verifiers_and_the_api(sampled):
    store = RunStore.open(sampled)
    result = compare_verifiers(store)
    names = [entry["selector"] for entry in result["selectors"]]
    assert names == [
        "coverage",
        "majority",
        "likelihood",
        "conf-min-window",
        "conf-tail",
        "conf-bottom10",
        "conf-majority=10",
    ]
    entry = result["selectors"][names.index("conf-min-window")]
    assert entry["confidence"] == "logprob; window 3; tail 2; bottom 0.1"
    assert "DeepConf lowest group" in entry["description"]
    samples = store.read_samples(columns=["conf_min_window"])
    verdicts = store.read_verdicts(columns=["correct"])
    expected = []
    for problem in store.problems():
        rows = np.flatnonzero(np.asarray(samples.column("problem_id").to_pylist()) == problem.problem_id)
        statistic = np.asarray(samples.column("conf_min_window").to_pylist())[rows]
        correct = np.asarray(verdicts.column("correct").to_pylist())[rows]
        expected.append(best_of_k(statistic, correct, result["ks"]))
    assert entry["accuracy"] == pytest.approx(np.mean(expected, axis=0).tolist())
    # conf-majority keeping all k is majority vote
    full = compare_verifiers(store, parse_selectors("majority,conf-majority=100"))
    assert full["selectors"][0]["accuracy"] == pytest.approx(full["selectors"][1]["accuracy"])
    frame = load_run(sampled).selectors("coverage,conf-tail,conf-majority=50")
    assert set(frame["selector"]) == {"coverage", "conf-tail", "conf-majority=50"}


@pytest.mark.parametrize("eta", ["0", "-5", "100.5", "nan", "many"])
def test_conf_majority_eta_outside_0_100_is_refused_naming_the_flag(sampled, eta):
    with pytest.raises(OptionError, match=r"ETA"):
        parse_selectors(f"conf-majority={eta}")
    before = sorted(path.name for path in sampled.iterdir())
    result = ttc("compare-verifiers", str(sampled), "--selectors", f"coverage,conf-majority={eta}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--selectors" in lines[0] and "ETA" in lines[0], result.stderr
    assert sorted(path.name for path in sampled.iterdir()) == before, "nothing written into the run"


def rewrite_samples(run_dir, change) -> None:
    """Rewrite every sample shard of ``run_dir`` through ``change(table) -> table`` (a run of other times)."""
    import pyarrow.parquet as pq

    for path in (run_dir / "samples").glob("part-*.parquet"):
        table = pq.read_table(path)
        pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), path)


def test_samples_without_statistics_leave_the_conf_selectors_out(sampled, tmp_path):
    """A run sampled before the statistics were recorded (or by an engine without log-probabilities)."""
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(sampled, copy)
    rewrite_samples(copy, lambda table: table.select([n for n in table.column_names if not n.startswith("conf_")]))
    store = RunStore.open(copy)
    assert store.read_samples(["conf_tail"]).column("conf_tail").null_count == 5 * 6
    names = [entry["selector"] for entry in compare_verifiers(store)["selectors"]]
    assert names == ["coverage", "majority", "likelihood"]
    with pytest.raises(OptionError, match="no confidence statistics"):
        compare_verifiers(store, parse_selectors("conf-tail"))


def test_statistics_computed_with_other_settings_do_not_compare(sampled, tmp_path):
    import shutil

    copy = tmp_path / "mixed"
    shutil.copytree(sampled, copy)
    first = min((copy / "samples").glob("part-*.parquet"))

    def other_window(table: pa.Table) -> pa.Table:
        index = table.column_names.index("conf_settings")
        return table.set_column(index, "conf_settings", pa.array(["logprob; window 9"] * table.num_rows))

    import pyarrow.parquet as pq

    table = pq.read_table(first)
    pq.write_table(other_window(table).replace_schema_metadata(table.schema.metadata), first)
    with pytest.raises(OptionError, match="different settings"):
        compare_verifiers(RunStore.open(copy), parse_selectors("conf-min-window"))
