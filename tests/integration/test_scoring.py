"""Reward-model scoring end to end with tiny random reward models built offline (transformers and vLLM)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import harness.engines.reward_models
import harness.pipeline.score
from harness import OptionError, RunStoreError, import_samples, sample, score
from harness.store import RunStore
from tests.support import helpers
from tests.support.helpers import cli_flags, fake_sample_arguments
from tests.support.tiny_reward_models import STEP_TOKEN, tiny_outcome_reward_model, tiny_process_reward_model

QUIET = dict(progress="quiet")


@pytest.fixture(scope="module")
def outcome_model(tmp_path_factory) -> Path:
    return tiny_outcome_reward_model(tmp_path_factory.mktemp("models") / "tiny-orm")


@pytest.fixture(scope="module")
def process_model(tmp_path_factory) -> Path:
    return tiny_process_reward_model(tmp_path_factory.mktemp("models") / "tiny-prm")


@pytest.fixture
def sampled_run(shared_data, tmp_path) -> Path:
    return sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path, task_options={"shots": 0})).run_dir


@pytest.fixture
def stepwise_run(tmp_path) -> Path:
    """An imported run whose completions have several steps (blocks between blank lines)."""
    completions = [
        ["Let x be the apples.\n\nThen 3x + 2 = 11.\n\nSo x = 3.", "x = 4", "First, 48 / 2 = 24.\n\nThe answer is 72."],
        ["One step only.", "Step A.\n\n\n\nStep B.\n\nStep C.\n\nStep D.", ""],
    ]
    records = [
        {
            "idx": index,
            "question": f"Problem {index}?",
            "gt": "3",
            "code": texts,
            "pred": ["3", "4", None],
            "score": [True, False, False],
        }
        for index, texts in enumerate(completions)
    ]
    source = tmp_path / "steps.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    import_samples(source, tmp_path / "steps-run")
    return tmp_path / "steps-run"


def reference_logits(model_dir: Path, kind: str, prompt: str, text: str) -> np.ndarray:
    """The model's head output for one unpadded input, built here from the documented rendering rule."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if kind == "prm":
        text = "".join(block.strip() + STEP_TOKEN for block in text.split("\n\n") if block.strip()) or STEP_TOKEN
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": text}], tokenize=False
    )
    ids = tokenizer(rendered, add_special_tokens=False, return_tensors="pt")["input_ids"]
    model_class = AutoModelForSequenceClassification if kind == "orm" else AutoModelForTokenClassification
    model = model_class.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0].numpy()
    if kind == "orm":
        return logits[:, 0] if logits.ndim == 2 else logits
    positions = ids[0].numpy() == tokenizer.convert_tokens_to_ids(STEP_TOKEN)
    step_logits = logits[positions]
    return np.exp(step_logits[:, 1]) / np.exp(step_logits).sum(axis=1)


def stored_scores(run: Path, name: str) -> dict[tuple[str, int], dict]:
    table = RunStore.open(run).scores(name).read()
    rows = table.to_pylist()
    keys = [(row["problem_id"], row["sample_idx"]) for row in rows]
    assert len(keys) == len(set(keys)), "every sample is scored once"
    return dict(zip(keys, rows))


def test_outcome_model_scores_every_sample_batched_and_resumes(sampled_run, outcome_model, monkeypatch):
    options = dict(backend="transformers", batch_size=3, name="rm", **QUIET)
    original = harness.engines.reward_models.TransformersRewardModel.score
    calls = []

    def crash_on_third_batch(self, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-run
        return original(self, batch)

    monkeypatch.setattr(harness.pipeline.score, "FLUSH_ROWS", 3)  # store after every batch
    monkeypatch.setattr(harness.engines.reward_models.TransformersRewardModel, "score", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        score(sampled_run, outcome_model, **options)
    assert len(stored_scores(sampled_run, "rm")) == 6, "the two finished batches were kept"

    monkeypatch.setattr(harness.engines.reward_models.TransformersRewardModel, "score", original)
    outcome = score(sampled_run, outcome_model, **options)
    assert outcome["scored"] == 14 and outcome["backend"] == "transformers"
    assert score(sampled_run, outcome_model, **options)["scored"] == 0, "nothing left to score"
    assert RunStore.open(sampled_run).score_sets()["rm"] == {
        "kind": "orm",
        "model": str(outcome_model.resolve()),
        "template": "chat",
        "max_length": 4096,
    }

    scores = stored_scores(sampled_run, "rm")
    assert len(scores) == 20
    store = RunStore.open(sampled_run)
    prompts = {problem.problem_id: problem.prompt for problem in store.problems()}
    samples = store.read_samples(columns=["text"]).to_pylist()
    for row in samples:
        expected = reference_logits(outcome_model, "orm", prompts[row["problem_id"]], row["text"])
        stored = scores[(row["problem_id"], row["sample_idx"])]
        assert stored["step_scores"] is None
        assert stored["score"] == pytest.approx(float(expected[0]), abs=1e-5), "batched = unbatched"
    assert len({round(s["score"], 6) for s in scores.values()}) > 5, "a random model still tells inputs apart"


def test_process_model_scores_each_step(stepwise_run, process_model):
    outcome = score(
        stepwise_run, process_model, kind="prm", backend="transformers", batch_size=4, step_token=STEP_TOKEN, **QUIET
    )
    assert outcome["scored"] == 6 and outcome["score_set"] == "prm-tiny-prm"
    assert RunStore.open(stepwise_run).score_sets()[outcome["score_set"]]["step_rule"] == "blank-lines"
    scores = stored_scores(stepwise_run, outcome["score_set"])
    step_counts = {("0", 0): 3, ("0", 1): 1, ("0", 2): 2, ("1", 0): 1, ("1", 1): 4, ("1", 2): 1}
    store = RunStore.open(stepwise_run)
    texts = {(r["problem_id"], r["sample_idx"]): r["text"] for r in store.read_samples(columns=["text"]).to_pylist()}
    for key, steps in step_counts.items():
        stored = scores[key]
        assert stored["score"] is None and len(stored["step_scores"]) == steps
        assert all(0 < value < 1 for value in stored["step_scores"]), "probabilities of the 'correct step' label"
        expected = reference_logits(process_model, "prm", f"Problem {key[0]}?", texts[key])
        np.testing.assert_allclose(stored["step_scores"], expected, atol=1e-5)


def test_scoring_refuses_what_it_cannot_do(sampled_run, outcome_model, process_model):
    with pytest.raises(ValueError, match="step_token: a process reward model needs the token after each step"):
        score(sampled_run, process_model, kind="prm", backend="transformers", **QUIET)
    with pytest.raises(ValueError, match="must be one"):
        score(sampled_run, process_model, kind="prm", step_token="two words", **QUIET)
    with pytest.raises(ValueError, match="kind: must be one of orm, prm"):
        score(sampled_run, outcome_model, kind="grm")
    with pytest.raises(ValueError, match="backend: must be one of auto, vllm, transformers"):
        score(sampled_run, outcome_model, backend="onnx")
    with pytest.raises(OptionError, match="batch_size: must be an integer, got '8'"):
        score(sampled_run, outcome_model, batch_size="8")
    score(sampled_run, outcome_model, backend="transformers", name="rm", max_length=64, **QUIET)
    with pytest.raises(RunStoreError, match="max_length: stored 64, requested 4096"):
        score(sampled_run, outcome_model, backend="transformers", name="rm", **QUIET)


def ttc(*args: str) -> subprocess.CompletedProcess:
    return helpers.ttc(*args, timeout=900)


@pytest.mark.slow
def test_vllm_backend_gives_the_transformers_scores(sampled_run, stepwise_run, outcome_model, process_model):
    """vLLM's pooling runner (CPU here, GPU alike) scores the same tokens as transformers, to float32 precision."""
    common = ["--dtype", "float32", "--batch-size", "8", "--gpu-memory-utilization", "0.1", "--max-length", "512", "-q"]
    for run, model, kind in ((sampled_run, outcome_model, "orm"), (stepwise_run, process_model, "prm")):
        extra = ["--step-token", STEP_TOKEN] if kind == "prm" else []
        for backend in ("transformers", "vllm"):
            options = cli_flags(model=model, kind=kind, backend=backend, name=f"{kind}-{backend}")
            done = ttc("score", str(run), *options, *extra, *common)
            assert done.returncode == 0, done.stderr[-3000:]
        by_transformers = stored_scores(run, f"{kind}-transformers")
        by_vllm = stored_scores(run, f"{kind}-vllm")
        assert by_vllm.keys() == by_transformers.keys()
        for key, row in by_transformers.items():
            other = by_vllm[key]
            if kind == "orm":
                assert other["score"] == pytest.approx(row["score"], abs=1e-4)
            else:
                np.testing.assert_allclose(other["step_scores"], row["step_scores"], atol=1e-4)
