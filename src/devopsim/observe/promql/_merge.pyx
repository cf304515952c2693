# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Merging new table rows into a live block's sorted samples, in one pass.

A rules batch reads up to ~10^5 new samples per selector. The NumPy path
(``_Live._merge``, kept as the reference) first lays them out as flat arrays (ranks
repeated, times tiled, values transposed), then inserts them with a searchsorted, a
mask and six scatters. Here the table's rows are read in place (row by row, each wide
row once, into a scratch column per series) and merged with the held samples, every
table at once, in a single linear pass (per series, the held run and each table's
column holding it), comparing (key, table position) as the reference's stable
``lexsort`` does, so the order, ties included, is the reference's. Runs are copied in
bulk: while one run's head is below every other run's head, it is copied without
looking at the others (the usual case: a series' held samples, then one table's newer
rows). The held samples older than a cut are dropped on the way (the live block's trim)
and each series' first place is written (the block's offsets). Only copies: the bits
are the reference's.
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
    int64_t lo_rel,
    Py_ssize_t nser,
    int64_t[::1] key,
    int64_t[::1] t,
    double[::1] v,
    int64_t[::1] p,
    int64_t[::1] off,
    double[::1] scratch,
):
    """Merge tables' new rows into the samples ``okey``/``ov``/``opos`` sorted by (key,
    position), dropping the held samples whose relative time ``okey & span`` is below
    ``lo_rel``. ``chunks`` holds per table ``(rk, rel, pieces, cols, pos)``: the table's rows
    are those of the 2-D arrays ``pieces`` one after the other (the store's blocks, read in
    place), row ``r`` at relative time ``rel[r]``; column ``cols[c]`` of them is the series of
    rank ``rk[c]``; ``pos`` is the table's position (one table per position). The merged key,
    time ``(key & span) + base``, value and position go into the first places of ``key``,
    ``t``, ``v`` and ``p`` (which must not overlap the inputs; room for every held and new
    sample); the order is the stable sort of the held samples followed by the tables' by
    (key, position). Every rank is below ``nser``; ``off[r]`` (``nser + 1`` places) becomes
    the place of rank ``r``'s first sample (``searchsorted(key, r << 40)``). ``scratch`` (a
    place per new sample) takes each table's values column by column first: gathered row by
    row, the table's wide rows are read once each, not once per column. Returns the number
    of samples written, or -1, writing nothing, when some table's keys are not in order
    (``rk`` not strictly rising or ``rel`` falling), which the caller leaves to the reference
    path."""
    cdef Py_ssize_t no = okey.shape[0], nch = len(chunks), total = no
    cdef Py_ssize_t j, c, r
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
    if off.shape[0] < nser + 1:
        raise ValueError("offsets too small")
    if no and (okey[no - 1] >> _SHIFT) >= nser:
        raise ValueError("a held rank outside the series")
    for j in range(nch):
        rk_m, rel_m, pieces, cols_m, _ = chunks[j]
        if cols_m.shape[0] != rk_m.shape[0] or sum([len(pc) for pc in pieces]) != rel_m.shape[0]:
            raise ValueError("shape mismatch")
        for c in range(1, rk_m.shape[0]):
            if rk_m[c] <= rk_m[c - 1]:
                return -1
        for r in range(1, rel_m.shape[0]):
            if rel_m[r] < rel_m[r - 1]:
                return -1
        if rel_m.shape[0] and rk_m.shape[0] and (rk_m[0] < 0 or rk_m[rk_m.shape[0] - 1] >= nser):
            raise ValueError("a rank outside the series")
        total += rel_m.shape[0] * rk_m.shape[0]
    if key.shape[0] < total or t.shape[0] < total or v.shape[0] < total or p.shape[0] < total:
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
        return _merge_all(okey, ov, opos, ch, nch, act, base, lo_rel, nser, key, t, v, p, off)
    finally:
        if ch != NULL:
            for j in range(nch):
                free(ch[j].rows)
                free(ch[j].coloff)
        free(ch)
        free(act)


cdef inline bint _before(int64_t k1, int64_t p1, int s1, int64_t k2, int64_t p2, int s2) noexcept nogil:
    """Whether (key, position, source) ``1`` sorts before ``2`` (source: 0 held, 1 a table; no two
    heads are equal: two tables differ in position)."""
    if k1 != k2:
        return k1 < k2
    if p1 != p2:
        return p1 < p2
    return s1 < s2


cdef Py_ssize_t _merge_all(
    const int64_t[::1] okey,
    const double[::1] ov,
    const int64_t[::1] opos,
    _Chunk* ch,
    Py_ssize_t nch,
    Py_ssize_t* act,
    int64_t base,
    int64_t lo_rel,
    Py_ssize_t nser,
    int64_t[::1] key,
    int64_t[::1] t,
    double[::1] v,
    int64_t[::1] p,
    int64_t[::1] off,
) noexcept nogil:
    cdef Py_ssize_t no = okey.shape[0]
    cdef Py_ssize_t j, a, r, i = 0, o = 0, i_end, nact, best, nxt = 0
    cdef int64_t k, hi, cur, bk = 0, bp = 0, k2, p2, big = (<int64_t>1) << 62
    cdef int s2, has2
    cdef _Chunk* x
    cdef const char* src
    cdef double* dst
    cdef const double* cm
    cdef const int64_t* rel
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
        while nxt <= cur:
            off[nxt] = o
            nxt += 1
        hi = cur << _SHIFT
        i_end = i
        while i_end < no and (okey[i_end] >> _SHIFT) == cur:
            i_end += 1
        while i < i_end and (okey[i] & _SPAN) < lo_rel:  # trimmed: the run's oldest
            i += 1
        nact = 0
        for j in range(nch):
            if ch[j].c < ch[j].ncol and ch[j].rk[ch[j].c] == cur:
                ch[j].r = 0
                act[nact] = j
                nact += 1
        while True:  # this series' runs merged by (key, position, source), in bulk
            best = -2  # the run with the lowest head (-1: held), and the second lowest head
            has2 = 0
            if i < i_end:
                best = -1
                bk = okey[i]
                bp = opos[i]
            for a in range(nact):
                x = &ch[act[a]]
                if x.r < x.nrow:
                    k = hi | x.rel[x.r]
                    if best == -2:
                        best = a
                        bk = k
                        bp = x.pos
                    elif _before(k, x.pos, 1, bk, bp, 0 if best == -1 else 1):
                        k2 = bk
                        p2 = bp
                        s2 = 0 if best == -1 else 1
                        has2 = 1
                        best = a
                        bk = k
                        bp = x.pos
                    elif not has2 or _before(k, x.pos, 1, k2, p2, s2):
                        k2 = k
                        p2 = x.pos
                        s2 = 1
                        has2 = 1
            if best == -2:
                break
            if best == -1:  # held samples while below the second head
                while i < i_end:
                    k = okey[i]
                    if has2 and not _before(k, opos[i], 0, k2, p2, s2):
                        break
                    key[o] = k
                    t[o] = (k & _SPAN) + base
                    v[o] = ov[i]
                    p[o] = opos[i]
                    i += 1
                    o += 1
            else:
                x = &ch[act[best]]
                rel = x.rel
                cm = x.cm + x.c * x.nrow
                r = x.r
                while r < x.nrow:
                    k = hi | rel[r]
                    if has2 and not _before(k, x.pos, 1, k2, p2, s2):
                        break
                    key[o] = k
                    t[o] = rel[r] + base
                    v[o] = cm[r]
                    p[o] = x.pos
                    r += 1
                    o += 1
                x.r = r
        for a in range(nact):
            ch[act[a]].c += 1
    while nxt <= nser:
        off[nxt] = o
        nxt += 1
    return o
