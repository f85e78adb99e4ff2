"""``reports/validation.md``: is the headline model calibrated? The verdict of every check, with its figures.

Each check of the multi-source synthesis is its own run, with its own report:

* ``python -m attackprev.validation.sources`` — each source of a several-year family held out
  in turn (coverage of its counts' predictive intervals), a forecast of the latest M-Trends year
  against two baselines, and the headline's prior sensitivity (``reports/validation-sources.md``);
* ``python -m attackprev.validation.synthesis_sbc`` — simulation-based calibration on synthetic
  catalogues with the real design (``reports/validation-synthesis-sbc.md``);
* ``python -m attackprev.validation.comparison`` — the headline against its alternatives, by
  held-out predictive scores on the target scale (``reports/validation-comparison.md``).

Each run also saves its key figures as ``reports/validation/<check>.json`` (with the SHA-256 of
the data it ran on); ``python -m attackprev.validation.summary`` renders this file from them, and
says which checks are missing or ran on other data than today's. The single-technique model's
own checks are in ``reports/validation-single.md`` (``python -m attackprev.validation``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attackprev.atomic import json_text, round_floats, write_text_atomic
from attackprev.config import DIAGNOSTIC_LIMITS

#: The checks, in the order of the report: (JSON name, report file, command).
CHECKS = (
    ("sources", "validation-sources.md", "python -m attackprev.validation.sources"),
    ("synthesis_sbc", "validation-synthesis-sbc.md", "python -m attackprev.validation.synthesis_sbc"),
    ("comparison", "validation-comparison.md", "python -m attackprev.validation.comparison"),
)
RECORD_DIR = "validation"
#: The SBC criterion of the issue: no parameter's χ² p-value at or below this.
SBC_ALPHA = 0.01


def record_path(out: Path, name: str) -> Path:
    """Where check ``name`` saves its figures under the reports folder ``out``."""
    return Path(out) / RECORD_DIR / f"{name}.json"


def write_record(out: Path, name: str, record: dict) -> Path:
    """Save a check's figures atomically (six significant figures, like every summary.json)."""
    path = record_path(out, name)
    write_text_atomic(path, json_text(round_floats(record)))
    return path


def read_records(out: Path) -> dict[str, dict | None]:
    """Every check's saved figures (``None`` for a check not run yet)."""
    records: dict[str, dict | None] = {}
    for name, _, _ in CHECKS:
        path = record_path(out, name)
        records[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return records


# ----------------------------------------------------------------------------------- the verdicts
def _loso_row(r: dict) -> list[str]:
    inside, total, se = r["loso"]["0.94"]
    share = inside / total
    ok = abs(share - 0.94) <= 2 * se
    failed = r["loso"]["refits_failing_diagnostics"]
    note = f"; {failed} of {r['loso']['refits']} refits fail the sampler diagnostics" if failed else ""
    return [
        "Leave one source out: 94 % predictive intervals",
        "coverage within 2 binomial SE of 0.94",
        f"{inside} of {total} = {share:.3f} (0.94 ± {2 * se:.3f}){note}",
        "passed" if ok else "FAILED",
    ]


def _forecast_row(r: dict) -> list[str]:
    parts, ok = [], True
    for name, f in r["forecast"].items():
        parts.append(f"{name}: {f['difference']:+.1f} ± {2 * f['difference_se']:.1f} over {f['rows']} counts")
        ok &= f["difference"] > 0
    return [
        f"Forecast of `{r['forecast_source']}` from everything else",
        "log score above both baselines",
        "; ".join(parts),
        "passed" if ok and parts else "FAILED",
    ]


def _sbc_row(r: dict) -> list[str]:
    worst = min(r["chi2_p"].items(), key=lambda kv: kv[1])
    failing = [p for p, v in r["chi2_p"].items() if v <= SBC_ALPHA]
    fits = r["fits_with_problems"]
    text = (
        f"{len(r['chi2_p'])} parameters over {r['catalogues']} catalogues of {r['techniques']} techniques; "
        f"smallest p = {worst[1]:.3g} ({worst[0]}); {len(failing)} at or below {SBC_ALPHA}"
    )
    if fits:
        text += f"; {fits} of {r['catalogues']} fits with divergences or R-hat/ESS outside the limits"
    return [
        "Simulation-based calibration",
        f"χ² p > {SBC_ALPHA} for every parameter",
        text,
        "passed" if not failing else "FAILED",
    ]


def _comparison_row(r: dict) -> list[str]:
    scores = "; ".join(
        f"{m}: {t['total']:.1f} ({t['difference']:+.1f} ± {2 * t['difference_se']:.1f} vs the headline)"
        for m, t in r["totals"].items()
        if m != r["headline"]
    )
    return [
        "Model choice (held-out log score on the target scale)",
        "the headline is the best-scoring model, or within 2 SE of it",
        f"chosen: {r['choice']}, runner-up: {r['runner_up']}; {scores}",
        "passed" if r["choice"] == r["headline"] else f"FAILED: {r['choice']} scores better",
    ]


ROWS = {"sources": (_loso_row, _forecast_row), "synthesis_sbc": (_sbc_row,), "comparison": (_comparison_row,)}


def _prior_fit_passed(row: dict) -> bool:
    """A prior-sensitivity row's verdict (rows saved before it was recorded: from its "divergences, max
    R-hat, min ESS" text)."""
    if "passed" in row:
        return bool(row["passed"])
    divergences, rhat, ess = (float(x) for x in row["diagnostics"].split(", "))
    limits = DIAGNOSTIC_LIMITS
    return divergences <= limits["divergences"] and rhat <= limits["max_rhat"] and ess >= limits["min_ess_bulk"]


def _unhealthy_fits(records: dict[str, dict | None]) -> list[str]:
    """Per check, how many of its fits fail the sampler diagnostics (a comparison record saved before
    it counted them says to look in its report)."""
    out = []
    sources, sbc, comparison = (records.get(n) for n in ("sources", "synthesis_sbc", "comparison"))
    if sources and sources["loso"].get("refits_failing_diagnostics"):
        out.append(f"{sources['loso']['refits_failing_diagnostics']} of {sources['loso']['refits']} held-out refits")
    priors_failing = [p for p in (sources or {}).get("priors") or [] if not _prior_fit_passed(p)]
    if priors_failing:
        out.append(f"{len(priors_failing)} of {len(sources['priors'])} prior-sensitivity fits")
    if sbc and sbc.get("fits_with_problems"):
        out.append(f"{sbc['fits_with_problems']} of {sbc['catalogues']} SBC fits")
    if comparison and comparison.get("fits_failing_diagnostics"):
        out.append(f"{comparison['fits_failing_diagnostics']} of {comparison['fits']} model-comparison fits")
    return out


def render(records: dict[str, dict | None], data_sha256: str) -> str:
    """The Markdown of ``reports/validation.md``."""
    rows, problems = [], []
    for name, report, command in CHECKS:
        r = records.get(name)
        if r is None:
            problems.append(f"`{command}` has not been run: its check is missing.")
            continue
        if r.get("data_sha256") != data_sha256:
            problems.append(f"`{command}` ran on other data than today's evidence: rerun it.")
        for row in ROWS[name]:
            rows.append([*row(r), f"[{report}]({report})"])
    failed = [r[0] for r in rows if not r[3].startswith("passed")]
    head = []
    if failed or problems:
        head = [f"> **Not every check passed.** Failed: {', '.join(failed) or 'none'}."]
        head += [f"> {p}" for p in problems]
    else:
        head = ["> **Every check of the headline model passed** (figures below; details in each check's report)."]
    unhealthy = _unhealthy_fits(records)
    if unhealthy:
        head += [
            ">",
            "> **Sampler diagnostics:** "
            + "; ".join(unhealthy)
            + " miss the package's limits (divergences, R-hat or bulk ESS); each check's report says which and what "
            "it costs.",
        ]
    comparison = records.get("comparison")
    if comparison and "fits" not in comparison:
        head += [
            ">",
            "> The model comparison's saved figures predate its count of fits failing the diagnostics: "
            "its report gives that count in its first line.",
        ]
    head.append("")
    lines = [
        *head,
        "# Validation of the headline model: the multi-source synthesis",
        "",
        "Generated by `python -m attackprev.validation.summary` from the figures each check saved in "
        "`reports/validation/*.json` (`make validation` runs them all). Each check's report holds its method, "
        "every number and its sampler diagnostics.",
        "",
        "| check | criterion | figures | verdict | report |",
        "|---|---|---|---|---|",
        *["| " + " | ".join(r) + " |" for r in rows],
        "",
    ]
    sources = records.get("sources")
    if sources and sources.get("priors"):
        means = [p["mean"] for p in sources["priors"]]
        lines += [
            f"Prior sensitivity: across {len(means)} fits with one prior or assumption changed at a time, T1102's "
            f"mean on the target scale runs from {min(means):.4f} to {max(means):.4f} "
            "([validation-sources.md](validation-sources.md)).",
            "",
        ]
    if sources and "0.5" in sources["loso"]:
        other = []
        for level in ("0.5", "0.8"):
            inside, total, se = sources["loso"][level]
            share = inside / total
            mark = "within" if abs(share - float(level)) <= 2 * se else "outside"
            other.append(f"{float(level):.0%}: {share:.3f} ({mark} 2 SE of {float(level):.2f})")
        lines += [f"Held-out coverage of the other intervals: {'; '.join(other)}.", ""]
    lines += [
        "The single-technique model (the note's sources alone, exact engine and NUTS) has its own checks: "
        "[validation-single.md](validation-single.md).",
        "",
        "*Generated by `attackprev`; do not edit by hand.*",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Render ``reports/validation.md`` from the saved figures."""
    from attackprev.evidence.counts import load_counts

    parser = argparse.ArgumentParser(prog="python -m attackprev.validation.summary", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports"), help="reports folder")
    args = parser.parse_args(argv)
    path = args.out / "validation.md"
    write_text_atomic(path, render(read_records(args.out), load_counts().digest))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
