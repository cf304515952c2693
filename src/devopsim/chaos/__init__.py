"""Faults and chaos experiments: the timeline's faults, Chaos Toolkit experiments, weak-point sweeps.

The names below load on first use, so ``devopsim --help`` (which registers the
``chaos`` commands) imports nothing heavy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "ActiveFault",
    "ChaosLoop",
    "Experiment",
    "FaultInjector",
    "load_experiment",
    "parse_experiment",
    "sweep",
    "within_tolerance",
]

_WHERE = {
    "ActiveFault": "faults",
    "FaultInjector": "faults",
    "ChaosLoop": "loop",
    "Experiment": "experiment",
    "load_experiment": "experiment",
    "parse_experiment": "experiment",
    "sweep": "sweep",
    "within_tolerance": "tolerance",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"devopsim.chaos.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'devopsim.chaos' has no attribute {name!r}")
