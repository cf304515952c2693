# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""``rate``/``increase``/``delta`` over every window of a range vector in one pass.

The NumPy path (``rangefuncs._extrapolated_numpy``, kept as the reference) spends ~30
array operations per call on windows of a rules batch (series x steps): each costs more in
call overhead and temporaries than in arithmetic. This does the same IEEE operations on each
window, in the same order (built with ``-ffp-contract=off``, so no multiply-add is fused):
``last - first``, the counter resets added back left to right (only in windows holding a
reset, zeros included, as the reference adds them), then Prometheus' extrapolation. The
comparisons are written as the reference's ``np.where`` conditions (never negated), so NaN
takes the same branch. The bits are the reference's (the tests compare them).
"""

import numpy as np

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


cdef inline double _change(
    const int64_t* t,
    const double* v,
    Py_ssize_t a,
    Py_ssize_t b,
    int64_t end_t,
    int64_t range_ms,
    double range_s,
    bint counter,
    bint is_rate,
    bint v2,
    bint reset,
) noexcept nogil:
    """The extrapolated change of samples ``a:b`` (at least two) of a window ending at
    ``end_t``; ``reset``: the window holds a counter reset (its drops are added back)."""
    cdef double first_v, last_v, result, to_start, to_end, sampled, avg, threshold
    cdef double zero, ext, factor, cur, prev
    cdef int64_t first_t, last_t
    cdef Py_ssize_t q
    first_v = v[a]
    last_v = v[b - 1]
    result = last_v - first_v
    if counter and reset:
        for q in range(a + 1, b):
            cur = v[q]
            prev = v[q - 1]
            result = result + (prev if cur < prev else 0.0)
    first_t = t[a]
    last_t = t[b - 1]
    to_start = (first_t - (end_t - range_ms)) / 1000.0
    to_end = (end_t - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg = sampled / <double> (b - a - 1)
    threshold = avg * 1.1
    if v2:
        if counter:
            zero = sampled * (first_v / result)
            if result > 0 and first_v >= 0 and zero < to_start:
                to_start = zero
        ext = sampled + (to_start if to_start < threshold else avg / 2)
        ext = ext + (to_end if to_end < threshold else avg / 2)
    else:
        to_start = avg / 2 if to_start >= threshold else to_start
        if counter:
            zero = sampled * (first_v / result)
            if result > 0 and first_v >= 0 and zero < to_start:
                to_start = zero
        to_end = avg / 2 if to_end >= threshold else to_end
        ext = sampled + to_start + to_end
    factor = ext / sampled
    if is_rate:
        factor = factor / range_s
    return result * factor


def extrapolate(
    const int64_t[::1] t,
    const double[::1] v,
    const int64_t[::1] s,
    const int64_t[::1] e,
    const int64_t[:] ts,
    int64_t range_ms,
    bint counter,
    bint is_rate,
    bint v2,
    double[::1] out,
):
    """Window ``k`` holds samples ``s[k]:e[k]`` (at least two) of ``t``/``v`` and ends at
    ``ts[k]`` (ms); its extrapolated change (per second when ``is_rate``) goes to ``out[k]``."""
    cdef Py_ssize_t n = s.shape[0], k, a, b, q
    cdef double cur, prev, range_s = range_ms / 1000.0
    if e.shape[0] != n or ts.shape[0] != n or out.shape[0] != n:
        raise ValueError("shape mismatch")
    for k in range(n):
        if e[k] - s[k] < 2 or s[k] < 0 or e[k] > v.shape[0] or v.shape[0] != t.shape[0]:
            raise ValueError("a window of fewer than two samples, or outside the samples")
    # resets[q]: samples below a nonzero predecessor among 1..q-1 (windows overlap: each
    # sample is tested once, not once per window holding it)
    cdef Py_ssize_t nv = v.shape[0]
    resets_a = np.zeros(nv + 1 if counter else 1, dtype=np.int64)
    cdef int64_t[::1] resets = resets_a
    if n == 0:
        return
    with nogil:
        if counter:
            for q in range(1, nv):
                cur = v[q]
                prev = v[q - 1]
                resets[q + 1] = resets[q] + (1 if (cur < prev and prev != 0) else 0)
        for k in range(n):
            a = s[k]
            b = e[k]
            out[k] = _change(
                &t[0], &v[0], a, b, ts[k], range_ms, range_s, counter, is_rate, v2,
                counter and resets[b] > resets[a + 1],
            )


def extrapolate_steps(
    const int64_t[::1] t,
    const double[::1] v,
    const int64_t[::1] off,
    const int64_t[::1] rows,
    const int64_t[::1] at,
    int64_t range_ms,
    bint counter,
    bint is_rate,
    bint v2,
    double[:, ::1] out,
    unsigned char[:, ::1] ok,
):
    """:func:`extrapolate` over the windows of many steps at once. Series ``rows[i]`` holds
    samples ``off[r]:off[r + 1]`` of ``t``/``v`` (times rising); step ``k``'s window ends at
    ``at[k]`` (ms, rising) and starts after ``at[k] - range_ms`` (at it, when ``v2``). Each
    window with two samples or more gets its change in ``out[i, k]`` and 1 in ``ok[i, k]``;
    the others are left as they are. The windows, and the arithmetic on each, are what the
    step evaluator's searches and :func:`extrapolate` give (the tests compare them)."""
    cdef Py_ssize_t nr = rows.shape[0], nk = at.shape[0], nv = v.shape[0]
    cdef Py_ssize_t i, k, r, a0, b0, lo, hi, j, longest = 0
    cdef int64_t edge
    cdef double cur, prev, range_s = range_ms / 1000.0
    cdef int64_t* pre
    if out.shape[0] != nr or ok.shape[0] != nr or out.shape[1] != nk or ok.shape[1] != nk:
        raise ValueError("shape mismatch")
    if t.shape[0] != nv:
        raise ValueError("shape mismatch")
    for k in range(1, nk):
        if at[k] <= at[k - 1]:
            raise ValueError("steps must rise")
    for i in range(nr):
        r = rows[i]
        if r < 0 or r + 1 >= off.shape[0] or off[r] < 0 or off[r] > off[r + 1] or off[r + 1] > nv:
            raise ValueError("a series outside the samples")
        if off[r + 1] - off[r] > longest:
            longest = off[r + 1] - off[r]
    if nr == 0 or nk == 0:
        return
    # pre[j]: samples j' in 1..j-1 of the series below a nonzero predecessor (as
    # extrapolate's resets, counted within the series: a window never holds another's)
    pre = <int64_t*> malloc((longest + 1) * sizeof(int64_t))
    if pre == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(nr):
                r = rows[i]
                a0 = off[r]
                b0 = off[r + 1]
                if b0 - a0 < 2:
                    continue
                if counter:
                    pre[0] = 0
                    pre[1] = 0
                    for j in range(a0 + 1, b0):
                        cur = v[j]
                        prev = v[j - 1]
                        pre[j - a0 + 1] = pre[j - a0] + (1 if (cur < prev and prev != 0) else 0)
                lo = a0
                hi = a0
                for k in range(nk):
                    while hi < b0 and t[hi] <= at[k]:
                        hi += 1
                    edge = at[k] - range_ms
                    if v2:
                        while lo < b0 and t[lo] < edge:
                            lo += 1
                    else:
                        while lo < b0 and t[lo] <= edge:
                            lo += 1
                    if hi - lo < 2:
                        continue
                    out[i, k] = _change(
                        &t[0], &v[0], lo, hi, at[k], range_ms, range_s, counter, is_rate, v2,
                        counter and pre[hi - a0] > pre[lo + 1 - a0],
                    )
                    ok[i, k] = 1
    finally:
        free(pre)
