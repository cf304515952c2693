# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The per-scrape arithmetic of :class:`devopsim.observe.scrape.Scraper` in one pass.

A scrape reads a few thousand numbers from the plane's per-replica arrays and writes them
into one row of the store. The NumPy path (``Scraper._values_numpy``, kept as the
reference) spends ~40 array calls on that, each costing more in call overhead than in
arithmetic; :class:`ScrapePlan` does the same element operations, in the same order, in two
calls. Every value is a copy, one addition, one multiplication or a maximum with 0, so the
bits are those of the NumPy path (the tests compare the stores of whole runs).

What stays in NumPy: the per-pod sum of responses (a BLAS matrix-vector product, whose
summation order this file does not reproduce). The sums over pods for the implicit node
are NumPy's ``add.reduce`` rewritten (:func:`_reduce`: its pairwise summation, the same
additions in the same order).
"""

cdef inline double _maximum(double a, double b) noexcept nogil:
    """``np.maximum(a, b)``: ``a`` if above ``b`` or NaN, else ``b`` (so NaN propagates, and of
    two zeros the second is returned, as NumPy does)."""
    return a if (a > b or a != a) else b


cdef inline double _max0(double x) noexcept nogil:
    """``np.maximum(x, 0.0)``."""
    return _maximum(x, 0.0)


cdef double _pairwise(const double* a, Py_ssize_t n) noexcept nogil:
    """NumPy's ``pairwise_sum`` (``loops_utils.h``): blocks of up to 128 summed with eight
    interleaved accumulators, longer runs split in two at a multiple of 8."""
    cdef double r0, r1, r2, r3, r4, r5, r6, r7, res
    cdef Py_ssize_t i, n2
    if n < 8:
        res = 0.0
        for i in range(n):
            res = res + a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
        i = 8
        while i < n - (n % 8):
            r0 = r0 + a[i]
            r1 = r1 + a[i + 1]
            r2 = r2 + a[i + 2]
            r3 = r3 + a[i + 3]
            r4 = r4 + a[i + 4]
            r5 = r5 + a[i + 5]
            r6 = r6 + a[i + 6]
            r7 = r7 + a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res = res + a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, n2) + _pairwise(a + n2, n - n2)


cdef inline double _reduce(const double* a, Py_ssize_t n) noexcept nogil:
    """``np.add.reduce`` of a contiguous float64 run: the identity 0.0, plus the pairwise sum."""
    return 0.0 + _pairwise(a, n)


def reduce_sum(const double[::1] a):
    """``np.add.reduce(a)`` (for the tests: the same bits on any array)."""
    if a.shape[0] == 0:
        return 0.0
    return _reduce(&a[0], a.shape[0])


cdef class ScrapePlan:
    """One layout's gathers (set by the scraper when its layout or visibility changes).

    Counters: the source vector is, as in ``Scraper._counter_sources``, responses by
    replica, endpoint and code; answered (codes ``c200`` + ``c500``) by replica and endpoint;
    the cumulative buckets of the histograms ``hist_at`` (``nb`` per series); latency sums.
    ``gather`` picks the visible children (the first ``n_visible``), then the hidden ones.

    Pods: ``slots``, the base memory, leak per second and container start of each, and
    ``prev``/``delta`` ``(4, pods)`` (cpu, working set, rx, tx at the last scrape, and the
    increments since, for the node counters).
    """

    cdef long[::1] gather
    cdef long[::1] hist_at
    cdef double[::1] src
    cdef Py_ssize_t n_visible, nb, ncode, c200, c500
    cdef long[::1] slots
    cdef double[::1] pbase, pleak, pstart, prev, delta
    cdef bint leaky

    def set_counters(self, long[::1] gather, Py_ssize_t n_visible, long[::1] hist_at, Py_ssize_t nb,
                     Py_ssize_t ncode, Py_ssize_t c200, Py_ssize_t c500, double[::1] src):
        """The counter gathers (``src``: scratch, as long as the source vector)."""
        self.gather, self.n_visible, self.hist_at, self.nb = gather, n_visible, hist_at, nb
        self.ncode, self.c200, self.c500, self.src = ncode, c200, c500, src

    def set_pods(self, long[::1] slots, double[::1] pbase, double[::1] pleak, double[::1] pstart,
                 bint leaky, double[::1] prev, double[::1] delta):
        """The pod gathers; ``prev`` and ``delta`` are ``(4, pods)`` arrays raveled (views)."""
        self.slots, self.pbase, self.pleak, self.pstart, self.leaky = slots, pbase, pleak, pstart, leaky
        self.prev, self.delta = prev, delta

    def counters(self, const double[:, :, ::1] cnt3, const double[:, :, ::1] hist3,
                 const double[:, ::1] sum2, double[::1] out):
        """Write the visible counter children into ``out[:n_visible]``; return how many hidden
        ones are above 0 now (they become visible: the caller re-plans and calls again)."""
        cdef Py_ssize_t re = sum2.shape[0] * sum2.shape[1]
        cdef Py_ssize_t n_cnt = cnt3.shape[0] * cnt3.shape[1] * cnt3.shape[2]
        if re == 0:
            return 0
        cdef const double* cnt = &cnt3[0, 0, 0]
        cdef const double* hist = &hist3[0, 0, 0]
        cdef const double* lat_sum = &sum2[0, 0]
        cdef Py_ssize_t nb = self.nb, ncode = self.ncode, c200 = self.c200, c500 = self.c500
        cdef Py_ssize_t o_cum = n_cnt + re
        cdef Py_ssize_t n_hist = self.hist_at.shape[0]
        cdef Py_ssize_t o_sum = o_cum + n_hist
        cdef Py_ssize_t i, j, b, k, n_on = 0
        cdef double acc
        cdef double[::1] src = self.src
        cdef long[::1] hist_at = self.hist_at
        cdef long[::1] gather = self.gather
        with nogil:
            for i in range(n_cnt):
                src[i] = cnt[i]
            for j in range(re):
                src[n_cnt + j] = cnt[j * ncode + c200] + cnt[j * ncode + c500]
            # cumulative buckets, series by series (np.add.accumulate: out[b] = out[b-1] + in[b])
            i = 0
            while i < n_hist:
                acc = hist[hist_at[i]]
                src[o_cum + i] = acc
                for b in range(1, nb):
                    acc = acc + hist[hist_at[i + b]]
                    src[o_cum + i + b] = acc
                i += nb
            for j in range(re):
                src[o_sum + j] = lat_sum[j]
            for k in range(self.n_visible):
                out[k] = src[gather[k]]
            for k in range(self.n_visible, gather.shape[0]):
                if src[gather[k]] > 0.0:
                    n_on += 1
        return n_on

    def pods(self, const double[::1] cpu_area, const double[::1] busy, const double[::1] qlen,
             const double[::1] occ_area, const double[::1] busy_area, const double[::1] answered,
             double t, double[::1] out, Py_ssize_t off, bint track,
             double mem_per_request, double request_bytes, double response_bytes):
        """Write the pods' seven rows (cpu, working set, rx, tx, in flight, queue length,
        queue seconds; ``pods`` values each) into ``out[off:]``; with ``track``, the
        increments since the last scrape into ``delta`` (and the values into ``prev``), and
        return the sums over pods of the increments of cpu, rx and tx and of the working sets
        (as ``np.add.reduce`` sums them), else None."""
        cdef Py_ssize_t n = self.slots.shape[0]
        cdef Py_ssize_t p, s, r
        cdef double b, q, a, mem, rx, up, now
        cdef long[::1] slots = self.slots
        with nogil:
            for p in range(n):
                s = slots[p]
                b = busy[s]
                q = qlen[s]
                a = answered[p]
                if self.leaky:
                    up = _max0(t - self.pstart[p])
                    mem = (self.pbase[p] + mem_per_request * b) + self.pleak[p] * up
                else:
                    mem = b * mem_per_request + self.pbase[p]
                rx = ((a + b) + q) * request_bytes
                out[off + p] = cpu_area[s]
                out[off + n + p] = mem
                out[off + 2 * n + p] = rx
                out[off + 3 * n + p] = a * response_bytes
                out[off + 4 * n + p] = b
                out[off + 5 * n + p] = q
                out[off + 6 * n + p] = _max0(occ_area[s] - busy_area[s])
            if track:
                for r in range(4):
                    for p in range(n):
                        now = out[off + r * n + p]
                        self.delta[r * n + p] = _max0(now - self.prev[r * n + p])
                        self.prev[r * n + p] = now
        if not track:
            return None
        if n == 0:
            return (0.0, 0.0, 0.0, 0.0)
        return (
            _reduce(&self.delta[0], n),
            _reduce(&self.delta[2 * n], n),
            _reduce(&self.delta[3 * n], n),
            _reduce(&out[off + n], n),
        )

    def nodes(self, double t, const long[::1] pnode, const double[::1] ws, const double[::1] cores,
              const double[::1] mem_req, const unsigned char[::1] mem_fixed, const double[::1] fs,
              double fs_size, double[:, ::1] state, double[::1] sums, double[::1] out, Py_ssize_t off):
        """The nodes' series (``NodeSeries._node_out`` with several nodes, the same operations):
        per node the sums of the pods' increments of cpu, rx and tx (``delta`` rows 0, 2, 3)
        and of their working sets ``ws`` (pods in order, as ``np.bincount`` adds them; pods of
        node -1 left out), the counters in ``state`` (user, idle, last t, rx, tx) moved on,
        and eight values per node written into ``out[off:]``; ``sums`` is scratch (4 x nodes).
        Returns the index after the last value written."""
        cdef Py_ssize_t n = cores.shape[0], npod = pnode.shape[0]
        cdef Py_ssize_t p, b, k = off
        cdef double used, mem, ws_b
        with nogil:
            for b in range(4 * n):
                sums[b] = 0.0
            for p in range(npod):
                b = pnode[p]
                if b < 0:
                    continue
                sums[b] = sums[b] + self.delta[p]
                sums[n + b] = sums[n + b] + self.delta[2 * npod + p]
                sums[2 * n + b] = sums[2 * n + b] + self.delta[3 * npod + p]
                sums[3 * n + b] = sums[3 * n + b] + ws[p]
            for b in range(n):
                used = sums[b]
                state[0, b] = state[0, b] + used
                state[1, b] = state[1, b] + _maximum(0.0, cores[b] * _max0(t - state[2, b]) - used)
                state[2, b] = t
                state[3, b] = state[3, b] + sums[n + b]
                state[4, b] = state[4, b] + sums[2 * n + b]
                ws_b = sums[3 * n + b]
                mem = mem_req[b] if mem_fixed[b] else _maximum(mem_req[b], ws_b)
                out[k] = state[1, b]
                out[k + 1] = state[0, b]
                out[k + 2] = mem
                out[k + 3] = _maximum(0.0, mem - ws_b)
                out[k + 4] = state[3, b]
                out[k + 5] = state[4, b]
                out[k + 6] = fs[b]
                out[k + 7] = fs_size
                k += 8
        return k

    def tail(self, double[::1] out, Py_ssize_t off, list nodes, list dep, const double[:, ::1] tot,
             const double[:, ::1] pb, const double[::1] psum, double in_system):
        """Write what follows the pods (``Scraper._tail``): the nodes' and the workloads'
        series, then per class the outcome counters, the cumulative latency buckets
        (``itertools.accumulate``: one addition per bucket, in order), the latency sums and
        the counts, then the requests in the system."""
        cdef Py_ssize_t k = off, c, j
        cdef Py_ssize_t nc = tot.shape[0], nk = tot.shape[1], nbk = pb.shape[1]
        cdef double acc
        for x in nodes:
            out[k] = x
            k += 1
        for x in dep:
            out[k] = x
            k += 1
        for c in range(nc):
            for j in range(nk):
                out[k] = tot[c, j]
                k += 1
        for c in range(nc):
            if nbk:
                acc = pb[c, 0]
                out[k] = acc
                k += 1
                for j in range(1, nbk):
                    acc = acc + pb[c, j]
                    out[k] = acc
                    k += 1
        for c in range(nc):
            out[k] = psum[c]
            k += 1
        for c in range(nc):
            out[k] = tot[c, 0] if nk else 0.0
            k += 1
        out[k] = in_system
        return k + 1
