"""``math``: final-answer equivalence through math-verify, fast enough for 10,000 samples per problem.

For each problem the verifier

1. extracts each sample's final answer (pure string work, see ``extract_answer``) and normalises it
   (``normalize_answer``);
2. judges each *distinct* normalised answer once:

   - an absurd answer (brackets nested 30 deep, a power or factorial of more than 100,000 digits) is
     refused before anything parses it (``verifiers.exact_numbers.refusal``: Python computes such numbers
     in C, where no CPU timer interrupts it);
   - an exact number (integers, fractions, integer powers ...) against an exact-number reference is
     compared exactly (``verifiers.exact_numbers.exact_value``): math-verify's numeric tolerance would make
     ``10^{20}`` equal to ``10^{20}+1``;
   - any other answer goes to math-verify, which parses it and compares it with the reference, in a worker
     process under a CPU budget and a wall-clock watchdog (``verifiers.math_worker``). The budget adapts:
     every answer first gets ``QUICK_BUDGET_S`` (MATH-500's answers need under 0.25 s); the answers that
     use it up share ``timeout``: each gets ``timeout / their number`` (at least the quick budget, at most
     ``timeout``), spread over ``workers`` processes, so a batch full of slow answers costs about
     ``timeout / workers`` of wall time after the quick pass, not ``timeout`` per answer;
3. gives every sample the verdict of its answer. ``Verdict.answer`` is the canonical form of the parsed
   answer (sympy's printed form, decimals made exact), else the normalised string: what majority vote counts.

A verdict is a function of (reference, normalised answer), and for an answer slower than the quick budget
also of how many other slow answers the call has; distinct answers are judged in sorted order, so the
verdicts do not depend on the order of the samples or of the problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from importlib import metadata
from typing import Any

from harness.core.errors import check_number
from verifiers import exact_numbers
from verifiers.base import CORRECT, NO_ANSWER, PARSE_ERROR, TIMEOUT, WRONG, Verdict, reference_answer
from verifiers.exact_numbers import TooLarge, exact_value, refusal
from verifiers.math_worker import SharedWorker

QUICK_BUDGET_S = 0.5  # CPU seconds every answer gets first; the slowest MATH-500 answer needs 0.21 s
HARD_TIMEOUT_FLOOR_S = 5.0  # the watchdog's least wall time for a job (a loaded machine runs 0.5 s CPU slowly)
PRINTABLE_DIGITS = 4000  # Python prints integers of up to 4,300 digits (sys.int_max_str_digits)
Judged = dict[str, tuple[str, "str | None", str]]  # answer -> (reason, canonical form or None, detail)

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
            A job with a smaller CPU budget gets a proportionally shorter watchdog (at least 5 s).
        max_answer_chars: longer answers are not parsed (reason ``parse_error``); MATH answers are short.
        memory_limit_mb: address-space limit of the worker process (None: no limit).
        workers: worker processes over which the answers slower than the quick budget are spread.

    Reasons: ``correct``, ``wrong`` (parsed, not equivalent), ``no_answer`` (nothing extracted),
    ``parse_error`` (not parseable and not equal as a string, too long, or refused as absurd), ``timeout``,
    ``memory_limit``.
    """

    name = "math"

    def __init__(
        self,
        timeout: float = 5.0,
        hard_timeout: float | None = None,
        max_answer_chars: int = 1000,
        memory_limit_mb: int | None = 4096,
        workers: int = 2,
    ) -> None:
        check_number("timeout", timeout, above=0)
        check_number("workers", workers, at_least=1, integer=True)
        self.workers = workers
        self.timeout = float(timeout)
        self.hard_timeout = float(hard_timeout) if hard_timeout is not None else 4 * self.timeout
        check_number("hard_timeout", self.hard_timeout, at_least=self.timeout)
        self.max_answer_chars = int(max_answer_chars)
        self.memory_limit_mb = memory_limit_mb

    def check_reference(self, reference: Mapping[str, Any]) -> None:
        """A non-empty string or a number in ``reference["answer"]`` (whether it parses is math-verify's to say)."""
        _reference_answer(reference)

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        gold = _reference_answer(reference)
        keys = [_normalized(extract_answer(text)) for text in completions]
        to_judge = sorted({key for key in keys if key is not None and len(key) <= self.max_answer_chars})
        judged: Judged = {}
        for answer in to_judge:
            why = refusal(answer)
            if why is not None:
                judged[answer] = (PARSE_ERROR, None, f"refused before parsing: {why}")
        judged.update(_judge_exact(gold, [key for key in to_judge if key not in judged]))
        to_judge = [key for key in to_judge if key not in judged]
        judged.update(self._judge(gold, to_judge) if to_judge else {})
        verdicts: dict[str | None, Verdict] = {None: Verdict(False, NO_ANSWER, None, "no final answer found")}
        for key in set(keys) - verdicts.keys():
            if key in judged:
                reason, canonical, detail = judged[key]
                verdicts[key] = Verdict(reason == CORRECT, reason, canonical or key, detail)
            else:
                verdicts[key] = Verdict(
                    False, PARSE_ERROR, None, f"answer longer than {self.max_answer_chars} characters"
                )
        return [verdicts[key] for key in keys]

    def _judge(self, gold: str, answers: list[str]) -> Judged:
        """(reason, canonical, detail) per answer, from the workers: every answer with the quick budget in
        the first worker, then the ones that used it up, sharing ``timeout``, spread over ``workers`` workers."""
        quick = min(self.timeout, QUICK_BUDGET_S)
        results, hung = self._judge_in(0, gold, answers, quick)
        slow = [answer for answer in answers if results[answer][0] == TIMEOUT and answer not in hung]
        if not slow or quick >= self.timeout:
            return results
        shares = [slow[slot :: self.workers] for slot in range(min(self.workers, len(slow)))]
        budget = min(self.timeout, max(quick, self.timeout / len(slow)))

        def judge_share(slot: int) -> Judged:
            return self._judge_in(slot, gold, shares[slot], budget)[0]

        with ThreadPoolExecutor(max_workers=len(shares)) as pool:
            for share_results in pool.map(judge_share, range(len(shares))):
                results.update(share_results)
        return results

    def _judge_in(self, slot: int, gold: str, answers: list[str], budget: float) -> tuple[Judged, set[str]]:
        """Judge ``answers`` in the worker of ``slot`` with ``budget`` CPU seconds each; also returns the
        answers on which the worker hung (killed by the watchdog: not worth a second try)."""
        results: Judged = {}
        hung: set[str] = set()
        shared = SharedWorker.for_limit(self.memory_limit_mb, slot)
        with shared.lock:
            while len(results) < len(answers):
                self._run(shared, gold, answers[len(results) :], results, hung, budget)
        return results, hung

    def _run(
        self, shared: SharedWorker, gold: str, pending: list[str], results: Judged, hung: set[str], budget: float
    ) -> None:
        """Judge ``pending`` in one worker, adding to ``results``, until done or until the worker hangs or
        dies: the answer in flight then gets ``timeout`` / ``parse_error`` and the worker is replaced."""
        worker = shared.live()
        watchdog = min(self.hard_timeout, max(HARD_TIMEOUT_FLOOR_S, self.hard_timeout * budget / self.timeout))
        in_flight: str | None = None  # None: the reference answer
        try:
            worker.send(("judge", gold, pending, budget))
            reply = worker.receive(watchdog)
            if reply is not None and reply[1] != "ok":  # the reference failed: every answer shares its fate
                results.update(dict.fromkeys(pending, (reply[1], None, reply[2])))
                return
            if reply is not None:
                for answer in pending:
                    in_flight = answer
                    reply = worker.receive(watchdog)
                    if reply is None:
                        break
                    results[answer] = (reply[1], reply[2], reply[3])
                else:
                    return
            failure = (TIMEOUT, None, f"worker unresponsive for {watchdog:g} s, killed")
        except (EOFError, OSError):
            failure = (PARSE_ERROR, None, "the verification worker died")
        shared.discard()
        if in_flight is None:
            reason, _, detail = failure
            results.update(dict.fromkeys(pending, (reason, None, f"reference answer: {detail}")))
            hung.update(pending)
        else:
            results[in_flight] = failure
            hung.add(in_flight)

    @property
    def worker_pid(self) -> int | None:
        """Process id of the first worker serving this verifier in this process (None if none is running)."""
        return SharedWorker.for_limit(self.memory_limit_mb).pid

    def close(self) -> None:
        """Stop the worker processes (shared by this process's math verifiers; they also stop at exit and are
        restarted by the next call that needs them)."""
        for shared in SharedWorker.all_for_limit(self.memory_limit_mb):
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
            "quick_budget_cpu_s": min(self.timeout, QUICK_BUDGET_S),
            "slow_answers": f"share timeout_cpu_s, spread over {self.workers} workers",
            "exact_numbers": "compared as fractions",
            "refused": {
                "max_nesting": exact_numbers.MAX_NESTING,
                "max_digits": exact_numbers.MAX_DIGITS,
                "max_exponent": exact_numbers.MAX_EXPONENT,
            },
        }


def _judge_exact(gold: str, answers: list[str]) -> Judged:
    """Verdicts for exact numbers against an exact-number reference, compared as fractions without a worker
    round trip (``verifiers.exact_numbers``); answers that are not exact numbers are left out."""
    try:
        value = exact_value(normalize_answer(gold))
    except TooLarge:
        return {}
    if value is None:
        return {}
    results: Judged = {}
    for answer in answers:
        try:
            mine = exact_value(answer)
        except TooLarge as error:
            results[answer] = (PARSE_ERROR, None, f"refused before parsing: {error}")
            continue
        if mine is not None:
            results[answer] = (CORRECT if mine == value else WRONG, _exact_text(mine, answer), "")
    return results


def _exact_text(value: Fraction, answer: str) -> str:
    """The canonical form of an exact number, as sympy prints it (``-1/2``); numbers too long to print
    (Python refuses to print integers of over 4,300 digits) keep their answer's spelling."""
    if max(abs(value.numerator), value.denominator) >= 10**PRINTABLE_DIGITS:
        return answer
    return str(value)


def _normalized(answer: str | None) -> str | None:
    if answer is None:
        return None
    return normalize_answer(answer) or None


def _reference_answer(reference: Mapping[str, Any]) -> str:
    return str(reference_answer(reference, "math"))
