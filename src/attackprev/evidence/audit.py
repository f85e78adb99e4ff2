"""Data quality of the published enterpriseLang notes: recompute each note's arithmetic.

Each enterpriseLang note justifies a probability with a short computation, kept verbatim in
``data/enterpriselang_notes.csv`` (``published_arithmetic``, ``published_result``); the figures it
used are its rows in ``data/observations.csv`` and ``data/excluded.csv``. From those files only,
this module recomputes

* every step ``expression = value`` / ``expression -> value`` of a note's arithmetic (sums, means
  such as ``(a + b)/2``, ``mean of a, b and c`` or ``mean with x``, medians, products, ``1 - x``),
  and of the derived figures in its data rows (``100-37 = 73%``);
* the note's final value against the ``Bernoulli(p)`` of its result (or the mean of a
  ``TruncatedNormal`` in percent units);
* every quoted ``k of n (x %)`` / ``k/n = x %`` against its own k/n;
* its inputs: a number of the arithmetic that matches none of the note's figures, while one of its
  countable figures is unused and within 5 % of it, is a slip for that figure, and the note is
  recomputed with the figure as quoted;
* chart readings ``a/b = r % ... f1 * f2 = x %`` whose product does not use the ratio r;

and reports results without the Bernoulli factor their arithmetic derives, ``TruncatedNormal``
probabilities in percent units, and notes stored twice with different results.

Text that does not parse is skipped, not guessed: a part with no number, or with more than one
candidate number or expression, gives no value. A note row is *checked* when at least one
published number could be compared with a recomputation, and *reproduced* when every such number
agrees to one unit of its last written decimal (the notes truncate as often as they round).
"""

from __future__ import annotations

import ast
import csv
import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from attackprev.config import DATA_DIR

#: Kinds of finding, with the label the report uses.
KINDS = {
    "quoted ratio": "quoted percentage is not its own k/n",
    "step": "a step does not evaluate to the value written",
    "input": "an input differs from the note's own figure",
    "derived input": "a derived input uses the wrong factors",
    "result": "the result is not the value its arithmetic gives",
    "no Bernoulli": "the result drops the Bernoulli factor its arithmetic derives",
    "count": "the number of values averaged is not the number stated",
    "percent units": "TruncatedNormal in percent units used as a probability",
    "duplicate": "one note stored twice with different results",
}
#: Kinds meaning that a published number does not reproduce from the note's own inputs.
REPRODUCTION_KINDS = frozenset({"quoted ratio", "step", "input", "derived input", "result", "no Bernoulli"})

RELATIVE_SLIP = 0.05  # an unmatched input within 5 % of an unused figure is read as a slip for it
_EPS = 1e-9
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_TIME_WORDS = re.compile(r"\bTTCs?\b|/day|\bdays?\b|\bhours?\b|\bminutes?\b|\bseconds?\b", re.I)


@dataclass(frozen=True)
class Finding:
    """One data-quality problem of one note.

    Attributes
    ----------
    technique_id
        The note's technique (or mitigation, tactic) ID as in ``enterpriselang_notes.csv``.
    note_path
        The note's path inside the enterpriseLang repository.
    kind
        A key of :data:`KINDS`.
    published
        The number the note publishes (a probability where it is one), or None.
    recomputed
        The number recomputed from the note's own inputs, or None.
    detail
        One plain sentence with the numbers.
    """

    technique_id: str
    note_path: str
    kind: str
    published: float | None
    recomputed: float | None
    detail: str


@dataclass(frozen=True)
class QualityStats:
    """Note rows by outcome (a note stored in two versions is two rows).

    Attributes
    ----------
    notes
        Rows of ``enterpriselang_notes.csv``.
    checked
        Rows with at least one published number compared with a recomputation.
    reproduced, not_reproduced
        Checked rows without / with a finding of a kind in :data:`REPRODUCTION_KINDS`.
    not_checkable
        Rows that give nothing to compare (no figure, copied, ordinal, or not parsed).
    """

    notes: int
    checked: int
    reproduced: int
    not_reproduced: int
    not_checkable: int


@dataclass(frozen=True)
class QualityCheck:
    """Findings, counts, and each row's status keyed by (note_path, note_caveats)."""

    findings: list[Finding]
    stats: QualityStats
    status: dict[tuple[str, str], str] = field(default_factory=dict)


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


def _fmt(x: float | None) -> str:
    """Positional with 6 significant digits: 0.00006 -> '0.00006', 19.744 -> '19.744'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    text = f"{x:.{max(0, 5 - math.floor(math.log10(abs(x))))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct(w: Written) -> str:
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
    source = (f"{_fmt(prev)} " if leading else "") + run.text
    fraction = any(w.percent for w in nums)
    return _Value(got[0], computed, got[1] if computed else None, tuple(nums), values, ratio, source, fraction)


def _stated(text: str) -> Written | None:
    """The first number a part writes (a year such as 2015 is not one)."""
    runs = _runs(text)
    return runs[0].numbers[0] if runs else None


# ------------------------------------------------------------------------------ a note's arithmetic
@dataclass(frozen=True)
class Step:
    """A step whose expression does not evaluate to the value written after it."""

    expression: str
    computed: float
    written: Written
    fraction: bool

    def shown(self) -> float:
        """The computed value in the written value's units."""
        return self.computed * 100 if self.written.percent and self.fraction else self.computed


@dataclass
class Recomputation:
    """What a note's arithmetic gives.

    Attributes
    ----------
    final
        The value it ends with (None if it gives none).
    compared
        Steps compared with a written value.
    bad_steps
        Steps that do not evaluate to the value written.
    leaves
        The numbers it uses as inputs.
    mean_values
        The values of its first mean, if it takes one.
    uses_mean
        Whether it takes a mean.
    """

    final: float | None = None
    compared: int = 0
    bad_steps: list[Step] = field(default_factory=list)
    leaves: list[Written] = field(default_factory=list)
    mean_values: tuple[float, ...] = ()
    uses_mean: bool = False


def recompute(arithmetic: str, *, carry_written: bool = True) -> Recomputation:
    """Recompute a note's arithmetic step by step.

    Parameters
    ----------
    arithmetic
        The ``published_arithmetic`` field, or a figure's ``reported_as``, verbatim.
    carry_written
        Carry each step's written value on, as the author did (True), or the recomputed value
        (False, to follow a corrected input through to the final value).

    Returns
    -------
    Recomputation
        The final value and the steps that do not reproduce. Segments about time (TTC, per day)
        are skipped.
    """
    out = Recomputation()
    seg_prev: float | None = None
    for segment in clean_arithmetic(arithmetic).split(";"):
        if _TIME_WORDS.search(segment):
            continue
        parts = re.split(r"->|=", segment)
        carry: float | None = None
        last_computed: _Value | None = None
        for i, part in enumerate(parts):
            value = evaluate_part(part, carry if carry is not None else seg_prev)
            if value is None:
                last_computed = None if i == 0 else last_computed
                continue
            if value.values and not out.mean_values:
                out.mean_values = value.values
            out.uses_mean |= bool(value.values) or re.search(r"\bmean\b|\baverage\b", part, re.I) is not None
            bare = _stated(part) if not value.computed else None
            if value.computed:
                out.leaves += value.leaves
                if i == 1 and last_computed is None and re.fullmatch(r"\s*~?\d+(\.\d+)?%?\s*", parts[0]):
                    written = _stated(parts[0])  # "0.65833 = 1 - 0.34167"
                    out.compared += 1
                    if not agrees(value.value, written):
                        out.bad_steps.append(Step(value.source, value.value, written, value.fraction))
                last_computed, carry = value, value.value
                continue
            if last_computed is None or bare is None:  # a bare input
                out.leaves += value.leaves
                carry = value.value
                continue
            out.compared += 1
            if not agrees(last_computed.value, bare):
                if last_computed.last is not None and agrees(last_computed.last, bare):
                    continue  # "21.4% x mean(11, 4) = 7.5%": the step states its last operand
                if not (last_computed.ratio and bare.percent):  # k/n = x %: see quoted_ratios
                    out.bad_steps.append(Step(last_computed.source, last_computed.value, bare, last_computed.fraction))
            carry = bare.value if carry_written else last_computed.value
            last_computed = None
        if carry is not None:
            seg_prev = out.final = carry
    return out


# ------------------------------------------------------------------------------ published results
def primary_result(text: str) -> str:
    """A result without its parenthesised remarks: ``X (Bernoulli(p) not used)`` gives ``X``."""
    return re.sub(r"\s+", " ", _drop_groups(text, lambda a, b: a > 0 and not text[a - 1].isspace())).strip()


def distributions(text: str) -> list[tuple[str, str]]:
    """Every ``Name(args)`` call in a result, arguments normalised (``0.70`` -> ``0.7``)."""
    out = []
    for name, args in re.findall(r"\b([A-Z][A-Za-z]*)\(([^()]*)\)", text):
        try:
            out.append((name, ",".join(_fmt(float(a)) for a in args.split(","))))
        except ValueError:
            out.append((name, args))
    return sorted(out)


def bernoulli_ps(result: str) -> list[Written]:
    """The p of every Bernoulli in the result's expression (remarks removed)."""
    return [Written(p) for p in re.findall(r"Bernoulli\(\s*(\d*\.?\d+)\s*\)", primary_result(result))]


def percent_truncnormals(result: str) -> list[tuple[Written, Written]]:
    """Each ``TruncatedNormal(mean, sd)`` of the result's expression whose mean exceeds 1."""
    pattern = r"TruncatedNormal\(\s*(\d*\.?\d+)\s*,\s*(\d*\.?\d+)\s*\)"
    found = [(Written(a), Written(b)) for a, b in re.findall(pattern, primary_result(result))]
    return [(m, s) for m, s in found if m.number > 1]


# ------------------------------------------------------------------------------ quoted k/n, chart readings
_INT = r"\d{1,3}(?:,\d{3})+|\d+"
_QUOTED = re.compile(
    rf"(?<![\d.,])(?<![-+*/x]\s)(?<![-+*/x])(?P<k>{_INT})\s*(?:[A-Za-z]+\s+){{0,3}}(?:out of\s+|of\s+|/\s*)"
    rf"(?P<n>{_INT})(?![\d,]*\.\d)(?![\d,]*\s*[-+*/x]\s*\d)(?:\s+[A-Za-z]+){{0,3}}"
    r"\s*(?:\(|=|:|,|stated as|written as)?\s*(?:\d+\s*/\s*\d+\s*=\s*)?~?\s*(?P<pct>\d+(?:\.\d+)?)\s*%"
)


def quoted_ratios(text: str) -> list[tuple[int, int, Written]]:
    """Every ``k of n (x %)``, ``k/n = x %`` in a text, as (k, n, the percentage written)."""
    found = []
    for m in _QUOTED.finditer(_ANNOTATION.sub(" ", text)):
        k, n = int(m.group("k").replace(",", "")), int(m.group("n").replace(",", ""))
        if n > 0:
            found.append((k, n, Written(m.group("pct"), True)))
    return found


@dataclass(frozen=True)
class Reading:
    """A figure ``a/b = r % ... f1 * f2 = x`` (a ratio read off a chart, times a share)."""

    a: int
    b: int
    ratio: Written
    factors: tuple[Written, Written]
    product: Written

    def ratio_factor(self) -> int | None:
        """Index of the factor that is the ratio a/b, or None if neither is."""
        for i, f in enumerate(self.factors):
            if min(abs(f.number - self.a / self.b), abs(f.number - self.ratio.value)) <= f.unit + _EPS:
                return i
        return None


def chart_reading(text: str) -> Reading | None:
    """The ratio and product of a chart reading in ``text``, or None."""
    text = _TIMES.sub("*", text)
    r = re.search(r"(\d+)\s*/\s*(\d+)\s*=\s*~?\s*(\d+(?:\.\d+)?)\s*%", text)
    p = (
        re.compile(r"(\d*\.\d+|\d+)\s*\*\s*(\d*\.\d+|\d+)\s*=\s*(\d+(?:\.\d+)?)\s*(%?)").search(text, r.end())
        if r
        else None
    )
    if p is None:
        return None
    factors = (Written(p.group(1)), Written(p.group(2)))
    return Reading(
        int(r.group(1)), int(r.group(2)), Written(r.group(3), True), factors, Written(p.group(3), bool(p.group(4)))
    )


# ------------------------------------------------------------------------------ the data tables
@dataclass(frozen=True)
class _Figure:
    """One of a note's figures in ``observations.csv`` or ``excluded.csv``."""

    source: str
    reported_as: str
    candidates: tuple[float, ...]  # its numbers as written (and 100 k/n for a count)
    quoted: Written | None = None  # the percentage a countable figure is quoted as
    k: int | None = None
    n: int | None = None


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _numbers(text: str) -> list[Written]:
    pattern = r"(?<![\w.])(\d+(?:\.\d+)?)(\s*%)?"
    return [Written(m.group(1), bool(m.group(2))) for m in re.finditer(pattern, text.replace(",", ""))]


def _figures(data_dir: Path) -> dict[str, list[_Figure]]:
    sources = {s["source_id"]: s for s in _read(data_dir / "sources.csv")}
    by_note: dict[str, list[_Figure]] = defaultdict(list)
    for o in _read(data_dir / "observations.csv"):
        k = int(o["successes"]) if o.get("successes") else None
        n_text = o.get("trials") or sources.get(o.get("source_id", ""), {}).get("trials", "")
        n = int(n_text) if n_text else None
        written = [w for w in _numbers(o["reported_as"]) if w.text not in {str(k), str(n)}]
        quoted = Written(o["percent"], True) if o.get("percent") else next((w for w in written if w.percent), None)
        cands = [w.number for w in written] + ([100 * k / n] if k is not None and n else [])
        by_note[o["note_path"]].append(_Figure(o.get("source_id", ""), o["reported_as"], tuple(cands), quoted, k, n))
    for e in _read(data_dir / "excluded.csv"):
        cands = tuple(w.number for w in _numbers(e["reported_as"]))
        by_note[e["note_path"]].append(_Figure(e.get("source_key", ""), e["reported_as"], cands))
    return by_note


def _shares(figures: dict[str, list[_Figure]]) -> dict[str, float]:
    """Per source, the most common other factor of its chart readings that do use the ratio."""
    shares: dict[str, Counter] = defaultdict(Counter)
    for key in {(path, f.source, f.reported_as) for path, figs in figures.items() for f in figs}:
        reading = chart_reading(key[2])
        i = reading.ratio_factor() if reading else None
        if i is not None:
            shares[key[1]][reading.factors[1 - i].number] += 1
    return {s: c.most_common(1)[0][0] for s, c in shares.items()}


# ------------------------------------------------------------------------------ the checks
@dataclass
class _Note:
    """One note row being checked, and what was found."""

    row: dict[str, str]
    figures: list[_Figure]
    label: str = ""  # which stored version, when a note has several rows
    findings: list[Finding] = field(default_factory=list)
    checked: bool = False

    def __post_init__(self) -> None:
        self.arithmetic = self.row.get("published_arithmetic", "")
        self.result = self.row.get("published_result", "")
        self.rec = recompute(self.arithmetic)
        self.ps = bernoulli_ps(self.result)
        self.tns = percent_truncnormals(self.result)
        self.targets = self.ps + [m for m, _ in self.tns]

    def add(self, kind: str, published: float | None, recomputed: float | None, detail: str) -> None:
        published = None if published is None else float(published)
        recomputed = None if recomputed is None else round(float(recomputed), 12)
        detail = detail[:-1] + self.label + "." if detail.endswith(".") else detail + self.label
        row = self.row
        self.findings.append(Finding(row["technique_id"], row["note_path"], kind, published, recomputed, detail))

    def probability(self, x: float) -> float:
        """A recomputed value in the units of the published p (percent values divided by 100)."""
        if self.targets:
            return min((x, x / 100), key=lambda v: abs(v - self.targets[0].number))
        return x / 100 if x > 1 else x

    def effect(self, old: Written, new: float) -> tuple[float | None, str]:
        """The note's final value with ``old`` replaced by ``new``, and a clause saying so."""
        text = re.sub(
            rf"(?<![\d.]){re.escape(old.text)}(?!\d|\.\d)", _fmt(new), _ANNOTATION.sub(" ", self.arithmetic), count=1
        )
        final = recompute(text, carry_written=False).final
        if final is None or not self.targets:
            return None, ""
        what = "the mean of its inputs" if self.rec.uses_mean else "its result"
        p = self.probability(final)
        return p, f"; {what} is then {_fmt(p)} vs published {self.targets[0].text}"


def _shown(step: Step) -> str:
    return _fmt(step.shown()) + (" %" if step.written.percent else "")


def _check_steps(note: _Note) -> None:
    for step in note.rec.bad_steps:
        w = step.written
        note.add(
            "step",
            w.value,
            step.shown() / 100 if w.percent else step.shown(),
            f"writes {step.expression} = {_pct(w)}, but it evaluates to {_shown(step)}.",
        )
    for fig in note.figures:  # derived figures in the data rows ("100-37 = 73%")
        rec = recompute(fig.reported_as)
        note.checked |= rec.compared > 0
        for step in rec.bad_steps:
            w = step.written
            _, effect = note.effect(w, step.shown())
            note.add(
                "step",
                w.value,
                step.shown() / 100 if w.percent else step.shown(),
                f"its {fig.source} figure writes {step.expression} = {_pct(w)}, but it evaluates to "
                f"{_shown(step)}{effect}.",
            )


def _check_result(note: _Note) -> None:
    final = note.rec.final
    if final is None:
        return
    note.checked = True
    expression = primary_result(note.result)
    if not note.targets:
        p = note.probability(final)
        note.add(
            "no Bernoulli",
            None,
            p,
            f"its arithmetic gives p = {_fmt(p)} but its result, {expression}, has no Bernoulli factor.",
        )
    elif not any(agrees(final, t) for t in note.targets):
        p = note.probability(final)
        what = "the mean of its inputs" if note.rec.uses_mean else "its arithmetic"
        note.add("result", note.targets[0].number, p, f"{what} gives {_fmt(p)} but its result is {expression}.")


def _check_counts(note: _Note) -> None:
    said = re.search(r"\b(?:average|mean) of (?:these |the )?(two|three|four|five|six|seven|eight)\b", note.arithmetic)
    n = len(note.rec.mean_values)
    if said and n and _NUMBER_WORDS[said.group(1)] != n:
        note.add("count", _NUMBER_WORDS[said.group(1)], n, f"says '{said.group(0)}' but averages {n} values.")
    cleaned = clean_arithmetic(note.arithmetic)
    listed = _N_VALUES.search(cleaned)
    if listed and int(listed.group(1)) != len(listed.group(2).split(",")):
        k = len(listed.group(2).split(","))
        note.add("count", int(listed.group(1)), k, f"says the mean of {listed.group(1)} values but lists {k}.")
    for m in _SUM_OVER.finditer(cleaned):
        k = len(m.group(1).split("+"))
        if k != int(m.group(2)):
            note.add("count", int(m.group(2)), k, f"divides the sum of {k} values ({m.group(1)}) by {m.group(2)}.")


def _check_units(note: _Note) -> None:
    for mean, sd in note.tns:
        values = note.rec.mean_values
        sd_clause = ""
        if len(values) > 1:
            sds = (statistics.pstdev(values), statistics.stdev(values))
            if not any(abs(s - sd.number) <= sd.unit + _EPS for s in sds):
                sd_clause = (
                    f"; its SD {sd.text} is neither the population ({_fmt(sds[0])}) nor the sample SD ({_fmt(sds[1])})"
                )
        note.add(
            "percent units",
            mean.number,
            mean.number / 100,
            f"TruncatedNormal({mean.text},{sd.text}) is in percent units, not a probability in [0, 1] "
            f"(as a Bernoulli p its mean would be {_fmt(mean.number / 100)}){sd_clause}.",
        )


def _check_quotes(note: _Note, seen: set) -> None:
    texts = [("", note.arithmetic)] + [(f.source, f.reported_as) for f in note.figures]
    for source, text in texts:
        for k, n, w in quoted_ratios(text):
            note.checked = True
            key = (note.row["note_path"], k, n, w.text)
            if agrees(k / n, w) or key in seen:
                continue
            seen.add(key)
            carried = any(agrees(w.value, p) for p in note.ps)
            where = f" (its {source} figure)" if source else ""
            note.add(
                "quoted ratio",
                w.value,
                k / n,
                f"writes {k}/{n} as {w.text} %{where} but {k}/{n} = {_fmt(100 * k / n)} %"
                + (f"; its result Bernoulli({note.ps[0].text}) carries the slip." if carried else "."),
            )


def _check_inputs(note: _Note) -> None:
    """A number of the arithmetic matching none of the note's figures, close to an unused one."""
    rec = note.rec
    if rec.final is None or not rec.leaves:
        return

    def matches(leaf: Written, candidates) -> bool:
        return any(abs(leaf.number - v) <= leaf.unit + _EPS for c in candidates for v in (c, 100 * c, c / 100))

    stray = [leaf for leaf in rec.leaves if not matches(leaf, [c for f in note.figures for c in f.candidates])]
    for fig in note.figures:
        note.checked = True
        if fig.quoted is None or any(matches(leaf, fig.candidates) for leaf in rec.leaves):
            continue
        near = [w for w in stray if abs(w.number - fig.quoted.number) <= RELATIVE_SLIP * fig.quoted.number]
        if not near:
            continue
        leaf = min(near, key=lambda w: abs(w.number - fig.quoted.number))
        p, effect = note.effect(leaf, fig.quoted.number)
        quote = f"{fig.k}/{fig.n} = {_pct(fig.quoted)}" if fig.k is not None else _pct(fig.quoted)
        published = note.targets[0].number if note.targets else None
        note.add("input", published, p, f"quotes {quote} ({fig.source}) but uses {_pct(leaf)}{effect}.")


def _check_readings(note: _Note, shares: dict[str, float]) -> None:
    for fig in note.figures:
        reading = chart_reading(fig.reported_as)
        if reading is None:
            continue
        note.checked = True
        if reading.ratio_factor() is not None:
            continue
        share = shares.get(fig.source)
        corrected = None if share is None else reading.ratio.value * share
        f1, f2 = reading.factors
        detail = (
            f"computes {f1.text} x {f2.text} = {_pct(reading.product)} where its own figures give "
            f"{reading.a}/{reading.b} = {reading.ratio.text} %"
        )
        if corrected is not None:
            _, effect = note.effect(reading.product, 100 * corrected if reading.product.percent else corrected)
            detail += (
                f" and the share {_fmt(share)} of the other {fig.source} readings: "
                f"{_fmt(reading.ratio.value)} x {_fmt(share)} = {_fmt(100 * corrected)} %{effect}"
            )
        note.add("derived input", reading.product.value, corrected, detail + ".")


def _duplicates(notes: list[dict[str, str]]) -> list[Finding]:
    """Technique notes stored twice (both folders, or two versions) with different results."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for n in notes:
        if n.get("note_kind", "technique") == "technique":
            groups[(n["technique_id"], n["note_path"].rsplit("/", 1)[-1])].append(n)
    out = []
    for (tid, name), rows in groups.items():
        if len({tuple(distributions(r["published_result"])) for r in rows}) < 2:
            continue
        ps = bernoulli_ps(rows[0]["published_result"])
        each = "; ".join(f"'{r['note_path'].rsplit('/', 1)[0]}' gives {r['published_result']}" for r in rows)
        detail = f"{name} is stored {len(rows)} times with different results: {each}."
        out.append(Finding(tid, rows[0]["note_path"], "duplicate", ps[0].number if ps else None, None, detail))
    return out


def check_notes(data_dir: str | Path = DATA_DIR) -> QualityCheck:
    """Recompute every note of ``data_dir`` and collect its data-quality findings.

    Parameters
    ----------
    data_dir
        Folder with ``enterpriselang_notes.csv`` and, optionally, ``observations.csv``,
        ``excluded.csv`` and ``sources.csv``.

    Returns
    -------
    QualityCheck
        Findings in note order (duplicates last), counts, and each row's status
        (``reproduced``, ``not reproduced``, ``not checkable``).
    """
    data_dir = Path(data_dir)
    rows = _read(data_dir / "enterpriselang_notes.csv")
    figures = _figures(data_dir)
    shares = _shares(figures)
    versions = Counter(r["note_path"] for r in rows)
    findings: list[Finding] = []
    status: dict[tuple[str, str], str] = {}
    seen: set = set()
    for row in rows:
        commit = re.search(r"commit ([0-9a-f]{7})", row.get("note_caveats", ""))
        label = f" (version {commit.group(1)})" if versions[row["note_path"]] > 1 and commit else ""
        note = _Note(row, figures.get(row["note_path"], []), label)
        if not re.match(r"\s*(none|n/a)\b", note.arithmetic, re.I):
            note.checked = note.rec.compared > 0
            for check in (_check_steps, _check_result, _check_counts, _check_units, _check_inputs):
                check(note)
        else:
            _check_units(note)
        _check_quotes(note, seen)
        _check_readings(note, shares)
        new = [f for f in note.findings if (f.note_path, f.kind, f.detail) not in seen]
        seen.update((f.note_path, f.kind, f.detail) for f in new)
        findings += new
        bad = any(f.kind in REPRODUCTION_KINDS for f in note.findings)
        key = (row["note_path"], row.get("note_caveats", ""))
        status[key] = "not reproduced" if bad else "reproduced" if note.checked else "not checkable"
    findings += _duplicates(rows)
    counts = Counter(status.values())
    stats = QualityStats(
        notes=len(rows),
        checked=counts["reproduced"] + counts["not reproduced"],
        reproduced=counts["reproduced"],
        not_reproduced=counts["not reproduced"],
        not_checkable=counts["not checkable"],
    )
    return QualityCheck(findings, stats, status)


def note_findings(data_dir: str | Path = DATA_DIR) -> list[Finding]:
    """The data-quality findings of every enterpriseLang note, computed from the data tables.

    Parameters
    ----------
    data_dir
        Folder with the tables (default: the package's ``data/``).

    Returns
    -------
    list[Finding]
        One finding per problem (see :func:`check_notes` for the counts).
    """
    return check_notes(data_dir).findings


# ------------------------------------------------------------------------------ report section
def render_quality_markdown(findings: list[Finding], stats: QualityStats) -> str:
    """The report section "Data quality of the published notes".

    Parameters
    ----------
    findings
        From :func:`note_findings` or :func:`check_notes`.
    stats
        The counts from :func:`check_notes`.

    Returns
    -------
    str
        Markdown: a heading, a one-line summary of the counts, and a table with one row per
        finding (technique, note, problem, published, recomputed).
    """
    kinds = Counter(f.kind for f in findings)
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    lines = [
        "## Data quality of the published notes",
        "",
        f"{stats.notes} note rows: {stats.checked} checked ({stats.reproduced} reproduced, "
        f"{stats.not_reproduced} not reproduced), {stats.not_checkable} not checkable; "
        f"{len(findings)} findings ({by_kind or 'none'}).",
        "",
        "| technique | note | problem | published | recomputed |",
        "|---|---|---|---|---|",
    ]
    for f in findings:
        problem = f"**{f.kind}**: {f.detail}".replace("|", "\\|")
        note = f.note_path.rsplit("/", 1)[-1].replace("|", "\\|")
        lines.append(f"| {f.technique_id} | `{note}` | {problem} | {_fmt(f.published)} | {_fmt(f.recomputed)} |")
    return "\n".join(lines) + "\n"
