"""Which attack steps an attacker reaches, per posterior draw: mal-simulator's semantics, vectorised.

:func:`reach_probability` pushes draws of the steps' probabilities through an attack graph and
returns, per draw and target step, the fraction of simulated episodes in which the attacker
compromises the target. :func:`time_to_compromise` adds sampled step times. :func:`compromised`
and :func:`earliest_times` evaluate given outcomes (which steps are possible in each episode, and
their times) exactly, for checks against mal-simulator and a reference implementation.

The semantics are mal-simulator 3.3's with ``TTCMode.DISABLED``, ``run_attack_step_bernoullis=True``
and ``run_defense_step_bernoullis=True``, and an attacker (e.g. ``BreadthFirstAttacker``) that
keeps attacking until its action surface is empty. Per episode:

* each attack step is possible with its probability and each defense enabled with its
  probability, independently (mal-simulator samples them once per ``reset()``); ``exist`` /
  ``notExist`` steps follow the model (mal-toolbox's ``existence_status``);
* the entry points are compromised at the start, possible or not;
* a node *blocks* its children when it is an enabled defense, an ``exist`` step whose requirement
  is missing or a ``notExist`` step whose requirement is present; a node is *necessary* when it
  is such a blocking node, an OR step all of whose parents are necessary, or an AND step with a
  necessary parent (steps without parents are necessary): the greatest fixed point of these rules,
  recomputed per episode as mal-simulator does at each reset;
* an OR step is compromised when it is possible and a parent is compromised (its blocking rule,
  all parents blocking, cannot hold once an attack-step parent is compromised); an AND step when
  it is possible, no parent blocks it, a parent is compromised and every *necessary* attack-step
  parent is compromised (an unnecessary parent counts as done);
* the compromised set is the least fixed point of these rules (cycles included): what a
  breadth-first attacker has when nothing is left to attack, whatever order it attacks in.

Per episode, the engine evaluates every node with numpy across episodes at once: the outcomes of
64 episodes are the bits of one ``uint64`` word, and a step's value is a bitwise OR (or AND) of
its parents' words, reduced with ``np.bitwise_or.reduceat`` (``np.bitwise_and.reduceat``), node
after node in topological order and iterated around cycles (:mod:`attackprev.simulation.schedule`).
Draws are processed in chunks whose arrays fit in a memory budget.

Where the engine and mal-simulator part ways:

* a step's probability is the product of all the Bernoulli factors of its TTC (MAL's meaning,
  :func:`~attackprev.simulation.ttc.decompose_ttc`); mal-simulator 3.3's ``TTCDist`` samples only
  the first Bernoulli down the chain of right-hand operands, so it gives ``Bernoulli(p) *
  Bernoulli(q)`` probability p and loses the Bernoulli of ``(X * Bernoulli(p)) * Y``; and when a
  named constant is the left operand (``HardAndCertain * Bernoulli(0.2)``) it edits the shared
  constant, so every ``HardAndCertain`` step read later in the process carries that Bernoulli.
  The languages here (coreLang, tyrLang) use lone named constants only, where both agree;
* one set of entry points, all attack steps (mal-simulator also samples among several sets);
  no defender acts during an episode; attacker-specific TTC overrides are not modelled;
* steps with ``causal_mode`` ``effect`` need no special case: mal-simulator compromises them as
  soon as they are traversable, which gives the same final set (neither test language has any);
* :func:`time_to_compromise` is not one of mal-simulator's TTC modes: it assumes an attacker who
  works on every available step at once, so its times are those of the fastest path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from attackprev.errors import InputError
from attackprev.simulation.bits import ONES, bernoulli_words, count_lanes, n_words, pack, unpack
from attackprev.simulation.graph import AND, DEFENSE, EXIST, NOT_EXIST, OR, AttackGraphArrays
from attackprev.simulation.schedule import ALL, ANY, GEN, Gather, Schedule, csr_rows, make_schedule, solve

#: Default bytes for one (nodes x episode-words) array of a chunk; a chunk holds about three.
CHUNK_BYTES = 32 * 2**20


# ----------------------------------------------------------------------------- probabilities
@dataclass(frozen=True)
class StepDraws:
    """Per-draw probabilities for some nodes, a column shared by a group of nodes; other nodes keep a base.

    A posterior draw of a technique's probability applies to every node of the steps it maps to
    (e.g. ``Application:fullAccess`` of every application), so one column of ``values`` may serve
    many nodes, and a graph of many nodes needs no ``(n_draws, n_nodes)`` matrix. A node's
    probability is that it is possible (an attack step) or enabled (a defense); existence steps
    ignore it.

    Attributes
    ----------
    nodes
        One entry per column of ``values``: a node (full name or index) or a collection of nodes
        that share the column. A node may appear in one entry only.
    values
        Shape ``(n_draws, len(nodes))``.
    base
        Probability of every other node, shape ``(n_nodes,)``; default the language's (``graph.probability``).
    """

    nodes: Sequence[int | str | Sequence[int | str]]
    values: np.ndarray
    base: np.ndarray | None = None


@dataclass(frozen=True)
class _Draws:
    base: np.ndarray  # (n,)
    col: np.ndarray  # (n,): the column of vals a node takes, -1 for the base
    vals: np.ndarray  # (n_draws, m)

    @property
    def n_draws(self) -> int:
        return self.vals.shape[0]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.base.copy(), self.base.copy()
        hit = self.col >= 0
        if hit.any():
            lo[hit] = self.vals.min(axis=0)[self.col[hit]]
            hi[hit] = self.vals.max(axis=0)[self.col[hit]]
        return lo, hi

    def rows(self, nodes: np.ndarray, d0: int, d1: int) -> np.ndarray:
        """Probabilities of ``nodes`` for draws d0..d1, float32 of shape ``(len(nodes), d1 - d0)``."""
        out = np.empty((len(nodes), d1 - d0), dtype=np.float32)
        col = self.col[nodes]
        hit = col >= 0
        out[~hit] = self.base[nodes[~hit]][:, None]
        if hit.any():
            out[hit] = np.ascontiguousarray(self.vals[d0:d1].T, dtype=np.float32)[col[hit]]
        return out


def _rows_of(draws: _Draws, nodes: np.ndarray, d0: int, d1: int) -> Callable[[int, int], np.ndarray]:
    """``(r0, r1) -> probabilities of nodes[r0:r1]`` for draws d0..d1 (what :func:`bernoulli_words` reads)."""
    return lambda r0, r1: draws.rows(nodes[r0:r1], d0, d1)


def _check_prob(values: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(values)) or values.min(initial=0.0) < 0 or values.max(initial=0.0) > 1:
        raise InputError(f"{what} must be probabilities in [0, 1]")


def _normalise(graph: AttackGraphArrays, probabilities: np.ndarray | StepDraws) -> _Draws:
    n = graph.n_nodes
    fixed = np.isin(graph.node_type, (EXIST, NOT_EXIST))
    col = np.full(n, -1, dtype=np.int64)
    if isinstance(probabilities, StepDraws):
        vals = np.asarray(probabilities.values, dtype=float)
        if vals.ndim != 2 or vals.shape[1] != len(probabilities.nodes):
            raise InputError(f"StepDraws.values has shape {vals.shape}; expected (n_draws, {len(probabilities.nodes)})")
        for k, entry in enumerate(probabilities.nodes):
            group = graph.nodes([entry] if isinstance(entry, str | int | np.integer) else entry)
            if (col[group] >= 0).any() or len(np.unique(group)) < len(group):
                raise InputError(f"StepDraws.nodes gives node {graph.names[group[0]]} more than one column")
            col[group] = k
        base = graph.probability.copy() if probabilities.base is None else np.array(probabilities.base, float)
        if base.shape != (n,):
            raise InputError(f"StepDraws.base has shape {base.shape}; expected ({n},)")
        _check_prob(base, "StepDraws.base")
        _check_prob(vals, "StepDraws.values")
    else:
        vals = np.asarray(probabilities, dtype=float)
        if vals.ndim == 1:
            vals = vals[None, :]
        if vals.ndim != 2 or vals.shape[1] != n:
            raise InputError(f"probabilities has shape {vals.shape}; expected (n_draws, {n})")
        _check_prob(vals, "probabilities")
        base = graph.probability.copy()
        col = np.arange(n)
    if vals.shape[0] == 0:
        raise InputError("probabilities has no draws")
    # columns that never vary move to the base; existence steps take no probability
    varies = (vals != vals[:1]).any(axis=0)
    hit = col >= 0
    base[hit] = vals[0, col[hit]]
    keep = np.flatnonzero(varies)
    renumber = np.full(vals.shape[1], -1, dtype=np.int64)
    renumber[keep] = np.arange(keep.size)
    col[hit] = renumber[col[hit]]
    col[fixed] = -1
    base[fixed] = 1.0
    return _Draws(base=base, col=col, vals=np.ascontiguousarray(vals[:, keep]))


# ----------------------------------------------------------------------------- the plan
def _necessity(graph: AttackGraphArrays, defense_enabled: np.ndarray) -> np.ndarray:
    """mal-simulator's necessity of every node when the defenses ``defense_enabled`` are enabled."""
    t = graph.node_type
    nec = np.ones(graph.n_nodes, bool)
    nec[t == EXIST] = ~graph.existence[t == EXIST]
    nec[t == NOT_EXIST] = graph.existence[t == NOT_EXIST]
    nec[t == DEFENSE] = defense_enabled[t == DEFENSE]
    counts = np.diff(graph.parent_ptr)
    child = np.repeat(np.arange(graph.n_nodes), counts)
    rule = graph.is_attack & (counts > 0)
    while True:
        n_true = np.bincount(child, weights=nec[graph.parent_idx], minlength=graph.n_nodes)
        new = np.where(t == AND, n_true > 0, n_true == counts)
        if np.array_equal(new[rule], nec[rule]):
            return nec
        nec[rule] = new[rule]


@dataclass(frozen=True, eq=False)
class _Plan:
    """What one call evaluates: the schedules and the nodes whose outcomes are sampled."""

    n: int
    entries: np.ndarray
    reach: Schedule  # compromised: least fixed point
    sampled: np.ndarray  # nodes whose possible/enabled outcome is drawn per episode
    always: np.ndarray  # evaluated nodes possible in every episode of every draw
    guards: tuple[np.ndarray, np.ndarray]  # (AND node, defense) pairs: the defense, when enabled, blocks the node
    necessity: Schedule | None  # per-episode necessity (greatest fixed point), when defenses vary
    nec_static: np.ndarray  # necessity of nodes whose necessity never varies
    nec_inputs: np.ndarray  # varying defenses whose enabled bits the necessity schedule reads


def _plan(graph: AttackGraphArrays, entries: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> _Plan:
    n, t = graph.n_nodes, graph.node_type
    attack = graph.is_attack
    is_def = t == DEFENSE
    on_always = is_def & (lo >= 1.0)
    on_random = is_def & ~on_always & (hi > 0.0)
    blocks_always = graph.blocks_children(on_always)

    counts = np.diff(graph.parent_ptr)
    child = np.repeat(np.arange(n), counts)
    pblock = blocks_always[graph.parent_idx]
    any_block = np.bincount(child, weights=pblock, minlength=n) > 0
    all_block = np.bincount(child, weights=pblock, minlength=n) == counts
    impossible = ~attack | (hi <= 0.0) | ((t == AND) & any_block) | ((t == OR) & all_block)
    is_entry = np.zeros(n, bool)
    is_entry[entries] = True

    # nodes reachable from the entry points through nodes that can ever be compromised
    reached = is_entry.copy()
    front = entries
    while front.size:
        kids, _ = csr_rows(graph.child_ptr, graph.child_idx, front)
        kids = np.unique(kids)
        kids = kids[~reached[kids] & ~impossible[kids]]
        reached[kids] = True
        front = kids
    todo = np.flatnonzero(reached & ~is_entry)

    nec_hi = _necessity(graph, on_always | on_random)
    nec_lo = _necessity(graph, on_always)
    varies = nec_hi != nec_lo  # necessity that depends on which random defenses are enabled

    kinds, inputs = [], []
    guard_nodes, guard_defs = [], []
    for v in todo:
        par = graph.parents(v)
        ap = par[attack[par]]
        if t[v] == OR:
            kinds.append(ANY)
            inputs.append(ap[reached[ap]])
            continue
        guards = par[on_random[par]]
        guard_nodes.extend([v] * len(guards))
        guard_defs.extend(guards.tolist())
        if varies[ap].any():
            kinds.append(GEN)
            inputs.append(ap)
        elif nec_lo[ap].any():
            kinds.append(ALL)
            inputs.append(ap[nec_lo[ap]])
        else:
            kinds.append(ANY)
            inputs.append(ap[reached[ap]])
    reach = make_schedule(n, todo, np.array(kinds, dtype=np.int8), inputs)

    necessity = None
    nec_inputs = np.zeros(0, dtype=np.int64)
    gen_nodes = todo[np.array(kinds, dtype=np.int8) == GEN] if todo.size else todo
    if gen_nodes.size:
        # the nodes whose necessity varies and that an evaluated AND step reads, with their ancestors
        need = np.zeros(n, bool)
        front = np.unique(csr_rows(reach.in_ptr, reach.in_idx, gen_nodes)[0])
        front = front[varies[front]]
        need[front] = True
        while front.size:
            par, _ = csr_rows(graph.parent_ptr, graph.parent_idx, front)
            par = np.unique(par)
            par = par[varies[par] & attack[par] & ~need[par]]
            need[par] = True
            front = par
        nodes = np.flatnonzero(need)
        # OR step: necessary iff all parents are; AND step: iff any parent is
        nkinds = np.where(t[nodes] == AND, ANY, ALL).astype(np.int8)
        necessity = make_schedule(n, nodes, nkinds, [graph.parents(v) for v in nodes])
        read = np.unique(necessity.in_idx)
        nec_inputs = read[on_random[read]]

    sampled_attack = todo[(lo[todo] < 1.0)]
    always = todo[lo[todo] >= 1.0]
    random_defs = np.unique(np.concatenate([np.array(guard_defs, dtype=np.int64), nec_inputs]))
    return _Plan(
        n=n,
        entries=entries,
        reach=reach,
        sampled=np.concatenate([sampled_attack, random_defs]).astype(np.int64),
        always=always,
        guards=(np.array(guard_nodes, dtype=np.int64), np.array(guard_defs, dtype=np.int64)),
        necessity=necessity,
        nec_static=nec_lo,
        nec_inputs=nec_inputs,
    )


# ----------------------------------------------------------------------------- bits
def _bits_evaluator(
    values: np.ndarray, mask: np.ndarray | None, notnec: np.ndarray | None
) -> Callable[[Gather], list[np.ndarray]]:
    """The evaluation of a gather on bit words: OR / AND over inputs, then ``& mask``."""

    def evaluate(g: Gather) -> list[np.ndarray]:
        out = []
        for kind, rows, flat, offsets in g.parts:
            vals = values[flat]
            if kind == ANY:
                new = np.bitwise_or.reduceat(vals, offsets, axis=0)
            elif kind == ALL:
                new = np.bitwise_and.reduceat(vals, offsets, axis=0)
            else:
                new = np.bitwise_and.reduceat(vals | notnec[flat], offsets, axis=0)
                new &= np.bitwise_or.reduceat(vals, offsets, axis=0)
            if mask is not None:
                new &= mask[rows]
            out.append(new)
        return out

    return evaluate


@dataclass
class _Chunk:
    """The sampled outcomes of one chunk of episodes, as bit words over all nodes."""

    allowed: np.ndarray  # (n, W): possible and not blocked, for evaluated nodes
    notnec: np.ndarray | None  # (n, W): ~necessary, when necessity varies between episodes


def _chunk_outcomes(plan: _Plan, outcomes: np.ndarray, words: int) -> _Chunk:
    """Allowed and necessity words from the sampled outcome words of ``plan.sampled`` (same order)."""
    allowed = np.zeros((plan.n, words), dtype=np.uint64)
    allowed[plan.always] = ONES
    allowed[plan.sampled] = outcomes
    gnodes, gdefs = plan.guards
    if gnodes.size:
        # read the defenses' enabled words before any AND step is masked (a defense is no AND step)
        np.bitwise_and.at(allowed, gnodes, ~allowed[gdefs])
    notnec = None
    if plan.necessity is not None:
        nec = np.zeros((plan.n, words), dtype=np.uint64)
        nec[plan.nec_static] = ONES
        nec[plan.nec_inputs] = allowed[plan.nec_inputs]  # a defense is necessary when enabled
        nec[plan.necessity.nodes] = ONES  # greatest fixed point: start from the top
        solve(plan.necessity, nec, _bits_evaluator(nec, None, None))
        notnec = ~nec
    return _Chunk(allowed=allowed, notnec=notnec)


def _reach_words(plan: _Plan, chunk: _Chunk, words: int) -> np.ndarray:
    values = np.zeros((plan.n, words), dtype=np.uint64)
    values[plan.entries] = ONES
    solve(plan.reach, values, _bits_evaluator(values, chunk.allowed, chunk.notnec))
    return values


# ----------------------------------------------------------------------------- public API
@dataclass(frozen=True)
class ReachResult:
    """Per draw and target, the fraction of episodes in which the attacker compromises the target.

    Attributes
    ----------
    targets
        Full names of the targets (columns).
    probability
        Shape ``(n_draws, n_targets)``.
    stderr
        Monte Carlo standard error of each entry, ``sqrt(p (1 - p) / episodes_per_draw)`` (0 when
        the estimate is 0 or 1, e.g. always with one episode per draw: use :meth:`pooled` then).
    episodes_per_draw
        Simulated episodes per draw.
    """

    targets: tuple[str, ...]
    probability: np.ndarray
    stderr: np.ndarray
    episodes_per_draw: int

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean over draws of each target's probability and its standard error (draws are independent)."""
        p = self.probability
        se = p.std(axis=0, ddof=1) / np.sqrt(p.shape[0]) if p.shape[0] > 1 else np.full(p.shape[1], np.nan)
        return p.mean(axis=0), se


@dataclass(frozen=True)
class TTCResult:
    """Per draw and target: how often and how soon the attacker compromises the target.

    Attributes
    ----------
    targets
        Full names of the targets (columns).
    reached
        Fraction of episodes in which the target is compromised, ``(n_draws, n_targets)``.
    mean_time
        Mean earliest compromise time (days) over the episodes in which it is reached (NaN if none).
    episodes_per_draw
        Simulated episodes per draw.
    times
        Every episode's earliest time (inf when not reached), ``(n_draws, episodes_per_draw, n_targets)``,
        when asked for.
    """

    targets: tuple[str, ...]
    reached: np.ndarray
    mean_time: np.ndarray
    episodes_per_draw: int
    times: np.ndarray | None = None


def _entry_indices(graph: AttackGraphArrays, entry_points: Sequence[str | int]) -> np.ndarray:
    if isinstance(entry_points, str):
        entry_points = [entry_points]
    idx = np.unique(graph.nodes(entry_points))
    if idx.size == 0:
        raise InputError("give at least one entry point", graph.source)
    bad = idx[~graph.is_attack[idx]]
    if bad.size:
        raise InputError(f"entry point {graph.names[bad[0]]} is not an attack step", graph.source)
    return idx


def _target_indices(graph: AttackGraphArrays, targets: Sequence[str | int] | None) -> np.ndarray:
    if targets is None:
        return np.arange(graph.n_nodes)
    if isinstance(targets, str):
        targets = [targets]
    return graph.nodes(targets)


def _chunks(n_draws: int, n_nodes: int, episodes: int, chunk_bytes: int, bits: int = 1) -> list[tuple[int, int]]:
    """Draw ranges whose (nodes x lanes) arrays of ``bits`` bits per lane fit ``chunk_bytes``."""
    lanes = chunk_bytes * 8 // (bits * max(1, n_nodes))
    if bits == 1:
        lanes = max(64, lanes // 64 * 64)
    per = max(1, lanes // episodes)
    return [(d0, min(n_draws, d0 + per)) for d0 in range(0, n_draws, per)]


def reach_probability(
    graph: AttackGraphArrays,
    entry_points: Sequence[str | int],
    probabilities: np.ndarray | StepDraws,
    episodes_per_draw: int = 64,
    seed: int | np.random.SeedSequence | None = 0,
    targets: Sequence[str | int] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> ReachResult:
    """Per draw, the probability that an attacker starting at ``entry_points`` compromises each target.

    Parameters
    ----------
    graph
        The attack graph.
    entry_points
        Full names (or indices) of the attack steps compromised at the start.
    probabilities
        Each node's probability per draw, ``(n_draws, n_nodes)`` (a 1-D array is one draw): for an
        attack step that it is possible, for a defense that it is enabled (existence steps ignore
        theirs). Or a :class:`StepDraws` giving per-draw values for some nodes only.
    episodes_per_draw
        Episodes simulated per draw (64 fill one word per draw).
    seed
        Seed of the random outcomes: equal seeds give equal results.
    targets
        Full names (or indices) of the nodes reported; default all nodes.
    chunk_bytes
        Memory budget of one (nodes x words) array; draws are processed in chunks that fit it.

    Returns
    -------
    ReachResult
        ``probability`` and ``stderr`` of shape ``(n_draws, n_targets)``.

    Raises
    ------
    InputError
        If a name is unknown, an entry point is not an attack step, or the probabilities have the
        wrong shape or leave [0, 1].
    """
    if episodes_per_draw < 1:
        raise InputError("episodes_per_draw must be at least 1")
    draws = _normalise(graph, probabilities)
    entries = _entry_indices(graph, entry_points)
    tidx = _target_indices(graph, targets)
    lo, hi = draws.bounds()
    plan = _plan(graph, entries, lo, hi)
    e = int(episodes_per_draw)
    chunks = _chunks(draws.n_draws, graph.n_nodes, e, chunk_bytes)
    seeds = np.random.SeedSequence(seed).spawn(len(chunks))
    counts = np.zeros((draws.n_draws, tidx.size))
    for (d0, d1), ss in zip(chunks, seeds, strict=True):
        rng = np.random.default_rng(ss)
        words = n_words((d1 - d0) * e)
        outcomes = bernoulli_words(rng, _rows_of(draws, plan.sampled, d0, d1), plan.sampled.size, e, words)
        chunk = _chunk_outcomes(plan, outcomes, words)
        values = _reach_words(plan, chunk, words)
        for t0 in range(0, tidx.size, 4096):
            rows = tidx[t0 : t0 + 4096]
            counts[d0:d1, t0 : t0 + 4096] = count_lanes(values[rows], d1 - d0, e).T
    prob = counts / e
    stderr = np.sqrt(prob * (1 - prob) / e)
    return ReachResult(
        targets=tuple(graph.names[i] for i in tidx), probability=prob, stderr=stderr, episodes_per_draw=e
    )


def compromised(
    graph: AttackGraphArrays,
    entry_points: Sequence[str | int],
    outcomes: np.ndarray,
) -> np.ndarray:
    """The compromised nodes of each episode, given which steps are possible and defenses enabled.

    Parameters
    ----------
    graph
        The attack graph.
    entry_points
        Full names (or indices) of the attack steps compromised at the start.
    outcomes
        Bool ``(n_episodes, n_nodes)``: per episode, whether each attack step is possible and each
        defense enabled (existence steps ignore theirs), e.g. from a mal-simulator reset.

    Returns
    -------
    numpy.ndarray
        Bool ``(n_episodes, n_nodes)``: whether each node is compromised at the end of the episode.
    """
    outcomes = np.asarray(outcomes, dtype=bool)
    if outcomes.ndim != 2 or outcomes.shape[1] != graph.n_nodes:
        raise InputError(f"outcomes has shape {outcomes.shape}; expected (n_episodes, {graph.n_nodes})")
    entries = _entry_indices(graph, entry_points)
    lanes = outcomes.shape[0]
    plan = _outcome_plan(graph, entries, outcomes)
    words = n_words(lanes)
    sampled = pack(outcomes[:, plan.sampled].T, words)
    values = _reach_words(plan, _chunk_outcomes(plan, sampled, words), words)
    return unpack(values, lanes).T.copy()


def earliest_times(
    graph: AttackGraphArrays,
    entry_points: Sequence[str | int],
    outcomes: np.ndarray,
    own_times: np.ndarray,
) -> np.ndarray:
    """The earliest compromise time of every node in each episode, given outcomes and step times.

    Parameters
    ----------
    graph, entry_points, outcomes
        As for :func:`compromised`.
    own_times
        Float ``(n_episodes, n_nodes)``: each attack step's own time when possible (>= 0).

    Returns
    -------
    numpy.ndarray
        Float ``(n_episodes, n_nodes)``: 0 for entry points, inf for nodes never compromised (the
        finite entries are exactly the nodes :func:`compromised` returns).
    """
    outcomes = np.asarray(outcomes, dtype=bool)
    own_times = np.asarray(own_times, dtype=float)
    if outcomes.ndim != 2 or outcomes.shape[1] != graph.n_nodes or own_times.shape != outcomes.shape:
        raise InputError(f"outcomes and own_times must both have shape (n_episodes, {graph.n_nodes})")
    entries = _entry_indices(graph, entry_points)
    lanes = outcomes.shape[0]
    plan = _outcome_plan(graph, entries, outcomes)
    words = n_words(lanes)
    chunk = _chunk_outcomes(plan, pack(outcomes[:, plan.sampled].T, words), words)
    timed = plan.reach.nodes
    position = np.full(plan.n, -1, dtype=np.int64)
    position[timed] = np.arange(timed.size)
    own = own_times[:, timed].T.copy()
    own[~unpack(chunk.allowed[timed], lanes)] = np.inf
    notnec = None if chunk.notnec is None else unpack(chunk.notnec, lanes)
    values = np.full((plan.n, lanes), np.inf)
    values[plan.entries] = 0.0
    solve(plan.reach, values, _times_evaluator(values, own, position, notnec))
    return values.T.copy()


def _outcome_plan(graph: AttackGraphArrays, entries: np.ndarray, outcomes: np.ndarray) -> _Plan:
    fixed = np.isin(graph.node_type, (EXIST, NOT_EXIST))
    lo = np.where(fixed, 1.0, outcomes.min(axis=0, initial=True).astype(float))
    hi = np.where(fixed, 1.0, outcomes.max(axis=0, initial=False).astype(float))
    return _plan(graph, entries, lo, hi)


def time_to_compromise(
    graph: AttackGraphArrays,
    entry_points: Sequence[str | int],
    probabilities: np.ndarray | StepDraws,
    episodes_per_draw: int = 16,
    seed: int | np.random.SeedSequence | None = 0,
    targets: Sequence[str | int] | None = None,
    keep_times: bool = False,
    chunk_bytes: int = CHUNK_BYTES,
) -> TTCResult:
    """Per draw, how often and how soon an attacker starting at ``entry_points`` compromises each target.

    Each episode samples which steps are possible (as :func:`reach_probability`) and each possible
    attack step's time from its TTC's time part
    (:meth:`~attackprev.simulation.ttc.StepTTC.sample_times`). A step's earliest compromise time is
    its own time plus the earliest time of a compromised parent (OR step) or the latest time of its
    necessary attack-step parents (AND step; the earliest parent when none is necessary); entry
    points at time 0, steps never compromised at infinity. All parents are attacked at once, so
    these are the times of a parallel attacker, not of mal-simulator's one-step-at-a-time agents.

    Parameters
    ----------
    graph, entry_points, probabilities, seed, targets, chunk_bytes
        As for :func:`reach_probability`.
    episodes_per_draw
        Episodes simulated per draw.
    keep_times
        Also return every episode's time of every target.

    Returns
    -------
    TTCResult

    Raises
    ------
    InputError
        As :func:`reach_probability`, and for a step whose time cannot be sampled (Pareto, TruncatedNormal).
    """
    if episodes_per_draw < 1:
        raise InputError("episodes_per_draw must be at least 1")
    draws = _normalise(graph, probabilities)
    entries = _entry_indices(graph, entry_points)
    tidx = _target_indices(graph, targets)
    lo, hi = draws.bounds()
    plan = _plan(graph, entries, lo, hi)
    e = int(episodes_per_draw)
    chunks = _chunks(draws.n_draws, graph.n_nodes, e, chunk_bytes, bits=64)
    seeds = np.random.SeedSequence(seed).spawn(len(chunks))
    reached = np.zeros((draws.n_draws, tidx.size))
    total = np.zeros((draws.n_draws, tidx.size))
    times = np.full((draws.n_draws, e, tidx.size), np.inf) if keep_times else None
    timed = plan.reach.nodes
    position = np.full(plan.n, -1, dtype=np.int64)
    position[timed] = np.arange(timed.size)
    for (d0, d1), ss in zip(chunks, seeds, strict=True):
        rng = np.random.default_rng(ss)
        lanes = (d1 - d0) * e
        words = n_words(lanes)
        outcomes = bernoulli_words(rng, _rows_of(draws, plan.sampled, d0, d1), plan.sampled.size, e, words)
        chunk = _chunk_outcomes(plan, outcomes, words)
        # float32 times: half the memory traffic of float64, ample for days
        own = graph.sample_times(rng, lanes, timed).T.astype(np.float32)
        own[~unpack(chunk.allowed[timed], lanes)] = np.inf
        notnec = None if chunk.notnec is None else unpack(chunk.notnec, lanes)
        values = np.full((plan.n, lanes), np.inf, dtype=np.float32)
        values[plan.entries] = 0.0
        solve(plan.reach, values, _times_evaluator(values, own, position, notnec))
        t = values[tidx].reshape(tidx.size, d1 - d0, e)
        hit = np.isfinite(t)
        reached[d0:d1] = hit.sum(axis=2).T
        total[d0:d1] = np.where(hit, t, 0.0).sum(axis=2, dtype=float).T
        if times is not None:
            times[d0:d1] = t.transpose(1, 2, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(reached > 0, total / reached, np.nan)
    return TTCResult(
        targets=tuple(graph.names[i] for i in tidx),
        reached=reached / e,
        mean_time=mean,
        episodes_per_draw=e,
        times=times,
    )


def _times_evaluator(
    values: np.ndarray, own: np.ndarray, position: np.ndarray, notnec: np.ndarray | None
) -> Callable[[Gather], list[np.ndarray]]:
    """The evaluation of a gather on times: own time (rows ``position``) + earliest / latest input."""

    def evaluate(g: Gather) -> list[np.ndarray]:
        out = []
        for kind, rows, flat, offsets in g.parts:
            vals = values[flat]
            if kind == ANY:
                new = np.minimum.reduceat(vals, offsets, axis=0)
            elif kind == ALL:
                new = np.maximum.reduceat(vals, offsets, axis=0)
            else:
                latest = np.maximum.reduceat(np.where(notnec[flat], -np.inf, vals), offsets, axis=0)
                new = np.maximum(latest, np.minimum.reduceat(vals, offsets, axis=0))
            out.append(own[position[rows]] + new)
        return out

    return evaluate
