"""What the catalogue's Navigator layers and its browsable page show of each technique.

Everything here is taken from a fitted :class:`~attackprev.inference.synthesis.SynthesisResult`,
the count table it was fitted to and the catalogue's estimate rows
(:func:`attackprev.analysis.synthesis.technique_estimates`); the layers
(:mod:`attackprev.reporting.navigator`) and the page (:mod:`attackprev.reporting.catalogue_page`)
only format it.
"""

from __future__ import annotations

from attackprev.evidence.attack import attack_table
from attackprev.evidence.counts import CountTable
from attackprev.inference.synthesis import SynthesisResult

#: ATT&CK Enterprise's tactics in kill-chain order (the order of the Navigator's columns).
TACTIC_ORDER = (
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
)
_UNCOUNTABLE = ("software",)
_TACTIC_WORDS = {"and": "and", "command": "Command", "control": "Control"}


def tactic_label(shortname: str) -> str:
    """A tactic's name as ATT&CK writes it: ``command-and-control`` -> ``Command and Control``."""
    return " ".join(_TACTIC_WORDS.get(w, w.capitalize()) for w in shortname.split("-"))


def family_label(table: CountTable, family: str) -> str:
    """A family with what one trial of it is, e.g. ``mtrends (intrusions)``."""
    units = sorted({s.unit for s in table.sources.values() if s.family == family})
    unit = units[0] if len(units) == 1 else "trial"
    if unit in _UNCOUNTABLE:
        plural = unit
    elif unit.endswith("y"):
        plural = unit[:-1] + "ies"
    else:
        plural = unit + "s"
    return f"{family} ({plural})"


def technique_evidence(result: SynthesisResult) -> dict[str, list[dict]]:
    """Every count the model was fitted to, by technique: ``{"source", "family", "k", "n"}`` in the
    order of the families (target family first) and then of the sources."""
    d = result.data
    out: dict[str, list[dict]] = {t: [] for t in d.techniques}
    order = sorted(range(d.successes.size), key=lambda i: (int(d.family_idx[i]), d.sources[d.source_idx[i]]))
    for i in order:
        out[d.techniques[d.technique_idx[i]]].append(
            {
                "source": d.sources[d.source_idx[i]],
                "family": d.families[d.family_idx[i]],
                "k": int(d.successes[i]),
                "n": int(d.trials[i]),
            }
        )
    return out


def evidence_text(counts: list[dict]) -> str:
    """The counts in one line: ``mtrends2020 9/227, attack_groups_v18 31/172, ...``."""
    return ", ".join(f"{c['source']} {c['k']}/{c['n']}" for c in counts)


def family_scales(result: SynthesisResult, table: CountTable, target: str, estimates: list[dict]) -> dict:
    """Every technique's estimate on every family's scale (the target's is ``estimates``), by family."""
    from attackprev.analysis.synthesis import technique_estimates

    return {f: estimates if f == target else technique_estimates(result, table, f) for f in result.data.families}


def page_rows(estimates: list[dict], evidence: dict[str, list[dict]]) -> list[dict]:
    """One row per technique for the catalogue page (the shape :func:`render_catalogue_page` documents).

    Parameters
    ----------
    estimates
        The catalogue's rows on the target scale (with the runner-up's columns where there are any).
    evidence
        :func:`technique_evidence`.

    A row's ``report`` stays empty: whether a technique's own report exists depends on which runs wrote into
    the folder before, and the page must be the same from the same posterior.
    """
    names = attack_table()
    rows = []
    for e in estimates:
        t = e["technique_id"]
        counts = evidence.get(t, [])
        published = e.get("published_p")
        elang = None
        if published is not None:
            elang = {
                "steps": e["enterpriselang_steps"],
                "p": published,
                "ratio": e["mean"] / published,
                "prob_above": e["prob_above_published"],
                "inside": e["published_inside_hdi_94"],
            }
        runner_up = None
        if e.get("runner_up_model"):
            runner_up = {
                "model": e["runner_up_model"],
                "mean": e["runner_up_mean"],
                "low": e["runner_up_hdi_94_low"],
                "high": e["runner_up_hdi_94_high"],
                "differs": e["runner_up_differs"],
            }
        rows.append(
            {
                "id": t,
                "name": e["name"],
                "url": names[t].url,
                "tactics": sorted(names[t].tactics, key=_tactic_rank),
                "mean": e["mean"],
                "low": e["hdi_94_low"],
                "high": e["hdi_94_high"],
                "target_data": e["target_data"],
                "mal": e["mal_expression"].strip("[]"),
                "families": sorted({c["family"] for c in counts}),
                "sources": counts,
                "elang": elang,
                "runner_up": runner_up,
                "report": None,
            }
        )
    return rows


def page_meta(summary: dict, table: CountTable, families: list[str]) -> dict:
    """The catalogue page's header: scale, diagnostics, provenance and the filters' choices."""
    record = summary["record"]
    settings = record["settings"]
    versions = record["versions"]
    d = summary["diagnostics"]
    target = summary["target"]
    present = sorted({t for x in attack_table().values() if x.live for t in x.tactics}, key=_tactic_rank)
    return {
        "title": f"attackprev catalogue: ATT&CK techniques on the {target} scale",
        "target": target,
        "target_description": summary["target_description"],
        "families": [{"id": f, "label": family_label(table, f)} for f in families],
        "tactics": [{"id": t, "label": tactic_label(t)} for t in present],
        "diagnostics": {
            "passed": d["passed"],
            "text": (
                f"{d['divergences']} divergences, max R-hat {d['max_rhat']:.3f}, "
                f"min bulk ESS {d['min_ess_bulk']:.0f}" + ("" if d["passed"] else " — " + "; ".join(d["problems"]))
            ),
        },
        "provenance": (
            f"multi-source model; data sha256 {record['data_sha256'][:12]}, seed {settings['seed']}, "
            f"{settings['chains']} chains x {settings['draws']} draws after {settings['tune']}; "
            f"attackprev {versions['attackprev']}, pymc {versions['pymc']}"
        ),
        "command": summary["command"],
        "links": {"catalogue_md": "catalogue.md", "catalogue_csv": "catalogue.csv", "layers": "layers/"},
    }


def _tactic_rank(tactic: str) -> tuple[int, str]:
    return (TACTIC_ORDER.index(tactic) if tactic in TACTIC_ORDER else len(TACTIC_ORDER), tactic)
