"""The engine on small graphs with known answers, against a literal transcription of mal-simulator's rules."""

from __future__ import annotations

import numpy as np
import pytest

from attackprev.errors import InputError
from attackprev.simulation.engine import (
    StepDraws,
    compromised,
    earliest_times,
    reach_probability,
    time_to_compromise,
)
from attackprev.simulation.graph import AND, DEFENSE, EXIST, NOT_EXIST, OR, AttackGraphArrays, build_graph

EPISODES = 64 * 250  # one draw: standard errors below 0.004


def fn(name, *args):
    return {"type": "function", "name": name, "arguments": [float(a) for a in args]}


def graph(spec: str, ttc: dict | None = None, existence: dict | None = None):
    """Graph from ``"e:or a:or t:and | e>a a>t"``: nodes with types, then parent>child edges."""
    nodes, edges = spec.split("|")
    names, types = zip(*(n.split(":") for n in nodes.split()), strict=True)
    ttc = ttc or {}
    existence = existence or {}
    return build_graph(
        names,
        types,
        [tuple(e.split(">")) for e in edges.split()],
        ttc=[ttc.get(n) for n in names],
        existence=[existence.get(n, False) for n in names],
    )


def probs(g, **p):
    out = g.probability.copy()
    for name, value in p.items():
        out[g.node(name)] = value
    return out


def check(result, g, exact: dict, k: float = 4.0):
    """Each named target's probability is within k standard errors (of the exact value) of it."""
    for name, value in exact.items():
        got = result.probability[0, result.targets.index(name)]
        se = np.sqrt(value * (1 - value) / result.episodes_per_draw)
        assert abs(got - value) <= k * se + 1e-12, (name, got, value, se)


# ----------------------------------------------------------------------------- known answers
def test_a_chain_of_or_steps_multiplies():
    g = graph("e:or a:or b:or c:or | e>a a>b b>c")
    r = reach_probability(g, ["e"], probs(g, a=0.8, b=0.5, c=0.6), episodes_per_draw=EPISODES, seed=1)
    check(r, g, {"e": 1, "a": 0.8, "b": 0.4, "c": 0.24})
    assert r.probability.shape == r.stderr.shape == (1, 4)
    assert r.stderr[0, 3] == pytest.approx(np.sqrt(0.24 * 0.76 / EPISODES), rel=0.05)


def test_two_parallel_paths_and_an_and_step():
    g = graph("e:or a:or b:or t:or u:and | e>a e>b a>t b>t a>u b>u")
    r = reach_probability(g, ["e"], probs(g, a=0.3, b=0.6, u=0.9), episodes_per_draw=EPISODES, seed=2)
    check(r, g, {"t": 1 - 0.7 * 0.4, "u": 0.3 * 0.6 * 0.9})


def test_a_cycle_is_iterated_to_its_fixed_point():
    # a <-> b: b is reached only through a; c only through b; a cycle adds nothing by itself
    g = graph("e:or a:or b:or c:or | e>a a>b b>a b>c")
    r = reach_probability(g, ["e"], probs(g, a=0.5, b=0.7, c=0.3), episodes_per_draw=EPISODES, seed=3)
    check(r, g, {"a": 0.5, "b": 0.35, "c": 0.105})
    # x reaches y only around the loop y -> z -> y, entered from a: P(y) = a * y
    g = graph("e:or a:or y:or z:or | e>a a>y y>z z>y")
    r = reach_probability(g, ["e"], probs(g, a=0.6, y=0.5, z=0.9), episodes_per_draw=EPISODES, seed=4)
    check(r, g, {"y": 0.3, "z": 0.27})
    # an AND step whose other parent needs the AND step itself is never reached
    g = graph("e:or x:or t:and y:or | e>x x>t y>t t>y")
    r = reach_probability(g, ["e"], probs(g), episodes_per_draw=64)
    assert r.probability[0, r.targets.index("t")] == 0 and r.probability[0, r.targets.index("y")] == 0


def test_certain_and_impossible_steps_are_exact():
    g = graph("e:or a:or b:or c:or | e>a a>b b>c")
    r = reach_probability(g, ["e"], probs(g, a=1.0, b=0.0, c=1.0), episodes_per_draw=640, seed=5)
    assert r.probability[0].tolist() == [1, 1, 0, 0]
    assert np.all(r.stderr == 0)
    # an entry point is compromised at the start even if its own probability is 0 (as in mal-simulator)
    r = reach_probability(g, ["a"], probs(g, a=0.0), episodes_per_draw=64)
    assert r.probability[0].tolist() == [0, 1, 1, 1]


def test_defenses_and_existence_steps_follow_malsim():
    g = graph(
        "e:or d:defense a:and o:or x:exist n:notExist b:and c:and | e>a d>a e>o d>o x>b e>b n>c e>c",
        existence={"x": False, "n": True},
    )
    # an enabled defense blocks its AND child; an OR child with a compromised parent is not blocked
    r = reach_probability(g, ["e"], probs(g, d=1.0), episodes_per_draw=64)
    assert r.probability[0, [g.node("a"), g.node("o")]].tolist() == [0, 1]
    # exist whose requirement is missing blocks; notExist whose requirement is present blocks
    assert r.probability[0, [g.node("b"), g.node("c")]].tolist() == [0, 0]
    r = reach_probability(g, ["e"], probs(g, d=0.3), episodes_per_draw=EPISODES, seed=6)
    check(r, g, {"a": 0.7, "o": 1.0})
    g2 = graph("e:or x:exist n:notExist b:and c:and | x>b e>b n>c e>c", existence={"x": True, "n": False})
    r = reach_probability(g2, ["e"], probs(g2), episodes_per_draw=64)
    assert r.probability[0, [g2.node("b"), g2.node("c")]].tolist() == [1, 1]


def test_unnecessary_parents_of_an_and_step():
    # u's only parent is a defense: u is unnecessary while the defense is disabled, so t needs only a;
    # while it is enabled, u is necessary and cannot be compromised, so t is not reached
    g = graph("e:or a:or d:defense u:or t:and | e>a d>u a>t u>t")
    for p_defense, expected in ((0.0, 0.8), (1.0, 0.0), (0.3, 0.7 * 0.8)):
        r = reach_probability(g, ["e"], probs(g, a=0.8, d=p_defense), episodes_per_draw=EPISODES, seed=7)
        check(r, g, {"t": expected, "u": 0.0})


def test_episodes_per_draw_not_a_multiple_of_64_and_one_per_draw():
    g = graph("e:or a:or b:or | e>a a>b")
    r = reach_probability(g, ["e"], probs(g, a=0.5, b=0.5), episodes_per_draw=10_001, seed=8)
    check(r, g, {"b": 0.25})
    many = np.tile(probs(g, a=0.5, b=0.5), (6000, 1))
    r = reach_probability(g, ["e"], many, episodes_per_draw=1, seed=9)
    assert set(np.unique(r.probability)) <= {0.0, 1.0} and np.all(r.stderr == 0)
    mean, se = r.pooled()
    assert abs(mean[2] - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 6000) and se[2] == pytest.approx(
        np.sqrt(0.25 * 0.75 / 6000), rel=0.1
    )


# ----------------------------------------------------------------------------- draws, seeds, inputs
def test_each_draw_uses_its_own_probabilities():
    g = graph("e:or a:or b:or | e>a a>b")
    draws = np.array([probs(g, a=0.9, b=0.9), probs(g, a=0.2, b=0.5), probs(g, a=0.6, b=0.1)])
    r = reach_probability(g, ["e"], draws, episodes_per_draw=64 * 100, seed=10, targets=["b"])
    assert r.targets == ("b",) and r.probability.shape == (3, 1)
    exact = [0.81, 0.10, 0.06]
    se = np.sqrt(np.array(exact) * (1 - np.array(exact)) / (64 * 100))
    assert np.all(np.abs(r.probability[:, 0] - exact) <= 4 * se)


def test_the_same_seed_gives_the_same_result_and_another_seed_another():
    g = graph("e:or a:or b:and c:or | e>a a>b e>b b>c a>c")
    p = np.tile(probs(g, a=0.5, b=0.5, c=0.5), (20, 1))
    one = reach_probability(g, ["e"], p, episodes_per_draw=128, seed=11)
    assert np.array_equal(one.probability, reach_probability(g, ["e"], p, episodes_per_draw=128, seed=11).probability)
    assert not np.array_equal(
        one.probability, reach_probability(g, ["e"], p, episodes_per_draw=128, seed=12).probability
    )
    # chunking does not change the answer's distribution, only which numbers are drawn
    small = reach_probability(g, ["e"], p, episodes_per_draw=128, seed=11, chunk_bytes=64)
    assert abs(small.probability.mean() - one.probability.mean()) < 0.05


def test_step_draws_equal_the_full_matrix():
    g = graph("e:or a1:or a2:or b:or | e>a1 e>a2 a1>b a2>b")
    rng = np.random.default_rng(0)
    col = rng.uniform(0.1, 0.9, (50, 2))
    full = np.tile(g.probability, (50, 1))
    full[:, [g.node("a1"), g.node("a2")]] = col[:, [0]]  # a1 and a2 share one column (one language step)
    full[:, g.node("b")] = col[:, 1]
    grouped = StepDraws(nodes=[["a1", "a2"], "b"], values=col)
    a = reach_probability(g, ["e"], full, episodes_per_draw=64, seed=13)
    b = reach_probability(g, ["e"], grouped, episodes_per_draw=64, seed=13)
    assert np.array_equal(a.probability, b.probability)


def test_bad_inputs_are_one_line_errors():
    g = graph("e:or d:defense a:or | e>a")
    with pytest.raises(InputError, match=r"expected \(n_draws, 3\)"):
        reach_probability(g, ["e"], np.ones((2, 4)))
    with pytest.raises(InputError, match=r"probabilities in \[0, 1\]"):
        reach_probability(g, ["e"], np.array([1.0, 0.5, 1.2]))
    with pytest.raises(InputError, match="no attack-graph node named 'x'"):
        reach_probability(g, ["x"], g.probability)
    with pytest.raises(InputError, match="entry point d is not an attack step"):
        reach_probability(g, ["d"], g.probability)
    with pytest.raises(InputError, match="more than one column"):
        reach_probability(g, ["e"], StepDraws(nodes=["a", ["a"]], values=np.ones((1, 2))))
    with pytest.raises(InputError, match="episodes_per_draw"):
        reach_probability(g, ["e"], g.probability, episodes_per_draw=0)


# ----------------------------------------------------------------------------- against the reference
# A literal, one-node-at-a-time transcription of mal-simulator 3.3's rules: ``graph_utils`` (blocked,
# necessary, traversable) and ``graph_processing.calculate_necessity`` on plain Python sets, with an
# attacker that takes any traversable node until none is left (what a breadth-first attacker ends with).
def reference_compromised(graph: AttackGraphArrays, entries: list[int], outcome: np.ndarray) -> set[int]:
    """The nodes compromised in one episode: ``outcome[i]`` is attack step i possible / defense i enabled."""
    t = graph.node_type
    parents = [set(graph.parents(i).tolist()) for i in range(graph.n_nodes)]
    children = [set() for _ in range(graph.n_nodes)]
    for c, ps in enumerate(parents):
        for p in ps:
            children[p].add(c)
    enabled = {i for i in range(graph.n_nodes) if t[i] == DEFENSE and outcome[i]}
    impossible = {i for i in range(graph.n_nodes) if t[i] <= AND and not outcome[i]}

    def evaluate_necessity(i: int, nec: dict[int, bool]) -> bool:
        if t[i] == EXIST:
            return not graph.existence[i]
        if t[i] == NOT_EXIST:
            return bool(graph.existence[i])
        if t[i] == DEFENSE:
            return i in enabled
        if t[i] == OR:
            return all(nec[p] for p in parents[i]) or not parents[i]
        return any(nec[p] for p in parents[i]) or not parents[i]

    nec = dict.fromkeys(range(graph.n_nodes), True)

    def propagate(i: int) -> None:
        for c in children[i]:
            v = evaluate_necessity(c, nec)
            if v != nec[c]:
                nec[c] = v
                propagate(c)

    for i in range(graph.n_nodes):
        if t[i] in (EXIST, NOT_EXIST, DEFENSE):
            nec[i] = evaluate_necessity(i, nec)
            if not nec[i]:
                propagate(i)

    def blocks_children(p: int) -> bool:
        if t[p] == EXIST:
            return not graph.existence[p]
        if t[p] == NOT_EXIST:
            return bool(graph.existence[p])
        if t[p] == DEFENSE:
            return p in enabled
        return False

    def blocked(i: int) -> bool:
        if t[i] == AND:
            return i in impossible or any(blocks_children(p) for p in parents[i])
        return i in impossible or all(blocks_children(p) for p in parents[i])

    def traversable(i: int, performed: set[int]) -> bool:
        if t[i] > AND or blocked(i) or not parents[i] & performed:
            return False
        if t[i] == OR:
            return True
        return all(p in performed for p in parents[i] if nec[p])

    performed = set(entries)
    while True:
        surface = {c for p in performed for c in children[p] if c not in performed and traversable(c, performed)}
        if not surface:
            return performed
        performed.add(min(surface))


def reference_times(graph: AttackGraphArrays, entries: list[int], outcome: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Earliest times in one episode by relaxing every node until nothing changes (Bellman-Ford style).

    An OR step takes its own time after its earliest compromised parent, an AND step after its
    latest necessary attack-step parent (its earliest parent when none is necessary); the set of
    nodes with a finite time is :func:`reference_compromised`'s.
    """
    reached = reference_compromised(graph, entries, outcome)
    t = graph.node_type
    times = np.full(graph.n_nodes, np.inf)
    times[entries] = 0.0
    # necessity as the engine's static rule would give it, recomputed here from the reference
    enabled = {i for i in range(graph.n_nodes) if t[i] == DEFENSE and outcome[i]}
    nec = _necessity(graph, enabled)
    changed = True
    while changed:
        changed = False
        for i in sorted(reached - set(entries)):
            ps = [p for p in graph.parents(i).tolist() if t[p] <= AND]
            if t[i] == OR:
                new = own[i] + min(times[p] for p in ps)
            else:
                need = [times[p] for p in ps if nec[p]]
                new = own[i] + (max(need) if need else min(times[p] for p in ps))
            if new < times[i]:
                times[i] = new
                changed = True
    return times


def _necessity(graph: AttackGraphArrays, enabled: set[int]) -> list[bool]:
    t = graph.node_type
    nec = [True] * graph.n_nodes
    for i in range(graph.n_nodes):
        if t[i] == EXIST:
            nec[i] = not graph.existence[i]
        elif t[i] == NOT_EXIST:
            nec[i] = bool(graph.existence[i])
        elif t[i] == DEFENSE:
            nec[i] = i in enabled
    changed = True
    while changed:
        changed = False
        for i in range(graph.n_nodes):
            ps = graph.parents(i).tolist()
            if t[i] > AND or not ps:
                continue
            v = all(nec[p] for p in ps) if t[i] == OR else any(nec[p] for p in ps)
            if v != nec[i]:
                nec[i] = v
                changed = True
    return nec


def _random_graph(rng, n):
    types = rng.choice(["or", "and", "defense", "exist", "notExist"], size=n, p=[0.45, 0.3, 0.13, 0.06, 0.06])
    types[0] = "or"
    m = int(rng.integers(n, 3 * n))
    edges = [(int(a), int(b)) for a, b in zip(rng.integers(0, n, m), rng.integers(0, n, m), strict=True)]
    edges = [(a, b) for a, b in edges if types[b] in ("or", "and")]  # self-loops and cycles included
    return build_graph([f"n{i}" for i in range(n)], list(types), edges, existence=list(rng.random(n) < 0.5))


def test_compromised_sets_equal_a_literal_transcription_of_malsim():
    rng = np.random.default_rng(14)
    for _ in range(150):
        g = _random_graph(rng, int(rng.integers(3, 25)))
        attack = np.flatnonzero(g.is_attack)
        entries = sorted({0, *rng.choice(attack, int(rng.integers(0, 3))).tolist()})
        outcomes = rng.random((30, len(g))) < rng.uniform(0.2, 1, len(g))
        mine = compromised(g, entries, outcomes)
        for k in range(len(outcomes)):
            assert set(np.flatnonzero(mine[k])) == reference_compromised(g, entries, outcomes[k])


def test_earliest_times_equal_a_reference_relaxation():
    rng = np.random.default_rng(15)
    for _ in range(80):
        g = _random_graph(rng, int(rng.integers(3, 20)))
        entries = [0]
        outcomes = rng.random((15, len(g))) < rng.uniform(0.3, 1, len(g))
        own = rng.exponential(1.0, outcomes.shape) * (rng.random(outcomes.shape) < 0.8)
        mine = earliest_times(g, entries, outcomes, own)
        assert np.array_equal(np.isfinite(mine), compromised(g, entries, outcomes))
        for k in range(len(outcomes)):
            assert np.allclose(mine[k], reference_times(g, entries, outcomes[k], own[k]), rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- time to compromise
def test_time_to_compromise_of_a_chain_of_exponentials():
    exp = {"a": fn("Exponential", 1.0), "b": fn("Exponential", 0.5), "c": fn("Exponential", 0.25)}
    g = graph("e:or a:or b:or c:or | e>a a>b b>c", ttc=exp)
    n = 40_000
    r = time_to_compromise(g, ["e"], g.probability, episodes_per_draw=n, seed=16, keep_times=True)
    sd = np.sqrt(1 + 4 + 16)  # sd of the sum of three independent exponentials
    assert r.mean_time[0, 3] == pytest.approx(1 + 2 + 4, abs=4 * sd / np.sqrt(n))
    assert r.mean_time[0, 0] == 0 and np.all(r.reached == 1)
    assert r.times.shape == (1, n, 4) and np.all(r.times[0, :, 3] >= r.times[0, :, 2])


def test_time_to_compromise_or_takes_the_earliest_and_and_the_latest():
    ttc = {"a": fn("Exponential", 1.0), "b": fn("Exponential", 1.0)}
    g = graph("e:or a:or b:or t:or u:and | e>a e>b a>t b>t a>u b>u", ttc=ttc)
    n = 40_000
    r = time_to_compromise(g, ["e"], g.probability, episodes_per_draw=n, seed=17, targets=["t", "u"])
    assert r.mean_time[0, 0] == pytest.approx(0.5, abs=4 * 0.5 / np.sqrt(n))  # min of two Exp(1)
    assert r.mean_time[0, 1] == pytest.approx(1.5, abs=4 * np.sqrt(1.25) / np.sqrt(n))  # max of two Exp(1)


def test_time_to_compromise_with_a_bernoulli_factor_and_per_draw_probabilities():
    ttc = {"a": {"type": "multiplication", "lhs": fn("Bernoulli", 0.4), "rhs": fn("Exponential", 2.0)}}
    g = graph("e:or a:or | e>a", ttc=ttc)
    assert g.probability[g.node("a")] == 0.4
    draws = np.array([g.probability, probs(g, a=0.9)])
    r = time_to_compromise(g, ["e"], draws, episodes_per_draw=20_000, seed=18, targets=["a"])
    assert np.all(np.abs(r.reached[:, 0] - [0.4, 0.9]) < 4 * np.sqrt(0.25 / 20_000))
    assert np.all(np.abs(r.mean_time[:, 0] - 0.5) < 4 * 0.5 / np.sqrt(8000))
    never = time_to_compromise(g, ["e"], probs(g, a=0.0), episodes_per_draw=16, targets=["a"])
    assert never.reached[0, 0] == 0 and np.isnan(never.mean_time[0, 0])
