"""The run's time-series store: series registry plus per-scrape tables of samples.

A series is a metric name and a label set, registered once and referred to by
an integer id. Samples are kept as Prometheus' scrape loop produces them: each
:meth:`MetricStore.append` is one *row* (a time and one value per series of a
*layout*, the array of series ids the row covers). Consecutive appends with the
same layout (the scraper's, between two pod changes) share one table: the ids
are stored once per table, the time once per row, so a sample costs its 8-byte
value and nothing else (the old layout, ``(t, id, value)`` per sample, cost 24).

Long runs stay bounded with Thanos-style downsampling (:class:`Limits`): when
the raw samples exceed a byte budget, or are older than a raw retention, the
oldest rows of each table are replaced by 5-minute aggregates (and those by
1-hour aggregates when they in turn exceed their share): per series and window
the ``count``, ``sum``, ``min``, ``max`` and ``counter`` (the last value with
counter resets added back, so ``rate()`` over it is the raw rate). PromQL picks
the aggregate the function needs (see :mod:`devopsim.observe.promql.select`).

Staleness markers (Prometheus' special NaN, :data:`STALE_NAN`) written when a
series disappears from its target are kept apart from the samples: PromQL sees
them, :meth:`MetricStore.columns` and the exported files do not.

The long-format ``metrics.parquet`` table of the results contract comes from
:meth:`MetricStore.to_arrow`, with dictionary-encoded ``metric`` and ``labels``.

A writer may owe rows it computes later (the rules loop evaluates its groups in
batches): :meth:`MetricStore.owe` registers what settles the debt, and the store
settles it before anything reads it, before a new series or metric name is
registered and before a row or staleness marker is added at or before the owed
time; rows written late take the place in append order :meth:`MetricStore.reserve`
gave them. Nobody can tell the rows were late: same series ids, same rows, same
order.
"""

from __future__ import annotations

import bisect
import json
import operator
import struct
from array import array
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["AGGREGATES", "STALE_BITS", "STALE_NAN", "Limits", "MetricStore", "is_stale", "limits_for"]

#: The bit pattern of Prometheus' staleness marker (``value.StaleNaN``).
STALE_BITS = 0x7FF0000000000002
#: Prometheus' staleness marker as a float (a NaN; compare bits with :func:`is_stale`).
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_BITS))[0]
#: The aggregates a downsampled window keeps per series, in Thanos' order.
AGGREGATES = ("count", "sum", "min", "max", "counter")
_SLOT = 20  # a row's order key is (appends before it + 1) << _SLOT; late rows fill the gaps

_Labels = tuple[tuple[str, str], ...]


def is_stale(values: np.ndarray) -> np.ndarray:
    """Which values are staleness markers (by bit pattern, as Prometheus tests them)."""
    v = np.ascontiguousarray(values, dtype=np.float64)
    out: np.ndarray = v.view(np.uint64) == STALE_BITS
    return out


@dataclass(frozen=True)
class Limits:
    """How much raw data the store keeps before it downsamples (Thanos' compactor, in memory).

    Args:
        raw_bytes: raw sample values kept (8 bytes each) before the oldest rows are downsampled.
        raw_retention: seconds of raw data kept behind the newest sample; older rows are downsampled.
        resolutions: the downsampling resolutions in seconds, finest first (Thanos: 5m, 1h).
        level_bytes: the budget of each downsampled level before it is downsampled further.
    """

    raw_bytes: int | None = 1024**3
    raw_retention: float | None = None
    resolutions: tuple[float, ...] = (300.0, 3600.0)
    level_bytes: int | None = 512 * 1024**2


def limits_for(monitoring: Any) -> Limits:
    """The store limits of a scenario's ``monitoring``: the default budget (:class:`Limits`);
    with ``thanos`` or ``downsampling``, raw data older than ``retention`` is downsampled too,
    to the ``downsampling`` resolutions (Thanos' 5m and 1h when not given)."""
    res = tuple(float(r) for r in (monitoring.downsampling or ())) or Limits.resolutions
    thanos = bool(monitoring.thanos or monitoring.downsampling)
    retention = float(monitoring.retention) if thanos and monitoring.retention else None
    return Limits(raw_retention=retention, resolutions=tuple(sorted(res)))


class _Table:
    """Rows of one layout: ``t[k]`` and ``values[k, j]`` of series ``ids[j]``.

    The last ``ids.size - nvar`` columns are *static*: the same value (``svals``) at every
    row, stored once (kube-state-metrics' info and phase series, limits: what only changes
    when the pods do, and so starts a new table anyway).
    """

    __slots__ = (
        "blocks",
        "cap",
        "cur",
        "fill",
        "ids",
        "last_t",
        "max_rows",
        "n",
        "ncols",
        "nvar",
        "seq",
        "sorted",
        "src",
        "starts",
        "svals",
        "t",
        "tcap",
    )

    def __init__(self, ids: np.ndarray, nvar: int, svals: np.ndarray) -> None:
        self.ids = ids  # int32, read-only: the varying columns, then the static ones
        self.ncols = int(ids.size)
        self.nvar = nvar
        self.svals = svals
        self.src: tuple[Any, ...] | None = None  # the caller's arrays last appended with (fast path)
        self.t = np.empty(4)
        self.seq = np.empty(4, dtype=np.int64)  # global append order of each row (a sort key)
        self.tcap = 4  # rows ``t`` and ``seq`` hold
        self.n = 0
        self.blocks: list[np.ndarray] = []
        self.starts: list[int] = []  # first row of each block
        self.fill = 0
        # The last block and its rows (None and 0 when there is none): where the next row goes
        # while ``fill < cap``.
        self.cur: np.ndarray | None = None
        self.cap = 0
        self.max_rows = int(np.clip((1 << 19) // max(nvar, 1), 1, 256))
        self.sorted = True
        self.last_t = -float("inf")  # the time of the last row appended (rows sorted while rising)

    def append(self, t: float, seq: int, values: np.ndarray) -> int:
        """Add one row; returns the bytes this added to :attr:`nbytes`."""
        grown = 0
        n = self.n
        if n == self.tcap:
            before = self.t.nbytes
            self.t = np.resize(self.t, 2 * n)
            self.seq = np.resize(self.seq, 2 * n)
            self.tcap = 2 * n
            grown += 2 * (self.t.nbytes - before)
        if t < self.last_t:
            self.sorted = False
        self.last_t = t
        self.t[n] = t
        self.seq[n] = seq
        fill = self.fill
        cur = self.cur
        if cur is None or fill == self.cap:
            rows = min(self.max_rows, max(1, 2 * self.cap)) if cur is not None else 1
            cur = self.cur = np.empty((rows, self.nvar))
            self.cap = rows
            grown += cur.nbytes
            self.blocks.append(cur)
            self.starts.append(n)
            fill = 0
        cur[fill] = values
        self.fill = fill + 1
        self.n = n + 1
        return grown

    def _blocks_changed(self) -> None:
        """``blocks`` was replaced: the last block is where rows go next."""
        blocks = self.blocks
        self.cur = blocks[-1] if blocks else None
        self.cap = blocks[-1].shape[0] if blocks else 0
        self.tcap = self.t.size

    def _var(self) -> np.ndarray:
        if not self.blocks:
            return np.empty((0, self.nvar))
        if len(self.blocks) > 1:
            merged = np.concatenate([*self.blocks[:-1], self.blocks[-1][: self.fill]])
            self.blocks, self.fill, self.starts = [merged], merged.shape[0], [0]
            self._blocks_changed()
        return self.blocks[0][: self.fill]

    def values(self) -> np.ndarray:
        """All rows as one ``(n, ncols)`` array (static columns filled in)."""
        var = self._var()
        if self.nvar == self.ids.size:
            return var
        return np.hstack([var, np.broadcast_to(self.svals, (var.shape[0], self.svals.size))])

    def rows(self, a: int, b: int, cols: np.ndarray | None = None) -> np.ndarray:
        """Rows ``a:b`` (time order) as a ``(b - a, ncols)`` array, only columns ``cols`` if given."""
        self.ensure_sorted()
        nv = self.nvar
        if nv < self.ids.size:
            if cols is None:
                full = np.empty((b - a, self.ids.size))
                full[:, :nv] = self._var_rows(a, b, None)
                full[:, nv:] = self.svals
                return full
            is_var = cols < nv
            out = np.empty((b - a, cols.size))
            if is_var.any():
                out[:, is_var] = self._var_rows(a, b, cols[is_var])
            out[:, ~is_var] = self.svals[cols[~is_var] - nv]
            return out
        return self._var_rows(a, b, cols)

    def _var_rows(self, a: int, b: int, cols: np.ndarray | None) -> np.ndarray:
        out: list[np.ndarray] = []
        first = max(bisect.bisect_right(self.starts, a) - 1, 0)
        start = self.starts[first] if self.starts else 0
        last = len(self.blocks) - 1
        for k in range(first, len(self.blocks)):
            blk = self.blocks[k]
            size = self.fill if k == last else blk.shape[0]
            lo, hi = max(a, start), min(b, start + size)
            if lo < hi:
                part = blk[lo - start : hi - start]
                out.append(part if cols is None else part[:, cols])
            start += size
            if start >= b:
                break
        if len(out) == 1:
            return out[0]
        width = self.nvar if cols is None else cols.size
        return np.concatenate(out) if out else np.empty((0, width))

    def ensure_sorted(self) -> None:
        if self.sorted:
            return
        order = np.argsort(self.t[: self.n], kind="stable")
        vals = self._var()[order]
        self.t[: self.n] = self.t[: self.n][order]
        self.seq[: self.n] = self.seq[: self.n][order]
        self.blocks, self.fill, self.sorted, self.starts = [vals], vals.shape[0], True, [0]
        self._blocks_changed()
        self.last_t = float(self.t[self.n - 1]) if self.n else -float("inf")

    def drop_rows(self, k: int) -> None:
        """Forget the first ``k`` rows (time order)."""
        self.ensure_sorted()
        if k >= self.n:
            self.blocks, self.starts, self.fill, self.n = [], [], 0, 0
            self.t, self.seq = np.empty(4), np.empty(4, dtype=np.int64)
            self._blocks_changed()
            self.last_t = -float("inf")
            return
        # Whole blocks before row k are freed; the block holding row k is kept as a view.
        j = bisect.bisect_right(self.starts, k) - 1
        off = k - self.starts[j]
        last = j == len(self.blocks) - 1
        self.blocks = [self.blocks[j][off:], *self.blocks[j + 1 :]]
        self.starts = [0, *(st - k for st in self.starts[j + 1 :])]
        if last:
            self.fill -= off
        self.t = self.t[k : self.n].copy()
        self.seq = self.seq[k : self.n].copy()
        self.n -= k
        self._blocks_changed()
        self.last_t = float(self.t[self.n - 1])

    @property
    def nbytes(self) -> int:
        return int(
            sum(b.nbytes for b in self.blocks) + self.ids.nbytes + self.svals.nbytes + self.t.nbytes * 2
        )


@dataclass
class Aggregates:
    """One downsampled level's windows of one layout.

    Arrays ``(windows, nvar)`` per aggregate for the varying columns ``ids[:nvar]``; the
    static columns ``ids[nvar:]`` keep their one value ``svals`` (and ``rows``, the raw rows
    of each window, gives their count and sum).
    """

    ids: np.ndarray
    t: np.ndarray  # time of the last raw sample of each window
    count: np.ndarray
    sum: np.ndarray
    min: np.ndarray
    max: np.ndarray
    counter: np.ndarray
    rows: np.ndarray  # raw rows per window
    svals: np.ndarray

    @property
    def nvar(self) -> int:
        return int(self.count.shape[1])

    def take(self, aggr: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Aggregate ``aggr`` (or ``avg``: sum / count) of windows ``rows`` and columns ``cols``."""
        if aggr == "avg":
            with np.errstate(invalid="ignore", divide="ignore"):
                out: np.ndarray = self.take("sum", rows, cols) / self.take("count", rows, cols)
            return out
        nv = self.nvar
        is_var = cols < nv
        res = np.empty((rows.size, cols.size))
        if is_var.any():
            res[:, is_var] = getattr(self, aggr)[np.ix_(rows, cols[is_var])]
        if not is_var.all():
            sv = self.svals[cols[~is_var] - nv][None, :]
            n = self.rows[rows].astype(np.float64)[:, None]
            res[:, ~is_var] = {"count": n + 0 * sv, "sum": n * sv}.get(aggr, sv + 0 * n)
        return res

    def head(self, k: int) -> Aggregates:
        """The first ``k`` windows (copies)."""
        return self._slice(slice(0, k))

    def tail(self, k: int) -> Aggregates:
        """The windows from ``k`` on (copies)."""
        return self._slice(slice(k, None))

    def _slice(self, sl: slice) -> Aggregates:
        return Aggregates(
            ids=self.ids,
            t=self.t[sl].copy(),
            rows=self.rows[sl].copy(),
            svals=self.svals,
            **{a: getattr(self, a)[sl].copy() for a in AGGREGATES},
        )

    @property
    def nbytes(self) -> int:
        return int(
            sum(getattr(self, a).nbytes for a in AGGREGATES)
            + self.t.nbytes
            + self.ids.nbytes
            + self.rows.nbytes
        )


class _Level:
    """Downsampled data at one resolution, plus the counter state carried across compactions."""

    def __init__(self, resolution: float) -> None:
        self.resolution = resolution
        self.parts: list[Aggregates] = []
        # per series id: the last raw value seen and the reset correction so far (counter aggregate)
        self.last = np.empty(0)
        self.corr = np.empty(0)

    @property
    def nbytes(self) -> int:
        return int(sum(p.nbytes for p in self.parts))


class MetricStore:
    """Series and samples of one run (see the module docstring).

    Args:
        limits: when to downsample; ``None`` keeps every raw sample.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits
        self.metric_names: list[str] = []
        self._metric_ids: dict[str, int] = {}
        self.series_metric: array[int] = array("q")
        self.series_label_set: array[int] = array("q")
        self._lsets: list[tuple[int, _Labels]] = []  # label set: (base id, extra pairs)
        self._lset_ids: dict[tuple[int, _Labels], int] = {}
        self._bases: list[dict[str, str]] = []
        self._base_ids: dict[_Labels, int] = {}
        self._index: dict[tuple[int, int], int] = {}  # (metric, label set) -> series
        self._bulk: dict[tuple[Any, ...], int] = {}  # bulk registrations -> first id
        self._json: list[str] = []
        self._by_metric: dict[int, list[int]] = {}
        self._tables: list[_Table] = []
        self._by_layout: dict[tuple[int, int], list[_Table]] = {}
        self._by_src: dict[tuple[int, ...], _Table] = {}
        # The tables of recent appends, by the id of their ids array: (ids, static, table). Each
        # writer (scraper, loops) appends with the same arrays while its series stay the same.
        self._recent: dict[int, tuple[np.ndarray, Any, _Table]] = {}
        self._compacts = bool(limits is not None and limits.resolutions)  # may downsample
        self._stale_t: list[float] = []
        self._stale_ids: list[np.ndarray] = []
        self._levels = [_Level(r) for r in (limits.resolutions if limits else ())]
        self._seq = 0  # appends so far
        self._slot = (-1, 0)  # the last reserved place written, and rows written there
        self._owed: Callable[[], None] | None = None
        self._owed_until = -float("inf")
        self._owed_metrics: frozenset[str] | None = None
        self._n = 0
        self._raw_bytes = 0
        self.version = 0
        """Moves with every append (queries cache on it)."""
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- series --------------------------------------------------------------------------------

    def _metric(self, metric: str) -> int:
        mid = self._metric_ids.get(metric)
        if mid is None:
            if self._owed is not None:
                self.settle()
            mid = self._metric_ids[metric] = len(self.metric_names)
            self.metric_names.append(metric)
        return mid

    def _base(self, labels: dict[str, str]) -> int:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        bid = self._base_ids.get(key)
        if bid is None:
            bid = self._base_ids[key] = len(self._bases)
            self._bases.append(dict(key))
        return bid

    def _series(self, mid: int, bid: int, extra: _Labels) -> int:
        lkey = (bid, extra)
        lid = self._lset_ids.get(lkey)
        if lid is None:
            if self._owed is not None:
                self.settle()
            lid = self._lset_ids[lkey] = len(self._lsets)
            self._lsets.append(lkey)
        sid = self._index.get((mid, lid))
        if sid is None:
            if self._owed is not None:
                self.settle()
            sid = self._index[(mid, lid)] = len(self.series_metric)
            self.series_metric.append(mid)
            self.series_label_set.append(lid)
            self._by_metric.setdefault(mid, []).append(sid)
        return sid

    def series(self, metric: str, labels: dict[str, str]) -> int:
        """The id of series ``metric{labels}``, registering it on first use."""
        return self._series(self._metric(metric), self._base(labels), ())

    def base_id(self, labels: dict[str, str]) -> int:
        """Intern a label set used as the ``base`` of :meth:`series_many` (pass the id to skip sorting)."""
        return self._base(labels)

    def series_many(self, metric: str, base: dict[str, str] | int, extras: Sequence[_Labels]) -> np.ndarray:
        """Ids of ``metric{base, extra}`` for every ``extra`` (pairs whose names are not in ``base``).

        The bulk form of :meth:`series` the scraper uses: ``base`` (a pod's labels) is interned
        once and the series get consecutive ids without a lookup each. The same call again
        returns the same ids; a label set registered through :meth:`series` and again through
        this method gets two ids: register each metric one way.
        """
        mid = self._metric(metric)
        bid = base if isinstance(base, int) else self._base(base)
        key = (mid, bid, tuple(extras))
        first = self._bulk.get(key)
        n = len(extras)
        if first is None:
            first = self._bulk[key] = self._new_block([mid] * n, bid, extras)
            self._by_metric.setdefault(mid, []).extend(range(first, first + n))
        return np.arange(first, first + n, dtype=np.int64)

    def _new_block(self, mids: Sequence[int], bid: int, extras: Sequence[_Labels]) -> int:
        """Register consecutive series ``mids[j]`` with labels base ``bid`` + ``extras[j]``; the
        first id (owed writes are settled first: they must land before any new series)."""
        if self._owed is not None:
            self.settle()
        first = len(self.series_metric)
        lid0 = len(self._lsets)
        self._lsets.extend([(bid, e) for e in extras])
        self.series_metric.extend(mids)
        self.series_label_set.extend(range(lid0, lid0 + len(mids)))
        return first

    def series_template(
        self, template: Sequence[tuple[str, _Labels]], bases: Sequence[dict[str, str]]
    ) -> np.ndarray:
        """Ids ``[i, j]`` of series ``template[j] = (metric, extra)`` with labels ``bases[i]`` + extra.

        The bulk form the scraper uses for every pod of a service at once: one id block per
        base, no lookup per series. Same contract as :meth:`series_many` (which see).
        """
        mids = [self._metric(m) for m, _ in template]
        extras = [e for _, e in template]
        tkey = (tuple(mids), tuple(extras))
        n = len(template)
        out = np.empty((len(bases), n), dtype=np.int64)
        fresh: list[tuple[int, int]] = []  # (row, first id)
        for i, b in enumerate(bases):
            bid = self._base(b)
            key = (-1, bid, tkey)
            first = self._bulk.get(key)
            if first is None:
                first = self._bulk[key] = self._new_block(mids, bid, extras)
                fresh.append((i, first))
            out[i] = np.arange(first, first + n)
        if fresh:
            firsts = np.array([f for _, f in fresh], dtype=np.int64)
            for j, mid in enumerate(mids):
                self._by_metric.setdefault(mid, []).extend((firsts + j).tolist())
        return out

    def labels_of(self, sid: int) -> dict[str, Any]:
        """The label set of a series."""
        bid, extra = self._lsets[self.series_label_set[sid]]
        if not extra:
            return dict(self._bases[bid])
        out = dict(self._bases[bid])
        out.update(extra)
        return out

    @property
    def label_sets(self) -> list[str]:
        """Distinct label sets as canonical JSON (keys sorted), indexed by ``series_label_set``."""
        for bid, extra in self._lsets[len(self._json) :]:
            d = dict(self._bases[bid])
            d.update(extra)
            self._json.append(json.dumps(d, sort_keys=True, separators=(",", ":")))
        return self._json

    def series_of(self, metric: str) -> list[int]:
        """The ids of every series of ``metric`` (empty if the run never had it)."""
        self.settle()
        mid = self._metric_ids.get(metric)
        return [] if mid is None else list(self._by_metric.get(mid, []))

    # -- samples -------------------------------------------------------------------------------

    def _table(self, ids: np.ndarray, static: tuple[np.ndarray, np.ndarray] | None) -> _Table:
        recent = self._recent
        hit = recent.get(id(ids))
        if hit is not None and hit[0] is ids and hit[1] is static:
            return hit[2]
        tb = self._find_table(ids, static)
        if len(recent) >= 64:
            recent.clear()
        recent[id(ids)] = (ids, static, tb)  # (holds ids: its id is not reused meanwhile)
        return tb

    def _find_table(self, ids: np.ndarray, static: tuple[np.ndarray, np.ndarray] | None) -> _Table:
        if static is None:
            src: tuple[Any, ...] = (ids,)
            key_src: tuple[int, ...] = (id(ids),)
        else:
            src = (ids, static[0], static[1])
            key_src = (id(ids), id(static[0]), id(static[1]))
        tb = self._by_src.get(key_src)
        if tb is not None:
            # The same arrays as last time (the table keeps them, so their ids are not reused).
            old = tb.src
            if old is not None and len(old) == len(src) and all(map(operator.is_, old, src)):
                return tb
        a32 = np.asarray(ids, dtype=np.int32)
        nvar = a32.size
        svals = np.empty(0)
        if static is not None:
            a32 = np.concatenate((a32, np.asarray(static[0], dtype=np.int32)))
            svals = np.array(static[1], dtype=np.float64)
        key = (a32.size, hash(a32.tobytes() + svals.tobytes() + nvar.to_bytes(8, "little")))
        for cand in self._by_layout.get(key, ()):
            if cand.nvar == nvar and np.array_equal(cand.ids, a32) and np.array_equal(cand.svals, svals):
                tb = cand
                break
        else:
            if a32 is ids:
                a32 = a32.copy()
            a32.flags.writeable = False
            tb = _Table(a32, nvar, svals)
            self._tables.append(tb)
            self._by_layout.setdefault(key, []).append(tb)
        if tb.src is not None:
            self._by_src.pop(tuple(id(a) for a in tb.src), None)
        tb.src = src
        self._by_src[key_src] = tb
        return tb

    def append(
        self,
        t: float,
        ids: np.ndarray,
        values: np.ndarray,
        static: tuple[np.ndarray, np.ndarray] | None = None,
        *,
        slot: int | None = None,
    ) -> None:
        """Record one scrape: ``values[i]`` of series ``ids[i]`` at time ``t``.

        ``static`` (ids, values) are series whose values the caller knows did not change since
        its last append with the same arrays: stored once per table, not per row. Passing the
        same arrays again (not modified in between) is the fast path. ``slot`` (from
        :meth:`reserve`) places the row in append order where the reservation was made, after
        the rows written there before it.
        """
        hit = self._recent.get(id(ids))
        if hit is None or hit[0] is not ids or hit[1] is not static:
            if ids.size == 0 and (static is None or static[0].size == 0):
                return
            hit = None
        if self._owed is not None and t <= self._owed_until and self._may_share(ids, static):
            self.settle()
            hit = None  # (the rows it wrote may have downsampled the tables: look again)
        seq = self._seq
        if slot is None:
            key = (seq + 1) << _SLOT
        else:
            last, used = self._slot
            used = used + 1 if slot == last else 1
            if slot > seq or used >= 1 << _SLOT:
                raise ValueError(f"slot {slot} was not reserved or is full")
            self._slot = (slot, used)
            key = (slot << _SLOT) + used
        tb = hit[2] if hit is not None else self._table(ids, static)
        self._raw_bytes += tb.append(float(t), key, values)
        self._seq = seq = seq + 1
        self._n += tb.ncols
        self.version += 1
        self._sorted = None
        if self._compacts:
            lim = self.limits
            assert lim is not None
            over = lim.raw_bytes is not None and self._raw_bytes > lim.raw_bytes
            if over or (lim.raw_retention is not None and seq % 64 == 0):
                self._compact(float(t))

    def mark_stale(self, t: float, ids: np.ndarray) -> None:
        """Write staleness markers for ``ids`` at ``t`` (the series left their target)."""
        if ids.size:
            if self._owed is not None and t <= self._owed_until:
                self.settle()
            self._stale_t.append(float(t))
            self._stale_ids.append(np.asarray(ids, dtype=np.int64).copy())
            self.version += 1

    # -- writes owed -----------------------------------------------------------------------------

    def owe(self, settle: Callable[[], None], until: float, metrics: Collection[str] | None = None) -> None:
        """Declare rows owed at times up to ``until`` (s) that ``settle()`` will write, of the
        given metric names (None: any).

        The store calls ``settle`` once, the first time it is needed: before it is read
        (:meth:`columns`, :meth:`series_of`, ...; a query settles first when it may select
        those metrics), before it registers a new series, label set or metric name, and
        before a staleness marker, or a row that may go into a table of the owed rows (one with
        a series of an owed metric), at or before ``until`` is added (in one table, rows of one
        time keep the order they were appended in; rows of other tables take their place in
        append order through :meth:`reserve`). Declare again for more; a new declaration
        replaces the last.
        """
        self._owed = settle
        self._owed_until = until
        self._owed_metrics = None if metrics is None else frozenset(metrics)

    def _may_share(self, ids: np.ndarray, static: tuple[np.ndarray, np.ndarray] | None) -> bool:
        """Whether a row of these series may share a table with the owed rows: it has a series
        of an owed metric (every metric when the owed ones were not named)."""
        names = self._owed_metrics
        if names is None:
            return True
        mids = [self._metric_ids[m] for m in names if m in self._metric_ids]
        if not mids:  # no series of an owed metric yet (one would be a new series: settled)
            return False
        metric = np.frombuffer(self.series_metric, dtype=np.int64)
        try:
            hit = bool(np.isin(metric[ids], mids).any())
            if static is not None and not hit:
                hit = bool(np.isin(metric[static[0]], mids).any())
        finally:
            del metric  # (a view of the array's buffer: it must not outlive this call)
        return hit

    def settle(self, metrics: Collection[str] | None = None) -> None:
        """Have the owed rows written now (see :meth:`owe`); nothing if none are owed, or if
        the caller reads only ``metrics`` (names) and none of them is owed."""
        owed = self._owed
        if owed is None:
            return
        if metrics is not None and self._owed_metrics is not None and self._owed_metrics.isdisjoint(metrics):
            return
        self._owed = None
        self._owed_until = -float("inf")
        owed()

    def reserve(self) -> int:
        """A place in append order for rows written later (``append(..., slot=...)``): after
        every row appended so far, before the next one appended without a slot."""
        return self._seq

    def compaction_near(self) -> bool:
        """Whether downsampling may run soon (a raw retention, or past half the raw budget):
        writes owed across it would change what it keeps, so they must not be deferred."""
        lim = self.limits
        if lim is None or not self._levels:
            return False
        if lim.raw_retention is not None:
            return True
        return lim.raw_bytes is not None and self._raw_bytes > lim.raw_bytes // 2

    def stale_markers(self) -> tuple[np.ndarray, np.ndarray]:
        """Every staleness marker as ``(t, series_id)`` arrays."""
        self.settle()
        if not self._stale_t:
            return np.empty(0), np.empty(0, dtype=np.int64)
        counts = [a.size for a in self._stale_ids]
        return np.repeat(np.asarray(self._stale_t), counts), np.concatenate(self._stale_ids)

    @property
    def n_samples(self) -> int:
        """How many raw samples were appended (downsampling does not change it)."""
        self.settle()
        return self._n

    @property
    def raw_bytes(self) -> int:
        """Bytes held by raw samples (values, layouts and row times)."""
        return self._raw_bytes

    @property
    def nbytes(self) -> int:
        """Bytes held by raw and downsampled samples (the series registry not counted)."""
        return self._raw_bytes + sum(lv.nbytes for lv in self._levels)

    def tables(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Raw data as ``(ids, t, values)`` per table: ``values[k, j]`` is series ``ids[j]`` at ``t[k]``."""
        self.settle()
        out = []
        for tb in self._tables:
            if tb.n:
                tb.ensure_sorted()
                out.append((tb.ids, tb.t[: tb.n], tb.values()))
        return out

    def raw_window(self, lo: float, hi: float) -> list[tuple[_Table, int, int]]:
        """Per table with rows in ``[lo, hi]``: the table and that row span ``a:b`` (read it with
        ``table.rows(a, b, cols)``; ``table.t[a:b]`` are the times). For the query engine,
        which settles what a query may read first (:meth:`settle`)."""
        out = []
        for tb in self._tables:
            n = tb.n
            if n == 0:
                continue
            tb.ensure_sorted()
            t = tb.t
            if t[0] > hi or t[n - 1] < lo:
                continue
            a = 0 if t[0] >= lo else int(np.searchsorted(t[:n], lo, side="left"))
            b = n if t[n - 1] <= hi else int(np.searchsorted(t[:n], hi, side="right"))
            if a < b:
                out.append((tb, a, b))
        return out

    def stale_window(self, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        """Staleness markers in ``[lo, hi]`` as ``(t, series_id)`` (for the query engine, as
        :meth:`raw_window`)."""
        if not self._stale_t:
            return np.empty(0), np.empty(0, dtype=np.int64)
        st = np.asarray(self._stale_t)
        pick = np.flatnonzero((st >= lo) & (st <= hi))
        if not pick.size:
            return np.empty(0), np.empty(0, dtype=np.int64)
        chunks = [self._stale_ids[k] for k in pick.tolist()]
        return np.repeat(st[pick], [c.size for c in chunks]), np.concatenate(chunks)

    def downsampled(self) -> list[tuple[float, list[Aggregates]]]:
        """Each downsampled level as ``(resolution, parts)``, finest first (for the query
        engine, as :meth:`raw_window`)."""
        return [(lv.resolution, lv.parts) for lv in self._levels]

    @property
    def has_downsampled(self) -> bool:
        """Whether some data was downsampled."""
        return any(lv.parts for lv in self._levels)

    def raw_start(self) -> float:
        """The time of the oldest raw sample (inf when all data is downsampled or there is none)."""
        return min((float(tb.t[: tb.n].min()) for tb in self._tables if tb.n), default=float("inf"))

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All raw samples as ``(t, series_id, value)`` arrays, in append order.

        Downsampled windows are not raw samples and are left out; so are staleness markers.
        """
        self.settle()
        rows: list[tuple[int, float, np.ndarray, np.ndarray]] = []
        for tb in self._tables:
            if not tb.n:
                continue
            vals = tb.values()
            for k in range(tb.n):
                rows.append((int(tb.seq[k]), float(tb.t[k]), tb.ids, vals[k]))
        if not rows:
            return np.empty(0), np.empty(0, dtype=np.int64), np.empty(0)
        rows.sort(key=lambda r: r[0])
        t = np.repeat(np.array([r[1] for r in rows]), [r[2].size for r in rows])
        ids = np.concatenate([r[2] for r in rows]).astype(np.int64)
        v = np.concatenate([r[3] for r in rows])
        return t, ids, v

    def to_arrow(self) -> pa.Table:
        """The long-format table: ``t``, ``metric``, ``labels`` (JSON object text), ``value``."""
        import pyarrow as pa

        t, ids, v = self.columns()
        metric_of_series = np.asarray(self.series_metric, dtype=np.int32)
        metric = pa.DictionaryArray.from_arrays(
            pa.array(metric_of_series[ids] if ids.size else np.empty(0, np.int32), pa.int32()),
            pa.array(self.metric_names, pa.string()),
        )
        # Bulk-registered series may hold equal label sets under different ids: one entry each.
        uniq: dict[str, int] = {}
        remap = np.fromiter((uniq.setdefault(j, len(uniq)) for j in self.label_sets), dtype=np.int32)
        labels_of_series = remap[np.asarray(self.series_label_set, dtype=np.int64)]
        labels = pa.DictionaryArray.from_arrays(
            pa.array(labels_of_series[ids] if ids.size else np.empty(0, np.int32), pa.int32()),
            pa.array(list(uniq), pa.string()),
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

    def samples(self, sid: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw samples of one series as ``(t, value)`` arrays, ordered by time."""
        self.settle()
        if self._sorted is None:
            t, ids, v = self.columns()
            order = np.lexsort((t, ids))
            bounds = np.searchsorted(ids[order], np.arange(len(self.series_metric) + 1))
            self._sorted = (t[order], v[order], bounds)
        ts, vs, bounds = self._sorted
        if sid < 0 or sid + 1 >= bounds.size:
            return np.empty(0), np.empty(0)
        lo, hi = int(bounds[sid]), int(bounds[sid + 1])
        return ts[lo:hi], vs[lo:hi]

    # -- downsampling --------------------------------------------------------------------------

    def _compact(self, now: float) -> None:
        """Downsample the oldest raw rows until the raw data is within its limits."""
        lim = self.limits
        assert lim is not None
        res = self._levels[0].resolution
        cutoff = -float("inf")
        if lim.raw_retention is not None:
            cutoff = now - lim.raw_retention
        if lim.raw_bytes is not None and self._raw_bytes > lim.raw_bytes:
            # Downsample the older half of what is held, in whole windows.
            ts = np.concatenate([tb.t[: tb.n] for tb in self._tables if tb.n])
            cutoff = max(cutoff, float(np.quantile(ts, 0.5)))
        cutoff = np.floor(cutoff / res) * res  # whole windows only
        if not np.isfinite(cutoff):
            return
        self._downsample_raw(cutoff)
        for k in range(len(self._levels) - 1):
            lv, nxt = self._levels[k], self._levels[k + 1]
            if lim.level_bytes is not None and lv.nbytes > lim.level_bytes:
                ts = np.concatenate([p.t for p in lv.parts])
                cut = float(np.floor(np.quantile(ts, 0.5) / nxt.resolution) * nxt.resolution)
                _downsample_level(lv, nxt, cut)

    def _downsample_raw(self, cutoff: float) -> None:
        lv = self._levels[0]
        kept: list[_Table] = []
        for tb in self._tables:
            if not tb.n:
                continue
            tb.ensure_sorted()
            k = int(np.searchsorted(tb.t[: tb.n], cutoff, side="left"))
            if k:
                before = tb.nbytes
                part = _aggregate_rows(tb, k, lv)
                if part is not None:
                    lv.parts.append(part)
                tb.drop_rows(k)
                self._raw_bytes += tb.nbytes - before
            if tb.n:
                kept.append(tb)
            else:
                self._raw_bytes -= tb.nbytes
                for key, lst in list(self._by_layout.items()):
                    if tb in lst:
                        lst.remove(tb)
                        if not lst:
                            del self._by_layout[key]
                if tb.src is not None:
                    self._by_src.pop(tuple(id(a) for a in tb.src), None)
        self._tables = kept
        self._recent.clear()
        self.version += 1

    # -- construction --------------------------------------------------------------------------

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
        t = np.asarray(table.column("t").to_numpy(), dtype=np.float64)
        v = np.asarray(table.column("value").to_numpy(), dtype=np.float64)
        store._append_long(t, sids[inverse.reshape(-1)], v)
        return store

    def _append_long(self, t: np.ndarray, ids: np.ndarray, v: np.ndarray) -> None:
        """Append long-format samples, one row per distinct time (appends of one time kept apart
        where a series repeats)."""
        order = np.argsort(t, kind="stable")
        t, ids, v = t[order], ids[order], v[order]
        times, starts = np.unique(t, return_index=True)
        bounds = [*starts.tolist(), t.size]
        for k, tt in enumerate(times.tolist()):
            a, b = bounds[k], bounds[k + 1]
            seg_ids, seg_v = ids[a:b], v[a:b]
            if np.unique(seg_ids).size == seg_ids.size:
                self.append(tt, seg_ids, seg_v)
            else:  # the same series twice at one time: one append each
                for j in range(seg_ids.size):
                    self.append(tt, seg_ids[j : j + 1], seg_v[j : j + 1])

    @classmethod
    def from_series(cls, series: list[tuple[str, dict[str, str], list[tuple[float, float]]]]) -> MetricStore:
        """A store holding the given ``(metric, labels, [(t, value), ...])`` series (for tests and tools)."""
        store = cls()
        ts, idl, vs = [], [], []
        for metric, labels, points in series:
            sid = store.series(metric, labels)
            for t, v in points:
                ts.append(float(t))
                idl.append(sid)
                vs.append(float(v))
        if ts:
            store._append_long(np.asarray(ts), np.asarray(idl, dtype=np.int64), np.asarray(vs))
        return store


def _aggregate_rows(tb: _Table, k: int, lv: _Level) -> Aggregates | None:
    """Thanos' five aggregates of ``tb``'s first ``k`` rows per ``lv.resolution`` window.

    Works one window at a time, so the temporaries stay the size of one window's rows.
    """
    t = tb.t[:k]
    if t.size == 0:
        return None
    res = lv.resolution
    win = np.floor(t / res)
    starts = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])
    ends = np.r_[starts[1:], t.size]
    ids = tb.ids.astype(np.int64)
    need = int(ids.max()) + 1 if ids.size else 0
    if lv.last.size < need:
        grow = max(need, 2 * lv.last.size)
        lv.last = np.concatenate((lv.last, np.full(grow - lv.last.size, np.nan)))
        lv.corr = np.concatenate((lv.corr, np.zeros(grow - lv.corr.size)))
    nv = tb.nvar
    var_ids = ids[:nv]
    prev = lv.last[var_ids]
    corr = lv.corr[var_ids]
    nw, nc = starts.size, nv
    out = {a: np.empty((nw, nc)) for a in AGGREGATES}
    for w, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        vals = tb._var_rows(a, b, None)
        nan = np.isnan(vals)
        if not nan.any():  # the usual case: every series has every sample of the window
            out["count"][w] = b - a
            out["sum"][w] = vals.sum(axis=0)
            out["min"][w] = vals.min(axis=0)
            out["max"][w] = vals.max(axis=0)
            drops = np.where(vals[0] < prev, prev, 0.0)  # prev is NaN before the first sample
            if b - a > 1:
                drops += np.where(vals[1:] < vals[:-1], vals[:-1], 0.0).sum(axis=0)
            corr = corr + drops
            prev = vals[-1].copy()
            out["counter"][w] = prev + corr
            continue
        ok = ~nan
        zero = np.where(ok, vals, 0.0)
        cnt = ok.sum(axis=0).astype(np.float64)
        out["count"][w] = cnt
        out["sum"][w] = zero.sum(axis=0)
        empty = cnt == 0
        out["min"][w] = np.where(empty, np.nan, np.where(ok, vals, np.inf).min(axis=0))
        out["max"][w] = np.where(empty, np.nan, np.where(ok, vals, -np.inf).max(axis=0))
        # counter: the last value with every reset (a drop) added back, carried across windows
        # and compactions of the same series
        before = np.vstack([prev[None, :], zero[:-1]])
        drops = np.where(ok & (zero < before) & ~np.isnan(before), before, 0.0)
        corr = corr + drops.sum(axis=0)
        last_ok = np.where(empty, np.nan, zero[-1])
        out["counter"][w] = np.where(empty, np.nan, zero[-1] + corr)
        prev = np.where(empty, prev, last_ok)
    lv.last[var_ids] = prev
    lv.corr[var_ids] = corr
    return Aggregates(
        ids=tb.ids, t=t[ends - 1].copy(), rows=(ends - starts).astype(np.int64), svals=tb.svals, **out
    )


def _downsample_level(lv: _Level, nxt: _Level, cutoff: float) -> None:
    """Move ``lv``'s windows that end before ``cutoff`` into the coarser level ``nxt``."""
    kept: list[Aggregates] = []
    for p in lv.parts:
        k = int(np.searchsorted(p.t, cutoff, side="left"))
        if k == 0:
            kept.append(p)
            continue
        win = np.floor(p.t[:k] / nxt.resolution)
        starts = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])
        ends = np.r_[starts[1:], k]
        nxt.parts.append(
            Aggregates(
                ids=p.ids,
                t=p.t[ends - 1].copy(),
                count=np.add.reduceat(p.count[:k], starts, axis=0),
                sum=np.add.reduceat(np.nan_to_num(p.sum[:k]), starts, axis=0),
                min=np.fmin.reduceat(p.min[:k], starts, axis=0),
                max=np.fmax.reduceat(p.max[:k], starts, axis=0),
                counter=p.counter[ends - 1].copy(),
                rows=np.add.reduceat(p.rows[:k], starts),
                svals=p.svals,
            )
        )
        if k < p.t.size:
            kept.append(p.tail(k))
    lv.parts = kept
