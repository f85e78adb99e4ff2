"""Timing of the engine on a large attack graph, against one mal-simulator episode on the same graph.

:func:`benchmark` loads tyrLang 0.0.8's ``huge_model.yml`` (19,708 nodes; ``data/mal/``), draws a
probability per language attack step and posterior draw (so every node of a step varies between
draws, as when a technique's posterior is mapped to that step), pushes the draws through the graph
with :func:`~attackprev.simulation.engine.reach_probability` (1 and 64 episodes per draw) and
:func:`~attackprev.simulation.engine.time_to_compromise`, and runs one mal-simulator episode
(breadth-first attacker, Bernoullis sampled) with the first draw's probabilities, checking that the
engine, given that episode's sampled outcomes, compromises exactly the nodes mal-simulator did.

    python -m attackprev.simulation.bench [--draws 10000] [--malsim-seconds 300]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from attackprev.config import DATA_DIR
from attackprev.simulation.engine import StepDraws, compromised, reach_probability, time_to_compromise
from attackprev.simulation.graph import DEFENSE, AttackGraphArrays, load_attack_graph

MAL_DIR = DATA_DIR / "mal"
LANGUAGE = MAL_DIR / "org.mal-lang.tyrLang-0.0.8.mar"
MODEL = MAL_DIR / "huge_model.yml"
ENTRY = "Network0:access"


def step_draws(graph: AttackGraphArrays, n_draws: int, seed: int = 0) -> StepDraws:
    """Per-draw probabilities for every language attack step of ``graph`` (Beta draws, means 0.9-0.99).

    A step the language already gives a Bernoulli keeps it as a factor (its probability is multiplied in).
    """
    rng = np.random.default_rng(seed)
    groups = [(k, v) for k, v in graph.by_language_step().items() if graph.is_attack[v[0]]]
    mean = rng.uniform(0.9, 0.99, len(groups))
    values = rng.beta(50 * mean, 50 * (1 - mean), size=(n_draws, len(groups)))
    values *= np.array([graph.probability[v[0]] for _, v in groups])
    return StepDraws(nodes=[v for _, v in groups], values=values)


def _malsim_episode(graph: AttackGraphArrays, draws: StepDraws, max_seconds: float | None, seed: int) -> dict:
    """One mal-simulator episode with draw 0's probabilities set as Bernoulli TTCs; compared with the engine."""
    from attackprev.mal.dictionary import import_mal_clients

    import_mal_clients("maltoolbox", "malsim")
    from malsim import AttackerSettings, MalSimulator, MalSimulatorSettings
    from malsim.policies.attackers.searchers import BreadthFirstAttacker

    ag = graph.maltoolbox
    for group, p in zip(draws.nodes, draws.values[0], strict=True):
        for i in np.atleast_1d(group):
            ag.get_node_by_full_name(graph.names[i]).ttc = {
                "type": "function",
                "name": "Bernoulli",
                "arguments": [float(p)],
            }
    t0 = time.perf_counter()
    sim = MalSimulator(
        ag,
        agents=[AttackerSettings(name="a", entry_points=frozenset({ENTRY}), policy=BreadthFirstAttacker)],
        sim_settings=MalSimulatorSettings(seed=seed),
    )
    built = time.perf_counter() - t0
    policy = BreadthFirstAttacker({})
    steps = 0
    t0 = time.perf_counter()
    while not sim.done():
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
        action = policy.get_next_action(sim.agent_states["a"])
        sim.step({"a": [action] if action else []})
        steps += 1
    seconds = time.perf_counter() - t0
    out = {"malsim_build_s": built, "malsim_episode_s": seconds, "malsim_steps": steps, "malsim_done": sim.done()}
    if sim.done():
        state = sim.sim_state.graph_state
        impossible = {n.full_name for n in state.impossible_attack_steps}
        enabled = {n.full_name for n in state.pre_enabled_defenses}
        outcomes = np.array(
            [
                (name in enabled) if graph.node_type[i] == DEFENSE else (name not in impossible)
                for i, name in enumerate(graph.names)
            ]
        )[None, :]
        mine = compromised(graph, [ENTRY], outcomes)[0]
        theirs = np.zeros(graph.n_nodes, bool)
        theirs[[graph.index[n.full_name] for n in sim.agent_states["a"].performed_nodes]] = True
        out["malsim_compromised"] = int(theirs.sum())
        out["engine_same_episode_differences"] = int((mine != theirs).sum())
    return out


def benchmark(
    n_draws: int = 10_000,
    episodes: tuple[int, ...] = (1, 64),
    ttc_episodes: int = 4,
    n_targets: int = 200,
    malsim_seconds: float | None = 300.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Time the engine on tyrLang's huge model and one mal-simulator episode on the same graph.

    Parameters
    ----------
    n_draws
        Posterior draws pushed through the graph.
    episodes
        Episodes per draw to time :func:`reach_probability` with.
    ttc_episodes
        Episodes per draw for :func:`time_to_compromise` (0 skips it).
    n_targets
        Attack steps reported (chosen at random; the work does not depend on it much).
    malsim_seconds
        Cap on the mal-simulator episode (about a minute here); None runs it to the end; 0 skips it.
    seed
        Seed of the draws and of the engine.

    Returns
    -------
    dict
        Seconds of each stage, graph sizes and, when the mal-simulator episode ran to the end, how
        many nodes the engine's result for the same sampled outcomes differs in (0 expected).
    """
    out: dict[str, Any] = {"n_draws": n_draws}
    t0 = time.perf_counter()
    graph = load_attack_graph(LANGUAGE, MODEL)
    out["load_s"] = time.perf_counter() - t0
    out["nodes"] = graph.n_nodes
    out["edges"] = int(graph.parent_idx.size)
    draws = step_draws(graph, n_draws, seed)
    out["varying_nodes"] = int(sum(np.atleast_1d(v).size for v in draws.nodes))
    rng = np.random.default_rng(seed)
    targets = rng.choice(
        np.flatnonzero(graph.is_attack), size=min(n_targets, int(graph.is_attack.sum())), replace=False
    )
    for e in episodes:
        t0 = time.perf_counter()
        res = reach_probability(graph, [ENTRY], draws, episodes_per_draw=e, seed=seed, targets=targets)
        out[f"reach_{e}ep_s"] = time.perf_counter() - t0
        out[f"reach_{e}ep_mean"] = float(res.probability.mean())
    certain = np.where(graph.is_attack, 1.0, graph.probability)  # every attack step possible
    out["reachable_nodes"] = int((reach_probability(graph, [ENTRY], certain).probability[0] > 0).sum())
    if ttc_episodes:
        t0 = time.perf_counter()
        reach_t = time_to_compromise(graph, [ENTRY], draws, episodes_per_draw=ttc_episodes, seed=seed, targets=targets)
        out[f"ttc_{ttc_episodes}ep_s"] = time.perf_counter() - t0
        out["ttc_mean_days"] = float(np.nanmean(reach_t.mean_time))
    if malsim_seconds is None or malsim_seconds > 0:
        out.update(_malsim_episode(graph, draws, malsim_seconds, seed))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--malsim-seconds", type=float, default=300.0, help="0 skips mal-simulator; -1: no cap")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    cap = None if args.malsim_seconds < 0 else args.malsim_seconds
    figures = benchmark(n_draws=args.draws, malsim_seconds=cap)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
