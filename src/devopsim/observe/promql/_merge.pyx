# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Merging new table rows into a live block's sorted samples, in one pass.

A rules batch reads up to ~10^5 new samples per selector. The NumPy path
(``_Live._merge``, kept as the reference) first lays them out as flat arrays (ranks
repeated, times tiled, values transposed), then inserts them with a searchsorted, a
mask and six scatters: ~40-60 ns a sample. Here the table's rows are read in place
(column by column, the rank order) and merged with the held samples, every table at
once, in a single linear pass (per series, the held run and each table's column holding
it), comparing (key, table position) as the reference's stable ``lexsort`` does, so the
order, ties included, is the reference's. Only copies: the bits are the reference's.
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc

cdef int64_t _SHIFT = 40
cdef int64_t _SPAN = 0xFFFFFFFFFF  # (1 << 40) - 1, as select._SPAN


cdef struct _Chunk:
    const int64_t* rk  # the ranks of the table's columns, rising
    const int64_t* rel  # the rows' relative times, non-decreasing
    const char** rows  # values: row r, column c at rows[r] + coloff[c]
    Py_ssize_t* coloff
    double* cm  # the same values column by column (cm[c * nrow + r]), gathered first
    Py_ssize_t nrow, ncol
    int64_t pos  # the table's position (ties: held first, then the lower position)
    Py_ssize_t c  # the next column to merge
    Py_ssize_t r  # the next row of the column being merged


def merge_chunks(
    const int64_t[::1] okey,
    const double[::1] ov,
    const int64_t[::1] opos,
    list chunks,
    int64_t base,
    int64_t[::1] key,
    int64_t[::1] rank,
    int64_t[::1] t,
    double[::1] v,
    int64_t[::1] p,
    double[::1] scratch,
):
    """Merge tables' new rows into the samples ``okey``/``ov``/``opos`` sorted by (key,
    position). ``chunks`` holds per table ``(rk, rel, pieces, cols, pos)``: the table's rows
    are those of the 2-D arrays ``pieces`` one after the other (the store's blocks, read in
    place), row ``r`` at relative time ``rel[r]``; column ``cols[c]`` of them is the series of
    rank ``rk[c]``; ``pos`` is the table's position (one table per position). The merged key, rank, time
    ``(key & span) + base``, value and position go into the first ``len(okey) +
    sum(len(rel) * len(rk))`` places of ``key``, ``rank``, ``t``, ``v`` and ``p`` (which must not
    overlap the inputs); the order is the stable sort of the held samples followed by the
    tables' by (key, position). ``scratch`` (at least ``sum(len(rel) * len(rk))`` places)
    takes each table's values column by column first: gathered row by row, the table's wide
    rows are read once each, not once per column. Returns False, writing nothing, when some table's keys are
    not in order (``rk`` not strictly rising or ``rel`` falling), which the caller leaves to
    the reference path."""
    cdef Py_ssize_t no = okey.shape[0], nch = len(chunks), total = no
    cdef Py_ssize_t j, a, c, r, i = 0, o = 0, i_end, nact, best
    cdef int64_t k, hi, cur, bk, bp, big = (<int64_t>1) << 62
    cdef const int64_t[::1] rk_m
    cdef const int64_t[::1] rel_m
    cdef const int64_t[::1] cols_m
    cdef const double[:, :] piece
    cdef Py_ssize_t width, s1, row, used = 0
    cdef _Chunk* ch
    cdef _Chunk* x
    cdef Py_ssize_t* act
    if ov.shape[0] != no or opos.shape[0] != no:
        raise ValueError("shape mismatch")
    for j in range(nch):
        rk_m, rel_m, pieces, cols_m, _ = chunks[j]
        if cols_m.shape[0] != rk_m.shape[0] or sum([len(pc) for pc in pieces]) != rel_m.shape[0]:
            raise ValueError("shape mismatch")
        for c in range(1, rk_m.shape[0]):
            if rk_m[c] <= rk_m[c - 1]:
                return False
        for r in range(1, rel_m.shape[0]):
            if rel_m[r] < rel_m[r - 1]:
                return False
        total += rel_m.shape[0] * rk_m.shape[0]
    if key.shape[0] < total or rank.shape[0] < total or t.shape[0] < total or v.shape[0] < total or p.shape[0] < total:
        raise ValueError("output too small")
    if scratch.shape[0] < total - no:
        raise ValueError("scratch too small")
    ch = <_Chunk*> calloc(max(nch, 1), sizeof(_Chunk))
    act = <Py_ssize_t*> malloc(max(nch, 1) * sizeof(Py_ssize_t))
    keep = []  # the pieces' buffers, held while their pointers are used
    try:
        if ch == NULL or act == NULL:
            raise MemoryError()
        for j in range(nch):
            rk_m, rel_m, pieces, cols_m, pos_j = chunks[j]
            x = &ch[j]
            x.rk = &rk_m[0] if rk_m.shape[0] else NULL
            x.rel = &rel_m[0] if rel_m.shape[0] else NULL
            x.nrow = rel_m.shape[0]
            x.ncol = rk_m.shape[0] if rel_m.shape[0] else 0  # a table without rows adds nothing
            x.pos = pos_j
            x.c = 0
            x.rows = <const char**> malloc(max(x.nrow, 1) * sizeof(char*))
            x.coloff = <Py_ssize_t*> malloc(max(x.ncol, 1) * sizeof(Py_ssize_t))
            if x.rows == NULL or x.coloff == NULL:
                raise MemoryError()
            if not x.ncol:
                continue
            row = 0
            s1 = -1
            for obj in pieces:
                piece = obj
                if not piece.shape[0]:
                    continue
                keep.append(piece)
                width = piece.shape[1]
                if s1 == -1:
                    s1 = piece.strides[1]
                if piece.strides[1] != s1:
                    raise ValueError("pieces with different column strides")
                for c in range(x.ncol):
                    if cols_m[c] < 0 or cols_m[c] >= width:
                        raise ValueError("column out of range")
                for r in range(piece.shape[0]):
                    x.rows[row] = <const char*> &piece[r, 0]
                    row += 1
            for c in range(x.ncol):
                x.coloff[c] = cols_m[c] * s1
            x.cm = &scratch[used]
            used += x.nrow * x.ncol
        _merge_all(okey, ov, opos, ch, nch, act, base, key, rank, t, v, p, total)
    finally:
        if ch != NULL:
            for j in range(nch):
                free(ch[j].rows)
                free(ch[j].coloff)
        free(ch)
        free(act)
    return True


cdef void _merge_all(
    const int64_t[::1] okey,
    const double[::1] ov,
    const int64_t[::1] opos,
    _Chunk* ch,
    Py_ssize_t nch,
    Py_ssize_t* act,
    int64_t base,
    int64_t[::1] key,
    int64_t[::1] rank,
    int64_t[::1] t,
    double[::1] v,
    int64_t[::1] p,
    Py_ssize_t total,
) noexcept nogil:
    cdef Py_ssize_t no = okey.shape[0]
    cdef Py_ssize_t j, a, r, i = 0, o = 0, i_end, nact, best
    cdef int64_t k, hi, cur, bk = 0, bp = 0, big = (<int64_t>1) << 62
    cdef _Chunk* x
    cdef const char* src
    cdef double* dst
    cdef Py_ssize_t c, nr
    for j in range(nch):  # gather: row by row, written column by column
        x = &ch[j]
        nr = x.nrow
        dst = x.cm
        for r in range(nr if x.ncol else 0):
            src = x.rows[r]
            for c in range(x.ncol):
                dst[c * nr + r] = (<const double*> (src + x.coloff[c]))[0]
    while True:
        cur = big  # the next series: the lowest rank left in the held samples or a table
        if i < no:
            cur = okey[i] >> _SHIFT
        for j in range(nch):
            if ch[j].c < ch[j].ncol and ch[j].rk[ch[j].c] < cur:
                cur = ch[j].rk[ch[j].c]
        if cur == big:
            break
        hi = cur << _SHIFT
        i_end = i
        while i_end < no and (okey[i_end] >> _SHIFT) == cur:
            i_end += 1
        nact = 0
        for j in range(nch):
            if ch[j].c < ch[j].ncol and ch[j].rk[ch[j].c] == cur:
                ch[j].r = 0
                act[nact] = j
                nact += 1
        if nact == 1:  # the usual case: the held run and one table's column, two-way
            x = &ch[act[0]]
            r = 0
            while r < x.nrow:
                k = hi | x.rel[r]
                while i < i_end and (okey[i] < k or (okey[i] == k and opos[i] <= x.pos)):
                    key[o] = okey[i]
                    v[o] = ov[i]
                    p[o] = opos[i]
                    i += 1
                    o += 1
                key[o] = k
                v[o] = x.cm[x.c * x.nrow + r]
                p[o] = x.pos
                r += 1
                o += 1
            x.c += 1
            nact = 0  # the held run's rest is copied below
        while True:  # this series' runs merged by (key, position); ties: held, then lower
            best = -2
            if i < i_end:
                best = -1
                bk = okey[i]
                bp = opos[i]
            for a in range(nact):
                x = &ch[act[a]]
                if x.r < x.nrow:
                    k = hi | x.rel[x.r]
                    if best == -2 or k < bk or (k == bk and x.pos < bp):
                        best = a
                        bk = k
                        bp = x.pos
            if best == -2:
                break
            key[o] = bk
            p[o] = bp
            if best == -1:
                v[o] = ov[i]
                i += 1
            else:
                x = &ch[act[best]]
                v[o] = x.cm[x.c * x.nrow + x.r]
                x.r += 1
            o += 1
        for a in range(nact):
            ch[act[a]].c += 1
    for o in range(total):
        k = key[o]
        rank[o] = k >> _SHIFT
        t[o] = (k & _SPAN) + base
