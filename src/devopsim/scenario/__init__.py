"""Scenario files: loading, validation, units, distributions and presets."""

from devopsim.scenario.loader import ENVIRONMENTS, LoadedScenario, load_scenario, preset_text
from devopsim.scenario.schema import Scenario

__all__ = ["ENVIRONMENTS", "LoadedScenario", "Scenario", "load_scenario", "preset_text"]
