"""A match's samples kept up to date across rules evaluations (:class:`_Live`, see
``Selection._live_block``): new table rows merged into the held, sorted samples."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from devopsim.observe.promql._merge import merge_chunks
from devopsim.observe.promql.blocks import _KEY_BASE, _MAX_RANK, _SHIFT, _SPAN, Block, _make_block, _Match
from devopsim.observe.promql.rows import Chunk, one_matrix, row_pieces

if TYPE_CHECKING:
    from devopsim.observe.store import MetricStore, _Table

__all__: list[str] = []


def _refcounts(bufs: tuple[np.ndarray, ...]) -> list[int]:
    return [sys.getrefcount(b) for b in bufs]


#: What :func:`_refcounts` says of an array only a tuple holds (measured, not assumed: the
#: count an interpreter reports for a live object varies between versions).
_UNSHARED = max(_refcounts((np.empty(1),)))


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
