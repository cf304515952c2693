"""The Python API: ``devopsim.simulate(...) -> Result``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devopsim.scenario.loader import LoadedScenario, load_scenario, validate_source
from devopsim.scenario.schema import Scenario
from devopsim.scenario.yamlsrc import Source

if TYPE_CHECKING:
    import pandas as pd

    from devopsim.observe.store import MetricStore

__all__ = ["Result", "simulate"]


class Result:
    """What a run produced.

    Attributes:
        summary: the summary of the results contract (a JSON-ready dict).
        events: the event log, one dict per event (``t``, ``kind``, fields).
        store: the run's time-series store.
    """

    def __init__(
        self,
        summary: dict[str, Any],
        events: list[dict[str, Any]],
        store: MetricStore,
        loaded: LoadedScenario,
    ) -> None:
        self.summary = summary
        self.events = events
        self.store = store
        self.loaded = loaded
        self._metrics: pd.DataFrame | None = None

    @property
    def metrics(self) -> pd.DataFrame:
        """Scraped series in long format: ``t``, ``metric``, ``labels`` (JSON text), ``value``."""
        if self._metrics is None:
            self._metrics = self.store.to_pandas()
        return self._metrics

    def write(self, out: str | Path, report: bool = True) -> list[Path]:
        """Write ``summary.json``, ``metrics.parquet``, ``events.jsonl`` and ``report.html`` into ``out``.

        The HTML report needs the ``report`` extra (Jinja2); without it, or with
        ``report=False``, the other files are written alone.
        """
        from devopsim.results.events import EventLog
        from devopsim.results.writer import write_results

        log = EventLog()
        log.events = self.events
        written = write_results(Path(out), self.summary, self.store, log)
        if report:
            try:
                from devopsim.report import from_result, render_report, write_html
            except ImportError:  # pragma: no cover - the report extra is not installed
                return written
            written.append(write_html(render_report(from_result(self)), Path(out) / "report.html"))
        return written


def _load(
    scenario: str | Path | Scenario | LoadedScenario | dict[str, Any],
    overrides: list[str] | dict[str, Any] | None,
) -> LoadedScenario:
    if isinstance(scenario, LoadedScenario):
        if overrides:
            raise ValueError("apply overrides when loading; a LoadedScenario is already validated")
        return scenario
    if isinstance(scenario, Scenario):
        from devopsim.errors import ScenarioError
        from devopsim.scenario.checks import check_scenario
        from devopsim.scenario.support import unsupported_features

        if overrides:
            raise ValueError("overrides apply to files and dicts, not to a Scenario object")
        src = Source(file="<Scenario>", data={})
        issues = check_scenario(scenario, src)
        if issues:
            raise ScenarioError(issues)
        return LoadedScenario(scenario, src, unsupported_features(scenario, src), Path.cwd())
    if isinstance(scenario, dict):
        from devopsim.scenario.loader import apply_overrides

        src = apply_overrides(Source(file="<dict>", data=scenario), overrides)
        return validate_source(src, Path.cwd())
    return load_scenario(scenario, overrides=overrides)


def simulate(
    scenario: str | Path | Scenario | LoadedScenario | dict[str, Any],
    seed: int | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> Result:
    """Play a scenario forward and return what its users would have experienced.

    Args:
        scenario: a scenario file, a validated scenario, or its data as a dict.
        seed: overrides the scenario's seed.
        overrides: ``path=value`` strings or a ``{path: value}`` mapping, as ``--set``.
        progress: called with (simulated seconds done, total seconds) as the run goes.

    Raises:
        ScenarioError: the scenario is invalid.
        SimulationError: the engine could not continue.
    """
    from devopsim.engine.runner import Simulation

    loaded = _load(scenario, overrides)
    out = Simulation(loaded, seed=seed, progress=progress).run()
    return Result(out.summary, out.log.events, out.store, loaded)
