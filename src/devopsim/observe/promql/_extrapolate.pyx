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
    cdef double first_v, last_v, result, to_start, to_end, sampled, avg, threshold
    cdef double zero, ext, factor, cur, prev, range_s = range_ms / 1000.0
    cdef int64_t first_t, last_t, end_t
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
    with nogil:
        if counter:
            for q in range(1, nv):
                cur = v[q]
                prev = v[q - 1]
                resets[q + 1] = resets[q] + (1 if (cur < prev and prev != 0) else 0)
        for k in range(n):
            a = s[k]
            b = e[k]
            first_v = v[a]
            last_v = v[b - 1]
            result = last_v - first_v
            if counter and resets[b] > resets[a + 1]:
                for q in range(a + 1, b):
                    cur = v[q]
                    prev = v[q - 1]
                    result = result + (prev if cur < prev else 0.0)
            end_t = ts[k]
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
            out[k] = result * factor
