"""``python-tests``: a completion is correct when the program it completes passes its tests in the sandbox.

A problem's ``reference`` says how to build that program (all fields JSON values):

=================  ==========================================================================================
``prefix``         code placed before the completion (HumanEval: the signature and docstring); default ""
``test``           test code placed after it (asserts, or a ``check`` function and its call); required
``stop``           cut the completion at the first of these strings (MBPP: ``["[DONE]"]``); default []
``function_body``  the completion continues the body of the prefix's last function: cut it where that
                   function ends, at the first line of code that starts in column 0; default false
``code_block``     the completion is a chat answer holding code (see ``code_from_answer``): its first
                   ```python block, else the whole answer; a block that defines a function at top level is
                   a whole definition placed after the prefix, any other block is the prefix function's body;
                   default false
=================  ==========================================================================================

The program is ``prefix + completion + "\\n" + test``, the completion cut or extracted as above. Identical
programs run once per ``verify`` call, so repeated samples cost one execution (this assumes programs are
deterministic; PYTHONHASHSEED is fixed). The distinct programs of one call run concurrently on ``max_workers``
threads, each waiting on its own sandbox process (see ``verifiers.sandbox``).

Behaviour (majority vote for code): where the reference holds ``examples``, call expressions the prompt itself
shows (``tasks.code_examples``: HumanEval's docstring examples, MBPP's first visible assert's call; never the
hidden tests), each distinct candidate program (``prefix + completion``, without the tests) also runs in the
sandbox, with the same limits, and is called on each example; what it returns (its ``repr``, or the exception
it raises) on all of them is the sample's ``answer``. Programs that behave alike share an answer, so majority
vote and the weighted selectors count behaviours as they count math answers (AlphaCode's clustering, on the
prompt's inputs as CodeT does). A program that does not run to its end (a syntax error, a crash at import, a
timeout) has no answer. Behaviours are computed once per distinct program and call.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.core.errors import VerifierError, check_number
from verifiers.base import CORRECT, Verdict
from verifiers.sandbox import ExecutionResult, SandboxLimits, probe_isolation, run_python

# tokens that may sit in column 0 inside a function body without ending it
_LAYOUT_TOKENS = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
)


def cut_at_stop(completion: str, stop: Sequence[str]) -> str:
    """``completion`` up to the first occurrence of any of ``stop`` (whole if none occurs)."""
    cut = min((index for index in (completion.find(s) for s in stop if s) if index >= 0), default=len(completion))
    return completion[:cut]


def cut_function_body(prefix: str, completion: str) -> str:
    """Cut a function-body continuation where the function ends: at the first statement in column 0.

    A completion that opens with column-0 code (it redefines the function) is cut at the first column-0
    statement after its indented lines instead. Working on tokens rather than lines keeps what may sit in
    column 0 inside a body: lines of multi-line strings, bracketed continuation lines and comments. Text that
    cannot be tokenized (broken indentation) is cut at the first such line that starts with neither whitespace
    nor ``#``.
    """
    text = prefix + completion
    line_starts = [0]
    for line in io.StringIO(text).readlines():  # split as tokenize splits
        line_starts.append(line_starts[-1] + len(line))
    body_seen = False
    at_statement_start = True
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.NEWLINE:
                at_statement_start = True
            if token.type in _LAYOUT_TOKENS:
                continue
            row, column = token.start
            offset = line_starts[row - 1] + column
            if at_statement_start and offset >= len(prefix):
                if column > 0:
                    body_seen = True
                elif body_seen:
                    return completion[: offset - len(prefix)]
            at_statement_start = False
    except (tokenize.TokenError, SyntaxError):  # unfinished (cut by max_tokens) or inconsistently indented
        return _cut_first_column_zero_line(completion)
    return completion


def _cut_first_column_zero_line(completion: str) -> str:
    body_seen = False
    offset = 0
    for line in io.StringIO(completion).readlines():
        if line.strip() and not line.lstrip().startswith("#"):
            if line[0].isspace():
                body_seen = True
            elif body_seen:
                return completion[:offset]
        offset += len(line)
    return completion


_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)")
_PYTHON_TAGS = frozenset({"", "python", "python3", "py"})
_TOP_LEVEL_DEF = re.compile(r"^(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(", re.MULTILINE)
# top-level statements of a whole-definition answer that are kept: what a function needs to be defined
_DEFINITIONS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
)


def extract_code_block(answer: str) -> str:
    """The code of a chat answer: its first fenced block tagged python (or untagged), else its first fenced
    block, else the whole answer (a model that answers with bare code). A block left open (the answer was
    cut by a stop string or the token limit) runs to the end of the answer."""
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in answer.splitlines(keepends=True):
        fence = _FENCE.match(line)
        if current is None:
            if fence:
                current = []
                blocks.append((fence.group(1).lower(), current))
        elif fence and not fence.group(1):
            current = None
        else:
            current.append(line)
    if not blocks:
        return answer
    _, lines = next((block for block in blocks if block[0] in _PYTHON_TAGS), blocks[0])
    return "".join(lines)


def keep_definitions(code: str) -> str:
    """The imports, function and class definitions and assignments of ``code``, in order, without the rest of
    its top-level statements (examples and self-tests that chat answers add after a function, such as
    ``print(f(3))`` or ``assert f(1) == 2``, as EvalPlus's sanitiser drops them). Code that does not parse is
    returned whole, so that it gets its syntax error."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.splitlines(keepends=True)
    kept = []
    for node in tree.body:
        if isinstance(node, _DEFINITIONS):
            first = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])
            kept.append("".join(lines[first - 1 : node.end_lineno]))
    return "".join(kept)


def code_from_answer(prefix: str, answer: str) -> str:
    """What a chat answer adds after ``prefix`` (the prompt's signature and docstring) to make the program.

    The answer's code block (``extract_code_block``) is either a whole definition, when a function is defined
    at its top level: it is placed after the prefix, whose function (a docstring only) it redefines, while
    the prefix's imports and helper functions stay available; its other top-level statements are dropped
    (``keep_definitions``). Or it is the body of the prefix's last function: indented by four spaces when
    written in column 0, then cut where the function ends (``cut_function_body``).
    """
    code = extract_code_block(answer)
    if _TOP_LEVEL_DEF.search(code):
        return "\n" + keep_definitions(code)
    lines = code.splitlines(keepends=True)
    first_code = next((line for line in lines if line.strip()), "")
    if first_code and not first_code[0].isspace():
        code = "".join("    " + line if line.strip() else line for line in lines)
    return cut_function_body(prefix, code)


# Appended to a candidate program (without its tests) to call it on the prompt's examples: leaves the outputs,
# joined, and their digest in __ttc_report__ (which the sandbox returns as the run's detail). Memory addresses in
# a repr ("<object at 0x7f...>") differ between runs of the same program, so they are dropped.
BEHAVIOUR_HARNESS = """

def __ttc_behaviour(calls):
    import hashlib
    import re

    outputs = []
    for call in calls:
        try:
            text = repr(eval(call, globals()))
        except Exception as error:
            text = "raises " + type(error).__name__
        outputs.append(re.sub(r" at 0x[0-9a-fA-F]+", "", text))
    joined = " | ".join(outputs)
    return hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()[:16] + " " + joined


__ttc_report__ = __ttc_behaviour({calls!r})
"""
# A behaviour longer than this is shown cut, with its digest keeping different behaviours apart.
ANSWER_CHARS = 200


class PythonTestsVerifier:
    """Runs each distinct completion with its tests in the sandbox; correct when every test passes.

    Args:
        timeout_s: wall-clock seconds one program may run (after interpreter start-up). Timeouts are counted as
            failures, so on a heavily loaded machine raise it rather than lose correct slow programs.
        memory_mb: address-space limit per process, in MiB.
        max_processes: processes (and threads) a program may have at once (enforced when run as root).
        max_workers: programs run at once by one ``verify`` call; None: the CPUs this process may use. A harness
            that already calls ``verify`` from several worker processes may want 1.
        behaviour: also run each program on the prompt's example calls (the reference's ``examples``), its
            outputs being the sample's answer (see the module docstring).
    """

    name = "python-tests"

    def __init__(
        self,
        timeout_s: float = 5.0,
        memory_mb: int = 1024,
        max_processes: int = 16,
        max_workers: int | None = None,
        behaviour: bool = True,
    ) -> None:
        self.limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb, max_processes=max_processes)
        if max_workers is None:
            max_workers = len(os.sched_getaffinity(0))
        check_number("max_workers", max_workers, at_least=1, integer=True)
        self.max_workers = max_workers
        self.behaviour = behaviour

    def check_reference(self, reference: Mapping[str, Any]) -> None:
        """The fields of the module's table, of their kinds; ``test`` must hold code (blank tests would pass
        every program)."""
        build_program(reference, "")
        if not str(reference["test"]).strip():
            raise VerifierError("python-tests reference 'test' is empty: every program would pass it")

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        programs = [build_program(reference, completion) for completion in completions]
        examples = example_calls(reference) if self.behaviour else []
        probes = [behaviour_program(reference, completion, examples) for completion in completions] if examples else []
        distinct = list(dict.fromkeys(programs + probes))
        if not distinct:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(distinct))) as pool:
            results = dict(zip(distinct, pool.map(lambda program: run_python(program, self.limits), distinct)))
        answers = [behaviour_answer(results[probe]) for probe in probes] if probes else [None] * len(programs)
        return [
            Verdict(
                correct=results[p].reason == CORRECT, reason=results[p].reason, answer=answer, detail=results[p].detail
            )
            for p, answer in zip(programs, answers)
        ]

    def describe(self) -> dict[str, Any]:
        description = {
            "name": self.name,
            "timeout_s": self.limits.timeout_s,
            "memory_mb": self.limits.memory_mb,
            "max_processes": self.limits.max_processes,
            "max_file_mb": self.limits.max_file_mb,
            "isolation": list(probe_isolation(self.limits)),
        }
        if self.behaviour:
            description["answers"] = "outputs on the prompt's example calls"
        return description


def example_calls(reference: Mapping[str, Any]) -> list[str]:
    """The reference's example calls (``examples``: call expressions the prompt shows), checked."""
    examples = reference.get("examples") or []
    if not isinstance(examples, list) or not all(isinstance(call, str) for call in examples):
        raise VerifierError(f"python-tests reference 'examples' must be a list of strings, got {examples!r}")
    return examples


def behaviour_program(reference: Mapping[str, Any], completion: str, examples: Sequence[str]) -> str:
    """The candidate program without its tests, calling itself on ``examples`` (``BEHAVIOUR_HARNESS``)."""
    return candidate_program(reference, completion) + BEHAVIOUR_HARNESS.format(calls=list(examples))


def behaviour_answer(result: ExecutionResult) -> str | None:
    """A probe's outputs as a sample's answer: equal exactly for equal outputs (cut ones end with their digest);
    None for a program that did not run to its end."""
    if result.reason != CORRECT:
        return None
    digest, _, outputs = result.detail.partition(" ")
    if len(outputs) <= ANSWER_CHARS:
        return outputs
    return f"{outputs[: ANSWER_CHARS - 20]}... #{digest}"


def build_program(reference: Mapping[str, Any], completion: str) -> str:
    """The program that judges ``completion``: prefix, the cut completion, and the tests (see module doc)."""
    return candidate_program(reference, completion) + "\n" + reference["test"]


def candidate_program(reference: Mapping[str, Any], completion: str) -> str:
    """The program a completion makes, without its tests: the prefix and the cut or extracted completion."""
    prefix = reference.get("prefix", "")
    test = reference.get("test")
    stop = reference.get("stop", [])
    function_body = reference.get("function_body", False)
    code_block = reference.get("code_block", False)
    if not isinstance(test, str):
        raise VerifierError(
            f"python-tests reference needs a string 'test' (the test code); got keys {sorted(reference)}"
        )
    if not isinstance(prefix, str):
        raise VerifierError(f"python-tests reference 'prefix' must be a string, got {type(prefix).__name__}")
    if isinstance(stop, str) or not all(isinstance(s, str) for s in stop):
        raise VerifierError(f"python-tests reference 'stop' must be a list of strings, got {stop!r}")
    for name, flag in (("function_body", function_body), ("code_block", code_block)):
        if not isinstance(flag, bool):
            raise VerifierError(f"python-tests reference '{name}' must be true or false, got {flag!r}")
    if not isinstance(completion, str):
        raise VerifierError(f"a completion must be a string, got {type(completion).__name__}")
    completion = cut_at_stop(completion, stop)
    if code_block:
        completion = code_from_answer(prefix, completion)
    elif function_body:
        completion = cut_function_body(prefix, completion)
    return prefix + completion
