"""A note's arithmetic recomputed step by step, its published result, quoted k/n and chart readings.

* :func:`recompute` evaluates every step ``expression = value`` / ``expression -> value`` of a
  note's arithmetic (sums, means such as ``(a + b)/2``, ``mean of a, b and c`` or ``mean with x``,
  medians, products, ``1 - x``) and reports the steps that do not give the value written;
* :func:`bernoulli_ps`, :func:`percent_truncnormals` and :func:`distributions` read the
  ``published_result``;
* :func:`quoted_ratios` finds every quoted ``k of n (x %)`` / ``k/n = x %``, and
  :func:`chart_reading` a figure ``a/b = r % ... f1 * f2 = x %``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from attackprev.evidence.audit.numbers import (
    _ANNOTATION,
    _EPS,
    _TIMES,
    Written,
    _drop_groups,
    _stated,
    _Value,
    agrees,
    clean_arithmetic,
    evaluate_part,
    format_number,
)

_TIME_WORDS = re.compile(r"\bTTCs?\b|/day|\bdays?\b|\bhours?\b|\bminutes?\b|\bseconds?\b", re.I)


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
    """A result without its parenthesised remarks: ``X (Bernoulli(p) not used)`` gives ``X``.

    Parameters
    ----------
    text
        A ``published_result`` field.

    Returns
    -------
    str
        The expression, whitespace collapsed.
    """
    return re.sub(r"\s+", " ", _drop_groups(text, lambda a, b: a > 0 and not text[a - 1].isspace())).strip()


def distributions(text: str) -> list[tuple[str, str]]:
    """Every ``Name(args)`` call in a result, arguments normalised (``0.70`` -> ``0.7``).

    Parameters
    ----------
    text
        A ``published_result`` field.

    Returns
    -------
    list[tuple[str, str]]
        (name, comma-joined arguments), sorted, so two results can be compared.
    """
    out = []
    for name, args in re.findall(r"\b([A-Z][A-Za-z]*)\(([^()]*)\)", text):
        try:
            out.append((name, ",".join(format_number(float(a)) for a in args.split(","))))
        except ValueError:
            out.append((name, args))
    return sorted(out)


def bernoulli_ps(result: str) -> list[Written]:
    """The p of every Bernoulli in the result's expression (remarks removed).

    Parameters
    ----------
    result
        A ``published_result`` field.

    Returns
    -------
    list[Written]
        Each ``Bernoulli(p)``'s p as written, in order.
    """
    return [Written(p) for p in re.findall(r"Bernoulli\(\s*(\d*\.?\d+)\s*\)", primary_result(result))]


def percent_truncnormals(result: str) -> list[tuple[Written, Written]]:
    """Each ``TruncatedNormal(mean, sd)`` of the result's expression whose mean exceeds 1.

    Parameters
    ----------
    result
        A ``published_result`` field.

    Returns
    -------
    list[tuple[Written, Written]]
        (mean, sd) as written, for each one in percent units.
    """
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
    """Every ``k of n (x %)``, ``k/n = x %`` in a text, as (k, n, the percentage written).

    Parameters
    ----------
    text
        A note's arithmetic or a figure's ``reported_as``; ``[...]`` annotations are ignored.

    Returns
    -------
    list[tuple[int, int, Written]]
        One (k, n, x %) per quote with n > 0; terms of a sum are not quotes.
    """
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
    """The ratio and product of a chart reading in ``text``, or None.

    Parameters
    ----------
    text
        A figure's ``reported_as``.

    Returns
    -------
    Reading or None
        The first ``a/b = r %`` followed by a product ``f1 * f2 = x``; None if there is none.
    """
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
