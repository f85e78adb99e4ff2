"""The dictionary form mal-toolbox compiles a TTC expression to (:func:`ttc_dict`).

The form is obtained by compiling a tiny generated ``.mal`` spec with mal-toolbox when it
is installed (about 2 ms after a 0.1 s import) and checked against a built-in translation
of the parse tree, so a silent misreading by mal-toolbox is caught.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from attackprev.errors import InputError
from attackprev.mal.expressions import OPERATIONS, _Node, _parse


def _builtin_dict(node: _Node) -> dict[str, Any]:
    if node.kind == "group":
        return _builtin_dict(node.children[0])
    if node.kind == "number":
        return {"type": "number", "value": node.value}
    if node.kind in ("call", "name"):
        return {"type": "function", "name": node.name, "arguments": [float(a) for a in node.args]}
    lhs, rhs = node.children
    return {"type": OPERATIONS[node.name], "lhs": _builtin_dict(lhs), "rhs": _builtin_dict(rhs)}


def import_mal_clients(*names: str) -> None:
    """Import mal-toolbox / mal-simulator without littering the working directory.

    Both packages open log files under ``./logs/`` when first imported; importing them
    from inside a temporary folder keeps those files out of the user's project.

    Parameters
    ----------
    *names
        Module names, e.g. ``'maltoolbox'``, ``'malsim'``; those already imported are skipped.

    Raises
    ------
    ImportError
        If a package is not installed.
    """
    import importlib
    import sys

    missing = [n for n in names if n not in sys.modules]
    if not missing:
        return
    here = os.getcwd()
    logs = Path(tempfile.gettempdir()) / "attackprev-mal-logs"
    (logs / "logs").mkdir(parents=True, exist_ok=True)
    os.chdir(logs)
    try:
        for name in missing:
            importlib.import_module(name)
    finally:
        os.chdir(here)


def _maltoolbox_dicts(exprs: list[str]) -> list[dict[str, Any]]:
    """Compile ``exprs`` as the TTCs of steps of a generated one-asset language."""
    import_mal_clients("maltoolbox")
    from maltoolbox.language import LanguageGraph

    steps = "\n".join(f"        | s{i} [{e}]" for i, e in enumerate(exprs))
    spec = f'#id: "org.attackprev.ttc"\n#version: "0.0.0"\n\ncategory C {{\n    asset A {{\n{steps}\n    }}\n}}\n'
    with tempfile.TemporaryDirectory(prefix="attackprev-mal-") as tmp:
        path = Path(tmp) / "ttc.mal"
        path.write_text(spec, encoding="utf-8")
        graph = LanguageGraph.from_mal_spec(str(path))
    asset = graph.assets["A"]
    return [asset.attack_steps[f"s{i}"].ttc for i in range(len(exprs))]


def ttc_dicts(
    exprs: Iterable[str], compiler: Literal["auto", "maltoolbox", "builtin"] = "auto"
) -> list[dict[str, Any]]:
    """Dictionary forms of several TTC expressions (see :func:`ttc_dict`), compiled at once.

    Parameters
    ----------
    exprs
        MAL TTC expressions.
    compiler
        As for :func:`ttc_dict`; mal-toolbox compiles all of them in one generated spec.

    Returns
    -------
    list of dict
        The dictionary forms, in the order of ``exprs``.

    Raises
    ------
    InputError
        If an expression is invalid, or mal-toolbox reads one differently.
    """
    exprs = [e.strip() for e in exprs]
    builtin = [_builtin_dict(_parse(e)) for e in exprs]
    if compiler == "builtin" or not exprs:
        return builtin
    try:
        compiled = _maltoolbox_dicts(exprs)
    except ImportError:
        if compiler == "maltoolbox":
            raise
        return builtin
    except Exception as err:  # mal-toolbox's own checks (malAnalyzerException etc.)
        raise InputError(f"mal-toolbox refused the TTC expression(s): {err}") from err
    for expr, ours, theirs in zip(exprs, builtin, compiled, strict=True):
        if ours != theirs:
            raise InputError(f"mal-toolbox reads {expr!r} as {theirs}, expected {ours}")
    return compiled


def ttc_dict(expr: str, compiler: Literal["auto", "maltoolbox", "builtin"] = "auto") -> dict[str, Any]:
    """The dictionary form mal-toolbox gives a step's TTC.

    ``Bernoulli(0.0471)`` becomes ``{'type': 'function', 'name': 'Bernoulli',
    'arguments': [0.0471]}``; products become ``{'type': 'multiplication', 'lhs': ...,
    'rhs': ...}`` (likewise ``addition``, ``subtraction``, ``division``,
    ``exponentiation``); named constants are functions with no arguments, and bare numbers
    ``{'type': 'number', 'value': x}``. All numbers are floats. This is what
    ``malsim.mal_simulator.ttc_utils.TTCDist.from_dict`` takes.

    Parameters
    ----------
    expr
        A MAL TTC expression (validated as in :func:`attackprev.mal.expressions.parse_ttc`).
    compiler
        ``'maltoolbox'`` compiles a generated one-step ``.mal`` spec with mal-toolbox;
        ``'builtin'`` translates the parse tree here; ``'auto'`` (default) uses
        mal-toolbox when it is installed. Whenever mal-toolbox is used its result must
        equal the built-in one, so a silent misreading is caught.

    Returns
    -------
    dict
        The dictionary form.

    Raises
    ------
    InputError
        If ``expr`` is invalid, or mal-toolbox reads it differently.
    """
    return ttc_dicts([expr], compiler)[0]
