"""Series selection: matchers over the store, instant lookups and range windows.

The series a selector matches are gathered once into a :class:`Block`: their
samples concatenated in label order, times in integer milliseconds (as
Prometheus keeps them), with a composite sort key ``rank << 40 | t`` so one
``np.searchsorted`` finds, for every series at once, the samples inside a
window. That makes a selection over 10^5 series a handful of NumPy calls.
"""

from __future__ import annotations

import bisect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from devopsim.observe.promql._merge import merge_chunks
from devopsim.observe.promql.ast import Matcher, Selector
from devopsim.observe.promql.labels import NAME, LabelTable
from devopsim.observe.promql.regex import compile_matcher
from devopsim.observe.promql.rows import Chunk, one_matrix, row_pieces

if TYPE_CHECKING:
    from devopsim.observe.store import MetricStore, _Table

__all__ = ["AGGREGATE_FOR", "Block", "Selection", "Window"]

_SHIFT = 40
_SPAN = (1 << _SHIFT) - 1
_KEY_BASE = -(1 << 38)  # times from -8.7 to +26 years fit a live block's 40-bit time key
_MAX_RANK = 1 << (63 - _SHIFT)  # ranks whose key prefix rank << 40 fits an int64


def _refcounts(bufs: tuple[np.ndarray, ...]) -> list[int]:
    return [sys.getrefcount(b) for b in bufs]


#: What :func:`_refcounts` says of an array only a tuple holds (measured, not assumed: the
#: count an interpreter reports for a live object varies between versions).
_UNSHARED = max(_refcounts((np.empty(1),)))


@dataclass
class Block:
    """Samples of the series one selector matches, in label order.

    Staleness markers are kept apart (``skeys``/``st``/``soff``, same layout): an instant
    lookup ignores a series whose newest point is a marker; range windows never see them.
    """

    lids: np.ndarray  # label-set id (with __name__) per series
    t: np.ndarray  # int64 ms, concatenated per series
    v: np.ndarray
    off: np.ndarray  # series k has samples off[k]:off[k+1]
    keys: np.ndarray
    base: int
    st: np.ndarray | None = None  # staleness marker times (int64 ms), per series
    skeys: np.ndarray | None = None
    soff: np.ndarray | None = None
    downsampled: bool = False  # some points are downsampled windows, not raw samples
    rows: np.ndarray | None = None  # series k's key prefix, k << 40 (made on first lookup)

    def _key(self, x: int) -> np.ndarray:
        rel = min(max(int(x) - self.base, 0), _SPAN)
        if self.rows is None:
            self.rows = np.arange(self.lids.size, dtype=np.int64) << _SHIFT
        out: np.ndarray = self.rows | rel
        return out

    def last_at(self, ts: int, lookback: int, left_open: bool) -> tuple[np.ndarray, np.ndarray]:
        """Index of each series' latest sample at ``ts`` within the lookback, and a validity mask."""
        key = self._key(ts)
        end = np.searchsorted(self.keys, key, side="right") - 1
        ok = end >= self.off[:-1]
        lo = ts - lookback
        tt = self.t[np.maximum(end, 0)] if self.t.size else np.zeros(end.size, np.int64)
        ok &= (tt > lo) if left_open else (tt >= lo)
        if self.st is not None and self.st.size and self.skeys is not None and self.soff is not None:
            send = np.searchsorted(self.skeys, key, side="right") - 1
            marked = send >= self.soff[:-1]
            ok &= ~(marked & (self.st[np.maximum(send, 0)] >= tt))
        return end, ok

    def window(self, ts: int, range_ms: int, left_open: bool) -> Window:
        """The samples of every series in ``(ts - range, ts]`` (``[...]`` when not left-open)."""
        start = np.searchsorted(self.keys, self._key(ts - range_ms), side="right" if left_open else "left")
        end = np.searchsorted(self.keys, self._key(ts), side="right")
        keep = end > start
        return Window(self.lids[keep], self.t, self.v, start[keep], end[keep], ts)


@dataclass
class Window:
    """A range vector: series ``k`` holds ``t[start[k]:end[k]]`` (never empty).

    Windows of several steps at once (:mod:`devopsim.observe.promql.steps`) give each
    segment its own right edge: ``ts`` is then an array, one per segment.
    """

    lids: np.ndarray
    t: np.ndarray
    v: np.ndarray
    start: np.ndarray
    end: np.ndarray
    ts: int | np.ndarray  # the window's right edge (evaluation time minus offset), ms


class _Match:
    """The series one list of matchers selects, kept up to date as series are registered."""

    def __init__(self) -> None:
        self.checked = 0  # series ids below this were tested
        self.names_checked = 0
        self.mids: set[int] = set()
        self.found: list[tuple[tuple[tuple[str, str], ...], int, int]] = []  # (labels, series, label id)
        self.sid_list: list[int] = []  # found's series and label ids, kept alongside
        self.lid_list: list[int] = []
        self.dirty = True
        self.sids = np.empty(0, dtype=np.int64)
        self.lids = np.empty(0, dtype=np.int64)
        self.rank = np.empty(0, dtype=np.int64)  # series id -> position in label order, or -1


class _Live:
    """The samples of one match kept up to date across calls (see ``Selection._live_block``).

    Per table with matched columns (``tbs``, in the store's table order): its position in the
    store's table list, the matched columns in label order (ranked when read), the rows read so far
    (``seen``) and the append sequence number of the last of them (``last``, to notice a table
    whose rows were reordered). Samples are kept sorted by (rank, time, table position, row),
    the order a full build gives, so ties resolve the same way; every sample at or after
    ``cut`` is held (older ones are dropped now and then, not at every call).
    """

    def __init__(self, m: _Match, tables: list[_Table], reach: int) -> None:
        self.lids = m.lids  # replaced when the matched series change (see rematch)
        self.sids = m.sids
        self.tables = tables
        self.reach = reach
        self.ntab = 0
        self.tbs: list[_Table] = []
        self.pos: list[int] = []
        self.cols: list[np.ndarray] = []
        self.seen = np.zeros(0, np.int64)
        self.last = np.zeros(0, np.int64)
        self.nstale = 0
        self.cut = -(1 << 62)
        self._rank = np.empty(0, np.int64)  # the ranks while there is no key (else key >> 40)
        self.t = np.empty(0, np.int64)
        self.v = np.empty(0)
        self.tpos = np.empty(0, np.int64)
        self.s_rank = np.empty(0, np.int64)
        self.s_t = np.empty(0, np.int64)
        self.key: np.ndarray | None = None  # rank << 40 | (t - _KEY_BASE), when every t fits
        self.off: np.ndarray | None = None  # each rank's first sample in key (the merge's), or None
        self.blk: Block | None = None
        self.fresh = True
        self.pool: list[tuple[np.ndarray, ...]] = []  # output arrays of the last merges (_buffers)
        self.scratch = np.empty(0)  # the merge's gathered values (merge_chunks)

    @property
    def rank(self) -> np.ndarray:
        """Each held sample's series rank (read off the keys when they are kept)."""
        if self.key is not None:
            out: np.ndarray = self.key >> _SHIFT
            return out
        return self._rank

    @rank.setter
    def rank(self, value: np.ndarray) -> None:
        self._rank = value

    def _keep(self, keep: np.ndarray) -> None:
        self.t, self.v, self.tpos = self.t[keep], self.v[keep], self.tpos[keep]
        if self.key is not None:
            self.key = self.key[keep]
        else:
            self._rank = self._rank[keep]
        self.off = None

    def _merge(self, rank: np.ndarray, t_ms: np.ndarray, v: np.ndarray, pos: np.ndarray) -> None:
        """Merge new samples into the sorted ones: by insertion when their (rank, time) keys are
        new (the usual case: later scrapes), else by sorting everything again. (Samples
        before ``cut`` may come in with a new table: held like the others, they change no
        answer.)"""
        rel = t_ms - _KEY_BASE
        if self.key is not None and rel.size and int(rel.min()) >= 1 and int(rel.max()) < _SPAN:
            nkey, nv, npos = (rank << _SHIFT) | rel, v, pos
            if nkey.size > 1 and (nkey[1:] < nkey[:-1]).any():  # one table's rows come sorted
                order = np.argsort(nkey, kind="stable")
                nkey, nv, npos = nkey[order], v[order], pos[order]
            ins = np.searchsorted(self.key, nkey, side="left")
            inside = ins < self.key.size
            if not (self.key[ins[inside]] == nkey[inside]).any():  # no ties: plain insertion
                total = self.key.size + nkey.size
                at = ins + np.arange(nkey.size)
                old = np.ones(total, dtype=bool)
                old[at] = False
                out_k = np.empty(total, dtype=np.int64)
                out_k[at], out_k[old] = nkey, self.key
                out_v = np.empty(total)
                out_v[at], out_v[old] = nv, self.v
                out_p = np.empty(total, dtype=np.int64)
                out_p[at], out_p[old] = npos, self.tpos
                self.key, self.v, self.tpos = out_k, out_v, out_p
                self.t = (out_k & _SPAN) + _KEY_BASE
                self.off = None
                return
        rank = np.concatenate((self.rank, rank))
        t_ms = np.concatenate((self.t, t_ms))
        v = np.concatenate((self.v, v))
        pos = np.concatenate((self.tpos, pos))
        order = np.lexsort((pos, t_ms, rank))
        self.key, self.off = None, None
        self.rank, self.t, self.v, self.tpos = rank[order], t_ms[order], v[order], pos[order]
        rel = self.t - _KEY_BASE
        fits = not rel.size or (int(rel.min()) >= 1 and int(rel.max()) < _SPAN)
        self.key = (self._rank << _SHIFT) | rel if fits else None

    def _read(self, st: MetricStore, m: _Match, lo: int) -> list[Chunk] | None:
        """The rows appended since the last call (per table read, see :meth:`_ingest`); None to
        start over."""
        tables = st._tables
        for k in range(self.ntab, len(tables)):
            tb = tables[k]
            r = m.rank[tb.ids]
            cols = np.flatnonzero(r >= 0)
            if cols.size:
                cols = cols[np.argsort(r[cols], kind="stable")]
                self.tbs.append(tb)
                self.pos.append(k)
                self.cols.append(cols)
        if len(self.seen) < len(self.tbs):
            grow = len(self.tbs) - len(self.seen)
            self.seen = np.concatenate((self.seen, np.zeros(grow, np.int64)))
            self.last = np.concatenate((self.last, np.full(grow, -1, np.int64)))
        self.ntab = len(tables)
        ns = np.fromiter([tb.n for tb in self.tbs], dtype=np.int64, count=len(self.tbs))
        changed = np.flatnonzero(ns != self.seen).tolist()
        if not changed:
            return []
        chunks: list[Chunk] = []
        cut_s = (lo if self.fresh else self.cut) / 1000.0
        for j in changed:
            tb, seen = self.tbs[j], int(self.seen[j])
            n = tb.n
            tb.ensure_sorted()
            if n < seen or (seen and int(tb.seq[seen - 1]) != int(self.last[j])):
                return None  # rows were dropped or reordered
            a = seen
            if not seen:  # a table's first read starts at the reach
                a = int(np.searchsorted(tb.t[:n], cut_s, side="left"))
            self.seen[j], self.last[j] = n, int(tb.seq[n - 1])
            if a >= n:
                continue
            t_ms = np.round(tb.t[a:n] * 1000.0).astype(np.int64)
            cols = self.cols[j]
            pieces, at = row_pieces(tb, a, n, cols)
            chunks.append((m.rank[tb.ids[cols]], t_ms, pieces, at, self.pos[j]))
        return chunks

    def _ingest(self, chunks: list[Chunk], cut: int | None = None, nser: int | None = None) -> None:
        """Add new rows: per table the ranks of its columns, the row times (ms), the values
        (the rows of 2-D pieces, one after the other, and the columns to read of them) and
        the table's position. With ``cut`` (ms), the held samples before it are dropped
        first (the trim of :meth:`update`; not the new ones).

        Through the compiled merge (:func:`merge_chunks`, which drops them on the way and
        writes each series' first place for the block, ``nser`` series) when every key
        fits (the usual case), else through the NumPy reference (:meth:`_ingest_numpy`):
        same order, ties included."""
        self.blk = None  # rebuilt after (its arrays are then free for the merge to reuse)
        if nser is None:
            nser = int(self.key[-1] >> _SHIFT) + 1 if self.key is not None and self.key.size else 0
            for rk, _, _, _, _ in chunks:
                nser = max(nser, int(rk.max()) + 1 if rk.size else 0)
        if self.key is not None:
            parts: list[Chunk] = []
            total = self.key.size
            for rk, t_ms, pieces, cols, pos in chunks:
                if not t_ms.size or not rk.size:
                    continue
                rel = t_ms - _KEY_BASE
                if not (int(rel.min()) >= 1 and int(rel.max()) < _SPAN and int(rk.min()) >= 0):
                    break
                if int(rk.max()) >= _MAX_RANK:
                    break
                parts.append((rk, rel, pieces, cols, pos))
                total += rk.size * t_ms.size
            else:
                out = self._buffers(total)
                if self.scratch.size < total - self.key.size:  # only the merge uses it
                    self.scratch = np.empty(2 * (total - self.key.size))
                o_key, o_t, o_v, o_pos = out
                off = np.empty(nser + 1, np.int64)
                lo_rel = 0 if cut is None else max(cut - _KEY_BASE, 0)
                got = merge_chunks(
                    self.key, self.v, self.tpos, parts, _KEY_BASE, lo_rel, nser, o_key, o_t, o_v, o_pos, off,
                    self.scratch,
                )  # fmt: skip
                if got >= 0:
                    self.key, self.t, self.v, self.tpos = (b[:got] for b in out)
                    self.off = off
                    return
        if cut is not None:
            keep = self.t >= cut
            if not keep.all():
                self._keep(keep)
        if chunks:
            self._ingest_numpy(chunks)

    def _buffers(self, total: int) -> tuple[np.ndarray, ...]:
        """Key, time, value and position arrays of at least ``total`` places for a merge
        to write, reused when nothing else refers to them. A fresh large array costs a page
        fault per 4 KiB on first write, more than the merge itself; the three last sets are kept
        (the held samples', the last block's, one more), and one is reused only if no view of it
        is left anywhere (no block, window or held array: its reference count says so), so
        nothing anyone still reads is overwritten."""
        for bufs in self.pool:
            if bufs[0].size >= total and max(_refcounts(bufs)) <= _UNSHARED:
                return bufs
        cap = total + total // 2 + 64
        key, t, pos = (np.empty(cap, np.int64) for _ in range(3))
        fresh = (key, t, np.empty(cap), pos)
        self.pool = [fresh, *self.pool[:2]]
        return fresh

    def _ingest_numpy(self, chunks: list[Chunk]) -> None:
        """:meth:`_ingest` in NumPy, the reference of the compiled merge."""
        chunks = [(rk, t, one_matrix(pieces, cols), cols, pos) for rk, t, pieces, cols, pos in chunks]
        ranks = [np.repeat(rk, t.size) for rk, t, _, _, _ in chunks]
        times = [np.broadcast_to(t, (rk.size, t.size)).ravel() for rk, t, _, _, _ in chunks]
        vals = [sub[0].T.ravel() for _, _, sub, _, _ in chunks]
        poss = [np.full(t.size * rk.size, pos, dtype=np.int64) for rk, t, _, _, pos in chunks]
        if len(chunks) == 1:
            self._merge(ranks[0], times[0], vals[0], poss[0])
        else:
            new = (np.concatenate(ranks), np.concatenate(times), np.concatenate(vals), np.concatenate(poss))
            self._merge(*new)

    def rematch(self, m: _Match) -> None:
        """Follow a match that gained series: the held samples' ranks move to the new label
        order (old series keep their relative order, so the samples stay sorted)."""
        remap = m.rank[self.sids]
        if self.key is not None:
            self.key = (remap[self.key >> _SHIFT] << _SHIFT) | (self.t - _KEY_BASE)
        else:
            self._rank = remap[self._rank]
        self.s_rank = remap[self.s_rank]
        self.lids, self.sids = m.lids, m.sids
        self.blk = None
        self.off = None

    def update(self, st: MetricStore, m: _Match, lo: int) -> Block | None:
        """The block for a call reaching back to ``lo``; None when it must be built afresh."""
        trim = not self.fresh and lo - self.cut >= max(self.reach // 2, 1)
        if self.fresh:
            self.cut = lo
        if trim:  # the held samples before lo go (not the new rows': see _ingest)
            self.cut = lo
            keep = self.s_t >= lo
            if not keep.all():
                self.s_rank, self.s_t = self.s_rank[keep], self.s_t[keep]
        got = self._read(st, m, lo)
        if got is None:
            return None
        if got or trim:
            self._ingest(got, lo if trim else None, int(m.lids.size))
        self.fresh = False
        new_stale = len(st._stale_t) > self.nstale
        if not got and not new_stale and not trim and self.blk is not None:
            return self.blk
        if new_stale:
            s_t = np.asarray(st._stale_t[self.nstale :])
            chunks = st._stale_ids[self.nstale :]
            s_ids = np.concatenate(chunks)
            s_t = np.repeat(s_t, [c.size for c in chunks])
            self.nstale = len(st._stale_t)
            s_rank = m.rank[s_ids]
            ok = (s_rank >= 0) & (s_t >= self.cut / 1000.0)
            if ok.any():
                sr = np.concatenate((self.s_rank, s_rank[ok]))
                sm = np.concatenate((self.s_t, np.round(s_t[ok] * 1000.0).astype(np.int64)))
                order = np.lexsort((sm, sr))
                self.s_rank, self.s_t = sr[order], sm[order]
        self.blk = self._block(m)
        return self.blk

    def _block(self, m: _Match) -> Block:
        n = m.lids.size
        s_rel = self.s_t - _KEY_BASE
        if self.key is None or (s_rel.size and (int(s_rel.min()) < 1 or int(s_rel.max()) >= _SPAN)):
            return _make_block(m.lids, self.rank, self.t, self.v, self.s_rank, self.s_t)
        off = self.off
        if off is None or off.size != n + 1:
            off = self.off = np.searchsorted(self.key, np.arange(n + 1, dtype=np.int64) << _SHIFT)
        blk = Block(m.lids, self.t, self.v, off, self.key, _KEY_BASE)
        if self.s_rank.size:
            blk.st = self.s_t
            blk.skeys = (self.s_rank << _SHIFT) | s_rel
            blk.soff = np.searchsorted(self.s_rank, np.arange(n + 1)).astype(np.int64)
        return blk


#: Which downsampled aggregate each range function reads (Thanos' choice; ``avg`` is sum/count).
AGGREGATE_FOR = {
    "rate": "counter",
    "increase": "counter",
    "irate": "counter",
    "resets": "counter",
    "min_over_time": "min",
    "max_over_time": "max",
    "sum_over_time": "sum",
    "count_over_time": "count",
}


class Selection:
    """Builds and caches :class:`Block` objects over a store that only grows.

    Matched series are found once per selector and then only the newly registered series
    are tested; samples are read for the time span asked (``lo_ms``..``hi_ms``) only, so
    an evaluation at hour 24 costs what one at hour 1 does.
    """

    def __init__(self, store: MetricStore, labels: LabelTable, dotall: bool) -> None:
        self.store = store
        self.labels = labels
        self.dotall = dotall
        self._matches: dict[tuple[Matcher, ...], _Match] = {}
        self._blocks: dict[tuple[tuple[Matcher, ...], str], tuple[int, int, int, int, Block]] = {}
        # base label set -> its labels as strings, and its non-empty pairs sorted
        self._base_cache: dict[int, tuple[dict[str, str], list[tuple[str, str]]]] = {}
        self._tested: dict[Matcher, dict[str, bool]] = {}  # regex matcher -> value -> answer
        self._full: dict[tuple[int, int], tuple[tuple[tuple[str, str], ...], int]] = {}  # sorted labels, id
        self._live: dict[tuple[tuple[Matcher, ...], int], _Live] = {}
        # (table, match) -> (table, series checked, the matched columns in label order, ranks)
        self._cols: dict[tuple[int, int], tuple[object, int, np.ndarray, np.ndarray]] = {}

    def _regex(self, pattern: str) -> re.Pattern[str]:
        return compile_matcher(pattern, self.dotall)

    def _matches_value(self, m: Matcher, value: str) -> bool:
        if m.op == "=":
            return value == m.value
        if m.op == "!=":
            return value != m.value
        hit = self._regex(m.value).fullmatch(value) is not None
        return hit if m.op == "=~" else not hit

    def _test(self, m: Matcher) -> tuple[str, Callable[[str], bool]]:
        """``m`` as (label name, test of a value): :meth:`_matches_value` without the dispatch
        per series (a regular expression's answers remembered per value)."""
        if m.op == "=":
            return m.name, m.value.__eq__
        if m.op == "!=":
            return m.name, m.value.__ne__
        seen = self._tested.setdefault(m, {})

        def test(value: str) -> bool:
            hit = seen.get(value)
            if hit is None:
                hit = seen[value] = self._matches_value(m, value)
            return hit

        return m.name, test

    def match(self, matchers: tuple[Matcher, ...]) -> _Match:
        """The series ``matchers`` select, testing only series registered since the last call."""
        m = self._matches.get(matchers)
        if m is None:
            m = self._matches[matchers] = _Match()
        st = self.store
        n = len(st.series_metric)
        if m.checked == n:
            return m
        name_ms = [x for x in matchers if x.name == NAME]
        other = [x for x in matchers if x.name != NAME]
        names = st.metric_names
        for mid in range(m.names_checked, len(names)):
            if all(self._matches_value(x, names[mid]) for x in name_ms):
                m.mids.add(mid)
        m.names_checked = len(names)
        found: list[tuple[tuple[tuple[str, str], ...], int, int]] = []
        if m.mids:
            smetric = np.frombuffer(st.series_metric, dtype=np.int64)[m.checked : n]
            wanted = np.zeros(len(names), dtype=bool)
            wanted[np.fromiter(m.mids, dtype=np.int64, count=len(m.mids))] = True
            cand = np.flatnonzero(wanted[smetric]) + m.checked
            lsets, sets, tests = st.series_label_set, st._lsets, [self._test(x) for x in other]
            bases, smet, fulls = self._base_cache, st.series_metric, self._full
            for sid in cand.tolist():
                lset_id = lsets[sid]
                bid, extra = sets[lset_id]
                base = bases.get(bid)
                if base is None:
                    base = self._base(bid)
                # each matcher's label: the extra pairs' (the last of a name), else the base's
                for name, test in tests:
                    value = base[0].get(name, "")
                    for k, v in extra:
                        if k == name:
                            value = str(v)
                    if not test(value):
                        break
                else:
                    mid = smet[sid]
                    hit = fulls.get((lset_id, mid))
                    if hit is None:
                        full = self._full_labels(base, extra, names[mid])
                        hit = fulls[(lset_id, mid)] = (full, self.labels.intern(full))
                    found.append((hit[0], sid, hit[1]))
        m.checked = n
        if found:  # into the label order: appended when after every known one, else inserted
            found.sort()
            if not m.found or found[0] > m.found[-1]:
                m.found.extend(found)
                m.sid_list.extend(f[1] for f in found)
                m.lid_list.extend(f[2] for f in found)
            else:
                at = 0
                for f in found:  # rising: each goes after the one before
                    at = bisect.bisect_right(m.found, f, at)
                    m.found.insert(at, f)
                    m.sid_list.insert(at, f[1])
                    m.lid_list.insert(at, f[2])
            m.dirty = True
        if m.dirty:
            m.sids = np.array(m.sid_list, dtype=np.int64)
            m.lids = np.array(m.lid_list, dtype=np.int64)
            m.rank = np.full(n, -1, dtype=np.int64)
            m.rank[m.sids] = np.arange(m.sids.size)
            m.dirty = False
        elif m.rank.size < n:
            m.rank = np.concatenate((m.rank, np.full(n - m.rank.size, -1, dtype=np.int64)))
        return m

    def _base(self, bid: int) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """The store's base label set ``bid`` as strings, and its non-empty pairs sorted."""
        base = {k: str(v) for k, v in self.store._bases[bid].items()}
        out = self._base_cache[bid] = (base, sorted((k, v) for k, v in base.items() if v != ""))
        return out

    @staticmethod
    def _full_labels(
        base: tuple[dict[str, str], list[tuple[str, str]]], extra: tuple[tuple[str, str], ...], name: str
    ) -> tuple[tuple[str, str], ...]:
        """The sorted non-empty labels of a series (``MetricStore.labels_of``: the base's
        labels, then its extra pairs, the last of a name kept) and ``__name__``."""
        if not extra:
            return tuple(sorted([*base[1], (NAME, name)]))
        ext = [(k, str(v)) for k, v in extra]
        keys = base[0]
        if not any(k in keys for k, _ in ext) and (len(ext) == 1 or len({k for k, _ in ext}) == len(ext)):
            return tuple(sorted([*base[1], *[p for p in ext if p[1] != ""], (NAME, name)]))
        lab = dict(keys)
        for k, v in extra:
            lab[k] = str(v)
        return tuple(sorted([*((k, v) for k, v in lab.items() if v != ""), (NAME, name)]))

    def block(
        self,
        sel: Selector,
        lo_ms: int | None = None,
        hi_ms: int | None = None,
        aggr: str = "avg",
        *,
        live: bool = False,
    ) -> Block:
        """The block of series ``sel`` matches with their samples in ``[lo_ms, hi_ms]`` (all if None).

        ``aggr`` is the aggregate read where the span reaches downsampled data (see
        :data:`AGGREGATE_FOR`; ``count`` counts raw samples as 1 each). ``live`` keeps the
        block up to date incrementally for calls that move forward in time with the same reach
        ``hi_ms - lo_ms`` (instant queries at successive times, as rule evaluation makes).
        """
        lo = -(1 << 62) if lo_ms is None else lo_ms
        hi = 1 << 62 if hi_ms is None else hi_ms
        m = self.match(sel.matchers)
        st = self.store
        if live and aggr == "avg" and lo_ms is not None and hi_ms is not None and not st.has_downsampled:
            return self._live_block(sel.matchers, m, lo, hi)
        key = (sel.matchers, aggr)
        cached = self._blocks.get(key)
        version = self.store.version
        if cached is not None:
            c_ver, c_checked, c_lo, c_hi, blk = cached
            if c_ver == version and c_checked == m.checked and c_lo <= lo and hi <= c_hi:
                return blk
        blk = self._build(m, lo, hi, aggr)
        self._blocks[key] = (version, m.checked, lo, hi, blk)
        return blk

    def _live_block(self, matchers: tuple[Matcher, ...], m: _Match, lo: int, hi: int) -> Block:
        """The block of ``matchers`` holding (at least) every sample in ``[lo, hi]``, kept up to
        date incrementally: the store only grows, so each call reads just the rows appended
        since the last one (per table, from a remembered position) and drops the samples that
        fell out of the reach ``hi - lo``. A block holding more than ``[lo, hi]`` answers every
        lookup and window inside it exactly as the block of ``[lo, hi]`` does."""
        key = (matchers, hi - lo)
        live = self._live.get(key)
        st = self.store
        if live is not None and live.tables is st._tables and lo >= live.cut:
            if live.lids is not m.lids:
                live.rematch(m)
            blk = live.update(st, m, lo)
            if blk is not None:
                return blk
        live = self._live[key] = _Live(m, st._tables, hi - lo)
        blk = live.update(st, m, lo)
        assert blk is not None
        return blk

    def _build(self, m: _Match, lo: int, hi: int, aggr: str) -> Block:
        st = self.store
        lo_s, hi_s = lo / 1000.0, hi / 1000.0
        ranks: list[np.ndarray] = []
        times: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        if m.sids.size:
            for tb, a, b in st.raw_window(lo_s, hi_s):
                ckey = (id(tb), id(m))
                hit = self._cols.get(ckey)
                if hit is None or hit[0] is not tb or hit[1] != m.checked:
                    r = m.rank[tb.ids]
                    cols = np.flatnonzero(r >= 0)
                    cols = cols[np.argsort(r[cols], kind="stable")]  # label order
                    hit = self._cols[ckey] = (tb, m.checked, cols, r[cols])
                _, _, cols, rk = hit
                if not cols.size:
                    continue
                t = tb.t[a:b]
                sub = tb.rows(a, b, cols)
                ranks.append(np.repeat(rk, t.size))
                times.append(np.tile(t, cols.size))
                v = sub.T.ravel()
                vals.append(np.ones_like(v) if aggr == "count" else v)
            downsampled = st.has_downsampled and self._downsampled(m, lo_s, hi_s, aggr, ranks, times, vals)
        else:
            downsampled = False
        rank = np.concatenate(ranks) if ranks else np.empty(0, np.int64)
        t = np.concatenate(times) if times else np.empty(0)
        v = np.concatenate(vals) if vals else np.empty(0)
        if len(ranks) > 1 or downsampled:
            order = np.lexsort((t, rank))
            rank, t, v = rank[order], t[order], v[order]
        t_ms = np.round(t * 1000.0).astype(np.int64)
        s_t, s_ids = st.stale_window(lo_s, hi_s) if m.sids.size else (np.empty(0), np.empty(0, np.int64))
        s_rank = m.rank[s_ids] if s_ids.size else np.empty(0, np.int64)
        keep = s_rank >= 0
        s_rank, s_ms = s_rank[keep], np.round(s_t[keep] * 1000.0).astype(np.int64)
        if s_rank.size:
            order = np.lexsort((s_ms, s_rank))
            s_rank, s_ms = s_rank[order], s_ms[order]
        blk = _make_block(m.lids, rank, t_ms, v, s_rank, s_ms)
        blk.downsampled = downsampled
        return blk

    def _downsampled(
        self,
        m: _Match,
        lo: float,
        hi: float,
        aggr: str,
        ranks: list[np.ndarray],
        times: list[np.ndarray],
        vals: list[np.ndarray],
    ) -> bool:
        """Add the downsampled windows older than the raw data in ``[lo, hi]``; True if any."""
        st = self.store
        upper = min(st.raw_start(), hi + 1e-9)
        found = False
        for _res, parts in st.downsampled():
            if upper <= lo or not parts:
                break
            level_start = upper
            for p in parts:
                sel_t = (p.t >= lo) & (p.t < upper)
                if p.t.size:
                    level_start = min(level_start, float(p.t.min()))
                if not sel_t.any():
                    continue
                r = m.rank[p.ids]
                cols = np.flatnonzero(r >= 0)
                if not cols.size:
                    continue
                rows = np.flatnonzero(sel_t)
                sub = p.take(aggr, rows, cols)
                t = p.t[rows]
                v = sub.T.ravel()
                ok = ~np.isnan(v)
                ranks.append(np.repeat(r[cols], t.size)[ok])
                times.append(np.tile(t, cols.size)[ok])
                vals.append(v[ok])
                found = True
            upper = level_start
        return found


def _make_block(
    lids: np.ndarray,
    rank: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    s_rank: np.ndarray | None = None,
    s_t: np.ndarray | None = None,
) -> Block:
    n = lids.size
    off = np.searchsorted(rank, np.arange(n + 1)).astype(np.int64)
    lows = [int(t.min())] if t.size else []
    if s_t is not None and s_t.size:
        lows.append(int(s_t.min()))
    base = min(lows) - 1 if lows else 0
    if t.size and int(t.max()) - base >= _SPAN:
        raise ValueError("sample times span more than 34 years")
    keys = (rank.astype(np.int64) << _SHIFT) | (t - base)
    blk = Block(np.asarray(lids, dtype=np.int64), t, v, off, keys, base)
    if s_rank is not None and s_t is not None and s_rank.size:
        blk.st = s_t
        blk.skeys = (s_rank.astype(np.int64) << _SHIFT) | (s_t - base)
        blk.soff = np.searchsorted(s_rank, np.arange(n + 1)).astype(np.int64)
    return blk
