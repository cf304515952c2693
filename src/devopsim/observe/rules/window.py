"""A sliding window over the run's store, so rule evaluation costs the same at hour 1 and hour 24.

Rules only read the recent past: the lookback (5m) plus the longest range,
offset and subquery window their expressions name. The loop tees every
sample appended to the run's store into a small store of its own and drops
what has left the window, so each evaluation works on a bounded amount of
data instead of the whole run. Series keep their ids in the window store.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from devopsim.observe.rules.files import parse_duration_prom
from devopsim.observe.store import MetricStore

__all__ = ["WindowStore", "needed_history"]

_DUR = r"\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*"
_RANGE = re.compile(rf"\[\s*({_DUR})\s*(?::\s*({_DUR})?\s*)?\]")
_OFFSET = re.compile(rf"\boffset\s+-?\s*({_DUR})")


def needed_history(exprs: list[str], lookback: float = 300.0) -> float | None:
    """Seconds of history the expressions can read at an evaluation (None: unbounded, e.g. ``@``)."""
    longest = 0.0
    for e in exprs:
        if "@" in e:
            return None
        total = sum(parse_duration_prom(m.group(1)) for m in _RANGE.finditer(e))
        total += sum(parse_duration_prom(m.group(1)) for m in _OFFSET.finditer(e))
        longest = max(longest, total)
    return longest + lookback


class WindowStore:
    """The last ``history`` seconds of a store, fed by :meth:`tee` (see the module docstring).

    With ``metrics``, only series of those metric names are kept (the names the rules select).
    """

    def __init__(self, source: MetricStore, history: float, metrics: set[str] | None = None) -> None:
        self.source = source
        self.history = history
        self.metrics = metrics
        self.store = MetricStore()
        self._map: dict[int, int] = {}
        self._lut = np.full(0, -1, dtype=np.int64)  # source series id -> window series id
        self._oldest = float("inf")
        self.on_rebuild: Callable[[], None] | None = None

    def _wid(self, sid: int) -> int:
        w = self._map.get(sid)
        if w is None:
            src = self.source
            metric = src.metric_names[src.series_metric[sid]]
            w = self._map[sid] = self.store.series(metric, src.labels_of(sid))
        return w

    def tee(self, t: float, ids: np.ndarray, values: np.ndarray) -> None:
        """Copy one append of the source store into the window."""
        if ids.size == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        n = len(self.source.series_metric)
        if self._lut.size < n:
            self._lut = np.concatenate((self._lut, np.full(n - self._lut.size, -1, dtype=np.int64)))
        wids = self._lut[ids]
        if (wids == -1).any():
            src = self.source
            for sid in np.unique(ids[wids == -1]).tolist():
                metric = src.metric_names[src.series_metric[sid]]
                wanted = self.metrics is None or metric in self.metrics
                self._lut[sid] = self._wid(int(sid)) if wanted else -2
            wids = self._lut[ids]
        keep = wids >= 0
        if not keep.all():
            wids, values = wids[keep], np.asarray(values)[keep]
            if wids.size == 0:
                return
        self.store.append(t, wids, values)
        self._oldest = min(self._oldest, t)

    def trim(self, now: float) -> None:
        """Forget samples older than ``now - history`` (when there are enough of them to matter)."""
        horizon = now - self.history - 1.0
        if self._oldest >= horizon - self.history:  # rebuild at most once per history span
            return
        t, ids, v = self.store.columns()
        keep = t > horizon
        fresh = MetricStore()
        old = self.store
        for sid in range(len(old.series_metric)):
            fresh.series(old.metric_names[old.series_metric[sid]], old.labels_of(sid))
        tk, ik, vk = t[keep], ids[keep], v[keep]
        order = np.argsort(tk, kind="stable")
        tk, ik, vk = tk[order], ik[order], vk[order]
        times, starts = np.unique(tk, return_index=True)
        bounds = [*starts.tolist(), tk.size]
        for k, tt in enumerate(times.tolist()):
            fresh.append(tt, ik[bounds[k] : bounds[k + 1]], vk[bounds[k] : bounds[k + 1]])
        self.store = fresh
        self._oldest = float(t[keep].min()) if keep.any() else float("inf")
        if self.on_rebuild is not None:
            self.on_rebuild()
