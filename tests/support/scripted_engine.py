"""An engine that answers with scripted texts: a weak model's outputs, chosen by the test.

The model directory holds ``script.json``: ``{problem_id: [text, ...]}``; sample ``i`` of a problem gets
``texts[i % len(texts)]``, and a problem the script does not name gets the empty completion.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core.records import SamplingSettings
from harness.engines.base import Completion, Engine, GenerationRequest, GenerationResult

SCRIPTED_ENGINE = "tests.support.scripted_engine:ScriptedEngine"


def scripted_model_dir(root: Path, script: Mapping[str, Sequence[str]]) -> Path:
    """A stand-in checkpoint directory whose ``script.json`` says what the engine answers."""
    model = root / "scripted-model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["Scripted"]}))
    (model / "script.json").write_text(json.dumps({key: list(texts) for key, texts in script.items()}))
    return model


class ScriptedEngine(Engine):
    def __init__(self, model: str, **options: Any) -> None:
        self.model = model
        self.script = json.loads((Path(model) / "script.json").read_text())

    def describe(self) -> dict[str, Any]:
        return {"engine": "scripted", "model": self.model}

    def generate(
        self,
        requests: Iterable[GenerationRequest],
        settings: SamplingSettings,
        on_tokens: Callable[[int], None] | None = None,
    ) -> Iterator[GenerationResult]:
        for request in requests:
            texts = self.script.get(request.problem_id) or [""]
            completions = []
            for index in range(request.first_index, request.first_index + request.n):
                text = texts[index % len(texts)]
                completions.append(Completion(text, n_tokens=len(text.split()), finish_reason="stop", logprob_sum=-1.0))
            yield GenerationResult(request=request, completions=completions, prompt_tokens=11)

    def close(self) -> None:
        pass
