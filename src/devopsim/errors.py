"""The exception tree of devopsim.

Every error devopsim raises on purpose derives from :class:`DevopsimError`::

    DevopsimError
    ├── ConfigError            bad input: the user can fix it (exit status 2)
    │   ├── ScenarioError      a scenario file, an override or a preset
    │   └── ExperimentError    a chaos experiment
    ├── SimulationError        the engine found itself in an impossible state
    ├── ChaosError             a fault could not be injected
    └── TelemetryError         metrics, queries, rules or results output

Built-in exceptions are used only for plain bad arguments to Python functions.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ChaosError",
    "ConfigError",
    "DevopsimError",
    "ExperimentError",
    "Issue",
    "ScenarioError",
    "SimulationError",
    "TelemetryError",
]


class DevopsimError(Exception):
    """Base class of every error devopsim raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One problem found in an input file.

    Attributes:
        file: the file the problem is in (or ``<--set>`` for an override).
        line: 1-based line number, or ``None`` when the file has no such line.
        path: dotted path to the field, e.g. ``services.api.replicas``.
        message: what is wrong and what is allowed.
    """

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ConfigError(DevopsimError):
    """Input the user wrote is invalid; carries one or more :class:`Issue`."""

    def __init__(self, issues: list[Issue] | str) -> None:
        if isinstance(issues, str):
            issues = [Issue(file="", line=None, path="", message=issues)]
        self.issues: list[Issue] = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class ScenarioError(ConfigError):
    """A scenario (file, preset or override) is invalid."""


class ExperimentError(ConfigError):
    """A chaos experiment is invalid."""


class SimulationError(DevopsimError):
    """The simulation reached a state it cannot continue from."""


class ChaosError(DevopsimError):
    """A fault could not be injected or recovered."""


class TelemetryError(DevopsimError):
    """Metrics, queries, rules or results could not be produced or read."""
