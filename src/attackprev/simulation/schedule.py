"""Fixed points over an attack graph, evaluated level by level (used by :mod:`attackprev.simulation.engine`).

A :class:`Schedule` lists the nodes whose values are computed, each with a reduction kind and the
nodes it reduces over; every other node is an input held constant. The nodes are grouped by the
strongly connected components of their dependencies and those components put in topological
levels: a node outside a cycle is evaluated once, after everything it depends on; the nodes of a
cycle are evaluated again, only where an input changed, until nothing changes (the fixed point).
The values live in a 2-D array, one row per graph node and one column per episode (or per 64
episodes, as the bits of a ``uint64`` word), and :func:`solve` takes the function that evaluates a
set of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

#: Reduction kinds: any input (OR of bits, min of times), all inputs (AND, max), and mal-simulator's
#: AND step when some parent's necessity varies between episodes (see the engine).
ANY, ALL, GEN = 0, 1, 2


def csr_rows(ptr: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated CSR rows ``rows`` and the offset of each in the result (for ``reduceat``)."""
    starts = ptr[rows]
    lens = ptr[rows + 1] - starts
    offsets = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lens[:-1], out=offsets[1:])
    total = int(lens.sum())
    flat = idx[np.repeat(starts - offsets, lens) + np.arange(total)]
    return flat, offsets


def csr_from_lists(n: int, rows: np.ndarray, lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """CSR (ptr, idx) over ``n`` rows where row ``rows[k]`` holds ``lists[k]``; other rows are empty."""
    lens = np.zeros(n, dtype=np.int64)
    lens[rows] = [len(x) for x in lists]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    idx = np.zeros(int(ptr[-1]), dtype=np.int64)
    for r, lst in zip(rows, lists, strict=True):
        idx[ptr[r] : ptr[r + 1]] = lst
    return ptr, idx


@dataclass(frozen=True)
class Gather:
    """For a set of rows split by kind: the rows, their inputs flattened, and each row's offset."""

    parts: tuple[tuple[int, np.ndarray, np.ndarray, np.ndarray], ...]  # (kind, rows, flat, offsets)


@dataclass(frozen=True, eq=False)
class Schedule:
    """Nodes to evaluate, their reduction kinds and inputs, grouped in topological levels.

    Attributes
    ----------
    nodes
        The evaluated nodes (graph indices, sorted).
    kind
        Per graph node, its reduction kind (meaningful for evaluated nodes only).
    in_ptr, in_idx
        Per graph node, the nodes it reduces over (CSR; empty for nodes not evaluated).
    levels
        Per level, (rows evaluated once, rows in cycles).
    cycle_level
        Per graph node, the level of its cycle, or -1.
    out_ptr, out_idx
        Per graph node, the evaluated nodes that read it (CSR), to follow changes around cycles.
    """

    nodes: np.ndarray
    kind: np.ndarray
    in_ptr: np.ndarray
    in_idx: np.ndarray
    levels: tuple[tuple[np.ndarray, np.ndarray], ...]
    cycle_level: np.ndarray
    out_ptr: np.ndarray
    out_idx: np.ndarray
    _gathers: dict = field(default_factory=dict, repr=False)

    def gather(self, rows: np.ndarray, cache_key: object = None) -> Gather:
        """The inputs of ``rows``, split by kind (cached under ``cache_key`` when given)."""
        if cache_key is not None and cache_key in self._gathers:
            return self._gathers[cache_key]
        kinds = self.kind[rows]
        parts = []
        for k in (ANY, ALL, GEN):
            sel = rows[kinds == k]
            if sel.size:
                flat, offsets = csr_rows(self.in_ptr, self.in_idx, sel)
                parts.append((k, sel, flat, offsets))
        out = Gather(tuple(parts))
        if cache_key is not None:
            self._gathers[cache_key] = out
        return out

    @property
    def n_cycle_nodes(self) -> int:
        return int((self.cycle_level >= 0).sum())


def make_schedule(n: int, nodes: np.ndarray, kinds: np.ndarray, inputs: list[np.ndarray]) -> Schedule:
    """Build a :class:`Schedule` over a graph of ``n`` nodes.

    Parameters
    ----------
    n
        Number of graph nodes (rows of the value arrays).
    nodes
        The nodes to evaluate.
    kinds
        The reduction kind of each of ``nodes``.
    inputs
        For each of ``nodes``, the nodes it reduces over (non-empty).
    """
    order = np.argsort(nodes, kind="stable")
    nodes = np.asarray(nodes, dtype=np.int64)[order]
    kinds = np.asarray(kinds, dtype=np.int8)[order]
    inputs = [np.asarray(inputs[k], dtype=np.int64) for k in order]
    kind = np.full(n, -1, dtype=np.int8)
    kind[nodes] = kinds
    in_ptr, in_idx = csr_from_lists(n, nodes, inputs)

    # dependencies among evaluated nodes: input -> node
    evaluated = np.zeros(n, bool)
    evaluated[nodes] = True
    child = np.repeat(np.arange(n), np.diff(in_ptr))
    keep = evaluated[in_idx]
    src, dst = in_idx[keep], child[keep]
    m = len(nodes)
    local = np.full(n, -1, dtype=np.int64)
    local[nodes] = np.arange(m)
    adj = csr_matrix((np.ones(len(src), dtype=np.int8), (local[src], local[dst])), shape=(m, m))
    n_comp, label = connected_components(adj, directed=True, connection="strong")
    size = np.bincount(label, minlength=n_comp)
    cyclic = size > 1
    self_loops = local[src][src == dst]
    cyclic[label[self_loops]] = True

    # topological levels of the components (Kahn's algorithm, one wave per level)
    cs, cd = label[local[src]], label[local[dst]]
    cross = cs != cd
    pairs = np.unique(np.stack([cs[cross], cd[cross]], axis=1), axis=0) if cross.any() else np.zeros((0, 2), int)
    indeg = np.bincount(pairs[:, 1], minlength=n_comp)
    succ_ptr = np.zeros(n_comp + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs[:, 0], minlength=n_comp), out=succ_ptr[1:])
    succ = pairs[np.argsort(pairs[:, 0], kind="stable"), 1]
    comp_level = np.full(n_comp, -1, dtype=np.int64)
    wave = np.flatnonzero(indeg == 0)
    level = 0
    while wave.size:
        comp_level[wave] = level
        nxt, _ = csr_rows(succ_ptr, succ, wave)
        np.subtract.at(indeg, nxt, 1)
        cand = np.unique(nxt)
        wave = cand[indeg[cand] == 0]
        level += 1
    node_level = comp_level[label]
    node_cyclic = cyclic[label]
    by_level = np.argsort(node_level, kind="stable")
    bounds = np.searchsorted(node_level[by_level], np.arange(level + 1))
    levels = []
    for lv in range(level):
        members = by_level[bounds[lv] : bounds[lv + 1]]
        rows = nodes[members]
        cyc = node_cyclic[members]
        levels.append((rows[~cyc], rows[cyc]))
    cycle_level = np.full(n, -1, dtype=np.int64)
    cycle_level[nodes[node_cyclic]] = node_level[node_cyclic]

    o = np.argsort(src, kind="stable")
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=out_ptr[1:])
    return Schedule(
        nodes=nodes,
        kind=kind,
        in_ptr=in_ptr,
        in_idx=in_idx,
        levels=tuple(levels),
        cycle_level=cycle_level,
        out_ptr=out_ptr,
        out_idx=dst[o],
    )


def solve(schedule: Schedule, values: np.ndarray, evaluate: Callable[[Gather], list[np.ndarray]]) -> int:
    """Evaluate ``schedule`` in place on ``values`` (rows = graph nodes) to its fixed point.

    ``values`` must hold the inputs and, for nodes in cycles, the starting value (the bottom of a
    least fixed point, the top of a greatest one). ``evaluate(gather)`` returns, for each part of
    the gather, the new rows. Returns the number of evaluation rounds spent on cycles.
    """
    rounds = 0
    for lv, (once, cyc) in enumerate(schedule.levels):
        if once.size:
            g = schedule.gather(once, ("once", lv))
            for (_, rows, _, _), new in zip(g.parts, evaluate(g), strict=True):
                values[rows] = new
        active = cyc
        key: object = ("cycle", lv)
        while active.size:
            rounds += 1
            g = schedule.gather(active, key)
            key = None
            changed = []
            for (_, rows, _, _), new in zip(g.parts, evaluate(g), strict=True):
                diff = (new != values[rows]).any(axis=1)
                if diff.any():
                    values[rows[diff]] = new[diff]
                    changed.append(rows[diff])
            if not changed:
                break
            kids, _ = csr_rows(schedule.out_ptr, schedule.out_idx, np.concatenate(changed))
            kids = kids[schedule.cycle_level[kids] == lv]
            active = np.unique(kids)
    return rounds
