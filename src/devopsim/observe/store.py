"""The run's time-series store: series registry plus columnar samples.

A series is a metric name and a label set, registered once and referred to by
an integer id; each scrape appends ``(t, id, value)`` columns. That keeps long
runs compact (no per-sample Python objects) and turns into the long-format
``metrics.parquet`` table of the results contract with dictionary-encoded
``metric`` and ``labels`` columns.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["MetricStore"]


class MetricStore:
    """Series and samples of one run."""

    def __init__(self) -> None:
        self.metric_names: list[str] = []
        self._metric_ids: dict[str, int] = {}
        self.series_metric: list[int] = []
        self.series_label_set: list[int] = []
        self.label_sets: list[str] = []  # distinct label sets as canonical JSON, keys sorted
        self._label_ids: dict[str, int] = {}
        self._index: dict[tuple[int, str], int] = {}
        self._t: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._by_metric: dict[int, list[int]] = {}
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def series(self, metric: str, labels: dict[str, str]) -> int:
        """The id of series ``metric{labels}``, registering it on first use."""
        mid = self._metric_ids.get(metric)
        if mid is None:
            mid = self._metric_ids[metric] = len(self.metric_names)
            self.metric_names.append(metric)
        key = json.dumps(labels, sort_keys=True, separators=(",", ":"))
        sid = self._index.get((mid, key))
        if sid is None:
            sid = self._index[(mid, key)] = len(self.series_metric)
            self.series_metric.append(mid)
            lid = self._label_ids.get(key)
            if lid is None:
                lid = self._label_ids[key] = len(self.label_sets)
                self.label_sets.append(key)
            self.series_label_set.append(lid)
            self._by_metric.setdefault(mid, []).append(sid)
        return sid

    def append(self, t: float, ids: np.ndarray, values: np.ndarray) -> None:
        """Record one scrape: ``values[i]`` of series ``ids[i]`` at time ``t``."""
        if ids.size == 0:
            return
        self._t.append(np.full(ids.size, t))
        self._ids.append(np.asarray(ids, dtype=np.int64))
        self._v.append(np.asarray(values, dtype=np.float64))
        self._sorted = None

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All samples as ``(t, series_id, value)`` arrays."""
        if not self._t:
            return np.empty(0), np.empty(0, dtype=np.int64), np.empty(0)
        if len(self._t) == 1:
            return self._t[0], self._ids[0], self._v[0]
        t = np.concatenate(self._t)
        ids = np.concatenate(self._ids)
        v = np.concatenate(self._v)
        self._t, self._ids, self._v = [t], [ids], [v]
        return t, ids, v

    @property
    def n_samples(self) -> int:
        """How many samples are stored."""
        return int(sum(a.size for a in self._t))

    def to_arrow(self) -> pa.Table:
        """The long-format table: ``t``, ``metric``, ``labels`` (JSON object text), ``value``."""
        import pyarrow as pa

        t, ids, v = self.columns()
        metric_of_series = np.asarray(self.series_metric, dtype=np.int32)
        metric = pa.DictionaryArray.from_arrays(
            pa.array(metric_of_series[ids] if ids.size else np.empty(0, np.int32), pa.int32()),
            pa.array(self.metric_names, pa.string()),
        )
        labels_of_series = np.asarray(self.series_label_set, dtype=np.int32)
        labels = pa.DictionaryArray.from_arrays(
            pa.array(labels_of_series[ids] if ids.size else np.empty(0, np.int32), pa.int32()),
            pa.array(self.label_sets, pa.string()),
        )
        return pa.table(
            {
                "t": pa.array(t, pa.float64()),
                "metric": metric,
                "labels": labels,
                "value": pa.array(v, pa.float64()),
            }
        )

    def to_pandas(self) -> pd.DataFrame:
        """The long-format table as a DataFrame (``metric`` and ``labels`` categorical)."""
        return self.to_arrow().to_pandas()

    # -- queries -------------------------------------------------------------------------------

    def series_of(self, metric: str) -> list[int]:
        """The ids of every series of ``metric`` (empty if the run never had it)."""
        mid = self._metric_ids.get(metric)
        return [] if mid is None else list(self._by_metric.get(mid, []))

    def samples(self, sid: int) -> tuple[np.ndarray, np.ndarray]:
        """The samples of one series as ``(t, value)`` arrays, ordered by time."""
        if self._sorted is None:
            t, ids, v = self.columns()
            order = np.lexsort((t, ids))
            ids_sorted = ids[order]
            bounds = np.searchsorted(ids_sorted, np.arange(len(self.series_metric) + 1))
            self._sorted = (t[order], v[order], bounds, ids_sorted)
        ts, vs, bounds, _ = self._sorted
        if sid < 0 or sid + 1 >= bounds.size:
            return np.empty(0), np.empty(0)
        lo, hi = int(bounds[sid]), int(bounds[sid + 1])
        return ts[lo:hi], vs[lo:hi]

    @classmethod
    def from_arrow(cls, table: pa.Table) -> MetricStore:
        """Rebuild a store from the long-format table :meth:`to_arrow` wrote (``metrics.parquet``)."""
        import pyarrow as pa

        store = cls()
        if table.num_rows == 0:
            return store
        cols = {}
        for name in ("metric", "labels"):
            col = table.column(name).combine_chunks()
            if not pa.types.is_dictionary(col.type):
                col = col.dictionary_encode()
            cols[name] = col
        m_dict = cols["metric"].dictionary.to_pylist()
        l_dict = cols["labels"].dictionary.to_pylist()
        m_idx = cols["metric"].indices.to_numpy(zero_copy_only=False).astype(np.int64)
        l_idx = cols["labels"].indices.to_numpy(zero_copy_only=False).astype(np.int64)
        pair = m_idx * (len(l_dict) + 1) + l_idx
        uniq, inverse = np.unique(pair, return_inverse=True)
        sids = np.empty(uniq.size, dtype=np.int64)
        stride = len(l_dict) + 1
        for k, code in enumerate(uniq.tolist()):
            sids[k] = store.series(m_dict[code // stride], json.loads(l_dict[code % stride]))
        t = table.column("t").to_numpy()
        v = table.column("value").to_numpy()
        store._t, store._ids, store._v = [np.asarray(t, float)], [sids[inverse]], [np.asarray(v, float)]
        return store

    @classmethod
    def from_series(cls, series: list[tuple[str, dict[str, str], list[tuple[float, float]]]]) -> MetricStore:
        """A store holding the given ``(metric, labels, [(t, value), ...])`` series (for tests and tools)."""
        store = cls()
        for metric, labels, points in series:
            sid = store.series(metric, labels)
            if points:
                arr = np.asarray(points, dtype=np.float64)
                store._t.append(arr[:, 0].copy())
                store._ids.append(np.full(arr.shape[0], sid, dtype=np.int64))
                store._v.append(arr[:, 1].copy())
        return store

    def labels_of(self, sid: int) -> dict[str, Any]:
        """The label set of a series."""
        out: dict[str, Any] = json.loads(self.label_sets[self.series_label_set[sid]])
        return out
