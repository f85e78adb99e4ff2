"""Posterior draws through a MAL attack graph: how likely, and how soon, an attacker reaches each target.

Each of N joint draws from the multi-source posterior sets the probability of every technique at
once (so what the techniques share stays shared); every attack step the step table maps gets its
technique's probability on the chosen family's scale, the others keep the language's own TTC.
The engine (:mod:`attackprev.simulation.engine`, mal-simulator's semantics) then gives, per draw,
the probability that each target is reached, estimated from M episodes. Beside that
distribution: the answer with the language's own values and with the posterior means plugged in,
the time to compromise where steps carry time factors, and which techniques' uncertainty moves
the answer most (:mod:`attackprev.analysis.sensitivity`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attackprev.analysis.sensitivity import noise_variance, rank_inputs
from attackprev.config import DEFAULT_SEED, DEFAULT_TARGET
from attackprev.errors import InputError
from attackprev.evidence.attack import attack_table
from attackprev.inference.summaries import draw_summary
from attackprev.inference.synthesis import SynthesisResult, target_draws
from attackprev.simulation.engine import StepDraws, reach_probability, time_to_compromise
from attackprev.simulation.graph import AttackGraphArrays
from attackprev.simulation.techniques import StepTechniques, map_nodes

#: Above this share of Monte Carlo noise in the spread of P(reached) across draws, inputs are not ranked.
MAX_NOISE_SHARE = 0.5
#: The point-value times use this fraction of ``point_episodes`` (float times cost 64 times the memory of bits).
TTC_POINT_DIVISOR = 8


@dataclass(frozen=True)
class SimulationSettings:
    """How many draws and episodes a simulation uses, its seed and the scale of the probabilities.

    Attributes
    ----------
    draws
        Joint posterior draws pushed through the graph (taken without replacement while the fit has that
        many, with replacement beyond).
    episodes
        Simulated episodes per draw for P(reached).
    point_episodes
        Episodes for each point-value answer (the language's own values, the posterior means).
    ttc_episodes
        Episodes per draw for the time to compromise.
    seed
        Seed of the draws' choice and of every simulated episode.
    scale
        The family whose scale the techniques' probabilities are on.
    """

    draws: int = 2000
    episodes: int = 2048
    point_episodes: int = 2**17
    ttc_episodes: int = 64
    seed: int = DEFAULT_SEED
    scale: str = DEFAULT_TARGET


@dataclass(frozen=True)
class PosteriorDraws:
    """Joint posterior draws of every technique's probability on one family's scale, and where they came from.

    Attributes
    ----------
    techniques
        The techniques (columns).
    p
        Shape ``(draws, techniques)``.
    scale
        The family on whose scale they are.
    scale_description
        The population that family's sources count.
    data_sha256, settings
        The fit's data digest and sampler settings, for the report's Reproduce line.
    passed, problems
        Whether the fit passed its sampler diagnostics, and if not, why.
    """

    techniques: list[str]
    p: np.ndarray
    scale: str
    scale_description: str
    data_sha256: str
    settings: str
    passed: bool
    problems: list[str]

    @classmethod
    def from_synthesis(cls, result: SynthesisResult, scale: str, scale_description: str) -> PosteriorDraws:
        """The multi-source fit's draws on ``scale``'s scale."""
        record = result.record()
        fit = record["settings"]
        return cls(
            techniques=list(result.data.techniques),
            p=target_draws(result, scale),
            scale=scale,
            scale_description=scale_description,
            data_sha256=record["data_sha256"],
            settings=f"{fit['chains']} chains x {fit['draws']} draws, seed {fit['seed']}",
            passed=bool(result.passed),
            problems=list(result.diagnostics.problems),
        )


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def choose_draws(total: int, n: int, seed: int) -> np.ndarray:
    """Which of the fit's ``total`` draws to use: ``n`` of them, without replacement when possible."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    if n <= total:
        return np.sort(rng.choice(total, size=n, replace=False))
    return rng.choice(total, size=n, replace=True)


def simulate(
    graph: AttackGraphArrays,
    steps: StepTechniques,
    entry_points: list[str],
    targets: list[str],
    posterior: PosteriorDraws,
    settings: SimulationSettings,
    *,
    language: Path,
    model: Path,
    command: str,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Run the simulation; return its summary (everything the report states) and each target's per-draw P(reached).

    Raises
    ------
    InputError
        If no step of the graph is mapped, a mapped technique is not in the fit, or a name is unknown.
    """
    entries = list(dict.fromkeys(entry_points))
    targets = list(dict.fromkeys(targets))
    graph.nodes(entries + targets)  # unknown names: one line, before any work
    node_tech = map_nodes(graph, steps)
    if not node_tech:
        raise InputError("no attack step of the graph is mapped to a technique by this step table", steps.path)
    fitted = posterior.techniques
    missing = sorted({t for t in node_tech.values() if t not in fitted})
    if missing:
        raise InputError(f"technique(s) {', '.join(missing)} not in the multi-source fit", steps.path)
    techniques = sorted(set(node_tech.values()))
    nodes = np.array(sorted(node_tech), dtype=np.int64)
    cols = np.array([techniques.index(node_tech[i]) for i in nodes])

    p_all = posterior.p
    chosen = choose_draws(p_all.shape[0], settings.draws, settings.seed)
    theta = p_all[np.ix_(chosen, [fitted.index(t) for t in techniques])]  # (draws, techniques)
    base = graph.probability.copy()

    seeds = [[settings.seed, 2, k] for k in range(6)]  # one stream per run of the engine
    reach = reach_probability(
        graph, entries, StepDraws(nodes, theta[:, cols], base), settings.episodes, seeds[0], targets
    )
    plug = base.copy()
    plug[nodes] = theta.mean(axis=0)[cols]
    language_point = reach_probability(graph, entries, base, settings.point_episodes, seeds[1], targets)
    plug_point = reach_probability(graph, entries, plug, settings.point_episodes, seeds[2], targets)

    timed = any(s.time is not None for i, s in enumerate(graph.steps) if graph.is_attack[i])
    ttc = ttc_lang = ttc_plug = None
    if timed:
        varying = StepDraws(nodes, theta[:, cols], base)
        ttc = time_to_compromise(graph, entries, varying, settings.ttc_episodes, seeds[3], targets, keep_times=True)
        n = settings.point_episodes // TTC_POINT_DIVISOR
        ttc_lang = time_to_compromise(graph, entries, base, n, seeds[4], targets, keep_times=True)
        ttc_plug = time_to_compromise(graph, entries, plug, n, seeds[5], targets, keep_times=True)

    names = attack_table()
    counts = {t: sum(1 for v in node_tech.values() if v == t) for t in techniques}
    target_rows = []
    draws_out = {}
    for j, target in enumerate(targets):
        y = reach.probability[:, j]
        draws_out[target] = y
        s = draw_summary(y)
        noise = noise_variance(y, settings.episodes)
        var = float(np.var(y))
        ranking = rank_inputs(theta, techniques, y, settings.episodes)
        ranked = var > 0 and noise / var < MAX_NOISE_SHARE
        for r in ranking:
            r["name"] = names[r["input"]].display_name
            r["steps"] = counts[r["input"]]
            if not ranked:  # the spread across draws is mostly Monte Carlo noise: no ranking to read
                r["share"] = None
        row = {
            "target": target,
            "posterior": {
                "mean": s["mean"],
                "median": s["median"],
                "sd": s["sd"],
                "hdi_94": s["hdi_94"],
                "mc_se": float(np.sqrt(noise)),
                "noise_share": float(noise / var) if var > 0 else 0.0,
            },
            "language": _point(language_point, j),
            "plug_in": _point(plug_point, j),
            "sensitivity": ranking,
            "ttc": None,
        }
        if ttc is not None:
            row["ttc"] = _ttc_row(ttc, ttc_lang, ttc_plug, j)
        target_rows.append(row)

    technique_rows = []
    for k, t in enumerate(techniques):
        on = [int(i) for i in nodes[cols == k]]
        own = sorted({f"{base[i]:.4g}" for i in on})
        technique_rows.append(
            {
                "technique_id": t,
                "name": names[t].display_name,
                "steps": len(on),
                **{key: v for key, v in draw_summary(theta[:, k]).items() if key in ("mean", "hdi_94")},
                "language": ", ".join(own),
            }
        )
    attack = graph.is_attack
    unmapped = attack.copy()
    unmapped[nodes] = False
    summary = {
        "language": {"file": str(language), "sha256": sha256(language)},
        "model": {"file": str(model), "name": Path(model).stem, "sha256": sha256(model)},
        "steps": {"file": steps.path, "sha256": hashlib.sha256(steps.raw).hexdigest()},
        "entry_points": entries,
        "scale": posterior.scale,
        "scale_description": posterior.scale_description,
        "draws": settings.draws,
        "draws_with_replacement": bool(settings.draws > p_all.shape[0]),
        "episodes": settings.episodes,
        "point_episodes": settings.point_episodes,
        "ttc_episodes": settings.ttc_episodes if timed else None,
        "ttc_point_episodes": settings.point_episodes // TTC_POINT_DIVISOR if timed else None,
        "seed": settings.seed,
        "graph": {
            "nodes": graph.n_nodes,
            "attack_steps": int(attack.sum()),
            "and_steps": int(graph.is_and.sum()),
            "mapped_nodes": int(nodes.size),
            "unmapped_probabilistic": int((unmapped & (base < 1.0)).sum()),
        },
        "techniques": technique_rows,
        "targets": target_rows,
        "posterior": {
            "data_sha256": posterior.data_sha256,
            "settings": posterior.settings,
            "diagnostics_passed": posterior.passed,
            "problems": posterior.problems,
        },
        "command": command,
    }
    return summary, draws_out


def _point(res, j: int) -> dict:
    p = float(res.probability[0, j])
    return {"p": p, "se": float(np.sqrt(p * (1 - p) / res.episodes_per_draw))}


def _ttc_row(ttc, lang, plug, j: int) -> dict:
    """The time to compromise of target ``j``: its distribution over all episodes in which it is reached."""
    return {"posterior": _times(ttc, j), "language": _times(lang, j), "plug_in": _times(plug, j)}


def _times(res, j: int) -> dict:
    t = res.times[:, :, j].ravel()
    t = t[np.isfinite(t)]
    if t.size < 20:
        return {"mean": None, "median": None, "hdi_94": [None, None], "episodes": int(t.size)}
    s = draw_summary(t)
    return {"mean": s["mean"], "median": s["median"], "hdi_94": s["hdi_94"], "episodes": int(t.size)}


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
