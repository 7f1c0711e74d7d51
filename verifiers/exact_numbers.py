"""Exact numbers in LaTeX answers, and the size checks that refuse absurd answers before sympy sees them.

Two jobs, both pure string work in the verifying process (no worker round trip):

- ``exact_value``: the value of an answer written with integers, fractions (``\\frac{a}{b}``, ``a/b``),
  ``+ - \\cdot \\times \\div``, integer powers, factorials, binomials and brackets, as a ``Fraction``; None
  for anything else (decimals, symbols, radicals, implicit products such as the mixed number
  ``1\\frac{4}{5}``). Two such answers are equal exactly when their fractions are: math-verify compares
  numbers with a tolerance, which makes ``10^{20}`` equal to ``10^{20}+1``.
- ``refusal``: why an answer is too absurd to parse (None when it is not): brackets nested deeper than
  ``MAX_NESTING``, or a power, factorial or binomial whose value would have more than ``MAX_DIGITS``
  digits, or a power of a symbolic base above ``MAX_EXPONENT``. Python computes such numbers in C, where
  neither a CPU timer nor anything but killing the process interrupts it (``10^{10^{10}}`` ran for 16 s
  under a 5 s budget), and they are never a competition answer (MATH-500's answers nest 2 deep at most).

Both estimate a power's size before computing it (digits = exponent x log10 of the base), so neither
ever computes a huge number.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_NESTING = 30  # brackets and braces
MAX_DIGITS = 10**5  # digits of a power, factorial or binomial: such an integer takes milliseconds to compute
MAX_LITERAL_DIGITS = 4000  # Python reads integers of up to 4,300 digits from text (sys.int_max_str_digits)
MAX_EXPONENT = 10**4  # exponent of a symbolic base ((x + 1)^{100000} would be expanded), and the smaller k of a
# binomial (math.comb(10^6, 5 x 10^5), 300,000 digits, takes 6.5 s)

_NUMBER = re.compile(r"\d+")
_SPACED_DIGITS = re.compile(r"\d\s+\d")
_COMMAND = re.compile(r"\\[a-zA-Z]+")
_OPENERS = {"{": "}", "(": ")", "[": "]"}
_CLOSERS = {value: key for key, value in _OPENERS.items()}
_MULTIPLY = ("*", "\\cdot", "\\times")
_DIVIDE = ("/", "\\div")


class NotExact(ValueError):
    """The text is not an exact number this parser reads (a symbol, a decimal, an implicit product ...)."""


class TooLarge(ValueError):
    """The number would have more than ``MAX_DIGITS`` digits (or a symbolic power a huge exponent)."""


def exact_value(text: str) -> Fraction | None:
    """The answer's exact value (see the module docstring); None when it is not an exact number.

    Raises TooLarge when the value would be absurdly large."""
    try:
        return _Parser(text).parse()
    except NotExact:
        return None


def refusal(answer: str) -> str | None:
    """Why ``answer`` is refused before parsing (see the module docstring), or None."""
    depth = deepest = 0
    for character in answer:
        if character in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif character in _CLOSERS:
            depth -= 1
    if deepest > MAX_NESTING:
        return f"brackets nested {deepest} deep (more than {MAX_NESTING})"
    try:
        for position, character in enumerate(answer):
            if character == "^":
                _check_power(answer, position)
            elif character == "!":
                _check_factorial(_value_before(answer, position))
        for match in re.finditer(r"\\binom", answer):
            _Parser(answer[match.start() :]).binomial_prefix()
    except TooLarge as error:
        return str(error)
    return None


# ------------------------------------------------------------------------------------------- size checks


def _digits(value: Fraction) -> float:
    """log10 of the larger of |numerator| and denominator (about the digits needed to write the value)."""
    return max(math.log10(abs(part)) for part in (value.numerator, value.denominator) if part != 0)


def _check_power(text: str, position: int) -> None:
    """The power whose ``^`` is at ``position``: refuse a numeric one with too many digits, a symbolic one with
    a huge exponent. A base or exponent that is not an exact number is not checked here."""
    exponent = _group_after(text, position + 1)
    if exponent is None:
        return
    exponent_value = exact_value(exponent)
    if exponent_value is None:
        return
    base = _operand_before(text, position)
    base_value = None if base is None else exact_value(base)
    if base_value is None:
        if abs(exponent_value) > MAX_EXPONENT:
            raise TooLarge(f"a power with exponent {_size(exponent_value)} (more than {MAX_EXPONENT:,})")
        return
    _check_power_size(base_value, exponent_value)


def _check_power_size(base: Fraction, exponent: Fraction) -> None:
    if abs(base) in (0, 1):
        return
    digits = abs(float(exponent)) * _digits(base) if abs(exponent) < 10**300 else math.inf
    if digits > MAX_DIGITS:
        raise TooLarge(f"a power of about {_size_digits(digits)} digits (more than {MAX_DIGITS:,})")


def _check_factorial(value: Fraction | None) -> None:
    if value is None or value.denominator != 1 or value < 0:
        return
    digits = math.lgamma(float(value) + 1) / math.log(10) if value < 10**300 else math.inf
    if digits > MAX_DIGITS:
        raise TooLarge(f"a factorial of about {_size_digits(digits)} digits (more than {MAX_DIGITS:,})")


def _check_binomial(n: Fraction, k: Fraction) -> None:
    if n.denominator != 1 or k.denominator != 1 or not 0 <= k <= n:
        return
    if n >= 10**300:
        raise TooLarge(f"a binomial coefficient of {_size(n)} (more than {MAX_DIGITS:,} digits)")
    if min(k, n - k) > MAX_EXPONENT:
        raise TooLarge(f"a binomial coefficient choosing {_size(min(k, n - k))} (more than {MAX_EXPONENT:,})")
    smaller = float(min(k, n - k))
    digits = (math.lgamma(float(n) + 1) - math.lgamma(smaller + 1) - math.lgamma(float(n) - smaller + 1)) / math.log(10)
    if digits > MAX_DIGITS:
        raise TooLarge(f"a binomial coefficient of about {_size_digits(digits)} digits (more than {MAX_DIGITS:,})")


def _size(value: Fraction) -> str:
    return f"about 10^{_digits(value):.0f}" if abs(value) >= 10**6 else str(value)


def _size_digits(digits: float) -> str:
    return "infinitely many" if math.isinf(digits) else f"{digits:.3g}"


def _value_before(text: str, position: int) -> Fraction | None:
    operand = _operand_before(text, position)
    return None if operand is None else exact_value(operand)


def _group_after(text: str, start: int) -> str | None:
    """The braced group at ``start`` (its content), or the single character there."""
    if start >= len(text):
        return None
    if text[start] == "{":
        end = _matching(text, start)
        return None if end is None else text[start + 1 : end]
    if text[start] == "\\":
        return None  # a command as exponent (\pi, \frac12 ...): symbolic or handled where it is parsed
    return text[start]


def _operand_before(text: str, position: int) -> str | None:
    """The operand that ends just before ``position``: a bracketed group (content), a run of digits or one
    other character."""
    end = position - 1
    if end < 0:
        return None
    if text[end] in _CLOSERS:
        start = _matching(text, end, step=-1)
        return None if start is None else text[start + 1 : end]
    if text[end].isdigit():
        start = end
        while start > 0 and text[start - 1].isdigit():
            start -= 1
        return text[start : end + 1]
    return text[end]


def _matching(text: str, start: int, step: int = 1) -> int | None:
    """The index of the bracket matching the one at ``start``: its closer forwards (``step`` 1), its opener
    backwards (``step`` -1); None when it is not closed (opened)."""
    inward, outward = (_OPENERS, _CLOSERS) if step == 1 else (_CLOSERS, _OPENERS)
    depth = 0
    for index in range(start, len(text) if step == 1 else -1, step):
        if text[index] in inward:
            depth += 1
        elif text[index] in outward:
            depth -= 1
            if depth == 0:
                return index
    return None


# ---------------------------------------------------------------------------------------- exact parsing


class _Parser:
    """Recursive descent over the answer's characters (spaces ignored):

    expression := ["+"|"-"] term (("+"|"-") term)*
    term       := signed ((* | \\cdot | \\times | / | \\div) signed)*
    signed     := ("-"|"+") signed | power
    power      := factorial ["^" exponent]          exponent: {expression} or one digit
    factorial  := atom "!"*
    atom       := digits | {expression} | (expression) | [expression] | \\frac A B | \\binom A B
                  (A, B: {expression} or one digit)
    """

    def __init__(self, text: str) -> None:
        if _SPACED_DIGITS.search(text):
            raise NotExact("digits separated by a space")  # "1 000": a thousands separator, or a product?
        self.text = text.replace(" ", "")
        self.position = 0

    def parse(self) -> Fraction:
        value = self.expression()
        if self.position != len(self.text):
            raise NotExact(f"unexpected {self.text[self.position : self.position + 10]!r}")
        return value

    def binomial_prefix(self) -> None:
        """Parse the ``\\binom`` at the start (checking its size); what follows it does not matter."""
        try:
            self.atom()
        except NotExact:
            return

    def peek(self, token: str) -> bool:
        if not self.text.startswith(token, self.position):
            return False
        after = self.position + len(token)
        # a command is whole: \cdot must not match the start of \cdots
        return not (token[0] == "\\" and after < len(self.text) and self.text[after].isalpha())

    def take(self, token: str) -> bool:
        if self.peek(token):
            self.position += len(token)
            return True
        return False

    def expression(self) -> Fraction:
        value = self.term()
        while True:
            if self.take("+"):
                value += self.term()
            elif self.take("-"):
                value -= self.term()
            else:
                return value

    def term(self) -> Fraction:
        value = self.signed()
        while True:
            if any(self.take(token) for token in _MULTIPLY):
                value *= self.signed()
            elif any(self.take(token) for token in _DIVIDE):
                divisor = self.signed()
                if divisor == 0:
                    raise NotExact("division by zero")
                value /= divisor
            else:
                return value

    def signed(self) -> Fraction:
        if self.take("-"):
            return -self.signed()
        if self.take("+"):
            return self.signed()
        return self.power()

    def power(self) -> Fraction:
        base = self.factorial()
        if not self.take("^"):
            return base
        exponent = self.argument()
        if exponent.denominator != 1:
            raise NotExact("a fractional exponent")
        _check_power_size(base, exponent)
        if base == 0 and exponent < 0:
            raise NotExact("zero to a negative power")
        return base ** int(exponent)

    def factorial(self) -> Fraction:
        value = self.atom()
        while self.take("!"):
            if value.denominator != 1 or value < 0:
                raise NotExact("factorial of a non-integer")
            _check_factorial(value)
            value = Fraction(math.factorial(int(value)))
        return value

    def argument(self) -> Fraction:
        """A braced group, or a single digit (``\\frac12``, ``x^2``)."""
        if self.take("{"):
            return self.closed("}")
        if self.position < len(self.text) and self.text[self.position].isdigit():
            self.position += 1
            return Fraction(int(self.text[self.position - 1]))
        raise NotExact("an argument that is neither a braced group nor a digit")

    def closed(self, closer: str) -> Fraction:
        value = self.expression()
        if not self.take(closer):
            raise NotExact(f"no closing {closer!r}")
        return value

    def atom(self) -> Fraction:
        number = _NUMBER.match(self.text, self.position)
        if number:
            self.position = number.end()
            if self.peek("."):
                raise NotExact("a decimal number")
            if number.end() - number.start() > MAX_LITERAL_DIGITS:
                raise TooLarge(f"a number written with {number.end() - number.start():,} digits")
            return Fraction(int(number.group()))
        for opener, closer in _OPENERS.items():
            if self.take(opener):
                return self.closed(closer)
        if self.take("\\frac"):
            numerator, denominator = self.argument(), self.argument()
            if denominator == 0:
                raise NotExact("division by zero")
            return numerator / denominator
        if self.take("\\binom"):
            n, k = self.argument(), self.argument()
            _check_binomial(n, k)
            if n.denominator != 1 or k.denominator != 1 or n < 0:
                raise NotExact("a binomial coefficient of non-integers")
            return Fraction(math.comb(int(n), int(k)) if 0 <= k <= n else 0)
        command = _COMMAND.match(self.text, self.position)
        found = command.group() if command else self.text[self.position : self.position + 1] or "the end"
        raise NotExact(f"{found!r} is not part of an exact number")
