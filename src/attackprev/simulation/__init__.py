"""Attack simulation: reachability and time to compromise over MAL attack graphs, per posterior draw.

* :mod:`attackprev.simulation.ttc` splits a step's TTC into the probability that it is possible
  and a sampler of its time (:func:`~attackprev.simulation.ttc.decompose_ttc`);
* :mod:`attackprev.simulation.graph` loads a language and an instance model with mal-toolbox
  into flat arrays (:func:`~attackprev.simulation.graph.load_attack_graph`);
* :mod:`attackprev.simulation.schedule` evaluates fixed points over the graph level by level;
* :mod:`attackprev.simulation.engine` computes, per draw, how often an attacker compromises
  each step (:func:`~attackprev.simulation.engine.reach_probability`) and how soon
  (:func:`~attackprev.simulation.engine.time_to_compromise`), with mal-simulator's semantics;
* :mod:`attackprev.simulation.bench` times the engine against mal-simulator.
"""

from attackprev.simulation.engine import (
    ReachResult,
    StepDraws,
    TTCResult,
    compromised,
    earliest_times,
    reach_probability,
    time_to_compromise,
)
from attackprev.simulation.graph import AttackGraphArrays, build_graph, load_attack_graph
from attackprev.simulation.ttc import StepTTC, decompose_ttc

__all__ = [
    "AttackGraphArrays",
    "ReachResult",
    "StepDraws",
    "StepTTC",
    "TTCResult",
    "build_graph",
    "compromised",
    "decompose_ttc",
    "earliest_times",
    "load_attack_graph",
    "reach_probability",
    "time_to_compromise",
]
