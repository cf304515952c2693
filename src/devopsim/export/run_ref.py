"""Resolve the RUN argument of ``devopsim query`` and ``devopsim export`` to a results folder.

Today RUN is a folder written by ``devopsim run --out DIR``. This is the one
place to teach the commands other ways to name a run (a run id in the run
store, for instance).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from devopsim.errors import ConfigError, Issue

if TYPE_CHECKING:
    from devopsim.observe.store import MetricStore

__all__ = ["load_store", "resolve_run"]


def resolve_run(arg: str | Path) -> Path:
    """The results folder that ``arg`` names.

    Raises:
        ConfigError: no such run, or the folder holds no ``metrics.parquet``.
    """
    path = Path(arg)
    if path.is_dir() and (path / "metrics.parquet").is_file():
        return path
    if path.is_dir():
        msg = f"{path} has no metrics.parquet; give a folder written by `devopsim run --out DIR`"
    else:
        msg = f"no run named {str(arg)!r}: give a folder written by `devopsim run --out DIR`"
    raise ConfigError([Issue(file=str(arg), line=None, path="", message=msg)])


def load_store(run: Path) -> MetricStore:
    """Rebuild the run's time-series store from its ``metrics.parquet``."""
    import pyarrow.parquet as pq

    from devopsim.observe.store import MetricStore

    return MetricStore.from_arrow(pq.read_table(run / "metrics.parquet"))


def run_origin(run: Path) -> float:
    """Unix time of the run's t = 0: its summary's ``start``, else :data:`DEFAULT_EPOCH`."""
    import json

    from devopsim.export.openmetrics import DEFAULT_EPOCH, parse_start

    summary = run / "summary.json"
    if summary.is_file():
        start = json.loads(summary.read_text()).get("start")
        if isinstance(start, str):
            return parse_start(start)
    return float(DEFAULT_EPOCH)
