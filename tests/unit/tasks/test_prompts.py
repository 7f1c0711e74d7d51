"""Prompt templates: defaults as files, overrides, styles, errors."""

from __future__ import annotations

import pytest

from tasks.prompts import TEMPLATE_DIR, PromptBuilder, PromptTemplate


def test_builtin_templates_are_files():
    names = sorted(path.name for path in TEMPLATE_DIR.glob("*.jinja"))
    assert {"math500_completion.jinja", "math500_chat.jinja", "jsonl_completion.jinja", "jsonl_chat.jinja"} <= set(
        names
    )
    template = PromptTemplate.builtin("math500_chat.jinja")
    assert template.name == "builtin:math500_chat.jinja" and len(template.sha256) == 64


def test_render_drops_one_trailing_newline_and_keeps_latex_braces():
    template = PromptTemplate("t", "Solve $\\frac{a}{b}$: {{ problem }}\nSolution:\n")
    assert (
        template.render({"problem": "{{ not a variable }}"}) == "Solve $\\frac{a}{b}$: {{ not a variable }}\nSolution:"
    )


def test_styles():
    template = PromptTemplate("t", "Q: {{ q }}")
    assert PromptBuilder(template, "completion").build({"q": "1+1"}) == "Q: 1+1"
    assert PromptBuilder(template, "chat").build({"q": "1+1"}) == [{"role": "user", "content": "Q: 1+1"}]
    with pytest.raises(ValueError, match="prompt style"):
        PromptBuilder(template, "base")


def test_errors_name_the_template_and_the_fields(tmp_path):
    with pytest.raises(ValueError, match="line 1"):
        PromptTemplate("broken", "{{ q ")
    with pytest.raises(ValueError, match=r"'qq' is undefined; available fields: \['q'\]"):
        PromptTemplate("t", "{{ qq }}").render({"q": 1}, where="record 3")
    with pytest.raises(ValueError, match=r"no built-in prompt template 'mbpp_chat\.jinja'"):
        PromptBuilder.for_task("mbpp", "chat")
    with pytest.raises(FileNotFoundError):
        PromptBuilder.for_task("math500", "chat", tmp_path / "missing.jinja")


def test_override_file_wins(tmp_path):
    path = tmp_path / "mine.jinja"
    path.write_text("Mine: {{ problem }}", encoding="utf-8")
    builder = PromptBuilder.for_task("math500", "completion", path)
    assert builder.build({"problem": "x"}) == "Mine: x"
    assert builder.describe()["template"] == str(path)
