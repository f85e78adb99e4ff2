"""Numbers as the enterpriseLang notes write them, and the arithmetic text around them.

:class:`Written` keeps a number as written (its decimals, and whether a % sign follows), and
:func:`agrees` says whether a recomputed value rounds or truncates to it. :func:`clean_arithmetic`
strips a ``published_arithmetic`` field down to its computation, and :func:`evaluate_part` gives
the value of one part of a step.

Text that does not parse is skipped, not guessed: a part with no number, or with more than one
candidate number or expression, gives no value.
"""

from __future__ import annotations

import ast
import math
import re
import statistics
from dataclasses import dataclass

_EPS = 1e-9


# ------------------------------------------------------------------------------ numbers as written
@dataclass(frozen=True)
class Written:
    """A number as a note writes it, and whether a % sign follows it."""

    text: str
    percent: bool = False

    @property
    def number(self) -> float:
        """The number as written (percent units when ``percent``)."""
        return float(self.text.replace(",", ""))

    @property
    def value(self) -> float:
        """The number as arithmetic uses it: a written percentage is a fraction."""
        return self.number / 100 if self.percent else self.number

    @property
    def unit(self) -> float:
        """One unit of the last written decimal."""
        return 10.0 ** -(len(self.text.split(".", 1)[1]) if "." in self.text else 0)


def agrees(value: float, written: Written) -> bool:
    """Whether ``value`` rounds or truncates to ``written``, read as a fraction or a percentage.

    Parameters
    ----------
    value
        A recomputed number; ``value``, ``100 * value`` and ``value / 100`` are tried, since the
        notes mix fractions and percentages.
    written
        The number the note writes.

    Returns
    -------
    bool
        True if one of them, rounded or truncated to the written decimals, is the written number
        (the notes truncate as often as they round: 84.399 is written 84.39).
    """
    w, unit = written.number, written.unit
    eps = _EPS * max(1.0, abs(w))
    return any(abs(v - w) <= unit / 2 + eps or 0 <= v - w < unit + eps for v in (value, value * 100, value / 100))


def format_number(x: float | None) -> str:
    """A number as the findings and the report show it: positional, 6 significant digits.

    Parameters
    ----------
    x
        The number, or None.

    Returns
    -------
    str
        0.00006 -> '0.00006', 19.744 -> '19.744'; '–' for None or NaN.
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    text = f"{x:.{max(0, 5 - math.floor(math.log10(abs(x))))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_written(w: Written) -> str:
    """A number as the note writes it, followed by `` %`` if it is a percentage.

    Parameters
    ----------
    w
        The written number.

    Returns
    -------
    str
        ``'53.2 %'`` for a percentage, ``'0.13'`` otherwise.
    """
    return w.text + (" %" if w.percent else "")


# ------------------------------------------------------------------------------ cleaning the text
_ANNOTATION = re.compile(r"\[[^\]]*\]")
_QUOTE = re.compile(r"(?<![A-Za-z])'[^']*'(?![A-Za-z])")
_TIMES = re.compile(r"(?<=[\d%)])\s*[x×]\s*(?=[\d(.])|(?:(?<=^)|(?<=[\s;>]))[x×]\s*(?=[\d(.])")
_K_OF_N = re.compile(r"(?<![\d.,])(\d+)\s+(?:out of|of)\s+(\d+)(?![\d.])")


def _paren_groups(text: str) -> list[tuple[int, int]]:
    """Spans of balanced parenthesised groups; [] when the parentheses do not balance."""
    spans, stack = [], []
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            if not stack:
                return []
            spans.append((stack.pop(), i + 1))
    return [] if stack else spans


def _drop_groups(text: str, keep) -> str:
    """Remove the outermost parenthesised groups for which ``keep(start, end)`` is False."""
    drop = [(s, e) for s, e in _paren_groups(text) if not keep(s, e)]
    outer = [g for g in drop if not any(o != g and o[0] <= g[0] and g[1] <= o[1] for o in drop)]
    for start, end in sorted(outer, reverse=True):
        text = text[:start] + " " + text[end:]
    return text


def clean_arithmetic(text: str) -> str:
    """The computation in a ``published_arithmetic`` field, without annotations and asides.

    Removes the re-reading's ``[...]`` annotations, quoted words and parenthesised remarks (a group
    containing a word, or following a number); writes ``x`` between numbers as ``*``, ``k of n``
    as ``k/n``, ``stated as`` as ``=``, ``~=`` and ``≈`` as ``->``, and drops "but ..." asides.

    Parameters
    ----------
    text
        The field as recorded.

    Returns
    -------
    str
        Segments separated by ``;``, each a chain of parts separated by ``=`` or ``->``.
    """
    s = _ANNOTATION.sub(" ", text).replace("−", "-").replace("≈", "->").replace("~=", "->")
    s = re.sub(r"\bstated as\b", "=", _QUOTE.sub(" ", s))
    s = _TIMES.sub("*", s)
    s = _drop_groups(
        s, lambda a, b: not re.search(r"[A-Za-z]", s[a + 1 : b - 1]) and not re.search(r"[\d%]\s+$", s[:a])
    )
    s = _K_OF_N.sub(r"\1/\2", s)
    return re.sub(r"\bbut\b[^;]*", " ", s)


# ------------------------------------------------------------------------------ evaluating text
_TOKEN = re.compile(
    r"(?P<func>\b(?:mean|median)\()|(?P<word>[A-Za-z_][\w.]*(?:[-'][\w.]+)*)|(?P<num>\d+(?:\.\d+)?)(?P<pct>\s*%)?"
    r"|(?P<op>[-+*/])|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<skip>[\s~]+)|(?P<other>.)",
    re.S,
)


@dataclass(frozen=True)
class _Run:
    """A maximal stretch of numbers, operators, parentheses and mean()/median() calls."""

    tokens: tuple[tuple[str, str, bool], ...]  # (kind, text, followed by %)

    @property
    def numbers(self) -> list[Written]:
        return [Written(t, p) for k, t, p in self.tokens if k == "num"]

    @property
    def has_operator(self) -> bool:
        return any(k == "func" for k, _, _ in self.tokens) or any(k == "op" for k, _, _ in self.tokens[1:])

    @property
    def is_year(self) -> bool:
        nums = self.numbers
        return len(self.tokens) == 1 and not nums[0].percent and re.fullmatch(r"(19|20)\d\d", nums[0].text) is not None

    @property
    def text(self) -> str:
        out = "".join(f" {t} " if k == "op" else t + ("%" if p else "") for k, t, p in self.tokens)
        return re.sub(r"\s+", " ", out).replace("( ", "(").replace(" )", ")").strip()


def _trim(tokens: list[tuple[str, str, bool]]) -> _Run:
    """Drop trailing operators and unmatched parentheses at the edges."""
    changed = True
    while changed and tokens:
        changed = False
        opens = sum(k in ("lp", "func") for k, _, _ in tokens)
        closes = sum(k == "rp" for k, _, _ in tokens)
        if tokens[-1][0] == "op" or (closes > opens and tokens[-1][0] == "rp"):
            tokens, changed = tokens[:-1], True
        elif opens > closes and tokens[0][0] == "lp":
            tokens, changed = tokens[1:], True
    return _Run(tuple(tokens))


def _runs(text: str) -> list[_Run]:
    """The arithmetic stretches of ``text`` that contain a number, years (2015) left out."""
    runs: list[list[tuple[str, str, bool]]] = [[]]
    depth = 0
    for m in _TOKEN.finditer(text):
        kind = "num" if m.group("num") is not None else m.lastgroup
        if kind == "skip":
            continue
        current = runs[-1]
        if kind == "num" and current and current[-1][0] in ("num", "rp"):
            runs.append([])  # "2018 ~11%": two numbers side by side are two runs
        if kind in ("num", "op", "lp", "rp", "func") or (kind == "comma" and depth):
            depth += (kind == "func") - (kind == "rp" and depth > 0)
            runs[-1].append((kind, m.group("num") or m.group(0), bool(m.group("pct"))))
        elif runs[-1]:
            runs.append([])
            depth = 0
    out = [_trim(r) for r in runs if any(k == "num" for k, _, _ in r)]
    return [r for r in out if r.tokens and not r.is_year]


def _eval_ast(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval_ast(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval_ast(node.operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        a, b = _eval_ast(node.left), _eval_ast(node.right)
        if isinstance(node.op, ast.Div) and b == 0:
            raise ValueError("division by zero")
        return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}.get(type(node.op), a / b if b else 0.0)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args and not node.keywords:
        args = [_eval_ast(a) for a in node.args]
        if node.func.id in ("mean", "median"):
            return statistics.fmean(args) if node.func.id == "mean" else statistics.median(args)
    raise ValueError("not arithmetic")


def _evaluate(run: _Run, prefix: float | None = None) -> tuple[float, float] | None:
    """A run's value and the value of its last top-level operand; None if it is not arithmetic."""
    source = "" if prefix is None else repr(prefix)
    for kind, text, percent in run.tokens:
        source += f" ({text}/100)" if kind == "num" and percent else f" {text}"
    try:
        tree = ast.parse(source.strip(), mode="eval")
        value = _eval_ast(tree)
        last = _eval_ast(tree.body.right) if isinstance(tree.body, ast.BinOp) else value
    except (SyntaxError, ValueError):
        return None
    return value, last


@dataclass(frozen=True)
class _Value:
    """What one part of a step gives."""

    value: float
    computed: bool  # an operator, function or list, not a bare number
    last: float | None = None  # the last operand (a step may state only that)
    leaves: tuple[Written, ...] = ()  # the numbers it uses
    values: tuple[float, ...] = ()  # the values averaged, for a mean
    ratio: bool = False  # a plain k/n of two integers (checked by quoted_ratios)
    source: str = ""
    fraction: bool = False  # uses a written percentage, so the value is a fraction


_LIST = re.compile(r"\b(mean|average|midpoint|median|worst case)\s+(of|with)\b", re.I)
_N_VALUES = re.compile(r"\bmean of (\d+) values\s*\(([^()]*)\)", re.I)
_SUM_OVER = re.compile(r"\(\s*([^()]*?\+[^()]*?)\s*\)\s*/\s*(\d+)(?![\d.])")


def _list_value(text: str, prev: float | None) -> _Value | None:
    """``mean of a, b and c``, ``mean with x`` (x and the carried value), ``mean of 8 values (...)``."""
    listed = _N_VALUES.search(text)
    m = listed or _LIST.search(text)
    if m is None:
        return None
    how = "mean" if listed else {"median": "median", "worst case": "max"}.get(m.group(1).lower(), "mean")
    items = listed.group(2).split(",") if listed else re.split(r",|\band\b|(?<=%)\s*/", text[m.end() :])
    values: list[float] = []
    percent: list[bool] = []
    leaves: list[Written] = []
    if not listed and m.group(2).lower() == "with":
        if prev is None:
            return None
        values.append(prev)
        percent.append(False)
    for item in items:
        runs = _runs(item)
        if len(runs) > 1:
            return None
        got = _evaluate(runs[0]) if runs else None
        if runs and got is None:
            return None
        if runs:
            values.append(got[0])
            percent.append(any(w.percent for w in runs[0].numbers))
            leaves += runs[0].numbers
    if not values:
        return None
    if any(percent):  # "27.665 and 65%": the bare numbers are percentages too
        values = [v / 100 if not p and v > 1 else v for v, p in zip(values, percent, strict=True)]
    value = {"mean": statistics.fmean, "median": statistics.median, "max": max}[how](values)
    source = re.sub(r"\s+", " ", text[m.start() :]).strip()
    return _Value(value, True, values[-1], tuple(leaves), tuple(values) if how == "mean" else (), False, source)


def evaluate_part(text: str, prev: float | None = None) -> _Value | None:
    """The value of one part of a step (text between ``=`` / ``->``), or None if it is unclear.

    Parameters
    ----------
    text
        A part of a cleaned arithmetic segment.
    prev
        The value carried from before (for ``mean with x`` and a leading ``* 0.892``).

    Returns
    -------
    _Value or None
        None when the part has no number, or several candidate numbers or expressions.
    """
    listed = _list_value(text, prev)
    if listed is not None or (_LIST.search(text) and not _SUM_OVER.search(text)):
        return listed
    runs = _runs(text)
    if len(runs) > 1:  # labels with numbers: keep the one expression, or the one percentage
        with_ops = [r for r in runs if r.has_operator]
        with_pct = [r for r in runs if any(w.percent for w in r.numbers)]
        runs = with_ops if len(with_ops) == 1 else with_pct if not with_ops and len(with_pct) == 1 else []
    if not runs:
        return None
    run = runs[0]
    first_kind, first = run.tokens[0][:2]
    leading = first_kind == "op" and first in "*/" and text.strip().startswith(first)
    if leading and prev is None:
        return None
    if first_kind == "op" and not leading and first != "-":
        run = _Run(run.tokens[1:])
    got = _evaluate(run, prev if leading else None)
    if got is None:
        return None
    nums = run.numbers
    computed = leading or run.has_operator
    ratio = len(run.tokens) == 3 and run.tokens[1][1] == "/" and all(not w.percent and "." not in w.text for w in nums)
    summed = _SUM_OVER.search(text)
    terms = [re.fullmatch(r"(\d+(?:\.\d+)?)%?", t.strip()) for t in summed.group(1).split("+")] if summed else []
    values = tuple(float(t.group(1)) for t in terms) if terms and all(terms) else ()
    source = (f"{format_number(prev)} " if leading else "") + run.text
    fraction = any(w.percent for w in nums)
    return _Value(got[0], computed, got[1] if computed else None, tuple(nums), values, ratio, source, fraction)


def _stated(text: str) -> Written | None:
    """The first number a part writes (a year such as 2015 is not one)."""
    runs = _runs(text)
    return runs[0].numbers[0] if runs else None
