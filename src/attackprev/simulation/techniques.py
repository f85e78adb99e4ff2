"""Which ATT&CK technique each attack-graph node stands for.

A step table (CSV with the columns ``asset``, ``attack_step`` and ``technique_id``) maps a MAL
language's steps to techniques: ``data/enterpriselang_attack_steps.csv`` for enterpriseLang,
``examples/simulation/steps.csv`` for the example language. A row names the asset type that
defines the step or any type above it in the language's ``extends`` chain (a row for ``Host``
maps ``Workstation:execute`` too, unless a row for ``Workstation`` says otherwise). Rows with an
empty ``technique_id`` are read and left unmapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from attackprev.errors import InputError
from attackprev.evidence.attack import attack_table
from attackprev.evidence.tables import read_table

STEP_COLUMNS = ("asset", "attack_step", "technique_id")


@dataclass(frozen=True)
class StepTechniques:
    """A step table: (asset type, step name) -> technique ID, with where each row came from."""

    path: str
    techniques: dict[tuple[str, str], str]
    lines: dict[tuple[str, str], int]
    raw: bytes


def read_step_techniques(path: str | Path) -> StepTechniques:
    """Read and check a step table (one-line errors naming the file and row).

    Raises
    ------
    InputError
        On a missing column, an empty asset or step name, a repeated (asset, step) pair, or an ID that is
        not a live ATT&CK Enterprise technique.
    """
    rows, raw = read_table(path, STEP_COLUMNS)
    table = attack_table()
    techniques: dict[tuple[str, str], str] = {}
    lines: dict[tuple[str, str], int] = {}
    for line, r in rows:
        asset, step, tid = r["asset"].strip(), r["attack_step"].strip(), (r["technique_id"] or "").strip()
        if not asset or not step:
            raise InputError("empty asset or attack_step", path, line)
        key = (asset, step)
        if key in lines:
            raise InputError(f"{asset}.{step} is mapped twice (first on line {lines[key]})", path, line)
        lines[key] = line
        if not tid:
            continue
        known = table.get(tid)
        if known is None or not known.live:
            why = "not an ATT&CK Enterprise v18.1 technique" if known is None else "revoked or deprecated in v18.1"
            raise InputError(f"technique_id {tid!r}: {why}", path, line)
        techniques[key] = tid
    return StepTechniques(str(path), techniques, lines, raw)


def map_nodes(graph, steps: StepTechniques) -> dict[int, str]:
    """Node index -> technique ID for every attack step of ``graph`` that the step table maps.

    ``graph`` is an :class:`~attackprev.simulation.graph.AttackGraphArrays` loaded with mal-toolbox
    (its ``maltoolbox`` attribute holds the ``AttackGraph``); the most specific asset type with a row wins.
    """
    ag = graph.maltoolbox
    if ag is None:
        raise ValueError("the graph was not loaded with mal-toolbox: its nodes' asset types are unknown")
    lang_assets = ag.lang_graph.assets
    out: dict[int, str] = {}
    for node in ag.nodes.values():
        if node.type not in ("or", "and") or node.model_asset is None:
            continue
        chain = _type_chain(lang_assets, node.model_asset.type)
        for asset_type in chain:
            tid = steps.techniques.get((asset_type, node.name))
            if tid is not None or (asset_type, node.name) in steps.lines:
                if tid is not None:
                    out[graph.index[node.full_name]] = tid
                break
    return out


def _type_chain(lang_assets, asset_type: str) -> list[str]:
    """The asset type and the types it extends, most specific first."""
    chain = []
    asset = lang_assets.get(asset_type)
    while asset is not None:
        chain.append(asset.name)
        asset = asset.own_super_asset
    return chain
