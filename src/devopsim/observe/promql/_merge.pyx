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
from libc.stdlib cimport free, malloc

cdef int64_t _SHIFT = 40
cdef int64_t _SPAN = 0xFFFFFFFFFF  # (1 << 40) - 1, as select._SPAN


cdef struct _Chunk:
    const int64_t* rk  # the ranks of the table's columns, rising
    const int64_t* rel  # the rows' relative times, non-decreasing
    const char* sub  # values: row r, column c at sub + r * s0 + c * s1
    Py_ssize_t s0, s1, nrow, ncol
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
):
    """Merge tables' new rows into the samples ``okey``/``ov``/``opos`` sorted by (key,
    position). ``chunks`` holds per table ``(rk, rel, sub, pos)``: column ``c`` of ``sub``
    (rows x columns) is the series of rank ``rk[c]``, row ``r`` at relative time ``rel[r]``,
    from the table at position ``pos`` (one table per position). The merged key, rank, time
    ``(key & span) + base``, value and position go into the first ``len(okey) +
    sum(sub.size)`` places of ``key``, ``rank``, ``t``, ``v`` and ``p`` (which must not
    overlap the inputs); the order is the stable sort of the held samples followed by the
    tables' by (key, position). Returns False, writing nothing, when some table's keys are
    not in order (``rk`` not strictly rising or ``rel`` falling), which the caller leaves to
    the reference path."""
    cdef Py_ssize_t no = okey.shape[0], nch = len(chunks), total = no
    cdef Py_ssize_t j, a, c, r, i = 0, o = 0, i_end, nact, best
    cdef int64_t k, hi, cur, bk, bp, big = (<int64_t>1) << 62
    cdef const int64_t[::1] rk_m
    cdef const int64_t[::1] rel_m
    cdef const double[:, :] sub_m
    cdef _Chunk* ch
    cdef _Chunk* x
    cdef Py_ssize_t* act
    if ov.shape[0] != no or opos.shape[0] != no:
        raise ValueError("shape mismatch")
    keep = []  # the chunks' buffers, held while their pointers are used
    for j in range(nch):
        rk_m, rel_m, sub_m, _ = chunks[j]
        if sub_m.shape[0] != rel_m.shape[0] or sub_m.shape[1] != rk_m.shape[0]:
            raise ValueError("shape mismatch")
        for c in range(1, rk_m.shape[0]):
            if rk_m[c] <= rk_m[c - 1]:
                return False
        for r in range(1, rel_m.shape[0]):
            if rel_m[r] < rel_m[r - 1]:
                return False
        total += rel_m.shape[0] * rk_m.shape[0]
        keep.append((rk_m, rel_m, sub_m))
    if key.shape[0] < total or rank.shape[0] < total or t.shape[0] < total or v.shape[0] < total or p.shape[0] < total:
        raise ValueError("output too small")
    ch = <_Chunk*> malloc(max(nch, 1) * sizeof(_Chunk))
    act = <Py_ssize_t*> malloc(max(nch, 1) * sizeof(Py_ssize_t))
    if ch == NULL or act == NULL:
        free(ch)
        free(act)
        raise MemoryError()
    for j in range(nch):
        rk_m, rel_m, sub_m = keep[j]
        ch[j].rk = &rk_m[0] if rk_m.shape[0] else NULL
        ch[j].rel = &rel_m[0] if rel_m.shape[0] else NULL
        ch[j].sub = <const char*> &sub_m[0, 0] if sub_m.shape[0] and sub_m.shape[1] else NULL
        ch[j].s0 = sub_m.strides[0]
        ch[j].s1 = sub_m.strides[1]
        ch[j].nrow = rel_m.shape[0]
        ch[j].ncol = rk_m.shape[0] if rel_m.shape[0] else 0  # a table without rows adds nothing
        ch[j].pos = chunks[j][3]
        ch[j].c = 0
    with nogil:
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
                    v[o] = (<const double*> (x.sub + r * x.s0 + x.c * x.s1))[0]
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
                    v[o] = (<const double*> (x.sub + x.r * x.s0 + x.c * x.s1))[0]
                    x.r += 1
                o += 1
            for a in range(nact):
                ch[act[a]].c += 1
        for o in range(total):
            k = key[o]
            rank[o] = k >> _SHIFT
            t[o] = (k & _SPAN) + base
    free(ch)
    free(act)
    return True
