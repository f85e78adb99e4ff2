"""The catalogue as one static, self-contained HTML page: a sortable, filterable table of every technique.

:func:`render_catalogue_page` fills ``templates/catalogue_page.html`` with the page's header and
two JSON blobs (the rows, and the labels of tactics and families); the page's own JavaScript
draws the table from them. Everything is inline (no script, style sheet, font or image is
loaded), so the page works from ``file://`` without a network; its only URLs are hyperlinks.
The output depends on the input alone: rendering the same rows twice gives the same bytes.

The rows and the header come from :func:`attackprev.analysis.browse.page_rows` and
:func:`attackprev.analysis.browse.page_meta`; see :func:`render_catalogue_page` for their shape.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

#: The page's template: HTML, CSS and JavaScript, with ``{{name}}`` slots.
TEMPLATE = Path(__file__).resolve().parent / "templates" / "catalogue_page.html"

#: Significant digits kept of every float in the JSON blob (more than the page shows; fixed so output is stable).
SIGNIFICANT_DIGITS = 6

_LINK_LABELS = {
    "catalogue_md": "Report (catalogue.md)",
    "catalogue_csv": "Table (catalogue.csv)",
    "layers": "ATT&CK Navigator layers",
}
_SLOT = re.compile(r"\{\{(\w+)\}\}")
# characters that could end the <script> element or start a comment in it; JSON's \uXXXX form keeps their meaning
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _rounded(value, path: str = "rows"):
    """``value`` with every float rounded to :data:`SIGNIFICANT_DIGITS` significant digits (recursively).

    Raises
    ------
    ValueError
        On a NaN or an infinity, which JSON cannot hold (``path`` says where it is).
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value}: the catalogue page holds finite numbers only")
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _rounded(v, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def script_json(value) -> str:
    """``value`` as compact JSON that is safe inside ``<script type="application/json">``.

    Floats are rounded to :data:`SIGNIFICANT_DIGITS` significant digits; keys are sorted; ``<``, ``>``
    and ``&`` are written as ``\\u003c``, ``\\u003e`` and ``\\u0026``, so no string in the data can
    close the element (``</script>``) or open a comment. ``json.loads`` reads the text back unchanged.

    Parameters
    ----------
    value
        Anything :func:`json.dumps` accepts, without NaN or infinities.

    Returns
    -------
    str
        The JSON text.
    """
    text = json.dumps(_rounded(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_UNSAFE[m.group(0)], text)


def _fill(template: str, slots: dict[str, str]) -> str:
    """Replace every ``{{name}}`` in one pass (so text put in a slot is never read as another slot)."""
    unknown = set(_SLOT.findall(template)) - set(slots)
    if unknown:
        raise KeyError(f"the catalogue page's template has slots nobody fills: {sorted(unknown)}")
    return _SLOT.sub(lambda m: slots[m.group(1)], template)


def _options(choices: list[dict], counts: dict[str, int]) -> str:
    """``<option>`` elements for a filter, each with the number of techniques it would show."""
    return "".join(
        f'<option value="{html.escape(c["id"])}">{html.escape(c["label"])} ({counts.get(c["id"], 0)})</option>\n'
        for c in choices
    )


def _header(meta: dict) -> dict[str, str]:
    """The header's slots, escaped: warning banner, scale, diagnostics, provenance, command and links."""
    e = html.escape
    d = meta["diagnostics"]
    if d["passed"]:
        banner = ""
        diagnostics = f'<p><span class="ok">Sampler diagnostics passed</span>: {e(d["text"])}.</p>\n'
    else:
        banner = (
            '<div class="banner" role="alert" id="diagnostics-warning"><strong>⚠ The model behind these numbers '
            "FAILED its sampler diagnostics: do not use them as they stand.</strong> "
            f"{e(d['text'])}.</div>\n"
        )
        diagnostics = ""
    description = meta["target_description"].strip().rstrip(".")
    links = " ".join(f'<a href="{e(href)}">{e(_LINK_LABELS.get(k, k))}</a>' for k, href in meta["links"].items())
    return {
        "title": e(meta["title"]),
        "banner": banner,
        "scale": (
            f"Each probability is on the <strong>{e(meta['target'])}</strong> scale: "
            f"{e(description)}. Bars show the 94&nbsp;% highest-density interval of the posterior."
        ),
        "diagnostics": diagnostics,
        "provenance": e(meta["provenance"]),
        "command": e(meta["command"]),
        "links": links,
    }


def render_catalogue_page(rows: list[dict], meta: dict) -> str:
    """The catalogue page: one self-contained HTML document, the same bytes for the same input.

    Parameters
    ----------
    rows
        One dict per technique, in any order (the page sorts by ID first):
        ``id``, ``name``, ``url`` (its ATT&CK page), ``tactics`` (ATT&CK shortnames),
        ``mean``, ``low``, ``high`` (posterior mean and 94 % HDI, probabilities on the target scale),
        ``target_data`` (whether the target family reports the technique), ``mal`` (the MAL TTC
        expression), ``families`` (the source families with a count row of it), ``sources``
        (every count row: ``{"source", "family", "k", "n"}``), ``elang`` (``None``, or
        enterpriseLang's ``{"steps", "p", "ratio", "prob_above", "inside"}`` with
        ``ratio = mean / p``), ``runner_up`` (``None``, or ``{"model", "mean", "low", "high",
        "differs"}``) and ``report`` (``None``, or a relative link to the technique's own report).
    meta
        The header: ``title``, ``target``, ``target_description`` (what one unit of the target
        scale is), ``families`` and ``tactics`` (lists of ``{"id", "label"}`` in display order,
        the filters' choices), ``diagnostics`` (``{"passed", "text"}``; a failure is shown first, as
        a warning banner), ``provenance``, ``command`` (what regenerates the page) and ``links``
        (label key -> relative href).

    Returns
    -------
    str
        The HTML text. The rows are embedded as JSON in ``<script type="application/json"
        id="catalogue-data">`` with floats rounded to six significant digits.

    Raises
    ------
    ValueError
        When a number is NaN or infinite.
    """
    tactic_counts: dict[str, int] = {}
    family_counts: dict[str, int] = {}
    for r in rows:
        for t in set(r["tactics"]):
            tactic_counts[t] = tactic_counts.get(t, 0) + 1
        for f in set(r["families"]):
            family_counts[f] = family_counts.get(f, 0) + 1
    labels = {
        "target": meta["target"],
        "tactics": {t["id"]: t["label"] for t in meta["tactics"]},
        "families": {f["id"]: f["label"] for f in meta["families"]},
    }
    slots = {
        **_header(meta),
        "tactic_options": _options(meta["tactics"], tactic_counts),
        "family_options": _options(meta["families"], family_counts),
        "caption": (
            f"{len(rows)} ATT&amp;CK techniques, each with its posterior probability on the "
            f"{html.escape(meta['target'])} scale."
        ),
        "meta_json": script_json(labels),
        "rows_json": script_json(rows),
    }
    return _fill(TEMPLATE.read_text(encoding="utf-8"), slots)
