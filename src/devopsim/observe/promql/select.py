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
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from devopsim.observe.promql.ast import Matcher, Selector
from devopsim.observe.promql.blocks import (
    Block,
    Window,
    _make_block,
    _Match,
)
from devopsim.observe.promql.labels import NAME, LabelTable
from devopsim.observe.promql.live import _Live
from devopsim.observe.promql.regex import compile_matcher

if TYPE_CHECKING:
    from devopsim.observe.store import MetricStore

__all__ = ["AGGREGATE_FOR", "Block", "Selection", "Window"]


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
