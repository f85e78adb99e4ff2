"""A MAL attack graph as flat numpy arrays (:class:`AttackGraphArrays`), loaded with mal-toolbox.

:func:`load_attack_graph` compiles a language (``.mal`` file or ``.mar`` archive), loads an instance
model and builds mal-toolbox's ``AttackGraph``; :func:`build_graph` makes the same arrays from a
hand-written node list (for tests and small examples). Node ``i`` has a full name ``"Asset:step"``,
a type (``'or'``, ``'and'``, ``'defense'``, ``'exist'``, ``'notExist'``), its parents
``parent_idx[parent_ptr[i]:parent_ptr[i + 1]]``, its TTC as mal-toolbox gives it and that TTC split
by :func:`~attackprev.simulation.ttc.decompose_ttc` into a probability (for a defense: of being
enabled) and a time sampler.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from attackprev.errors import InputError
from attackprev.simulation.ttc import StepTTC, decompose_ttc

#: Node types, in the order of their integer codes in :attr:`AttackGraphArrays.node_type`.
NODE_TYPES = ("or", "and", "defense", "exist", "notExist")
OR, AND, DEFENSE, EXIST, NOT_EXIST = range(5)


def _one_line(err: BaseException) -> str:
    """The error's message on one line; mal-toolbox wraps the real reason in a generic error, so the root cause's."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@dataclass(frozen=True, eq=False)
class AttackGraphArrays:
    """An attack graph as arrays: node names and types, parents in CSR form, TTCs.

    Attributes
    ----------
    names
        Full name of each node, ``"Asset:step"``.
    node_type
        Integer code of each node's type, an index into :data:`NODE_TYPES`.
    parent_ptr, parent_idx
        Parents in CSR form: node ``i``'s parents are ``parent_idx[parent_ptr[i]:parent_ptr[i + 1]]`` (sorted).
    existence
        mal-toolbox's ``existence_status`` of ``exist``/``notExist`` nodes (whether the assets they
        require are in the model); False for other nodes.
    ttc
        Each node's TTC as mal-toolbox gives it (None when it has none).
    steps
        Each node's TTC split into probability and time part (:class:`~attackprev.simulation.ttc.StepTTC`).
    language_steps
        Each node's language step, ``"AssetType:step"`` (mal-toolbox's ``lg_attack_step.full_name``):
        the nodes of one language step share its probability when a technique maps to that step.
    source
        Where the graph came from (shown in error messages).
    maltoolbox
        mal-toolbox's ``AttackGraph`` when loaded with :func:`load_attack_graph`, else None.
    """

    names: tuple[str, ...]
    node_type: np.ndarray
    parent_ptr: np.ndarray
    parent_idx: np.ndarray
    existence: np.ndarray
    ttc: tuple[dict[str, Any] | None, ...]
    steps: tuple[StepTTC, ...]
    language_steps: tuple[str, ...]
    source: str = "attack graph"
    maltoolbox: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def n_nodes(self) -> int:
        return len(self.names)

    @cached_property
    def index(self) -> dict[str, int]:
        """Full name -> node index."""
        return {name: i for i, name in enumerate(self.names)}

    @cached_property
    def is_and(self) -> np.ndarray:
        """Whether each node is an AND attack step."""
        return self.node_type == AND

    @cached_property
    def is_attack(self) -> np.ndarray:
        """Whether each node is an attack step (``or``/``and``), the only nodes an attacker compromises."""
        return self.node_type <= AND

    @cached_property
    def probability(self) -> np.ndarray:
        """The language's probability per node: attack steps possible, defenses enabled (1 for existence steps)."""
        return np.array([s.probability for s in self.steps], dtype=float)

    def step_probability(self, node: str | int) -> float:
        """The language's probability of one node (by full name or index): possible, or for a defense enabled."""
        return float(self.probability[self.nodes([node])[0]])

    @cached_property
    def child_ptr(self) -> np.ndarray:
        """Children in CSR form, like :attr:`parent_ptr`."""
        return self._children[0]

    @cached_property
    def child_idx(self) -> np.ndarray:
        """Children in CSR form (with :attr:`child_ptr`)."""
        return self._children[1]

    @cached_property
    def _children(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_nodes
        child = np.repeat(np.arange(n), np.diff(self.parent_ptr))
        order = np.lexsort((child, self.parent_idx))
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.parent_idx, minlength=n), out=ptr[1:])
        return ptr, child[order]

    def by_language_step(self) -> dict[str, np.ndarray]:
        """Language step (``"AssetType:step"``) -> the indices of its nodes."""
        out: dict[str, list[int]] = {}
        for i, step in enumerate(self.language_steps):
            out.setdefault(step, []).append(i)
        return {k: np.array(v, dtype=np.int64) for k, v in out.items()}

    def parents(self, node: int) -> np.ndarray:
        """The parents of node ``node``."""
        return self.parent_idx[self.parent_ptr[node] : self.parent_ptr[node + 1]]

    def blocks_children(self, defense_enabled: np.ndarray | None = None) -> np.ndarray:
        """Which nodes block their children, as mal-simulator decides it.

        An ``exist`` step blocks when its requirement is not in the model, a ``notExist`` step when it
        is, a defense when it is enabled (``defense_enabled``, default: language probability 1).
        """
        enabled = self.probability >= 1.0 if defense_enabled is None else np.asarray(defense_enabled, bool)
        t = self.node_type
        return ((t == EXIST) & ~self.existence) | ((t == NOT_EXIST) & self.existence) | ((t == DEFENSE) & enabled)

    @cached_property
    def impossible(self) -> np.ndarray:
        """Nodes an attacker can never compromise, except as an entry point, with the language's probabilities.

        True for defense and existence nodes; for an attack step with probability 0; for an AND step
        with a parent that surely blocks it (an enabled defense, an ``exist`` whose requirement is
        missing, a ``notExist`` whose requirement is present); for an OR step all of whose parents
        surely block it (mal-simulator's rule, which also covers an OR step without parents).
        """
        blocks = self.blocks_children()
        out = ~self.is_attack | (self.probability <= 0.0)
        counts = np.diff(self.parent_ptr)
        child = np.repeat(np.arange(self.n_nodes), counts)
        blocked_edges = blocks[self.parent_idx]
        any_block = np.bincount(child, weights=blocked_edges, minlength=self.n_nodes) > 0
        all_block = np.bincount(child, weights=blocked_edges, minlength=self.n_nodes) == counts
        out |= (self.node_type == AND) & any_block
        out |= (self.node_type == OR) & all_block
        return out

    def node(self, name: str) -> int:
        """The index of the node named ``name`` (``"Asset:step"``).

        Raises
        ------
        InputError
            If no node has that name (the message suggests close names).
        """
        try:
            return self.index[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InputError(f"no attack-graph node named {name!r}{hint}", self.source) from None

    def nodes(self, names: Iterable[str | int]) -> np.ndarray:
        """Indices of nodes given by name or index."""
        out = []
        for x in names:
            if isinstance(x, str):
                out.append(self.node(x))
            else:
                i = int(x)
                if not 0 <= i < self.n_nodes:
                    raise InputError(f"node index {i} is outside 0..{self.n_nodes - 1}", self.source)
                out.append(i)
        return np.asarray(out, dtype=np.int64)

    @cached_property
    def time_group(self) -> np.ndarray:
        """Per node, the index of its time part among :attr:`time_parts` (-1: zero time or not an attack step)."""
        return self._time_groups[0]

    @cached_property
    def time_parts(self) -> tuple[StepTTC, ...]:
        """The distinct non-zero time parts of the attack steps (one representative step each)."""
        return self._time_groups[1]

    @cached_property
    def _time_groups(self) -> tuple[np.ndarray, tuple[StepTTC, ...]]:
        group = np.full(self.n_nodes, -1, dtype=np.int64)
        keys: dict[str, int] = {}
        parts: list[StepTTC] = []
        for i, step in enumerate(self.steps):
            if step.time is not None and self.is_attack[i]:
                g = keys.setdefault(step.key, len(parts))
                if g == len(parts):
                    parts.append(step)
                group[i] = g
        return group, tuple(parts)

    def sample_times(
        self, rng: np.random.Generator, size: int, nodes: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Times of the given nodes (default all) given they are possible, shape ``(size, len(nodes))``.

        Nodes with the same time part are sampled together. Non-attack nodes get time 0.

        Raises
        ------
        InputError
            If a node's time part cannot be sampled (Pareto, TruncatedNormal), naming the step.
        """
        idx = np.arange(self.n_nodes) if nodes is None else np.asarray(nodes, dtype=np.int64)
        out = np.zeros((size, len(idx)))
        groups = self.time_group[idx]
        for g in np.unique(groups[groups >= 0]):
            cols = np.flatnonzero(groups == g)
            try:
                out[:, cols] = self.time_parts[g].sample_times(rng, (size, len(cols)))
            except InputError as err:
                raise InputError(f"step {self.names[idx[cols[0]]]}: {err.message}", self.source) from None
        return out


def build_graph(
    names: Sequence[str],
    types: Sequence[str],
    edges: Iterable[tuple[str | int, str | int]],
    ttc: Sequence[dict[str, Any] | None] | None = None,
    existence: Sequence[bool] | None = None,
    language_steps: Sequence[str] | None = None,
    source: str = "attack graph",
    maltoolbox: Any = None,
) -> AttackGraphArrays:
    """Make :class:`AttackGraphArrays` from node names and types and (parent, child) edges.

    Parameters
    ----------
    names
        Full node names (unique).
    types
        Each node's type, one of :data:`NODE_TYPES`.
    edges
        (parent, child) pairs, by name or index; duplicates are dropped.
    ttc
        Each node's TTC dictionary (default None: instant attack steps, disabled defenses).
    existence
        ``existence_status`` of ``exist``/``notExist`` nodes (default False).
    language_steps
        Each node's language step (default its own name).
    source
        Shown in error messages.
    maltoolbox
        The mal-toolbox graph, kept for callers that need it.

    Raises
    ------
    InputError
        If a name repeats, a type is unknown, an edge names an unknown node, or a TTC is invalid.
    """
    names = tuple(names)
    n = len(names)
    if len(set(names)) != n:
        dup = next(x for x in names if names.count(x) > 1)
        raise InputError(f"node name {dup!r} appears twice", source)
    if len(types) != n:
        raise InputError(f"{len(types)} types for {n} nodes", source)
    unknown = [t for t in types if t not in NODE_TYPES]
    if unknown:
        raise InputError(f"unknown node type {unknown[0]!r} (expected one of {', '.join(NODE_TYPES)})", source)
    code = np.array([NODE_TYPES.index(t) for t in types], dtype=np.int8)
    ttcs = tuple(ttc) if ttc is not None else (None,) * n
    exist = np.zeros(n, bool) if existence is None else np.array([bool(x) for x in existence])
    index = {name: i for i, name in enumerate(names)}

    def at(x: str | int) -> int:
        if isinstance(x, str):
            if x not in index:
                raise InputError(f"edge names unknown node {x!r}", source)
            return index[x]
        if not 0 <= int(x) < n:
            raise InputError(f"edge names node index {x} outside 0..{n - 1}", source)
        return int(x)

    pairs = sorted({(at(p), at(c)) for p, c in edges}, key=lambda e: (e[1], e[0]))
    parent = np.array([p for p, _ in pairs], dtype=np.int64)
    child = np.array([c for _, c in pairs], dtype=np.int64)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(child, minlength=n), out=ptr[1:])
    steps = []
    for name, kind, t in zip(names, types, ttcs, strict=True):
        try:
            steps.append(decompose_ttc(t, kind))
        except InputError as err:
            raise InputError(f"TTC of {name}: {err.message}", source) from None
    return AttackGraphArrays(
        names=names,
        node_type=code,
        parent_ptr=ptr,
        parent_idx=parent,
        existence=exist,
        ttc=ttcs,
        steps=tuple(steps),
        language_steps=tuple(names if language_steps is None else language_steps),
        source=source,
        maltoolbox=maltoolbox,
    )


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} file not found", path)
    if not path.is_file():
        raise InputError(f"{what} path is not a file", path)


def load_language(language: str | Path) -> Any:
    """Compile a MAL language with mal-toolbox: a ``.mal`` spec or a ``.mar`` archive.

    Raises
    ------
    InputError
        If the file is missing, has another suffix or does not compile.
    """
    from attackprev.mal.dictionary import import_mal_clients

    path = Path(language)
    _check_file(path, "language")
    if path.suffix not in (".mal", ".mar"):
        raise InputError("a MAL language must be a .mal file or a .mar archive", path)
    try:
        import_mal_clients("maltoolbox")
        from maltoolbox.language import LanguageGraph
    except ImportError as err:
        raise InputError(f"mal-toolbox is needed to read MAL languages: {_one_line(err)}", path) from None
    try:
        if path.suffix == ".mar":
            return LanguageGraph.from_mar_archive(str(path))
        return LanguageGraph.from_mal_spec(str(path))
    except Exception as err:  # mal-toolbox raises many types; all are bad input here
        raise InputError(f"cannot compile the MAL language: {_one_line(err)}", path) from None


def load_attack_graph(language: str | Path, model: str | Path) -> AttackGraphArrays:
    """Build the attack graph of an instance model with mal-toolbox, as arrays.

    Parameters
    ----------
    language
        The MAL language: a ``.mal`` spec or a ``.mar`` archive.
    model
        A mal-toolbox instance model (``.yml``/``.yaml``/``.json``) written for that language.

    Returns
    -------
    AttackGraphArrays
        Nodes in mal-toolbox's id order, with its parents, TTCs (model defense values applied by
        mal-toolbox) and existence statuses; ``maltoolbox`` holds the ``AttackGraph``.

    Raises
    ------
    InputError
        If a file is missing, the language does not compile, the model does not load (e.g. an asset
        type or association the language lacks), or a TTC cannot be read.
    """
    lang = load_language(language)
    model_path = Path(model)
    _check_file(model_path, "model")
    if model_path.suffix not in (".yml", ".yaml", ".json"):
        raise InputError("an instance model must be a .yml, .yaml or .json file", model_path)
    from maltoolbox.attackgraph import AttackGraph
    from maltoolbox.model import Model

    try:
        instance = Model.load_from_file(str(model_path), lang)
    except Exception as err:
        raise InputError(f"cannot load the instance model: {_one_line(err)}", model_path) from None
    try:
        graph = AttackGraph(lang, instance)
    except Exception as err:
        raise InputError(f"cannot build the attack graph: {_one_line(err)}", model_path) from None
    nodes = [graph.nodes[i] for i in sorted(graph.nodes)]
    position = {node.id: k for k, node in enumerate(nodes)}
    edges = [(position[p.id], k) for k, node in enumerate(nodes) for p in node.parents]
    return build_graph(
        names=[node.full_name for node in nodes],
        types=[node.type for node in nodes],
        edges=edges,
        ttc=[node.ttc for node in nodes],
        existence=[bool(node.existence_status) for node in nodes],
        language_steps=[node.lg_attack_step.full_name for node in nodes],
        source=str(model_path),
        maltoolbox=graph,
    )
