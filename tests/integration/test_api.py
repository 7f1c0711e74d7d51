"""The Python API: ``harness.run`` (fake engine; the real model in a slow test) and ``harness.load_run`` on a
stored run and on the monkey_business counts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import harness
from harness import OptionError, Summary, analyze, load_run, run, sample, verify
from harness.forecasting.budget import plan_budget
from harness.forecasting.costs import Prices, Usage
from harness.forecasting.forecast import forecast
from harness.pipeline import stored_run as stored_run_module
from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.support.helpers import FAKE_ENGINE, fake_run_arguments, fake_sample_arguments

MONKEY = "monkey_business_pythia_math_10k_counts.jsonl"


@pytest.fixture(scope="module")
def stored_run(make_fake_run):
    """A run made by ``run()`` on the fake engine (8 GSM8K problems x 8 samples)."""
    return make_fake_run()


def test_run_samples_verifies_analyses_and_reports_then_resumes_with_nothing_new(shared_data, tmp_path):
    messages: list[str] = []
    arguments = fake_run_arguments(shared_data, tmp_path, problems=5, samples=4, log=messages.append)
    result = run("gsm8k", **arguments)

    assert result.run_dir == tmp_path / "run"
    assert result.generated == 20 and result.sampling["wanted"] == 20 and result.sampling["already_stored"] == 0
    assert result.sampling["session"]["status"] == "complete"
    assert result.verification["verified"] == 20 and sum(result.verification["reasons"].values()) == 20
    assert result.summary == json.loads((result.run_dir / "summary.json").read_text())
    assert result.summary["problems"] == 5 and result.summary["samples"] == 20
    assert result.report == result.run_dir / "report.html" and result.report.is_file()
    assert (result.run_dir / "coverage.png").read_bytes()[:4] == b"\x89PNG"
    assert any(message.startswith("run directory:") for message in messages)
    assert result.to_json()["summary"] == result.summary and result.to_json()["run"] == str(result.run_dir)
    store = RunStore.open(result.run_dir)
    assert store.read_samples(columns=["seed"]).num_rows == 20
    assert int(run_counts(store).num_correct.sum()) == result.summary["correct"]
    sessions = len(store.manifest["sessions"])

    again = run("gsm8k", **arguments)
    assert again.generated == 0 and again.sampling["session"] is None and again.sampling["already_stored"] == 20
    assert again.verification["verified"] == 0
    store = RunStore.open(result.run_dir)
    assert store.read_samples(columns=["seed"]).num_rows == 20 and len(store.manifest["sessions"]) == sessions
    assert again.summary["pass_at_k"] == result.summary["pass_at_k"]
    assert again.load().summary == again.summary


@pytest.mark.parametrize(
    "overrides, option",
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"samples": 0}, "samples"),
        ({"problems": 0}, "problems"),
        ({"top_p": 1.5}, "top_p"),
        ({"adaptive_pilot": -3}, "adaptive_pilot"),
        ({"progress": "fancy"}, "progress"),
        # types: each refused by name before anything is written (a string seed once changed the hash silently)
        ({"samples": "20"}, "samples"),
        ({"samples": 2.0}, "samples"),
        ({"problems": True}, "problems"),
        ({"data": {"path": "x.jsonl"}}, "data"),
        ({"top_p": None}, "top_p"),
        ({"temperature": "hot"}, "temperature"),
        ({"task_options": ["shots", 4]}, "task_options"),
        ({"task_options": {"shots": "4"}}, "task_options.shots"),
        ({"task_options": {"shotz": 4}}, "task_options.shotz"),
        ({"engine_options": {"delay": "fast"}}, "engine_options.delay"),
        ({"out": 5}, "out"),
        ({"seed": "1"}, "seed"),
        ({"engines": "2"}, "engines"),
        ({"verifier": 3}, "verifier"),
        ({"workers": 1.5}, "workers"),
        ({"log": "stdout"}, "log"),
    ],
)
def test_run_refuses_bad_parameters_by_name_before_writing_anything(shared_data, tmp_path, overrides, option):
    with pytest.raises(OptionError) as refused:
        run("gsm8k", **fake_run_arguments(shared_data, tmp_path, **overrides))
    assert refused.value.option == option and "--" not in str(refused.value)
    assert not (tmp_path / "run").exists()


def test_load_run_reads_what_summary_json_holds_without_recomputing(stored_run, monkeypatch):
    def no_recomputation(*args, **kwargs):
        raise AssertionError("recomputed what summary.json holds")

    summary = json.loads((stored_run / "summary.json").read_text())
    monkeypatch.setattr(stored_run_module, "analyze_run", no_recomputation)
    monkeypatch.setattr(stored_run_module, "forecast_coverage", no_recomputation)
    loaded = load_run(stored_run)

    assert loaded.is_run_directory and loaded.summary == summary
    table = loaded.pass_at_k()
    assert table.to_dict("records") == summary["pass_at_k"]
    law = loaded.law
    assert (law.a_, law.b_, law.r2_) == (summary["fit"]["a"], summary["fit"]["b"], summary["fit"]["r2"])
    assert law.predict(4) == pytest.approx(np.exp(law.a_ * 4**law.b_))
    stored = summary["forecast"]
    predicted = loaded.forecast(stored["k"])
    assert (predicted.coverage, predicted.low, predicted.high, predicted.method) == (
        stored["coverage"],
        stored["low"],
        stored["high"],
        stored["method"],
    )
    assert loaded.usage == summary["usage"]


def test_load_run_counts_curve_forecast_and_selectors_agree_with_the_store(stored_run):
    loaded = load_run(stored_run)
    counts = run_counts(RunStore.open(stored_run))

    frame = loaded.counts
    assert list(frame.columns[:3]) == ["problem_id", "num_samples", "num_correct"]
    assert frame.problem_id.tolist() == counts.problem_ids.tolist()
    assert frame.num_samples.tolist() == counts.num_samples.tolist() == [8] * 8
    assert frame.num_correct.tolist() == counts.num_correct.tolist()

    # k not in the summary (3) is estimated from the counts; k = 1 is the mean success rate
    curve = loaded.pass_at_k([1, 3, 8])
    assert curve.k.tolist() == [1, 3, 8]
    assert curve.coverage[0] == pytest.approx((frame.num_correct / frame.num_samples).mean())
    assert curve.coverage[2] == pytest.approx((frame.num_correct > 0).mean())
    assert (curve.low <= curve.coverage).all() and (curve.coverage <= curve.high).all()
    by_k = {row["k"]: row for row in loaded.summary["pass_at_k"]}
    assert curve.coverage[2] == pytest.approx(by_k[8]["coverage"])
    assert (curve.low[2], curve.high[2]) == pytest.approx((by_k[8]["low"], by_k[8]["high"]))
    wider = loaded.pass_at_k(confidence=0.99)
    assert (wider.high - wider.low >= loaded.pass_at_k().high - loaded.pass_at_k().low - 1e-12).all()

    ahead = loaded.forecast(200, method="bayes", confidence=0.8)
    direct = forecast(counts, 200, method="bayes", confidence=0.8)
    assert (ahead.coverage, ahead.low, ahead.high) == (direct.coverage, direct.low, direct.high)

    selectors = loaded.selectors("coverage,majority", ks=[1, 2, 8])
    assert set(selectors.selector) == {"coverage", "majority"}
    coverage = selectors[selectors.selector == "coverage"]
    assert coverage.k.tolist() == [1, 2, 8]
    assert coverage.accuracy.tolist() == pytest.approx([by_k[k]["coverage"] for k in (1, 2, 8)])
    table = selectors.pivot(index="k", columns="selector", values="accuracy")
    assert (table["majority"] <= table["coverage"] + 1e-12).all()


def test_load_run_analyses_a_missing_or_stale_summary_once(stored_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(stored_run, copy)
    (copy / "summary.json").unlink()
    loaded = load_run(copy)
    assert loaded.summary["problems"] == 8
    assert json.loads((copy / "summary.json").read_text()) == loaded.summary

    stale = dict(loaded.summary, samples=1, pass_at_1=-1.0)
    (copy / "summary.json").write_text(json.dumps(stale))
    assert load_run(copy).summary["pass_at_1"] == loaded.summary["pass_at_1"]


def test_load_run_on_the_monkey_counts_picks_a_group(shared_data):
    everything = load_run(shared_data / MONKEY)
    assert not everything.is_run_directory and len(everything.counts) == 7 * 128
    assert set(everything.groups("model")) == {
        "Pythia 70M",
        "Pythia 160M",
        "Pythia 410M",
        "Pythia 1B",
        "Pythia 2.8B",
        "Pythia 6.9B",
        "Pythia 12B",
    }

    model = everything.group("model", "Pythia 2.8B")
    frame = everything.counts[everything.counts.model == "Pythia 2.8B"]
    assert len(model.counts) == 128 and model.counts.num_correct.sum() == frame.num_correct.sum()

    curve = model.pass_at_k()
    assert curve.k.iloc[0] == 1 and curve.k.iloc[-1] == 10_000
    assert curve.coverage.iloc[0] == pytest.approx((frame.num_correct / frame.num_samples).mean())
    assert curve.coverage.iloc[-1] == pytest.approx((frame.num_correct > 0).mean())
    assert curve.coverage.is_monotonic_increasing
    assert model.pass_at_k([1]).coverage[0] == pytest.approx(curve.coverage.iloc[0])

    law = model.law  # fitted on the fly, as the analysis fits it
    assert law.a_ < 0 and law.b_ < 0 and law.r2_ > 0.9
    assert law.predict(10_000) == pytest.approx(curve.coverage.iloc[-1], abs=0.05)
    assert (law.a_, law.b_) == (model.summary["fit"]["a"], model.summary["fit"]["b"])

    at_sampled = model.forecast(10_000, method="bayes")
    assert at_sampled.low <= curve.coverage.iloc[-1] <= at_sampled.high
    assert at_sampled.coverage == pytest.approx(curve.coverage.iloc[-1], abs=0.005)
    beyond = model.forecast(100_000)
    assert beyond.low <= beyond.coverage <= beyond.high and beyond.confidence == 0.9
    assert beyond.coverage >= curve.coverage.iloc[-1] - 0.01

    with pytest.raises(ValueError, match="no problems with model = 'Pythia 3B'; its values are"):
        everything.group("model", "Pythia 3B")
    with pytest.raises(ValueError, match="selectors need the samples"):
        model.selectors()


def test_load_run_refuses_what_it_cannot_open(shared_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory or counts file"):
        load_run(tmp_path / "nothing")
    with pytest.raises(OptionError) as refused:
        load_run(shared_data / MONKEY, verifier="math")
    assert refused.value.option == "verifier"
    for arguments, option in (((5,), "path"), ((shared_data / MONKEY, 3), "verifier")):
        with pytest.raises(OptionError) as refused:
            load_run(*arguments)
        assert refused.value.option == option


def test_import_harness_loads_no_engine_and_the_layers_stay_light():
    code = (
        "import sys, harness, harness.store, harness.cli\n"
        "steps = sorted(name for name in sys.modules if name.startswith('harness.pipeline.'))\n"
        "assert steps == ['harness.pipeline.options'], f'import harness.store / harness.cli loaded the steps {steps}'\n"
        "from harness import run, load_run\n"
        "heavy = sorted(name for name in ('vllm', 'torch') if name in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert run.__module__ == 'harness.pipeline.api' and callable(load_run)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_run_on_the_real_embedded_model(shared_data, tmp_path):
    result = run(
        "gsm8k",
        data=str(shared_data / "gsm8k_test.jsonl"),
        problems=2,
        samples=2,
        max_tokens=32,
        out=tmp_path / "run",
        progress="quiet",
    )
    assert result.generated == 4 and result.verification["verified"] == 4
    assert result.summary["problems"] == 2 and result.summary["samples_per_problem"]["min"] == 2
    assert result.summary["task"] == "gsm8k" and result.summary["verifier"]["name"] == "numeric"
    assert result.report.is_file()
    tokens = RunStore.open(result.run_dir).read_samples(columns=["n_tokens"]).column("n_tokens").to_pylist()
    assert len(tokens) == 4 and all(0 <= n <= 32 for n in tokens)
    assert load_run(result.run_dir).pass_at_k().k.tolist() == [1, 2]


def test_the_example_script_runs_on_the_monkey_counts(shared_data):
    done = subprocess.run(
        [sys.executable, "examples/api.py", str(shared_data / MONKEY), "--group", "Pythia 12B"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[model=Pythia 12B]" in done.stdout and "law: log(coverage) = " in done.stdout
    assert "forecast: coverage@100,000 = " in done.stdout


def test_star_import_gives_the_public_api_and_only_what_exists():
    namespace: dict = {}
    exec("from harness import *", namespace)
    exported = {name for name in namespace if not name.startswith("__")}
    assert exported == set(harness.__all__) == set(harness._EXPORTS)
    assert {"run", "sample", "verify", "analyze", "load_run", "Run", "RunResult", "Summary", "ProgressMode"} <= exported
    with pytest.raises(AttributeError):
        harness.PowerLawFit  # noqa: B018 - the attribute access is what is tested
    assert (REPO_ROOT / "harness" / "py.typed").is_file(), "the package says it is typed (PEP 561)"


def check_typed_dict(value: object, shape: type, where: str = "summary") -> None:
    """``value`` has exactly the keys ``shape`` (a TypedDict) declares (its required ones at least), each of
    the declared type; nested TypedDicts are checked the same way."""
    import types
    import typing

    from harness.core.options import accepts

    assert isinstance(value, dict), where
    hints = typing.get_type_hints(shape)
    assert set(value) <= set(hints), f"{where}: keys the type does not declare: {set(value) - set(hints)}"
    assert shape.__required_keys__ <= set(value), f"{where}: missing {shape.__required_keys__ - set(value)}"
    for key, item in value.items():
        annotation = hints[key]
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        members = typing.get_args(annotation) if union else (annotation,)
        typed = [member for member in members if typing.is_typeddict(member)]
        if typed and item is not None:
            check_typed_dict(item, typed[0], f"{where}.{key}")
        elif typing.get_origin(annotation) is list and typing.is_typeddict(typing.get_args(annotation)[0]):
            for index, entry in enumerate(item):
                check_typed_dict(entry, typing.get_args(annotation)[0], f"{where}.{key}[{index}]")
        else:
            assert accepts(annotation, item), f"{where}.{key}: {item!r} is not {annotation}"


def test_the_steps_one_by_one_do_what_run_does_and_return_their_types(shared_data, tmp_path, stored_run):
    """sample, verify and analyze as separate calls store and summarise what run() does in one."""
    messages: list[str] = []
    arguments = fake_sample_arguments(shared_data, tmp_path, problems=8, samples=8, log=messages.append)
    sampled = sample("gsm8k", **arguments)
    assert sampled.run_dir == tmp_path / "run" and sampled.generated == 64 and sampled.sampling["already_stored"] == 0
    assert sampled.to_json() == {"run": str(sampled.run_dir), "sampling": sampled.sampling}
    assert any(message.startswith("run directory:") for message in messages)
    verification = verify(sampled.run_dir, workers=1, progress="quiet", log=messages.append)
    assert verification["verified"] == 64 and sum(verification["reasons"].values()) == 64
    assert messages[-1].startswith(f"verified 64 samples into {verification['verdict_set']}: ")
    summary = analyze(sampled.run_dir)
    assert summary == json.loads((sampled.run_dir / "summary.json").read_text())
    expected = json.loads((stored_run / "summary.json").read_text())
    # what differs: the path, the model's (a stand-in directory of each test), and what the throughput measured here
    # and the writer's lock make of usage, budget costs and completeness, and the run's identity and shards
    different = {"run", "config_hash", "usage", "budget", "completeness", "run_id", "fingerprint"}
    assert {key: summary[key] for key in summary if key not in different} == {
        key: expected[key] for key in expected if key not in different
    }
    check_typed_dict(summary, Summary)
    assert sample("gsm8k", **arguments).generated == 0, "a second call generates nothing new"


def test_summary_typed_dict_fails_on_drift(stored_run):
    summary = json.loads((stored_run / "summary.json").read_text())
    check_typed_dict(summary, Summary)
    with pytest.raises(AssertionError, match="keys the type does not declare"):
        check_typed_dict({**summary, "new_field": 1}, Summary)
    with pytest.raises(AssertionError, match=r"summary\.forecast\.high"):
        check_typed_dict({**summary, "forecast": {**summary["forecast"], "high": "0.9"}}, Summary)


def test_a_counts_summary_is_a_summary_too(shared_data):
    check_typed_dict(load_run(shared_data / MONKEY).group("model", "Pythia 2.8B").summary, Summary)


def test_run_budget_is_ttc_budget_on_a_loaded_run(stored_run, shared_data, tmp_path):
    loaded = load_run(stored_run)
    assert not hasattr(loaded, "store"), "the store is the Run's own"
    plan = loaded.budget(0.5, price_per_mtok=2.0, seed=1, plot=tmp_path / "budget.png")
    counts = run_counts(RunStore.open(stored_run))
    usage = Usage.from_mapping(loaded.usage)
    direct = plan_budget(counts, 0.5, "auto", 0.9, usage, Prices(per_million_tokens=2.0), seed=1)
    assert plan.to_json() == direct.to_json()
    assert plan.costs["k"].money is not None and (tmp_path / "budget.png").read_bytes()[:4] == b"\x89PNG"
    given = loaded.budget(0.5, usage={"output_tokens_per_sample": 1000.0})
    assert given.costs["k"].generated_tokens == pytest.approx(plan.k * len(counts) * 1000.0)
    with pytest.raises(OptionError) as refused:
        loaded.budget(0.5, usage={"tokens": 1.0})
    assert refused.value.option == "usage"
    with pytest.raises(OptionError, match="not both"):
        loaded.budget(0.5, price_per_mtok=1.0, gpu_hour_price=1.0)
    counts_only = load_run(shared_data / MONKEY).group("model", "Pythia 2.8B")
    assert counts_only.budget(0.5).costs["k"].generated_tokens is None, "counts carry no token figures"
    assert counts_only.budget(0.5, usage={"output_tokens_per_sample": 10.0}).costs["k"].generated_tokens is not None


def test_run_report_writes_the_page_of_a_run_directory_only(stored_run, shared_data, tmp_path):
    page = load_run(stored_run).report(tmp_path / "page.html", price_per_mtok=1.0)
    assert page == tmp_path / "page.html" and "<h1" in page.read_text()
    with pytest.raises(ValueError, match="a report shows the samples, which counts do not hold"):
        load_run(shared_data / MONKEY).report(tmp_path / "counts.html")


def test_engine_and_task_options_are_typed_by_their_declarations(shared_data, tmp_path):
    from harness.engines import engine_class
    from tasks import task_class

    declared = engine_class(FAKE_ENGINE).declared_options()
    assert list(declared) == ["delay", "crash_marker", "confidence", "confidence_window", "confidence_tail"]
    assert engine_class(FAKE_ENGINE).takes_any_option()
    vllm = engine_class("vllm").declared_options()
    assert {"dtype", "max_model_len", "gpu_memory_utilization", "tensor_parallel_size"} <= set(vllm)
    assert vllm["max_model_len"].default == 4096 and "seed" not in vllm and "model" not in vllm
    assert vllm["confidence_window"].default == 2048 and vllm["confidence_top_logprobs"].default == 0
    gsm8k = task_class("gsm8k")
    assert list(gsm8k.declared_options()) == ["split", "shots", "fewshot_data", "prompt_style", "prompt_template"]
    assert gsm8k.parse_options(["shots=4", "prompt_style=chat"], "task_options") == {
        "shots": 4,
        "prompt_style": "chat",
    }
    with pytest.raises(OptionError, match=r"^engine_options\.max_model_len: must be at least 1, got 0$"):
        run("gsm8k", **fake_run_arguments(shared_data, tmp_path, engine="vllm", engine_options={"max_model_len": 0}))
    assert not (tmp_path / "run").exists()
