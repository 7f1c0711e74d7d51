"""ttc compare: shared problems or refusal, different tasks refused, compute-matched coverage by hand."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import harness.cli  # noqa: F401  (registers the commands on the app)
from harness.cli.app import app
from harness.core.errors import OptionError
from harness.forecasting.costs import Prices, Usage, cost_of
from harness.forecasting.forecast import fit_power_law
from harness.reporting.compare import ComparedRun, load_runs
from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from tests.support.helpers import cli_flags, fake_model_dir
from tests.support.report_fixtures import verified_fake_run, write_level_problems

PARAMETERS = {"small": 1000, "large": 4000}
TOKENS_PER_SAMPLE, PROMPT_TOKENS = 6, 7  # the fake engine's completions are 6 words; it reports 7 prompt tokens


def make_run(root, name: str, problems: int, samples: int, seed: int, task: str = "jsonl", data=None):
    model = fake_model_dir(root, f"model-{name}")
    return verified_fake_run(root / name, model, data, problems, samples, task=task, seed=seed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    data = write_level_problems(root / "levels.jsonl", 12)
    return {
        "small": make_run(root, "small", problems=12, samples=8, seed=0, data=data),
        "large": make_run(root, "large", problems=8, samples=4, seed=1, data=data),
    }


def compare(*args: str):
    return CliRunner().invoke(app, ["compare", *args])


def hand_coverage(n: np.ndarray, c: np.ndarray, k: int) -> float:
    return float(np.mean([1 - math.comb(int(ni - ci), k) / math.comb(int(ni), k) for ni, ci in zip(n, c)]))


def shared_counts(run_dir, shared):
    counts = run_counts(RunStore.open(run_dir))
    keep = np.isin(counts.problem_ids.astype(str), sorted(shared))
    return counts.num_samples[keep], counts.num_correct[keep]


def test_compare_restricts_to_shared_problems_and_matches_compute_by_hand(runs, tmp_path):
    out = tmp_path / "out"
    done = compare(
        str(runs["small"]),
        str(runs["large"]),
        "--out",
        str(out),
        "--parameters",
        str(PARAMETERS["small"]),
        "--parameters",
        str(PARAMETERS["large"]),
        "--price-per-mtok",
        "0.1",
        "--price-per-mtok",
        "0.5",
    )
    assert done.exit_code == 0, done.output
    assert "problem sets differ (small has 12, large has 8): comparing on the 8 problems all runs share" in done.output
    assert "coverage at equal FLOPs" in done.output and "samples per problem to reach" in done.output
    result = json.loads((out / "compare.json").read_text())
    assert result["problems"] == 8 and result["restricted_to_shared_problems"]
    assert result["problems_in_runs"] == {"small": 12, "large": 8}
    shared = {f"p{i}" for i in range(8)}
    small, large = (shared_counts(runs[name], shared) for name in ("small", "large"))
    entries = {entry["label"]: entry for entry in result["runs"]}

    # 2 x parameters x tokens per sample; the prompt prefilled once per problem
    assert entries["small"]["flops_per_sample"] == 2 * 1000 * TOKENS_PER_SAMPLE == 12_000
    assert entries["small"]["prefill_flops_per_problem"] == 2 * 1000 * PROMPT_TOKENS == 14_000
    assert entries["large"]["flops_per_sample"] == 48_000 and entries["large"]["prefill_flops_per_problem"] == 56_000
    assert entries["small"]["coverage_all_k"][-1] == pytest.approx(hand_coverage(*small, 8))
    small_counts = run_counts(RunStore.open(runs["small"]))
    small_shared = small_counts.subset(np.isin(small_counts.problem_ids.astype(str), sorted(shared)))
    assert entries["small"]["fit"] == fit_power_law(small_shared).to_json(), "the one power law of these counts"
    assert large[1].sum() == 1, "one success in 32 samples: too few for a law"
    assert entries["large"]["fit"] is None and entries["large"]["forecast"]["coverage"] is None
    assert all(
        reached["k"] is None and reached["source"].startswith("no forecast") for reached in entries["large"]["targets"]
    )

    # budgets: what "large" spends on k = 1, 2, 4 (48,000 k + 56,000); "small" affords floor((B - 14,000) / 12,000)
    flops = result["compute_matched"]["flops"]
    assert flops["budget_run"] == "large"
    assert [row["budget"] for row in flops["budgets"]] == [104_000, 152_000, 248_000]
    assert [row["runs"]["small"]["k"] for row in flops["budgets"]] == [7, 11, 19]
    assert [row["runs"]["large"]["k"] for row in flops["budgets"]] == [1, 2, 4]
    first = flops["budgets"][0]["runs"]
    assert first["small"]["source"] == "measured" and first["small"]["coverage"] == pytest.approx(
        hand_coverage(*small, 7)
    )
    assert first["large"]["coverage"] == pytest.approx(hand_coverage(*large, 1))
    assert first["small"]["low"] <= first["small"]["coverage"] <= first["small"]["high"]
    assert [row["runs"]["small"]["source"] for row in flops["budgets"][1:]] == ["forecast", "forecast"]

    # money: (k x 6 + 7) tokens / 1e6 x price; "large" (0.5) is costlier per sample than "small" (0.1)
    money = result["compute_matched"]["money"]
    assert money["budgets"][0]["budget"] == pytest.approx((6 + 7) / 1e6 * 0.5)
    assert money["budgets"][0]["runs"]["small"]["k"] == math.floor(((6 + 7) * 0.5 - 7 * 0.1) / (6 * 0.1))  # 9

    for entry, (n, c) in ((entries["small"], small),):  # "large" has no law: no target is forecast (above)
        curve = [hand_coverage(n, c, k) for k in range(1, int(n.min()) + 1)]
        for reached in entry["targets"]:
            if reached["source"] == "measured":
                k = reached["k"]
                assert curve[k - 1] >= reached["target"] and (k == 1 or curve[k - 2] < reached["target"])
            else:
                assert max(curve) < reached["target"]


def test_compare_html_is_self_contained_with_both_figures(runs, tmp_path):
    done = compare(str(runs["small"]), str(runs["large"]), "--out", str(tmp_path), "--parameters", "1000")
    assert done.exit_code == 0, done.output
    assert "coverage at equal money: not available (small: price (--price-per-mtok) unknown" in done.output
    html = (tmp_path / "compare.html").read_text()
    assert "<script" not in html.lower() and not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", html)
    sources = re.findall(r"<img [^>]*src=\"([^\"]*)\"", html)
    assert len(sources) == 2, "coverage vs k, coverage vs FLOPs"
    assert all(base64.b64decode(source.split(",", 1)[1])[:4] == b"\x89PNG" for source in sources)
    assert "Coverage at equal FLOPs" in html and "Samples per problem to reach a coverage target" in html


def test_strict_refuses_different_problem_sets(runs, tmp_path):
    done = compare(str(runs["small"]), str(runs["large"]), "--out", str(tmp_path), "--strict")
    assert done.exit_code == 2
    assert "problem sets differ (small has 12, large has 8; 8 shared) and a strict comparison refuses" in done.output
    assert not (tmp_path / "compare.json").exists()


def test_runs_on_different_tasks_are_refused(runs, shared_data, tmp_path):
    other = make_run(
        tmp_path, "gsm8k", problems=4, samples=2, seed=0, task="gsm8k", data=shared_data / "gsm8k_test.jsonl"
    )
    done = compare(str(runs["small"]), str(other), "--out", str(tmp_path / "out"))
    assert done.exit_code == 2
    assert "the runs are on different tasks: small on 'jsonl', gsm8k on 'gsm8k'" in done.output


def test_json_output_and_bad_option_counts(runs, tmp_path):
    done = compare(
        str(runs["small"]), str(runs["large"]), "--out", str(tmp_path), "--json", "--label", "a", "--label", "b"
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert [entry["label"] for entry in result["runs"]] == ["a", "b"]
    assert result["compute_matched"]["flops"]["missing"].startswith("a: model parameters (--parameters) unknown")
    wrong = compare(str(runs["small"]), str(runs["large"]), *cli_flags(out=tmp_path, parameters=[1, 2, 3]))
    assert wrong.exit_code == 2 and "give one value for all runs or one per run (2), not 3" in wrong.output
    alone = compare(str(runs["small"]), "--out", str(tmp_path))
    assert alone.exit_code == 2 and "at least two run directories" in alone.output


@pytest.mark.browser
def test_compare_html_renders_in_headless_chromium(runs, chromium, tmp_path):
    done = compare(
        str(runs["small"]), str(runs["large"]), *cli_flags(out=tmp_path, parameters=1000, price_per_mtok=0.2)
    )
    assert done.exit_code == 0, done.output
    page = chromium.open_page((tmp_path / "compare.html").resolve().as_uri())
    assert page.errors() == []
    widths = page.evaluate("Array.from(document.images).map(image => image.complete ? image.naturalWidth : 0)")
    assert len(widths) == 3 and all(width > 0 for width in widths), "coverage vs k, vs FLOPs, vs money"
    screenshot = page.screenshot(tmp_path / "compare.png").read_bytes()
    assert screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(screenshot) > 50_000


def test_same_ids_with_different_references_are_refused(runs, tmp_path):
    data = write_level_problems(tmp_path / "other.jsonl", 12)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[3]["a"] = 123456  # another answer for p3: another data set
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    other = make_run(tmp_path, "other", problems=12, samples=2, seed=0, data=data)
    done = compare(str(runs["small"]), str(other), "--out", str(tmp_path / "out"))
    assert done.exit_code == 2
    assert "small and other hold different problems under the same ids (1 differ, first 'p3')" in done.output


def test_cost_per_sample_and_per_prompt_is_the_budget_cost_arithmetic(runs):
    counts = run_counts(RunStore.open(runs["large"]))
    run = ComparedRun(
        "large",
        runs["large"],
        None,
        "jsonl",
        "v",
        counts,
        len(counts),
        tokens_per_sample=6.0,
        prompt_tokens_per_problem=7.0,
        parameters=4000.0,
        price_per_mtok=0.5,
    )
    usage = Usage(output_tokens_per_sample=6.0, prompt_tokens_per_problem=7.0, model_parameters=4000)
    one, two = (cost_of(k, counts, usage, Prices(per_million_tokens=0.5)) for k in (1, 2))
    per_sample, prefill = run.per_problem_cost("flops")
    assert per_sample == pytest.approx((two.flops - one.flops) / len(counts))
    assert prefill == pytest.approx(one.flops / len(counts) - per_sample)
    per_sample, prefill = run.per_problem_cost("money")
    assert per_sample == pytest.approx((two.money - one.money) / len(counts))
    assert prefill == pytest.approx(one.money / len(counts) - per_sample)


def test_bad_option_counts_name_the_parameter(runs):
    with pytest.raises(OptionError, match="one per run") as error:
        load_runs([runs["small"], runs["large"]], parameters=[1.0, 2.0, 3.0])
    assert error.value.option == "parameters"
    with pytest.raises(OptionError) as error:
        load_runs([runs["small"], runs["large"]], labels=["only"])
    assert error.value.option == "labels"


def test_runs_are_matched_at_equal_eflops_from_their_configs(runs, tmp_path):
    from harness.forecasting.cost_model import HARDWARE, CostModel, ModelArchitecture
    from tests.support.model_configs import QWEN3_0_6B, QWEN3_8B

    configs = {"small": tmp_path / "small.json", "large": tmp_path / "large.json"}
    configs["small"].write_text(json.dumps(QWEN3_0_6B))
    configs["large"].write_text(json.dumps(QWEN3_8B))
    out = tmp_path / "out"
    done = compare(
        str(runs["small"]),
        str(runs["large"]),
        "--out",
        str(out),
        "--hardware",
        "h100",
        "--model-config",
        str(configs["small"]),
        "--model-config",
        str(configs["large"]),
    )
    assert done.exit_code == 0, done.output
    assert "coverage at equal eFLOPs" in done.output
    result = json.loads((out / "compare.json").read_text())
    assert result["hardware"]["name"] == "h100"
    entries = {entry["label"]: entry for entry in result["runs"]}
    for label, config in (("small", QWEN3_0_6B), ("large", QWEN3_8B)):
        model = CostModel(ModelArchitecture.from_config(config))
        # every fake sample has 6 tokens after a 7-token prompt: one sample's decode, and the prompt's prefill
        decode = model.decode(np.array([TOKENS_PER_SAMPLE]), np.array([PROMPT_TOKENS]))
        assert entries[label]["eflops_per_sample"] == pytest.approx(float(decode.eflops(HARDWARE["h100"])[0]))
        assert entries[label]["eflops_per_sample"] > float(decode.flops[0])  # memory traffic is priced too
    matched = result["compute_matched"]["eflops"]
    assert matched["missing"] is None and matched["budget_run"] == "large" and matched["budgets"]
    assert [row["runs"]["large"]["k"] for row in matched["budgets"]] == [1, 2, 4]
    assert "Coverage at equal eFLOPs" in (out / "compare.html").read_text()

    # without a hardware, eFLOPs are not available and said so; a config that cannot be read is named
    assert compare(str(runs["small"]), str(runs["large"]), "--out", str(tmp_path / "plain")).exit_code == 0
    plain = json.loads((tmp_path / "plain" / "compare.json").read_text())
    assert plain["compute_matched"]["eflops"]["missing"].startswith("small: the hardware") and not plain["hardware"]
    refused = compare(str(runs["small"]), str(runs["large"]), "--out", str(tmp_path / "no"), "--hardware", "h100")
    assert refused.exit_code == 2 and "--model-config" in refused.output and "model_type" in refused.output
