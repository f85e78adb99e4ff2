"""A MAL step's TTC, split into the probability that the step is possible and a sampler for its time.

mal-toolbox gives a step's TTC as a dictionary tree: ``{'type': 'function', 'name': 'Bernoulli',
'arguments': [p]}``, ``{'type': 'number', 'value': x}`` or ``{'type': <operation>, 'lhs': ..., 'rhs': ...}``
with the operations ``addition``, ``subtraction``, ``multiplication``, ``division`` and ``exponentiation``;
``None`` is a step without a TTC. :func:`decompose_ttc` splits such a tree into

* the probability that the step is possible at all: the product of its Bernoulli factors (1 when there
  are none, 0 for ``Infinity``), a Bernoulli counting when it is reached from the root through sums and
  products only (``Bernoulli(p) * X`` is X with probability p and impossible otherwise, MAL's meaning);
* the time part, the tree with those factors removed: a Bernoulli that succeeds is 1 in a product
  (``Bernoulli(p) * X`` takes X's time) and 0 alone or in a sum (a lone ``Bernoulli(p)`` is instant).

Distributions sampled: ``Exponential(rate)``, ``Gamma(shape, scale)``, ``LogNormal(mean, sd)`` (of the log),
``Uniform(min, max)``, ``Binomial(n, p)``, numbers, ``Zero`` and the named constants ``EasyAndCertain``,
``HardAndCertain``, ``VeryHardAndCertain`` (``Exponential`` of 1, 0.1, 0.01) and ``EasyAndUncertain``,
``HardAndUncertain``, ``VeryHardAndUncertain`` (the same with a ``Bernoulli(0.5)``), as mal-simulator
defines them. Operations are applied to the samples; a negative result (possible with subtraction)
is taken as 0. ``Pareto`` and ``TruncatedNormal`` are MAL functions that mal-simulator rejects: their
probability part is still read, but sampling their time raises :class:`~attackprev.errors.InputError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attackprev.errors import InputError
from attackprev.mal.expressions import NAMED_CONSTANTS

#: Named TTC constants, as mal-simulator 3.3 defines them: (probability, time part).
_EXP = "Exponential"
NAMED: dict[str, tuple[float, dict[str, Any] | None]] = {
    **{
        name: (p, None if rate is None else {"type": "function", "name": _EXP, "arguments": [rate]})
        for name, (p, rate) in NAMED_CONSTANTS.items()
    },
    "Enabled": (1.0, None),
    "Disabled": (0.0, None),
    "Instant": (1.0, None),
    "Zero": (1.0, {"type": "number", "value": 0.0}),
    "Infinity": (0.0, None),
}
#: Distributions with their number of arguments; those mapped to False cannot be sampled.
FUNCTIONS: dict[str, tuple[int, bool]] = {
    "Bernoulli": (1, True),
    "Binomial": (2, True),
    "Exponential": (1, True),
    "Gamma": (2, True),
    "LogNormal": (2, True),
    "Uniform": (2, True),
    "Pareto": (2, False),
    "TruncatedNormal": (2, False),
}
_OPERATIONS = ("addition", "subtraction", "multiplication", "division", "exponentiation")


def _check_function(name: str, args: list[float]) -> None:
    if name in NAMED:
        return
    if name not in FUNCTIONS:
        raise InputError(f"unknown TTC function {name!r}")
    arity, _ = FUNCTIONS[name]
    if len(args) != arity:
        raise InputError(f"{name} takes {arity} argument(s), not {len(args)}")
    if not all(np.isfinite(a) for a in args):
        raise InputError(f"{name}{tuple(args)} has a non-finite argument")
    bad = {
        "Bernoulli": not 0 <= args[0] <= 1,
        "Binomial": len(args) == 2 and (args[0] < 0 or not 0 <= args[1] <= 1),
        "Exponential": args[0] <= 0,
        "Gamma": len(args) == 2 and (args[0] <= 0 or args[1] <= 0),
        "LogNormal": len(args) == 2 and args[1] < 0,
        "Uniform": len(args) == 2 and args[0] > args[1],
    }.get(name, False)
    if bad:
        raise InputError(f"{name}({', '.join(f'{a:g}' for a in args)}) has an invalid argument")


def _split(expr: dict[str, Any] | None, factor: bool) -> tuple[float, dict[str, Any] | None]:
    """(probability, time part) of ``expr``; ``factor`` is True while only sums and products lie above it.

    A time part of None means 'no time of its own': the identity of the operation above it.
    """
    if expr is None:
        return 1.0, None
    kind = expr.get("type")
    if kind == "number":
        return 1.0, {"type": "number", "value": float(expr["value"])}
    if kind == "function":
        name, args = expr["name"], [float(a) for a in expr.get("arguments", [])]
        _check_function(name, args)
        if name in NAMED:
            prob, time = NAMED[name]
            if prob != 1.0 and not factor:
                raise InputError(f"{name} may only be a factor or term of a TTC, not under - / or ^")
            return prob, time
        if name == "Bernoulli":
            if not factor:
                raise InputError("Bernoulli may only be a factor or term of a TTC, not under - / or ^")
            return args[0], None
        return 1.0, {"type": "function", "name": name, "arguments": args}
    if kind in _OPERATIONS:
        inner = factor and kind in ("addition", "multiplication")
        p_lhs, t_lhs = _split(expr["lhs"], inner)
        p_rhs, t_rhs = _split(expr["rhs"], inner)
        if inner and (t_lhs is None or t_rhs is None):
            return p_lhs * p_rhs, t_rhs if t_lhs is None else t_lhs
        zero = {"type": "number", "value": 0.0}
        return p_lhs * p_rhs, {"type": kind, "lhs": t_lhs or zero, "rhs": t_rhs or zero}
    raise InputError(f"unknown TTC node type {kind!r}")


def _sample(expr: dict[str, Any], rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    kind = expr["type"]
    if kind == "number":
        return np.full(shape, expr["value"])
    if kind == "function":
        name, args = expr["name"], expr["arguments"]
        if name == "Exponential":
            return rng.exponential(1.0 / args[0], shape)
        if name == "Gamma":
            return rng.gamma(args[0], args[1], shape)
        if name == "LogNormal":
            return rng.lognormal(args[0], args[1], shape)
        if name == "Uniform":
            return rng.uniform(args[0], args[1], shape)
        if name == "Binomial":
            return rng.binomial(int(args[0]), args[1], shape).astype(float)
        raise InputError(f"cannot sample {name} times (mal-simulator rejects it too)")
    lhs, rhs = _sample(expr["lhs"], rng, shape), _sample(expr["rhs"], rng, shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        match kind:
            case "addition":
                return lhs + rhs
            case "subtraction":
                return lhs - rhs
            case "multiplication":
                return lhs * rhs
            case "division":
                return lhs / rhs
            case _:
                return lhs**rhs


def _samplable(expr: dict[str, Any] | None) -> bool:
    if expr is None or expr["type"] == "number":
        return True
    if expr["type"] == "function":
        return FUNCTIONS[expr["name"]][1]
    return _samplable(expr["lhs"]) and _samplable(expr["rhs"])


@dataclass(frozen=True)
class StepTTC:
    """A step's TTC split into the probability that it is possible and the time it takes if it is.

    Attributes
    ----------
    probability
        Product of the Bernoulli factors (1 when none, 0 for ``Infinity``). For a defense, the
        probability that it is enabled.
    time
        The TTC tree without its Bernoulli factors, in mal-toolbox's dictionary form; None for zero time.
    """

    probability: float
    time: dict[str, Any] | None = field(default=None, compare=True)

    @property
    def key(self) -> str:
        """A text key equal for equal time parts (used to sample many steps at once)."""
        return json.dumps(self.time, sort_keys=True)

    @property
    def samplable(self) -> bool:
        """Whether :meth:`sample_times` can sample the time part."""
        return _samplable(self.time)

    def sample_times(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Times (in days) given that the step is possible: an array of ``size``, all >= 0.

        Raises
        ------
        InputError
            If the time part uses a distribution that cannot be sampled (Pareto, TruncatedNormal).
        """
        shape = (size,) if isinstance(size, int) else tuple(size)
        if self.time is None:
            return np.zeros(shape)
        out = _sample(self.time, rng, shape)
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(out) | (out < 0), 0.0, out)


def decompose_ttc(ttc: dict[str, Any] | None, node_type: str = "or") -> StepTTC:
    """Split a TTC as mal-toolbox gives it into its probability and its time part.

    Parameters
    ----------
    ttc
        The TTC dictionary of a node or language step (``node.ttc``), or None.
    node_type
        ``'or'``/``'and'`` (attack step), ``'defense'``, ``'exist'`` or ``'notExist'``. A step without
        a TTC is instant and always possible; a defense without one is disabled (as mal-simulator
        treats them); existence steps carry no TTC (probability 1, zero time).

    Returns
    -------
    StepTTC

    Raises
    ------
    InputError
        If the tree has an unknown node or function, a wrong number of arguments, an invalid
        argument, or a Bernoulli under a subtraction, division or power (no defined probability).
    """
    if ttc is None:
        return StepTTC(0.0 if node_type == "defense" else 1.0, None)
    if node_type in ("exist", "notExist"):
        return StepTTC(1.0, None)
    prob, time = _split(ttc, factor=True)
    if node_type == "defense":
        return StepTTC(prob, None)
    if prob == 0.0:
        time = None
    return StepTTC(float(prob), time)
