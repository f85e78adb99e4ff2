"""The engine and mal-simulator give the same compromise probabilities on the same graph and probabilities.

coreLang 1.0.0 with mal-simulator's ``simple_test_model.yml``: Bernoulli probabilities are put on
about a third of the attack steps an attacker can reach from the entry point, and on the defenses
that guard them, in memory on mal-toolbox's graph; mal-simulator runs breadth-first episodes
(``TTCMode.DISABLED``, Bernoullis sampled at each reset) until the attacker has nothing left to try.
Two checks: per node, the engine's probability equals mal-simulator's share of episodes within
Monte Carlo error; and, episode by episode, the engine given mal-simulator's sampled outcomes
(which steps were possible, which defenses enabled) compromises exactly the same nodes.
"""

from __future__ import annotations

import numpy as np
import pytest

from attackprev.config import DATA_DIR
from attackprev.simulation.engine import compromised, reach_probability
from attackprev.simulation.graph import DEFENSE, NODE_TYPES, build_graph, load_attack_graph

pytestmark = pytest.mark.slow

MAL = DATA_DIR / "mal"
CORELANG = MAL / "org.mal-lang.coreLang-1.0.0.mar"
MODEL = MAL / "simple_test_model.yml"
ENTRY = "OS App:attemptFullAccessFromSupplyChainCompromise"
MALSIM_EPISODES = 500
ENGINE_EPISODES = 64 * 200


def _probabilities(g) -> np.ndarray:
    """Bernoulli(0.3-0.8) on a third of the reachable attack steps, (0.2-0.6) on the defenses guarding them."""
    certain = np.where(g.is_attack, 1.0, g.probability)
    reach = reach_probability(g, [ENTRY], certain, episodes_per_draw=64).probability[0] > 0
    rng = np.random.default_rng(7)
    p = g.probability.copy()
    steps = np.flatnonzero(reach & g.is_attack & (g.probability == 1.0))
    steps = steps[steps != g.node(ENTRY)]
    chosen = rng.choice(steps, size=int(0.3 * steps.size), replace=False)
    p[chosen] = np.round(rng.uniform(0.3, 0.8, chosen.size), 3)
    guards = [
        d
        for d in np.flatnonzero(g.node_type == DEFENSE)
        if reach[g.child_idx[g.child_ptr[d] : g.child_ptr[d + 1]]].any()
    ]
    p[guards] = np.round(rng.uniform(0.2, 0.6, len(guards)), 3)
    return p


@pytest.fixture(scope="module")
def runs():
    """mal-simulator's episodes: per episode, the sampled outcomes and the compromised nodes."""
    from malsim import AttackerSettings, MalSimulator, MalSimulatorSettings
    from malsim.policies.attackers.searchers import BreadthFirstAttacker

    g = load_attack_graph(CORELANG, MODEL)
    p = _probabilities(g)
    ag = load_attack_graph(CORELANG, MODEL).maltoolbox  # a fresh mal-toolbox graph to edit for mal-simulator
    for i in np.flatnonzero(p != g.probability):
        ag.get_node_by_full_name(g.names[i]).ttc = {"type": "function", "name": "Bernoulli", "arguments": [float(p[i])]}
    outcomes = np.zeros((MALSIM_EPISODES, len(g)), bool)
    done = np.zeros((MALSIM_EPISODES, len(g)), bool)
    for k in range(MALSIM_EPISODES):
        sim = MalSimulator(
            ag,
            agents=[AttackerSettings(name="a", entry_points=frozenset({ENTRY}), policy=BreadthFirstAttacker)],
            sim_settings=MalSimulatorSettings(seed=1000 + k),
        )
        policy = BreadthFirstAttacker({})
        while not sim.done():
            action = policy.get_next_action(sim.agent_states["a"])
            sim.step({"a": [action] if action else []})
        state = sim.sim_state.graph_state
        impossible = {n.full_name for n in state.impossible_attack_steps}
        enabled = {n.full_name for n in state.pre_enabled_defenses}
        for i, name in enumerate(g.names):
            outcomes[k, i] = (name in enabled) if g.node_type[i] == DEFENSE else (name not in impossible)
        done[k, [g.index[n.full_name] for n in sim.agent_states["a"].performed_nodes]] = True
    return {"graph": g, "p": p, "outcomes": outcomes, "compromised": done}


def _disagreements(engine: np.ndarray, malsim: np.ndarray, n_engine: int, n_malsim: int) -> np.ndarray:
    """Nodes whose two estimates differ by more than 4 combined standard errors (variance from the engine's)."""
    se = np.sqrt(engine * (1 - engine) * (1 / n_engine + 1 / n_malsim))
    return np.flatnonzero(np.abs(engine - malsim) > 4 * se + 1e-9)


def test_compromise_probabilities_agree_with_malsim(runs):
    g, p = runs["graph"], runs["p"]
    ours = reach_probability(g, [ENTRY], p, episodes_per_draw=ENGINE_EPISODES, seed=3).probability[0]
    theirs = runs["compromised"].mean(axis=0)
    bad = _disagreements(ours, theirs, ENGINE_EPISODES, MALSIM_EPISODES)
    assert bad.size == 0, [(g.names[i], ours[i], theirs[i]) for i in bad]
    # the test has power: many nodes are neither (almost) always nor never compromised
    middle = (ours > 0.05) & (ours < 0.95)
    assert middle.sum() >= 60, middle.sum()
    assert ((theirs > 0.05) & (theirs < 0.95)).sum() >= 60
    assert runs["compromised"].sum(axis=1).std() > 5  # episodes differ


def test_an_engine_treating_and_steps_as_or_steps_fails_the_same_comparison(runs):
    g, p = runs["graph"], runs["p"]
    wrong = build_graph(
        g.names,
        ["or" if NODE_TYPES[t] == "and" else NODE_TYPES[t] for t in g.node_type],
        [(int(q), c) for c in range(len(g)) for q in g.parents(c)],
        ttc=g.ttc,
        existence=g.existence,
    )
    ours = reach_probability(wrong, [ENTRY], p, episodes_per_draw=ENGINE_EPISODES, seed=3).probability[0]
    bad = _disagreements(ours, runs["compromised"].mean(axis=0), ENGINE_EPISODES, MALSIM_EPISODES)
    assert bad.size >= 20
    assert not np.array_equal(compromised(wrong, [ENTRY], runs["outcomes"]), runs["compromised"])


def test_each_episode_agrees_exactly_given_malsims_outcomes(runs):
    ours = compromised(runs["graph"], [ENTRY], runs["outcomes"])
    assert np.array_equal(ours, runs["compromised"])
    # and mal-simulator's sampled outcomes follow the probabilities set (a check of the harness)
    p, outcomes = runs["p"], runs["outcomes"]
    varied = np.flatnonzero((p > 0) & (p < 1))
    freq = outcomes[:, varied].mean(axis=0)
    se = np.sqrt(p[varied] * (1 - p[varied]) / MALSIM_EPISODES)
    assert np.all(np.abs(freq - p[varied]) < 4.5 * se)
