"""LLM judges: what a judge model is asked, and how its reply becomes a verdict (``judge``) or a pick among
candidates (``genselect``). Pure: the prompts and the parsing live here; a judge needs an engine to answer,
which the pipeline runs (``harness.pipeline.judge``), as verifiers never import engines.

The judge sees a Jinja template (``verifiers/templates/judge.jinja``, or a file of the user's) rendered with
``question`` (the problem: its last user message for chat prompts, else the end of its text), ``reference``
(the reference answer where the problem has one, else empty) and ``answer`` (the end of the sample: the last
``max_answer_chars`` characters, where a final answer sits), and is asked to reply yes or no. Its verdict is
the first "yes" or "no" of its reply (none: the sample is ``judge_unparsed`` and counts as wrong). Its
probability of "yes" comes from the log-probabilities of the first position of its reply where "yes" or "no"
is among the likely tokens: P(yes) = sum over yes-tokens of exp(logprob) / (that + the same over no-tokens);
without log-probabilities it is 1 or 0 by the verdict. Generative selection (``genselect.jinja``) shows the
question and k candidates' ends, numbered 1..k, and asks for the number of the correct one.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from harness.core.errors import OptionError, check_number

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
JUDGED = "judged"
UNPARSED = "judge_unparsed"
DEFAULT_ANSWER_CHARS = 1500
DEFAULT_QUESTION_CHARS = 3000
_YES = frozenset({"yes", "y", "true", "correct"})
_NO = frozenset({"no", "n", "false", "incorrect", "wrong"})
_WORD = re.compile(r"[A-Za-z]+")
_ENVIRONMENT = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class JudgeTemplate:
    """A judge's prompt template and where it came from (``builtin:judge.jinja`` or the file given)."""

    name: str
    source: str

    @classmethod
    def load(cls, path: str | Path | None, builtin: str) -> JudgeTemplate:
        """The template at ``path``, else the built-in one named ``builtin`` (``judge.jinja``, ``genselect.jinja``)."""
        if path is None:
            return cls(f"builtin:{builtin}", (TEMPLATE_DIR / builtin).read_text(encoding="utf-8"))
        path = Path(path)
        if not path.is_file():
            raise OptionError("judge_template", f"template not found: {path}")
        template = cls(str(path), path.read_text(encoding="utf-8"))
        template.compiled()  # a syntax error is refused now, before any engine starts
        return template

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def compiled(self) -> jinja2.Template:
        try:
            return _ENVIRONMENT.from_string(self.source)
        except jinja2.TemplateSyntaxError as error:
            raise OptionError("judge_template", f"{self.name}: line {error.lineno}: {error.message}") from None

    def render(self, **fields: Any) -> list[dict[str, str]]:
        """The rendered text as one user message (the engine applies the judge model's chat template)."""
        try:
            text = self.compiled().render(**fields)
        except jinja2.UndefinedError as error:
            raise OptionError(
                "judge_template", f"{self.name}: {error.message}; its variables are {sorted(fields)}"
            ) from None
        return [{"role": "user", "content": text.strip()}]

    def describe(self) -> dict[str, str]:
        return {"template": self.name, "template_sha256": self.sha256}


def question_text(prompt: Any, max_chars: int = DEFAULT_QUESTION_CHARS) -> str:
    """The problem as a judge sees it: a chat prompt's last user message, else the end of the prompt's text."""
    if isinstance(prompt, str):
        text = prompt
    else:
        users = [message.get("content", "") for message in prompt if message.get("role") == "user"]
        text = str(users[-1] if users else (prompt[-1].get("content", "") if prompt else ""))
    return _tail(text.strip(), max_chars)


def reference_text(reference: Mapping[str, Any]) -> str:
    """The reference answer a judge may see: ``answer`` where the reference has one (math tasks), else none
    (code: its tests are not shown)."""
    answer = reference.get("answer")
    return "" if answer is None else str(answer)


def answer_segment(text: str | None, max_chars: int = DEFAULT_ANSWER_CHARS) -> str:
    """The part of a sample a judge reads: its last ``max_chars`` characters, where the final answer sits."""
    return _tail((text or "").strip(), max_chars)


def _tail(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else "..." + text[-max_chars:]


def parse_verdict(reply: str) -> bool | None:
    """The first "yes" or "no" word of a judge's reply (also true/false, correct/incorrect); None if neither."""
    for word in _WORD.findall(reply):
        lowered = word.lower()
        if lowered in _YES:
            return True
        if lowered in _NO:
            return False
    return None


def _token_word(token: str) -> str:
    return "".join(_WORD.findall(token)).lower()


def yes_probability(top_logprobs: Sequence[Mapping[str, float]] | None) -> float | None:
    """P(yes) at the first position of a reply where a yes- or no-token is among the likely ones (see the module
    docstring); None without log-probabilities or where neither appears."""
    for position in top_logprobs or ():
        yes = sum(math.exp(value) for token, value in position.items() if _token_word(token) in _YES)
        no = sum(math.exp(value) for token, value in position.items() if _token_word(token) in _NO)
        if yes + no > 0:
            return yes / (yes + no)
    return None


@dataclass(frozen=True)
class Judgement:
    """A judge's verdict on one (problem, answer).

    Attributes:
        correct: its verdict (False when unparsed).
        reason: ``judged`` or ``judge_unparsed``.
        score: its probability of "yes" (from log-probabilities; else 1 or 0 by the verdict, 0.5 unparsed).
        reply: the judge's reply.
        prompt_tokens, output_tokens: what judging it cost.
    """

    correct: bool
    reason: str
    score: float
    reply: str
    prompt_tokens: int
    output_tokens: int


def judgement(
    reply: str, top_logprobs: Sequence[Mapping[str, float]] | None, prompt_tokens: int, output_tokens: int
) -> Judgement:
    """A judge's reply as a judgement (see the module docstring)."""
    verdict = parse_verdict(reply)
    probability = yes_probability(top_logprobs)
    if probability is None:
        probability = 0.5 if verdict is None else float(verdict)
    return Judgement(
        correct=bool(verdict),
        reason=UNPARSED if verdict is None else JUDGED,
        score=probability,
        reply=reply,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
    )


def parse_choice(reply: str, candidates: int) -> int | None:
    """The candidate a genselect reply names: its first whole number in 1..candidates, as a 0-based index."""
    for match in re.finditer(r"\d+", reply):
        number = int(match.group())
        if 1 <= number <= candidates:
            return number - 1
    return None


def check_judge_settings(max_tokens: int, max_answer_chars: int, top_logprobs: int) -> None:
    """Refuse judge settings out of range, naming the option."""
    check_number("judge_max_tokens", max_tokens, at_least=1, integer=True)
    check_number("judge_answer_chars", max_answer_chars, at_least=1, integer=True)
    check_number("judge_top_logprobs", top_logprobs, at_least=0, at_most=20, integer=True)
