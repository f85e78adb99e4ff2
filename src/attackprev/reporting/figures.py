"""Report figures for one technique's fitted Beta-Binomial model.

:func:`write_figures` turns the ``xarray.DataTree`` returned by
:func:`attackprev.inference.mcmc.sample_technique` into the PNG files the report embeds:

``forest.png``
    Each source's published rate ``y/n`` (94 % Jeffreys interval) beside the model's
    shrunk rate θ_s (94 % HDI), the prevalence μ and a new source's rate θ_new — from this
    technique alone and, when the multi-technique model is the report's headline
    (:class:`Headline`), from that model too.
``mu_posterior.png``
    The posterior of the headline μ with its 94 % HDI, its mean (the MAL probability) and
    the point estimate it is compared with; with a multi-technique headline, the
    single-technique posterior is drawn beside it as a line.
``prior_posterior.png``
    Prior against posterior for μ and log κ (posterior alone when the prior is improper).
``ppc.png``
    Posterior predictive check: replicated counts for each source with the observed count.
``rank.png`` and ``trace.png``
    Sampler diagnostics for μ and log κ.

Plotting libraries are imported when the figures are drawn, not when this module is
imported, so ``import attackprev.reporting.figures`` stays cheap.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from attackprev.config import HDI_PROB
from attackprev.inference.summaries import Headline, jeffreys_interval
from attackprev.inference.summaries import hdi as draws_hdi

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes

#: Probability mass of every interval drawn (matches the report's 94 % HDIs).
#: Resolution of every PNG.
DPI = 100
#: The hyperparameters shown in the diagnostic and prior/posterior figures.
HYPER_VARS = ("mu", "log_kappa")
#: Plain-words axis labels.
LABELS = {
    "mu": "prevalence μ (share of attacks)",
    "log_kappa": "log κ (how alike the sources are; higher = more alike)",
}
#: Short names used as panel titles by ArviZ.
SHORT_LABELS = {"mu": "prevalence μ", "log_kappa": "log κ (concentration)"}
#: At most this many draws feed the density estimates (KDEs); more change nothing visible.
MAX_DENSITY_DRAWS = 4000

FILENAMES = {
    "forest": "forest.png",
    "mu_posterior": "mu_posterior.png",
    "prior_posterior": "prior_posterior.png",
    "ppc": "ppc.png",
    "rank": "rank.png",
    "trace": "trace.png",
}

_COLORS = {
    "raw": "#7f7f7f",
    "theta": "#1f77b4",
    "mu": "#2ca02c",
    "theta_new": "#9467bd",
    "point": "#d62728",
}


def write_figures(
    tree: xr.DataTree,
    out_dir: Path,
    point_estimate: float,
    hdi_mu: tuple[float, float],
    technique_id: str,
    *,
    point_label: str = "enterpriseLang estimate",
    headline: Headline | None = None,
    keys: tuple[str, ...] | None = None,
) -> dict[str, str]:
    """Write every report figure as PNG into out_dir; return {key: filename}.

    Parameters
    ----------
    tree
        Fitted model: groups ``posterior`` (``mu``, ``log_kappa``, ``theta[source]``,
        ``theta_new``), ``observed_data`` (``y[source]``), ``constant_data``
        (``trials[source]``), ``posterior_predictive`` (``y[source]``) and, when the
        hyperprior is proper, ``prior``.
    out_dir
        Folder to write into; created if missing. Existing files are overwritten.
    point_estimate
        The single number the model is compared with (e.g. enterpriseLang's 0.0445),
        drawn as a vertical line.
    hdi_mu
        The report's 94 % HDI of the headline μ, ``(lower, upper)``, drawn on the μ
        posterior so the figure and the report's table agree.
    technique_id
        ATT&CK technique ID used in the titles, e.g. ``"T1102"``.
    point_label
        Words naming the point estimate in the legends.
    headline
        The multi-technique posterior when it, not ``tree``, gives the report's headline μ
        (the μ figure then shows it, and the forest plot adds its rows).
    keys
        Draw only these figures (default: all of :data:`FILENAMES`).

    Returns
    -------
    dict of str to str
        Figure key (``forest``, ``mu_posterior``, ``prior_posterior``, ``ppc``,
        ``rank``, ``trace``) to the PNG's file name inside ``out_dir``.

    Notes
    -----
    :mod:`attackprev.reporting.figure_workers` draws the same figures in processes forked before the
    model is compiled, so a report's figures need not wait for each other.
    Density curves use at most ``MAX_DENSITY_DRAWS`` draws (evenly thinned over the
    draw dimension); rank plots use ArviZ's ESS-based thinning (``thin=True``), which
    makes its multi-chain uniformity test about 20 times faster on 4 x 4000 draws.
    Intervals, predictive histograms and traces use every draw.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _require(tree)
    pe_text = f"{point_label} {_pct(point_estimate)}"
    writers = {
        "forest": lambda p: _forest(tree, p, point_estimate, pe_text, technique_id, headline),
        "mu_posterior": lambda p: _mu_posterior(tree, p, point_estimate, pe_text, hdi_mu, technique_id, headline),
        "prior_posterior": lambda p: _prior_posterior(tree, p, technique_id),
        "ppc": lambda p: _ppc(tree, p, technique_id),
        "rank": lambda p: _rank(tree, p, technique_id),
        "trace": lambda p: _trace(tree, p, technique_id),
    }
    unknown = sorted(set(keys or ()) - set(writers))
    if unknown:
        raise ValueError(f"unknown figure keys: {', '.join(unknown)}")
    _pyplot()
    for key in keys or tuple(writers):
        writers[key](out_dir / FILENAMES[key])
    return {k: FILENAMES[k] for k in FILENAMES if keys is None or k in keys}


def example_tree(*, chains: int = 2, draws: int = 300, seed: int = 7, with_prior: bool = True) -> xr.DataTree:
    """A small synthetic fit with every group the figures read (no sampler needed).

    Shaped like :func:`attackprev.inference.mcmc.sample_technique`'s result for T1102's two sources; the
    figure workers draw it once to warm up, and the tests draw it.
    """
    import xarray as xr

    rng = np.random.default_rng(seed)
    sources = ["mtrends2020", "sok2019_windows_malware"]
    y, trials = np.array([9, 47]), np.array([227, 951])

    def hierarchical(c: int) -> dict[str, np.ndarray]:
        mu = rng.beta(2.0, 30.0, size=(c, draws))
        log_kappa = rng.normal(4.0, 1.5, size=(c, draws))
        kappa = np.exp(log_kappa)
        a, b = (mu * kappa)[..., None], ((1 - mu) * kappa)[..., None]
        theta = rng.beta(a, b, size=(c, draws, len(sources)))
        theta_new = rng.beta(a[..., 0], b[..., 0])
        return {"mu": mu, "kappa": kappa, "log_kappa": log_kappa, "theta": theta, "theta_new": theta_new}

    def dataset(values: dict[str, np.ndarray], c: int) -> xr.Dataset:
        coords = {"chain": np.arange(c), "draw": np.arange(draws), "source": sources}
        dims = {3: ("chain", "draw", "source"), 2: ("chain", "draw")}
        return xr.Dataset({k: (dims[v.ndim], v) for k, v in values.items()}, coords=coords)

    post = hierarchical(chains)
    y_rep = rng.binomial(trials, post["theta"])
    source = {"source": sources}
    groups = {
        "posterior": dataset(post, chains),
        "sample_stats": xr.Dataset(
            {"diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool))},
            coords={"chain": np.arange(chains), "draw": np.arange(draws)},
        ),
        "observed_data": xr.Dataset({"y": ("source", y)}, coords=source),
        "constant_data": xr.Dataset({"trials": ("source", trials), "weight": ("source", np.ones(2))}, coords=source),
        "posterior_predictive": dataset({"y": y_rep}, chains),
    }
    if with_prior:
        prior = hierarchical(1)
        prior["mu"] = rng.uniform(size=(1, draws))
        groups["prior"] = dataset(prior, 1)
    return xr.DataTree.from_dict(groups)


# --------------------------------------------------------------------------- helpers


def _require(tree: xr.DataTree) -> None:
    """Fail with one clear line when a group or variable the figures need is missing."""
    from attackprev.errors import InputError

    needed = {
        "posterior": ("mu", "log_kappa", "theta", "theta_new"),
        "observed_data": ("y",),
        "constant_data": ("trials",),
        "posterior_predictive": ("y",),
    }
    for group, names in needed.items():
        if group not in tree.children:
            raise InputError(f"cannot draw figures: the posterior has no '{group}' group")
        missing = [n for n in names if n not in tree[group].data_vars]
        if missing:
            raise InputError(f"cannot draw figures: group '{group}' lacks {', '.join(missing)}")


def _pct(x: float) -> str:
    """Format a share as a percentage, e.g. 0.0445 -> '4.45 %', 0.175 -> '17.5 %'."""
    value = 100 * x
    return f"{value:.1f} %" if abs(value) >= 10 else f"{value:.2f} %"


def _pyplot() -> Any:
    """Import pyplot, choosing the headless Agg backend unless pyplot is already in use."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_figure(figsize: tuple[float, float]) -> Any:
    """A matplotlib Figure outside pyplot's registry: nothing to close, no backend needed."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _save(fig: Any, path: Path) -> None:
    """Render ``fig`` at ``DPI`` and write it as a 256-colour palette PNG.

    Plots use few colours, so the palette keeps them sharp while cutting the file to about
    a third of a full-colour PNG (trace plots of 16 000 draws stay well under 100 kB).
    """
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, format="png")


def _save_pc(pc: Any, path: Path) -> None:
    """Save an ArviZ PlotCollection (laid out so labels do not overlap) and close it."""
    plt = _pyplot()
    fig = pc.viz["figure"].item()
    try:
        fig.set_layout_engine("constrained")
        _save(fig, path)
    finally:
        plt.close(fig)


def _thin_for_density(group: xr.Dataset) -> xr.Dataset:
    """Keep at most ``MAX_DENSITY_DRAWS`` draws, evenly spaced within each chain."""
    n_total = group.sizes.get("chain", 1) * group.sizes["draw"]
    step = int(np.ceil(n_total / MAX_DENSITY_DRAWS))
    return group.isel(draw=slice(None, None, step)) if step > 1 else group


def _labeller() -> Any:
    from arviz_base.labels import MapLabeller

    return MapLabeller(var_name_map=SHORT_LABELS)


def _percent_axis(ax: Axes, axis: str = "x") -> None:
    """Label an axis holding a rate in percent: 0.025 -> '2.5 %'."""
    from matplotlib.ticker import FuncFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.4g} %"))


# --------------------------------------------------------------------------- figures


def _forest(
    tree: xr.DataTree, path: Path, point: float, point_text: str, tid: str, headline: Headline | None = None
) -> None:
    """Published rates beside shrunk rates, μ and θ_new, drawn directly with matplotlib.

    ``az.plot_forest`` cannot mix a frequentist interval (Jeffreys, for the raw rate)
    with posterior HDIs in one panel, so the rows are drawn here from ``az.hdi``. With a
    multi-technique ``headline``, its μ and θ_new rows (filled markers) follow this
    technique's own (open markers).
    """
    import arviz as az
    from matplotlib.lines import Line2D

    post = tree["posterior"].to_dataset()
    hdi = az.hdi(post[["mu", "theta", "theta_new"]], prob=HDI_PROB)
    median = post[["mu", "theta", "theta_new"]].median(dim=("chain", "draw"))
    sources = [str(s) for s in post["theta"]["source"].values]
    y = tree["observed_data"]["y"].sel(source=sources).values.astype(float)
    n = tree["constant_data"]["trials"].sel(source=sources).values.astype(float)
    raw_lo, raw_hi = jeffreys_interval(y, n, HDI_PROB)

    # rows from top to bottom: (label, centre, lower, upper, style key)
    rows: list[tuple[str, float, float, float, str]] = []
    for i, src in enumerate(sources):
        rows.append((f"{src}\npublished {int(y[i])} / {int(n[i])}", y[i] / n[i], raw_lo[i], raw_hi[i], "raw"))
        th = hdi["theta"].sel(source=src)
        rows.append(
            (
                f"{src}\nmodel θ (shrunk)",
                float(median["theta"].sel(source=src)),
                float(th.sel(ci_bound="lower")),
                float(th.sel(ci_bound="upper")),
                "theta",
            )
        )
    alone = "\nthis technique alone" if headline is not None else ""
    open_rows = set()
    for var in ("mu", "theta_new"):
        label = {"mu": "prevalence μ", "theta_new": "a new source θ_new"}[var]
        if headline is None:
            label += {"mu": "\n(pooled over sources)", "theta_new": ""}[var]
        else:
            open_rows.add(len(rows))
        rows.append(
            (
                label + alone,
                float(median[var]),
                float(hdi[var].sel(ci_bound="lower")),
                float(hdi[var].sel(ci_bound="upper")),
                var,
            )
        )
    if headline is not None:
        for var, draws in (("mu", headline.mu), ("theta_new", headline.theta_new)):
            label = {"mu": "prevalence μ", "theta_new": "a new source θ_new"}[var]
            lo, hi = draws_hdi(draws, HDI_PROB)
            rows.append((f"{label}\n{headline.label} (headline)", float(np.median(draws)), lo, hi, var))

    markers = {"raw": "s", "theta": "o", "mu": "D", "theta_new": "D"}
    fig = _new_figure((8.5, 0.62 * len(rows) + 1.9))
    ax = fig.add_subplot()
    ypos = np.arange(len(rows))[::-1]
    for k in range(len(sources)):  # shade each source's pair of rows
        if k % 2 == 0:
            ax.axhspan(ypos[2 * k + 1] - 0.5, ypos[2 * k] + 0.5, color="#f2f2f2", zorder=0)
    ax.axhline(ypos[2 * len(sources)] + 0.5, color="#bbbbbb", lw=0.8, zorder=0)
    if headline is not None:
        ax.axhline(ypos[2 * len(sources) + 2] + 0.5, color="#bbbbbb", lw=0.8, ls=":", zorder=0)
    for i, (yp, (_, centre, lo, hi, style)) in enumerate(zip(ypos, rows, strict=True)):
        color = _COLORS[style]
        ax.plot([lo, hi], [yp, yp], color=color, lw=2.2, solid_capstyle="butt", zorder=2)
        ax.plot(
            centre,
            yp,
            marker=markers[style],
            ms=7,
            color=color,
            mfc="white" if style == "raw" or i in open_rows else color,
            mew=1.6,
            zorder=3,
        )
        ax.annotate(
            f"{_pct(centre)}  [{_pct(lo)} – {_pct(hi)}]",
            xy=(1.01, yp),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=8.5,
            color="#333333",
        )
    ax.axvline(point, color=_COLORS["point"], ls="--", lw=1.4, zorder=1)
    ax.set_yticks(ypos, [r[0] for r in rows], fontsize=9)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    right = max(point, *(r[3] for r in rows)) * 1.04
    ax.set_xlim(-0.015 * right, right)  # a little room left of 0 so a bound at 0 stays visible
    ax.annotate(
        f"estimate  [{100 * HDI_PROB:.0f} % interval]",
        xy=(1.01, len(rows) - 0.45),
        xycoords=("axes fraction", "data"),
        va="bottom",
        fontsize=8.5,
        fontweight="bold",
        color="#333333",
    )
    _percent_axis(ax)
    ax.set_xlabel("rate (share of attacks or samples using the technique)")
    ax.set_title(f"{tid}: published rates and model estimates ({100 * HDI_PROB:.0f} % intervals)", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    handles = [
        Line2D(
            [], [], color=_COLORS["raw"], marker="s", mfc="white", lw=2, label="published y / n (Jeffreys interval)"
        ),
        Line2D([], [], color=_COLORS["theta"], marker="o", lw=2, label="model, per source (median, HDI)"),
        Line2D([], [], color=_COLORS["mu"], marker="D", lw=2, label="prevalence μ (median, HDI)"),
        Line2D([], [], color=_COLORS["theta_new"], marker="D", lw=2, label="new source θ_new (median, HDI)"),
        Line2D([], [], color=_COLORS["point"], ls="--", lw=1.4, label=point_text),
    ]
    if headline is not None:
        handles.insert(
            4,
            Line2D([], [], color="#555555", marker="D", mfc="white", lw=0, label="open ◇: this technique alone"),
        )
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8.5, frameon=False)
    _save(fig, path)


def _mu_posterior(
    tree: xr.DataTree,
    path: Path,
    point: float,
    point_text: str,
    hdi_mu: tuple[float, float],
    tid: str,
    headline: Headline | None = None,
) -> None:
    """Posterior density of the headline μ (``az.plot_dist``) with the report's HDI and the point estimate.

    The headline is ``tree``'s μ unless a multi-technique ``headline`` is given; then this
    technique's own posterior of μ is drawn beside it as a grey line, for comparison.
    """
    import arviz as az
    import xarray as xr
    from arviz_stats.base import array_stats
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    _pyplot()
    alone = tree["posterior"]["mu"].values
    mu = alone if headline is None else np.asarray(headline.mu)
    if mu.ndim == 1:
        mu = mu[None]
    shown = xr.Dataset({"mu": (("chain", "draw"), mu)})
    pc = az.plot_dist(
        _thin_for_density(shown),
        var_names=["mu"],
        kind="kde",
        visuals={"credible_interval": False, "point_estimate": False, "point_estimate_text": False},
        labeller=_labeller(),
        figure_kwargs={"figsize": (7.5, 3.8)},
    )
    ax = pc.viz["plot"]["mu"].item()
    line = pc.viz["dist"]["mu"].item()
    xs, ys = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    lo, hi = hdi_mu
    inside = (xs >= lo) & (xs <= hi)
    ax.fill_between(xs[inside], 0, ys[inside], color=_COLORS["theta"], alpha=0.25, lw=0)
    median = float(np.median(mu))
    mean = float(mu.mean())
    ax.axvline(median, color=_COLORS["theta"], lw=1.2, ls=":")
    ax.axvline(mean, color=_COLORS["mu"], lw=1.4, ls="-.")
    ax.axvline(point, color=_COLORS["point"], lw=1.6, ls="--")
    # The upper tail of μ is long: cut the axis at the 99th percentile and say so.
    q99 = float(np.quantile(mu, 0.99))
    right = max(q99, hi * 1.15, point * 1.3)
    ax.set_xlim(0, right)
    extra = []
    if headline is not None:
        thinned = _thin_for_density(xr.Dataset({"mu": (("chain", "draw"), alone)}))["mu"].values.ravel()
        grid, pdf, _ = array_stats.kde(thinned)
        ax.plot(grid, pdf, color=_COLORS["raw"], lw=1.3, ls=(0, (4, 2)))
        ax.set_ylim(0, max(ys.max(), float(pdf[grid <= right].max())) * 1.05)
        extra = [
            Line2D(
                [],
                [],
                color=_COLORS["raw"],
                lw=1.3,
                ls=(0, (4, 2)),
                label=f"this technique alone (mean {_pct(float(alone.mean()))})",
            )
        ]
    ax.annotate(
        point_text,
        xy=(point, ys.max() * 0.5),
        xytext=(point + 0.18 * right, ys.max() * 0.5),
        arrowprops={"arrowstyle": "->", "color": _COLORS["point"], "lw": 1},
        color=_COLORS["point"],
        fontsize=9,
        va="center",
    )
    share_cut = float((mu > right).mean())
    _percent_axis(ax)
    ax.set_xlabel(LABELS["mu"])
    if headline is None:
        ax.set_title(f"{tid}: posterior of the prevalence μ (pooled over sources)", fontsize=11)
        density = "posterior density"
    else:
        ax.set_title(f"{tid}: posterior of the prevalence μ — {headline.label} model (headline)", fontsize=11)
        density = f"posterior density, {headline.label}"
    note = f"x axis cut at {_pct(right)}; {share_cut:.1%} of draws lie beyond" if share_cut > 0 else ""
    handles = [
        Line2D([], [], color=_COLORS["theta"], lw=1.5, label=density),
        Patch(color=_COLORS["theta"], alpha=0.25, label=f"{100 * HDI_PROB:.0f} % HDI {_pct(lo)} – {_pct(hi)}"),
        Line2D([], [], color=_COLORS["theta"], lw=1.2, ls=":", label=f"posterior median {_pct(median)}"),
        Line2D([], [], color=_COLORS["mu"], lw=1.4, ls="-.", label=f"posterior mean {_pct(mean)} (the MAL p)"),
        Line2D([], [], color=_COLORS["point"], lw=1.6, ls="--", label=point_text),
        *extra,
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8.5, frameon=False, title=note, title_fontsize=8)
    _save_pc(pc, path)


def _prior_posterior(tree: xr.DataTree, path: Path, tid: str) -> None:
    """Prior against posterior for μ and log κ; the posterior alone when there is no prior."""
    import arviz as az
    import xarray as xr

    _pyplot()
    post = _thin_for_density(tree["posterior"].to_dataset()[list(HYPER_VARS)])
    has_prior = "prior" in tree.children and all(v in tree["prior"].data_vars for v in HYPER_VARS)
    common = {"var_names": list(HYPER_VARS), "labeller": _labeller(), "figure_kwargs": {"figsize": (9, 3.6)}}
    if has_prior:
        prior = _thin_for_density(tree["prior"].to_dataset()[list(HYPER_VARS)])
        data = xr.DataTree.from_dict({"posterior": post, "prior": prior})
        pc = az.plot_prior_posterior(data, kind="kde", **common)
        title = f"{tid}: what the data changed — prior vs posterior"
    else:
        pc = az.plot_dist(
            post,
            kind="kde",
            ci_kind="hdi",
            ci_prob=HDI_PROB,
            point_estimate="median",
            visuals={"point_estimate_text": False},  # its raw number would clash with the % axis
            **common,
        )
        title = (
            f"{tid}: posterior only — the prior is improper, so there are no prior draws\n"
            f"(dot: posterior median; bar: {100 * HDI_PROB:.0f} % HDI)"
        )
    for var in HYPER_VARS:
        ax = pc.viz["plot"][var].item()
        ax.set_xlabel(LABELS[var], fontsize=9)
        if var == "mu":
            _percent_axis(ax)
    if has_prior:  # ArviZ's figure legend overlaps the panels; use one inside the last panel
        for legend in list(pc.viz["figure"].item().legends):
            legend.remove()
        lines = pc.viz["dist"][HYPER_VARS[-1]]
        handles = [lines.sel(group=g).item() for g in ("prior", "posterior")]
        pc.viz["plot"][HYPER_VARS[-1]].item().legend(handles, ["prior", "posterior"], frameon=False, fontsize=9)
    pc.add_title(title, size=11)
    _save_pc(pc, path)


def _ppc(tree: xr.DataTree, path: Path, tid: str) -> None:
    """Replicated counts per source with the observed count (matplotlib bar histograms).

    ``az.plot_ppc_dist`` and ``az.plot_ppc_rootogram`` pool all sources into one
    distribution of counts, which mixes sources of different sizes; each source gets
    its own panel here instead.
    """
    from matplotlib.lines import Line2D

    y_rep = tree["posterior_predictive"]["y"]
    y_obs = tree["observed_data"]["y"]
    trials = tree["constant_data"]["trials"]
    sources = [str(s) for s in y_obs["source"].values]
    ncols = min(len(sources), 3)
    nrows = int(np.ceil(len(sources) / ncols))
    fig = _new_figure((4.2 * ncols + 0.4, 3.3 * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, src in zip(axes, sources, strict=False):
        draws = y_rep.sel(source=src).values.ravel().astype(int)
        obs = int(y_obs.sel(source=src))
        n = int(trials.sel(source=src))
        lo = int(min(np.quantile(draws, 0.0005), obs))
        hi = int(max(np.quantile(draws, 0.9995), obs))
        width = max(1, int(np.ceil((hi - lo + 1) / 60)))
        edges = np.arange(lo, hi + width + 1, width) - 0.5
        counts, _ = np.histogram(draws, bins=edges)
        ax.bar(edges[:-1], counts / draws.size, width=width, align="edge", color=_COLORS["theta"], alpha=0.55)
        ax.axvline(obs, color="black", lw=2)
        p_upper = float((draws >= obs).mean())
        ax.set_title(f"{src}\n(n = {n})", fontsize=9.5)
        ax.set_xlabel("count y" if width == 1 else f"count y (bins of {width})")
        ax.legend(
            handles=[
                Line2D([], [], color="black", lw=2, label=f"observed y = {obs}"),
                Line2D([], [], color="none", label=f"replicates ≥ observed: {p_upper:.0%}"),
            ],
            fontsize=8,
            loc="upper right",
            handlelength=1.2,
            facecolor="white",
            edgecolor="none",
            framealpha=0.85,
        )
        ax.set_ylim(0, counts.max() / draws.size * 1.3)  # headroom for the legend
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[len(sources) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("share of replicated data sets")
    fig.suptitle(
        f"{tid}: posterior predictive check — counts replicated by the fitted model (bars) vs observed (line)",
        fontsize=10.5,
    )
    _save(fig, path)


def _rank(tree: xr.DataTree, path: Path, tid: str) -> None:
    """Rank (Δ-ECDF) plots for μ and log κ, thinned by ArviZ's ESS-based factor."""
    import arviz as az

    _pyplot()
    pc = az.plot_rank(
        tree,
        var_names=list(HYPER_VARS),
        thin=True,
        labeller=_labeller(),
        figure_kwargs={"figsize": (9, 3.4)},
    )
    for var in HYPER_VARS:
        pc.viz["plot"][var].item().set_xlabel("fractional rank")
    pc.add_title(
        f"{tid}: rank plots, one line per chain (draws thinned by ESS) — lines should stay near the "
        "middle;\np is a test that the chains agree, p < 0.01 flags a problem",
        size=10,
    )
    _save_pc(pc, path)


def _trace(tree: xr.DataTree, path: Path, tid: str) -> None:
    """Trace and per-chain densities for μ and log κ (``az.plot_trace_dist``), every draw."""
    import arviz as az

    _pyplot()
    pc = az.plot_trace_dist(
        tree,
        var_names=list(HYPER_VARS),
        labeller=_labeller(),
        aes_by_visuals={"trace": ["color"], "dist": ["color"]},
        aes={"color": ["chain"]},  # one colour per chain, as in the rank plot
        visuals={"trace": {"width": 0.6}},
        figure_kwargs={"figsize": (10, 5)},
    )
    _percent_axis(pc.viz["plot"]["mu"].sel(column="dist").item())
    _percent_axis(pc.viz["plot"]["mu"].sel(column="trace").item(), axis="y")
    pc.add_title(f"{tid}: sampler traces (right) and per-chain densities (left)", size=11)
    _save_pc(pc, path)
