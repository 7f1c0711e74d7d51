"""Prompt templates: how a benchmark record becomes a prompt, visible and replaceable.

A template is a Jinja2 file rendered with the record's fields (``{{ problem }}``). The defaults live in
``tasks/templates/<task>_<style>.jinja``; a task option ``prompt_template=PATH`` (``--prompt-template FILE``)
replaces them. The prompt style decides what the rendered text becomes:

- ``"completion"``: the text itself, for base models (few-shot prompts end where the model should continue);
- ``"chat"``: one user message ``[{"role": "user", "content": text}]``, which the engine renders with the
  model's chat template.

A task adopts this in two lines::

    self.prompt_builder = PromptBuilder.for_task("gsm8k", prompt_style, prompt_template)
    prompt = self.prompt_builder.build(record, where=f"gsm8k record {index}")

and ships ``tasks/templates/gsm8k_completion.jinja`` (and ``gsm8k_chat.jinja`` if it has a chat variant).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from harness.core.errors import TaskError
from harness.core.records import Prompt

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
PROMPT_STYLES = ("completion", "chat")

# StrictUndefined: a misspelt field is an error, not an empty string silently dropped from every prompt.
# Jinja drops one trailing newline of a file (keep_trailing_newline=False), so "Solution:" stays the last text.
_ENVIRONMENT = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class PromptTemplate:
    """A Jinja2 template and where it came from.

    Attributes:
        name: ``"builtin:<file name>"`` for a default template, else the file path given.
        source: the template text.
    """

    name: str
    source: str
    _compiled: jinja2.Template = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = _ENVIRONMENT.from_string(self.source)
        except jinja2.TemplateSyntaxError as error:
            raise TaskError(f"prompt template {self.name}: line {error.lineno}: {error.message}") from None
        object.__setattr__(self, "_compiled", compiled)

    @classmethod
    def from_file(cls, path: str | Path) -> PromptTemplate:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"prompt template not found: {path}")
        return cls(name=str(path), source=path.read_text(encoding="utf-8"))

    @classmethod
    def builtin(cls, file_name: str) -> PromptTemplate:
        path = TEMPLATE_DIR / file_name
        if not path.is_file():
            available = ", ".join(sorted(p.name for p in TEMPLATE_DIR.glob("*.jinja")))
            raise TaskError(f"no built-in prompt template {file_name!r}; built-in: {available}")
        return cls(name=f"builtin:{file_name}", source=path.read_text(encoding="utf-8"))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def render(self, fields: Mapping[str, Any], where: str = "a record") -> str:
        """Render with ``fields``; an unknown variable raises a ValueError naming the fields available."""
        try:
            return self._compiled.render(**fields)
        except jinja2.UndefinedError as error:
            raise TaskError(
                f"prompt template {self.name} on {where}: {error.message}; available fields: {sorted(fields)}"
            ) from None


class PromptBuilder:
    """Turns a record into a prompt: a template plus a prompt style (``"completion"`` or ``"chat"``)."""

    def __init__(self, template: PromptTemplate, style: str) -> None:
        check_prompt_style(style)
        self.template = template
        self.style = style

    @classmethod
    def for_task(cls, task: str, style: str = "completion", template_path: str | Path | None = None) -> PromptBuilder:
        """The template at ``template_path``, else the built-in ``tasks/templates/<task>_<style>.jinja``."""
        check_prompt_style(style)
        if template_path is not None:
            return cls(PromptTemplate.from_file(template_path), style)
        return cls(PromptTemplate.builtin(f"{task}_{style}.jinja"), style)

    def build(self, fields: Mapping[str, Any], where: str = "a record") -> Prompt:
        text = self.template.render(fields, where)
        if self.style == "chat":
            return [{"role": "user", "content": text}]
        return text

    def describe(self) -> dict[str, Any]:
        return {"style": self.style, "template": self.template.name, "template_sha256": self.template.sha256}


def check_prompt_style(style: str) -> None:
    if style not in PROMPT_STYLES:
        raise TaskError(f"unknown prompt style {style!r}; expected one of {', '.join(PROMPT_STYLES)}")
