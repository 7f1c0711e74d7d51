"""Engine and task options on the command line: ``--engine-option`` and ``--task-option`` typed by what the
engine or task declares (its constructor), the dedicated flags as the same options, and one error line naming
the flag and the key for anything wrong, before anything is written (the CLI in this process, fake engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import REPO_ROOT
from tests.support.helpers import FAKE_ENGINE, fake_model_dir, fake_run_args


def ttc(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


def refused(*args: object) -> str:
    """The one error line of a command that must fail with status 2."""
    code, out, err = ttc(*args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, err)
    return lines[0]


def sample_args(shared_data: Path, root: Path, *extra: str) -> list[str]:
    return fake_run_args(shared_data, root, "sample", 2, 2, "--quiet", *extra)


def test_engine_and_task_options_reach_the_backends_typed(shared_data, tmp_path):
    code, _, err = ttc(*sample_args(shared_data, tmp_path, "--task-option", "shots=2", "--engine-option", "delay=0"))
    assert code == 0, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["task_description"]["shots"] == 2  # an int, as GSM8K declares it: part of the hash


def test_a_custom_task_gets_its_options_from_the_cli(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # examples/ importable, as for a task of one's own
    args = ["sample", "--engine", FAKE_ENGINE, "--model", fake_model_dir(tmp_path), "--samples", "2", "--quiet"]
    args += ["--task", "examples.custom_task:Multiplication", "--problems", "0", "--task-option", "digits=2"]
    code, _, err = ttc(*args, "--task-option", "n_problems=3", "--out", tmp_path / "run")
    assert code == 0, err
    problems = [json.loads(line) for line in (tmp_path / "run" / "problems.jsonl").read_text().splitlines()]
    assert len(problems) == 3 and all(10 <= int(line["prompt"][0]["content"].split()[2]) < 100 for line in problems)
    assert refused(*args, "--task-option", "n_problems=0", "--out", tmp_path / "other") == (
        "error: --task-option n_problems: must be at least 1, got 0"
    )
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--engine-option", "delay=soon"],
            "error: --engine-option delay: must be a number or None, got 'soon'",
        ),
        (["--task-option", "shots=many"], "error: --task-option shots: must be an integer, got 'many'"),
        (
            ["--task-option", "shotz=2"],
            (
                "error: --task-option shotz: task 'gsm8k' does not accept this option; its options: split, shots, "
                "fewshot_data, prompt_style, prompt_template"
            ),
        ),
        (["--task-option", "shots"], "error: --task-option: expected KEY=VALUE, got 'shots'"),
        (["--task-option", "shots=1", "--task-option", "shots=2"], "error: --task-option shots: given twice"),
        (["--shots", "2", "--task-option", "shots=3"], "error: --shots: given twice, also as --task-option shots=..."),
        (["--shots", "-1"], "error: --shots: must be at least 0, got -1"),
        (["--prompt-style", "poem"], "error: unknown prompt style 'poem'; expected one of completion, chat"),
    ],
)
def test_bad_options_are_one_line_naming_flag_and_key_and_write_nothing(shared_data, tmp_path, extra, message):
    assert refused(*sample_args(shared_data, tmp_path, *extra)) == message
    assert not (tmp_path / "run").exists()


def test_engine_flags_are_the_engines_options(shared_data, tmp_path):
    # vLLM's options, checked by VLLMEngine before any engine starts (no vLLM is loaded here)
    base = [arg for arg in sample_args(shared_data, tmp_path) if arg != "tests.support.fake_engine:FakeEngine"]
    base[base.index("--engine")] = "--engine=vllm"
    assert refused(*base, "--max-model-len", "0") == "error: --max-model-len: must be at least 1, got 0"
    assert refused(*base, "--engine-option", "max_num_seqs=0") == "error: --max-num-seqs: must be at least 1, got 0"
    assert refused(*base, "--engine-option", "gpu_memory_utilization=2") == (
        "error: --gpu-memory-utilization: must lie in (0, 1], got 2.0"
    )
    unknown = refused(*base, "--engine-option", "speed=11")
    assert unknown.startswith("error: --engine-option speed: engine 'vllm' does not accept this option; its options: ")
    assert "max_model_len" in unknown and "tensor_parallel_size" in unknown
    assert refused(*base, "--concurrency", "4").startswith("error: --concurrency: engine 'vllm' does not accept")
    assert not (tmp_path / "run").exists()
