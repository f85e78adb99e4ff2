"""Figures of the validation report (matplotlib ``Figure`` objects outside pyplot, written as PNG).

The ECDF-difference plots follow Säilynoja, Bürkner & Vehtari (2022, Statistics and
Computing 32:32): the ECDF of the PIT values minus the uniform CDF, with a simultaneous 95 %
band, computed by ``arviz_stats.ecdf_utils.ecdf_pit`` (seeded). ``az.plot_ecdf_pit`` would
draw the same, but its ``method="envelope"`` fails in arviz-plots 1.3.2 (it passes a
DataArray to ``np.linspace``), and its default ``pot_c`` draws no band.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from arviz_stats.ecdf_utils import ecdf_pit
from matplotlib.figure import Figure

from attackprev.validation.compare import MCSE_LIMIT, EngineComparison
from attackprev.validation.coverage import Coverage
from attackprev.validation.sbc import LABELS, SBCResult, uniformity

BAND_PROB = 0.95
BAND_SEED = 214


def ecdf_band(pit: np.ndarray, prob: float = BAND_PROB) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, ECDF − x, lower − x, upper − x) with a simultaneous ``prob`` band for uniformity."""
    x, ecdf, lower, upper = ecdf_pit(np.asarray(pit), prob, 1000, rng=np.random.default_rng(BAND_SEED))
    return x, ecdf - x, lower - x, upper - x


def plot_ecdf_difference(result: SBCResult, title: str, path: Path) -> None:
    """One panel per parameter: ECDF of the PIT values minus the uniform CDF, with the band."""
    names = list(result.pit)
    fig = Figure(figsize=(3.2 * len(names), 3.0))
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        pit = result.pit[name]
        x, diff, lo, hi = ecdf_band(pit)
        ax.fill_between(x, lo, hi, step="post", color="0.85", label=f"simultaneous {BAND_PROB:.0%} band")
        ax.step(x, diff, where="post", color="C0", lw=1.2, label="ECDF − uniform")
        ax.axhline(0.0, color="0.4", lw=0.6)
        u = uniformity(pit)
        ax.set_title(f"{LABELS[name]}\nχ² p = {u.chi2_p:.3f}, KS p = {u.ks_p:.3f}", fontsize=9)
        ax.set_xlabel("PIT" if result.engine == "exact" else "normalised rank")
    axes[0][0].set_ylabel("ECDF difference")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_coverage(cases: dict[str, list[Coverage]], path: Path) -> None:
    """Observed coverage minus nominal, with 95 % Wilson intervals, per case and interval."""
    fig = Figure(figsize=(7.5, 3.4))
    ax = fig.subplots()
    labels: list[tuple[float, str]] = []
    for i, (case, rows) in enumerate(cases.items()):
        for j, row in enumerate(rows):
            lo, hi = row.ci95
            y = i * (len(rows) + 1) + j
            colour = f"C{j}"
            ax.errorbar(
                row.rate - row.level,
                y,
                xerr=[[max(row.rate - lo, 0.0)], [max(hi - row.rate, 0.0)]],
                fmt="o",
                color=colour,
                capsize=3,
                label=None if i else f"{row.interval} {row.level:.0%}",
            )
            if j == 0:
                labels.append((y + (len(rows) - 1) / 2, case))
    ax.axvline(0.0, color="0.4", lw=0.8)
    ax.set_yticks([y for y, _ in labels], [name for _, name in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("observed − nominal coverage of μ (95 % interval)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_comparison(rows: Sequence[tuple[str, EngineComparison]], path: Path) -> None:
    """NUTS − exact differences of μ's mean, sd and HDI bounds in MCSE units, per data set and run."""
    fig = Figure(figsize=(7.5, 3.4))
    ax = fig.subplots()
    figures = ("mean", "sd", "HDI low", "HDI high")
    names = list(dict.fromkeys(row.name for _, row in rows))
    runs = list(dict.fromkeys(run for run, _ in rows))
    width = 0.7 / max(len(rows), 1)
    for k, (run, row) in enumerate(rows):
        z = [row.mean_z, row.sd_z, *row.hdi_z]
        ax.plot(
            np.arange(4) - 0.35 + width * (k + 0.5),
            z,
            "os^dv"[runs.index(run) % 5],
            color=f"C{names.index(row.name)}",
            label=f"{row.name} ({run})",
        )
    ax.axhspan(-MCSE_LIMIT, MCSE_LIMIT, color="0.9", zorder=0, label=f"±{MCSE_LIMIT:g} MCSE")
    ax.axhline(0.0, color="0.4", lw=0.6)
    ax.set_xticks(range(4), figures)
    ax.set_ylabel("(NUTS − exact) / MCSE")
    ax.legend(fontsize=6, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.savefig(path, dpi=110, bbox_inches="tight")
