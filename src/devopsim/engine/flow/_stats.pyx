# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled statistics of the flow plane's composed samples (what ``tally`` and the plane learn).

``endpoint_stats`` (an endpoint's calls and started attempts) and ``call_stats`` (a class's
requests) give in one pass outcome counts, sums, the log-spaced latency histogram and the
Prometheus buckets; ``residual_ratio`` is ``queueing.min_residual_ratio`` on sorted
samples. The log bucket of a value comes from a table indexed by its exponent and top
mantissa bits, checked against the exact edges (no logarithm per value). References: the
NumPy expressions in ``tally`` and ``results.stats.lh_indices``, ``_queue.bucket_hist`` and
``queueing.min_residual_ratio`` (``tests/engine/test_sample_stats_kernel.py``).
"""

from libc.math cimport isfinite, rint
from libc.stdlib cimport calloc, malloc, free, qsort
from libc.string cimport memcpy, memset

import numpy as np

from devopsim.engine.request.layout import (
    ERR_BREAKER as _PY_ERR_BREAKER,
    ERR_REJECTED as _PY_ERR_REJECTED,
    LH_MIN as _PY_LH_MIN,
    LH_N as _PY_LH_N,
    LH_RATIO as _PY_LH_RATIO,
    N_ERR as _PY_N_ERR,
    PROM_BUCKETS as _PY_PROM_BUCKETS,
)

cdef enum:
    _OK = -1
    _CELL_BITS = 8  # mantissa bits that name a cell of the log-bucket table


# The log-spaced histogram's lower edges: bucket 0 holds values below LH_MIN, bucket k >= 1
# holds [EDGES[k], EDGES[k+1]) with EDGES[k] = LH_MIN r^(k-1) (results.stats._EDGES), the
# last one everything above.
EDGES = np.concatenate(([0.0], _PY_LH_MIN * _PY_LH_RATIO ** np.arange(_PY_LH_N - 1)))
cdef double[::1] _edges_v = EDGES
cdef const double* _EDGES = &_edges_v[0]
cdef Py_ssize_t _LHN = _PY_LH_N
cdef double _LH_MIN = _PY_LH_MIN
cdef double _LH_TOP = EDGES[_PY_LH_N - 1]  # the last bucket holds everything from here on
# A value's bucket from its bits: the exponent and the top 8 bits of the mantissa name a
# cell 0.4 % wide, narrower than a bucket (1 %), so the value lies in the bucket of the
# cell's lower end or in the next one. _CELL_BIN holds the first (by the exact edges).
_shift = 52 - _CELL_BITS
_cell0 = int(np.array([_PY_LH_MIN], dtype=np.float64).view(np.uint64)[0]) >> _shift
_cell1 = int(np.array([_LH_TOP], dtype=np.float64).view(np.uint64)[0]) >> _shift
cdef unsigned long long _CELL0 = _cell0
_cell_lo = (np.arange(_cell0, _cell1 + 1, dtype=np.uint64) << np.uint64(_shift)).view(np.float64)
_cell_bin_np = np.maximum(np.searchsorted(EDGES, _cell_lo, side="right") - 1, 1).astype(np.int16)
cdef short[::1] _cell_bin_v = _cell_bin_np
cdef const short* _CELL_BIN = &_cell_bin_v[0]


# Prometheus' buckets through the log bucket: the bounds below its lower edge, and the one
# bound inside it (+Inf: none); a bucket holding several bounds is searched.
PROM_BOUNDS = np.ascontiguousarray(_PY_PROM_BUCKETS, dtype=np.float64)
cdef double[::1] _pb_v = PROM_BOUNDS
cdef const double* _PB = &_pb_v[0]
cdef Py_ssize_t _NPB = PROM_BOUNDS.shape[0]
_lo = EDGES.copy()
_lo[0] = -np.inf
_hi = np.append(EDGES[1:], np.inf)
_inside = [np.nonzero((PROM_BOUNDS >= a) & (PROM_BOUNDS < b))[0] for a, b in zip(_lo, _hi)]
_pb_base_np = np.searchsorted(PROM_BOUNDS, _lo, side="left").astype(np.int64)
_pb_amb_np = np.array([PROM_BOUNDS[i[0]] if i.size == 1 else np.inf for i in _inside])
_pb_search_np = np.array([i.size > 1 for i in _inside], dtype=np.uint8)
_pb_flag_np = np.array([i.size > 0 for i in _inside], dtype=np.uint8)
if PROM_BOUNDS.shape[0] > 63:
    raise ImportError("_compose: at most 63 Prometheus bounds")
cdef long[::1] _pb_base_v = _pb_base_np
cdef double[::1] _pb_amb_v = _pb_amb_np
cdef unsigned char[::1] _pb_search_v = _pb_search_np
cdef unsigned char[::1] _pb_flag_v = _pb_flag_np
cdef const long* _PB_BASE = &_pb_base_v[0]
cdef const double* _PB_AMB = &_pb_amb_v[0]
cdef const unsigned char* _PB_SEARCH = &_pb_search_v[0]
cdef const unsigned char* _PB_FLAG = &_pb_flag_v[0]  # the log bucket holds a bound


cdef inline Py_ssize_t _lh(double x) noexcept nogil:
    """The log bucket of ``x``: its cell's bucket (a table read, no logarithm) or the next
    one, by the exact edge."""
    if not x >= _LH_MIN:
        return 0
    if not x < _LH_TOP:
        return _LHN - 1
    cdef unsigned long long bits
    memcpy(&bits, &x, sizeof(double))
    cdef Py_ssize_t b = _CELL_BIN[(bits >> (52 - _CELL_BITS)) - _CELL0]
    return b + (x >= _EDGES[b + 1])


cdef inline Py_ssize_t _pb(double x, Py_ssize_t b) noexcept nogil:
    """Prometheus' ``le`` bucket of ``x`` (in log bucket ``b``): the first bound >= x (the
    last: +Inf)."""
    cdef Py_ssize_t lo, hi, mid
    if not _PB_SEARCH[b]:
        return _PB_BASE[b] + (x > _PB_AMB[b])
    lo = 0
    hi = _NPB
    while lo < hi:
        mid = (lo + hi) >> 1
        if _PB[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def lh_bins(const double[::1] x, long[::1] out):
    """The log-spaced histogram bucket of every value (as ``results.stats.lh_indices``, but
    by the exact edges ``EDGES``)."""
    cdef Py_ssize_t i, n = x.shape[0]
    if out.shape[0] != n:
        raise ValueError("lh_bins: one bucket per value")
    with nogil:
        for i in range(n):
            out[i] = _lh(x[i])


def prom_bins(const double[::1] x, long[::1] out):
    """The Prometheus bucket of every value (as ``_queue.bucket_hist`` files them)."""
    cdef Py_ssize_t i, n = x.shape[0]
    if out.shape[0] != n:
        raise ValueError("prom_bins: one bucket per value")
    with nogil:
        for i in range(n):
            out[i] = _pb(x[i], _lh(x[i]))


cdef double[::1] _EMPTY = np.empty(0)


cdef class _Counts:
    """Integer counts per log bucket (and per Prometheus bucket for the few log buckets
    that hold a bound): adding 1 to an integer does not wait on the last addition to the
    same bucket as a float sum would, and most values fall in a few buckets."""

    cdef int* lh
    cdef long low
    cdef long pb[64]

    def __cinit__(self):
        self.lh = <int*>calloc(_LHN, sizeof(int))
        if self.lh == NULL:
            raise MemoryError()
        memset(self.pb, 0, sizeof(self.pb))
        self.low = 0

    def __dealloc__(self):
        free(self.lh)

    cdef inline void add(self, double d, bint do_pb) noexcept nogil:
        cdef Py_ssize_t b
        if not d >= _LH_MIN:  # (most waits are 0: counted apart, no chain through memory)
            self.low += 1
            if do_pb and _PB_FLAG[0]:
                self.pb[_pb(d, 0)] += 1
            return
        b = _lh(d)
        self.lh[b] += 1
        if do_pb and _PB_FLAG[b]:
            self.pb[_pb(d, b)] += 1

    cdef void span(self, long* lo, long* hi) noexcept nogil:
        """The log buckets ``[lo, hi)`` outside which no value was counted (after ``flush``)."""
        cdef Py_ssize_t b = 0, e = _LHN
        while b < e and self.lh[b] == 0:
            b += 1
        while e > b and self.lh[e - 1] == 0:
            e -= 1
        lo[0] = b
        hi[0] = e

    cdef void clear(self) noexcept nogil:
        memset(self.lh, 0, _LHN * sizeof(int))
        memset(self.pb, 0, sizeof(self.pb))
        self.low = 0

    cdef void flush(self, double[::1] hist, double w_hist, double[::1] pb, double w_pb) noexcept nogil:
        """Add the counts, weighted, into ``hist`` and ``pb`` (either empty: skipped)."""
        cdef Py_ssize_t b, j
        cdef int c
        cdef long lo, hi
        self.lh[0] += self.low
        self.low = 0
        self.span(&lo, &hi)  # (the buckets outside it hold no count: nothing to add there)
        for b in range(lo, hi):
            c = self.lh[b]
            if c:
                if hist.shape[0]:
                    hist[b] += c * w_hist
                if pb.shape[0] and not _PB_FLAG[b]:
                    pb[_PB_BASE[b]] += c * w_pb
        if pb.shape[0]:
            for j in range(_NPB + 1):
                if self.pb[j]:
                    pb[j] += self.pb[j] * w_pb


def call_stats(const double[::1] dur, const long[::1] outcome, double[::1] err, double[::1] hist, double w_hist,
               double[::1] pb, double w_pb, const double[::1] thr, double[::1] good):
    """One pass over the samples of a call (or of a class's request): ``err[o] += 1`` for
    each error ``o >= 0`` (``err`` long enough for every code), and for each ok sample
    (``-1``): ``w_hist`` into its log bucket of ``hist``, ``w_pb`` into its Prometheus
    bucket of ``pb`` (``PROM_BOUNDS``; either empty: skipped), and ``good[j] += 1`` when
    within ``thr[j]``. Returns (ok samples, their duration summed, mean and variance of
    all durations)."""
    cdef Py_ssize_t j, n = dur.shape[0], ne = err.shape[0], nt = thr.shape[0]
    cdef _Pass r
    if outcome.shape[0] != n:
        raise ValueError("call_stats: one outcome per duration")
    if hist.shape[0] and hist.shape[0] != _LHN:
        raise ValueError("call_stats: the histogram has LH_N buckets")
    if pb.shape[0] and pb.shape[0] != _NPB + 1:
        raise ValueError("call_stats: one Prometheus bucket per bound and +Inf")
    if good.shape[0] != nt or nt > 8 or ne > 8:
        raise ValueError("call_stats: one count per threshold (8 at most), 8 error codes at most")
    cdef _Counts cnt = _Counts()
    r = _call_pass(&dur[0] if n else NULL, &outcome[0] if n else NULL, n, ne, &thr[0] if nt else NULL, nt, cnt,
                   hist.shape[0] > 0, pb.shape[0] > 0, True)
    with nogil:
        cnt.flush(hist, w_hist, pb, w_pb)
        for j in range(ne):
            err[j] += r.n_err[j]
        for j in range(nt):
            good[j] += r.n_good[j]
    return <double>r.n_ok, r.ok_sum, r.mean, r.var


cdef struct _Pass:
    long n_ok
    long n_err[8]
    long n_good[8]
    double ok_sum
    double mean
    double var


cdef _Pass _call_pass(const double* dur, const long* outcome, Py_ssize_t n, Py_ssize_t ne, const double* thr,
                      Py_ssize_t nt, _Counts cnt, bint do_hist, bint do_pb, bint do_var) noexcept:
    """``call_stats``' pass: error counts (codes below ``ne``), ok samples into ``cnt``, their
    count, sum and how many are within each threshold; the mean (and variance) of all."""
    cdef Py_ssize_t i, j
    cdef long o, n_ok = 0
    cdef double d, tot = 0.0, ss = 0.0, ok_sum = 0.0
    cdef _Pass r
    memset(&r, 0, sizeof(r))
    with nogil:
        for i in range(n):
            d = dur[i]
            tot += d
            o = outcome[i]
            if o != _OK:
                if o >= 0 and o < ne:
                    r.n_err[o] += 1
                continue
            n_ok += 1
            ok_sum += d
            if do_hist or do_pb:
                cnt.add(d, do_pb)
            for j in range(nt):
                r.n_good[j] += d <= thr[j]
        r.n_ok = n_ok
        r.ok_sum = ok_sum
        if n:
            r.mean = tot / n
            if do_var:
                for i in range(n):
                    d = dur[i] - r.mean
                    ss += d * d
                r.var = ss / n
    return r


# The error kinds a class reports: an open breaker counts as a rejection (tally._fold_errors).
cdef Py_ssize_t _N_ERR = _PY_N_ERR
cdef Py_ssize_t _ERR_REJ = _PY_ERR_REJECTED
cdef Py_ssize_t _ERR_BRK = _PY_ERR_BREAKER


def class_units(list durs, list outcomes, const double[:, ::1] thr, double[::1] cls_ok, double[:, ::1] cls_err,
                double[::1] cls_lsum, double[:, ::1] cls_hist, double[::1] cls_asum, double[:, ::1] cls_pb,
                double[:, ::1] slo, long[:, ::1] span=None, list known=None):
    """Each class's statistics per request from its journey's samples (``durs[c]``,
    ``outcomes[c]``), written (not added) into row ``c`` of each output: what
    ``tally.unit_stats``' former loop of ``call_stats`` gave (its reference), without the
    variance. ``thr[c]``: the SLO thresholds that apply to class ``c`` (NaN: another class's).
    ``span[c]`` (when given): the buckets ``[lo, hi)`` outside which row ``c`` of ``cls_hist``
    is 0 (``_tally.ClassCounters`` adds only those).

    ``known[c]`` (when given and not None): the class's journey is its entry endpoint's
    samples, whose statistics (``tally.sample_stats``) give the row: ``(ok, lsum, mean, err,
    hist, spans, call_pb)`` (``err`` the folded error shares, ``hist`` None when no call was
    ok, ``spans[0]`` its span, ``call_pb`` filed as this pass files): those numbers are the
    ones the pass would give (the same counts, sums and weights), so only the SLO shares are
    counted. ``span`` is required then."""
    cdef Py_ssize_t c, j, k, C = len(durs), nq = thr.shape[1]
    cdef const double[::1] dur
    cdef const long[::1] outcome
    cdef _Pass r
    cdef _Counts cnt = _Counts()
    cdef double w
    if (len(outcomes) != C or thr.shape[0] != C or cls_ok.shape[0] != C or cls_err.shape[0] != C
            or cls_lsum.shape[0] != C or cls_hist.shape[0] != C or cls_asum.shape[0] != C or cls_pb.shape[0] != C
            or slo.shape[0] != C):
        raise ValueError("class_units: one row per class in every array")
    if (cls_err.shape[1] != _N_ERR or cls_hist.shape[1] != _LHN or cls_pb.shape[1] != _NPB + 1
            or slo.shape[1] != nq or nq > 8):
        raise ValueError("class_units: the rows have the layout's widths (8 thresholds at most)")
    cdef bint has_span = span is not None
    if has_span and (span.shape[0] != C or span.shape[1] != 2):
        raise ValueError("class_units: one bucket span per class")
    cdef bint has_known = known is not None
    if has_known and (len(known) != C or not has_span):
        raise ValueError("class_units: one entry (or None) per class, and the spans")
    for c in range(C):
        if has_known and known[c] is not None:
            _class_known(c, known[c], durs[c], outcomes[c], thr, cls_ok, cls_err, cls_lsum, cls_hist, cls_asum,
                         cls_pb, slo, span)
            continue
        dur = durs[c]
        outcome = outcomes[c]
        k = dur.shape[0]
        if outcome.shape[0] != k or k == 0:
            raise ValueError("class_units: one outcome per duration, at least one sample")
        r = _call_pass(&dur[0], &outcome[0], k, _N_ERR + 1, &thr[c, 0] if nq else NULL, nq, cnt, True, True, False)
        w = 1.0 / k
        with nogil:
            memset(&cls_hist[c, 0], 0, _LHN * sizeof(double))
            memset(&cls_pb[c, 0], 0, (_NPB + 1) * sizeof(double))
            cnt.flush(cls_hist[c], w, cls_pb[c], w)
            if has_span:
                cnt.span(&span[c, 0], &span[c, 1])
            cnt.clear()
            cls_ok[c] = <double>r.n_ok / <double>k
            for j in range(_N_ERR):
                cls_err[c, j] = <double>r.n_err[j] / <double>k
            cls_err[c, _ERR_REJ] = (<double>r.n_err[_ERR_REJ] + <double>r.n_err[_ERR_BRK]) / <double>k
            cls_asum[c] = r.mean
            cls_lsum[c] = r.ok_sum / <double>k
            for j in range(nq):
                slo[c, j] = <double>r.n_good[j] / <double>k


cdef int _class_known(Py_ssize_t c, tuple k, const double[::1] dur, const long[::1] outcome,
                      const double[:, ::1] thr, double[::1] cls_ok, double[:, ::1] cls_err, double[::1] cls_lsum,
                      double[:, ::1] cls_hist, double[::1] cls_asum, double[:, ::1] cls_pb, double[:, ::1] slo,
                      long[:, ::1] span) except -1:
    """``class_units``' row ``c`` from its entry endpoint's statistics ``k`` (see there)."""
    cdef const double[::1] err = k[3]
    cdef const long[:, ::1] spans = k[5]
    cdef const double[::1] call_pb = k[6]
    cdef const double[::1] hist
    cdef Py_ssize_t i, j, n = dur.shape[0], nq = thr.shape[1], lo, hi, a, b
    cdef long good[8]
    cdef bint has_hist = k[4] is not None
    if (err.shape[0] != _N_ERR or spans.shape[0] != 3 or spans.shape[1] != 2 or call_pb.shape[0] != _NPB + 1
            or outcome.shape[0] != n or n == 0):
        raise ValueError("class_units: an entry's statistics of another layout")
    if has_hist:
        hist = k[4]
        if hist.shape[0] != _LHN:
            raise ValueError("class_units: an entry's histogram of another width")
    cls_ok[c] = k[0]
    cls_lsum[c] = k[1]
    cls_asum[c] = k[2]
    for j in range(_N_ERR):
        cls_err[c, j] = err[j]
    for j in range(_NPB + 1):
        cls_pb[c, j] = call_pb[j]
    # The histogram row: its old span cleared where the new one does not reach, the new one
    # copied (+0.0 outside it, as the pass leaves it).
    lo = spans[0, 0] if has_hist else 0
    hi = spans[0, 1] if has_hist else 0
    lo = 0 if lo < 0 else (_LHN if lo > _LHN else lo)
    hi = lo if hi < lo else (_LHN if hi > _LHN else hi)
    a = span[c, 0] if span[c, 0] > 0 else 0
    b = span[c, 1] if span[c, 1] < _LHN else _LHN
    memset(good, 0, sizeof(good))
    with nogil:
        for j in range(a, b):
            if j < lo or j >= hi:
                cls_hist[c, j] = 0.0
        for j in range(lo, hi):
            cls_hist[c, j] = hist[j]
        span[c, 0] = lo
        span[c, 1] = hi
        for i in range(n):
            if outcome[i] == _OK:
                for j in range(nq):
                    good[j] += dur[i] <= thr[c, j]
        for j in range(nq):
            slo[c, j] = <double>good[j] / <double>n
    return 0


def endpoint_stats(const double[::1] dur, const long[::1] outcome, const double[::1] server,
                   const unsigned char[::1] server_ok, const double[::1] wait, double[::1] err,
                   double[::1] hist, double[::1] sv_hist, double[::1] sv_pb, double[::1] whist,
                   long[:, ::1] spans=None, double[::1] call_pb=None):
    """What an endpoint's samples give, in one pass over the calls and one over the started
    attempts: ``err[o]`` counts each error ``o >= 0``; the ok calls' log histogram per call
    (``hist``), the ok answers' log histogram per started attempt (``sv_hist``) and their
    Prometheus buckets as shares (``sv_pb``), the waits' log histogram as shares
    (``whist``); all added to. Returns (ok calls, their duration summed, mean and variance
    of all durations, ok answers, their server time summed, finite waits, their sum).
    ``spans`` (optional, 3 x 2): the buckets ``[lo, hi)`` outside which nothing was added
    to ``hist``, ``sv_hist``, ``whist`` (empty: ``lo == hi``). ``call_pb`` (optional): the ok
    calls' Prometheus buckets per call, as ``call_stats`` files a class's requests (a class
    whose journey is this endpoint's samples takes its statistics from here)."""
    cdef bint do_cpb = call_pb is not None
    if do_cpb and call_pb.shape[0] != _NPB + 1:
        raise ValueError("endpoint_stats: one Prometheus bucket per bound and +Inf")
    cdef Py_ssize_t i, n = dur.shape[0], ns = server.shape[0], ne = err.shape[0]
    cdef long o
    cdef long n_ok = 0, n_sok = 0, n_w = 0
    cdef long n_err[8]
    cdef double d, e, ok_sum = 0.0, tot = 0.0, mean = 0.0, ss = 0.0, s_sum = 0.0, w_sum = 0.0
    if outcome.shape[0] != n or server_ok.shape[0] != ns or wait.shape[0] != ns:
        raise ValueError("endpoint_stats: one outcome per call, one flag and wait per attempt")
    if hist.shape[0] != _LHN or sv_hist.shape[0] != _LHN or whist.shape[0] != _LHN:
        raise ValueError("endpoint_stats: the histograms have LH_N buckets")
    if sv_pb.shape[0] != _NPB + 1 or ne > 8:
        raise ValueError("endpoint_stats: one Prometheus bucket per bound and +Inf, 8 error codes at most")
    cdef _Counts c_ok = _Counts()
    cdef _Counts c_sv = _Counts()
    cdef _Counts c_w = _Counts()
    memset(n_err, 0, sizeof(n_err))
    with nogil:
        for i in range(n):
            d = dur[i]
            tot += d
            o = outcome[i]
            if o != _OK:
                if o >= 0 and o < ne:
                    n_err[o] += 1
                continue
            n_ok += 1
            ok_sum += d
            c_ok.add(d, do_cpb)
        # The attempts' pass also sums the calls' squared deviations (independent chains of
        # additions side by side; each in the order of its samples).
        if n:
            mean = tot / n
        for i in range(ns if ns > n else n):
            if i < n:
                e = dur[i] - mean
                ss += e * e
            if i < ns:
                d = wait[i]
                if isfinite(d):
                    n_w += 1
                    w_sum += d
                    c_w.add(d, False)
                d = server[i]
                if server_ok[i] and isfinite(d):
                    n_sok += 1
                    s_sum += d
                    c_sv.add(d, True)
        if n:
            c_ok.flush(hist, 1.0 / n, call_pb if do_cpb else _EMPTY, 1.0 / n)
        if n_sok:
            c_sv.flush(sv_hist, 1.0 / ns, sv_pb, 1.0 / n_sok)
        if n_w:
            c_w.flush(whist, 1.0 / n_w, _EMPTY, 0.0)
        for i in range(ne):
            err[i] += n_err[i]
    if spans is not None:
        if spans.shape[0] != 3 or spans.shape[1] != 2:
            raise ValueError("endpoint_stats: a span per histogram")
        c_ok.span(&spans[0, 0], &spans[0, 1])
        c_sv.span(&spans[1, 0], &spans[1, 1])
        c_w.span(&spans[2, 0], &spans[2, 1])
    return (<double>n_ok, ok_sum, mean, ss / n if n else 0.0, <double>n_sok, s_sum, <double>n_w, w_sum)


cdef inline double _ipow(double b, long c) noexcept nogil:
    """``b ** c`` for an integer ``c >= 0`` by squaring."""
    cdef double r = 1.0
    while c > 0:
        if c & 1:
            r *= b
        b *= b
        c >>= 1
    return r


def residual_ratio(const double[::1] x, long c):
    """``queueing.min_residual_ratio`` of ascending ``x`` (its non-finite and negative values
    left out): ``E[min of c equilibrium residuals of S] / (E[S]/c)``, exactly for the
    empirical distribution (``E[(S - t)+]`` is linear between samples; its ``c``-th power
    is integrated by the trapezoid rule, as the reference does)."""
    cdef Py_ssize_t i, i0 = 0, n_all = x.shape[0], n
    cdef double out
    if c < 1:
        raise ValueError("residual_ratio: at least one worker")
    for i in range(1, n_all):
        if x[i] < x[i - 1]:
            raise ValueError("residual_ratio: the samples must be sorted")
    while i0 < n_all and not x[i0] >= 0.0:
        i0 += 1
    n = i0
    while n < n_all and isfinite(x[n]):
        n += 1
    n -= i0
    if n < 2:
        return 1.0
    with nogil:
        out = _resid(&x[i0], n, c)
    return out


cdef double _resid(const double* v, Py_ssize_t n, long c) noexcept nogil:
    """``residual_ratio`` of ``n >= 2`` ascending, finite, non-negative values."""
    cdef Py_ssize_t i, f = 0
    cdef double tot = 0.0, m, fe, fe_prev, t_prev, emin = 0.0, ex = 0.0, ex_t, p_prev, p_cur
    cdef double out = 1.0, inv_n = 1.0 / n, inv_m, before = 0.0
    for i in range(n):
        tot += v[i]
    m = tot * inv_n
    if m > 0.0:
        inv_m = 1.0 / m
        # E[(S - t)+] = (sum of the samples from the first >= t on - t (their count)) / n,
        # at t = 0, then at each sample (the first of equal ones gives it).
        fe_prev = tot * inv_n * inv_m
        fe_prev = 0.0 if fe_prev < 0.0 else (1.0 if fe_prev > 1.0 else fe_prev)
        p_prev = _ipow(fe_prev, c)
        t_prev = 0.0
        for i in range(n):
            if i == 0 or v[i] != v[i - 1]:
                f = i
                ex = tot - before  # the samples from the f-th on
            ex_t = (ex - v[i] * (n - f)) * inv_n
            fe = ex_t * inv_m
            fe = 0.0 if fe < 0.0 else (1.0 if fe > 1.0 else fe)
            p_cur = _ipow(fe, c)
            emin += 0.5 * (p_prev + p_cur) * (v[i] - t_prev)
            if p_cur == 0.0:
                break  # E[(S - t)+] only falls from here on: every later term is 0
            p_prev = p_cur
            t_prev = v[i]
            before += v[i]
        out = emin / (m / c)
    return out


cdef inline unsigned long long _bits(double x) noexcept nogil:
    cdef unsigned long long b
    memcpy(&b, &x, sizeof(double))
    return b


cdef int _cmp_double(const void* a, const void* b) noexcept nogil:
    cdef double x = (<const double*>a)[0], y = (<const double*>b)[0]
    return (x > y) - (x < y)


cdef int _sort_nonneg(double* a, Py_ssize_t n) noexcept nogil:
    """Sort ``n`` finite values ``>= +0.0`` (no ``-0.0``) ascending, in place: a bucket sort
    on their bits (which order such doubles as integers), a range of keys per bucket chosen
    so that there are about as many buckets as values, then each bucket by insertion
    (``qsort`` for a crowded one). The result is the one sorted order of the values (equal
    values have equal bits). Returns -1 when out of memory."""
    cdef Py_ssize_t i, j, b, lo, hi, nb
    cdef unsigned long long k, kmin, kmax, base
    cdef int s = 0
    cdef double v
    cdef double* tmp
    cdef Py_ssize_t* pos
    if n < 2:
        return 0
    kmin = kmax = _bits(a[0])
    for i in range(1, n):
        k = _bits(a[i])
        if k < kmin:
            kmin = k
        if k > kmax:
            kmax = k
    if kmin == kmax:
        return 0
    while ((kmax - kmin) >> s) >= <unsigned long long>(n if n > 16 else 16):
        s += 1
    base = kmin >> s
    nb = <Py_ssize_t>((kmax >> s) - base) + 1
    tmp = <double*>malloc(n * sizeof(double))
    pos = <Py_ssize_t*>calloc(nb + 1, sizeof(Py_ssize_t))
    if tmp == NULL or pos == NULL:
        free(tmp)
        free(pos)
        return -1
    for i in range(n):
        pos[<Py_ssize_t>((_bits(a[i]) >> s) - base) + 1] += 1
    for b in range(nb):
        pos[b + 1] += pos[b]
    for i in range(n):  # pos[b]: where bucket b's next value goes
        b = <Py_ssize_t>((_bits(a[i]) >> s) - base)
        tmp[pos[b]] = a[i]
        pos[b] += 1
    # Now pos[b] is where bucket b ends (and b + 1 begins).
    lo = 0
    for b in range(nb):
        hi = pos[b]
        if hi - lo > 48:
            qsort(&tmp[lo], hi - lo, sizeof(double), _cmp_double)
        else:
            for i in range(lo + 1, hi):
                v = tmp[i]
                j = i
                while j > lo and tmp[j - 1] > v:
                    tmp[j] = tmp[j - 1]
                    j -= 1
                tmp[j] = v
        lo = hi
    memcpy(a, tmp, n * sizeof(double))
    free(tmp)
    free(pos)
    return 0


def service_resid(list parts, const double[::1] share, long c):
    """``residual_ratio`` of a service's holding times (``tally.service_resid``, whose NumPy
    expressions are the reference): from each part (an endpoint's ``CallSamples.service``),
    its first ``max(1, round(share · min(finite, 4000)))`` finite values; all of them sorted,
    ``c`` workers. None when no part has a finite value."""
    cdef Py_ssize_t p, i, nf, m, got, n = 0, cap = 0
    cdef const double[::1] x
    cdef double d
    cdef double* buf
    cdef bint any_taken = False
    cdef int rc
    cdef double out = 1.0
    if c < 1:
        raise ValueError("service_resid: at least one worker")
    if share.shape[0] != len(parts):
        raise ValueError("service_resid: one share per part")
    for p in range(len(parts)):
        x = parts[p]
        cap += x.shape[0]
    buf = <double*>malloc((cap if cap > 0 else 1) * sizeof(double))
    if buf == NULL:
        raise MemoryError()
    try:
        for p in range(len(parts)):
            x = parts[p]
            nf = 0
            for i in range(x.shape[0]):
                if isfinite(x[i]):
                    nf += 1
                    if nf == 4000:
                        break
            if nf == 0:
                continue
            any_taken = True
            m = <Py_ssize_t>rint(share[p] * <double>nf)
            if m < 1:
                m = 1
            got = 0
            for i in range(x.shape[0]):
                if got == m:
                    break
                d = x[i]
                if isfinite(d):
                    got += 1
                    if d >= 0.0:  # (residual_ratio leaves negative values out)
                        buf[n] = d if d != 0.0 else 0.0  # -0.0 sorts and counts as 0.0
                        n += 1
        if not any_taken:
            return None
        with nogil:
            rc = _sort_nonneg(buf, n)
            if rc == 0 and n >= 2:
                out = _resid(buf, n, c)
        if rc != 0:
            raise MemoryError()
        return out
    finally:
        free(buf)


def sort_nonneg(double[::1] x):
    """Sort finite values ``>= +0.0`` ascending in place, as ``service_resid`` does (a test
    hook: the reference is ``np.sort``)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int rc
    for i in range(n):
        if not (isfinite(x[i]) and (x[i] > 0.0 or _bits(x[i]) == 0)):
            raise ValueError("sort_nonneg: finite values >= +0.0 only")
    with nogil:
        rc = _sort_nonneg(&x[0] if n else NULL, n)
    if rc != 0:
        raise MemoryError()
