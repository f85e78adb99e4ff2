"""The attack-simulation engine against mal-simulator, on the same graphs: prints JSON figures.

1. tyrLang 0.0.8's ``huge_model.yml`` (19,708 nodes): 10,000 posterior draws, each giving every
   language attack step its own probability, through :func:`attackprev.simulation.engine.reach_probability`
   (1 and 64 episodes per draw) and the time to compromise; one mal-simulator episode on the same graph
   (:func:`attackprev.simulation.bench.benchmark`).
2. coreLang 1.0.0's ``simple_test_model.yml`` (545 nodes), the graph of the agreement test: 10,000 draws of
   one episode each through the engine, against mal-simulator episodes with the same probabilities.
"""

from __future__ import annotations

import json
import time

import numpy as np

from attackprev.config import DATA_DIR
from attackprev.simulation.bench import benchmark
from attackprev.simulation.engine import reach_probability
from attackprev.simulation.graph import load_attack_graph

CORELANG = DATA_DIR / "mal" / "org.mal-lang.coreLang-1.0.0.mar"
MODEL = DATA_DIR / "mal" / "simple_test_model.yml"
ENTRY = "OS App:attemptFullAccessFromSupplyChainCompromise"
DRAWS = 10_000
MALSIM_EPISODES = 30


def corelang() -> dict:
    from malsim import AttackerSettings, MalSimulator, MalSimulatorSettings
    from malsim.policies.attackers.searchers import BreadthFirstAttacker

    g = load_attack_graph(CORELANG, MODEL)
    rng = np.random.default_rng(0)
    steps = np.flatnonzero(g.is_attack & (g.probability == 1.0))
    steps = steps[steps != g.node(ENTRY)]
    p = g.probability.copy()
    p[steps] = rng.uniform(0.3, 0.9, steps.size)
    draws = np.clip(p + rng.normal(0, 0.05, (DRAWS, p.size)) * g.is_attack, 0, 1)  # a posterior per step
    t0 = time.perf_counter()
    res = reach_probability(g, [ENTRY], draws, episodes_per_draw=1, seed=0)
    engine_s = time.perf_counter() - t0
    ag = load_attack_graph(CORELANG, MODEL).maltoolbox
    for i in steps:
        ag.get_node_by_full_name(g.names[i]).ttc = {"type": "function", "name": "Bernoulli", "arguments": [float(p[i])]}
    times = []
    for k in range(MALSIM_EPISODES):
        t0 = time.perf_counter()
        sim = MalSimulator(
            ag,
            agents=[AttackerSettings(name="a", entry_points=frozenset({ENTRY}), policy=BreadthFirstAttacker)],
            sim_settings=MalSimulatorSettings(seed=k),
        )
        policy = BreadthFirstAttacker({})
        while not sim.done():
            action = policy.get_next_action(sim.agent_states["a"])
            sim.step({"a": [action] if action else []})
        times.append(time.perf_counter() - t0)
    return {
        "nodes": g.n_nodes,
        "draws": DRAWS,
        "engine_s": engine_s,
        "engine_mean_reached": float(res.probability.mean()),
        "malsim_episodes": MALSIM_EPISODES,
        "malsim_median_s": float(np.median(times)),
        "malsim_min_s": float(np.min(times)),
        "malsim_max_s": float(np.max(times)),
    }


if __name__ == "__main__":
    figures = {"corelang": corelang(), "huge": benchmark(n_draws=DRAWS, malsim_seconds=120.0)}
    print(json.dumps(figures))  # one line: benchmarks/run.py reads the last line
