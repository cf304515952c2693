# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-group work of the step evaluator over many steps, compiled: aggregation sums and counts,
and ``histogram_quantile`` over classic buckets.

The NumPy paths (``steps.StepEvaluator._aggregate``'s ``bincount``s and ``minimum.at``, and
``funcs.bucket_quantiles_numpy``, kept as the references) run a dozen array operations per
aggregation or per bucket whatever the number of steps: for a rules batch of a few steps that
is most of the query. Here each (group, step) is accumulated as ``bincount`` accumulates (rows
in order, from ``+0.0``), and each step's buckets are walked as Prometheus' ``bucketQuantile``
walks them (``funcs.bucket_quantile``): the same comparisons and IEEE operations in the same
order (built with ``-ffp-contract=off``), so the same bits (the tests compare them).
"""

from libc.math cimport INFINITY, NAN, fabs, isnan
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cdef double _MIN_NORMAL = 2.2250738585072014e-308
cdef double _MAX_FLOAT = 1.7976931348623157e308


def bucket_quantiles_sorted(
    const double[::1] q,
    const double[::1] le,
    const double[:, :] counts,
    double[::1] out,
):
    """``q`` per step; ``le`` (B >= 2) the distinct upper bounds, rising, the last +Inf;
    ``counts`` (B, steps) the finite cumulative counts in that order. Step ``k``'s quantile
    goes to ``out[k]``."""
    cdef Py_ssize_t nb = le.shape[0], nc = counts.shape[1], c, i, b, above
    cdef double prev, cur, diff, abs_sum, obs, rank, start, end, count, res, qq
    cdef bint close
    cdef double* cum
    if counts.shape[0] != nb or q.shape[0] != nc or out.shape[0] != nc:
        raise ValueError("shape mismatch")
    if nb < 2:
        raise ValueError("fewer than two buckets")
    cum = <double*> malloc(nb * sizeof(double))
    if cum == NULL:
        raise MemoryError()
    try:
        with nogil:
            for c in range(nc):
                prev = counts[0, c]
                cum[0] = prev
                for i in range(1, nb):  # ignore tiny float deltas, force monotonicity
                    cur = counts[i, c]
                    if cur == prev:
                        cum[i] = cur
                        continue
                    diff = fabs(prev - cur)
                    abs_sum = fabs(prev) + fabs(cur)
                    if prev == 0 or cur == 0 or abs_sum < _MIN_NORMAL:
                        close = diff < 1e-12 * _MIN_NORMAL
                    else:
                        close = diff / (abs_sum if abs_sum < _MAX_FLOAT else _MAX_FLOAT) < 1e-12
                    if close or cur < prev:
                        cum[i] = prev
                    else:
                        cum[i] = cur
                        prev = cur
                obs = cum[nb - 1]
                qq = q[c]
                rank = qq * obs
                b = nb - 1
                for i in range(nb - 1):
                    if cum[i] >= rank:
                        b = i
                        break
                above = b - 1 if b > 0 else 0
                start = le[above] if b > 0 else 0.0
                end = le[b]
                if b > 0:
                    count = cum[b] - cum[above]
                    rank = rank - cum[above]
                else:
                    count = cum[b]
                res = start + (end - start) * (rank / count)
                if b == nb - 1:
                    res = le[nb - 2]
                if b == 0 and le[0] <= 0:
                    res = le[0]
                if obs == 0:
                    res = NAN
                if qq < 0:
                    res = -INFINITY
                if qq > 1:
                    res = INFINITY
                if isnan(qq):
                    res = NAN
                out[c] = res
    finally:
        free(cum)


def group_steps(
    const int64_t[::1] ginv,
    const unsigned char[:, ::1] ok,
    const double[:, ::1] v,
    double[:, ::1] cnt,
    int64_t[:, ::1] first,
    double[:, ::1] total,
    double[:, ::1] mag,
):
    """Row ``i`` (of ``ok``/``v``, series x steps) belongs to group ``ginv[i]``. Per (group,
    step): ``cnt`` the rows present, ``first`` the first present row (left as it is when none),
    and, when ``total``/``mag`` have rows, the sum of the present values and of their
    magnitudes, every row added in order from ``+0.0`` (an absent one adds ``+0.0``), as
    ``np.bincount(bins, weights=...)`` adds them. The outputs start zeroed (``first``: at a
    value above every row)."""
    cdef Py_ssize_t ns = ok.shape[0], nk = ok.shape[1], ng = cnt.shape[0], i, k
    cdef int64_t g
    cdef bint sums = total.shape[0] > 0
    cdef double w
    if v.shape[0] != ns or v.shape[1] != nk or ginv.shape[0] != ns:
        raise ValueError("shape mismatch")
    if cnt.shape[1] != nk or first.shape[0] != ng or first.shape[1] != nk:
        raise ValueError("shape mismatch")
    if sums and (total.shape[0] != ng or total.shape[1] != nk or mag.shape[0] != ng or mag.shape[1] != nk):
        raise ValueError("shape mismatch")
    for i in range(ns):
        if ginv[i] < 0 or ginv[i] >= ng:
            raise ValueError("a group out of range")
    with nogil:
        for i in range(ns):
            g = ginv[i]
            for k in range(nk):
                if ok[i, k]:
                    cnt[g, k] = cnt[g, k] + 1.0
                    if i < first[g, k]:
                        first[g, k] = i
                    w = v[i, k]
                else:
                    cnt[g, k] = cnt[g, k] + 0.0
                    w = 0.0
                if sums:
                    total[g, k] = total[g, k] + w
                    mag[g, k] = mag[g, k] + fabs(w)
