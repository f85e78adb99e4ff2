"""``.mal`` files: find attack steps and rewrite their TTCs, byte for byte elsewhere.

:func:`find_steps` lists the attack steps and defenses of every asset (ignoring comments
and strings, but noting a TTC commented out after a step's name, as enterpriseLang's
master branch has them: ``| webService //(0.0445)]``); :func:`patch_mal` rewrites the TTCs
of named steps, reports each change as a :class:`TtcChange` and each step it could not
find as an :class:`Unmatched`; :func:`malsim_check` lists the TTCs of a ``.mal`` text that
mal-simulator cannot run as written; :func:`format_changes` and :func:`format_unmatched`
render the results for the command line.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from attackprev.errors import InputError
from attackprev.mal.expressions import CONSTANTS, DISTRIBUTIONS, IDENTIFIER, malsim_problems, parse_ttc


class TtcChange(NamedTuple):
    """One rewritten TTC.

    ``old`` is None where a TTC was inserted into a step without one, and the comment as
    written (``//(0.0445)]``) where the step's TTC was commented out; ``note`` says why a
    step of another asset than the mapped one was patched (empty otherwise).
    """

    asset: str
    step: str
    old: str | None
    new: str
    note: str = ""


class Unmatched(NamedTuple):
    """A step key of :func:`patch_mal` that rewrote nothing, and why.

    ``technique_id`` is filled in by :func:`attackprev.mal.export.export_mal`.
    """

    key: str
    reason: str
    technique_id: str = ""


class MalPatch(NamedTuple):
    """What :func:`patch_mal` returns: the new text, the changes and the keys not patched."""

    text: str
    changes: list[TtcChange]
    unmatched: list[Unmatched]


@dataclass(frozen=True)
class MalStep:
    """An attack step or defense found in a ``.mal`` text.

    ``ttc_start:ttc_end`` is the text between the TTC's brackets (empty span at
    ``insert_at`` when the step has no TTC). ``comment_start:comment_end`` is a comment
    that follows the step's name on the same line and looks like a commented-out TTC
    (``//(0.0445)]``, ``//[Bernoulli(0.08785)]``, ``// [Bernoulli(p)*Exponential(r)]``),
    None if there is none.
    """

    asset: str
    name: str
    kind: str
    insert_at: int
    ttc_start: int | None
    ttc_end: int | None
    comment_start: int | None = None
    comment_end: int | None = None


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


_ASSET = re.compile(r"\basset\s+([A-Za-z_]\w*)(?:\s+extends\s+([A-Za-z_]\w*))?")
_STEP = re.compile(
    r"(?P<kind>[|&#])\s*(?:(?:action|effect)\s+)?(?P<name>[A-Za-z_]\w*)"
    r"(?:\s*@\s*[A-Za-z_]\w*)*(?:\s*\{[^{}]*\})?"
)
_TTC_WORDS = "|".join([*DISTRIBUTIONS, *CONSTANTS])
#: The text of a comment (after ``//``) that is taken for a commented-out TTC: it starts
#: with ``[``, ``(`` or a distribution or constant name and ends with ``)`` or ``]``.
_COMMENTED_TTC = re.compile(rf"\[?\s*(?:\(|(?:{_TTC_WORDS})\b).*[)\]]")


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


def _commented_ttc(text: str, masked: str, after: int) -> tuple[int, int] | None:
    """The span of a commented-out TTC right after a step's name (same line), if any."""
    pos = after
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if not text.startswith("//", pos) or masked[pos] != " ":
        return None
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    body = text[pos + 2 : end].strip()
    if not _COMMENTED_TTC.fullmatch(body):
        return None
    return pos, pos + 2 + len(text[pos + 2 : end].rstrip())


def find_assets(text: str) -> dict[str, str | None]:
    """The assets of a ``.mal`` text and the asset each extends (None if it extends none).

    Parameters
    ----------
    text
        The ``.mal`` source (comments and strings are ignored).

    Returns
    -------
    dict
        Asset name -> parent asset name, in file order.
    """
    return {m.group(1): m.group(2) for m in _ASSET.finditer(_mask(text))}


def find_steps(text: str) -> list[MalStep]:
    """Attack steps (``|``, ``&``) and defenses (``#``) of every asset in a ``.mal`` text.

    Comments and strings (``info`` texts) are ignored, except that a comment after a
    step's name on the same line that looks like a TTC is noted as a commented-out TTC;
    existence steps (``E``, ``!E``) are not returned since they take no TTC.

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
            comment = None
            if masked.startswith("[", after + gap):
                close = _closing(masked, after + gap, "[", "]")
                ttc_start, ttc_end = after + gap + 1, close
                pos = close + 1
            else:
                pos = after
                comment = _commented_ttc(text, masked, after)
            kind = m.group("kind")
            steps.append(
                MalStep(
                    asset.group(1),
                    m.group("name"),
                    kind,
                    after,
                    ttc_start,
                    ttc_end,
                    *(comment or (None, None)),
                )
            )
    return steps


def _ancestors(asset: str, parents: Mapping[str, str | None]) -> list[str]:
    """The assets ``asset`` extends, nearest first."""
    out: list[str] = []
    parent = parents.get(asset)
    while parent is not None and parent not in out and parent != asset:
        out.append(parent)
        parent = parents.get(parent)
    return out


def _fallbacks(
    keys: Iterable[str], steps: list[MalStep], parents: Mapping[str, str | None]
) -> tuple[dict[tuple[str, str], list[tuple[str, str]]], dict[str, str]]:
    """Where an ``Asset.step`` key whose asset lacks the step is patched instead, and why not.

    Returns ``{(asset, step): [(key, how), ...]}`` for keys that fall back to steps of other
    assets (the nearest asset the mapped one extends that has the step; else every asset
    extending the mapped one that has it; else the only asset with a step of that name),
    and ``{key: reason}`` for keys that match no step at all.
    """
    present = {(s.asset, s.name) for s in steps}
    owners: dict[str, list[str]] = {}
    for s in steps:
        if s.asset not in owners.setdefault(s.name, []):
            owners[s.name].append(s.asset)
    targets: dict[tuple[str, str], list[tuple[str, str]]] = {}
    reasons: dict[str, str] = {}
    for key in keys:
        asset, _, name = key.rpartition(".")
        found = owners.get(name, [])
        if not asset:
            if not found:
                reasons[key] = f"no attack step or defense named {name}"
            continue
        if (asset, name) in present:
            continue
        chosen: list[tuple[str, str]] = []
        above = [a for a in _ancestors(asset, parents) if (a, name) in present]
        if above:
            chosen = [(above[0], f"{asset} extends {above[0]}, which has {name}")]
        else:
            below = [a for a in found if asset in _ancestors(a, parents)]
            chosen = [(a, f"{a} extends {asset}") for a in below]
        if not chosen and len(found) == 1:
            chosen = [(found[0], f"only {found[0]} has {name}")]
        for target, how in chosen:
            targets.setdefault((target, name), []).append((key, how))
        if chosen:
            continue
        if not found:
            reasons[key] = f"no attack step or defense named {name}"
        else:
            where = "no asset " + asset if asset not in parents else f"{asset} has no {name}"
            reasons[key] = f"{where}, and {name} is in several other assets ({', '.join(found)})"
    return targets, reasons


def patch_mal(
    text: str,
    new_ttcs: Mapping[str, str],
    *,
    missing: Literal["list", "error", "skip"] = "list",
) -> MalPatch:
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

        Where ``Asset`` has no such step (language versions move steps between assets),
        the key is matched by the step name: the step of the nearest asset ``Asset``
        extends, else the steps of every asset that extends ``Asset``, else the step of
        the one asset that has a step of that name; the change's ``note`` says so. A key
        whose step is in several unrelated assets is ambiguous and not patched, and so is
        one whose step another key already patches, or that shares its fallback step with
        a key of another value.
    missing
        What to do about keys that match no step (:attr:`MalPatch.unmatched`):
        ``'list'`` (default) patches every key that matches and fails only if none does;
        ``'error'`` fails if any key is unmatched; ``'skip'`` never fails. Only ``text``
        itself is searched, not files it includes (``include``).

    Returns
    -------
    MalPatch
        The patched text; one :class:`TtcChange` (asset, step, old, new, note) per
        rewritten step, in file order; and one :class:`Unmatched` (key, reason) per key
        that rewrote nothing, in key order. A step without a TTC gets `` [expr]``
        inserted after its name (and tags); a commented-out TTC after the name is kept as
        it is, after the new TTC (``| webService [Bernoulli(0.0471)] //(0.0445)]``), and
        is reported as the old TTC. The text inside existing brackets is replaced,
        keeping the spaces just inside the brackets.

    Raises
    ------
    InputError
        For an invalid expression, a time factor on a defense, or (as ``missing`` says)
        keys that match no step.
    """
    parsed = {key: parse_ttc(expr) for key, expr in new_ttcs.items()}
    for key in new_ttcs:
        parts = key.split(".")
        if len(parts) > 2 or not all(IDENTIFIER.fullmatch(p) for p in parts):
            raise InputError(f"step key {key!r} must be 'stepName' or 'Asset.stepName'")
    steps = find_steps(text)
    fallback, reasons = _fallbacks(new_ttcs, steps, find_assets(text))
    used: set[str] = set()
    taken: dict[tuple[str, str], str] = {}
    edits: list[tuple[int, int, str, TtcChange]] = []
    for step in steps:
        note = ""
        where = (step.asset, step.name)
        key = f"{step.asset}.{step.name}"
        if key not in new_ttcs:
            key = step.name
        if key not in new_ttcs:
            candidates = fallback.get(where)
            if not candidates:
                continue
            if len({new_ttcs[k].strip() for k, _ in candidates}) > 1:
                names = ", ".join(k for k, _ in candidates)
                for k, _ in candidates:
                    reasons[k] = f"{names} would all patch {step.asset}.{step.name}, with different values"
                continue
            key = candidates[0][0]
            used.update(k for k, _ in candidates)
            note = "; ".join(f"mapped to {k}: {how}" for k, how in candidates)
        used.add(key)
        taken.setdefault(where, key)
        new = new_ttcs[key].strip()
        if step.kind == "#" and parsed[key].time_factor is not None:
            raise InputError(f"defense {step.asset}.{step.name} may only take Bernoulli(p), not {new!r}")
        if step.ttc_start is None or step.ttc_end is None:
            old = None
            if step.comment_start is not None and step.comment_end is not None:
                old = text[step.comment_start : step.comment_end]
            change = TtcChange(step.asset, step.name, old, new, note)
            edits.append((step.insert_at, step.insert_at, f" [{new}]", change))
        else:
            inner = text[step.ttc_start : step.ttc_end]
            lead = inner[: len(inner) - len(inner.lstrip())]
            trail = inner[len(inner.rstrip()) :]
            change = TtcChange(step.asset, step.name, inner.strip(), new, note)
            edits.append((step.ttc_start, step.ttc_end, f"{lead}{new}{trail}", change))
    for (asset, name), candidates in fallback.items():
        for k, _ in candidates:
            if k not in used and k not in reasons and (asset, name) in taken:
                reasons[k] = f"{asset} has {name}, but {taken[asset, name]} already patches it"
    unmatched = [Unmatched(k, reasons.get(k, "no matching step")) for k in new_ttcs if k not in used]
    if unmatched and (missing == "error" or (missing == "list" and not used)):
        shown = "; ".join(f"{u.key}: {u.reason}" for u in unmatched[:5])
        more = f"; and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""
        what = "no mapped step is" if not used else f"{len(unmatched)} of {len(new_ttcs)} mapped steps are not"
        raise InputError(f"{what} in the .mal text ({shown}{more}); check the step names (and assets) in the mapping")
    out = text
    for start, end, replacement, _ in sorted(edits, key=lambda e: e[0], reverse=True):
        out = out[:start] + replacement + out[end:]
    return MalPatch(out, [e[3] for e in sorted(edits, key=lambda e: e[0])], unmatched)


def malsim_check(text: str, skip: Collection[tuple[str, str]] = ()) -> tuple[list[str], list[str]]:
    """The TTCs of a ``.mal`` text that mal-simulator cannot run as written.

    Parameters
    ----------
    text
        The ``.mal`` source.
    skip
        ``(asset, step)`` pairs not to check (e.g. the steps just patched).

    Returns
    -------
    errors, warnings
        One line per step (``Asset.step [expr]: problem``). Errors stop mal-simulator from
        loading an attack graph with that step (a rejected distribution such as
        ``TruncatedNormal``, a bare number); warnings are TTCs it reads differently from
        the MAL compiler (see :func:`attackprev.mal.expressions.malsim_problems`) or that
        could not be parsed here.
    """
    errors: list[str] = []
    warnings: list[str] = []
    for step in find_steps(text):
        if step.ttc_start is None or step.ttc_end is None or (step.asset, step.name) in skip:
            continue
        expr = text[step.ttc_start : step.ttc_end].strip()
        where = f"{step.asset}.{step.name} [{expr}]"
        try:
            problems = malsim_problems(expr)
        except InputError as err:
            warnings.append(f"{where}: not checked ({err.message})")
            continue
        for problem in problems:
            (errors if problem.fatal else warnings).append(f"{where}: {problem.message}")
    return errors, warnings


def format_changes(changes: Iterable[TtcChange]) -> str:
    """Render a change table as aligned text for the command line.

    Parameters
    ----------
    changes
        Rows from :func:`patch_mal` or :func:`attackprev.mal.export.export_mal`.

    Returns
    -------
    str
        One header line and one line per change (``(none)`` where a TTC was inserted, the
        comment where a commented-out TTC was restored, ``(unchanged)`` after a TTC that
        stays the same, and the change's note in parentheses), or a one-line note if empty.
    """
    rows = [
        (
            c.asset,
            c.step,
            "(none)" if c.old is None else c.old,
            c.new + ("  (unchanged)" if c.old == c.new else "") + (f"  ({c.note})" if c.note else ""),
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


def format_unmatched(unmatched: Iterable[Unmatched]) -> str:
    """Render the keys :func:`patch_mal` could not match, one line each.

    Parameters
    ----------
    unmatched
        Rows from :attr:`MalPatch.unmatched` (or :attr:`attackprev.mal.export.MalExport.unmatched`).

    Returns
    -------
    str
        ``not patched (N mapped steps not found in the .mal file):`` and one indented
        line per key (``T1003 OS.credentialDumping: reason``), or an empty string.
    """
    rows = list(unmatched)
    if not rows:
        return ""
    lines = [f"not patched ({len(rows)} mapped step(s) not found in the .mal file):"]
    lines += [f"  {(u.technique_id + ' ') if u.technique_id else ''}{u.key}: {u.reason}" for u in rows]
    return "\n".join(lines)
