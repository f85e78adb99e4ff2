"""``.mal`` files: find attack steps and rewrite their TTCs, byte for byte elsewhere.

:func:`find_steps` lists the attack steps and defenses of every asset (ignoring comments
and strings); :func:`patch_mal` rewrites the TTCs of named steps and reports each change
as a :class:`TtcChange`; :func:`format_changes` renders those changes for the command line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from attackprev.errors import InputError
from attackprev.mal.expressions import IDENTIFIER, parse_ttc


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

    Parameters
    ----------
    text
        The ``.mal`` source.

    Returns
    -------
    list of MalStep
        The steps in file order, with the offsets of their TTCs.

    Raises
    ------
    InputError
        For an asset without a body or an unbalanced bracket.
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
        Rows from :func:`patch_mal` or :func:`attackprev.mal.export.export_mal`.

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
