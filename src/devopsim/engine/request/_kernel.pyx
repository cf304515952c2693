# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: nonecheck=False, infer_types=True
"""The request plane's event loop, compiled with Cython.

Every request is an entity: a *request* (what a user sent, possibly a journey
of several calls), *calls* (a logical call to an endpoint, with its retries)
and *frames* (one attempt of a call at one replica, with a program counter
into the endpoint's steps). Events live in a binary heap ordered by
``(time, sequence)``, so ties run first-in first-out and runs are
deterministic; what must happen "now" (a frame starting, an attempt's
outcome reaching its caller) goes through a FIFO instead, which keeps every
handler free of recursion.

The kernel never draws random numbers itself: it reads them from per-stream
buffers that the driver fills from named NumPy generators, and returns
``ST_REFILL`` when a buffer runs low, ``ST_GROW`` when entity tables run low,
and ``ST_DONE`` when the window ``[now, t_end)`` is simulated. State lives
entirely in NumPy arrays owned by the driver (see ``layout.py``), so a call
resumes exactly where the last one stopped.

CPU: a replica has ``concurrency`` workers and ``cores`` CPUs. A request holds
a worker from start to finish (also while it waits or calls others); its
``work`` steps share the replica's cores by egalitarian processor sharing,
each progressing at ``min(1, cores / n)`` when ``n`` are in a work step.
When ``cores >= concurrency`` sharing never happens, and work completes
after exactly its sampled time.
"""

from libc.math cimport log, pow, fabs, sqrt, cos, INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free

# --- constants (mirrored in layout.py; a test checks they agree) ------------------------
cdef enum:
    OP_WORK = 0
    OP_WAIT = 1
    OP_CALL = 2
    OP_PAR = 3
    OP_NOP = 4
    OP_END = 5

cdef enum:
    LB_ROUND_ROBIN = 0
    LB_RANDOM = 1
    LB_LEAST_REQUEST = 2
    LB_LEAST_OUTSTANDING = 3
    LB_WEIGHTED = 4

cdef enum:
    ERR_TIMEOUT = 0
    ERR_REJECTED = 1
    ERR_DOWNSTREAM = 2
    ERR_INJECTED = 3
    ERR_UNAVAILABLE = 4
    ERR_BREAKER = 5
    N_ERR = 5
    OK = -1

cdef enum:
    CODE_200 = 0
    CODE_500 = 1
    CODE_503 = 2
    CODE_504 = 3
    N_CODES = 4

cdef enum:
    EV_WORK_DONE = 1
    EV_PS_DONE = 2
    EV_WAIT_DONE = 3
    EV_TIMEOUT = 4
    EV_RETRY = 5
    EV_SEND = 6
    NQ_START = 10
    NQ_ATTEMPT_DONE = 11

cdef enum:
    FS_FREE = 0
    FS_QUEUED = 1
    FS_RUNNING = 2
    FS_DONE = 3

cdef enum:
    ST_DONE = 0
    ST_REFILL = 1
    ST_GROW = 2
    ST_ERROR = 3

cdef enum:
    I_HEAP_N = 0
    I_SEQ = 1
    I_UID = 2
    I_FR_FREE = 3
    I_CA_FREE = 4
    I_RQ_FREE = 5
    I_IN_SYSTEM = 6
    I_REFILL = 7
    I_ARR_POS = 8
    I_NQ_HEAD = 9
    I_NQ_TAIL = 10
    I_ERROR = 11
    I_ARRIVED_W = 12
    I_MARGIN = 13
    I_SMARGIN = 14

cdef enum:
    F_NOW = 0
    F_LITTLE_AREA = 1
    F_LITTLE_LAST = 2
    F_WARMUP = 3

cdef double LH_MIN = 1e-6
cdef double LH_RATIO = 1.01

CONSTANTS = {
    "OP_WORK": OP_WORK, "OP_WAIT": OP_WAIT, "OP_CALL": OP_CALL, "OP_PAR": OP_PAR, "OP_NOP": OP_NOP,
    "OP_END": OP_END, "LB_ROUND_ROBIN": LB_ROUND_ROBIN, "LB_RANDOM": LB_RANDOM,
    "LB_LEAST_REQUEST": LB_LEAST_REQUEST, "LB_LEAST_OUTSTANDING": LB_LEAST_OUTSTANDING,
    "LB_WEIGHTED": LB_WEIGHTED, "ERR_TIMEOUT": ERR_TIMEOUT, "ERR_REJECTED": ERR_REJECTED,
    "ERR_DOWNSTREAM": ERR_DOWNSTREAM, "ERR_INJECTED": ERR_INJECTED, "ERR_UNAVAILABLE": ERR_UNAVAILABLE,
    "ERR_BREAKER": ERR_BREAKER, "N_ERR": N_ERR, "OK": OK, "CODE_200": CODE_200, "CODE_500": CODE_500,
    "CODE_503": CODE_503, "CODE_504": CODE_504, "N_CODES": N_CODES, "EV_WORK_DONE": EV_WORK_DONE,
    "EV_PS_DONE": EV_PS_DONE, "EV_WAIT_DONE": EV_WAIT_DONE, "EV_TIMEOUT": EV_TIMEOUT,
    "EV_RETRY": EV_RETRY, "EV_SEND": EV_SEND, "NQ_START": NQ_START, "NQ_ATTEMPT_DONE": NQ_ATTEMPT_DONE,
    "FS_FREE": FS_FREE, "FS_QUEUED": FS_QUEUED, "FS_RUNNING": FS_RUNNING, "FS_DONE": FS_DONE,
    "ST_DONE": ST_DONE, "ST_REFILL": ST_REFILL, "ST_GROW": ST_GROW, "ST_ERROR": ST_ERROR,
    "I_HEAP_N": I_HEAP_N, "I_SEQ": I_SEQ, "I_UID": I_UID, "I_FR_FREE": I_FR_FREE,
    "I_CA_FREE": I_CA_FREE, "I_RQ_FREE": I_RQ_FREE, "I_IN_SYSTEM": I_IN_SYSTEM, "I_REFILL": I_REFILL,
    "I_ARR_POS": I_ARR_POS, "I_NQ_HEAD": I_NQ_HEAD, "I_NQ_TAIL": I_NQ_TAIL, "I_ERROR": I_ERROR,
    "I_ARRIVED_W": I_ARRIVED_W, "I_MARGIN": I_MARGIN, "I_SMARGIN": I_SMARGIN, "F_NOW": F_NOW,
    "F_LITTLE_AREA": F_LITTLE_AREA, "F_LITTLE_LAST": F_LITTLE_LAST, "F_WARMUP": F_WARMUP,
    "LH_MIN": LH_MIN, "LH_RATIO": LH_RATIO,
}

ctypedef int64_t i64


cdef struct Ctx:
    # static
    i64* svc_conc
    i64* svc_qcap
    double* svc_cores
    i64* svc_ps
    i64* svc_lb
    i64* svc_err_smp
    i64* svc_lb_smp
    i64* ready_off
    i64* ready_idx
    i64* ep_svc
    i64* ep_prog
    i64* ep_local
    double* ep_timeout
    i64* ep_retries
    double* ep_backoff
    double* ep_maxbackoff
    i64* ep_jitter_smp
    i64* ep_retry_mask
    i64* ep_cb
    double* ep_cb_thr
    i64* ep_cb_win
    i64* ep_cb_min
    double* ep_cb_wait
    i64* ep_cb_half
    i64* ep_cb_off
    i64* prog_op
    i64* prog_a
    i64* prog_b
    double* prog_p
    i64* cls_entry_off
    i64* cls_entry_len
    i64* entries
    i64* slo_cls
    double* slo_thr
    i64 n_slo
    double* ver_err
    double* ver_lat
    double* prom_buckets
    i64 n_pb_bounds
    double* svc_delay
    double* svc_loss
    double* cls_delay
    double* svc_jitter
    # replicas
    i64* r_svc
    i64* r_ver
    i64* r_busy
    i64* r_qhead
    i64* r_qtail
    i64* r_qlen
    i64* r_ncpu
    double* r_vt
    double* r_vlast
    i64* r_epoch
    i64* r_psoff
    i64* r_psn
    double* r_cpu_area
    double* r_busy_area
    double* r_occ_area
    double* r_area_last
    double* r_weight
    i64* r_cnt
    double* r_lat_sum
    i64* r_lat_hist
    double* ps_f
    i64* ps_fr
    i64 lmax
    i64 n_pb
    # entities
    i64* fr_uid
    i64* fr_call
    i64* fr_auid
    i64* fr_rep
    i64* fr_ep
    i64* fr_pc
    i64* fr_pend
    i64* fr_state
    double* fr_tarr
    double* fr_tstart
    double* fr_deadline
    i64* fr_next
    i64* fr_free
    i64 n_frames
    i64* ca_uid
    i64* ca_ep
    i64* ca_pfr
    i64* ca_pfuid
    i64* ca_req
    i64* ca_att
    i64* ca_auid
    i64* ca_fr
    double* ca_t0
    i64* ca_free
    i64* rq_cls
    double* rq_t0
    i64* rq_stage
    i64* rq_free
    # queues
    double* hp_t
    i64* hp_seq
    i64* hp_kind
    i64* hp_id
    i64* hp_tag
    i64 hp_cap
    i64* nq_kind
    i64* nq_id
    i64* nq_tag
    i64* nq_arg
    i64 nq_cap
    double* smp_buf
    i64* smp_pos
    i64 smp_b
    i64* cb_state
    double* cb_until
    i64* cb_ring
    i64* cb_pos
    i64* cb_count
    i64* cb_fail
    i64* cb_hcalls
    i64* cb_hdone
    i64* cb_hfail
    i64* ic
    double* fc
    # stats
    i64* cls_n
    i64* cls_ok
    i64* cls_err
    double* cls_lsum
    i64* cls_hist
    double* cls_asum
    i64* ep_n
    i64* ep_ok
    i64* ep_err
    double* ep_lsum
    i64* ep_hist
    i64* sv_n
    i64* sv_err
    i64* sv_ok
    double* sv_lsum
    i64* sv_hist
    i64* sv_wn
    double* sv_wsum
    i64* sv_whist
    i64* slo_good
    i64* cls_tot
    i64* cls_pb
    double* cls_psum
    i64* cls_arr
    i64 lh_n
    i64* rr
    double inv_log_r


# --- binding NumPy arrays ------------------------------------------------------------------

cdef i64 _dummy_i[1]
cdef double _dummy_f[1]


cdef i64* _pi(object a) except NULL:
    cdef i64[::1] v
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.shape[0] == 0:
        return _dummy_i
    v = a
    return &v[0]


cdef double* _pf(object a) except NULL:
    cdef double[::1] v
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.shape[0] == 0:
        return _dummy_f
    v = a
    return &v[0]


cdef int _bind(Ctx* c, object s, object rp, object e, object q, object st, object rr) except -1:
    for arr in (*s, *rp, *e, *q, *st, rr):
        if not arr.flags.c_contiguous:
            raise ValueError("the request plane's arrays must be C-contiguous")
    c.svc_conc = _pi(s.svc_conc)
    c.svc_qcap = _pi(s.svc_qcap)
    c.svc_cores = _pf(s.svc_cores)
    c.svc_ps = _pi(s.svc_ps)
    c.svc_lb = _pi(s.svc_lb)
    c.svc_err_smp = _pi(s.svc_err_smp)
    c.svc_lb_smp = _pi(s.svc_lb_smp)
    c.ready_off = _pi(s.ready_off)
    c.ready_idx = _pi(s.ready_idx)
    c.ep_svc = _pi(s.ep_svc)
    c.ep_prog = _pi(s.ep_prog)
    c.ep_local = _pi(s.ep_local)
    c.ep_timeout = _pf(s.ep_timeout)
    c.ep_retries = _pi(s.ep_retries)
    c.ep_backoff = _pf(s.ep_backoff)
    c.ep_maxbackoff = _pf(s.ep_maxbackoff)
    c.ep_jitter_smp = _pi(s.ep_jitter_smp)
    c.ep_retry_mask = _pi(s.ep_retry_mask)
    c.ep_cb = _pi(s.ep_cb)
    c.ep_cb_thr = _pf(s.ep_cb_thr)
    c.ep_cb_win = _pi(s.ep_cb_win)
    c.ep_cb_min = _pi(s.ep_cb_min)
    c.ep_cb_wait = _pf(s.ep_cb_wait)
    c.ep_cb_half = _pi(s.ep_cb_half)
    c.ep_cb_off = _pi(s.ep_cb_off)
    c.prog_op = _pi(s.prog_op)
    c.prog_a = _pi(s.prog_a)
    c.prog_b = _pi(s.prog_b)
    c.prog_p = _pf(s.prog_p)
    c.cls_entry_off = _pi(s.cls_entry_off)
    c.cls_entry_len = _pi(s.cls_entry_len)
    c.entries = _pi(s.entries)
    c.slo_cls = _pi(s.slo_cls)
    c.slo_thr = _pf(s.slo_thr)
    c.n_slo = s.slo_cls.shape[0]
    c.ver_err = _pf(s.ver_err)
    c.ver_lat = _pf(s.ver_lat)
    c.prom_buckets = _pf(s.prom_buckets)
    c.n_pb_bounds = s.prom_buckets.shape[0]
    c.svc_delay = _pf(s.svc_delay)
    c.svc_loss = _pf(s.svc_loss)
    c.cls_delay = _pf(s.cls_delay)
    c.svc_jitter = _pf(s.svc_jitter)
    c.r_svc = _pi(rp.svc)
    c.r_ver = _pi(rp.ver)
    c.r_busy = _pi(rp.busy)
    c.r_qhead = _pi(rp.qhead)
    c.r_qtail = _pi(rp.qtail)
    c.r_qlen = _pi(rp.qlen)
    c.r_ncpu = _pi(rp.ncpu)
    c.r_vt = _pf(rp.vt)
    c.r_vlast = _pf(rp.vlast)
    c.r_epoch = _pi(rp.epoch)
    c.r_psoff = _pi(rp.psoff)
    c.r_psn = _pi(rp.psn)
    c.r_cpu_area = _pf(rp.cpu_area)
    c.r_busy_area = _pf(rp.busy_area)
    c.r_occ_area = _pf(rp.occ_area)
    c.r_area_last = _pf(rp.area_last)
    c.r_weight = _pf(rp.weight)
    c.r_cnt = _pi(rp.cnt)
    c.r_lat_sum = _pf(rp.lat_sum)
    c.r_lat_hist = _pi(rp.lat_hist)
    c.ps_f = _pf(rp.ps_f)
    c.ps_fr = _pi(rp.ps_fr)
    c.lmax = rp.cnt.shape[1]
    c.n_pb = rp.lat_hist.shape[2]
    c.fr_uid = _pi(e.fr_uid)
    c.fr_call = _pi(e.fr_call)
    c.fr_auid = _pi(e.fr_auid)
    c.fr_rep = _pi(e.fr_rep)
    c.fr_ep = _pi(e.fr_ep)
    c.fr_pc = _pi(e.fr_pc)
    c.fr_pend = _pi(e.fr_pend)
    c.fr_state = _pi(e.fr_state)
    c.fr_tarr = _pf(e.fr_tarr)
    c.fr_tstart = _pf(e.fr_tstart)
    c.fr_deadline = _pf(e.fr_deadline)
    c.fr_next = _pi(e.fr_next)
    c.fr_free = _pi(e.fr_free)
    c.n_frames = e.fr_uid.shape[0]
    c.ca_uid = _pi(e.ca_uid)
    c.ca_ep = _pi(e.ca_ep)
    c.ca_pfr = _pi(e.ca_pfr)
    c.ca_pfuid = _pi(e.ca_pfuid)
    c.ca_req = _pi(e.ca_req)
    c.ca_att = _pi(e.ca_att)
    c.ca_auid = _pi(e.ca_auid)
    c.ca_fr = _pi(e.ca_fr)
    c.ca_t0 = _pf(e.ca_t0)
    c.ca_free = _pi(e.ca_free)
    c.rq_cls = _pi(e.rq_cls)
    c.rq_t0 = _pf(e.rq_t0)
    c.rq_stage = _pi(e.rq_stage)
    c.rq_free = _pi(e.rq_free)
    c.hp_t = _pf(q.hp_t)
    c.hp_seq = _pi(q.hp_seq)
    c.hp_kind = _pi(q.hp_kind)
    c.hp_id = _pi(q.hp_id)
    c.hp_tag = _pi(q.hp_tag)
    c.hp_cap = q.hp_t.shape[0]
    c.nq_kind = _pi(q.nq_kind)
    c.nq_id = _pi(q.nq_id)
    c.nq_tag = _pi(q.nq_tag)
    c.nq_arg = _pi(q.nq_arg)
    c.nq_cap = q.nq_kind.shape[0]
    c.smp_buf = _pf(q.smp_buf)
    c.smp_pos = _pi(q.smp_pos)
    c.smp_b = q.smp_buf.shape[1]
    c.cb_state = _pi(q.cb_state)
    c.cb_until = _pf(q.cb_until)
    c.cb_ring = _pi(q.cb_ring)
    c.cb_pos = _pi(q.cb_pos)
    c.cb_count = _pi(q.cb_count)
    c.cb_fail = _pi(q.cb_fail)
    c.cb_hcalls = _pi(q.cb_hcalls)
    c.cb_hdone = _pi(q.cb_hdone)
    c.cb_hfail = _pi(q.cb_hfail)
    c.ic = _pi(q.ic)
    c.fc = _pf(q.fc)
    c.cls_n = _pi(st.cls_n)
    c.cls_ok = _pi(st.cls_ok)
    c.cls_err = _pi(st.cls_err)
    c.cls_lsum = _pf(st.cls_lsum)
    c.cls_hist = _pi(st.cls_hist)
    c.cls_asum = _pf(st.cls_asum)
    c.ep_n = _pi(st.ep_n)
    c.ep_ok = _pi(st.ep_ok)
    c.ep_err = _pi(st.ep_err)
    c.ep_lsum = _pf(st.ep_lsum)
    c.ep_hist = _pi(st.ep_hist)
    c.sv_n = _pi(st.sv_n)
    c.sv_err = _pi(st.sv_err)
    c.sv_ok = _pi(st.sv_ok)
    c.sv_lsum = _pf(st.sv_lsum)
    c.sv_hist = _pi(st.sv_hist)
    c.sv_wn = _pi(st.sv_wn)
    c.sv_wsum = _pf(st.sv_wsum)
    c.sv_whist = _pi(st.sv_whist)
    c.slo_good = _pi(st.slo_good)
    c.cls_tot = _pi(st.cls_tot)
    c.cls_pb = _pi(st.cls_pb)
    c.cls_psum = _pf(st.cls_psum)
    c.cls_arr = _pi(st.cls_arr)
    c.lh_n = st.cls_hist.shape[1]
    c.rr = _pi(rr)
    c.inv_log_r = 1.0 / log(LH_RATIO)
    return 0


# --- small helpers --------------------------------------------------------------------------

cdef inline i64 lh_index(Ctx* c, double x) noexcept nogil:
    if x < LH_MIN:
        return 0
    cdef i64 i = 1 + <i64>(log(x / LH_MIN) * c.inv_log_r)
    return i if i < c.lh_n else c.lh_n - 1


cdef inline i64 pb_index(Ctx* c, double x) noexcept nogil:
    cdef i64 i = 0
    while i < c.n_pb_bounds and x > c.prom_buckets[i]:
        i += 1
    return i


cdef inline double draw(Ctx* c, i64 k) noexcept nogil:
    cdef i64 pos = c.smp_pos[k]
    if pos >= c.smp_b:
        c.ic[I_ERROR] = 2  # a step drew more than the margin allows
        return 0.5
    cdef double v = c.smp_buf[k * c.smp_b + pos]
    pos += 1
    c.smp_pos[k] = pos
    if pos >= c.smp_b - c.ic[I_SMARGIN]:
        c.ic[I_REFILL] = 1
    return v


cdef inline i64 new_uid(Ctx* c) noexcept nogil:
    c.ic[I_UID] += 1
    return c.ic[I_UID]


# --- the event heap -------------------------------------------------------------------------

cdef inline bint _before(double t1, i64 s1, double t2, i64 s2) noexcept nogil:
    return t1 < t2 or (t1 == t2 and s1 < s2)


cdef void push(Ctx* c, double t, i64 kind, i64 ident, i64 tag) noexcept nogil:
    cdef i64 n = c.ic[I_HEAP_N]
    if n >= c.hp_cap:
        c.ic[I_ERROR] = 3
        return
    cdef i64 seq = c.ic[I_SEQ]
    c.ic[I_SEQ] = seq + 1
    cdef i64 i = n
    cdef i64 parent
    while i > 0:
        parent = (i - 1) >> 1
        if _before(c.hp_t[parent], c.hp_seq[parent], t, seq):
            break
        c.hp_t[i] = c.hp_t[parent]
        c.hp_seq[i] = c.hp_seq[parent]
        c.hp_kind[i] = c.hp_kind[parent]
        c.hp_id[i] = c.hp_id[parent]
        c.hp_tag[i] = c.hp_tag[parent]
        i = parent
    c.hp_t[i] = t
    c.hp_seq[i] = seq
    c.hp_kind[i] = kind
    c.hp_id[i] = ident
    c.hp_tag[i] = tag
    c.ic[I_HEAP_N] = n + 1


cdef void pop(Ctx* c) noexcept nogil:
    """Remove the heap's top (read it first from index 0)."""
    cdef i64 n = c.ic[I_HEAP_N] - 1
    c.ic[I_HEAP_N] = n
    if n == 0:
        return
    cdef double t = c.hp_t[n]
    cdef i64 seq = c.hp_seq[n]
    cdef i64 kind = c.hp_kind[n]
    cdef i64 ident = c.hp_id[n]
    cdef i64 tag = c.hp_tag[n]
    cdef i64 i = 0
    cdef i64 ch, r
    while True:
        ch = 2 * i + 1
        if ch >= n:
            break
        r = ch + 1
        if r < n and _before(c.hp_t[r], c.hp_seq[r], c.hp_t[ch], c.hp_seq[ch]):
            ch = r
        if _before(t, seq, c.hp_t[ch], c.hp_seq[ch]):
            break
        c.hp_t[i] = c.hp_t[ch]
        c.hp_seq[i] = c.hp_seq[ch]
        c.hp_kind[i] = c.hp_kind[ch]
        c.hp_id[i] = c.hp_id[ch]
        c.hp_tag[i] = c.hp_tag[ch]
        i = ch
    c.hp_t[i] = t
    c.hp_seq[i] = seq
    c.hp_kind[i] = kind
    c.hp_id[i] = ident
    c.hp_tag[i] = tag


cdef inline void nq_push(Ctx* c, i64 kind, i64 ident, i64 tag, i64 arg) noexcept nogil:
    cdef i64 tail = c.ic[I_NQ_TAIL]
    if tail - c.ic[I_NQ_HEAD] >= c.nq_cap:
        c.ic[I_ERROR] = 1
        return
    cdef i64 j = tail % c.nq_cap
    c.nq_kind[j] = kind
    c.nq_id[j] = ident
    c.nq_tag[j] = tag
    c.nq_arg[j] = arg
    c.ic[I_NQ_TAIL] = tail + 1


# --- replica accounting and processor sharing -----------------------------------------------------

cdef inline void areas(Ctx* c, i64 r, double now) noexcept nogil:
    cdef double dt = now - c.r_area_last[r]
    cdef double cores, n
    if dt > 0.0:
        cores = c.svc_cores[c.r_svc[r]]
        n = <double>c.r_ncpu[r]
        c.r_cpu_area[r] += (n if n < cores else cores) * dt
        c.r_busy_area[r] += c.r_busy[r] * dt
        c.r_occ_area[r] += (c.r_busy[r] + c.r_qlen[r]) * dt
        c.r_area_last[r] = now


cdef inline double ps_rate(Ctx* c, i64 r) noexcept nogil:
    cdef double n = <double>c.r_ncpu[r]
    cdef double cores = c.svc_cores[c.r_svc[r]]
    return 1.0 if n <= cores else cores / n


cdef inline void ps_advance(Ctx* c, i64 r, double now) noexcept nogil:
    if c.r_ncpu[r] > 0:
        c.r_vt[r] += (now - c.r_vlast[r]) * ps_rate(c, r)
    c.r_vlast[r] = now


cdef void ps_schedule(Ctx* c, i64 r, double now) noexcept nogil:
    c.r_epoch[r] += 1
    if c.r_psn[r] == 0:
        return
    cdef double fmin = c.ps_f[c.r_psoff[r]]
    cdef double dt = (fmin - c.r_vt[r]) / ps_rate(c, r)
    if dt < 0.0:
        dt = 0.0
    push(c, now + dt, EV_PS_DONE, r, c.r_epoch[r])


cdef void ps_heap_push(Ctx* c, i64 r, double f_val, i64 frame) noexcept nogil:
    cdef i64 off = c.r_psoff[r]
    cdef i64 i = c.r_psn[r]
    cdef i64 parent
    while i > 0:
        parent = (i - 1) >> 1
        if c.ps_f[off + parent] <= f_val:
            break
        c.ps_f[off + i] = c.ps_f[off + parent]
        c.ps_fr[off + i] = c.ps_fr[off + parent]
        i = parent
    c.ps_f[off + i] = f_val
    c.ps_fr[off + i] = frame
    c.r_psn[r] += 1


cdef i64 ps_heap_pop(Ctx* c, i64 r) noexcept nogil:
    cdef i64 off = c.r_psoff[r]
    cdef i64 top = c.ps_fr[off]
    cdef i64 n = c.r_psn[r] - 1
    c.r_psn[r] = n
    cdef double f_val
    cdef i64 fr, i, ch
    if n > 0:
        f_val = c.ps_f[off + n]
        fr = c.ps_fr[off + n]
        i = 0
        while True:
            ch = 2 * i + 1
            if ch >= n:
                break
            if ch + 1 < n and c.ps_f[off + ch + 1] < c.ps_f[off + ch]:
                ch += 1
            if c.ps_f[off + ch] >= f_val:
                break
            c.ps_f[off + i] = c.ps_f[off + ch]
            c.ps_fr[off + i] = c.ps_fr[off + ch]
            i = ch
        c.ps_f[off + i] = f_val
        c.ps_fr[off + i] = fr
    return top


# --- entities ----------------------------------------------------------------------------------

cdef inline i64 alloc_frame(Ctx* c) noexcept nogil:
    cdef i64 n = c.ic[I_FR_FREE] - 1
    if n < 0:
        c.ic[I_ERROR] = 3
        n = 0
    c.ic[I_FR_FREE] = n
    cdef i64 f = c.fr_free[n]
    c.fr_uid[f] = new_uid(c)
    return f


cdef inline void free_frame(Ctx* c, i64 f) noexcept nogil:
    c.fr_uid[f] = 0
    c.fr_state[f] = FS_FREE
    cdef i64 n = c.ic[I_FR_FREE]
    c.fr_free[n] = f
    c.ic[I_FR_FREE] = n + 1


cdef inline i64 alloc_call(Ctx* c) noexcept nogil:
    cdef i64 n = c.ic[I_CA_FREE] - 1
    if n < 0:
        c.ic[I_ERROR] = 3
        n = 0
    c.ic[I_CA_FREE] = n
    cdef i64 k = c.ca_free[n]
    c.ca_uid[k] = new_uid(c)
    return k


cdef inline void free_call(Ctx* c, i64 k) noexcept nogil:
    c.ca_uid[k] = 0
    c.ca_auid[k] = 0
    cdef i64 n = c.ic[I_CA_FREE]
    c.ca_free[n] = k
    c.ic[I_CA_FREE] = n + 1


# --- load balancing --------------------------------------------------------------------------------

cdef i64 pick(Ctx* c, i64 svc) noexcept nogil:
    cdef i64 lo = c.ready_off[svc]
    cdef i64 n = c.ready_off[svc + 1] - lo
    cdef i64 policy, i, j, k, a, b, start, best, best_load, load, m, r
    cdef double total, u, acc
    if n <= 0:
        return -1
    if n == 1:
        return c.ready_idx[lo]
    policy = c.svc_lb[svc]
    if policy == LB_RANDOM:
        i = <i64>(draw(c, c.svc_lb_smp[svc]) * n)
        return c.ready_idx[lo + (i if i < n else n - 1)]
    if policy == LB_LEAST_REQUEST:
        k = c.svc_lb_smp[svc]
        i = <i64>(draw(c, k) * n)
        if i >= n:
            i = n - 1
        j = <i64>(draw(c, k) * (n - 1))
        if j >= n - 1:
            j = n - 2
        if j >= i:
            j += 1
        a = c.ready_idx[lo + i]
        b = c.ready_idx[lo + j]
        return b if c.r_busy[b] + c.r_qlen[b] < c.r_busy[a] + c.r_qlen[a] else a
    if policy == LB_LEAST_OUTSTANDING:
        start = c.rr[svc] % n
        c.rr[svc] += 1
        best = -1
        best_load = 1 << 62
        for m in range(n):
            r = c.ready_idx[lo + (start + m) % n]
            load = c.r_busy[r] + c.r_qlen[r]
            if load < best_load:
                best_load = load
                best = r
        return best
    if policy == LB_WEIGHTED:
        total = 0.0
        for m in range(n):
            total += c.r_weight[c.ready_idx[lo + m]]
        if total <= 0.0:
            return -1
        u = draw(c, c.svc_lb_smp[svc]) * total
        acc = 0.0
        for m in range(n):
            r = c.ready_idx[lo + m]
            acc += c.r_weight[r]
            if u < acc:
                return r
        return c.ready_idx[lo + n - 1]
    i = c.rr[svc] % n  # round robin
    c.rr[svc] += 1
    return c.ready_idx[lo + i]


# --- circuit breaker (resilience4j, count based) ------------------------------------------------------

cdef bint cb_permit(Ctx* c, i64 ep, double now) noexcept nogil:
    cdef i64 st = c.cb_state[ep]
    if st == 0:
        return True
    if st == 1:
        if now < c.cb_until[ep]:
            return False
        c.cb_state[ep] = 2
        c.cb_hcalls[ep] = 0
        c.cb_hdone[ep] = 0
        c.cb_hfail[ep] = 0
    if c.cb_hcalls[ep] < c.ep_cb_half[ep]:
        c.cb_hcalls[ep] += 1
        return True
    return False


cdef void cb_record(Ctx* c, i64 ep, bint failed, double now) noexcept nogil:
    cdef i64 st = c.cb_state[ep]
    cdef i64 win, off, pos, v
    if st == 2:
        c.cb_hdone[ep] += 1
        if failed:
            c.cb_hfail[ep] += 1
        if c.cb_hdone[ep] >= c.ep_cb_half[ep]:
            if c.cb_hfail[ep] >= c.ep_cb_thr[ep] * c.cb_hdone[ep]:
                c.cb_state[ep] = 1
                c.cb_until[ep] = now + c.ep_cb_wait[ep]
            else:
                c.cb_state[ep] = 0
                c.cb_count[ep] = 0
                c.cb_fail[ep] = 0
                c.cb_pos[ep] = 0
        return
    if st == 1:
        return
    win = c.ep_cb_win[ep]
    off = c.ep_cb_off[ep]
    pos = c.cb_pos[ep]
    if c.cb_count[ep] == win:
        c.cb_fail[ep] -= c.cb_ring[off + pos]
    else:
        c.cb_count[ep] += 1
    v = 1 if failed else 0
    c.cb_ring[off + pos] = v
    c.cb_fail[ep] += v
    c.cb_pos[ep] = (pos + 1) % win
    if c.cb_count[ep] >= c.ep_cb_min[ep] and c.cb_fail[ep] >= c.ep_cb_thr[ep] * c.cb_count[ep]:
        c.cb_state[ep] = 1
        c.cb_until[ep] = now + c.ep_cb_wait[ep]


# --- calls and attempts -----------------------------------------------------------------------------

cdef inline void init_frame(Ctx* c, i64 f, i64 k, i64 auid, i64 r, i64 ep, double now,
                            double timeout) noexcept nogil:
    c.fr_call[f] = k
    c.fr_auid[f] = auid
    c.fr_rep[f] = r
    c.fr_ep[f] = ep
    c.fr_pc[f] = c.ep_prog[ep]
    c.fr_pend[f] = 0
    c.fr_tarr[f] = now
    c.fr_tstart[f] = now
    c.fr_deadline[f] = now + timeout if timeout > 0.0 else INFINITY
    c.fr_next[f] = -1


cdef void begin_attempt(Ctx* c, i64 k, double now) noexcept nogil:
    """Send call ``k``'s next attempt to a replica (outcomes reach the caller via the FIFO)."""
    cdef i64 ep = c.ca_ep[k]
    cdef i64 auid = new_uid(c)
    c.ca_auid[k] = auid
    c.ca_att[k] += 1
    c.ca_fr[k] = -1
    if c.ep_cb[ep] != 0 and not cb_permit(c, ep, now):
        nq_push(c, NQ_ATTEMPT_DONE, k, auid, ERR_BREAKER)
        return
    cdef i64 svc = c.ep_svc[ep]
    cdef double d = c.svc_delay[svc]
    cdef double u1, u2
    if c.svc_jitter[svc] > 0.0:
        # Normal jitter (netem's delay jitter) by Box-Muller on two uniforms; a delay
        # never goes below zero.
        u1 = draw(c, c.svc_err_smp[svc])
        u2 = draw(c, c.svc_err_smp[svc])
        d += c.svc_jitter[svc] * sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2)
        if d < 0.0:
            d = 0.0
    if d > 0.0:
        # Network delay on the way: the caller's timeout runs from now, the attempt
        # reaches the service later (EV_SEND).
        if c.ep_timeout[ep] > 0.0:
            push(c, now + c.ep_timeout[ep], EV_TIMEOUT, k, auid)
        push(c, now + d, EV_SEND, k, auid)
        return
    deliver(c, k, auid, now, c.ep_timeout[ep], True)


cdef void deliver(Ctx* c, i64 k, i64 auid, double now, double timeout, bint arm) noexcept nogil:
    """Attempt ``auid`` of call ``k`` reaches the service: a lost connection, no replica, or a frame.

    ``timeout`` is what is left of the caller's timeout; ``arm`` schedules it (else it already is).
    """
    cdef i64 ep = c.ca_ep[k]
    cdef i64 svc = c.ep_svc[ep]
    cdef double loss = c.svc_loss[svc]
    if loss > 0.0 and draw(c, c.svc_err_smp[svc]) < loss:
        nq_push(c, NQ_ATTEMPT_DONE, k, auid, ERR_UNAVAILABLE)  # connection error (network loss)
        return
    cdef i64 r = pick(c, svc)
    if r < 0:
        nq_push(c, NQ_ATTEMPT_DONE, k, auid, ERR_UNAVAILABLE)
        return
    if arm and timeout > 0.0:
        push(c, now + timeout, EV_TIMEOUT, k, auid)
    cdef bint counted = now >= c.fc[F_WARMUP]
    cdef i64 local = c.ep_local[ep]
    cdef i64 f, cap
    if c.r_busy[r] < c.svc_conc[svc]:
        f = alloc_frame(c)
        init_frame(c, f, k, auid, r, ep, now, timeout)
        areas(c, r, now)
        c.r_busy[r] += 1
        c.fr_state[f] = FS_RUNNING
        nq_push(c, NQ_START, f, c.fr_uid[f], 0)
        if counted:
            c.sv_n[svc] += 1
        return
    cap = c.svc_qcap[svc]
    if cap >= 0 and c.r_qlen[r] >= cap:
        c.r_cnt[(r * c.lmax + local) * N_CODES + CODE_503] += 1
        if counted:
            c.sv_n[svc] += 1
            c.sv_err[svc] += 1
        nq_push(c, NQ_ATTEMPT_DONE, k, auid, ERR_REJECTED)
        return
    f = alloc_frame(c)
    init_frame(c, f, k, auid, r, ep, now, timeout)
    c.fr_state[f] = FS_QUEUED
    areas(c, r, now)
    if c.r_qlen[r] == 0:
        c.r_qhead[r] = f
    else:
        c.fr_next[c.r_qtail[r]] = f
    c.r_qtail[r] = f
    c.r_qlen[r] += 1
    if counted:
        c.sv_n[svc] += 1


cdef void begin_call(Ctx* c, i64 ep, i64 pfr, i64 pfuid, i64 req, double now) noexcept nogil:
    cdef i64 k = alloc_call(c)
    c.ca_ep[k] = ep
    c.ca_pfr[k] = pfr
    c.ca_pfuid[k] = pfuid
    c.ca_req[k] = req
    c.ca_att[k] = 0
    c.ca_t0[k] = now
    begin_attempt(c, k, now)


# --- running a frame's steps --------------------------------------------------------------------------

cdef void start_work(Ctx* c, i64 f, double w, double now) noexcept nogil:
    cdef i64 r = c.fr_rep[f]
    cdef i64 svc = c.r_svc[r]
    areas(c, r, now)
    if c.svc_ps[svc] == 0:
        c.r_ncpu[r] += 1
        push(c, now + w, EV_WORK_DONE, f, c.fr_uid[f])
        return
    ps_advance(c, r, now)
    ps_heap_push(c, r, c.r_vt[r] + w, f)
    c.r_ncpu[r] += 1
    ps_schedule(c, r, now)


cdef void step_loop(Ctx* c, i64 f, double now) noexcept nogil:
    """Run frame ``f``'s steps from its pc until one takes time, or the frame ends."""
    cdef i64 pc, op, smp, nbr, made, b, bpc
    cdef double w
    cdef unsigned long long run_mask
    while True:
        pc = c.fr_pc[f]
        op = c.prog_op[pc]
        if op == OP_WORK:
            w = draw(c, c.prog_a[pc]) * c.ver_lat[c.r_ver[c.fr_rep[f]]]
            start_work(c, f, w, now)
            return
        if op == OP_WAIT:
            w = draw(c, c.prog_a[pc])
            push(c, now + w, EV_WAIT_DONE, f, c.fr_uid[f])
            return
        if op == OP_CALL:
            smp = c.prog_b[pc]
            if smp >= 0 and draw(c, smp) >= c.prog_p[pc]:
                c.fr_pc[f] = pc + 1
                continue
            c.fr_pend[f] = 1
            begin_call(c, c.prog_a[pc], f, c.fr_uid[f], -1, now)
            return
        if op == OP_PAR:
            nbr = c.prog_a[pc]  # at most 64, checked when the scenario loads
            run_mask = 0
            made = 0
            for b in range(nbr):
                bpc = pc + 1 + b
                if c.prog_op[bpc] != OP_CALL:
                    continue
                smp = c.prog_b[bpc]
                if smp >= 0 and draw(c, smp) >= c.prog_p[bpc]:
                    continue
                run_mask |= (<unsigned long long>1) << b
                made += 1
            if made == 0:
                c.fr_pc[f] = pc + nbr + 1
                continue
            c.fr_pend[f] = made
            for b in range(nbr):
                if (run_mask >> b) & 1:
                    begin_call(c, c.prog_a[pc + 1 + b], f, c.fr_uid[f], -1, now)
            return
        if op == OP_NOP:
            c.fr_pc[f] = pc + 1
            continue
        finish_frame(c, f, OK, now)  # OP_END
        return


cdef void start_frame(Ctx* c, i64 f, double now) noexcept nogil:
    c.fr_tstart[f] = now
    cdef double tarr = c.fr_tarr[f]
    cdef i64 svc
    cdef double wait
    if tarr >= c.fc[F_WARMUP]:
        svc = c.r_svc[c.fr_rep[f]]
        wait = now - tarr
        c.sv_wn[svc] += 1
        c.sv_wsum[svc] += wait
        c.sv_whist[svc * c.lh_n + lh_index(c, wait)] += 1
    step_loop(c, f, now)


cdef void dequeue(Ctx* c, i64 r, double now) noexcept nogil:
    """A worker of replica ``r`` is free: start the next queued frame that is still wanted."""
    cdef i64 f, k, ep
    while c.r_qlen[r] > 0:
        f = c.r_qhead[r]
        c.r_qhead[r] = c.fr_next[f]
        c.r_qlen[r] -= 1
        k = c.fr_call[f]
        if c.ca_auid[k] != c.fr_auid[f] and now >= c.fr_deadline[f]:
            # The caller gave up (timeout) and the deadline has passed: drop it.
            ep = c.fr_ep[f]
            c.r_cnt[(r * c.lmax + c.ep_local[ep]) * N_CODES + CODE_504] += 1
            if c.fr_tarr[f] >= c.fc[F_WARMUP]:
                c.sv_err[c.ep_svc[ep]] += 1
            free_frame(c, f)
            continue
        c.r_busy[r] += 1
        c.fr_state[f] = FS_RUNNING
        nq_push(c, NQ_START, f, c.fr_uid[f], 0)
        return


cdef void finish_frame(Ctx* c, i64 f, i64 outcome, double now) noexcept nogil:
    """Frame ``f`` answers its caller: free the worker, record, notify, dequeue."""
    cdef i64 r = c.fr_rep[f]
    cdef i64 ep = c.fr_ep[f]
    cdef i64 svc = c.ep_svc[ep]
    cdef double err_rate = c.ver_err[c.r_ver[r]]
    if outcome == OK and err_rate > 0.0 and draw(c, c.svc_err_smp[svc]) < err_rate:
        outcome = ERR_INJECTED
    cdef i64 local = c.ep_local[ep]
    cdef double lat = now - c.fr_tarr[f]
    cdef i64 code = CODE_200 if outcome == OK else CODE_500
    cdef i64 row = r * c.lmax + local
    c.r_cnt[row * N_CODES + code] += 1
    c.r_lat_sum[row] += lat
    c.r_lat_hist[row * c.n_pb + pb_index(c, lat)] += 1
    if c.fr_tarr[f] >= c.fc[F_WARMUP]:
        if outcome == OK:
            c.sv_ok[svc] += 1
            c.sv_lsum[svc] += lat
            c.sv_hist[svc * c.lh_n + lh_index(c, lat)] += 1
        else:
            c.sv_err[svc] += 1
    areas(c, r, now)
    c.r_busy[r] -= 1
    nq_push(c, NQ_ATTEMPT_DONE, c.fr_call[f], c.fr_auid[f], outcome)
    c.fr_state[f] = FS_DONE
    free_frame(c, f)
    dequeue(c, r, now)


# --- outcomes ------------------------------------------------------------------------------------------

cdef inline void little(Ctx* c, double now) noexcept nogil:
    cdef double last = c.fc[F_LITTLE_LAST]
    cdef double w, lo
    if now > last:
        w = c.fc[F_WARMUP]
        lo = last if last > w else w
        if now > lo:
            c.fc[F_LITTLE_AREA] += c.ic[I_IN_SYSTEM] * (now - lo)
        c.fc[F_LITTLE_LAST] = now


cdef void finish_request(Ctx* c, i64 req, i64 outcome, double now) noexcept nogil:
    cdef i64 cls = c.rq_cls[req]
    cdef double t0 = c.rq_t0[req]
    cdef double lat = now - t0
    # What the user sees adds the class's client-side delay (the round trip to the front
    # door); Little's law (asum) keeps the time spent in the system.
    cdef double seen = lat + c.cls_delay[cls]
    cdef i64 kind = ERR_REJECTED if outcome == ERR_BREAKER else outcome
    cdef i64 j
    if outcome == OK:
        c.cls_tot[cls * (1 + N_ERR)] += 1
        c.cls_pb[cls * c.n_pb + pb_index(c, seen)] += 1
        c.cls_psum[cls] += seen
    else:
        c.cls_tot[cls * (1 + N_ERR) + 1 + kind] += 1
    if t0 >= c.fc[F_WARMUP]:
        c.cls_n[cls] += 1
        c.cls_asum[cls] += lat
        if outcome == OK:
            c.cls_ok[cls] += 1
            c.cls_lsum[cls] += seen
            c.cls_hist[cls * c.lh_n + lh_index(c, seen)] += 1
            for j in range(c.n_slo):
                if (c.slo_cls[j] < 0 or c.slo_cls[j] == cls) and seen <= c.slo_thr[j]:
                    c.slo_good[j] += 1
        else:
            c.cls_err[cls * N_ERR + kind] += 1
    little(c, now)
    c.ic[I_IN_SYSTEM] -= 1
    cdef i64 n = c.ic[I_RQ_FREE]
    c.rq_free[n] = req
    c.ic[I_RQ_FREE] = n + 1


cdef void call_final(Ctx* c, i64 k, i64 outcome, double now) noexcept nogil:
    """Call ``k`` is over (success, or failure after its retries): tell whoever made it."""
    cdef i64 ep = c.ca_ep[k]
    cdef double t0 = c.ca_t0[k]
    cdef double lat
    cdef i64 cls, stage, pc
    if t0 >= c.fc[F_WARMUP]:
        c.ep_n[ep] += 1
        if outcome == OK:
            c.ep_ok[ep] += 1
            lat = now - t0
            c.ep_lsum[ep] += lat
            c.ep_hist[ep * c.lh_n + lh_index(c, lat)] += 1
        else:
            c.ep_err[ep * N_ERR + (ERR_REJECTED if outcome == ERR_BREAKER else outcome)] += 1
    cdef i64 req = c.ca_req[k]
    cdef i64 pfr = c.ca_pfr[k]
    cdef i64 pfuid = c.ca_pfuid[k]
    free_call(c, k)
    if req >= 0:
        if outcome == OK:
            cls = c.rq_cls[req]
            stage = c.rq_stage[req] + 1
            if stage < c.cls_entry_len[cls]:
                c.rq_stage[req] = stage
                begin_call(c, c.entries[c.cls_entry_off[cls] + stage], -1, 0, req, now)
                return
        finish_request(c, req, outcome, now)
        return
    if pfr < 0 or c.fr_uid[pfr] != pfuid or c.fr_state[pfr] != FS_RUNNING:
        return  # the caller is gone (it failed fast, or was itself abandoned)
    if outcome != OK:
        c.fr_pend[pfr] = 0
        finish_frame(c, pfr, ERR_DOWNSTREAM, now)
        return
    c.fr_pend[pfr] -= 1
    if c.fr_pend[pfr] == 0:
        pc = c.fr_pc[pfr]
        c.fr_pc[pfr] = pc + (1 + c.prog_a[pc] if c.prog_op[pc] == OP_PAR else 1)
        step_loop(c, pfr, now)


cdef void attempt_done(Ctx* c, i64 k, i64 auid, i64 outcome, double now) noexcept nogil:
    if c.ca_auid[k] != auid or c.ca_uid[k] == 0:
        return  # a late answer to an abandoned attempt
    cdef i64 ep = c.ca_ep[k]
    cdef double delay
    c.ca_auid[k] = -auid  # this attempt is settled
    if c.ep_cb[ep] != 0 and outcome != ERR_BREAKER:
        cb_record(c, ep, outcome != OK, now)
    if outcome == OK:
        call_final(c, k, OK, now)
        return
    if (outcome != ERR_BREAKER and c.ca_att[k] <= c.ep_retries[ep]
            and (c.ep_retry_mask[ep] >> outcome) & 1):
        delay = c.ep_backoff[ep] * pow(2.0, <double>(c.ca_att[k] - 1))
        if delay > c.ep_maxbackoff[ep]:
            delay = c.ep_maxbackoff[ep]
        if c.ep_jitter_smp[ep] >= 0:
            delay *= draw(c, c.ep_jitter_smp[ep])
        push(c, now + delay, EV_RETRY, k, c.ca_uid[k])
        return
    call_final(c, k, outcome, now)


cdef void arrival(Ctx* c, i64 cls, double now) noexcept nogil:
    little(c, now)
    cdef i64 n = c.ic[I_RQ_FREE] - 1
    if n < 0:
        c.ic[I_ERROR] = 3
        n = 0
    c.ic[I_RQ_FREE] = n
    cdef i64 req = c.rq_free[n]
    c.rq_cls[req] = cls
    c.rq_t0[req] = now
    c.rq_stage[req] = 0
    c.ic[I_IN_SYSTEM] += 1
    c.cls_arr[cls] += 1
    if now >= c.fc[F_WARMUP]:
        c.ic[I_ARRIVED_W] += 1
    begin_call(c, c.entries[c.cls_entry_off[cls]], -1, 0, req, now)


cdef void ps_complete(Ctx* c, i64 r, double now, i64* done) noexcept nogil:
    areas(c, r, now)
    ps_advance(c, r, now)
    cdef i64 off = c.r_psoff[r]
    cdef double vt = c.r_vt[r]
    cdef double tol = 1e-9 * (1.0 + fabs(vt))
    cdef i64 k = 0
    cdef i64 i, f
    while c.r_psn[r] > 0 and (k == 0 or c.ps_f[off] <= vt + tol):
        done[k] = ps_heap_pop(c, r)
        k += 1
    c.r_ncpu[r] -= k
    ps_schedule(c, r, now)
    for i in range(k):
        f = done[i]
        c.fr_pc[f] += 1
        step_loop(c, f, now)


# --- the loop -------------------------------------------------------------------------------------------

cdef inline bint room(Ctx* c) noexcept nogil:
    cdef i64 m = c.ic[I_MARGIN]
    return (c.ic[I_FR_FREE] >= m and c.ic[I_CA_FREE] >= m and c.ic[I_RQ_FREE] >= m
            and c.hp_cap - c.ic[I_HEAP_N] >= m
            and c.nq_cap - (c.ic[I_NQ_TAIL] - c.ic[I_NQ_HEAD]) >= m)


cdef int _loop(Ctx* c, double* arr_t, i64* arr_c, i64 n_arr, double t_end, i64* done) noexcept nogil:
    cdef i64 head, j, kind, ident, tag, pos, r
    cdef double now, ta, th, tmo
    while True:
        if c.ic[I_ERROR] != 0:
            return ST_ERROR
        if c.ic[I_REFILL] != 0:
            return ST_REFILL
        if not room(c):
            return ST_GROW
        head = c.ic[I_NQ_HEAD]
        if head < c.ic[I_NQ_TAIL]:
            j = head % c.nq_cap
            c.ic[I_NQ_HEAD] = head + 1
            kind = c.nq_kind[j]
            ident = c.nq_id[j]
            tag = c.nq_tag[j]
            now = c.fc[F_NOW]
            if kind == NQ_START:
                if c.fr_uid[ident] == tag:
                    start_frame(c, ident, now)
            else:
                attempt_done(c, ident, tag, c.nq_arg[j], now)
            continue
        pos = c.ic[I_ARR_POS]
        ta = arr_t[pos] if pos < n_arr else INFINITY
        th = c.hp_t[0] if c.ic[I_HEAP_N] > 0 else INFINITY
        if ta < th:
            if ta >= t_end:
                break
            c.fc[F_NOW] = ta
            c.ic[I_ARR_POS] = pos + 1
            arrival(c, arr_c[pos], ta)
            continue
        if th >= t_end:
            break
        now = th
        c.fc[F_NOW] = now
        kind = c.hp_kind[0]
        ident = c.hp_id[0]
        tag = c.hp_tag[0]
        pop(c)
        if kind == EV_WORK_DONE:
            if c.fr_uid[ident] == tag:
                r = c.fr_rep[ident]
                areas(c, r, now)
                c.r_ncpu[r] -= 1
                c.fr_pc[ident] += 1
                step_loop(c, ident, now)
        elif kind == EV_PS_DONE:
            if c.r_epoch[ident] == tag:
                ps_complete(c, ident, now, done)
        elif kind == EV_WAIT_DONE:
            if c.fr_uid[ident] == tag:
                c.fr_pc[ident] += 1
                step_loop(c, ident, now)
        elif kind == EV_TIMEOUT:
            if c.ca_auid[ident] == tag and c.ca_uid[ident] != 0:
                attempt_done(c, ident, tag, ERR_TIMEOUT, now)
        elif kind == EV_RETRY:
            if c.ca_uid[ident] == tag:
                begin_attempt(c, ident, now)
        elif kind == EV_SEND:
            if c.ca_auid[ident] == tag and c.ca_uid[ident] != 0:
                tmo = c.ep_timeout[c.ca_ep[ident]]
                if tmo > 0.0:
                    # What is left of the caller's timeout (it has been running on the way).
                    tmo -= c.svc_delay[c.ep_svc[c.ca_ep[ident]]]
                    if tmo < 1e-12:
                        tmo = 1e-12
                deliver(c, ident, tag, now, tmo, False)
    c.fc[F_NOW] = t_end
    little(c, t_end)
    return ST_DONE


def run_window(s, rp, e, q, st, rr, arr_t, arr_c, double t_end):
    """Simulate until ``t_end`` (exclusive), or until the driver must step in.

    Args:
        s, rp, e, q, st: the state tuples (see ``layout.py``).
        rr: round-robin counters per service.
        arr_t, arr_c: this window's arrival times (increasing) and class indices.
        t_end: the end of the window, seconds.

    Returns:
        ``ST_DONE``, ``ST_REFILL``, ``ST_GROW`` or ``ST_ERROR``.
    """
    cdef Ctx c
    _bind(&c, s, rp, e, q, st, rr)
    cdef double[::1] at = arr_t
    cdef i64[::1] ac = arr_c
    cdef i64 n_arr = at.shape[0]
    cdef double* pt = &at[0] if n_arr > 0 else _dummy_f
    cdef i64* pc = &ac[0] if n_arr > 0 else _dummy_i
    cdef i64 max_conc = 1
    cdef i64 i
    for i in range(s.svc_conc.shape[0]):
        if c.svc_conc[i] > max_conc:
            max_conc = c.svc_conc[i]
    cdef i64* done = <i64*>malloc(max_conc * sizeof(i64))
    if done == NULL:
        raise MemoryError()
    cdef int status
    try:
        with nogil:
            status = _loop(&c, pt, pc, n_arr, t_end, done)
    finally:
        free(done)
    return status


def kill_replica(s, rp, e, q, st, rr, i64 r, double now):
    """Replica ``r`` dies: every request it holds fails as ``unavailable`` (connection reset)."""
    cdef Ctx c
    _bind(&c, s, rp, e, q, st, rr)
    areas(&c, r, now)
    cdef double warm = c.fc[F_WARMUP]
    cdef i64 f
    for f in range(c.n_frames):
        if c.fr_uid[f] == 0 or c.fr_rep[f] != r:
            continue
        if c.fr_state[f] != FS_QUEUED and c.fr_state[f] != FS_RUNNING:
            continue
        if c.fr_tarr[f] >= warm:
            c.sv_err[c.r_svc[r]] += 1
        nq_push(&c, NQ_ATTEMPT_DONE, c.fr_call[f], c.fr_auid[f], ERR_UNAVAILABLE)
        free_frame(&c, f)
    c.r_busy[r] = 0
    c.r_qlen[r] = 0
    c.r_qhead[r] = -1
    c.r_qtail[r] = -1
    c.r_ncpu[r] = 0
    c.r_psn[r] = 0
    c.r_epoch[r] += 1


def set_service_cores(s, rp, e, q, st, rr, i64 svc, double cores, double now):
    """Give every replica of service ``svc`` ``cores`` CPUs from ``now`` (CPU stress and its end).

    Work in progress keeps what it has done: each replica's processor-sharing clock is
    brought to ``now`` at the old rate, then its next completion is rescheduled at the new.
    Processor sharing stays on for the service (with cores >= concurrency it runs every
    job at full speed, as the plain path does).
    """
    cdef Ctx c
    _bind(&c, s, rp, e, q, st, rr)
    cdef i64[::1] alive = rp.alive
    cdef i64 n = alive.shape[0]
    cdef i64 r
    for r in range(n):
        if alive[r] == 1 and c.r_svc[r] == svc:
            areas(&c, r, now)
            ps_advance(&c, r, now)
    c.svc_cores[svc] = cores
    c.svc_ps[svc] = 1
    for r in range(n):
        if alive[r] == 1 and c.r_svc[r] == svc:
            ps_schedule(&c, r, now)
