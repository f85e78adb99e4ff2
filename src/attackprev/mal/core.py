"""MAL output: attack-step TTC expressions that the real MAL tools accept.

A MAL attack step carries its time to compromise (TTC) in brackets after its name,
``| webService [Bernoulli(0.0445)]``. enterpriseLang writes each step's TTC as a
Bernoulli factor, the probability that the step is available at all, times an optional
time factor in days, e.g. ``Bernoulli(0.0789)*Exponential(106.67)``; a lone
``Bernoulli(p)`` is a zero-time step. This module

* parses such expressions (:func:`parse_ttc`) and writes new ones (:func:`ttc_expression`),
  replacing only the Bernoulli factor and keeping the published time factor verbatim;
* gives the dictionary form mal-toolbox compiles them to (:func:`ttc_dict`), by compiling
  a tiny generated ``.mal`` spec with mal-toolbox when it is installed (about 2 ms after a
  0.1 s import) and checking that against a built-in translation;
* rewrites the TTCs of named steps in a user's ``.mal`` file, byte for byte elsewhere
  (:func:`patch_mal`), and exports every report's probability (:func:`export_mal`).

Two facts about the tools shape the output (found by running mal-toolbox 2.11.0 and
mal-simulator 3.3.0):

* mal-toolbox reads exponent notation wrongly and silently: ``Bernoulli(1e-5)`` compiles
  to ``Bernoulli(1.0)``. Numbers are therefore always written in positional notation and
  expressions containing exponents are refused.
* mal-simulator's ``TTCDist.from_dict`` keeps only the last factor of a left-nested
  product, so a compound time factor is written in parentheses:
  ``Bernoulli(p)*(Uniform(8,30)+Exponential(2))``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple, NoReturn

from attackprev.atomic import write_text_atomic
from attackprev.config import CATALOGUE_DIR, STEPS_CSV
from attackprev.errors import InputError

STEPS_COLUMNS = ("technique_id", "attack_step", "asset", "published_ttc", "source")
CATALOGUE_COLUMNS = ("technique_id", "p", "hdi_94_low", "hdi_94_high")

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
TECHNIQUE_ID = re.compile(r"T\d{4}(\.\d{3})?")


# --------------------------------------------------------------------------- expressions


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
        The remaining factors, verbatim from ``text`` (None for a lone ``Bernoulli(p)``).
    """

    text: str
    bernoulli: float | None
    time_factor: str | None


def parse_ttc(text: str) -> MalTtc:
    """Parse a MAL TTC expression such as ``Bernoulli(0.0789)*Exponential(106.67)``.

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
    if factors[0] is b:
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
        as one factor (and mal-simulator keeps all of it).
    digits
        Significant digits of ``p`` (see :func:`format_probability`).

    Returns
    -------
    str
        ``'Bernoulli(p)'`` or ``'Bernoulli(p)*<time factor>'``.

    Raises
    ------
    InputError
        If ``p`` is not finite or outside [0, 1], or the time factor is not a valid MAL
        expression, contains a Bernoulli factor of its own, or has a non-finite or
        non-positive rate.
    """
    value = _check_probability(p)
    head = f"Bernoulli({format_probability(value, digits)})"
    if time_factor is None or not time_factor.strip():
        return head
    factor = time_factor.strip()
    node = _parse(factor)
    if _contains_bernoulli(node):
        raise InputError(f"time factor {factor!r} contains a Bernoulli factor; pass its probability as p")
    if node.kind == "binop":
        factor = f"({factor})"
    return f"{head}*{factor}"


# ----------------------------------------------------------------------- dictionary form


def _builtin_dict(node: _Node) -> dict[str, Any]:
    if node.kind == "group":
        return _builtin_dict(node.children[0])
    if node.kind == "number":
        return {"type": "number", "value": node.value}
    if node.kind in ("call", "name"):
        return {"type": "function", "name": node.name, "arguments": [float(a) for a in node.args]}
    lhs, rhs = node.children
    return {"type": OPERATIONS[node.name], "lhs": _builtin_dict(lhs), "rhs": _builtin_dict(rhs)}


def import_mal_clients(*names: str) -> None:
    """Import mal-toolbox / mal-simulator without littering the working directory.

    Both packages open log files under ``./logs/`` when first imported; importing them
    from inside a temporary folder keeps those files out of the user's project.
    """
    import importlib
    import sys

    missing = [n for n in names if n not in sys.modules]
    if not missing:
        return
    here = os.getcwd()
    logs = Path(tempfile.gettempdir()) / "attackprev-mal-logs"
    (logs / "logs").mkdir(parents=True, exist_ok=True)
    os.chdir(logs)
    try:
        for name in missing:
            importlib.import_module(name)
    finally:
        os.chdir(here)


def _maltoolbox_dicts(exprs: list[str]) -> list[dict[str, Any]]:
    """Compile ``exprs`` as the TTCs of steps of a generated one-asset language."""
    import_mal_clients("maltoolbox")
    from maltoolbox.language import LanguageGraph

    steps = "\n".join(f"        | s{i} [{e}]" for i, e in enumerate(exprs))
    spec = f'#id: "org.attackprev.ttc"\n#version: "0.0.0"\n\ncategory C {{\n    asset A {{\n{steps}\n    }}\n}}\n'
    with tempfile.TemporaryDirectory(prefix="attackprev-mal-") as tmp:
        path = Path(tmp) / "ttc.mal"
        path.write_text(spec, encoding="utf-8")
        graph = LanguageGraph.from_mal_spec(str(path))
    asset = graph.assets["A"]
    return [asset.attack_steps[f"s{i}"].ttc for i in range(len(exprs))]


def ttc_dicts(
    exprs: Iterable[str], compiler: Literal["auto", "maltoolbox", "builtin"] = "auto"
) -> list[dict[str, Any]]:
    """Dictionary forms of several TTC expressions (see :func:`ttc_dict`), compiled at once."""
    exprs = [e.strip() for e in exprs]
    builtin = [_builtin_dict(_parse(e)) for e in exprs]
    if compiler == "builtin" or not exprs:
        return builtin
    try:
        compiled = _maltoolbox_dicts(exprs)
    except ImportError:
        if compiler == "maltoolbox":
            raise
        return builtin
    except Exception as err:  # mal-toolbox's own checks (malAnalyzerException etc.)
        raise InputError(f"mal-toolbox refused the TTC expression(s): {err}") from err
    for expr, ours, theirs in zip(exprs, builtin, compiled, strict=True):
        if ours != theirs:
            raise InputError(f"mal-toolbox reads {expr!r} as {theirs}, expected {ours}")
    return compiled


def ttc_dict(expr: str, compiler: Literal["auto", "maltoolbox", "builtin"] = "auto") -> dict[str, Any]:
    """The dictionary form mal-toolbox gives a step's TTC.

    ``Bernoulli(0.0471)`` becomes ``{'type': 'function', 'name': 'Bernoulli',
    'arguments': [0.0471]}``; products become ``{'type': 'multiplication', 'lhs': ...,
    'rhs': ...}`` (likewise ``addition``, ``subtraction``, ``division``,
    ``exponentiation``); named constants are functions with no arguments, and bare numbers
    ``{'type': 'number', 'value': x}``. All numbers are floats. This is what
    ``malsim.mal_simulator.ttc_utils.TTCDist.from_dict`` takes.

    Parameters
    ----------
    expr
        A MAL TTC expression (validated as in :func:`parse_ttc`).
    compiler
        ``'maltoolbox'`` compiles a generated one-step ``.mal`` spec with mal-toolbox;
        ``'builtin'`` translates the parse tree here; ``'auto'`` (default) uses
        mal-toolbox when it is installed. Whenever mal-toolbox is used its result must
        equal the built-in one, so a silent misreading is caught.

    Returns
    -------
    dict
        The dictionary form.

    Raises
    ------
    InputError
        If ``expr`` is invalid, or mal-toolbox reads it differently.
    """
    return ttc_dicts([expr], compiler)[0]


# ---------------------------------------------------------------------------- .mal files


class TtcChange(NamedTuple):
    """One rewritten TTC: ``old`` is None where a TTC was inserted."""

    asset: str
    step: str
    old: str | None
    new: str


@dataclass(frozen=True)
class MalStep:
    """An attack step or defense found in a ``.mal`` text.

    ``ttc_start:ttc_end`` is the text between the TTC's brackets (empty span at
    ``insert_at`` when the step has no TTC).
    """

    asset: str
    name: str
    kind: str
    insert_at: int
    ttc_start: int | None
    ttc_end: int | None


def _mask(text: str) -> str:
    """``text`` with comments and string literals blanked out (offsets and newlines kept)."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            end = min(j + 1, n)
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
        else:
            i += 1
            continue
        for k in range(i, end):
            if out[k] not in "\r\n":
                out[k] = " "
        i = end
    return "".join(out)


_ASSET = re.compile(r"\basset\s+([A-Za-z_]\w*)")
_STEP = re.compile(
    r"(?P<kind>[|&#])\s*(?:(?:action|effect)\s+)?(?P<name>[A-Za-z_]\w*)"
    r"(?:\s*@\s*[A-Za-z_]\w*)*(?:\s*\{[^{}]*\})?"
)


def _closing(masked: str, start: int, open_char: str, close_char: str) -> int:
    """Index of the bracket closing the one at ``start``."""
    depth = 0
    for k in range(start, len(masked)):
        if masked[k] == open_char:
            depth += 1
        elif masked[k] == close_char:
            depth -= 1
            if depth == 0:
                return k
    raise InputError(f"unbalanced {open_char!r} at offset {start} in the .mal text")


def find_steps(text: str) -> list[MalStep]:
    """Attack steps (``|``, ``&``) and defenses (``#``) of every asset in a ``.mal`` text.

    Comments and strings (``info`` texts) are ignored; existence steps (``E``, ``!E``) are
    not returned since they take no TTC.
    """
    masked = _mask(text)
    steps: list[MalStep] = []
    for asset in _ASSET.finditer(masked):
        body_open = masked.find("{", asset.end())
        if body_open < 0:
            raise InputError(f"asset {asset.group(1)} has no body")
        body_close = _closing(masked, body_open, "{", "}")
        pos = body_open + 1
        while (m := _STEP.search(masked, pos, body_close)) is not None:
            after = m.end()
            gap = len(masked[after:body_close]) - len(masked[after:body_close].lstrip())
            ttc_start = ttc_end = None
            if masked.startswith("[", after + gap):
                close = _closing(masked, after + gap, "[", "]")
                ttc_start, ttc_end = after + gap + 1, close
                pos = close + 1
            else:
                pos = after
            kind = m.group("kind")
            steps.append(MalStep(asset.group(1), m.group("name"), kind, after, ttc_start, ttc_end))
    return steps


def patch_mal(
    text: str,
    new_ttcs: Mapping[str, str],
    *,
    missing: Literal["error", "skip"] = "error",
) -> tuple[str, list[TtcChange]]:
    """Rewrite the TTCs of named steps in a ``.mal`` text, leaving every other byte alone.

    Parameters
    ----------
    text
        The ``.mal`` source.
    new_ttcs
        New TTC expression per step. A key is either ``'stepName'``, which rewrites the
        step in every asset that has one (each reported separately), or
        ``'Asset.stepName'``, which rewrites it in that asset only (and wins over a bare
        key for that asset). Only ``|``/``&`` attack steps and ``#`` defenses whose name
        is a key are touched; a defense may only get a lone ``Bernoulli(p)``.
    missing
        ``'error'`` (default) refuses keys that match no step; ``'skip'`` ignores them.
        Only ``text`` itself is searched, not files it includes (``include``).

    Returns
    -------
    new_text, changes
        The patched text and one :class:`TtcChange` (asset, step, old, new) per rewritten
        step, in file order. A step without a TTC gets `` [expr]`` inserted after its name
        (and tags); the text inside existing brackets is replaced, keeping the spaces just
        inside the brackets.

    Raises
    ------
    InputError
        For an invalid expression, a time factor on a defense, or (with
        ``missing='error'``) keys that match no step.
    """
    parsed = {key: parse_ttc(expr) for key, expr in new_ttcs.items()}
    for key in new_ttcs:
        parts = key.split(".")
        if len(parts) > 2 or not all(IDENTIFIER.fullmatch(p) for p in parts):
            raise InputError(f"step key {key!r} must be 'stepName' or 'Asset.stepName'")
    used: set[str] = set()
    edits: list[tuple[int, int, str, TtcChange]] = []
    for step in find_steps(text):
        key = f"{step.asset}.{step.name}"
        if key not in new_ttcs:
            key = step.name
            if key not in new_ttcs:
                continue
        used.add(key)
        new = new_ttcs[key].strip()
        if step.kind == "#" and parsed[key].time_factor is not None:
            raise InputError(f"defense {step.asset}.{step.name} may only take Bernoulli(p), not {new!r}")
        if step.ttc_start is None or step.ttc_end is None:
            change = TtcChange(step.asset, step.name, None, new)
            edits.append((step.insert_at, step.insert_at, f" [{new}]", change))
        else:
            inner = text[step.ttc_start : step.ttc_end]
            lead = inner[: len(inner) - len(inner.lstrip())]
            trail = inner[len(inner.rstrip()) :]
            change = TtcChange(step.asset, step.name, inner.strip(), new)
            edits.append((step.ttc_start, step.ttc_end, f"{lead}{new}{trail}", change))
    unused = sorted(set(new_ttcs) - used)
    if unused and missing == "error":
        raise InputError(
            f"no attack step or defense named {', '.join(unused)} in the .mal text; "
            "check the step names (and assets) in the mapping"
        )
    out = text
    for start, end, replacement, _ in sorted(edits, key=lambda e: e[0], reverse=True):
        out = out[:start] + replacement + out[end:]
    return out, [e[3] for e in sorted(edits, key=lambda e: e[0])]


def format_changes(changes: Iterable[TtcChange]) -> str:
    """Render a change table as aligned text for the command line.

    Parameters
    ----------
    changes
        Rows from :func:`patch_mal` or :func:`export_mal`.

    Returns
    -------
    str
        One header line and one line per change (``(none)`` where a TTC was inserted,
        ``(unchanged)`` after a TTC that stays the same), or a one-line note if empty.
    """
    rows = [
        (
            c.asset,
            c.step,
            "(none)" if c.old is None else c.old,
            c.new + ("  (unchanged)" if c.old == c.new else ""),
        )
        for c in changes
    ]
    if not rows:
        return "no TTC changed"
    header = ("asset", "step", "old TTC", "new TTC")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3] for r in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------- mapping, estimates


@dataclass(frozen=True)
class StepMapping:
    """One row of ``data/enterpriselang_steps.csv``.

    ``assets`` is empty when the asset is unknown (then every asset's step of that name
    is patched); several assets are written ``Windows;MacOS`` in the CSV.
    """

    technique_id: str
    attack_step: str
    assets: tuple[str, ...]
    published_ttc: str
    source: str

    def patch_keys(self) -> list[str]:
        """Keys for :func:`patch_mal`."""
        if not self.assets:
            return [self.attack_step]
        return [f"{a}.{self.attack_step}" for a in self.assets]


def load_steps(path: str | Path | None = None) -> dict[str, StepMapping]:
    """Read the technique -> enterpriseLang step table.

    Parameters
    ----------
    path
        The CSV (default ``data/enterpriselang_steps.csv``), with columns
        ``technique_id, attack_step, asset, published_ttc, source``.

    Returns
    -------
    dict
        :class:`StepMapping` by technique ID.

    Raises
    ------
    InputError
        For a missing column, a duplicate or malformed ID, a step or asset name that is
        not a MAL identifier, or a published TTC that cannot be read (see
        :func:`published_time_factor`).
    """
    path = Path(STEPS_CSV if path is None else path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            absent = [c for c in STEPS_COLUMNS if c not in (reader.fieldnames or [])]
            if absent:
                raise InputError(f"missing column(s) {', '.join(absent)}", path)
            rows = list(reader)
    except OSError as err:
        raise InputError(f"cannot read the step table: {err.strerror}", path) from err
    table: dict[str, StepMapping] = {}
    for line, row in enumerate(rows, start=2):
        tid = (row["technique_id"] or "").strip()
        step = (row["attack_step"] or "").strip()
        assets = tuple(a.strip() for a in (row["asset"] or "").split(";") if a.strip())
        if not TECHNIQUE_ID.fullmatch(tid):
            raise InputError(f"technique_id {tid!r} is not like T1102 or T1055.012", path, line)
        if tid in table:
            raise InputError(f"{tid} appears twice", path, line)
        for name in (step, *assets):
            if not IDENTIFIER.fullmatch(name):
                raise InputError(f"{name!r} is not a MAL identifier", path, line)
        mapping = StepMapping(tid, step, assets, (row["published_ttc"] or "").strip(), (row["source"] or "").strip())
        try:
            published_time_factor(mapping.published_ttc)
        except InputError as err:
            raise InputError(f"published_ttc: {err.message}", path, line) from err
        table[tid] = mapping
    return table


def published_expression(published: str) -> str:
    """The MAL expression at the start of a published TTC, without a trailing remark.

    ``'Exponential(1440) (Bernoulli(0.0122) computed in Findings but deliberately not
    used)'`` gives ``'Exponential(1440)'``.
    """
    text = published.strip()
    try:
        _parse(text)
        return text
    except InputError:
        pass
    for m in reversed(list(re.finditer(r"\s+\(", text))):
        head = text[: m.start()]
        try:
            _parse(head)
            return head
        except InputError:
            continue
    _parse(text)  # raises with the full text
    return text


def published_time_factor(published: str) -> tuple[str | None, str | None]:
    """The time factor to keep from an enterpriseLang TTC, and a remark if there is one.

    Decisions:

    * ``Bernoulli(p)*X``: keep ``X`` verbatim; only the Bernoulli factor is replaced.
    * lone ``Bernoulli(p)``: no time factor (the step takes no time).
    * no Bernoulli factor (``Exponential(1440)``, processHollowing.md): keep the whole
      expression as the time factor and put the new Bernoulli in front; a remark says so.
    * a lone ``TruncatedNormal(mean, sd)``: three enterpriseLang notes use it for the
      probability itself, in percent (e.g. ``TruncatedNormal(26.82,15.913)`` for T1032),
      with an instant TTC; it is not a time, so no time factor is kept; a remark says so.

    Parameters
    ----------
    published
        The note's published result (text after the expression is ignored, see
        :func:`published_expression`); empty means no time factor.

    Returns
    -------
    time_factor, remark
        ``time_factor`` is None for a zero-time step; ``remark`` is None when nothing
        needs saying.
    """
    if not published.strip():
        return None, "no published TTC; written as a zero-time step"
    expr = published_expression(published)
    parsed = parse_ttc(expr)
    if parsed.bernoulli is not None:
        if parsed.time_factor is not None and _contains_bernoulli(_parse(parsed.time_factor)):
            raise InputError(f"cannot separate the Bernoulli factor of {expr!r}")
        return parsed.time_factor, None
    node = _unwrap(_parse(expr))
    if node.kind == "call" and node.name == "TruncatedNormal":
        return None, (
            f"published {expr} is a probability in percent, not a time (not valid MAL "
            "for a probability); written as a zero-time step"
        )
    if _contains_bernoulli(node):
        raise InputError(f"cannot separate the Bernoulli factor of {expr!r}")
    return expr, f"published {expr} has no Bernoulli factor; kept as the time factor"


@dataclass(frozen=True)
class Estimate:
    """One technique's probability for MAL and its 94 % interval, with where it came from."""

    technique_id: str
    p: float
    hdi_94: tuple[float, float] | None
    origin: Path


def _check_estimate(tid: Any, p: Any, hdi: Any, origin: Path, row: int | None) -> Estimate:
    if not isinstance(tid, str) or not TECHNIQUE_ID.fullmatch(tid.strip()):
        raise InputError(f"technique_id {tid!r} is not like T1102 or T1055.012", origin, row)
    try:
        value = _check_probability(p, "p")
    except InputError as err:
        raise InputError(f"{tid}: {err.message}", origin, row) from err
    interval = None
    if hdi is not None:
        try:
            lo, hi = (_check_probability(x, "hdi_94") for x in hdi)
        except (TypeError, ValueError, InputError) as err:
            raise InputError(f"{tid}: hdi_94 must be two numbers in [0, 1]", origin, row) from err
        if lo > hi:
            raise InputError(f"{tid}: hdi_94 lower bound {lo} > upper {hi}", origin, row)
        interval = (lo, hi)
    return Estimate(tid.strip(), value, interval, origin)


#: Folder of the multi-technique catalogue report inside a reports folder.


def estimates_from_reports(reports_dir: str | Path) -> list[Estimate]:
    """Read ``<reports_dir>/*/summary.json``; folders without one are skipped.

    ``p`` is ``summary["mal"]["p"]``; the interval is ``summary["prevalence"]["hdi_94"]``.
    """
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        raise InputError("reports folder not found", reports_dir)
    estimates = []
    for summary in sorted(reports_dir.glob("*/summary.json")):
        if summary.parent.name == CATALOGUE_DIR:
            continue  # the catalogue's own summary; its table is read by estimates_from_catalogue
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"cannot read summary: {err}", summary) from err
        if not isinstance(data, dict) or not isinstance(data.get("mal"), dict):
            raise InputError('summary has no "mal" section', summary)
        if "p" not in data["mal"]:
            raise InputError('summary has no "mal": {"p": ...}', summary)
        hdi = (data.get("prevalence") or {}).get("hdi_94")
        estimates.append(_check_estimate(data.get("technique_id"), data["mal"]["p"], hdi, summary, None))
    return estimates


def estimates_from_catalogue(path: str | Path) -> list[Estimate]:
    """Read a catalogue CSV with columns ``technique_id, p, hdi_94_low, hdi_94_high``."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            absent = [c for c in CATALOGUE_COLUMNS if c not in (reader.fieldnames or [])]
            if absent:
                raise InputError(f"missing column(s) {', '.join(absent)}", path)
            rows = list(reader)
    except OSError as err:
        raise InputError(f"cannot read the catalogue: {err.strerror}", path) from err

    def number(text: str) -> float | str:
        try:
            return float(text)
        except ValueError:
            return text

    estimates = []
    for line, row in enumerate(rows, start=2):
        hdi = None
        if row["hdi_94_low"].strip() or row["hdi_94_high"].strip():
            hdi = (number(row["hdi_94_low"]), number(row["hdi_94_high"]))
        estimates.append(_check_estimate(row["technique_id"], number(row["p"]), hdi, path, line))
    return estimates


# ---------------------------------------------------------------------------------- export


@dataclass
class MalExport:
    """What :func:`export_mal` produced.

    Attributes
    ----------
    fragment
        One ``| step [expr]`` line per technique, each after comment lines naming the
        technique, its asset, p's 94 % interval, the report and the published TTC.
    json
        ``{technique_id: {"attack_step", "assets", "expression", "ttc", "p", "hdi_94",
        "published_ttc", "report", "remark"}}``; ``ttc`` is the mal-toolbox dictionary form.
    changes
        The change table of the patched file (empty without ``patch``).
    written
        Files written, in order.
    """

    fragment: str
    json: dict[str, dict[str, Any]]
    changes: list[TtcChange] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def _display(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def export_mal(
    reports_dir: str | Path,
    steps_csv: str | Path | None = None,
    patch: str | Path | None = None,
    out: str | Path | None = None,
    in_place: bool = False,
    *,
    catalogue: str | Path | None = None,
    fragment_dir: str | Path | None = None,
    missing: Literal["error", "skip"] = "error",
    digits: int = 4,
) -> MalExport:
    """Turn every report's probability into an enterpriseLang TTC, and optionally patch.

    For each technique the new TTC is ``Bernoulli(p)`` times the time factor of the TTC
    enterpriseLang published for it (``published_ttc`` in the step table): only the
    Bernoulli factor is replaced and the time factor is kept verbatim. Where the published
    TTC has no Bernoulli factor (``Exponential(1440)``) it is kept whole as the time factor
    behind the new Bernoulli; a lone ``TruncatedNormal`` (a percent-scale probability in
    three notes) is dropped. Both cases carry a ``remark`` in the JSON and the fragment;
    see :func:`published_time_factor`.

    Everything is read and checked before anything is written, so an invalid value
    leaves no file behind and an in-place patch leaves the original intact.

    Parameters
    ----------
    reports_dir
        Folder holding ``<id>/summary.json`` per technique (folders without one are
        skipped); ``p`` comes from ``summary["mal"]["p"]``.
    steps_csv
        Technique -> step table (default ``data/enterpriselang_steps.csv``).
    patch
        A ``.mal`` file whose mapped steps get the new TTCs.
    out
        Where to write the patched file (default ``<name>.patched.mal`` beside it).
    in_place
        Replace ``patch`` itself, atomically (temporary file in the same folder, then
        ``os.replace``).
    catalogue
        Read the estimates from this CSV (``technique_id, p, hdi_94_low, hdi_94_high``)
        instead of the summaries.
    fragment_dir
        If given, also write ``mal_fragment.txt`` and ``mal_ttcs.json`` there.
    missing
        ``'error'``: refuse if a mapped step is not in the ``.mal`` file; ``'skip'``:
        leave it out of the patch.
    digits
        Significant digits of ``p`` (never rounded to exactly 0 or 1).

    Returns
    -------
    MalExport
        Fragment, JSON form, change table and the files written.

    Raises
    ------
    InputError
        For an invalid report, step table or ``.mal`` file, a technique without a
        mapped step, a step mapped by two techniques, or ``out`` together with
        ``in_place``.
    """
    reports_dir = Path(reports_dir)
    if in_place and out is not None:
        raise InputError("give either an output file or in_place, not both")
    if in_place and patch is None:
        raise InputError("in_place needs a .mal file to patch")
    steps = load_steps(steps_csv)
    if catalogue is not None:
        estimates = estimates_from_catalogue(catalogue)
    else:
        # every technique from the catalogue table when there is one; a technique's own
        # report (reports/<id>/summary.json) takes precedence over its catalogue row
        estimates = estimates_from_reports(reports_dir)
        table = reports_dir / CATALOGUE_DIR / "catalogue.csv"
        if table.exists():
            own = {e.technique_id for e in estimates}
            estimates += [e for e in estimates_from_catalogue(table) if e.technique_id not in own]
    if not estimates:
        raise InputError("no <technique>/summary.json in the reports folder", reports_dir)
    seen: dict[str, Path] = {}
    for est in estimates:
        if est.technique_id in seen:
            raise InputError(
                f"{est.technique_id} has two estimates (also in {seen[est.technique_id]})",
                est.origin,
            )
        seen[est.technique_id] = est.origin
    base = reports_dir.parent

    entries = []
    for est in sorted(estimates, key=lambda e: e.technique_id):
        mapping = steps.get(est.technique_id)
        if mapping is None:
            raise InputError(
                f"{est.technique_id} has no enterpriseLang step in "
                f"{_display(Path(steps_csv or STEPS_CSV), base)}; add a row",
                est.origin,
            )
        time_factor, remark = published_time_factor(mapping.published_ttc)
        expression = ttc_expression(est.p, time_factor, digits)
        entries.append((est, mapping, expression, remark))
    dicts = ttc_dicts(e[2] for e in entries)

    lines = [
        "// attackprev: enterpriseLang attack-step TTCs, Bernoulli(p) = model's p for MAL.",
        "// The step type (| or &) and the asset must be the language's own; patch keeps them.",
    ]
    table: dict[str, dict[str, Any]] = {}
    for (est, mapping, expression, remark), ttc in zip(entries, dicts, strict=True):
        where = ";".join(mapping.assets) or "any asset"
        interval = "no interval"
        if est.hdi_94 is not None:
            lo, hi = est.hdi_94
            interval = f"94% HDI {format_probability(lo)} to {format_probability(hi)}"
        report = _display(est.origin, base)
        lines.append("")
        lines.append(
            f"// {est.technique_id} -> {where}.{mapping.attack_step}: "
            f"p = {format_probability(est.p, digits)} ({interval}); {report}"
        )
        lines.append(f"// published: {mapping.published_ttc or '(none)'}")
        if remark:
            lines.append(f"// note: {remark}")
        lines.append(f"| {mapping.attack_step} [{expression}]")
        table[est.technique_id] = {
            "attack_step": mapping.attack_step,
            "assets": list(mapping.assets),
            "expression": expression,
            "ttc": ttc,
            "p": est.p,
            "hdi_94": list(est.hdi_94) if est.hdi_94 else None,
            "published_ttc": mapping.published_ttc,
            "report": report,
            "remark": remark,
        }
    result = MalExport("\n".join(lines) + "\n", table)

    target: Path | None = None
    patched = ""
    if patch is not None:
        patch = Path(patch)
        new_ttcs: dict[str, str] = {}
        owner: dict[str, str] = {}
        for est, mapping, expression, _ in entries:
            for key in mapping.patch_keys():
                if key in new_ttcs:
                    raise InputError(f"{owner[key]} and {est.technique_id} both map to step {key}")
                new_ttcs[key], owner[key] = expression, est.technique_id
        try:
            with patch.open(encoding="utf-8", newline="") as f:
                original = f.read()
        except OSError as err:
            raise InputError(f"cannot read the .mal file: {err.strerror}", patch) from err
        try:
            patched, result.changes = patch_mal(original, new_ttcs, missing=missing)
        except InputError as err:
            raise InputError(err.message, patch) from err
        if in_place:
            target = patch
        else:
            target = Path(out) if out is not None else patch.with_name(f"{patch.stem}.patched.mal")
            if target.resolve() == patch.resolve():
                raise InputError("the output would overwrite the input; use in_place", target)

    if fragment_dir is not None:
        fragment_dir = Path(fragment_dir)
        fragment_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(fragment_dir / "mal_fragment.txt", result.fragment)
        write_text_atomic(fragment_dir / "mal_ttcs.json", json.dumps(table, indent=2) + "\n")
        result.written += [fragment_dir / "mal_fragment.txt", fragment_dir / "mal_ttcs.json"]
    if target is not None:
        write_text_atomic(target, patched)
        result.written.append(target)
    return result
