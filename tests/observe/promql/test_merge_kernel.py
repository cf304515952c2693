"""The compiled merge of new table rows into a live block (``_Live._ingest`` through
``_merge.merge_chunks``) against its NumPy reference (``_Live._ingest_numpy``) and against
the definition both implement: the held samples are the stable sort, by (series rank, time,
table position), of the old samples followed by each table's rows (columns in rank order,
rows in time order). Ties (same series and time in the held samples and a new table, or in
two new tables), several tables per call, unsorted columns (left to the reference),
strided value arrays, the trim of the held samples on the way (``cut``) and the series'
first places the kernel writes for the block (``off``) are covered.
"""

from __future__ import annotations

import numpy as np
import pytest

from devopsim.observe.promql._merge import merge_chunks
from devopsim.observe.promql.blocks import _KEY_BASE, _SHIFT, _Match
from devopsim.observe.promql.live import _Live
from devopsim.observe.promql.rows import Chunk, one_matrix, row_pieces
from devopsim.observe.store import _Table


def _live(rank: np.ndarray, t: np.ndarray, v: np.ndarray, pos: np.ndarray) -> _Live:
    lv = _Live(_Match(), [], 1)
    order = np.lexsort((pos, t, rank))
    lv.rank, lv.t, lv.v, lv.tpos = rank[order], t[order], v[order], pos[order]
    lv.key = (lv.rank << _SHIFT) | (lv.t - _KEY_BASE)
    return lv


def _definition(lv: _Live, chunks: list[Chunk], cut: int | None = None) -> list[tuple[int, int, int, float]]:
    """(rank, t, position, value) in the order Python's stable sort gives (the held samples
    before ``cut`` dropped)."""
    items = list(zip(lv.rank.tolist(), lv.t.tolist(), lv.tpos.tolist(), lv.v.tolist(), strict=True))
    if cut is not None:
        items = [x for x in items if x[1] >= cut]
    for rk, t_ms, pieces, cols, pos in chunks:
        whole = np.concatenate([*pieces, np.empty((0, pieces[0].shape[1] if pieces else 0))])
        sub = whole[:, cols] if t_ms.size else np.empty((0, cols.size))
        for c, r in enumerate(rk.tolist()):
            items += [(r, int(t), pos, float(sub[i, c])) for i, t in enumerate(t_ms.tolist())]
    return sorted(items, key=lambda x: (x[0], x[1], x[2]))


def _state(lv: _Live) -> list[tuple[int, int, int, float]]:
    assert lv.key is not None
    assert np.array_equal(lv.key, (lv.rank << _SHIFT) | (lv.t - _KEY_BASE))
    return list(zip(lv.rank.tolist(), lv.t.tolist(), lv.tpos.tolist(), lv.v.tolist(), strict=True))


def _random_case(rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], list[Chunk]]:
    n_old = int(rng.integers(0, 40))
    times = np.arange(0, 200_000, 5_000, dtype=np.int64)  # coarse, so times collide often
    old = (
        rng.integers(0, 8, n_old).astype(np.int64),
        rng.choice(times, n_old),
        rng.normal(size=n_old),
        rng.integers(0, 4, n_old).astype(np.int64),
    )
    chunks: list[Chunk] = []
    for pos in sorted(rng.choice(6, int(rng.integers(1, 4)), replace=False).tolist()):
        ncol = int(rng.integers(0, 6))
        rk = np.sort(rng.choice(8, ncol, replace=False)).astype(np.int64)
        if ncol > 1 and rng.random() < 0.1:
            rk = rk[::-1].copy()  # not in rank order: the reference's path
        t_ms = np.sort(rng.choice(times, int(rng.integers(0, 8))))
        width = 2 * ncol + 1
        full = rng.normal(size=(t_ms.size, width))
        if rng.random() < 0.5:  # a strided matrix
            full = rng.normal(size=(t_ms.size, 2 * width))[:, ::2]
        cols = rng.choice(width, ncol, replace=False).astype(np.int64)  # column of rank rk[c]
        cuts = np.sort(rng.integers(0, t_ms.size + 1, int(rng.integers(0, 3))))  # the store's blocks
        pieces = [full[a:b] for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), t_ms.size], strict=True)]
        chunks.append((rk, t_ms, pieces, cols, int(pos)))
    return old, chunks


@pytest.mark.parametrize("seed", range(40))
def test_compiled_merge_equals_reference_and_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(25):
        old, chunks = _random_case(rng)
        cut = int(rng.choice([-1, 0, 5_000, 60_000, 120_000, 250_000])) if rng.random() < 0.5 else None
        fast, ref = _live(*old), _live(*old)
        want = _definition(ref, chunks, cut)
        nser = 8 + int(rng.integers(0, 3))
        fast._ingest(chunks, cut, nser)
        if cut is not None:  # the reference: the trim, then the merge
            ref._keep(ref.t >= cut)
        ref._ingest_numpy(chunks)
        assert _state(ref) == want
        assert _state(fast) == want
        assert fast.key is not None
        if fast.off is not None:  # each series' first place, as the block's searchsorted finds it
            firsts = np.arange(nser + 1, dtype=np.int64) << _SHIFT
            assert fast.off.tolist() == np.searchsorted(fast.key, firsts).tolist()


def test_kernel_declines_keys_out_of_order() -> None:
    e = np.zeros(0, np.int64)
    rel = np.array([5, 6], np.int64)
    out = (
        np.empty(4, np.int64),
        np.empty(4, np.int64),
        np.empty(4),
        np.empty(4, np.int64),
        np.empty(6, np.int64),
    )
    sub = np.array([[9.0, 1.0, 2.0], [9.0, 3.0, 4.0]])
    cols = np.array([1, 2], np.int64)
    for rk, r in (([3, 1], rel), ([1, 1], rel), ([1, 3], rel[::-1].copy())):
        assert (
            merge_chunks(
                e, np.zeros(0), e, [(np.array(rk, np.int64), r, [sub], cols, 0)], 0, 0, 5, *out, np.empty(8)
            )
            == -1
        )
    pieces = [sub[:1], sub[1:]]
    got = merge_chunks(
        e, np.zeros(0), e, [(np.array([1, 3], np.int64), rel, pieces, cols, 7)], 10, 0, 5, *out, np.empty(8)
    )
    key, t, v, pos, off = out
    assert got == 4 and t.tolist() == [15, 16, 15, 16] and off.tolist() == [0, 0, 2, 2, 4, 4]
    assert v.tolist() == [1.0, 3.0, 2.0, 4.0] and pos.tolist() == [7] * 4
    assert key.tolist() == [(1 << 40) | 5, (1 << 40) | 6, (3 << 40) | 5, (3 << 40) | 6]
    # held samples before the cut go, the new ones stay
    got = merge_chunks(key, v, pos, [], 10, 6, 5, *(np.empty(4, np.int64), np.empty(4, np.int64)),
                       np.empty(4), np.empty(4, np.int64), off, np.empty(0))  # fmt: skip
    assert got == 2 and off.tolist() == [0, 0, 1, 1, 2, 2]
    three = np.array([1, 3, 4], np.int64)
    with pytest.raises(ValueError):  # columns and ranks disagree
        merge_chunks(e, np.zeros(0), e, [(three, rel, [sub], cols, 0)], 0, 0, 5, *out, np.empty(8))
    with pytest.raises(ValueError):  # a column outside the pieces
        merge_chunks(
            e,
            np.zeros(0),
            e,
            [(np.array([1, 3], np.int64), rel, [sub], cols + 1, 0)],
            0,
            0,
            5,
            *out,
            np.empty(8),
        )
    with pytest.raises(ValueError):  # no room for the output
        merge_chunks(e, np.zeros(0), e, [(three, rel, [sub], np.arange(3), 0)], 0, 0, 5, *out, np.empty(8))
    with pytest.raises(ValueError):  # a rank outside the series
        merge_chunks(
            e, np.zeros(0), e, [(np.array([1, 3], np.int64), rel, [sub], cols, 0)], 0, 0, 3, *out, np.empty(8)
        )


def test_output_arrays_are_reused_only_when_nothing_refers_to_them() -> None:
    """The merge writes into pooled arrays: arrays a caller still holds (a block's, or a view
    of them) are never overwritten, and free ones are reused instead of allocated."""
    lv = _live(*(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)))
    held: list[tuple[np.ndarray, list[float]]] = []
    for k in range(6):
        t_ms = np.array([1000 * k, 1000 * k + 500], np.int64)
        lv._ingest([(np.array([0, 1], np.int64), t_ms, [np.full((2, 2), float(k))], np.arange(2), 0)])
        if k % 2 == 0:
            view = lv.v[1:]  # e.g. a block's values, still read later
            held.append((view, view.tolist()))
    for view, values in held:
        assert view.tolist() == values
    bases = {id(b) for bufs in lv.pool for b in bufs}
    del held, view
    lv.key, lv.rank, lv.t, lv.v, lv.tpos = (x.copy() for x in (lv.key, lv.rank, lv.t, lv.v, lv.tpos))
    lv._ingest([(np.array([0], np.int64), np.array([9000], np.int64), [np.ones((1, 1))], np.arange(1), 0)])
    assert lv.v.base is not None and id(lv.v.base) in bases  # a free pooled array was written
    per_series = [float(k) for k in range(6) for _ in range(2)]
    assert lv.v.tolist() == [*per_series, 1.0, *per_series]
    assert lv.rank.tolist() == [0] * 13 + [1] * 12


@pytest.mark.parametrize("seed", range(5))
def test_row_pieces_read_what_the_store_returns(seed: int) -> None:
    """The merge reads a table's rows in place (``row_pieces``, its blocks as they are);
    what they stand for is what ``_Table.rows`` returns, static columns included."""
    rng = np.random.default_rng(seed)
    tb = _Table(np.arange(7, dtype=np.int32), 5, np.array([7.0, 8.0]))
    for k in range(int(rng.integers(1, 40))):  # blocks of 1, 2, 4, ... rows
        tb.append(float(k), k, rng.normal(size=5))
    for _ in range(20):
        a = int(rng.integers(0, tb.n))
        b = int(rng.integers(a + 1, tb.n + 1))
        static = rng.random() < 0.3
        cols = rng.choice(7 if static else 5, int(rng.integers(1, 5)), replace=False).astype(np.int64)
        pieces, at = row_pieces(tb, a, b, cols)
        assert sum(len(p) for p in pieces) == b - a
        assert np.array_equal(one_matrix(pieces, at)[0], tb.rows(a, b, cols))
