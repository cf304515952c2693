# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The flow plane's bookkeeping kernels: the counters a tick adds to, a window's class
counters and pending histograms, and a window's queue state and steadiness judgement.

Each replaces NumPy expressions kept in the tests as their reference
(``tests/engine/test_replica_kernels.py``).
"""

from libc.math cimport fabs, isfinite, signbit, INFINITY
from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset


def add_scaled(tuple dsts, tuple srcs, double f):
    """``dsts[i] += srcs[i] * f`` for 1-D float64 arrays of equal length (the tick's counters)."""
    cdef double[::1] d
    cdef double[::1] s
    cdef Py_ssize_t i, j, n
    if len(dsts) != len(srcs):
        raise ValueError("add_scaled: as many sources as destinations")
    for i in range(len(dsts)):
        d = dsts[i]
        s = srcs[i]
        n = d.shape[0]
        if s.shape[0] != n:
            raise ValueError(f"add_scaled: lengths differ ({n} and {s.shape[0]})")
        for j in range(n):
            d[j] += s[j] * f


def add_pairs(double[:, :, ::1] cnt, double[:, ::1] lat_sum, double[:, :, ::1] lat_hist,
              long[::1] pr, long[::1] loc, double[:, ::1] codes, double[::1] lsum, double[:, ::1] hist,
              double f):
    """Per (replica, endpoint) pair ``p``: ``cnt[pr, loc] += codes[p] * f``, and the same for
    the latency sum and histogram (the pairs are distinct)."""
    cdef Py_ssize_t p, j, r, e, npairs = pr.shape[0]
    cdef Py_ssize_t nc = cnt.shape[2], nh = lat_hist.shape[2]
    if codes.shape[0] != npairs or lsum.shape[0] != npairs or hist.shape[0] != npairs:
        raise ValueError("add_pairs: one row of increments per pair")
    if codes.shape[1] != nc or hist.shape[1] != nh:
        raise ValueError("add_pairs: increments and counters differ in width")
    for p in range(npairs):
        r = pr[p]
        e = loc[p]
        if r < 0 or r >= cnt.shape[0] or e < 0 or e >= cnt.shape[1]:
            raise IndexError(f"add_pairs: pair ({r}, {e}) outside the counters")
        for j in range(nc):
            cnt[r, e, j] += codes[p, j] * f
        lat_sum[r, e] += lsum[p] * f
        for j in range(nh):
            lat_hist[r, e, j] += hist[p, j] * f


cdef inline void _axpy(double[::1] d, double[::1] s, double f) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(d.shape[0]):
        d[j] += s[j] * f


cdef class Accrual:
    """What a tick adds to the counters per second of it, bound to those counters once
    (``FlowPlane._account`` replays a tick for every piece of a quiet stretch): ``add`` does
    what ``add_scaled`` / ``add_pairs`` did, in the same order, without taking every array
    again. Its arguments, in order: the replicas' ``busy``, ``qlen`` (set to the tick's busy
    workers and queue), ``busy_area``, ``occ_area``, ``cpu_area`` and what one second adds to
    them; the per-pair counters and increments (``add_pairs``'; ``pr`` empty: none); the
    counters counted after warm-up (``sv_n``, ``sv_err``, ``sv_wn``, ``sv_wsum``, frames started,
    class requests, logical calls) and their increments but the class rates; the counters of
    all traffic (class arrivals, class requests, attempts) and the attempts' increments."""

    cdef double[::1] busy, qlen, busy_src, queue_src
    cdef double[::1] busy_area, occ_area, cpu_area, occ_src, cpu_src
    cdef double[:, :, ::1] cnt, lat_hist
    cdef double[:, ::1] lat_sum, codes, hist
    cdef long[::1] pr, loc
    cdef double[::1] lsum
    cdef double[::1] sv_n, sv_err, sv_wn, sv_wsum, started, w_cls, w_calls
    cdef double[::1] i_sv_n, i_sv_err, i_sv_srv, i_sv_wsum, i_calls
    cdef double[::1] cls_arr, w_cls_all, w_att, i_att

    def __init__(self, double[::1] busy, double[::1] qlen, double[::1] busy_src, double[::1] queue_src,
                 double[::1] busy_area, double[::1] occ_area, double[::1] cpu_area,
                 double[::1] occ_src, double[::1] cpu_src,
                 double[:, :, ::1] cnt, double[:, ::1] lat_sum, double[:, :, ::1] lat_hist,
                 long[::1] pr, long[::1] loc, double[:, ::1] codes, double[::1] lsum, double[:, ::1] hist,
                 double[::1] sv_n, double[::1] sv_err, double[::1] sv_wn, double[::1] sv_wsum,
                 double[::1] started, double[::1] w_cls, double[::1] w_calls,
                 double[::1] i_sv_n, double[::1] i_sv_err, double[::1] i_sv_srv, double[::1] i_sv_wsum,
                 double[::1] i_calls,
                 double[::1] cls_arr, double[::1] w_cls_all, double[::1] w_att, double[::1] i_att):
        cdef Py_ssize_t p, npairs = pr.shape[0], R = busy.shape[0]
        if not (qlen.shape[0] == busy_src.shape[0] == queue_src.shape[0] == busy_area.shape[0]
                == occ_area.shape[0] == cpu_area.shape[0] == occ_src.shape[0] == cpu_src.shape[0] == R):
            raise ValueError("Accrual: one value per replica in every replica array")
        if codes.shape[0] != npairs or lsum.shape[0] != npairs or hist.shape[0] != npairs or loc.shape[0] != npairs:
            raise ValueError("add_pairs: one row of increments per pair")
        if codes.shape[1] != cnt.shape[2] or hist.shape[1] != lat_hist.shape[2]:
            raise ValueError("add_pairs: increments and counters differ in width")
        for p in range(npairs):
            if pr[p] < 0 or pr[p] >= cnt.shape[0] or loc[p] < 0 or loc[p] >= cnt.shape[1]:
                raise IndexError(f"add_pairs: pair ({pr[p]}, {loc[p]}) outside the counters")
        if not (sv_n.shape[0] == sv_err.shape[0] == sv_wn.shape[0] == sv_wsum.shape[0] == started.shape[0]
                == i_sv_n.shape[0] == i_sv_err.shape[0] == i_sv_srv.shape[0] == i_sv_wsum.shape[0]):
            raise ValueError("Accrual: one value per service in every service array")
        if not (w_calls.shape[0] == i_calls.shape[0] == w_att.shape[0] == i_att.shape[0]):
            raise ValueError("Accrual: one value per endpoint in every endpoint array")
        if not (w_cls.shape[0] == cls_arr.shape[0] == w_cls_all.shape[0]):
            raise ValueError("Accrual: one value per class in every class array")
        self.busy, self.qlen, self.busy_src, self.queue_src = busy, qlen, busy_src, queue_src
        self.busy_area, self.occ_area, self.cpu_area = busy_area, occ_area, cpu_area
        self.occ_src, self.cpu_src = occ_src, cpu_src
        self.cnt, self.lat_sum, self.lat_hist = cnt, lat_sum, lat_hist
        self.pr, self.loc, self.codes, self.lsum, self.hist = pr, loc, codes, lsum, hist
        self.sv_n, self.sv_err, self.sv_wn, self.sv_wsum = sv_n, sv_err, sv_wn, sv_wsum
        self.started, self.w_cls, self.w_calls = started, w_cls, w_calls
        self.i_sv_n, self.i_sv_err, self.i_sv_srv, self.i_sv_wsum = i_sv_n, i_sv_err, i_sv_srv, i_sv_wsum
        self.i_calls = i_calls
        self.cls_arr, self.w_cls_all, self.w_att, self.i_att = cls_arr, w_cls_all, w_att, i_att

    def add(self, double dt, bint warm, double wd, double[::1] lam_cls):
        """``dt`` seconds at the tick's rates, ``wd`` of them after warm-up (when ``warm``),
        ``lam_cls`` the classes' rates over them."""
        cdef Py_ssize_t p, j, r, e, nc = self.cnt.shape[2], nh = self.lat_hist.shape[2]
        if lam_cls.shape[0] != self.w_cls.shape[0]:
            raise ValueError("Accrual.add: one rate per class")
        with nogil:
            for j in range(self.busy.shape[0]):
                self.busy[j] = self.busy_src[j]
                self.qlen[j] = self.queue_src[j]
            _axpy(self.busy_area, self.busy_src, dt)
            _axpy(self.occ_area, self.occ_src, dt)
            _axpy(self.cpu_area, self.cpu_src, dt)
            for p in range(self.pr.shape[0]):
                r = self.pr[p]
                e = self.loc[p]
                for j in range(nc):
                    self.cnt[r, e, j] += self.codes[p, j] * dt
                self.lat_sum[r, e] += self.lsum[p] * dt
                for j in range(nh):
                    self.lat_hist[r, e, j] += self.hist[p, j] * dt
            if warm:
                _axpy(self.sv_n, self.i_sv_n, wd)
                _axpy(self.sv_err, self.i_sv_err, wd)
                _axpy(self.sv_wn, self.i_sv_srv, wd)
                _axpy(self.sv_wsum, self.i_sv_wsum, wd)
                _axpy(self.started, self.i_sv_srv, wd)
                _axpy(self.w_cls, lam_cls, wd)
                _axpy(self.w_calls, self.i_calls, wd)
            _axpy(self.cls_arr, lam_cls, dt)
            _axpy(self.w_cls_all, lam_cls, dt)
            _axpy(self.w_att, self.i_att, dt)


def add_rows(double[:, ::1] dst, double[::1] v, double[:, :] src):
    """``dst[i] += v[i] * src[i]`` row by row, skipping rows whose ``v[i]`` is 0 (a window's
    volumes times the per-unit histograms: most rows of a histogram are far from any value)."""
    cdef Py_ssize_t i, j, n = dst.shape[0], m = dst.shape[1]
    cdef double f
    if v.shape[0] != n or src.shape[0] != n or src.shape[1] != m:
        raise ValueError("add_rows: dst, v and src must agree in shape")
    with nogil:
        for i in range(n):
            f = v[i]
            if f == 0.0:
                continue
            for j in range(m):
                dst[i, j] += f * src[i, j]


def apply_classes(double[:, ::1] cls_tot, double[:, ::1] cls_pb, double[::1] cls_psum, double[::1] cls_n,
                  double[::1] cls_ok, double[:, ::1] cls_err, double[::1] cls_asum, double[::1] cls_lsum,
                  double[:, ::1] cls_hist, double[::1] slo_good,
                  double[:] u_ok, double[:, :] u_err, double[:, :] u_pb, double[:] u_lsum, double[:] u_asum,
                  double[:, :] u_hist, double[:, :] u_slo, double[::1] v_all, double[::1] v):
    """A window's class volumes times the per-unit statistics, into the run's class counters
    (the flow plane's ``tally.apply_unit_stats``): ``v_all`` counts every request of the
    window, ``v`` those after warm-up. Returns ``(v · asum, v_all · asum)``: the window's
    time in system after warm-up and in all. (``ClassCounters`` binds the arrays once; here
    every histogram bucket is added, whatever ``u_hist`` holds.)"""
    cdef ClassCounters cc = ClassCounters(cls_tot, cls_pb, cls_psum, cls_n, cls_ok, cls_err, cls_asum, cls_lsum,
                                          cls_hist, slo_good, u_ok, u_err, u_pb, u_lsum, u_asum, u_hist, u_slo)
    return cc.apply(v_all, v)


cdef int _buf(object x, Py_buffer* v, char fmt, int ndim, bint writable) except -1:
    """``x``'s data as a buffer of ``ndim`` dimensions (C-contiguous; ``-ndim``: any strides)
    of items of the struct format ``fmt`` (``'d'`` float64, ``'l'`` int64, ``'B'`` uint8: bool
    arrays are viewed as uint8 by the caller) into ``v``, to be released with
    ``PyBuffer_Release``."""
    cdef int flags = PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0)
    cdef Py_ssize_t size = 8 if fmt == c'd' or fmt == c'l' else 1
    flags |= PyBUF_C_CONTIGUOUS if ndim > 0 else PyBUF_STRIDES
    PyObject_GetBuffer(x, v, flags)
    if (v.ndim != (ndim if ndim > 0 else -ndim) or v.itemsize != size or v.format == NULL
            or not (v.format[0] == fmt or (fmt == c'l' and v.format[0] == c'q')) or v.format[1] != 0):
        PyBuffer_Release(v)
        raise ValueError(f"expected a {abs(ndim)}-d array of {chr(fmt)}")
    return 0


cdef int _f64(object x, Py_buffer* v, Py_ssize_t n, bint writable) except -1:
    """``x``'s data as a C-contiguous 1-D float64 buffer of ``n`` values (any length when
    ``n < 0``) into ``v``, to be released with ``PyBuffer_Release``: a typed memoryview's
    checks at a fraction of its cost (a window's few small arrays)."""
    PyObject_GetBuffer(x, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0))
    if (v.ndim != 1 or v.itemsize != 8 or v.format == NULL or v.format[0] != c'd' or v.format[1] != 0
            or (n >= 0 and v.shape[0] != n)):
        PyBuffer_Release(v)
        raise ValueError(f"expected a contiguous float64 array of {n} values" if n >= 0
                         else "expected a contiguous float64 array")
    return 0


cdef inline void _add_scaled_row(double* dst, const double* src, double w, Py_ssize_t lo,
                                 Py_ssize_t hi) noexcept nogil:
    """``dst[j] += w * src[j]`` for ``lo <= j < hi`` (contiguous rows: the loop vectorises)."""
    cdef Py_ssize_t j
    for j in range(lo, hi):
        dst[j] += w * src[j]


cdef class ClassCounters:
    """The run's class counters and one composition's per-unit statistics, bound once (a
    window then passes only its volumes): ``apply_classes``' arithmetic, and the pending
    endpoint and service volumes added in the same call (``tally.apply_unit_stats``)."""

    cdef double[:, ::1] cls_tot, cls_pb, cls_err, cls_hist
    cdef double[::1] cls_psum, cls_n, cls_ok, cls_asum, cls_lsum, slo_good
    cdef double[:] u_ok, u_lsum, u_asum
    cdef double[:, :] u_err, u_pb, u_hist, u_slo
    cdef const long[:, ::1] span
    cdef bint whole, rows  # every bucket (no span); u_hist's rows contiguous
    cdef Py_ssize_t C
    cdef public object u  # what the caller bound (its per-unit statistics)
    cdef public object st  # and its counters

    def __init__(self, double[:, ::1] cls_tot, double[:, ::1] cls_pb, double[::1] cls_psum, double[::1] cls_n,
                 double[::1] cls_ok, double[:, ::1] cls_err, double[::1] cls_asum, double[::1] cls_lsum,
                 double[:, ::1] cls_hist, double[::1] slo_good,
                 double[:] u_ok, double[:, :] u_err, double[:, :] u_pb, double[:] u_lsum, double[:] u_asum,
                 double[:, :] u_hist, double[:, :] u_slo, object span=None):
        """``span``: per class, the buckets ``[lo, hi)`` outside which its ``u_hist`` row is 0
        (read at every window: whoever rewrites the row rewrites its span, as
        ``_stats.class_units`` does); None: every bucket."""
        cdef Py_ssize_t C = cls_tot.shape[0]
        cdef Py_ssize_t ne = cls_err.shape[1], nb = cls_pb.shape[1], nh = cls_hist.shape[1]
        cdef Py_ssize_t nq = slo_good.shape[0]
        if (cls_tot.shape[1] != ne + 1 or u_err.shape[1] != ne or u_pb.shape[1] != nb or u_hist.shape[1] != nh
                or (nq > 0 and (u_slo.shape[0] != C or u_slo.shape[1] != nq))):
            raise ValueError("apply_classes: counters and per-unit statistics disagree in shape")
        if (cls_pb.shape[0] != C or cls_psum.shape[0] != C or cls_n.shape[0] != C or cls_ok.shape[0] != C
                or cls_err.shape[0] != C or cls_asum.shape[0] != C or cls_lsum.shape[0] != C
                or cls_hist.shape[0] != C or u_ok.shape[0] != C or u_err.shape[0] != C or u_pb.shape[0] != C
                or u_lsum.shape[0] != C or u_asum.shape[0] != C or u_hist.shape[0] != C):
            raise ValueError("apply_classes: counters and per-unit statistics disagree in shape")
        self.C = C
        self.cls_tot, self.cls_pb, self.cls_psum, self.cls_n = cls_tot, cls_pb, cls_psum, cls_n
        self.cls_ok, self.cls_err, self.cls_asum, self.cls_lsum = cls_ok, cls_err, cls_asum, cls_lsum
        self.cls_hist, self.slo_good = cls_hist, slo_good
        self.u_ok, self.u_err, self.u_pb, self.u_lsum, self.u_asum = u_ok, u_err, u_pb, u_lsum, u_asum
        self.u_hist, self.u_slo = u_hist, u_slo
        self.whole = span is None
        if not self.whole:
            self.span = span
            if self.span.shape[0] != C or self.span.shape[1] != 2:
                raise ValueError("apply_classes: one bucket span per class")
        self.rows = u_hist.strides[1] == sizeof(double) and cls_hist.shape[1] > 0

    def apply(self, double[::1] v_all, double[::1] v):
        """``apply_classes`` on the bound arrays; returns ``(v · asum, v_all · asum)``."""
        if v_all.shape[0] != self.C or v.shape[0] != self.C:
            raise ValueError("apply_classes: counters and per-unit statistics disagree in shape")
        return self._apply(&v_all[0] if self.C else NULL, &v[0] if self.C else NULL)

    def window(self, object plane, double t_end):
        """A window of the flow plane counted (``tally.apply_unit_stats``): ``add`` with its
        volumes (``plane._w_cls_all``, ``_w_cls``, ``_w_calls``, ``_w_started_w``) and pending
        volumes (``plane._pending.ve``, ``.vs``); then, as the Python did,
        ``plane._little_area += little`` and
        ``plane._in_system = insys / max(t_end - plane._win_start, 1e-12)``."""
        cdef Py_buffer b[6]
        cdef int k = 0, i
        cdef Py_ssize_t j
        cdef double little, insys, d
        cdef double* ve
        cdef double* vs
        cdef const double* calls
        cdef const double* started
        pending = plane._pending
        try:
            _f64(plane._w_cls_all, &b[0], self.C, False)
            k = 1
            _f64(plane._w_cls, &b[1], self.C, False)
            k = 2
            _f64(pending.ve, &b[2], -1, True)
            k = 3
            _f64(plane._w_calls, &b[3], b[2].shape[0], False)
            k = 4
            _f64(pending.vs, &b[4], -1, True)
            k = 5
            _f64(plane._w_started_w, &b[5], b[4].shape[0], False)
            k = 6
            ve = <double*>b[2].buf
            calls = <const double*>b[3].buf
            vs = <double*>b[4].buf
            started = <const double*>b[5].buf
            for j in range(b[2].shape[0]):
                ve[j] += calls[j]
            for j in range(b[4].shape[0]):
                vs[j] += started[j]
            little, insys = self._apply(<const double*>b[0].buf, <const double*>b[1].buf)
        finally:
            for i in range(k):
                PyBuffer_Release(&b[i])
        plane._little_area = plane._little_area + little
        d = t_end - <double>plane._win_start
        plane._in_system = insys / (1e-12 if 1e-12 > d else d)

    def add(self, double[::1] v_all, double[::1] v, double[::1] ve, double[::1] calls, double[::1] vs,
            double[::1] started):
        """``apply``, and ``ve += calls``, ``vs += started`` (the pending volumes)."""
        cdef Py_ssize_t i
        if v_all.shape[0] != self.C or v.shape[0] != self.C:
            raise ValueError("apply_classes: counters and per-unit statistics disagree in shape")
        if ve.shape[0] != calls.shape[0] or vs.shape[0] != started.shape[0]:
            raise ValueError("ClassCounters.add: volumes and pending volumes differ in length")
        for i in range(ve.shape[0]):
            ve[i] += calls[i]
        for i in range(vs.shape[0]):
            vs[i] += started[i]
        return self._apply(&v_all[0] if self.C else NULL, &v[0] if self.C else NULL)

    cdef tuple _apply(self, const double* v_all, const double* v):
        cdef Py_ssize_t c, j, lo, hi, C = self.C
        cdef Py_ssize_t ne = self.cls_err.shape[1], nb = self.cls_pb.shape[1], nh = self.cls_hist.shape[1]
        cdef Py_ssize_t nq = self.slo_good.shape[0]
        cdef double a, w, little = 0.0, insys = 0.0
        cdef double[:, ::1] cls_tot = self.cls_tot, cls_pb = self.cls_pb, cls_err = self.cls_err
        cdef double[:, ::1] cls_hist = self.cls_hist
        cdef double[::1] cls_psum = self.cls_psum, cls_n = self.cls_n, cls_ok = self.cls_ok
        cdef double[::1] cls_asum = self.cls_asum, cls_lsum = self.cls_lsum, slo_good = self.slo_good
        cdef double[:] u_ok = self.u_ok, u_lsum = self.u_lsum, u_asum = self.u_asum
        cdef double[:, :] u_err = self.u_err, u_pb = self.u_pb, u_hist = self.u_hist, u_slo = self.u_slo
        with nogil:
            for c in range(C):
                a = v_all[c]
                w = v[c]
                cls_tot[c, 0] += a * u_ok[c]
                for j in range(ne):
                    cls_tot[c, j + 1] += a * u_err[c, j]
                    cls_err[c, j] += w * u_err[c, j]
                for j in range(nb):
                    cls_pb[c, j] += a * u_pb[c, j]
                cls_psum[c] += a * u_lsum[c]
                cls_n[c] += w
                cls_ok[c] += w * u_ok[c]
                cls_asum[c] += w * u_asum[c]
                cls_lsum[c] += w * u_lsum[c]
                if w != 0.0:
                    lo = 0
                    hi = nh
                    # Outside its span a row is 0 (+-0.0): adding w * 0.0 (w finite) leaves
                    # the counter as it is (never -0.0: it starts at +0.0).
                    if not self.whole and isfinite(w):
                        lo = self.span[c, 0] if self.span[c, 0] > 0 else 0
                        hi = self.span[c, 1] if self.span[c, 1] < nh else nh
                    if self.rows:
                        _add_scaled_row(&cls_hist[c, 0], &u_hist[c, 0], w, lo, hi)
                    else:
                        for j in range(lo, hi):
                            cls_hist[c, j] += w * u_hist[c, j]
                for j in range(nq):
                    slo_good[j] += w * u_slo[c, j]
                little += w * u_asum[c]
                insys += a * u_asum[c]
        return little, insys


cdef inline (Py_ssize_t, Py_ssize_t) _clip(long lo, long hi, Py_ssize_t m) noexcept nogil:
    """A span ``[lo, hi)`` within ``[0, m)`` (an empty one stays empty)."""
    cdef Py_ssize_t a = lo if lo > 0 else 0, b = hi if hi < m else m
    return (a, b if b > a else a)


cdef inline bint _pos0(double x) noexcept nogil:
    """``x`` is +0.0 (not -0.0: a row's span leaves out only what a zeroed row holds)."""
    return x == 0.0 and not signbit(x)


cdef inline void _span_of(const double* x, Py_ssize_t m, long* lo, long* hi) noexcept nogil:
    """The buckets ``[lo, hi)`` outside which ``x`` is +0.0 (empty: ``lo == hi == 0``)."""
    cdef Py_ssize_t a = 0, b = m
    while a < b and _pos0(x[a]):
        a += 1
    while b > a and _pos0(x[b - 1]):
        b -= 1
    if a == b:
        a = b = 0
    lo[0] = a
    hi[0] = b


cdef void _set_row(double* dst, long* span, const double* src, Py_ssize_t m, const long* known) noexcept nogil:
    """``dst[:m] = src`` (NULL: zeros) for a row that is +0.0 outside ``span`` (then ``src``'s,
    ``known`` when given: the buckets outside which ``src`` is +0.0): only the old span
    cleared, only the new one copied."""
    cdef Py_ssize_t lo, hi, j, a, b
    cdef long nlo = 0, nhi = 0
    lo, hi = _clip(span[0], span[1], m)
    if src != NULL and known != NULL:
        a, b = _clip(known[0], known[1], m)
        nlo, nhi = a, b
    elif src != NULL:
        _span_of(src, m, &nlo, &nhi)
    for j in range(lo, hi):
        if j < nlo or j >= nhi:
            dst[j] = 0.0
    for j in range(nlo, nhi):
        dst[j] = src[j]
    span[0] = nlo
    span[1] = nhi


def set_row(double[::1] dst, long[::1] span, const double[::1] src, const long[::1] known=None):
    """``dst[:] = src`` (``src`` empty: zeros) for a histogram row that is +0.0 outside its
    ``span`` (updated to ``src``'s buckets that are not +0.0, or to ``known``, a span outside
    which ``src`` is +0.0): only the old span is cleared, only the new one copied
    (``UnitRows``, ``tally.UnitTable``'s rows, a class's row from its entry endpoint's)."""
    if span.shape[0] != 2 or (src.shape[0] != dst.shape[0] and src.shape[0] != 0):
        raise ValueError("set_row: a span of two, a source as long as the row (or empty)")
    if known is not None and known.shape[0] != 2:
        raise ValueError("set_row: a known span of two")
    cdef const long* kp = &known[0] if known is not None else NULL
    with nogil:
        _set_row(&dst[0] if dst.shape[0] else NULL, &span[0], &src[0] if src.shape[0] else NULL, dst.shape[0],
                 kp)


cdef class UnitRows:
    """``tally.UnitTable``'s arrays bound once: ``set`` writes one endpoint's row (its
    statistics, error shares, three histograms with their spans, whether it has answers and
    waits) and bumps its stamp, as the table's NumPy assignments did."""

    cdef double[:, ::1] sc, err
    cdef double[:, :, ::1] hist
    cdef unsigned char[:, ::1] has
    cdef long[::1] stamp
    cdef long[:, :, ::1] span

    def __init__(self, double[:, ::1] sc, double[:, ::1] err, double[:, :, ::1] hist, unsigned char[:, ::1] has,
                 long[::1] stamp, long[:, :, ::1] span):
        cdef Py_ssize_t E = sc.shape[0]
        if (sc.shape[1] != 5 or err.shape[0] != E or hist.shape[0] != 3 or hist.shape[1] != E
                or has.shape[0] != E or has.shape[1] != 2 or stamp.shape[0] != E or span.shape[0] != 3
                or span.shape[1] != E or span.shape[2] != 2):
            raise ValueError("UnitRows: the table has another layout")
        self.sc, self.err, self.hist, self.has, self.stamp, self.span = sc, err, hist, has, stamp, span

    def set(self, Py_ssize_t e, double ok, double lsum, double sv_ok, double sv_lsum, double sv_wmean,
            const double[::1] err, object hist, object sv_hist, object sv_whist, object spans=None):
        """Row ``e``: ``sc[e] = (ok, lsum, sv_ok, sv_lsum, sv_wmean)``, ``err[e] = err``, the
        histograms (None: zeros; ``spans``, 3 x 2, when given: the buckets outside which each
        is +0.0, else found), ``has[e] = (sv_hist is not None, sv_whist is not None)``,
        ``stamp[e] += 1``."""
        cdef Py_ssize_t i, m = self.hist.shape[2]
        cdef const double[::1] x
        cdef const long[:, ::1] known
        cdef bint has_known = spans is not None
        if has_known:
            known = spans
            if known.shape[0] != 3 or known.shape[1] != 2:
                raise ValueError("UnitRows.set: a span per histogram")
        if e < 0 or e >= self.sc.shape[0]:
            raise IndexError(f"UnitRows.set: endpoint {e} out of range")
        if err.shape[0] != self.err.shape[1]:
            raise ValueError("UnitRows.set: one share per error kind")
        self.sc[e, 0] = ok
        self.sc[e, 1] = lsum
        self.sc[e, 2] = sv_ok
        self.sc[e, 3] = sv_lsum
        self.sc[e, 4] = sv_wmean
        for i in range(err.shape[0]):
            self.err[e, i] = err[i]
        for i, h in enumerate((hist, sv_hist, sv_whist)):
            if h is None:
                _set_row(&self.hist[i, e, 0] if m else NULL, &self.span[i, e, 0], NULL, m, NULL)
            else:
                x = h
                if x.shape[0] != m:
                    raise ValueError("UnitRows.set: a histogram of another width")
                _set_row(&self.hist[i, e, 0] if m else NULL, &self.span[i, e, 0], &x[0] if m else NULL, m,
                         &known[i, 0] if has_known else NULL)
        self.has[e, 0] = sv_hist is not None
        self.has[e, 1] = sv_whist is not None
        self.stamp[e] += 1


def flush_units(double[::1] ep_n, double[::1] ep_ok, double[:, ::1] ep_err, double[::1] ep_lsum,
                double[:, ::1] ep_hist, double[::1] sv_ok, double[::1] sv_lsum, double[:, ::1] sv_hist,
                double[:, ::1] sv_whist, const double[::1] u_ep_ok, const double[:, ::1] u_ep_err,
                const double[::1] u_ep_lsum, const double[:, ::1] u_ep_hist, const double[::1] u_sv_ok,
                const double[::1] u_sv_lsum, const double[:, ::1] u_sv_hist, const double[:, ::1] u_sv_whist,
                double[::1] ve, double[::1] vs, object spans=None):
    """The pending endpoint volumes ``ve`` and service volumes ``vs`` times the per-unit
    statistics ``u_*``, into the run's counters (``tally.flush_pending``: ``ep_n += ve``,
    ``ep_ok += ve * u_ep_ok``, ... , a histogram row only where its volume is not 0, as
    ``add_rows``); then ``ve`` and ``vs`` are zeroed. ``spans`` (optional): the buckets
    ``[lo, hi)`` outside which the rows of ``u_ep_hist``, ``u_sv_hist`` and ``u_sv_whist``
    are 0 (``(ep, sv, sv_w)``, each one pair per row): only those are added (adding ``f * 0``,
    ``f`` finite, leaves a counter as it is)."""
    cdef Py_ssize_t E = ve.shape[0], S = vs.shape[0], ne = ep_err.shape[1], m = ep_hist.shape[1]
    cdef Py_ssize_t e, s, j, lo, hi, lo2, hi2
    cdef double f
    cdef const long[:, ::1] sp_ep
    cdef const long[:, ::1] sp_sv
    cdef const long[:, ::1] sp_w
    cdef bint has_spans = spans is not None
    if has_spans:
        sp_ep, sp_sv, sp_w = spans
        if (sp_ep.shape[0] != E or sp_sv.shape[0] != S or sp_w.shape[0] != S or sp_ep.shape[1] != 2
                or sp_sv.shape[1] != 2 or sp_w.shape[1] != 2):
            raise ValueError("flush_units: one bucket span per endpoint and service row")
    if (ep_n.shape[0] != E or ep_ok.shape[0] != E or ep_err.shape[0] != E or ep_lsum.shape[0] != E
            or ep_hist.shape[0] != E or u_ep_ok.shape[0] != E or u_ep_err.shape[0] != E
            or u_ep_err.shape[1] != ne or u_ep_lsum.shape[0] != E or u_ep_hist.shape[0] != E
            or u_ep_hist.shape[1] != m):
        raise ValueError("flush_units: one row per endpoint in every endpoint array")
    if (sv_ok.shape[0] != S or sv_lsum.shape[0] != S or sv_hist.shape[0] != S or sv_whist.shape[0] != S
            or u_sv_ok.shape[0] != S or u_sv_lsum.shape[0] != S or u_sv_hist.shape[0] != S
            or u_sv_whist.shape[0] != S or sv_hist.shape[1] != m or sv_whist.shape[1] != m
            or u_sv_hist.shape[1] != m or u_sv_whist.shape[1] != m):
        raise ValueError("flush_units: one row per service in every service array")
    with nogil:
        for e in range(E):
            f = ve[e]
            ep_n[e] += f
            ep_ok[e] += f * u_ep_ok[e]
            for j in range(ne):
                ep_err[e, j] += f * u_ep_err[e, j]
            ep_lsum[e] += f * u_ep_lsum[e]
            if f != 0.0:
                lo, hi = 0, m
                if has_spans and isfinite(f):
                    lo, hi = _clip(sp_ep[e, 0], sp_ep[e, 1], m)
                for j in range(lo, hi):
                    ep_hist[e, j] += f * u_ep_hist[e, j]
            ve[e] = 0.0
        for s in range(S):
            f = vs[s]
            sv_ok[s] += f * u_sv_ok[s]
            sv_lsum[s] += f * u_sv_lsum[s]
            if f != 0.0:
                lo, hi, lo2, hi2 = 0, m, 0, m
                if has_spans and isfinite(f):
                    lo, hi = _clip(sp_sv[s, 0], sp_sv[s, 1], m)
                    lo2, hi2 = _clip(sp_w[s, 0], sp_w[s, 1], m)
                for j in range(lo, hi):
                    sv_hist[s, j] += f * u_sv_hist[s, j]
                for j in range(lo2, hi2):
                    sv_whist[s, j] += f * u_sv_whist[s, j]
            vs[s] = 0.0


def window_state(double[::1] lam, double[:, ::1] win, double[::1] lat_r, const unsigned char[::1] ready,
                 double[::1] pw, double[::1] mw, double[::1] theta, double[::1] bw, double[::1] stretch,
                 double[::1] rej, double[::1] slack, double[::1] drop, double[::1] weight,
                 double[::1] mean_wait):
    """A window's queue state per replica from its arrival-weighted sums (``win``: P(wait)
    tail, mean wait, backlog wait, slack, dropped share, stretch, rejected share, each times
    the arrivals, and ``lam`` the arrivals): the ratios, the load-balancing weight and the
    mean wait the steadiness judgement reads (``windows.FlowWindows._close_window``; the
    NumPy expressions it replaces are the tests' reference)."""
    cdef Py_ssize_t r, n = lam.shape[0]
    cdef double l
    if win.shape[0] != 7 or win.shape[1] < n:
        raise ValueError("window_state: seven sums per replica")
    with nogil:
        for r in range(n):
            l = lam[r]
            if l > 0.0:
                pw[r] = win[0, r] / l
                mw[r] = win[1, r] / l
                bw[r] = win[2, r] / l
                stretch[r] = win[5, r] / l
                rej[r] = win[6, r] / l
                slack[r] = win[3, r] / l
                drop[r] = win[4, r] / l
            else:
                pw[r] = 0.0
                mw[r] = 0.0
                bw[r] = 0.0
                stretch[r] = lat_r[r]
                rej[r] = 0.0
                slack[r] = 0.0
                drop[r] = 0.0
            theta[r] = pw[r] / mw[r] if mw[r] > 0.0 else INFINITY
            weight[r] = (l if l > 1e-12 else 1e-12) if ready[r] else 0.0
            mean_wait[r] = (pw[r] / (theta[r] if theta[r] > 1e-300 else 1e-300)
                            if theta[r] > 0.0 and theta[r] < INFINITY else 0.0) + bw[r]


cdef inline double _stretch_tol(double stretch, double hold, double cpu_frame, double lat) noexcept nogil:
    """How far a replica's stretch may move: what moves its holding time by 5 % (a frame's CPU
    time is ``cpu_frame / lat`` times the stretch), or 2 % of it, whichever is more (the NumPy
    expressions of ``windows.stretch_tolerance``)."""
    cdef double tol = 0.02 * stretch + 1e-9, alt
    if cpu_frame > 0.0 and lat > 0.0 and hold > 0.0:
        alt = 0.05 * hold * lat / cpu_frame
        if alt > tol and alt < INFINITY:
            return alt
    return tol


def stretch_tol(double stretch, double hold, double cpu_frame, double lat):
    """``_stretch_tol`` for the tests and the signature's tolerances."""
    return _stretch_tol(stretch, hold, cpu_frame, lat)


cdef inline bint _moved(double x, double p, double tol) noexcept nogil:
    cdef double t = 0.02 * fabs(p)
    return fabs(x - p) > (tol if tol > t else t)


def window_moved(double[::1] prev, double[::1] mean_wait, double[::1] pw, double[::1] stretch,
                 double[::1] rej, double[::1] drop, double[::1] weight, double wsum,
                 double[::1] breaker_open, double[::1] err_r, double[::1] hold, double[::1] cpu_frame,
                 double[::1] lat):
    """Whether any entry of the window's signature moved past its tolerance from ``prev``
    (the signature ``windows.FlowWindows._close_window`` keeps: mean waits against 5 % of the
    holding time, chances and shares by 0.02 / 0.005, stretches by what moves the holding
    time by 5 % (``stretch_tol``: ``cpu_frame`` is a frame's CPU work at the replica's
    version's latency factor ``lat``), breakers and error rates at all; each at least 2 % of
    its old value), without building the signature."""
    cdef Py_ssize_t n = mean_wait.shape[0], ne = breaker_open.shape[0]
    if prev.shape[0] != 7 * n + ne:
        raise ValueError("window_moved: the previous signature has another layout")
    if (pw.shape[0] != n or stretch.shape[0] != n or rej.shape[0] != n or drop.shape[0] != n
            or weight.shape[0] != n or err_r.shape[0] != n or hold.shape[0] != n
            or cpu_frame.shape[0] != n or lat.shape[0] != n):
        raise ValueError("window_moved: one value per replica in every replica array")
    cdef bint moved
    with nogil:
        moved = _any_moved(n, ne, &prev[0], &mean_wait[0], &pw[0], &stretch[0], &rej[0], &drop[0],
                           &weight[0], wsum if wsum > 1e-300 else 1e-300, &breaker_open[0] if ne else NULL,
                           &err_r[0], &hold[0], &cpu_frame[0], &lat[0])
    return moved


cdef bint _any_moved(Py_ssize_t n, Py_ssize_t ne, const double* prev, const double* mean_wait,
                     const double* pw, const double* stretch, const double* rej, const double* drop,
                     const double* weight, double w, const double* breaker_open, const double* err_r,
                     const double* hold, const double* cpu_frame, const double* lat) noexcept nogil:
    cdef Py_ssize_t r, e
    for r in range(n):
        if _moved(mean_wait[r], prev[r], 0.05 * hold[r] + 1e-6):
            return True
        if _moved(pw[r], prev[n + r], 0.02):
            return True
        if _moved(stretch[r], prev[2 * n + r], _stretch_tol(stretch[r], hold[r], cpu_frame[r], lat[r])):
            return True
        if _moved(rej[r], prev[3 * n + r], 0.005):
            return True
        if _moved(drop[r], prev[4 * n + r], 0.005):
            return True
        if _moved(weight[r] / w, prev[5 * n + r], 0.02):
            return True
        if _moved(err_r[r], prev[6 * n + ne + r], 1e-9):
            return True
    for e in range(ne):
        if _moved(breaker_open[e], prev[6 * n + e], 1e-9):
            return True
    return False


cdef double _pairwise_sum(const double* a, Py_ssize_t n) noexcept nogil:
    """NumPy's pairwise summation of ``n`` contiguous values, as ``ndarray.sum`` does it (so
    the sums agree to the bit): below 8 values one by one from 0.0, up to 128 in eight lanes
    folded pairwise and the rest one by one, above that the two halves (cut at a multiple of
    8) summed apart. ``ndarray.sum`` adds the result to 0.0 (``_pairwise_total``)."""
    cdef Py_ssize_t i, n2
    cdef double r0, r1, r2, r3, r4, r5, r6, r7, res
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        r0 = a[0]
        r1 = a[1]
        r2 = a[2]
        r3 = a[3]
        r4 = a[4]
        r5 = a[5]
        r6 = a[6]
        r7 = a[7]
        i = 8
        while i < n - (n % 8):
            r0 += a[i]
            r1 += a[i + 1]
            r2 += a[i + 2]
            r3 += a[i + 3]
            r4 += a[i + 4]
            r5 += a[i + 5]
            r6 += a[i + 6]
            r7 += a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, n2) + _pairwise_sum(a + n2, n - n2)


def pairwise_sum(const double[::1] a):
    """``float(a.sum())`` as ``window_close`` forms it (a test hook)."""
    return 0.0 + _pairwise_sum(&a[0] if a.shape[0] else NULL, a.shape[0])


# The rows of window_close's output (windows.FlowWindows._close_window reads them by name).
CLOSE_ROWS = ("pw", "mw", "theta", "bw", "stretch", "rej", "slack", "drop", "weight", "mean_wait", "err_r", "lat")


def window_close(dict parts, object ver_lat, object ver_err, object ver, object ready, object out, object prev,
                 object breaker_open, object hold, object cpu_frame, bint judge):
    """A window's close in one call (``windows.FlowWindows._close_window``; its former NumPy
    and kernel calls are the reference, ``FlowWindows.fused_close = False``):

    * the arrival-weighted sums of the window's parts (``parts``: the plane's ``_win_parts``,
      each ``(rates, increments, seconds)``; ``rates["lam"]`` the arrivals, ``increments["win"]``
      the seven sums per second), added part after part from 0.0 as ``_window_sums`` did;
    * ``window_state``'s ratios, weights and mean waits, into ``out``'s rows ``CLOSE_ROWS``,
      with each replica's version's error rate and latency factor (``ver_err[ver]``,
      ``ver_lat[ver]``);
    * the weights' sum (as ``ndarray.sum``), and when ``judge`` and ``prev`` is a signature of
      this layout, ``window_moved``'s judgement (``hold`` and ``cpu_frame``: the last tick's,
      ones and zeros when missing or of another length).

    The arrays (float64; ``ver`` int64, ``ready`` uint8; ``out`` 12 x R, C-contiguous) are
    read through the buffer protocol (``_buf``: a typed memoryview's checks, cheaper).
    Returns ``(moved, wsum)``; ``moved`` is True when it was not judged."""
    cdef Py_buffer b[10]
    cdef Py_buffer pb[2]
    cdef int nb = 0, npb, j
    cdef Py_ssize_t R, ne, nv, i, k, n, v, s0, s1
    cdef double d, l, t, wsum
    cdef double* buf = NULL
    cdef double* lam
    cdef double* win
    cdef const double* hp
    cdef const double* cp
    cdef const double* lat_v
    cdef const double* err_v
    cdef const long* ver_v
    cdef const unsigned char* ready_v
    cdef double* o
    cdef const double* bo
    cdef const double* lam_p
    cdef const char* win_p
    cdef bint moved = True
    try:
        _buf(out, &b[0], c'd', 2, True)
        nb = 1
        if b[0].shape[0] != 12:
            raise ValueError("window_close: twelve output rows")
        R = b[0].shape[1]
        o = <double*>b[0].buf
        _buf(ver_lat, &b[1], c'd', 1, False)
        nb = 2
        nv = b[1].shape[0]
        lat_v = <const double*>b[1].buf
        _buf(ver_err, &b[2], c'd', 1, False)
        nb = 3
        err_v = <const double*>b[2].buf
        _buf(ver, &b[3], c'l', 1, False)
        nb = 4
        ver_v = <const long*>b[3].buf
        _buf(ready, &b[4], c'B', 1, False)
        nb = 5
        ready_v = <const unsigned char*>b[4].buf
        _buf(breaker_open, &b[5], c'd', 1, False)
        nb = 6
        ne = b[5].shape[0]
        bo = <const double*>b[5].buf
        if b[2].shape[0] != nv or b[3].shape[0] != R or b[4].shape[0] != R:
            raise ValueError("window_close: one version and readiness per replica, an error rate per version")
        for i in range(R):
            if ver_v[i] < -nv or ver_v[i] >= nv:
                raise IndexError(f"window_close: version {ver_v[i]} out of range")
        buf = <double*>calloc(8 * R + 1, sizeof(double))
        if buf == NULL:
            raise MemoryError()
        lam = buf
        win = buf + R
        for part in parts.values():
            npb = 0
            try:
                _buf(part[0]["lam"], &pb[0], c'd', 1, False)
                npb = 1
                _buf(part[1]["win"], &pb[1], c'd', -2, False)
                npb = 2
                d = part[2]
                n = pb[0].shape[0] if pb[0].shape[0] < R else R
                if pb[1].shape[0] != 7 or pb[1].shape[1] < n:
                    raise ValueError("window_close: seven sums per replica in every part")
                lam_p = <const double*>pb[0].buf
                win_p = <const char*>pb[1].buf
                s0 = pb[1].strides[0]
                s1 = pb[1].strides[1]
                for i in range(n):
                    lam[i] += lam_p[i] * d
                for k in range(7):
                    for i in range(n):
                        win[k * R + i] += (<const double*>(win_p + k * s0 + i * s1))[0] * d
            finally:
                for j in range(npb):
                    PyBuffer_Release(&pb[j])
        with nogil:
            for i in range(R):
                v = ver_v[i]
                if v < 0:
                    v += nv
                o[10 * R + i] = err_v[v]
                o[11 * R + i] = lat_v[v]
                l = lam[i]
                if l > 0.0:
                    o[i] = win[i] / l
                    o[R + i] = win[R + i] / l
                    o[3 * R + i] = win[2 * R + i] / l
                    o[4 * R + i] = win[5 * R + i] / l
                    o[5 * R + i] = win[6 * R + i] / l
                    o[6 * R + i] = win[3 * R + i] / l
                    o[7 * R + i] = win[4 * R + i] / l
                else:
                    o[i] = 0.0
                    o[R + i] = 0.0
                    o[3 * R + i] = 0.0
                    o[4 * R + i] = o[11 * R + i]
                    o[5 * R + i] = 0.0
                    o[6 * R + i] = 0.0
                    o[7 * R + i] = 0.0
                t = o[i] / o[R + i] if o[R + i] > 0.0 else INFINITY
                o[2 * R + i] = t
                o[8 * R + i] = (l if l > 1e-12 else 1e-12) if ready_v[i] else 0.0
                o[9 * R + i] = (o[i] / (t if t > 1e-300 else 1e-300) if t > 0.0 and t < INFINITY else 0.0) + o[3 * R + i]
            wsum = 0.0 + _pairwise_sum(&o[8 * R], R)
        if judge and prev is not None:
            _buf(prev, &b[6], c'd', 1, False)
            nb = 7
            if b[6].shape[0] == 7 * R + ne:
                hp = NULL
                cp = NULL
                if hold is not None:
                    _buf(hold, &b[nb], c'd', 1, False)
                    nb += 1
                    if b[nb - 1].shape[0] == R:
                        hp = <const double*>b[nb - 1].buf
                if cpu_frame is not None:
                    _buf(cpu_frame, &b[nb], c'd', 1, False)
                    nb += 1
                    if b[nb - 1].shape[0] == R:
                        cp = <const double*>b[nb - 1].buf
                # Missing: ones and zeros (lam's place, no longer needed, holds them).
                if hp == NULL:
                    for i in range(R):
                        lam[i] = 1.0
                    hp = lam
                if cp == NULL:
                    for i in range(R):
                        win[i] = 0.0
                    cp = win
                with nogil:
                    moved = _any_moved(R, ne, <const double*>b[6].buf, &o[9 * R], &o[0], &o[4 * R], &o[5 * R],
                                       &o[7 * R], &o[8 * R], wsum if wsum > 1e-300 else 1e-300, bo, &o[10 * R],
                                       hp, cp, &o[11 * R])
        return moved, wsum
    finally:
        free(buf)
        for j in range(nb):
            PyBuffer_Release(&b[j])


cdef inline double _np_max(double a, double b) noexcept nogil:
    """``np.maximum(a, b)``: NaN when either is."""
    if a != a or b != b:
        return a + b
    return a if a >= b else b


def window_signature(const double[:, ::1] out, double wsum, const double[::1] breaker_open, object prev,
                     object hold, object cpu_frame, double[::1] sig, unsigned char[::1] moved):
    """A composing window's signature, and which of its entries moved from ``prev``
    (``windows.FlowWindows._close_window``; the NumPy it replaces is the reference,
    ``FlowWindows.fused_close = False``): ``sig`` = mean waits, P(wait), stretches, rejected
    and dropped shares, weights over ``max(wsum, 1e-300)``, breakers, error rates (``out``:
    ``window_close``'s rows); when ``prev`` has that layout, ``moved[i]`` is
    ``|sig - prev| > np.maximum(tol, 0.02 |prev|)`` with the tolerances ``0.05 hold + 1e-6``,
    0.02, ``stretch_tolerance``, 0.005, 0.005, 0.02, 1e-9 (breakers), 1e-9 (error rates);
    ``hold`` and ``cpu_frame`` missing or of another length are ones and zeros. Returns
    whether ``moved`` was judged."""
    cdef Py_ssize_t R = out.shape[1], ne = breaker_open.shape[0], n = 7 * out.shape[1] + breaker_open.shape[0]
    cdef Py_ssize_t i, blk
    cdef double w = 1e-300 if 1e-300 > wsum else wsum, h, c, tol, p  # (Python's max(wsum, 1e-300))
    cdef const double[::1] prev_v
    cdef const double[::1] hold_v
    cdef const double[::1] cpu_v
    cdef bint has_hold = False, has_cpu = False
    if out.shape[0] != 12 or sig.shape[0] != n:
        raise ValueError("window_signature: window_close's twelve rows, 7 R + E entries")
    for i in range(R):
        sig[i] = out[9, i]
        sig[R + i] = out[0, i]
        sig[2 * R + i] = out[4, i]
        sig[3 * R + i] = out[5, i]
        sig[4 * R + i] = out[7, i]
        sig[5 * R + i] = out[8, i] / w
        sig[6 * R + ne + i] = out[10, i]
    for i in range(ne):
        sig[6 * R + i] = breaker_open[i]
    if prev is None:
        return False
    prev_v = prev
    if prev_v.shape[0] != n:
        return False
    if moved.shape[0] != n:
        raise ValueError("window_signature: one flag per entry")
    if hold is not None:
        hold_v = hold
        has_hold = hold_v.shape[0] == R
    if cpu_frame is not None:
        cpu_v = cpu_frame
        has_cpu = cpu_v.shape[0] == R
    for i in range(n):
        p = prev_v[i]
        if i < 6 * R:
            blk = i // R
        elif i < 6 * R + ne:
            blk = 6
        else:
            blk = 7
        if blk == 0 or blk == 2:
            h = hold_v[i % R] if has_hold else 1.0
            if blk == 0:
                tol = 0.05 * h + 1e-6
            else:
                c = cpu_v[i % R] if has_cpu else 0.0
                tol = _stretch_tol(sig[i], h, c, out[11, i % R])
        elif blk == 1 or blk == 5:
            tol = 0.02
        elif blk == 3 or blk == 4:
            tol = 0.005
        else:
            tol = 1e-9
        moved[i] = fabs(sig[i] - p) > _np_max(tol, 0.02 * fabs(p))
    return True


def dirty_sets(const unsigned char[::1] moved, const long[::1] svc, const long[::1] ep_svc,
               const long[::1] edge_src, const long[::1] edge_dst, unsigned char[::1] svc_dirty,
               unsigned char[::1] ep_dirty, unsigned char[::1] keep):
    """From the signature entries that moved (``window_signature``): the services and
    endpoints to compose again and the entries that keep their old reference
    (``windows.FlowWindows._dirty``, whose NumPy is the reference): a service one of whose
    replicas moved (``svc`` of each, < 0: none; any of the six per-replica blocks or the
    error rate), an endpoint of such a service or whose breaker moved, and every caller above
    one (``edge_src`` calls ``edge_dst``), then every service of those endpoints; ``keep``:
    the entries of replicas of clean services (of service ``max(svc, 0)``) and of clean
    endpoints."""
    cdef Py_ssize_t R = svc.shape[0], E = ep_svc.shape[0], S = svc_dirty.shape[0], m = edge_src.shape[0]
    cdef Py_ssize_t r, e, k, b
    cdef bint grew
    if (moved.shape[0] != 7 * R + E or ep_dirty.shape[0] != E or keep.shape[0] != 7 * R + E
            or edge_dst.shape[0] != m):
        raise ValueError("dirty_sets: the signature has 7 R + E entries, one flag per endpoint")
    for r in range(R):
        if svc[r] >= S or S == 0:
            raise IndexError("dirty_sets: a replica's service out of range")
    for e in range(E):
        if ep_svc[e] < -S or ep_svc[e] >= S:
            raise IndexError("dirty_sets: an endpoint's service out of range")
    for k in range(m):
        if edge_src[k] < 0 or edge_src[k] >= E or edge_dst[k] < 0 or edge_dst[k] >= E:
            raise IndexError("dirty_sets: an edge's endpoint out of range")
    with nogil:
        for k in range(S):
            svc_dirty[k] = 0
        for r in range(R):
            if svc[r] < 0:
                continue
            for b in range(6):
                if moved[b * R + r]:
                    svc_dirty[svc[r]] = 1
            if moved[6 * R + E + r]:
                svc_dirty[svc[r]] = 1
        for e in range(E):
            ep_dirty[e] = svc_dirty[ep_svc[e] + (S if ep_svc[e] < 0 else 0)] or moved[6 * R + e]
        # Callers of what is composed again are composed again too (to the fixed point: the
        # same set, whatever the order the edges are walked in).
        grew = True
        while grew:
            grew = False
            for k in range(m):
                if ep_dirty[edge_dst[k]] and not ep_dirty[edge_src[k]]:
                    ep_dirty[edge_src[k]] = 1
                    grew = True
        for e in range(E):
            if ep_dirty[e]:
                svc_dirty[ep_svc[e] + (S if ep_svc[e] < 0 else 0)] = 1
        for r in range(R):
            k = svc[r] if svc[r] > 0 else 0
            b = not svc_dirty[k]
            for e in range(6):
                keep[e * R + r] = b
            keep[6 * R + E + r] = b
        for e in range(E):
            keep[6 * R + e] = not ep_dirty[e]


def ps_shape(const double[::1] stretch, const double[::1] lat, const long[::1] svc, const long[::1] alive,
             const double[::1] cores_s, const long[::1] conc_s, const double[::1] cpu_frame, double[::1] rho,
             double[::1] mu, double[::1] scale):
    """``windows.FlowWindows._ps_shape``'s arrays (its NumPy is the reference): per replica of
    service ``max(svc, 0)``, on when its workers share at most one core (``cores < conc``,
    ``cores <= 1``), it is alive, the stretch over ``lat`` times its cores is above 1 and
    below a saturated CPU's, and a frame has CPU work: ``rho = 1 - 1/k1``, ``mu = cores /
    cpu_frame``, ``scale = lat / cores``; 0 where off. Returns whether any replica shares a
    core (the NumPy's ``ps.any()``)."""
    cdef Py_ssize_t R = stretch.shape[0], S = cores_s.shape[0], r, k
    cdef double cores, conc, slow, k1, cap
    cdef bint any_ps = False, ps, on
    if (lat.shape[0] != R or svc.shape[0] != R or alive.shape[0] != R or cpu_frame.shape[0] != R
            or rho.shape[0] != R or mu.shape[0] != R or scale.shape[0] != R or conc_s.shape[0] != S):
        raise ValueError("ps_shape: one value per replica, one per service")
    for r in range(R):
        if svc[r] >= S or (S == 0 and R > 0):
            raise IndexError("ps_shape: a replica's service out of range")
    with nogil:
        for r in range(R):
            k = svc[r] if svc[r] > 0 else 0
            cores = cores_s[k]
            conc = <double>conc_s[k]
            ps = cores < conc and cores <= 1.0 and alive[r] == 1
            any_ps = any_ps or ps
            slow = stretch[r] / lat[r]
            k1 = slow * cores
            cap = (conc if conc >= 1.0 or conc != conc else 1.0) / cores
            on = ps and k1 > 1.0 + 1e-9 and slow < cap * (1.0 - 1e-9) and cpu_frame[r] > 0.0
            rho[r] = 1.0 - 1.0 / k1 if on else 0.0
            mu[r] = cores / cpu_frame[r] if on else 0.0
            scale[r] = lat[r] / cores if on else 0.0
    return any_ps


cdef inline void _add_row(double* dst, const double* src, double w, bint first, Py_ssize_t m) noexcept nogil:
    """``dst += w * src`` (``dst`` taken as 0.0 when ``first``: the same sums as adding to zeros)."""
    cdef Py_ssize_t j
    if first:
        for j in range(m):
            dst[j] = 0.0 + w * src[j]
    else:
        for j in range(m):
            dst[j] += w * src[j]


def combine_units(const long[::1] grp_off, const long[::1] grp_ep, const double[::1] w_att,
                  const double[:, ::1] t_sc, const double[:, ::1] t_err, const double[:, :, ::1] t_hist,
                  const unsigned char[:, ::1] t_has, const long[::1] stamp, long[::1] seen,
                  double[::1] ep_ok, double[:, ::1] ep_err, double[::1] ep_lsum, double[:, ::1] ep_hist,
                  double[::1] sv_ok, double[::1] sv_lsum, double[:, ::1] sv_hist, double[::1] sv_wsum,
                  double[:, ::1] sv_whist, object spans=None):
    """The per-unit statistics of endpoints and services from each endpoint's (``tally.UnitTable``:
    per endpoint ``t_sc`` = ok, lsum, sv_ok, sv_lsum, sv_wmean; ``t_err``; ``t_hist`` = its
    histogram, its answers' and its waits'; ``t_has`` whether it has answers, waits), written
    into the outputs: the endpoint rows copied (a histogram row only when ``seen[e]`` is not
    ``stamp[e]``: the output still holds it), each service's rows its endpoints' (``grp_ep``
    from ``grp_off[s]`` to ``grp_off[s + 1]``, in order) weighed by their share of the
    service's attempts ``w_att`` (all alike when it has none), summed in the same order as
    ``tally.unit_stats``' reference loop.

    ``spans`` (optional): ``(t_span, ep_span, sv_span, sv_wspan)``, the buckets ``[lo, hi)``
    outside which each histogram row is +0.0: the table's (3, E, 2, read) and the outputs'
    (updated). Then only spans are copied, summed (over the union of the endpoints' spans:
    the same sums there, +0.0 outside as the whole row's would be) and cleared (what the
    output row held outside its new span); every bucket where a weight is not finite."""
    cdef Py_ssize_t E = t_sc.shape[0], S = grp_off.shape[0] - 1, m = t_hist.shape[2], ne = t_err.shape[1]
    cdef Py_ssize_t s, i, e, j, k, lo, hi
    cdef double total, w, a_ok, a_lsum, a_wsum
    cdef bint first_sv, first_w, finite
    cdef bint has_spans = spans is not None
    cdef const long[:, :, ::1] t_span
    cdef long[:, ::1] ep_span
    cdef long[:, ::1] sv_span
    cdef long[:, ::1] sv_wspan
    cdef long u_lo[2]
    cdef long u_hi[2]
    if (t_sc.shape[1] != 5 or t_hist.shape[0] != 3 or t_hist.shape[1] != E or t_err.shape[0] != E
            or t_has.shape[0] != E or t_has.shape[1] != 2 or stamp.shape[0] != E or seen.shape[0] != E
            or w_att.shape[0] != E):
        raise ValueError("combine_units: the table has another layout")
    if (ep_ok.shape[0] != E or ep_err.shape[0] != E or ep_err.shape[1] != ne or ep_lsum.shape[0] != E
            or ep_hist.shape[0] != E or ep_hist.shape[1] != m):
        raise ValueError("combine_units: one output row per endpoint")
    if (S < 0 or sv_ok.shape[0] != S or sv_lsum.shape[0] != S or sv_wsum.shape[0] != S or sv_hist.shape[0] != S
            or sv_hist.shape[1] != m or sv_whist.shape[0] != S or sv_whist.shape[1] != m):
        raise ValueError("combine_units: one output row per service")
    if grp_off[0] != 0 or grp_off[S] > grp_ep.shape[0]:
        raise ValueError("combine_units: the groups overrun their endpoints")
    for s in range(S):
        if grp_off[s + 1] < grp_off[s]:
            raise ValueError("combine_units: the group offsets must ascend")
    for i in range(grp_off[S]):
        if grp_ep[i] < 0 or grp_ep[i] >= E:
            raise ValueError("combine_units: a group holds an endpoint out of range")
    if has_spans:
        t_span, ep_span, sv_span, sv_wspan = spans
        if (t_span.shape[0] != 3 or t_span.shape[1] != E or t_span.shape[2] != 2 or ep_span.shape[0] != E
                or ep_span.shape[1] != 2 or sv_span.shape[0] != S or sv_span.shape[1] != 2
                or sv_wspan.shape[0] != S or sv_wspan.shape[1] != 2):
            raise ValueError("combine_units: one span per table row and output row")
    with nogil:
        for e in range(E):
            ep_ok[e] = t_sc[e, 0]
            ep_lsum[e] = t_sc[e, 1]
            for j in range(ne):
                ep_err[e, j] = t_err[e, j]
            if seen[e] != stamp[e]:
                if has_spans:
                    _move_span(&ep_hist[e, 0], &ep_span[e, 0], &t_hist[0, e, 0], t_span[0, e, 0],
                               t_span[0, e, 1], m)
                else:
                    memcpy(&ep_hist[e, 0], &t_hist[0, e, 0], m * sizeof(double))
                seen[e] = stamp[e]
        for s in range(S):
            total = 0.0
            for i in range(grp_off[s], grp_off[s + 1]):
                total += w_att[grp_ep[i]]
            k = grp_off[s + 1] - grp_off[s]
            a_ok = 0.0
            a_lsum = 0.0
            a_wsum = 0.0
            first_sv = True
            first_w = True
            # The union of the spans of the rows summed (every bucket without spans or with a
            # weight that is not finite).
            finite = True
            u_lo[0] = u_lo[1] = m
            u_hi[0] = u_hi[1] = 0
            for i in range(grp_off[s], grp_off[s + 1]):
                e = grp_ep[i]
                w = w_att[e] / total if total > 0 else 1.0 / k
                finite = finite and isfinite(w)
                for j in range(2):
                    if t_has[e, j]:
                        if has_spans:
                            lo, hi = _clip(t_span[1 + j, e, 0], t_span[1 + j, e, 1], m)
                        else:
                            lo, hi = 0, m
                        if lo < u_lo[j]:
                            u_lo[j] = lo
                        if hi > u_hi[j]:
                            u_hi[j] = hi
            for j in range(2):
                if not finite or not has_spans:
                    u_lo[j] = 0
                    u_hi[j] = m
                elif u_hi[j] <= u_lo[j]:
                    u_lo[j] = u_hi[j] = 0
            for i in range(grp_off[s], grp_off[s + 1]):
                e = grp_ep[i]
                w = w_att[e] / total if total > 0 else 1.0 / k
                if t_has[e, 0]:
                    a_ok += w * t_sc[e, 2]
                    a_lsum += w * t_sc[e, 3]
                    _add_row(&sv_hist[s, u_lo[0]], &t_hist[1, e, u_lo[0]], w, first_sv, u_hi[0] - u_lo[0])
                    first_sv = False
                if t_has[e, 1]:
                    a_wsum += w * t_sc[e, 4]
                    _add_row(&sv_whist[s, u_lo[1]], &t_hist[2, e, u_lo[1]], w, first_w, u_hi[1] - u_lo[1])
                    first_w = False
            sv_ok[s] = a_ok
            sv_lsum[s] = a_lsum
            sv_wsum[s] = a_wsum
            if first_sv:
                u_lo[0] = u_hi[0] = 0
            if first_w:
                u_lo[1] = u_hi[1] = 0
            if has_spans:
                _clear_outside(&sv_hist[s, 0], &sv_span[s, 0], u_lo[0], u_hi[0], m)
                _clear_outside(&sv_whist[s, 0], &sv_wspan[s, 0], u_lo[1], u_hi[1], m)
            else:
                if first_sv:
                    memset(&sv_hist[s, 0], 0, m * sizeof(double))
                if first_w:
                    memset(&sv_whist[s, 0], 0, m * sizeof(double))


cdef inline void _clear_outside(double* row, long* span, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t m) noexcept nogil:
    """Zero what ``row`` held (within ``span``) outside ``[lo, hi)``, and make that its span."""
    cdef Py_ssize_t a, b, j
    a, b = _clip(span[0], span[1], m)
    for j in range(a, b):
        if j < lo or j >= hi:
            row[j] = 0.0
    span[0] = lo
    span[1] = hi


cdef inline void _move_span(double* row, long* span, const double* src, long lo, long hi, Py_ssize_t m) noexcept nogil:
    """``row[:] = src`` where ``src`` is +0.0 outside ``[lo, hi)`` and ``row`` outside ``span``:
    the old span cleared where the new one does not reach, the new one copied."""
    cdef Py_ssize_t a, b
    a, b = _clip(lo, hi, m)
    _clear_outside(row, span, a, b, m)
    if b > a:
        memcpy(&row[a], &src[a], (b - a) * sizeof(double))