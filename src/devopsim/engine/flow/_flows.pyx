# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled per-tick flow arithmetic of the flow plane (``routing`` and ``FlowPlane._tick``).

``holding`` is ``FlowRouting._set_holding`` (sequential calls add, a parallel group lasts
as long as its slowest branch) and ``callee_holding`` is ``FlowRouting._callee_means``
followed by it; ``flow_mix`` is the tick's flow of calls down the graph level by level,
the endpoint mix at each service and the mix's holding-time moments. Every sum runs in
the order of the NumPy reference's ``bincount`` (index order, into a fresh accumulator
that is then added), every product in its order, and the module is built with
``-ffp-contract=off``, so the results equal the NumPy code's bit for bit (checked in
``tests/engine/test_flows_kernel.py`` against ``FlowRouting``'s NumPy methods).
"""

from libc.stdlib cimport calloc, free

import numpy as np


cdef inline double _npmax(double a, double b) noexcept nogil:
    # np.maximum: NaN wins, else the larger.
    if a >= b or a != a:
        return a
    return b


cdef void _holding(const double* mean, const double[::1] var, const long[::1] seq_src,
                   const long[::1] seq_dst, const double[::1] seq_k, const long[::1] par_dst,
                   const double[::1] par_k, const long[::1] par_starts, const long[::1] par_src,
                   const double[::1] wait_mean, const double[::1] wait_var,
                   double* hf, double* hfv, double* pp, double* pv) noexcept nogil:
    cdef Py_ssize_t E = wait_mean.shape[0], n = seq_src.shape[0], G = par_starts.shape[0]
    cdef Py_ssize_t NP = par_dst.shape[0], i, j, g, lo, hi
    cdef long s, d
    cdef double k, m, km, lp, lv
    for i in range(E):
        hf[i] = 0.0
        hfv[i] = 0.0
        pp[i] = 0.0
        pv[i] = 0.0
    for i in range(n):
        s = seq_src[i]
        d = seq_dst[i]
        k = seq_k[i]
        m = mean[d]
        hf[s] += k * m
        km = k * m
        hfv[s] += k * (var[d] + m * m) - km * km
    if NP:
        for g in range(G):
            lo = par_starts[g]
            hi = par_starts[g + 1] if g + 1 < G else NP
            lp = par_k[lo] * mean[par_dst[lo]]
            lv = par_k[lo] * var[par_dst[lo]]
            for j in range(lo + 1, hi):
                lp = _npmax(lp, par_k[j] * mean[par_dst[j]])
                lv = _npmax(lv, par_k[j] * var[par_dst[j]])
            pp[par_src[g]] += lp
            pv[par_src[g]] += lv
        for i in range(E):
            hf[i] = hf[i] + pp[i]
            hfv[i] = hfv[i] + pv[i]
    for i in range(E):
        hf[i] = wait_mean[i] + hf[i]
        hfv[i] = wait_var[i] + _npmax(hfv[i], 0.0)


def holding(const double[::1] mean, const double[::1] var, const long[::1] seq_src,
            const long[::1] seq_dst, const double[::1] seq_k, const long[::1] par_dst,
            const double[::1] par_k, const long[::1] par_starts, const long[::1] par_src,
            const double[::1] wait_mean, const double[::1] wait_var):
    """``FlowRouting._set_holding``: (hold_fixed, hold_fixed_var) per endpoint."""
    cdef Py_ssize_t E = wait_mean.shape[0]
    hf_a, hfv_a = np.empty(E), np.empty(E)
    cdef double[::1] hf = hf_a, hfv = hfv_a
    cdef double* tmp = <double*>calloc(2 * E + 1, sizeof(double))
    if tmp == NULL:
        raise MemoryError()
    _holding(&mean[0] if E else tmp, var, seq_src, seq_dst, seq_k, par_dst, par_k, par_starts,
             par_src, wait_mean, wait_var, &hf[0] if E else tmp, &hfv[0] if E else tmp, tmp, tmp + E)
    free(tmp)
    return hf_a, hfv_a


def callee_holding(const long[::1] live, const long[::1] svc, const double[::1] lam,
                   const double[::1] mwait, const double[::1] kr, Py_ssize_t S,
                   const long[::1] ep_svc, const double[::1] hold_fixed, const double[::1] cpu_mean,
                   const double[::1] net_delay, const double[::1] net_loss,
                   const double[::1] timeout, const double[::1] retry_mult,
                   const double[::1] call_mean, const double[::1] var, const long[::1] seq_src,
                   const long[::1] seq_dst, const double[::1] seq_k, const long[::1] par_dst,
                   const double[::1] par_k, const long[::1] par_starts, const long[::1] par_src,
                   const double[::1] wait_mean, const double[::1] wait_var):
    """``FlowRouting._callee_means`` (with its ``_set_holding``); ``net_delay`` empty: none."""
    cdef Py_ssize_t E = wait_mean.shape[0], n = live.shape[0], i, j
    cdef long s
    cdef double w, d, t, loss
    cdef bint net = net_delay.shape[0] > 0
    hf_a, hfv_a = np.empty(E), np.empty(E)
    cdef double[::1] hf = hf_a, hfv = hfv_a
    cdef double* tmp = <double*>calloc(3 * S + 3 * E + 1, sizeof(double))
    if tmp == NULL:
        raise MemoryError()
    cdef double* tot = tmp
    cdef double* mw = tmp + S
    cdef double* kk = tmp + 2 * S
    cdef double* mean = tmp + 3 * S
    for i in range(n):
        j = live[i]
        s = svc[j]
        w = lam[j]
        tot[s] += w
        mw[s] += w * mwait[j]
        kk[s] += w * kr[j]
    for i in range(S):
        mw[i] = mw[i] / tot[i]
        kk[i] = kk[i] / tot[i]
    for i in range(E):
        s = ep_svc[i]
        if tot[s] > 1e-12:
            d = mw[s] + hold_fixed[i] + cpu_mean[i] * kk[s]
            if net:
                loss = net_loss[s]
                d = net_delay[s] + (1.0 - loss) * d
            t = timeout[i]
            if t > 0 and d > t:
                d = t
            mean[i] = d * retry_mult[i]
        else:
            mean[i] = call_mean[i]
    if E:
        _holding(mean, var, seq_src, seq_dst, seq_k, par_dst, par_k, par_starts, par_src,
                 wait_mean, wait_var, &hf[0], &hfv[0], mean + E, mean + 2 * E)
    free(tmp)
    return hf_a, hfv_a


def flow_mix(const double[::1] calls0, const double[::1] per_call, const double[::1] admit,
             const long[::1] lvl_edges, const long[::1] lvl_off, const long[::1] edge_src,
             const long[::1] edge_dst, const double[::1] coef, const double[::1] retry_mult,
             const double[::1] reach_frac, const long[::1] ep_svc, const long[::1] n_ep,
             const double[::1] hold_fixed, const double[::1] hold_fixed_var,
             const double[::1] cpu_mean, const double[::1] cpu_var, const double[::1] ep_tmo,
             const long[::1] all_tmo):
    """The tick's flow down the levels, mix and moments (the NumPy block in ``FlowPlane._tick``).

    Returns calls, attempts, svc_rate, mix, a_s, b_s, a2_s, ab_s, b2_s, tmo_s.
    """
    cdef Py_ssize_t E = calls0.shape[0], S = n_ep.shape[0], L = lvl_off.shape[0] - 1
    cdef Py_ssize_t i, j, l, e
    cdef long s, src
    cdef double m, sr, hf
    calls_a, att_a, mix_a = np.empty(E), np.empty(E), np.empty(E)
    rate_a, a_a, b_a, a2_a, ab_a, b2_a, t_a = (np.zeros(S) for _ in range(7))
    cdef double[::1] calls = calls_a, att = att_a, mix = mix_a, rate = rate_a
    cdef double[::1] a_s = a_a, b_s = b_a, a2_s = a2_a, ab_s = ab_a, b2_s = b2_a, tmo_s = t_a
    cdef double* tmp = <double*>calloc(3 * E + 1, sizeof(double))
    if tmp == NULL:
        raise MemoryError()
    cdef double* spc = tmp
    cdef double* acc = tmp + E
    cdef double* reach = tmp + 2 * E
    for i in range(E):
        calls[i] = calls0[i]
        spc[i] = per_call[i] * admit[ep_svc[i]]
    for l in range(L):
        for i in range(E):
            acc[i] = 0.0
        for j in range(lvl_off[l], lvl_off[l + 1]):
            e = lvl_edges[j]
            src = edge_src[e]
            acc[edge_dst[e]] += calls[src] * spc[src] * coef[e]
        for i in range(E):
            calls[i] = calls[i] + acc[i]
    for i in range(E):
        att[i] = calls[i] * retry_mult[i]
        reach[i] = att[i] * reach_frac[i]
        rate[ep_svc[i]] += reach[i]
    for i in range(E):
        s = ep_svc[i]
        sr = rate[s]
        if sr > 0:
            m = reach[i] / sr
        elif sr <= 0:
            m = 1.0 / <double>n_ep[s]
        else:
            m = 0.0
        mix[i] = m
        hf = hold_fixed[i]
        a_s[s] += m * hf
        b_s[s] += m * cpu_mean[i]
        a2_s[s] += m * (hold_fixed_var[i] + hf * hf)
        ab_s[s] += m * 2 * hf * cpu_mean[i]
        b2_s[s] += m * (cpu_var[i] + cpu_mean[i] * cpu_mean[i])
        tmo_s[s] += m * ep_tmo[i]
    for i in range(S):
        if not all_tmo[i]:
            tmo_s[i] = 0.0
    free(tmp)
    return calls_a, att_a, rate_a, mix_a, a_a, b_a, a2_a, ab_a, b2_a, t_a
