"""Name a run the way users do: a results folder, or a run id (prefix) in the store.

Commands that read a run's results (``runs export``, ``query``, ``report``, ...)
take one argument ``RUN`` and hand it to :func:`resolve_run`:

* an existing folder holding ``summary.json`` (what ``devopsim run --out`` wrote),
  or that ``summary.json`` file itself;
* otherwise a run in the store: its id, a unique prefix of it (``3f2a``), ``latest``
  or ``latest~N`` (the N-th before the newest).

The answer, a :class:`RunSource`, reads the same either way::

    from devopsim.store import resolve_run

    with resolve_run(arg, db=db) as run:
        summary = run.summary            # dict
        table = run.metrics_table()      # pyarrow Table (long format)
        store = run.metric_store()       # devopsim.observe.store.MetricStore
        events = run.events()            # list of dicts

Tools that need files on disk use :func:`results_dir` instead, which yields the
folder itself or a temporary export of the stored run.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devopsim.errors import ConfigError, Issue, TelemetryError

if TYPE_CHECKING:
    import pyarrow as pa

    from devopsim.observe.store import MetricStore
    from devopsim.store.runstore import RunStore, StoredRun

__all__ = ["RunSource", "resolve_run", "results_dir"]


class RunSource:
    """A run's results, from a folder or from the store.

    Attributes:
        label: how to name it in messages (the folder, or ``run 3f2a9c1d``).
        path: the results folder (``None`` for a stored run).
        run: the stored run (``None`` for a folder).
        summary: the summary dict.
    """

    def __init__(
        self,
        label: str,
        summary: dict[str, Any],
        path: Path | None = None,
        run: StoredRun | None = None,
        store: RunStore | None = None,
    ) -> None:
        self.label = label
        self.summary = summary
        self.path = path
        self.run = run
        self._store = store

    @property
    def run_id(self) -> str | None:
        """The run id when it came from the store."""
        return None if self.run is None else self.run.id

    def metrics_parquet(self) -> bytes:
        """The ``metrics.parquet`` bytes.

        Raises:
            TelemetryError: the run has no metrics.
        """
        if self.path is not None:
            try:
                return (self.path / "metrics.parquet").read_bytes()
            except OSError as exc:
                raise TelemetryError(f"{self.label}: cannot read metrics.parquet: {exc}") from None
        assert self._store is not None and self.run is not None
        data = self._store.metrics_parquet(self.run.id)
        if data is None:
            raise TelemetryError(f"{self.label} has no metrics (status {self.run.status})")
        return data

    def metrics_table(self) -> pa.Table:
        """The long-format metrics table: ``t``, ``metric``, ``labels`` (JSON text), ``value``."""
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(self.metrics_parquet()))

    def metric_store(self) -> MetricStore:
        """The metrics as a :class:`~devopsim.observe.store.MetricStore` (for PromQL and plots)."""
        from devopsim.observe.store import MetricStore

        return MetricStore.from_arrow(self.metrics_table())

    def events(self) -> list[dict[str, Any]]:
        """The event log, one dict per event."""
        if self.path is not None:
            try:
                text = (self.path / "events.jsonl").read_text(encoding="utf-8")
            except OSError as exc:
                raise TelemetryError(f"{self.label}: cannot read events.jsonl: {exc}") from None
        else:
            assert self._store is not None and self.run is not None
            data = self._store.events_jsonl(self.run.id)
            text = "" if data is None else data.decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def scenario_text(self) -> str | None:
        """The scenario as run (``None`` for a folder without ``scenario.yaml``)."""
        if self.run is not None:
            from devopsim.store.export import scenario_as_run

            return scenario_as_run(self.run)
        assert self.path is not None
        f = self.path / "scenario.yaml"
        return f.read_text(encoding="utf-8") if f.is_file() else None

    def close(self) -> None:
        """Release the store connection (if any)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> RunSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _folder(arg: str | Path) -> Path | None:
    p = Path(arg).expanduser()
    if p.is_file() and p.name == "summary.json":
        return p.parent
    if p.is_dir():
        if not (p / "summary.json").is_file():
            raise ConfigError([Issue(str(p), None, "", "not a results folder: it has no summary.json")])
        return p
    text = str(arg)
    if os.sep in text or text.startswith(".") or p.suffix:
        raise ConfigError([Issue(text, None, "", "no such results folder (and not a run id)")])
    return None


def resolve_run(arg: str | Path, db: str | None = None) -> RunSource:
    """The run ``arg`` names: a results folder, or a run id / prefix / ``latest~N`` in the store at ``db``.

    Raises:
        ConfigError: no such folder or run, or the prefix is ambiguous.
        TelemetryError: the store or the folder cannot be read.
    """
    folder = _folder(arg)
    if folder is not None:
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TelemetryError(f"{folder}: cannot read summary.json: {exc}") from None
        return RunSource(str(folder), summary, path=folder)
    from devopsim.store.runstore import RunStore

    store = RunStore(db)
    try:
        run = store.get(str(arg))
        if run.summary is None:
            raise ConfigError([Issue("run", None, "", f"{run.short_id} is {run.status}: it has no results")])
    except BaseException:
        store.close()
        raise
    return RunSource(f"run {run.short_id}", run.summary, run=run, store=store)


@contextmanager
def results_dir(arg: str | Path, db: str | None = None) -> Iterator[Path]:
    """A results folder for ``arg``: the folder itself, or a temporary export of the stored run."""
    folder = _folder(arg)
    if folder is not None:
        yield folder
        return
    from devopsim.store.export import export_run
    from devopsim.store.runstore import RunStore

    with RunStore(db) as store, tempfile.TemporaryDirectory(prefix="devopsim-run-") as tmp:
        out = Path(tmp) / "run"
        export_run(store, str(arg), out)
        yield out
