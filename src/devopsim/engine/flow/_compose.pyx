# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled kernel of the flow plane's latency composition.

``compose_endpoint`` draws one endpoint's samples: every attempt of every sample (replica
choice, queue wait, rejection, loss, timeout, work / wait / call steps, injected errors),
then the retries, in one pass per attempt instead of ~100 NumPy passes over the samples.
Its reference is the NumPy path kept in ``latency.Composer`` (``reference=True``); the
tests compare the two statistically (``tests/engine/test_compose_kernel.py``).

The statistics drawn from the samples are computed by ``_stats.pyx``.

Uniforms come from a SplitMix64 sequence seeded by the caller from its named stream (runs
stay deterministic). Outcomes decided by a probability use stratified uniforms: within an
attempt, one per stratum of the attempting samples, in random order, so the share of them
below ``p`` is ``p`` to within one sample.
"""

from libc.math cimport log, exp, expm1, sqrt, cos, pow, INFINITY, isfinite
from libc.stdlib cimport malloc, free


cdef extern from *:
    void __builtin_prefetch(const void* p) noexcept nogil


cdef enum:
    _OK = -1
    _ERR_TIMEOUT = 0
    _ERR_REJECTED = 1
    _ERR_DOWNSTREAM = 2
    _ERR_INJECTED = 3
    _ERR_UNAVAILABLE = 4
    _STEP_WORK = 0  # work: a pooled variate times the replica's stretch
    _STEP_WAIT = 1  # wait: a pooled variate
    _STEP_CALL = 2  # a call or a parallel group of calls
    # A call fetches its callee's sample this many of its reads ahead: the reads jump by a
    # random stride, each one a cache miss that stalled the sample's whole pass.
    _PREFETCH = 8

STEP_WORK = _STEP_WORK
STEP_WAIT = _STEP_WAIT
STEP_CALL = _STEP_CALL


# --- random numbers -----------------------------------------------------------------------


cdef inline unsigned long long _next(unsigned long long* s) noexcept nogil:
    """SplitMix64 (the same generator as ``_queue.stratified``)."""
    s[0] += 0x9E3779B97F4A7C15ULL
    cdef unsigned long long z = s[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline double _unif(unsigned long long* s) noexcept nogil:
    """A uniform in [0, 1) with 53 random bits."""
    return (_next(s) >> 11) * (1.0 / 9007199254740992.0)


cdef inline Py_ssize_t _below(unsigned long long* s, Py_ssize_t n) noexcept nogil:
    """A uniform integer in [0, n) (multiply-shift on 32 bits: bias below n / 2^32)."""
    return <Py_ssize_t>(((_next(s) >> 32) * <unsigned long long>n) >> 32)


cdef inline double _normal(unsigned long long* s) noexcept nogil:
    """A standard normal deviate (Box-Muller, one of the pair)."""
    cdef double u1 = 1.0 - _unif(s)  # (0, 1]
    cdef double u2 = _unif(s)
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2)


cdef inline Py_ssize_t _gcd(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef Py_ssize_t t
    while b:
        t = a % b
        a = b
        b = t
    return a


cdef void _strata(double* out, Py_ssize_t n, unsigned long long* s) noexcept nogil:
    """One uniform in each of the ``n`` strata ``[i/n, (i+1)/n)``, in random order (the
    inside-out Fisher-Yates shuffle: one SplitMix64 value gives the place and the offset)."""
    cdef Py_ssize_t i, j
    cdef unsigned long long z
    cdef double inv = 1.0 / n if n > 0 else 0.0
    for i in range(n):
        z = _next(s)
        j = <Py_ssize_t>(((z >> 32) * <unsigned long long>(i + 1)) >> 32)
        out[i] = out[j]
        out[j] = (i + (z & 0xFFFFFFFFULL) * (1.0 / 4294967296.0)) * inv


# --- one endpoint's samples -----------------------------------------------------------------


cdef struct _Gauss:
    const double* z  # a pool of standard normal deviates, read in a cycle
    Py_ssize_t n
    Py_ssize_t pos


cdef double _gamma(double a, unsigned long long* s, _Gauss* g) noexcept nogil:
    """A Gamma(a, 1) deviate (Marsaglia & Tsang 2000; below a = 1 boosted by U^(1/a)), its
    normals from the pool ``g`` (drawn by NumPy from a named stream), uniforms from ``s``."""
    cdef double boost = 1.0, d, c, u
    if a < 1.0:
        u = 1.0 - _unif(s)  # (0, 1]
        boost = pow(u, 1.0 / a)
        a += 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / sqrt(9.0 * d)
    return d * _mt_cube(d, c, s, g) * boost


cdef inline double _mt_cube(double d, double c, unsigned long long* s, _Gauss* g) noexcept nogil:
    """Marsaglia & Tsang's accepted ``v = (1 + c x)³`` for ``d = a - 1/3``, ``c = 1/sqrt(9d)``
    (the deviate is ``d v``), with its squeeze and its exact test."""
    cdef double x, v, u
    while True:
        x = g.z[g.pos]
        g.pos += 1
        if g.pos >= g.n:
            g.pos = 0
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = _unif(s)
        if u < 1.0 - 0.0331 * x * x * x * x:
            return v
        if log(u if u > 1e-300 else 1e-300) < 0.5 * x * x + d * (1.0 - v + log(v)):
            return v


cdef inline double _ps_var(double d, double rho, double mu, double scale) noexcept nogil:
    """Coffman, Muntz & Trotter's variance of an M/M/1-PS job's time, the job ``d * scale``
    alone, at load ``rho`` and rate ``mu`` (see ``latency.ps_sojourn``)."""
    cdef double one = 1.0 - rho
    cdef double y = one * mu * d * scale
    # y - (1 - e^-y), by its series where the difference would lose digits.
    cdef double g = y * y * (0.5 - y / 6.0 + y * y / 24.0) if y < 1e-3 else y + expm1(-y)
    return 2.0 * rho * g / (mu * mu * one * one * one * one)


cdef inline double _ps_sojourn(double d, double m, double rho, double mu, double scale,
                               unsigned long long* s, _Gauss* g) noexcept nogil:
    """A CPU step's time under processor sharing: gamma with mean ``m`` (the work ``d``
    times the replica's mean stretch) and the M/M/1-PS variance of a job of that size."""
    cdef double v
    if m <= 0.0:
        return m
    v = _ps_var(d, rho, mu, scale)
    if v <= 0.0:
        return m
    return _gamma(m * m / v, s, g) * (v / m)


cdef inline double _ps_g(double y) noexcept nogil:
    """``y - (1 - e^-y)``: by its series below 0.05 (terms to y^7, relative error below 1e-12),
    above by ``exp``, whose rounding costs at most ~1e-13 of the result there (expm1 took
    twice as long on the draw's critical path)."""
    if y < 0.05:
        return y * y * (0.5 - y * (1.0 / 6.0 - y * (1.0 / 24.0 - y * (1.0 / 120.0 - y * (1.0 / 720.0
                                                                                         - y * (1.0 / 5040.0))))))
    return y + (exp(-y) - 1.0)


cdef inline bint _ps_consts(double rho, double mu, double scale, double stretch,
                            double* ky, double* kv, double* kt) noexcept nogil:
    """A replica's constants of ``_ps_fast`` (worked out once per composition): ``y`` per unit
    of work draw ``(1-ρ)μ·scale``, the shape per ``d²/g`` ``stretch²/k`` and the scale per
    ``g/d`` ``k/stretch``, with ``k = 2ρ/(μ²(1-ρ)⁴)`` (the variance is ``k·g(y)``). False
    outside ``0 < ρ < 1`` and positive finite rate, scale and stretch (``_ps_sojourn`` then)."""
    cdef double one = 1.0 - rho, k
    if not (rho > 0.0 and one > 0.0 and mu > 0.0 and scale > 0.0 and stretch > 0.0
            and isfinite(mu) and isfinite(scale) and isfinite(stretch)):
        return False
    k = 2.0 * rho / (mu * mu * one * one * one * one)
    ky[0] = one * mu * scale
    kv[0] = stretch * stretch / k
    kt[0] = k / stretch
    return isfinite(kv[0]) and isfinite(kt[0]) and kt[0] > 0.0


cdef inline double _ps_fast(double d, double ky, double kv, double km, double kt,
                            unsigned long long* s, _Gauss* g) noexcept nogil:
    """``_ps_sojourn`` from a replica's constants (``_ps_consts``; ``km`` its stretch), with
    Marsaglia-Tsang inlined for shape ≥ 1 and one division: the shape is ``a = p/q``
    (``p = kv·d²``, ``q = g(y)``), ``a - 1/3 = r3/(3q)`` with ``r3 = 3p - q``, Marsaglia-Tsang's
    ``c = 1/sqrt(9(a - 1/3)) = sqrt(q·d·iv)`` and the deviate times the scale ``kt·q/d`` is
    ``kt·r3²·v·iv``, where ``iv = 1/(3·r3·d)``. The draw is the same gamma as ``_ps_sojourn``'s
    (its arithmetic in another order)."""
    cdef double q, p, r3, iv, c, v
    if not d > 0.0:
        return d * km
    q = _ps_g(ky * d)
    if not q > 0.0:
        return d * km
    p = kv * d * d
    r3 = 3.0 * p - q
    if not r3 > 2.0 * q:  # a < 1: boosted, by the general path
        return _gamma(p / q, s, g) * (kt * q / d)
    iv = 1.0 / (3.0 * r3 * d)
    c = sqrt(q * d * iv)
    v = _mt_cube(r3 / (3.0 * q), c, s, g)
    return kt * r3 * r3 * v * iv


def ps_variance(double d, double rho, double mu, double scale):
    """The variance a work step's draw has in the kernel, for the tests (against the NumPy
    reference in ``latency``): ``k·g(y)`` from the constants ``_ps_fast`` uses, else
    ``_ps_var``."""
    cdef double ky = 0.0, kv = 0.0, kt = 0.0
    if d > 0.0 and _ps_consts(rho, mu, scale, 1.0, &ky, &kv, &kt):
        return kt * _ps_g(ky * d)
    return _ps_var(d, rho, mu, scale)


cdef int _gauss_init(_Gauss* g, const double[::1] gauss, str who) except -1:
    """``g`` reads the pool ``gauss`` from its start (``who`` names the caller in the error)."""
    if gauss.shape[0] < 1:
        raise ValueError(f"{who}: an empty pool of normals")
    g.z = &gauss[0]
    g.n = gauss.shape[0]
    g.pos = 0
    return 0


def ps_draws(double d, double rho, double mu, double scale, double stretch, Py_ssize_t n,
             unsigned long long seed, const double[::1] gauss):
    """``n`` times a work step's time as the kernel draws it (the work ``d`` on a replica with
    these processor-sharing constants and mean ``stretch``), for the tests."""
    cdef unsigned long long s = seed
    cdef Py_ssize_t i
    cdef _Gauss g
    cdef double ky = 0.0, kv = 0.0, kt = 0.0
    cdef bint fast = _ps_consts(rho, mu, scale, stretch, &ky, &kv, &kt)
    _gauss_init(&g, gauss, "ps_draws")
    out = [0.0] * n
    for i in range(n):
        if fast:
            out[i] = _ps_fast(d, ky, kv, stretch, kt, &s, &g)
        else:
            out[i] = _ps_sojourn(d, d * stretch, rho, mu, scale, &s, &g)
    return out


def gamma_draws(double a, Py_ssize_t n, unsigned long long seed, const double[::1] gauss):
    """``n`` Gamma(a, 1) deviates from the kernel's generator (for the tests)."""
    cdef unsigned long long s = seed
    cdef Py_ssize_t i
    cdef _Gauss g
    _gauss_init(&g, gauss, "gamma_draws")
    out = [0.0] * n
    for i in range(n):
        out[i] = _gamma(a, &s, &g)
    return out


cdef struct _Rep:
    double* ps_rho
    double* ps_mu
    double* ps_scale
    double* weight
    double* pwait
    double* theta
    double* bwait
    double* slack
    double* drop
    double* reject
    double* stretch
    double* err_rate
    # Per replica, the constants of ``_ps_fast`` (``ps_fast``: they hold; else ``_ps_sojourn``).
    double* ps_ky
    double* ps_kv
    double* ps_kt
    char* ps_fast


def compose_endpoint(
    unsigned long long seed,
    long n_att,
    const long[::1] slots,
    double[::1] weight,
    double[::1] pwait,
    double[::1] theta,
    double[::1] bwait,
    double[::1] stretch,
    double[::1] reject,
    double[::1] slack,
    double[::1] drop,
    double[::1] err_rate,
    double[::1] ps_rho,
    double[::1] ps_mu,
    double[::1] ps_scale,
    const double[::1] gauss,
    double tmo,
    double d_net,
    double jitter,
    double p_loss,
    double p_open,
    long retry_mask,
    double backoff,
    double maxbackoff,
    const long[::1] st_kind,
    const long[::1] st_arg,
    const long[::1] st_n,
    list pools,
    long[::1] pool_pos,
    list t_dur,
    list t_out,
    const double[::1] t_p,
    double[::1] duration,
    long[::1] outcome,
    double[::1] server,
    unsigned char[::1] server_ok,
    double[::1] wait,
    double[::1] service,
    Py_ssize_t[::1] index_scratch,
    double[::1] scratch,
):
    """Every sample of one logical call to an endpoint: its attempts and retries.

    Replicas: ``slots`` index the per-replica arrays (``weight`` is each replica's share of
    the service's requests; none, or no weight, leaves the endpoint unavailable; where
    ``ps_rho`` > 0 a work step's time is drawn around its mean under processor sharing, see
    ``_ps_sojourn``, ``_ps_fast``). The
    endpoint: its timeout ``tmo`` (0: none), network delay ``d_net`` with normal ``jitter``
    (sd) and loss ``p_loss``, the share ``p_open`` of the window its breaker was open,
    ``n_att`` attempts at most, retried on the outcomes in ``retry_mask`` after
    ``min(backoff 2^a, maxbackoff)``. Steps: ``st_kind`` (STEP_*), ``st_arg`` (the pool of
    a work/wait step, the first target of a call step), ``st_n`` (its targets); pools are
    read cyclically from ``pool_pos`` (updated); a target ``t`` is called with
    probability ``t_p[t]`` and takes a random sample of its callee (``t_dur[t]``,
    ``t_out[t]``, -1 = ok). Writes ``duration``/``outcome`` (one per sample) and, per
    started attempt, ``server``, ``server_ok``, ``wait``, ``service``. Returns (started
    attempts, attempts, attempts failed with a retryable error, started attempts that
    did not answer ok). ``index_scratch`` (two per sample) and ``scratch`` (a sample's
    worth per stratified channel: up to 6 + one per target) are working space the caller
    keeps between calls.
    """
    cdef Py_ssize_t k = duration.shape[0]
    cdef Py_ssize_t m = slots.shape[0]
    cdef Py_ssize_t n_rep = weight.shape[0]
    cdef Py_ssize_t n_steps = st_kind.shape[0]
    cdef Py_ssize_t n_pool = len(pools)
    cdef Py_ssize_t n_tgt = len(t_dur)
    cdef Py_ssize_t i, j, q, lo, hi, a, t, s_i, cap
    if outcome.shape[0] != k:
        raise ValueError("compose_endpoint: one outcome per sample")
    cap = k * (n_att if n_att > 0 else 1)
    if server.shape[0] < cap or server_ok.shape[0] < cap or wait.shape[0] < cap or service.shape[0] < cap:
        raise ValueError("compose_endpoint: room for every attempt of every sample")
    if (pwait.shape[0] != n_rep or theta.shape[0] != n_rep or bwait.shape[0] != n_rep or stretch.shape[0] != n_rep
            or reject.shape[0] != n_rep or slack.shape[0] != n_rep or drop.shape[0] != n_rep
            or err_rate.shape[0] != n_rep or ps_rho.shape[0] != n_rep or ps_mu.shape[0] != n_rep
            or ps_scale.shape[0] != n_rep):
        raise ValueError("compose_endpoint: one value per replica in every replica array")
    for i in range(m):
        if slots[i] < 0 or slots[i] >= n_rep:
            raise IndexError(f"compose_endpoint: slot {slots[i]} of {n_rep}")
    if st_arg.shape[0] != n_steps or st_n.shape[0] != n_steps:
        raise ValueError("compose_endpoint: kind, argument and count per step")
    if len(t_out) != n_tgt or t_p.shape[0] != n_tgt or pool_pos.shape[0] != n_pool:
        raise ValueError("compose_endpoint: one probability per target, one position per pool")
    for i in range(n_steps):
        if st_kind[i] == STEP_CALL:
            if st_arg[i] < 0 or st_n[i] < 0 or st_arg[i] + st_n[i] > n_tgt:
                raise IndexError("compose_endpoint: call step targets outside the targets")
        elif st_kind[i] == STEP_WORK or st_kind[i] == STEP_WAIT:
            if st_arg[i] < 0 or st_arg[i] >= n_pool:
                raise IndexError("compose_endpoint: step pool outside the pools")
        else:
            raise ValueError(f"compose_endpoint: unknown step kind {st_kind[i]}")

    # Pointers to the pools and the callees' samples (kept alive by the lists).
    cdef double** pool_p = <double**>malloc((n_pool + 1) * sizeof(double*))
    cdef Py_ssize_t* pool_len = <Py_ssize_t*>malloc((n_pool + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* pos = <Py_ssize_t*>malloc((n_pool + 1) * sizeof(Py_ssize_t))
    cdef double** td_p = <double**>malloc((n_tgt + 1) * sizeof(double*))
    cdef long** to_p = <long**>malloc((n_tgt + 1) * sizeof(long*))
    cdef Py_ssize_t* t_len = <Py_ssize_t*>malloc((n_tgt + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* made_ch = <Py_ssize_t*>malloc((n_tgt + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* cursor = <Py_ssize_t*>malloc(3 * (n_tgt + 1) * sizeof(Py_ssize_t))
    if index_scratch.shape[0] < 2 * k or scratch.shape[0] < (6 + n_tgt) * k:
        raise ValueError("compose_endpoint: scratch for two indices per sample and a sample per channel")
    cdef Py_ssize_t* pend = &index_scratch[0]
    cdef Py_ssize_t* act = &index_scratch[k]
    cdef double* cdf = <double*>malloc((m + 1) * sizeof(double))
    cdef double* psk = <double*>malloc((3 * n_rep + 1) * sizeof(double))
    cdef char* psf = <char*>malloc((n_rep + 1) * sizeof(char))
    cdef double* buf = &scratch[0]
    cdef _Rep rp
    cdef _Gauss gs
    cdef double[::1] pv
    cdef long[::1] ov
    try:
        for i in range(n_pool):
            pv = pools[i]
            if pv.shape[0] < 1:
                raise ValueError("compose_endpoint: an empty pool")
            pool_p[i] = &pv[0]
            pool_len[i] = pv.shape[0]
            pos[i] = pool_pos[i] % pool_len[i] if pool_pos[i] >= 0 else 0
        for i in range(n_tgt):
            pv = t_dur[i]
            ov = t_out[i]
            if pv.shape[0] < 1 or ov.shape[0] != pv.shape[0]:
                raise ValueError("compose_endpoint: a callee's samples (durations and outcomes alike)")
            td_p[i] = &pv[0]
            to_p[i] = &ov[0]
            t_len[i] = pv.shape[0]
        rp.weight = &weight[0]  # (no element is read when an array is empty)
        rp.pwait = &pwait[0]
        rp.theta = &theta[0]
        rp.bwait = &bwait[0]
        rp.slack = &slack[0]
        rp.drop = &drop[0]
        rp.reject = &reject[0]
        rp.stretch = &stretch[0]
        rp.err_rate = &err_rate[0]
        rp.ps_rho = &ps_rho[0]
        rp.ps_mu = &ps_mu[0]
        rp.ps_scale = &ps_scale[0]
        rp.ps_ky = psk
        rp.ps_kv = psk + n_rep
        rp.ps_kt = psk + 2 * n_rep
        rp.ps_fast = psf
        for i in range(n_rep):
            psf[i] = ps_rho[i] > 0.0 and _ps_consts(ps_rho[i], ps_mu[i], ps_scale[i], stretch[i],
                                                    rp.ps_ky + i, rp.ps_kv + i, rp.ps_kt + i)
        _gauss_init(&gs, gauss, "compose_endpoint")
        return _compose(
            seed, n_att, k, m, &slots[0], rp, &gs,
            tmo, d_net, jitter, p_loss, p_open, retry_mask, backoff, maxbackoff,
            n_steps, &st_kind[0], &st_arg[0], &st_n[0],
            pool_p, pool_len, pos, n_tgt, td_p, to_p, t_len, &t_p[0], made_ch, cursor,
            pend, act, cdf, buf,
            &duration[0], &outcome[0], &server[0], &server_ok[0], &wait[0], &service[0],
            pool_pos,
        )
    finally:
        free(pool_p)
        free(pool_len)
        free(pos)
        free(td_p)
        free(to_p)
        free(t_len)
        free(made_ch)
        free(cursor)
        free(cdf)
        free(psk)
        free(psf)


cdef tuple _compose(
    unsigned long long seed, long n_att, Py_ssize_t k, Py_ssize_t m, const long* slots, _Rep rp, _Gauss* gs,
    double tmo, double d_net, double jitter, double p_loss, double p_open, long retry_mask,
    double backoff, double maxbackoff,
    Py_ssize_t n_steps, const long* st_kind, const long* st_arg, const long* st_n,
    double** pool_p, Py_ssize_t* pool_len, Py_ssize_t* pos, Py_ssize_t n_tgt, double** td_p, long** to_p,
    Py_ssize_t* t_len, const double* t_p, Py_ssize_t* made_ch, Py_ssize_t* cursor,
    Py_ssize_t* pend, Py_ssize_t* act, double* cdf, double* buf,
    double* duration, long* outcome, double* server, unsigned char* server_ok, double* wait,
    double* service, long[::1] pool_pos,
):
    cdef unsigned long long s = seed
    cdef Py_ssize_t i, j, q, lo, hi, a, t, st, n_pend, n_act, n_next, ns = 0
    cdef double total = 0.0, wmin = INFINITY, wmax = -INFINITY, w, c_lo, c_hi
    cdef bint available, equal, any_capped = False, any_reject = False, any_err = False, any_wait = False
    cdef bint direct
    cdef long r
    # Stratified channels: the replica (whose place within its replica's strata is the uniform
    # of the queue wait: stratified per replica), the capped wait, rejection, loss,
    # injection, and one per call made with a probability below 1.
    cdef Py_ssize_t ch_rep = -1, ch_u2 = -1, ch_rej = -1, ch_loss = -1, ch_inj = -1
    cdef Py_ssize_t n_ch = 0
    cdef double att_count = 0.0, att_fail = 0.0, n_sfail = 0.0
    cdef double v, u, pw, wt, spare, dn, svc, dur, ff, d, srv_t, delay
    cdef long o
    cdef bint alive, running, fail, sok, retryable
    cdef Py_ssize_t idx, p_i, nx
    cdef Py_ssize_t* stride = cursor + n_tgt + 1
    cdef Py_ssize_t* ahead = cursor + 2 * (n_tgt + 1)  # where each reads _PREFETCH reads on
    for i in range(m):
        w = rp.weight[slots[i]]
        total += w
        if w < wmin:
            wmin = w
        if w > wmax:
            wmax = w
        if rp.slack[slots[i]] > 0.0:
            any_capped = True
        if rp.reject[slots[i]] > 0.0:
            any_reject = True
        if rp.err_rate[slots[i]] > 0.0:
            any_err = True
        if rp.pwait[slots[i]] > 0.0:
            any_wait = True
    available = m > 0 and total > 0.0
    equal = wmin == wmax
    if available and m > 1 and not equal:
        v = 0.0
        for i in range(m):
            v += rp.weight[slots[i]] / total
            cdf[i] = v
    if available:
        if m > 1 or any_wait:  # (one replica that never waits: nothing to draw)
            ch_rep = n_ch
            n_ch += 1
        if any_capped:
            ch_u2 = n_ch
            n_ch += 1
        if any_reject:
            ch_rej = n_ch
            n_ch += 1
        if p_loss > 0.0:
            ch_loss = n_ch
            n_ch += 1
        if any_err:
            ch_inj = n_ch
            n_ch += 1
        for t in range(n_tgt):
            if t_p[t] < 1.0:
                made_ch[t] = n_ch
                n_ch += 1
            else:
                made_ch[t] = -1
    gs.pos = _below(&s, gs.n)  # the pool of normals read from a random place on
    with nogil:
        n_pend = k
        for a in range(n_att):
            if n_pend == 0:
                break
            # The first attempt of every sample, no breaker open: sample i is the i-th.
            direct = a == 0 and not p_open > 0.0
            if direct:
                n_act = k
                att_count += k
            else:
                # An open breaker refuses the attempt outright (never retried).
                n_act = 0
                for i in range(n_pend):
                    j = pend[i] if a > 0 else i
                    att_count += 1.0
                    if a == 0:
                        duration[j] = 0.0
                    if p_open > 0.0 and _unif(&s) < p_open:
                        outcome[j] = _ERR_REJECTED
                        continue
                    act[n_act] = j
                    n_act += 1
            for q in range(n_ch):
                _strata(buf + q * k, n_act, &s)
            # Each callee's samples are read from a random place on, by a random stride prime
            # to their number (they are exchangeable): every one once before any again, and
            # two calls to the same callee, here or through callers, almost never in step.
            for t in range(n_tgt):
                cursor[t] = _below(&s, t_len[t])
                stride[t] = 1 + _below(&s, t_len[t] - 1) if t_len[t] > 1 else 0
                while stride[t] > 1 and _gcd(stride[t], t_len[t]) != 1:
                    stride[t] -= 1
                ahead[t] = (cursor[t] + _PREFETCH * stride[t]) % t_len[t]
            delay = backoff * (2.0 ** a)
            if delay > maxbackoff:
                delay = maxbackoff
            n_next = 0
            for i in range(n_act):
                j = i if direct else act[i]
                dn = d_net
                if jitter > 0.0:
                    # netem's jitter: a normal deviation per attempt, never a negative delay.
                    dn = d_net + jitter * _normal(&s)
                    if dn < 0.0:
                        dn = 0.0
                if not available:
                    o = _ERR_UNAVAILABLE
                    dur = dn
                else:
                    # The replica, by its share of the requests; the stratum's place within
                    # the replica's share is the uniform of its queue wait.
                    v = buf[ch_rep * k + i] if ch_rep >= 0 else 0.0
                    if m == 1:
                        r = slots[0]
                        u = v
                    elif equal:
                        v = v * m
                        q = <Py_ssize_t>v
                        if q > m - 1:
                            q = m - 1
                        r = slots[q]
                        u = v - q
                    else:
                        lo = 0
                        hi = m
                        while lo < hi:  # first index with cdf > v
                            q = (lo + hi) >> 1
                            if cdf[q] <= v:
                                lo = q + 1
                            else:
                                hi = q
                        q = lo if lo < m - 1 else m - 1
                        r = slots[q]
                        c_lo = cdf[q - 1] if q > 0 else 0.0
                        c_hi = cdf[q]
                        u = (v - c_lo) / (c_hi - c_lo) if c_hi > c_lo else _unif(&s)
                    if u >= 1.0:
                        u = 0.9999999999999999
                    elif u < 0.0:
                        u = 0.0
                    # Its queue: the backlog's wait, plus with probability P(wait) an exponential.
                    pw = rp.pwait[r]
                    wt = rp.bwait[r]
                    if u < pw:
                        v = -log((u if u > 1e-300 else 1e-300) / (pw if pw > 1e-300 else 1e-300)) / rp.theta[r]
                        if isfinite(v):
                            wt += v
                    if rp.slack[r] > 0.0:
                        # The backlog is as old as the timeout: the dropped wait it out, the
                        # served have Exp(slack) to spare.
                        if buf[ch_u2 * k + i] < rp.drop[r]:
                            wt = rp.bwait[r]
                        else:
                            v = _unif(&s)
                            spare = -log(v if v > 1e-300 else 1e-300) / (rp.slack[r] if rp.slack[r] > 1e-300 else 1e-300)
                            wt = rp.bwait[r] - spare
                            if wt < 0.0:
                                wt = 0.0
                    o = _OK
                    alive = True
                    if any_reject and buf[ch_rej * k + i] < rp.reject[r]:
                        o = _ERR_REJECTED
                        alive = False
                    if ch_loss >= 0 and buf[ch_loss * k + i] < p_loss:
                        o = _ERR_UNAVAILABLE
                        alive = False
                    if tmo > 0.0 and alive and wt + dn >= tmo:
                        o = _ERR_TIMEOUT
                        alive = False
                    svc = 0.0
                    running = alive
                    if running:
                        for st in range(n_steps):
                            if st_kind[st] == _STEP_CALL:
                                dur = 0.0
                                ff = INFINITY
                                fail = False
                                for t in range(st_arg[st], st_arg[st] + st_n[st]):
                                    if made_ch[t] >= 0 and not buf[made_ch[t] * k + i] < t_p[t]:
                                        continue
                                    idx = cursor[t]
                                    cursor[t] = idx + stride[t]
                                    if cursor[t] >= t_len[t]:
                                        cursor[t] -= t_len[t]
                                    nx = ahead[t]
                                    __builtin_prefetch(td_p[t] + nx)
                                    __builtin_prefetch(to_p[t] + nx)
                                    nx += stride[t]
                                    ahead[t] = nx - t_len[t] if nx >= t_len[t] else nx
                                    d = td_p[t][idx]
                                    if d > dur:
                                        dur = d
                                    if to_p[t][idx] != _OK:
                                        fail = True
                                        if d < ff:
                                            ff = d
                                if fail:
                                    svc += ff
                                    o = _ERR_DOWNSTREAM
                                    running = False
                                    break
                                svc += dur
                            else:
                                p_i = st_arg[st]
                                d = pool_p[p_i][pos[p_i]]
                                pos[p_i] = pos[p_i] + 1 if pos[p_i] + 1 < pool_len[p_i] else 0
                                if st_kind[st] == _STEP_WORK:
                                    if rp.ps_fast[r]:
                                        d = _ps_fast(d, rp.ps_ky[r], rp.ps_kv[r], rp.stretch[r], rp.ps_kt[r], &s, gs)
                                    elif rp.ps_rho[r] > 0.0:
                                        d = _ps_sojourn(d, d * rp.stretch[r], rp.ps_rho[r], rp.ps_mu[r],
                                                        rp.ps_scale[r], &s, gs)
                                    else:
                                        d = d * rp.stretch[r]
                                svc += d
                    if running and any_err and buf[ch_inj * k + i] < rp.err_rate[r]:
                        o = _ERR_INJECTED
                    if alive:
                        srv_t = wt + svc
                        sok = o == _OK
                        server[ns] = srv_t
                        server_ok[ns] = sok
                        wait[ns] = wt
                        service[ns] = svc
                        ns += 1
                        if not sok:
                            n_sfail += 1.0
                        dur = srv_t + dn
                        if tmo > 0.0 and dur > tmo:
                            o = _ERR_TIMEOUT
                            dur = tmo
                    else:
                        dur = dn
                        if o == _ERR_TIMEOUT:
                            dur = tmo
                duration[j] = dur if direct else duration[j] + dur
                outcome[j] = o
                retryable = o != _OK and ((retry_mask >> o) & 1) == 1
                if retryable:
                    att_fail += 1.0
                    if a + 1 < n_att:
                        duration[j] += delay
                        pend[n_next] = j
                        n_next += 1
            n_pend = n_next
    for i in range(pool_pos.shape[0]):
        pool_pos[i] = pos[i]
    return ns, att_count, att_fail, n_sfail
