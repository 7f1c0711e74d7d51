"""``math``: final-answer equivalence through math-verify, fast enough for 10,000 samples per problem.

For each problem the verifier

1. extracts each sample's final answer (pure string work, see ``extract_answer``) and normalises it
   (``normalize_answer``);
2. judges each *distinct* normalised answer once: math-verify parses it and compares it with the
   reference answer, in a worker process under a CPU budget and a wall-clock watchdog
   (``verifiers.math_worker``); a plain integer against a plain-integer reference is compared directly;
3. gives every sample the verdict of its answer. ``Verdict.answer`` is the canonical form of the parsed
   answer (sympy's printed form, decimals made exact), else the normalised string: what majority vote counts.

Since a verdict is a function of (reference, normalised answer) alone, and distinct answers are judged in
sorted order, the verdicts do not depend on the order of the samples or of the problems.
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any, Mapping, Sequence

from verifiers.base import CORRECT, NO_ANSWER, PARSE_ERROR, TIMEOUT, WRONG, Verdict
from verifiers.math_worker import SharedWorker

_FINAL_ANSWER = "final answer is"
_HOPE = "i hope it is correct"
_BOX_COMMANDS = ("\\boxed", "\\fbox")


def extract_answer(completion: str) -> str | None:
    """The completion's final answer, or None if it states none.

    The answer is whichever comes last of

    - the last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``), braces balanced; an unclosed box (a
      truncated completion) gives no answer;
    - the text after the last "final answer is" (any case), up to "I hope it is correct" or the end of
      that line, without surrounding ``$`` and a final period (the Minerva format of the few-shot prompt).

    Nothing else counts: a bare number at the end of a completion is not taken as its answer, because at
    10,000 samples a loose extractor turns lucky guesses into false positives.
    """
    boxed_at, boxed = _last_boxed(completion)
    stated_at, stated = _last_final_answer(completion)
    if boxed_at < 0 and stated_at < 0:
        return None
    return boxed if boxed_at > stated_at else stated


def _last_boxed(text: str) -> tuple[int, str | None]:
    start = max(text.rfind(command) for command in _BOX_COMMANDS)
    if start < 0:
        return -1, None
    command = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    position = start + len(command)
    if position < len(text) and text[position] == " ":  # "\boxed 5": one token, up to space or "$"
        match = re.match(r" +([^\s$]+)", text[position:])
        return start, match.group(1) if match else None
    if position >= len(text) or text[position] != "{":
        return start, None
    depth = 0
    for index in range(position, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return start, text[position + 1 : index]
    return start, None


def _last_final_answer(text: str) -> tuple[int, str | None]:
    lowered = text.lower()
    start = lowered.rfind(_FINAL_ANSWER)
    if start < 0:
        return -1, None
    body_start = start + len(_FINAL_ANSWER)
    end = lowered.find(_HOPE, body_start)
    if end < 0:
        end = lowered.find("\n", body_start)
    body = text[body_start : end if end >= 0 else len(text)].strip()
    body = _strip_math_delimiters(body.removesuffix(".").strip())
    return start, body or None


# One control sequence at a time, so that a row break "\\" is never read as "\" + the next character.
_CONTROL = re.compile(r"\\(?:(?:left|right)(?![a-zA-Z])\.?|[a-zA-Z]+|.)", re.DOTALL)
_SPACING = {"\\,", "\\:", "\\;", "\\!", "\\ ", "\\quad", "\\qquad", "\\displaystyle"}
_WHITESPACE = re.compile(r"\s+")
# A space matters only between two letters or digits ("\pi r", "\text{Monday morning}", "1 000").
_LOOSE_SPACE = re.compile(r"(?<![A-Za-z0-9]) | (?![A-Za-z0-9])")
_TRAILING_ZEROS = re.compile(r"(?<![\d.])(\d+)\.(\d*?)0+(?![\d.])")


def _rewrite_control(match: re.Match[str]) -> str:
    token = match.group(0)
    if token in ("\\left", "\\right", "\\left.", "\\right."):
        return ""  # \left( -> (, \left. -> nothing
    if token in _SPACING:
        return " "
    if token in ("\\dfrac", "\\tfrac"):
        return "\\frac"
    return token


def _strip_math_delimiters(text: str) -> str:
    """``$x$``, ``$$x$$``, ``\\(x\\)``, ``\\[x\\]`` -> ``x`` (an escaped ``\\$`` is kept)."""
    text = text.strip()
    while True:
        if len(text) >= 2 and text[0] == "$" and text[-1] == "$" and not text.endswith("\\$"):
            text = text[1:-1].strip()
        elif text.startswith(("\\(", "\\[")) and text.endswith(("\\)", "\\]")):
            text = text[2:-2].strip()
        else:
            return text


def normalize_answer(answer: str) -> str:
    """Cheap rewriting that makes equal answers equal strings, applied before the answer is judged.

    In order: surrounding math delimiters (``$``, ``\\(``, ``\\[``) and trailing periods go;
    ``\\left``/``\\right``, ``\\displaystyle`` and spacing commands (``\\,`` ``\\!`` ``\\;`` ``\\:``
    ``\\quad``) go; ``\\dfrac``/``\\tfrac`` become ``\\frac``; runs of whitespace become one space, kept
    only between two letters or digits; decimals lose trailing zeros (``2.50`` -> ``2.5``, ``3.0`` -> ``3``).
    None of these changes what math-verify makes of the answer.
    """
    text = _strip_math_delimiters(answer.strip().rstrip("."))
    text = _CONTROL.sub(_rewrite_control, text)
    text = _WHITESPACE.sub(" ", text).strip()
    text = _LOOSE_SPACE.sub("", text)
    text = text.rstrip(".").rstrip()
    return _TRAILING_ZEROS.sub(lambda m: f"{m.group(1)}.{m.group(2)}" if m.group(2) else m.group(1), text)


class MathVerifier:
    """Judges final answers of math problems against ``reference["answer"]`` (a LaTeX string).

    Args:
        timeout: CPU seconds allowed per distinct answer (parse, comparison and canonical form), and for
            parsing the reference; an answer over budget gets reason ``timeout``.
        hard_timeout: wall-clock seconds after which an unresponsive worker (a hang that the CPU timer
            cannot interrupt) is killed and replaced; the answer gets ``timeout``. None: ``4 * timeout``.
        max_answer_chars: longer answers are not parsed (reason ``parse_error``); MATH answers are short.
        memory_limit_mb: address-space limit of the worker process (None: no limit).

    Reasons: ``correct``, ``wrong`` (parsed, not equivalent), ``no_answer`` (nothing extracted),
    ``parse_error`` (not parseable and not equal as a string, or too long), ``timeout``, ``memory_limit``.
    """

    name = "math"

    def __init__(
        self,
        timeout: float = 5.0,
        hard_timeout: float | None = None,
        max_answer_chars: int = 1000,
        memory_limit_mb: int | None = 4096,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.timeout = float(timeout)
        self.hard_timeout = float(hard_timeout) if hard_timeout is not None else 4 * self.timeout
        if self.hard_timeout < self.timeout:
            raise ValueError(f"hard_timeout ({self.hard_timeout}) must be at least timeout ({self.timeout})")
        self.max_answer_chars = int(max_answer_chars)
        self.memory_limit_mb = memory_limit_mb

    @property
    def _shared(self) -> SharedWorker:
        return SharedWorker.for_limit(self.memory_limit_mb)

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        gold = _reference_answer(reference)
        keys = [_normalized(extract_answer(text)) for text in completions]
        to_judge = sorted({key for key in keys if key is not None and len(key) <= self.max_answer_chars})
        judged = _judge_integers(gold, to_judge)
        to_judge = [key for key in to_judge if key not in judged]
        judged.update(self._judge(gold, to_judge) if to_judge else {})
        verdicts: dict[str | None, Verdict] = {None: Verdict(False, NO_ANSWER, None, "no final answer found")}
        for key in set(keys) - verdicts.keys():
            if key in judged:
                reason, canonical, detail = judged[key]
                verdicts[key] = Verdict(reason == CORRECT, reason, canonical or key, detail)
            else:
                verdicts[key] = Verdict(False, PARSE_ERROR, None, f"answer longer than {self.max_answer_chars} characters")
        return [verdicts[key] for key in keys]

    def _judge(self, gold: str, answers: list[str]) -> dict[str, tuple[str, str | None, str]]:
        """(reason, canonical, detail) per answer, from the worker."""
        results: dict[str, tuple[str, str | None, str]] = {}
        shared = self._shared
        with shared.lock:
            while len(results) < len(answers):
                self._run(shared, gold, answers[len(results) :], results)
        return results

    def _run(
        self, shared: SharedWorker, gold: str, pending: list[str], results: dict[str, tuple[str, str | None, str]]
    ) -> None:
        """Judge ``pending`` in one worker, adding to ``results``, until done or until the worker hangs or
        dies: the answer in flight then gets ``timeout`` / ``parse_error`` and the worker is replaced."""
        worker = shared.live()
        in_flight: str | None = None  # None: the reference answer
        try:
            worker.send(("judge", gold, pending, self.timeout))
            reply = worker.receive(self.hard_timeout)
            if reply is not None and reply[1] != "ok":  # the reference failed: every answer shares its fate
                results.update({answer: (reply[1], None, reply[2]) for answer in pending})
                return
            if reply is not None:
                for answer in pending:
                    in_flight = answer
                    reply = worker.receive(self.hard_timeout)
                    if reply is None:
                        break
                    results[answer] = (reply[1], reply[2], reply[3])
                else:
                    return
            failure = (TIMEOUT, None, f"worker unresponsive for {self.hard_timeout:g} s, killed")
        except (EOFError, OSError):
            failure = (PARSE_ERROR, None, "the verification worker died")
        shared.discard()
        if in_flight is None:
            reason, _, detail = failure
            results.update({answer: (reason, None, f"reference answer: {detail}") for answer in pending})
        else:
            results[in_flight] = failure

    @property
    def worker_pid(self) -> int | None:
        """Process id of the worker serving this verifier in this process (None if none is running)."""
        return self._shared.pid

    def close(self) -> None:
        """Stop the worker process (shared by this process's math verifiers; it also stops at exit and is
        restarted by the next call that needs it)."""
        shared = self._shared
        with shared.lock:
            shared.discard()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "math_verify": metadata.version("math-verify"),
            "sympy": metadata.version("sympy"),
            "latex2sympy2_extended": metadata.version("latex2sympy2_extended"),
            "extraction": "last of \\boxed{} / 'final answer is'",
            "timeout_cpu_s": self.timeout,
            "hard_timeout_s": self.hard_timeout,
            "max_answer_chars": self.max_answer_chars,
            "memory_limit_mb": self.memory_limit_mb,
        }


_INTEGER = re.compile(r"-?\d{1,1000}")


def _judge_integers(gold: str, answers: list[str]) -> dict[str, tuple[str, str | None, str]]:
    """Verdicts for plain integers against a plain-integer reference, without a worker round trip: for
    these math-verify compares values exactly, so plain ``int`` equality is the same judgement."""
    gold = normalize_answer(gold)
    if not _INTEGER.fullmatch(gold):
        return {}
    value = int(gold)
    return {
        answer: (CORRECT if int(answer) == value else WRONG, str(int(answer)), "")
        for answer in answers
        if _INTEGER.fullmatch(answer)
    }


def _normalized(answer: str | None) -> str | None:
    if answer is None:
        return None
    return normalize_answer(answer) or None


def _reference_answer(reference: Mapping[str, Any]) -> str:
    if "answer" not in reference:
        raise ValueError(f"the math verifier needs reference['answer']; the reference has {sorted(reference)}")
    answer = reference["answer"]
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise ValueError(f"reference['answer'] must be a string or number, got {type(answer).__name__}")
    return str(answer)
