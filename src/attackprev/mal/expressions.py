"""MAL TTC expressions: parse them, check them, and write new ones.

A MAL attack step carries its time to compromise (TTC) in brackets after its name,
``| webService [Bernoulli(0.0445)]``. enterpriseLang writes each step's TTC as a
Bernoulli factor, the probability that the step is available at all, times an optional
time factor in days, e.g. ``Bernoulli(0.0789)*Exponential(106.67)``; a lone
``Bernoulli(p)`` is a zero-time step. This module parses such expressions in either order
(:func:`parse_ttc`) and writes new ones (:func:`ttc_expression`), replacing only the
Bernoulli factor and keeping the published time factor verbatim.

Facts about the tools shape the output (found by running mal-toolbox 2.11.0 and
mal-simulator 3.3.0):

* mal-toolbox reads exponent notation wrongly and silently: ``Bernoulli(1e-5)`` compiles
  to ``Bernoulli(1.0)``. Numbers are therefore always written in positional notation and
  expressions containing exponents are refused.
* The time factor is written first, ``Exponential(106.67)*Bernoulli(0.0789)``. In
  securiCAD's semantics the two orders mean the same, but mal-simulator's effort-based
  TTC mode (``TTCMode.EFFORT_BASED_PER_STEP_SAMPLE``) reads only the left factor of a
  product, so ``Bernoulli(p)*Exponential(r)`` would succeed on the first attempt; with the
  time factor first every mode of mal-simulator behaves as intended.
* mal-simulator's ``TTCDist.from_dict`` keeps only the last factor of a left-nested
  product, and a named constant on the left of an operator is changed in place for every
  step that uses it. A compound time factor is written in parentheses,
  ``(Uniform(8,30)+Exponential(2))*Bernoulli(p)``, which the MAL compiler reads as
  intended but mal-simulator does not; :func:`malsim_problems` lists such shapes, and
  :func:`malsim_time_factor` prepares a time factor for mal-simulator.
* mal-simulator rejects ``Pareto``, ``TruncatedNormal``, ``Zero`` and ``Infinity``
  (:data:`MALSIM_REJECTED`) and bare numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NamedTuple, NoReturn

from attackprev.errors import InputError

#: MAL distributions and their number of parameters (mal-lang/malcompiler grammar).
DISTRIBUTIONS = {
    "Bernoulli": 1,
    "Binomial": 2,
    "Exponential": 1,
    "Gamma": 2,
    "LogNormal": 2,
    "Pareto": 2,
    "TruncatedNormal": 2,
    "Uniform": 2,
}
#: Named TTC constants; the ones that contain a Bernoulli factor are marked True.
CONSTANTS = {
    "Zero": False,
    "Infinity": False,
    "EasyAndCertain": False,
    "HardAndCertain": False,
    "VeryHardAndCertain": False,
    "EasyAndUncertain": True,
    "HardAndUncertain": True,
    "VeryHardAndUncertain": True,
    "Enabled": True,
    "Disabled": True,
}
OPERATIONS = {
    "+": "addition",
    "-": "subtraction",
    "*": "multiplication",
    "/": "division",
    "^": "exponentiation",
}
NON_FINITE = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class _Node:
    """A node of a parsed TTC expression; ``start:end`` is its span in the source text."""

    kind: Literal["call", "name", "number", "binop", "group"]
    start: int
    end: int
    name: str = ""
    args: tuple[float, ...] = ()
    value: float = 0.0
    children: tuple[_Node, ...] = ()


_TOKEN = re.compile(r"\s*(?:(?P<number>(?:\d+(?:\.\d*)?|\.\d+))|(?P<ident>[A-Za-z_]\w*)|(?P<op>[-+*/^(),]))")
_EXPONENT = re.compile(r"[eE][-+]?\d")


class _Parser:
    """Recursive-descent parser for MAL TTC expressions.

    Precedence as in mal-toolbox: ``+ -`` (left), then ``* /`` (left), then ``^`` (right).
    """

    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None:
                self.fail(f"unexpected character {text[pos:].lstrip()[0]!r}")
            kind = m.lastgroup or ""
            tok_start = m.start(kind)
            if kind == "number" and _EXPONENT.match(text, m.end()):
                self.fail(
                    "exponent notation is not valid MAL (mal-toolbox reads 1e-5 as 1); "
                    "write the number in full, e.g. 0.00001"
                )
            self.tokens.append((kind, m.group(kind), tok_start, m.end()))
            pos = m.end()
        self.i = 0

    def fail(self, problem: str) -> NoReturn:
        raise InputError(f"invalid MAL TTC expression {self.text!r}: {problem}")

    def peek(self) -> tuple[str, str, int, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str, int, int]:
        tok = self.peek()
        if tok is None:
            self.fail("unexpected end" + (f", expected {value!r}" if value else ""))
        if value is not None and tok[1] != value:
            self.fail(f"expected {value!r} at {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> _Node:
        if not self.tokens:
            self.fail("it is empty")
        node = self.expr()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek()[1]!r}")
        return node

    def binary(self, operators: str, operand) -> _Node:
        node = operand()
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in operators:
            self.take()
            rhs = operand()
            node = _Node("binop", node.start, rhs.end, name=tok[1], children=(node, rhs))
        return node

    def expr(self) -> _Node:
        return self.binary("+-", self.term)

    def term(self) -> _Node:
        return self.binary("*/", self.power)

    def power(self) -> _Node:
        base = self.atom()
        tok = self.peek()
        if tok is not None and tok[1] == "^":
            self.take()
            exponent = self.power()
            return _Node("binop", base.start, exponent.end, name="^", children=(base, exponent))
        return base

    def atom(self) -> _Node:
        kind, value, start, end = self.take()
        if value == "(":
            inner = self.expr()
            close = self.take(")")
            return _Node("group", start, close[3], children=(inner,))
        if kind == "number":
            return _Node("number", start, end, value=float(value))
        if kind != "ident":
            self.fail(f"unexpected {value!r}")
        nxt = self.peek()
        if nxt is None or nxt[1] != "(":
            return _Node("name", start, end, name=value)
        self.take("(")
        args: list[float] = []
        while (tok := self.peek()) is not None and tok[1] != ")":
            if args:
                self.take(",")
            args.append(self.argument())
        close = self.take(")")
        return _Node("call", start, close[3], name=value, args=tuple(args))

    def argument(self) -> float:
        kind, value, _, _ = self.take()
        sign = 1.0
        if value in "+-" and kind == "op":
            sign = -1.0 if value == "-" else 1.0
            kind, value, _, _ = self.take()
        if kind == "number":
            return sign * float(value)
        if kind == "ident" and value.lower() in NON_FINITE:
            return sign * NON_FINITE[value.lower()]
        self.fail(f"a distribution parameter must be a number, not {value!r}")


def _check_node(node: _Node, text: str) -> None:
    """Refuse unknown names and parameters outside a distribution's support."""

    def bad(problem: str) -> NoReturn:
        raise InputError(f"invalid MAL TTC expression {text!r}: {problem}")

    if node.kind == "call":
        name, args = node.name, node.args
        if name in CONSTANTS:
            if args:
                bad(f"{name} takes no parameters")
            return
        if name not in DISTRIBUTIONS:
            bad(f"unknown distribution {name!r} (MAL has {', '.join(DISTRIBUTIONS)})")
        if len(args) != DISTRIBUTIONS[name]:
            bad(f"{name} takes {DISTRIBUTIONS[name]} parameter(s), got {len(args)}")
        if not all(math.isfinite(a) for a in args):
            what = "rate" if name == "Exponential" else "parameters"
            bad(f"{name} {what} must be finite, got {_node_text(node, text)}")
        if name == "Bernoulli" and not 0.0 <= args[0] <= 1.0:
            bad(f"Bernoulli probability must be in [0, 1], got {args[0]:g}")
        if name == "Binomial" and not 0.0 <= args[1] <= 1.0:
            bad(f"Binomial probability must be in [0, 1], got {args[1]:g}")
        if name == "Exponential" and not args[0] > 0.0:
            bad(f"Exponential rate must be > 0, got {args[0]:g}")
        if name in ("Gamma", "Pareto") and not (args[0] > 0.0 and args[1] > 0.0):
            bad(f"{name} parameters must both be > 0, got {_node_text(node, text)}")
        if name in ("LogNormal", "TruncatedNormal") and not args[1] > 0.0:
            bad(f"{name} standard deviation must be > 0, got {args[1]:g}")
        if name == "Uniform" and not args[0] <= args[1]:
            bad(f"Uniform needs min <= max, got {_node_text(node, text)}")
        if any(a < 0 for a in args):
            bad("MAL has no negative numbers")
    elif node.kind == "name" and node.name not in CONSTANTS:
        known = ", ".join(CONSTANTS)
        bad(f"unknown name {node.name!r} (a distribution needs parameters; constants: {known})")
    for child in node.children:
        _check_node(child, text)


def _node_text(node: _Node, text: str) -> str:
    """The verbatim source text of ``node``."""
    return text[node.start : node.end]


def _parse(text: str) -> _Node:
    node = _Parser(text).parse()
    _check_node(node, text)
    return node


def _unwrap(node: _Node) -> _Node:
    while node.kind == "group":
        node = node.children[0]
    return node


def _is_bernoulli(node: _Node) -> bool:
    node = _unwrap(node)
    return node.kind == "call" and node.name == "Bernoulli"


def _contains_bernoulli(node: _Node) -> bool:
    if node.kind in ("call", "name") and (node.name == "Bernoulli" or CONSTANTS.get(node.name)):
        return True
    return any(_contains_bernoulli(c) for c in node.children)


def _factors(node: _Node) -> list[_Node]:
    """Top-level factors of a product chain (``a*b*c`` -> ``[a, b, c]``)."""
    if node.kind == "binop" and node.name == "*":
        return _factors(node.children[0]) + _factors(node.children[1])
    return [node]


@dataclass(frozen=True)
class MalTtc:
    """A MAL TTC expression split into its Bernoulli factor and the rest.

    Attributes
    ----------
    text
        The expression as given.
    bernoulli
        ``p`` of the top-level ``Bernoulli(p)`` factor, or None if there is none.
    time_factor
        The remaining factors, verbatim from ``text`` (None for a lone ``Bernoulli(p)``);
        when the Bernoulli factor is first or last, the text around it as written.
    """

    text: str
    bernoulli: float | None
    time_factor: str | None


def parse_ttc(text: str) -> MalTtc:
    """Parse a MAL TTC expression such as ``Exponential(106.67)*Bernoulli(0.0789)``.

    The Bernoulli factor may stand anywhere in the top-level product
    (``Bernoulli(0.0789)*Exponential(106.67)`` parses the same).

    Parameters
    ----------
    text
        The expression without the surrounding brackets.

    Returns
    -------
    MalTtc
        The Bernoulli factor of the top-level product (if any) and the other factors,
        kept verbatim. A Bernoulli nested deeper (``(Bernoulli(p)+X)*Y``) is not a factor
        and stays in ``time_factor``.

    Raises
    ------
    InputError
        If the text is not a valid MAL TTC expression, has more than one top-level
        Bernoulli factor, or uses exponent notation.
    """
    text = text.strip()
    root = _parse(text)
    factors = _factors(root)
    bernoullis = [f for f in factors if _is_bernoulli(f)]
    if not bernoullis:
        return MalTtc(text, None, text)
    if len(bernoullis) > 1:
        raise InputError(f"MAL TTC expression {text!r} has more than one Bernoulli factor")
    b = bernoullis[0]
    p = _unwrap(b).args[0]
    rest = [f for f in factors if f is not b]
    if not rest:
        return MalTtc(text, p, None)
    if factors[0] is b or factors[-1] is b:
        time_factor = text[rest[0].start : rest[-1].end]
    else:
        time_factor = "*".join(_node_text(f, text) for f in rest)
    return MalTtc(text, p, time_factor)


def format_probability(p: float, digits: int = 4) -> str:
    """Write ``p`` in positional notation with ``digits`` significant digits.

    More digits are used when rounding would turn a ``p`` strictly between 0 and 1 into
    exactly 0 or 1, so ``format_probability(0.99996)`` is ``'0.99996'``, not ``'1'``.
    Exponent notation is never used (mal-toolbox misreads it).

    Parameters
    ----------
    p
        A probability in [0, 1].
    digits
        Significant digits (at least 1).

    Returns
    -------
    str
        E.g. ``'0.0471'`` for 0.047123, ``'0.000000001'`` for 1e-9, ``'1'`` for 1.0.
    """
    if p in (0.0, 1.0):
        return str(int(p))
    for d in range(max(digits, 1), 18):
        text = _positional(p, d)
        if 0.0 < float(text) < 1.0:
            return text
    return _positional(p, 17)


def _positional(x: float, digits: int) -> str:
    value = Decimal(repr(float(x)))
    exponent = value.adjusted() - digits + 1
    text = f"{value.quantize(Decimal(1).scaleb(exponent)):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _check_probability(p: Any, what: str = "p") -> float:
    if isinstance(p, (bool, str, bytes)):
        raise InputError(f"{what} must be a number in [0, 1], got {p!r}")
    try:
        value = float(p)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} must be a number in [0, 1], got {p!r}") from err
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"{what} must be a finite number in [0, 1], got {value!r}")
    return value


def ttc_expression(p: float, time_factor: str | None = None, digits: int = 4) -> str:
    """Write the MAL TTC for availability ``p`` and an optional time factor.

    Parameters
    ----------
    p
        Probability that the step is available, in [0, 1].
    time_factor
        The time factor as published (e.g. ``'Exponential(106.67)'``), or None for a step
        that takes no time. A compound factor is wrapped in parentheses so that it binds
        as one factor.
    digits
        Significant digits of ``p`` (see :func:`format_probability`).

    Returns
    -------
    str
        ``'Bernoulli(p)'``, or ``'<time factor>*Bernoulli(p)'`` with the time factor first:
        the MAL compiler and securiCAD read both orders the same, and mal-simulator's
        effort-based mode reads only the left factor (see the module notes).

    Raises
    ------
    InputError
        If ``p`` is not finite or outside [0, 1], or the time factor is not a valid MAL
        expression, contains a Bernoulli factor of its own, or has a non-finite or
        non-positive rate.
    """
    value = _check_probability(p)
    bernoulli = f"Bernoulli({format_probability(value, digits)})"
    if time_factor is None or not time_factor.strip():
        return bernoulli
    factor = time_factor.strip()
    node = _parse(factor)
    if _contains_bernoulli(node):
        raise InputError(f"time factor {factor!r} contains a Bernoulli factor; pass its probability as p")
    if node.kind == "binop":
        factor = f"({factor})"
    return f"{factor}*{bernoulli}"


#: Distributions and constants that mal-simulator 3.3 refuses to load.
MALSIM_REJECTED = ("Pareto", "TruncatedNormal", "Zero", "Infinity")
#: MAL's named TTC constants (mal-lang/malcompiler): the probability that the step is possible and the rate
#: of its Exponential time (None: no time), e.g. ``HardAndUncertain`` = ``Bernoulli(0.5)*Exponential(0.1)``.
NAMED_CONSTANTS: dict[str, tuple[float, float | None]] = {
    "EasyAndCertain": (1.0, 1.0),
    "HardAndCertain": (1.0, 0.1),
    "VeryHardAndCertain": (1.0, 0.01),
    "EasyAndUncertain": (0.5, None),
    "HardAndUncertain": (0.5, 0.1),
    "VeryHardAndUncertain": (0.5, 0.01),
}
#: The named time constants that are a time alone, and the distributions they stand for.
CONSTANT_DEFINITIONS = {
    name: f"Exponential({rate:g})" for name, (p, rate) in NAMED_CONSTANTS.items() if p == 1.0 and rate is not None
}


class MalsimProblem(NamedTuple):
    """Why mal-simulator cannot run a TTC expression as intended.

    ``fatal`` problems stop mal-simulator from loading the attack graph at all; the others
    make it read the expression differently from the MAL compiler.
    """

    fatal: bool
    message: str


def malsim_problems(text: str) -> list[MalsimProblem]:
    """What mal-simulator 3.3 does differently from the MAL compiler with ``text``.

    Parameters
    ----------
    text
        A MAL TTC expression.

    Returns
    -------
    list of MalsimProblem
        Empty if mal-simulator reads the expression as intended in every TTC mode. Fatal:
        a distribution or constant it rejects (:data:`MALSIM_REJECTED`), a bare number.
        Not fatal: a left operand that is itself an operation (mal-simulator drops its
        right side) or a named constant (changed in place for every step), and a Bernoulli
        factor before the time factor (the effort-based mode then ignores the time).

    Raises
    ------
    InputError
        If ``text`` is not a valid MAL TTC expression.
    """
    text = text.strip()
    root = _parse(text)
    problems: list[MalsimProblem] = []

    def walk(node: _Node) -> None:
        if node.kind in ("call", "name") and node.name in MALSIM_REJECTED:
            problems.append(MalsimProblem(True, f"mal-simulator rejects {node.name} ({_node_text(node, text)})"))
        elif node.kind == "number":
            problems.append(MalsimProblem(True, f"mal-simulator cannot read the bare number {_node_text(node, text)}"))
        elif node.kind == "binop":
            lhs = _unwrap(node.children[0])
            if lhs.kind == "binop":
                problems.append(
                    MalsimProblem(
                        False,
                        f"mal-simulator drops part of {_node_text(node, text)}: the left operand "
                        f"{_node_text(lhs, text)} is itself an operation",
                    )
                )
            elif lhs.kind in ("call", "name") and lhs.name in CONSTANTS:
                problems.append(
                    MalsimProblem(
                        False,
                        f"mal-simulator changes its shared {lhs.name} for every step when it is the left operand "
                        f"of {_node_text(node, text)}",
                    )
                )
        for child in node.children:
            walk(child)

    walk(root)
    factors = _factors(root)
    if len(factors) > 1 and _is_bernoulli(factors[0]):
        problems.append(
            MalsimProblem(
                False,
                f"mal-simulator's effort-based mode reads only the left factor of {text}, "
                "so the time factor after the Bernoulli takes no time",
            )
        )
    return sorted(problems, key=lambda q: not q.fatal)


def malsim_time_factor(time_factor: str | None) -> tuple[str | None, str | None]:
    """A published time factor as mal-simulator needs it, and a remark if it changed.

    Parameters
    ----------
    time_factor
        The time factor kept from the published TTC, or None.

    Returns
    -------
    time_factor, remark
        A named constant (``HardAndCertain``) is written as the distribution it stands for
        (``Exponential(0.1)``): mal-simulator would otherwise change its shared constant in
        place for every step. Everything else is returned unchanged with no remark.
    """
    if time_factor is None:
        return None, None
    node = _unwrap(_parse(time_factor.strip()))
    if node.kind in ("call", "name") and node.name in CONSTANT_DEFINITIONS:
        definition = CONSTANT_DEFINITIONS[node.name]
        return definition, (
            f"time factor {node.name} written as {definition}, its definition, for mal-simulator "
            "(which would change its shared constant for every step)"
        )
    return time_factor, None
