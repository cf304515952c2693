# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The per-scrape arithmetic of :class:`devopsim.observe.scrape.Scraper` in one pass.

A scrape reads a few thousand numbers from the plane's per-replica arrays and writes them
into one row of the store. The NumPy path (``Scraper._values_numpy``, kept as the
reference) spends ~40 array calls on that, each costing more in call overhead than in
arithmetic; :class:`ScrapePlan` does the same element operations, in the same order, in two
calls (:meth:`ScrapePlan.row`: counters, pods, nodes; :meth:`ScrapePlan.tail`: what follows,
after the plane's class statistics were brought up to date), holding views of the arrays it
was last given so that the same arrays again cost no buffer acquisition. Every value is a
copy, one addition, one multiplication or a maximum with 0 (Python's ``max`` where the NumPy
path took it), so the bits are those of the NumPy path (the tests compare the stores of
whole runs).

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


cdef inline double _pymax(double a, double b) noexcept nogil:
    """Python's ``max(a, b)`` of two floats: ``b`` only if above ``a`` (so ``max(0.0, nan)``
    is 0.0 and ``max(nan, 0.0)`` NaN, as Python keeps the first of equals)."""
    return b if b > a else a


cdef class ScrapePlan:
    """One layout's gathers (set by the scraper when its layout or visibility changes).

    Counters: the source vector is, as in ``Scraper._counter_sources``, responses by
    replica, endpoint and code; answered (codes ``c200`` + ``c500``) by replica and endpoint;
    the cumulative buckets of the histograms ``hist_at`` (``nb`` per series); latency sums.
    ``gather`` picks the visible children (the first ``n_visible``), then the hidden ones.

    Pods: ``slots``, the base memory, leak per second and container start of each, and
    ``prev``/``delta`` ``(4, pods)`` (cpu, working set, rx, tx at the last scrape, and the
    increments since, for the node counters).

    Nodes (``set_nodes``): each pod's node, the nodes' cores, memory and filesystem, and their
    counters ``state`` ``(5, nodes)`` (user, idle, last t, rx, tx), moved on in place.
    """

    cdef long[::1] gather
    cdef long[::1] hist_at
    cdef double[::1] src
    cdef Py_ssize_t n_visible, nb, ncode, c200, c500
    cdef bint has_counters
    cdef long[::1] slots
    cdef double[::1] pbase, pleak, pstart, prev, delta
    cdef bint leaky
    cdef Py_ssize_t n_nodes
    cdef bint one_node
    cdef const long[::1] pnode
    cdef const double[::1] cores, mem_req, fs
    cdef double[::1] nsums
    cdef const unsigned char[::1] mem_fixed
    cdef double fs_size
    cdef double[:, ::1] state
    cdef double mem_per_request, request_bytes, response_bytes
    cdef Py_ssize_t off_tail
    cdef list workloads
    cdef const double[::1] dep
    # The arrays of the last call and their views: the same arrays again are not bound anew.
    cdef object o_cnt, o_hist, o_sum, o_cpu, o_busy, o_qlen, o_occ, o_barea, o_ans, o_out
    cdef object o_tot, o_pb, o_psum
    cdef const double[:, :, ::1] m_cnt, m_hist
    cdef const double[:, ::1] m_sum, m_tot, m_pb
    cdef const double[::1] m_cpu, m_busy, m_qlen, m_occ, m_barea, m_ans, m_psum
    cdef double[::1] m_out

    def __cinit__(self):
        self.has_counters = False
        self.n_nodes = 0
        self.one_node = False
        self.off_tail = 0
        self.workloads = []

    def set_counters(self, long[::1] gather, Py_ssize_t n_visible, long[::1] hist_at, Py_ssize_t nb,
                     Py_ssize_t ncode, Py_ssize_t c200, Py_ssize_t c500, double[::1] src):
        """The counter gathers (``src``: scratch, as long as the source vector)."""
        self.gather, self.n_visible, self.hist_at, self.nb = gather, n_visible, hist_at, nb
        self.ncode, self.c200, self.c500, self.src = ncode, c200, c500, src
        self.has_counters = True

    def clear_counters(self):
        """No counter children (a layout without endpoints): ``row`` writes none."""
        self.has_counters = False

    def set_pods(self, long[::1] slots, double[::1] pbase, double[::1] pleak, double[::1] pstart,
                 bint leaky, double[::1] prev, double[::1] delta,
                 double mem_per_request, double request_bytes, double response_bytes):
        """The pod gathers; ``prev`` and ``delta`` are ``(4, pods)`` arrays raveled (views)."""
        self.slots, self.pbase, self.pleak, self.pstart, self.leaky = slots, pbase, pleak, pstart, leaky
        self.prev, self.delta = prev, delta
        self.mem_per_request, self.request_bytes = mem_per_request, request_bytes
        self.response_bytes = response_bytes

    def set_nodes(self, Py_ssize_t n_nodes, bint one_node, const long[::1] pnode, const double[::1] cores,
                  const double[::1] mem_req, const unsigned char[::1] mem_fixed, const double[::1] fs,
                  double fs_size, double[:, ::1] state, double[::1] sums):
        """The nodes (none: no node series; ``one_node``: one node holding every pod, its sums
        taken as ``np.add.reduce`` takes them). ``sums``: scratch, 4 x nodes."""
        self.n_nodes, self.one_node = n_nodes, one_node
        if n_nodes:
            self.pnode, self.cores, self.mem_req = pnode, cores, mem_req
            self.mem_fixed, self.fs, self.fs_size = mem_fixed, fs, fs_size
            self.state, self.nsums = state, sums

    def set_workloads(self, list workloads, const double[::1] dep):
        """The workloads (``desired`` read at each scrape) and their three series' values
        (desired, live, ready; the last two fixed until the next layout)."""
        self.workloads, self.dep = workloads, dep

    cdef int _bind(self, rp, answered, out) except -1:
        """Views of the replica arrays of ``rp``, ``answered`` and ``out`` (the ones held
        already when the same objects come again)."""
        a = rp.cnt
        if a is not self.o_cnt:
            self.m_cnt = a
            self.o_cnt = a
        a = rp.lat_hist
        if a is not self.o_hist:
            self.m_hist = a
            self.o_hist = a
        a = rp.lat_sum
        if a is not self.o_sum:
            self.m_sum = a
            self.o_sum = a
        a = rp.cpu_area
        if a is not self.o_cpu:
            self.m_cpu = a
            self.o_cpu = a
        a = rp.busy
        if a is not self.o_busy:
            self.m_busy = a
            self.o_busy = a
        a = rp.qlen
        if a is not self.o_qlen:
            self.m_qlen = a
            self.o_qlen = a
        a = rp.occ_area
        if a is not self.o_occ:
            self.m_occ = a
            self.o_occ = a
        a = rp.busy_area
        if a is not self.o_barea:
            self.m_barea = a
            self.o_barea = a
        if answered is not self.o_ans:
            self.m_ans = answered
            self.o_ans = answered
        if out is not self.o_out:
            self.m_out = out
            self.o_out = out
        return 0

    def row(self, rp, answered, double t, out):
        """A scrape's row up to the workloads' series, from the replica arrays of ``rp``
        (``cnt``, ``lat_hist``, ``lat_sum``, ``cpu_area``, ``busy``, ``qlen``, ``occ_area``,
        ``busy_area``) and each pod's responses ``answered``: the visible counter children
        into ``out[:n_visible]``, then the pods' seven rows, then the nodes' series (their
        counters moved on). If hidden children are above 0 now, returns how many and writes
        nothing else (they become visible: the caller re-plans and calls again); else 0.
        What follows (:meth:`tail`) goes from where this stopped."""
        cdef Py_ssize_t n = 0, n_on, p = self.slots.shape[0]
        cdef Py_ssize_t off
        cdef double s0, s1, s2, s3
        self._bind(rp, answered, out)
        cdef double[::1] o = self.m_out
        if self.has_counters:
            n_on = self._counters(self.m_cnt, self.m_hist, self.m_sum, o)
            if n_on:
                return n_on
            n = self.n_visible
        track = self.n_nodes > 0
        self._pods(self.m_cpu, self.m_busy, self.m_qlen, self.m_occ, self.m_barea, self.m_ans, t, o, n, track)
        off = n + 7 * p
        if track and self.one_node:
            if p:
                s0 = _reduce(&self.delta[0], p)
                s1 = _reduce(&self.delta[2 * p], p)
                s2 = _reduce(&self.delta[3 * p], p)
                s3 = _reduce(&o[n + p], p)
            else:
                s0 = s1 = s2 = s3 = 0.0
            off = self._node1(t, s0, s1, s2, s3, o, off)
        elif track:
            off = self._nodes(t, o[n + p : n + 2 * p], o, off)
        self.off_tail = off
        return 0

    cdef Py_ssize_t _counters(self, const double[:, :, ::1] cnt3, const double[:, :, ::1] hist3,
                              const double[:, ::1] sum2, double[::1] out):
        """Write the visible counter children into ``out[:n_visible]``; return how many hidden
        ones are above 0 now."""
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
            for k in range(self.n_visible, gather.shape[0]):
                if src[gather[k]] > 0.0:
                    n_on += 1
            if n_on == 0:
                for k in range(self.n_visible):
                    out[k] = src[gather[k]]
        return n_on

    cdef void _pods(self, const double[::1] cpu_area, const double[::1] busy, const double[::1] qlen,
                    const double[::1] occ_area, const double[::1] busy_area, const double[::1] answered,
                    double t, double[::1] out, Py_ssize_t off, bint track):
        """Write the pods' seven rows (cpu, working set, rx, tx, in flight, queue length,
        queue seconds; ``pods`` values each) into ``out[off:]``; with ``track``, the
        increments since the last scrape into ``delta`` (and the values into ``prev``)."""
        cdef Py_ssize_t n = self.slots.shape[0]
        cdef Py_ssize_t p, s, r
        cdef double b, q, a, mem, rx, up, now
        cdef double mem_per_request = self.mem_per_request, request_bytes = self.request_bytes
        cdef double response_bytes = self.response_bytes
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

    cdef Py_ssize_t _node1(self, double t, double used, double nrx, double ntx, double ws,
                           double[::1] out, Py_ssize_t k):
        """``NodeSeries._node_out`` with one node holding every pod, from the sums over pods
        of the increments of cpu, rx and tx and of the working sets (Python's ``max``)."""
        cdef double[:, ::1] st = self.state
        cdef double mem0 = self.mem_req[0], total_mem
        st[0, 0] = st[0, 0] + used
        st[1, 0] = st[1, 0] + _pymax(0.0, self.cores[0] * _pymax(t - st[2, 0], 0.0) - used)
        st[2, 0] = t
        st[3, 0] = st[3, 0] + nrx
        st[4, 0] = st[4, 0] + ntx
        total_mem = mem0 if self.mem_fixed[0] else _pymax(mem0, ws)
        out[k] = st[1, 0]
        out[k + 1] = st[0, 0]
        out[k + 2] = total_mem
        out[k + 3] = _pymax(0.0, total_mem - ws)
        out[k + 4] = st[3, 0]
        out[k + 5] = st[4, 0]
        out[k + 6] = self.fs[0]
        out[k + 7] = self.fs_size
        return k + 8

    cdef Py_ssize_t _nodes(self, double t, const double[::1] ws, double[::1] out, Py_ssize_t off):
        """The nodes' series (``NodeSeries._node_out`` with several nodes, the same operations):
        per node the sums of the pods' increments of cpu, rx and tx (``delta`` rows 0, 2, 3)
        and of their working sets ``ws`` (pods in order, as ``np.bincount`` adds them; pods of
        node -1 left out), the counters in ``state`` (user, idle, last t, rx, tx) moved on,
        and eight values per node written into ``out[off:]``. Returns the index after the
        last value written."""
        cdef Py_ssize_t n = self.cores.shape[0], npod = self.pnode.shape[0]
        cdef Py_ssize_t p, b, k = off
        cdef double used, mem, ws_b
        cdef double[::1] sums = self.nsums
        cdef double[:, ::1] state = self.state
        cdef const long[::1] pnode = self.pnode
        cdef const double[::1] cores = self.cores, mem_req = self.mem_req, fs = self.fs
        cdef const unsigned char[::1] mem_fixed = self.mem_fixed
        cdef double fs_size = self.fs_size
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

    def tail(self, tot, pb, psum, double in_system):
        """Write what follows the nodes (``Scraper._tail``) into the ``out`` of the last
        :meth:`row`, from where it stopped: the workloads' series (``desired`` of each
        workload, then live and ready), then per class the outcome counters ``tot``, the
        cumulative latency buckets ``pb`` (``itertools.accumulate``: one addition per
        bucket, in order), the latency sums ``psum`` and the counts, then the requests in
        the system. Returns the index after it (float64 arrays only: ValueError else)."""
        if tot is not self.o_tot:
            self.m_tot = tot
            self.o_tot = tot
        if pb is not self.o_pb:
            self.m_pb = pb
            self.o_pb = pb
        if psum is not self.o_psum:
            self.m_psum = psum
            self.o_psum = psum
        cdef double[::1] out = self.m_out
        cdef const double[:, ::1] t2 = self.m_tot, p2 = self.m_pb
        cdef const double[::1] ps = self.m_psum, dep = self.dep
        cdef Py_ssize_t k = self.off_tail, c, j, w = 0
        cdef Py_ssize_t nc = t2.shape[0], nk = t2.shape[1], nbk = p2.shape[1]
        cdef double acc
        for wl in self.workloads:
            out[k] = float(wl.desired)
            out[k + 1] = dep[3 * w + 1]
            out[k + 2] = dep[3 * w + 2]
            k += 3
            w += 1
        for c in range(nc):
            for j in range(nk):
                out[k] = t2[c, j]
                k += 1
        for c in range(nc):
            if nbk:
                acc = p2[c, 0]
                out[k] = acc
                k += 1
                for j in range(1, nbk):
                    acc = acc + p2[c, j]
                    out[k] = acc
                    k += 1
        for c in range(nc):
            out[k] = ps[c]
            k += 1
        for c in range(nc):
            out[k] = t2[c, 0] if nk else 0.0
            k += 1
        out[k] = in_system
        return k + 1
