"""Scenario files: loading, validation, units, distributions and presets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ENVIRONMENTS", "LoadedScenario", "Scenario", "load_scenario", "preset_text"]

if TYPE_CHECKING:
    from devopsim.scenario.loader import ENVIRONMENTS, LoadedScenario, load_scenario, preset_text
    from devopsim.scenario.schema import Scenario


def __getattr__(name: str) -> Any:
    # Lazy, so that leaf modules (units, calls) import without pulling in the whole schema.
    if name == "Scenario":
        from devopsim.scenario.schema import Scenario

        return Scenario
    if name in __all__:
        from devopsim.scenario import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'devopsim.scenario' has no attribute {name!r}")
