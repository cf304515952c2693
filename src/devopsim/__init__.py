"""devopsim: a fast, faithful digital twin of a microservice platform.

>>> import devopsim
>>> result = devopsim.simulate("scenario.yaml")            # doctest: +SKIP
>>> result.summary["classes"]["browse"]["latency_s"]["p99"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devopsim.errors import (
    ChaosError,
    ConfigError,
    DevopsimError,
    ExperimentError,
    ScenarioError,
    SimulationError,
    TelemetryError,
)

__version__ = "0.1.0"

__all__ = [
    "ChaosError",
    "ConfigError",
    "DevopsimError",
    "ExperimentError",
    "Result",
    "ScenarioError",
    "SimulationError",
    "TelemetryError",
    "__version__",
    "load_scenario",
    "simulate",
]

if TYPE_CHECKING:
    from devopsim.api import Result, simulate
    from devopsim.scenario.loader import load_scenario


def __getattr__(name: str) -> Any:
    # The API pulls in NumPy and the engine; import it only when asked, so the CLI starts fast.
    if name in ("simulate", "Result"):
        from devopsim import api

        return getattr(api, name)
    if name == "load_scenario":
        from devopsim.scenario.loader import load_scenario

        return load_scenario
    raise AttributeError(f"module 'devopsim' has no attribute {name!r}")
