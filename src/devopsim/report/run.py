"""One run as a report reads it: summary, events and metric store.

A run comes from memory (a :class:`devopsim.api.Result`) or from a results
folder written by ``devopsim run --out DIR``; when the run store exists
(``devopsim.store.resolve_run``), a run id is accepted too.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devopsim.errors import TelemetryError
from devopsim.observe.store import MetricStore

__all__ = ["RunData", "load_run"]


@dataclass
class RunData:
    """What a report needs of one run."""

    summary: dict[str, Any]
    events: list[dict[str, Any]]
    store: MetricStore
    label: str = ""
    """How the run is named on the page (its folder or id)."""
    scenario_info: dict[str, Any] = field(default_factory=dict)
    """Extra facts about the scenario when known (description, services, classes)."""


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise TelemetryError(f"{path}:{n}: not a JSON event ({exc.msg})") from None
    return events


def _from_folder(folder: Path, label: str) -> RunData:
    import pyarrow.parquet as pq

    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise TelemetryError(f"{folder}: no summary.json (not a results folder of `devopsim run --out`)")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TelemetryError(f"{summary_path}: not valid JSON ({exc.msg})") from None
    metrics = folder / "metrics.parquet"
    store = MetricStore.from_arrow(pq.read_table(metrics)) if metrics.is_file() else MetricStore()
    return RunData(summary, _read_events(folder / "events.jsonl"), store, label)


def load_run(ref: str | Path) -> RunData:
    """Load a run from a results folder, or from the run store by id when it has one.

    Raises:
        TelemetryError: nothing readable goes by that name.
    """
    path = Path(ref)
    if path.is_dir():
        return _from_folder(path, path.resolve().name)
    try:
        store_mod = importlib.import_module("devopsim.store")
    except ImportError:
        store_mod = None
    resolve_run = getattr(store_mod, "resolve_run", None)
    if resolve_run is None:
        raise TelemetryError(f"{ref}: no such results folder")
    resolved = resolve_run(str(ref))
    if hasattr(resolved, "__enter__"):  # the run store's RunSource, a context manager
        with resolved as src:
            if getattr(src, "path", None) is not None:
                return _from_folder(Path(src.path), str(ref))
            return RunData(src.summary, src.events(), src.metric_store(), str(getattr(src, "label", ref)))
    if isinstance(resolved, str | Path) and Path(resolved).is_dir():
        return _from_folder(Path(resolved), str(ref))
    raise TelemetryError(f"{ref}: no such results folder or run")


def from_result(result: Any, label: str = "") -> RunData:
    """A :class:`RunData` for a run still in memory (``devopsim.api.Result``)."""
    info: dict[str, Any] = {}
    loaded = getattr(result, "loaded", None)
    scenario = getattr(loaded, "scenario", None)
    if scenario is not None:
        info["description"] = getattr(scenario, "description", None)
        info["start"] = str(getattr(scenario, "start", "") or "") or None
    return RunData(result.summary, result.events, result.store, label, info)
