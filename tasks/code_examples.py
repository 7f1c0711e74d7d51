"""Example calls a code problem shows its solver, to run candidate programs on (majority vote for code).

Programs are grouped by what they return on inputs the prompt itself shows, never on the hidden tests (as
AlphaCode clusters by behaviour on generated inputs, and CodeT on the prompt's examples). These functions find
those inputs as call expressions, e.g. ``"has_close_elements([1.0, 2.0, 3.0], 0.5)"``:

* HumanEval: the examples of the entry point's docstring: doctest lines (``>>> f(1, 2)``), calls written
  inline (``f([1, 2]) == 3``, ``f("ab") ➞ True``), and inputs written as assignments to the parameters
  (``For lst = [1,2,3] the output should be 14``, ``Input: arr = [4, -4, 4], k = 2``).
* MBPP: the call in the first assert the prompt shows (its arguments, not its expected value).

Every call's arguments are Python literals, so evaluating one runs the candidate's function and nothing else.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Sequence

# What ends a call expression written in prose: the end of the text, or one of its brackets closing.
_OPENING, _CLOSING = "([{", ")]}"
_ASSIGNED_INPUTS = re.compile(r"(?:\bFor\b|\bInput\s*:)\s*(.+)")


def docstring_examples(prompt: str, entry_point: str) -> list[str]:
    """The example calls of ``entry_point`` in the text after its ``def`` in ``prompt`` (HumanEval's prompt),
    in order, each once."""
    start = prompt.find(f"def {entry_point}")
    if start < 0:
        return []
    parameters = _parameters(prompt, entry_point)
    text = prompt[start + len(f"def {entry_point}") :]
    found = [*_inline_calls(text, entry_point, parameters), *_assigned_inputs(text, entry_point, parameters)]
    return list(dict.fromkeys(found))


def first_assert_call(asserts: Sequence[str]) -> list[str]:
    """The call of the function under test in the first of MBPP's asserts (``assert f(1, 2) == 3`` gives
    ``f(1, 2)``): the first call of a name that is not a builtin, its arguments literals."""
    for line in asserts[:1]:
        try:
            tree = ast.parse(line.strip())
        except SyntaxError:
            return []
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and not hasattr(builtins, node.func.id)
                and _literal_arguments(node)
            ):
                return [ast.unparse(node)]
    return []


def _parameters(prompt: str, entry_point: str) -> list[str] | None:
    """The entry point's positional parameters, from the prompt's code (None when it does not parse)."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            return [argument.arg for argument in node.args.args]
    return None


def _literal_arguments(call: ast.Call) -> bool:
    try:
        for argument in [*call.args, *(keyword.value for keyword in call.keywords)]:
            ast.literal_eval(argument)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return not any(isinstance(argument, ast.Starred) for argument in call.args)


def _call(expression: str, entry_point: str, parameters: list[str] | None) -> str | None:
    """``expression`` as a call of ``entry_point`` with literal arguments (keywords as positions, in the
    parameters' order), or None."""
    try:
        node = ast.parse(expression.replace("\n", " ").strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point):
        return None
    if not _literal_arguments(node):
        return None
    if node.keywords:  # inputs named by their parameters: positional, in the signature's order
        if parameters is None or node.args:
            return None
        given = {keyword.arg: keyword.value for keyword in node.keywords}
        if set(given) != set(parameters):
            return None
        node = ast.Call(func=node.func, args=[given[name] for name in parameters], keywords=[])
    return ast.unparse(node)


def _inline_calls(text: str, entry_point: str, parameters: list[str] | None) -> list[str]:
    calls = []
    for match in re.finditer(rf"\b{re.escape(entry_point)}\s*\(", text):
        end = _closing_bracket(text, match.end() - 1)
        if end is not None:
            call = _call(text[match.start() : end + 1], entry_point, parameters)
            if call is not None:
                calls.append(call)
    return calls


def _assigned_inputs(text: str, entry_point: str, parameters: list[str] | None) -> list[str]:
    """Inputs written as ``For x = 3 ...`` or ``Input: a = [1], k = 2`` (the parameters by name), or
    ``Input: 3`` for a function of one parameter."""
    if not parameters:
        return []
    calls = []
    for line in text.splitlines():
        match = _ASSIGNED_INPUTS.search(line)
        if match is None:
            continue
        rest = match.group(1).strip()
        # the longest prefix that makes a call: "lst = [1,2,3] the output should be 14" keeps "lst = [1,2,3]"
        for cut in sorted({len(rest), *(m.start() for m in re.finditer(r"[\s,;.]", rest))}, reverse=True):
            candidate = rest[:cut].strip().rstrip(",;")
            if not candidate:
                continue
            named = "=" in candidate.split("(")[0].split("[")[0]
            if not named and len(parameters) != 1:
                continue
            call = _call(f"{entry_point}({candidate})", entry_point, parameters)
            if call is not None:
                calls.append(call)
                break
    return calls


def _closing_bracket(text: str, opening: int) -> int | None:
    """The index of the bracket closing the one at ``opening`` (strings skipped), or None."""
    depth, quote, index = 0, "", opening
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None
