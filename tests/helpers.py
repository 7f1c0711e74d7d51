"""Helpers shared by tests: a stand-in model directory and runs on the fake engine."""

from __future__ import annotations

import json
from pathlib import Path

from harness.pipeline.prepare import SampleOptions

FAKE_ENGINE = "tests.fake_engine:FakeEngine"


def fake_model_dir(root: Path) -> Path:
    """A directory that passes for a local checkpoint (the fake engine never reads it)."""
    model = root / "fake-model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["Fake"]}))
    return model


def gsm8k_options(shared_data: Path, root: Path, **overrides) -> SampleOptions:
    options = dict(
        task="gsm8k",
        data=str(shared_data / "gsm8k_test.jsonl"),
        model=str(fake_model_dir(root)),
        engine=FAKE_ENGINE,
        problems=5,
        samples=4,
        out=root / "run",
    )
    options.update(overrides)
    return SampleOptions(**options)
