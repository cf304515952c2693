# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""One tick of every replica's queue, for the flow plane.

Each replica is a pool of ``c`` workers with mean holding time ``1/μ`` and a FIFO
queue. Its state is split in two:

* ``N``, the mean number in system of the *stochastic* queue, moved by the
  pointwise-stationary fluid approximation (PSFFA): ``dN/dt = λ - cμ ρ(N)``, where
  ``ρ(N)`` inverts the stationary relation ``N = cρ + φ Lq_{M/M/c}(ρ)`` and
  ``φ = (ca² + cs²)/2`` is the Allen-Cunneen factor. In steady state this gives the
  Erlang C (G/G/c: Allen-Cunneen) queue exactly; after a change it relaxes at the
  speed the stationary curve implies, so queues build and drain over time.
* ``B``, a *deterministic* backlog: while arrivals exceed capacity every worker is
  busy and the excess queues up in order (a fluid); it drains at ``cμ - λ`` once
  they do not. Requests in it wait ``B/(cμ)``, a nearly certain wait, which is what
  makes timeouts in overload fail nearly everything, as they do.

A queue capacity rejects arrivals (the M/M/c/K blocking probability in steady state,
the overflow in overload); a timeout drops queued requests whose caller has gone when
they reach the head (the backlog cannot hold more than ``λT``).
"""

import numpy as np

from libc.math cimport exp, log10, pow, fabs, INFINITY


cdef double _G_DU = 7.0 / 1400.0  # grid step in u = -log10(1 - rho)


cdef inline double _rho_at(double g) noexcept nogil:
    """Utilisation at fractional grid index ``g``."""
    return 1.0 - pow(10.0, -g * _G_DU)


# The utilisation at each whole grid index, worked out once (the same expression as
# ``_rho_at``, so the same numbers): the bisections in ``_rho_of_n`` read it instead of
# calling ``pow`` a dozen times per replica and tick.
cdef enum:
    _N_RHO = 1401
cdef double _RHO[_N_RHO]
cdef int _i_rho
for _i_rho in range(_N_RHO):
    _RHO[_i_rho] = _rho_at(<double>_i_rho)


cdef inline double _L(double* lq, int g, double c, double phi) noexcept nogil:
    return c * (_RHO[g] if g < _N_RHO else _rho_at(<double>g)) + phi * lq[g]


cdef double _rho_of_n(double* lq, int n_grid, double c, double phi, double n) noexcept nogil:
    """Invert N = cρ + φ Lq(ρ) by bisection on the table, then interpolate."""
    if n <= 0.0:
        return 0.0
    cdef int lo = 0
    cdef int hi = n_grid - 1
    cdef int mid
    if _L(lq, hi, c, phi) <= n:
        return _RHO[hi] if hi < _N_RHO else _rho_at(<double>hi)
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if _L(lq, mid, c, phi) <= n:
            lo = mid
        else:
            hi = mid
    cdef double l0 = _L(lq, lo, c, phi)
    cdef double l1 = _L(lq, hi, c, phi)
    cdef double f = (n - l0) / (l1 - l0) if l1 > l0 else 0.0
    return _rho_at(lo + f)


cdef double _n_of_rho(double* lq, int n_grid, double c, double phi, double rho) noexcept nogil:
    """Stationary mean number in system at utilisation ``rho`` (< 1)."""
    if rho <= 0.0:
        return 0.0
    if rho >= 1.0:
        rho = 1.0 - 1e-15  # the top of the table (a rate equal to capacity, up to rounding)
    cdef double g = -log10(1.0 - rho) / _G_DU
    if not g < n_grid - 1:  # also NaN: never index outside the table
        g = n_grid - 1.001
    cdef int i = <int>g
    cdef double f = g - i
    return (1.0 - f) * _L(lq, i, c, phi) + f * _L(lq, i + 1, c, phi)


cdef double _pwait(double* lq, int n_grid, double rho) noexcept nogil:
    """Erlang C at utilisation rho, from the table: Lq (1 - ρ) / ρ."""
    if rho <= 0.0:
        return 0.0
    if rho >= 1.0:
        return 1.0
    cdef double g = -log10(1.0 - rho) / _G_DU
    if not g < n_grid - 1:
        return 1.0
    cdef int i = <int>g
    cdef double f = g - i
    cdef double q = (1.0 - f) * lq[i] + f * lq[i + 1]
    cdef double pw = q * (1.0 - rho) / rho
    return pw if pw < 1.0 else 1.0


cdef double _block(double a, long c, long k) noexcept nogil:
    """Blocking probability of M/M/c/K (K = places in the queue), offered load a = λ/μ."""
    cdef double term = 1.0
    cdef double total = 1.0
    cdef long n
    cdef double scale
    for n in range(1, c + k + 1):
        if n <= c:
            term *= a / n
        else:
            term *= a / c
        total += term
        if total > 1e250:  # rescale to stay finite
            scale = 1e-250
            term *= scale
            total *= scale
    return term / total


cdef double _tau(double* lq, int n_grid, double c, double phi, double rho, double cap) noexcept nogil:
    """Local relaxation time of the fluid queue: dN/d(cμρ) at utilisation rho."""
    cdef double d = 1e-4 * (1.0 - rho)
    if d < 1e-16:
        return INFINITY  # at capacity the stochastic queue never settles
    cdef double rho2 = rho + d
    cdef double slope
    if 1.0 - rho2 < 1e-7:
        # Beyond the table (it stops at 1 - 1e-7): heavy traffic, L ~ phi / (1 - rho).
        slope = phi / ((1.0 - rho) * (1.0 - rho))
        if slope < c:
            slope = c
        return slope / cap
    cdef double n1 = _n_of_rho(lq, n_grid, c, phi, rho)
    cdef double n2 = _n_of_rho(lq, n_grid, c, phi, rho2)
    slope = (n2 - n1) / (rho2 - rho)
    if slope < c:
        slope = c
    return slope / cap


def queue_step(double[::1] lam, double[::1] hold, double[::1] phi, long[::1] conc, long[::1] qcap,
               double[::1] tmo, long[::1] row, double[:, ::1] lq, double dt,
               double[::1] n_state, double[::1] b_state,
               double[::1] served, double[::1] rejected, double[::1] dropped, double[::1] busy_area,
               double[::1] queue_area, double[::1] pwait, double[::1] theta, double[::1] bwait,
               double[::1] slack, double[::1] settled):
    """Advance every replica's queue by ``dt`` seconds.

    Inputs (per replica): arrival rate ``lam`` (/s), mean holding time ``hold`` (s), the
    Allen-Cunneen factor ``phi``, workers ``conc``, queue capacity ``qcap`` (-1: none),
    timeout ``tmo`` (0: none), and ``row``, the row of ``lq`` (the M/M/c Lq table for its
    ``c``). State: ``n_state`` (stochastic queue) and ``b_state`` (backlog), updated in place.
    Outputs: requests served, rejected and dropped during the tick; the integrals of busy
    workers and of queued requests; and, at the end of the tick, the wait distribution
    seen by an arrival: P(wait) ``pwait``, the exponential rate ``theta`` of the waiting
    part, and the deterministic backlog wait ``bwait``. When a timeout caps the backlog,
    ``bwait`` is the timeout and ``slack`` the rate λ - cμ: a request that is served
    started with ``Exp(slack)`` to spare (the excess arrivals behind it keep the head
    young: this is the sojourn of an M/M/1 queue of deadlines), the rest are dropped.
    """
    cdef Py_ssize_t r, nrep = lam.shape[0]
    cdef int n_grid = lq.shape[1]
    cdef double c, mu, cap, lam_r, lam_in, ph, n, b, t_left, h, rho, rho_a, n_eq, tau, dn, g
    cdef double rho2, n2, srv, rej, drp, busy, qa, pblock, tmax, room, excess, pw, b2, tau_eq
    cdef double* tab
    cdef int steps
    with nogil:
        for r in range(nrep):
            lam_r = lam[r]
            n = n_state[r]
            b = b_state[r]
            served[r] = 0.0
            rejected[r] = 0.0
            dropped[r] = 0.0
            busy_area[r] = 0.0
            queue_area[r] = 0.0
            pwait[r] = 0.0
            theta[r] = INFINITY
            bwait[r] = 0.0
            slack[r] = 0.0
            settled[r] = 1.0
            if hold[r] <= 0.0 or conc[r] <= 0:
                n_state[r] = 0.0
                b_state[r] = 0.0
                continue
            if lam_r <= 0.0 and n <= 0.0 and b <= 0.0:
                continue
            settled[r] = 0.0
            c = <double>conc[r]
            mu = 1.0 / hold[r]
            cap = c * mu
            ph = phi[r] if phi[r] > 1e-6 else 1e-6
            tab = &lq[row[r], 0]
            # Arrivals beyond a finite queue are refused (steady-state M/M/c/K blocking).
            pblock = 0.0
            if qcap[r] >= 0:
                pblock = _block(lam_r / mu, conc[r], qcap[r])
            lam_in = lam_r * (1.0 - pblock)
            rej = lam_r * pblock * dt
            srv = 0.0
            drp = 0.0
            busy = 0.0
            qa = 0.0
            rho_a = lam_in / cap
            t_left = dt
            steps = 0
            while t_left > 1e-12:
                steps += 1
                if b > 0.0 or rho_a >= 1.0:
                    # Saturated: every worker busy, the excess queues in order.
                    rho = _rho_of_n(tab, n_grid, c, ph, n)
                    h = t_left
                    if lam_in < cap and b > 0.0:
                        tmax = b / (cap - lam_in)
                        if tmax < h:
                            h = tmax
                    b2 = b + (lam_in - cap) * h
                    if b2 < 0.0:
                        b2 = 0.0
                    # The backlog cannot hold more than the requests a timeout lets wait,
                    # nor more than the queue's places. In overload the head is as old as
                    # the timeout, so the backlog holds the last ``T`` seconds of arrivals;
                    # once arrivals fall below capacity (or stop: the replica left the
                    # load-balancing set) it drains, and holds what can still be served
                    # within ``T``: ``cμT``, never less.
                    room = INFINITY
                    if tmo[r] > 0.0:
                        room = (lam_in if lam_in > cap else cap) * tmo[r]
                    if b2 > room:
                        drp += b2 - room
                        b2 = room
                    if qcap[r] >= 0:
                        excess = n + b2 - (c + qcap[r])
                        if excess > 0.0:
                            rej += excess
                            b2 -= excess
                            if b2 < 0.0:
                                b2 = 0.0
                    srv += cap * h
                    busy += c * h
                    qa += ((n - c * rho) + 0.5 * (b + b2)) * h
                    b = b2
                    t_left -= h
                    if b <= 0.0 and rho_a >= 1.0:
                        b = 1e-9  # stays saturated while arrivals exceed capacity
                    if steps > 100000:
                        break
                    continue
                # Stable: the stochastic queue relaxes toward its stationary level.
                n_eq = _n_of_rho(tab, n_grid, c, ph, rho_a)
                rho = _rho_of_n(tab, n_grid, c, ph, n)
                tau = _tau(tab, n_grid, c, ph, rho, cap)
                tau_eq = _tau(tab, n_grid, c, ph, rho_a, cap)
                if qcap[r] >= 0 and n_eq > c + qcap[r]:
                    n_eq = c + qcap[r]
                if (t_left >= 12.0 * tau and t_left >= 12.0 * tau_eq) or fabs(n - n_eq) <= 2e-3 * (n_eq + 1e-3):
                    # It reaches equilibrium well within the step (or is there already, as a
                    # slow queue in a steady stretch is): take the stationary values.
                    n = n_eq
                    settled[r] = 1.0
                    srv += cap * rho_a * t_left
                    busy += c * rho_a * t_left
                    qa += (n - c * rho_a) * t_left
                    t_left = 0.0
                    break
                h = 0.2 * tau if 0.2 * tau < t_left else t_left
                n += (lam_in - cap * rho) * h
                if n < 0.0:
                    n = 0.0
                if qcap[r] >= 0 and n >= c + qcap[r]:
                    # A full finite queue: what is admitted (after blocking) is what is served.
                    n = c + qcap[r]
                    srv += lam_in * h
                    busy += lam_in / mu * h
                    qa += qcap[r] * h
                    t_left -= h
                    continue
                srv += cap * rho * h
                busy += c * rho * h
                qa += (n - c * rho) * h
                t_left -= h
                if steps > 5000:
                    break
            n_state[r] = n
            b_state[r] = b if b > 1e-9 else 0.0
            rho = _rho_of_n(tab, n_grid, c, ph, n)
            if b_state[r] > 0.0:
                pw = 1.0
                theta[r] = cap / ph
                bwait[r] = b_state[r] / cap
                if tmo[r] > 0.0 and bwait[r] >= tmo[r] * (1.0 - 1e-9) and lam_in > cap:
                    bwait[r] = tmo[r]  # the head of the queue is as old as the timeout
                    slack[r] = lam_in - cap
            else:
                pw = _pwait(tab, n_grid, rho)
                theta[r] = cap * (1.0 - rho) / ph if rho < 1.0 else 1e-12
            pwait[r] = pw
            # Requests whose wait passes the timeout are dropped when they reach the head.
            if tmo[r] > 0.0 and b_state[r] <= 0.0 and pw > 0.0:
                g = pw * exp(-theta[r] * tmo[r])
                drp += srv * g
                srv -= srv * g
            served[r] = srv
            rejected[r] = rej
            dropped[r] = drp
            busy_area[r] = busy
            queue_area[r] = qa if qa > 0.0 else 0.0


cdef double _erlang_c(long c, double a) noexcept nogil:
    """Erlang C (P(wait) in M/M/c) at offered load ``a``, by the Erlang B recursion."""
    cdef double b = 1.0
    cdef long k
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    cdef double rho = a / c if c > 0 else 0.0
    if rho < 1.0:
        return b / (1.0 - rho + rho * b)
    return 1.0


cdef double _ps_slowdown(double u, double cores, double ca2) noexcept nogil:
    """Mean stretch of CPU work under processor sharing (see ``queueing.ps_slowdown``)."""
    cdef long lo, hi
    cdef double frac, s_lo, s_hi, f
    f = _ps_arrivals(u, ca2)
    if cores <= 1.0:
        return (1.0 + f * u / (1.0 - u)) / cores
    lo = <long>cores
    hi = lo if <double>lo == cores else lo + 1
    frac = cores - lo
    s_lo = 1.0 + f * _erlang_c(lo, u * lo) / (lo * (1.0 - u))
    s_hi = 1.0 + f * _erlang_c(hi, u * hi) / (hi * (1.0 - u))
    return s_lo + frac * (s_hi - s_lo)


cdef double _ps_arrivals(double u, double ca2) noexcept nogil:
    """Allen-Cunneen with Kraemer & Langenbach-Belz for the CPU's queue of jobs, taken as
    exponential (``cs² = 1``): ``(ca² + 1) / 2`` times the KLB factor; 1 for Poisson arrivals."""
    cdef double den
    if ca2 == 1.0 or u <= 0.0:
        return 1.0
    if ca2 < 1.0:
        den = 3.0 * u * (ca2 + 1.0)
        return 0.5 * (ca2 + 1.0) * exp(-2.0 * (1.0 - u) * (1.0 - ca2) * (1.0 - ca2) / den)
    return 0.5 * (ca2 + 1.0) * exp(-(1.0 - u) * (ca2 - 1.0) / (ca2 + 4.0))


def replica_prep(long[::1] svc, double[::1] lat, long[::1] alive, double[::1] n_state, double[::1] b_state,
                 double[::1] share, double[::1] ca2, double[::1] svc_rate,
                 double[::1] a_s, double[::1] b_s, double[::1] a2_s, double[::1] ab_s, double[::1] b2_s,
                 double[::1] cores_s, long[::1] conc_s, double[::1] resid_s, double[::1] tmo_s,
                 long[::1] qcap_s, long[::1] row_s, double[::1] prev_served, double[::1] prev_thru,
                 double[::1] lam, double[::1] cpu_frame, double[::1] thru, double[::1] k_out,
                 double[::1] hold, double[::1] phi, double[::1] tail, double[::1] tmo,
                 long[::1] conc, long[::1] qcap, long[::1] row):
    """What each replica's queue runs on this tick (the flow plane's ``_tick``, per replica).

    From its service's rate and holding-time moments (``*_s``, per service) and the
    replica's share, version latency factor ``lat`` and state: its arrival rate, CPU work
    per frame, CPU load ``thru`` (what it serves, half-way from the last tick's:
    ``prev_served`` / ``prev_thru``, empty on the first tick), the stretch ``k`` of its
    CPU work under processor sharing, the mean holding time and the Allen-Cunneen factor
    ``phi`` with the light-traffic interpolation (``resid_s``) and the Kraemer &
    Langenbach-Belz correction, the tail factor of a waiting request, and the per-replica
    copies of the service's timeout, workers, queue capacity and Lq-table row. A replica
    that is not alive, or has nothing to do, gets a holding time of 0.
    """
    cdef Py_ssize_t r, nrep = svc.shape[0]
    cdef bint has_prev = prev_served.shape[0] == nrep
    cdef bint has_thru = prev_thru.shape[0] == nrep
    cdef long s
    cdef double th, u, cores, cc, max_stretch, slow, kk, h, m2, cs2, rho_a, klb, lt, ph, c2, den
    cdef double en, sig, lq_ps, lq_mmc, pw_ps, ec
    with nogil:
        for r in range(nrep):
            s = svc[r] if svc[r] > 0 else 0
            lam[r] = svc_rate[s] * share[r]
            cpu_frame[r] = b_s[s] * lat[r]
            th = lam[r]
            if has_prev and b_state[r] > 0.0 and prev_served[r] > th:
                th = prev_served[r]  # a backlog drains: the CPU serves more than arrives
            if has_thru:
                th = 0.5 * (th + prev_thru[r])
            thru[r] = th
            cores = cores_s[s]
            cc = <double>conc_s[s]
            u = th * cpu_frame[r] / cores
            max_stretch = cc / cores
            if cores < 1.0 and 1.0 / cores > max_stretch:
                max_stretch = 1.0 / cores
            elif cores >= 1.0 and 1.0 > max_stretch:
                max_stretch = 1.0
            lq_ps = -1.0  # (no processor sharing below saturation)
            if cc <= cores:
                slow = 1.0
            elif u < 0.999:
                # Processor sharing: the jobs on the CPU number about geometrically, mean
                # E[N] = λ T (Little, T the CPU work's mean sojourn); at most ``c`` hold a
                # worker and share the cores, the rest wait for one: the stretch is that of
                # the jobs in service, E[min(N, c)] = E[N] (1 - σ^c), and the wait for a worker
                # holds E[(N - c)+] = σ^(c+1) / (1 - σ), σ = E[N] / (1 + E[N]).
                slow = _ps_slowdown(u, cores, ca2[r])
                en = u * cores * slow
                if en == en and en > 0.0:
                    sig = en / (1.0 + en)
                    pw_ps = pow(sig, cc)
                    slow = slow * (1.0 - pw_ps)
                    lq_ps = pw_ps * sig / (1.0 - sig)
                if slow > max_stretch or slow != slow:
                    slow = max_stretch
            else:
                slow = max_stretch
            kk = lat[r] * slow
            k_out[r] = kk
            h = a_s[s] + b_s[s] * kk
            m2 = a2_s[s] + ab_s[s] * kk + b2_s[s] * kk * kk
            cs2 = 1.0
            if h > 0.0:
                cs2 = m2 / (h * h) - 1.0
                if cs2 < 0.0:
                    cs2 = 0.0
            rho_a = lam[r] * h / cc if cc > 0.0 else 0.0
            if rho_a > 0.999:
                rho_a = 0.999
            c2 = ca2[r]
            if c2 < 1.0:
                den = 3.0 * rho_a * (c2 + cs2)
                klb = exp(-2.0 * (1.0 - rho_a) * (1.0 - c2) * (1.0 - c2) / (den if den > 1e-12 else 1e-12))
            else:
                den = c2 + 4.0 * cs2
                klb = exp(-(1.0 - rho_a) * (c2 - 1.0) / (den if den > 1e-12 else 1e-12))
            lt = 2.0 * resid_s[s] - 1.0
            if lt < 0.0:
                lt = 0.0
            ph = 0.5 * (c2 + rho_a * cs2 + (1.0 - rho_a) * lt) * klb
            th = 0.5 * (c2 + cs2) * klb
            tail[r] = (th if th > 1e-9 else 1e-9) / (ph if ph > 1e-9 else 1e-9)
            if lq_ps >= 0.0 and rho_a > 0.0:
                # Under processor sharing the workers' queue is the CPU's overflow: φ scales
                # M/M/c's queue at the workers' load to E[(N - c)+], and an arrival waits
                # for a worker with the chance σ^c that c or more are on the CPU (``tail``
                # turns the queue's Erlang C into it; the mean wait stays).
                ec = _erlang_c(conc_s[s], cc * rho_a)
                lq_mmc = ec * rho_a / (1.0 - rho_a)
                if lq_mmc > 1e-12:
                    ph = lq_ps / lq_mmc
                    if ph > 1e6:
                        ph = 1e6
                    tail[r] = (ec if ec > 1e-12 else 1e-12) / (pw_ps if pw_ps > 1e-12 else 1e-12)
            phi[r] = ph
            tmo[r] = tmo_s[s]
            conc[r] = conc_s[s]
            qcap[r] = qcap_s[s]
            row[r] = row_s[s]
            if not (alive[r] == 1 and (lam[r] > 0.0 or n_state[r] > 0.0 or b_state[r] > 0.0)):
                h = 0.0
            hold[r] = h


def replica_post(double[::1] lam, double[::1] pwait, double[::1] theta, double[::1] bwait,
                 double[::1] tail, double[::1] dropped, double[::1] rejected, double dt,
                 double[::1] mwait, double[::1] pw_tail, double[::1] mean_w,
                 double[::1] drop_frac, double[::1] rej_frac):
    """Per replica after its queue's tick: mean wait, P(wait) in the tail, mean exponential
    wait, and the shares of arrivals dropped and rejected."""
    cdef Py_ssize_t r, nrep = lam.shape[0]
    cdef double mw, arrived, p
    with nogil:
        for r in range(nrep):
            mw = 0.0
            if theta[r] > 0.0 and theta[r] < INFINITY:
                mw = pwait[r] / theta[r]
            mean_w[r] = mw
            mwait[r] = bwait[r] + mw
            if bwait[r] > 0.0:
                pw_tail[r] = pwait[r]
            else:
                p = pwait[r] / tail[r]
                pw_tail[r] = p if p < 1.0 else 1.0
            arrived = lam[r] * dt
            if lam[r] > 0.0:
                drop_frac[r] = dropped[r] / (arrived if arrived > 1e-300 else 1e-300)
                rej_frac[r] = rejected[r] / (arrived if arrived > 1e-300 else 1e-300)
            else:
                drop_frac[r] = 0.0
                rej_frac[r] = 0.0


cdef inline unsigned long long _splitmix64(unsigned long long* s) noexcept nogil:
    s[0] += 0x9E3779B97F4A7C15ULL
    cdef unsigned long long z = s[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


def stratified(double[::1] out, unsigned long long seed):
    """Fill ``out`` (n values) with one uniform in each of the n strata ``[i/n, (i+1)/n)``, in
    random order: ``(i + U_i) / n`` shuffled (Fisher-Yates). The variates come from a
    SplitMix64 sequence started at ``seed``, which the caller draws from its named stream, so
    runs stay deterministic."""
    cdef Py_ssize_t i, j, n = out.shape[0]
    cdef unsigned long long s = seed
    cdef double inv = 1.0 / n if n > 0 else 0.0
    cdef double tmp
    with nogil:
        for i in range(n):
            out[i] = (i + (_splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0)) * inv
        for i in range(n - 1, 0, -1):
            j = <Py_ssize_t>((_splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0) * (i + 1))
            if j > i:
                j = i
            tmp = out[i]
            out[i] = out[j]
            out[j] = tmp


def bucket_hist(double[::1] x, double[::1] bounds, double[::1] out, double weight):
    """Add ``weight`` to ``out[k]`` for each value, ``k`` the first bound ``>= x`` (Prometheus'
    ``le`` buckets, ``np.searchsorted(bounds, x, side="left")``; the last bucket is +Inf)."""
    cdef Py_ssize_t i, lo, hi, mid, n = x.shape[0], nb = bounds.shape[0]
    cdef double v
    if out.shape[0] != nb + 1:
        raise ValueError("bucket_hist: one more bucket than bounds (+Inf)")
    with nogil:
        for i in range(n):
            v = x[i]
            lo = 0
            hi = nb
            while lo < hi:  # first index with bounds[index] >= v
                mid = (lo + hi) >> 1
                if bounds[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            out[lo] += weight


def call_target(long[::1] idx, double[::1] made_u, double p, double[::1] cs_dur, long[::1] cs_out,
                double[::1] dur, double[::1] first_fail, unsigned char[::1] fail):
    """One callee of a call step, for every sample ``j`` of a composition: the call is made
    when ``p >= 1`` or ``made_u[j] < p``; it takes the callee's sample ``idx[j]`` (duration
    ``cs_dur``, outcome ``cs_out``, -1 = ok). A parallel group's duration is the longest
    call (``dur``), and it fails with the first failing one (``first_fail``, ``fail``)."""
    cdef Py_ssize_t j, k, n = idx.shape[0], m = cs_dur.shape[0]
    cdef bint always = p >= 1.0
    cdef double d
    if dur.shape[0] != n or first_fail.shape[0] != n or fail.shape[0] != n:
        raise ValueError("call_target: one value per sample")
    if not always and made_u.shape[0] != n:
        raise ValueError("call_target: one uniform per sample")
    for j in range(n):
        k = idx[j]
        if k < 0 or k >= m:
            raise IndexError(f"call_target: sample {k} of {m}")
    with nogil:
        for j in range(n):
            if not always and not made_u[j] < p:
                continue
            k = idx[j]
            d = cs_dur[k]
            if d > dur[j]:
                dur[j] = d
            if cs_out[k] != -1:
                if d < first_fail[j]:
                    first_fail[j] = d
                fail[j] = 1


def increments(double[::1] served, double[::1] rejected, double[::1] dropped, double[::1] busy,
               double[::1] queue, double[::1] cpu_frame, double[::1] mwait, double[::1] mix,
               long[::1] live, long[::1] svc, long[::1] pr, long[::1] pe, double[::1] fail,
               double[::1] started_fail, long[::1] ep_local, long[::1] ep_svc, double[::1] srv_mean,
               double[:, ::1] srv_buckets, double[::1] lam, double[:, ::1] win,
               double[::1] occ, double[::1] cpu, long[::1] loc, double[:, ::1] codes, double[::1] lsum,
               double[:, ::1] hist, double[::1] sv_n, double[::1] sv_err, double[::1] sv_srv,
               double[::1] sv_wsum, double[:, ::1] winw):
    """What one second at a tick's rates adds to the counters (``FlowPlane._increments_numpy``,
    the tests' reference, in the same arithmetic and order): per replica its occupancy and CPU;
    per (replica, endpoint) pair ``p`` its endpoint slot, responses by code (200 and 500 by
    ``fail[p]``, or by the endpoint's failure share where ``fail`` is empty), latency sum and
    histogram; per service (sums over the live replicas in order, as ``np.bincount`` adds) its
    requests, errors, frames started and queue-wait sum; per replica the window's seven values
    times its arrivals. The outputs are written whole (the service sums from 0.0)."""
    cdef Py_ssize_t R = served.shape[0], P = pr.shape[0], S = sv_n.shape[0], E = mix.shape[0]
    cdef Py_ssize_t nb = srv_buckets.shape[1], nw = win.shape[0]
    cdef Py_ssize_t i, p, j, r, e, s
    cdef double fr, f, x
    cdef bint own_fail = fail.shape[0] == P
    if not (rejected.shape[0] == dropped.shape[0] == busy.shape[0] == queue.shape[0] == cpu_frame.shape[0]
            == mwait.shape[0] == svc.shape[0] == lam.shape[0] == occ.shape[0] == cpu.shape[0] == R):
        raise ValueError("increments: one value per replica in every replica array")
    if win.shape[1] != R or winw.shape[0] != nw or winw.shape[1] != R:
        raise ValueError("increments: the window's values per replica")
    if (pe.shape[0] != P or loc.shape[0] != P or codes.shape[0] != P or lsum.shape[0] != P
            or hist.shape[0] != P or hist.shape[1] != nb or codes.shape[1] != 4
            or not (own_fail or fail.shape[0] == 0)):
        raise ValueError("increments: one row per (replica, endpoint) pair")
    if (started_fail.shape[0] != E or ep_local.shape[0] != E or ep_svc.shape[0] != E
            or srv_mean.shape[0] != E or srv_buckets.shape[0] != E):
        raise ValueError("increments: one value per endpoint in every endpoint array")
    if not (sv_err.shape[0] == sv_srv.shape[0] == sv_wsum.shape[0] == S):
        raise ValueError("increments: one value per service in every service array")
    for i in range(live.shape[0]):
        if live[i] < 0 or live[i] >= R or svc[live[i]] < 0 or svc[live[i]] >= S:
            raise IndexError("increments: a live replica outside the replicas or services")
    for p in range(P):
        if pr[p] < 0 or pr[p] >= R or pe[p] < 0 or pe[p] >= E:
            raise IndexError("increments: a pair outside the replicas or endpoints")
    for e in range(E):
        if ep_svc[e] < 0 or ep_svc[e] >= S:
            raise IndexError("increments: an endpoint outside the services")
    cdef double[::1] fail_frames = np.zeros(S)
    cdef double[::1] err_part = np.zeros(S)
    with nogil:
        for r in range(R):
            occ[r] = busy[r] + queue[r]
            cpu[r] = served[r] * cpu_frame[r]
        for p in range(P):
            r = pr[p]
            e = pe[p]
            fr = served[r] * mix[e]
            f = fail[p] if own_fail else started_fail[e]
            codes[p, 0] = fr * (1.0 - f)
            codes[p, 1] = fr * f
            codes[p, 2] = rejected[r] * mix[e]
            codes[p, 3] = dropped[r] * mix[e]
            loc[p] = ep_local[e]
            lsum[p] = fr * srv_mean[e]
            for j in range(nb):
                hist[p, j] = fr * srv_buckets[e, j]
        for s in range(S):
            sv_n[s] = 0.0
            sv_srv[s] = 0.0
            sv_wsum[s] = 0.0
        for i in range(live.shape[0]):
            r = live[i]
            s = svc[r]
            sv_srv[s] += served[r]
            sv_n[s] += served[r] + rejected[r] + dropped[r]
            err_part[s] += rejected[r] + dropped[r]
            sv_wsum[s] += served[r] * mwait[r]
        for e in range(E):
            fail_frames[ep_svc[e]] += mix[e] * started_fail[e]
        for s in range(S):
            sv_err[s] = err_part[s] + sv_srv[s] * fail_frames[s]
        for j in range(nw):
            for r in range(R):
                winw[j, r] = lam[r] * win[j, r]
