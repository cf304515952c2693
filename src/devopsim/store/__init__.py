"""The run store: every recorded run, kept in SQLite (default) or PostgreSQL.

>>> from devopsim.store import RunStore, resolve_run
>>> store = RunStore()                        # doctest: +SKIP  ($DEVOPSIM_DB or the per-user file)
>>> run_id = store.record(devopsim.simulate("mmc.yaml"))  # doctest: +SKIP
>>> resolve_run(run_id[:6]).summary["seed"]   # doctest: +SKIP

Heavy imports (SQLAlchemy, PyArrow) happen when these names are first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "RunInfo",
    "RunSource",
    "RunStore",
    "StoredRun",
    "resolve_run",
    "resolve_url",
    "results_dir",
]

if TYPE_CHECKING:
    from devopsim.store.resolve import RunSource, resolve_run, results_dir
    from devopsim.store.runstore import RunInfo, RunStore, StoredRun
    from devopsim.store.url import resolve_url

_WHERE = {
    "RunInfo": "runstore",
    "RunStore": "runstore",
    "StoredRun": "runstore",
    "RunSource": "resolve",
    "resolve_run": "resolve",
    "results_dir": "resolve",
    "resolve_url": "url",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'devopsim.store' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"devopsim.store.{mod}"), name)
