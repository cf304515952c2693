"""Queueing formulas the flow plane is built on.

* Erlang C for M/M/c, by the stable Erlang B recursion, for real-valued load.
* Allen-Cunneen for G/G/c: ``Wq ≈ Wq(M/M/c) · (ca² + cs²) / 2`` (exact for M/G/1,
  where it is the Pollaczek-Khinchine formula).
* Processor sharing on ``C`` cores (each job at most one core): the number of jobs
  behaves as M/M/C (and is insensitive to the work distribution), so the mean
  slowdown of CPU work is ``1 + EC(C, uC) / (C (1 - u))``; on less than one core it
  is ``1 / (C (1 - u))``. Smoother arrivals (round robin) scale the queueing part by
  Allen-Cunneen's ``(ca² + 1) / 2`` with the Kraemer & Langenbach-Belz factor.
* M/G/c beyond two moments: the light-traffic mean wait of a waiting customer is the
  mean of the smallest of ``c`` equilibrium residual service times; its ratio to the
  exponential case (``E[S]/c``) is :func:`min_residual_ratio`. The flow plane
  interpolates between that (light traffic) and Allen-Cunneen (heavy traffic), which
  is exact for M/M/c and for M/G/1 (Pollaczek-Khinchine) and corrects Allen-Cunneen's
  overestimate for highly variable service on several servers.
* Tables of the stationary mean number in system ``L(ρ)`` of M/M/c on a grid that is
  dense near ρ = 1, so that the pointwise-stationary fluid approximation can invert
  ``L`` quickly.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RHO_GRID",
    "erlang_c",
    "lq_table",
    "min_residual_ratio",
    "mmc_wait",
    "ps_arrival_factor",
    "ps_slowdown",
    "ps_workers",
]

# u = -log10(1 - rho) from 0 to 7: rho from 0 to 1 - 1e-7, dense near 1.
_U = np.linspace(0.0, 7.0, 1401)
RHO_GRID = 1.0 - 10.0 ** (-_U)


def erlang_c(c: np.ndarray | int, a: np.ndarray | float) -> np.ndarray:
    """Probability of waiting in M/M/c with ``c`` servers and offered load ``a = λ/μ`` (a < c).

    ``c`` may be an array of integers; ``a`` broadcasts against it.
    """
    c_arr = np.asarray(c, dtype=np.int64)
    a_arr = np.asarray(a, dtype=np.float64)
    c_b, a_b = np.broadcast_arrays(c_arr, a_arr)
    b = np.ones(c_b.shape)
    kmax = int(c_b.max()) if c_b.size else 0
    for k in range(1, kmax + 1):
        step = k <= c_b
        b = np.where(step, a_b * b / (k + a_b * b), b)
    rho = np.where(c_b > 0, a_b / np.maximum(c_b, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(rho < 1.0, b / (1.0 - rho + rho * b), 1.0)
    return np.asarray(out, dtype=np.float64)


def mmc_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue of M/M/c."""
    return float(erlang_c(c, lam / mu)) / (c * mu - lam)


def lq_table(c: int) -> np.ndarray:
    """Mean queue length of M/M/c at each utilisation of :data:`RHO_GRID`."""
    a = c * RHO_GRID
    pw = erlang_c(np.full(RHO_GRID.shape, c), a)
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = pw * RHO_GRID / (1.0 - RHO_GRID)
    return np.asarray(lq, dtype=np.float64)


def ps_arrival_factor(u: np.ndarray, ca2: np.ndarray) -> np.ndarray:
    """How arrivals that are not Poisson scale the CPU's queueing under processor sharing.

    With exponential jobs the number of jobs on the CPU does not depend on the order they
    are served in, so the G/M/C FIFO approximation carries over: Allen-Cunneen's
    ``(ca² + cs²) / 2`` with ``cs² = 1``, times the Kraemer & Langenbach-Belz factor.
    Round robin over ``n`` replicas gives each one arrivals with ``ca² = 1/n``, which
    queue less than Poisson ones; 1 for Poisson arrivals.
    """
    u_b, c_b = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(ca2, dtype=np.float64))
    out = np.ones(u_b.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        klb = np.where(
            c_b < 1.0,
            np.exp(-2.0 * (1.0 - u_b) * (1.0 - c_b) ** 2 / (3.0 * u_b * (c_b + 1.0))),
            np.exp(-(1.0 - u_b) * (c_b - 1.0) / (c_b + 4.0)),
        )
    on = (c_b != 1.0) & (u_b > 0.0)
    out[on] = 0.5 * (c_b[on] + 1.0) * klb[on]
    return out


def ps_workers(
    u: np.ndarray, cores: np.ndarray, ca2: np.ndarray | float, workers: np.ndarray | int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Processor sharing behind ``workers`` worker slots: (stretch of the jobs in service,
    mean number waiting for a worker, chance an arrival waits for one).

    The jobs on the CPU number about geometrically with mean ``E[N] = u C s`` (Little, ``s``
    the unlimited slowdown of :func:`ps_slowdown`); ``σ = E[N] / (1 + E[N])``. At most
    ``c`` hold a worker: they share the cores, ``E[min(N, c)] = E[N] (1 - σ^c)``, so the
    stretch is ``s (1 - σ^c)``; the rest wait, ``E[(N - c)+] = σ^(c+1) / (1 - σ)``, and an
    arrival finds all workers busy with chance ``σ^c``. Exact for M/M/1 (the number in
    system does not depend on the order of service); the kernel's reference.
    """
    s = ps_slowdown(u, cores, ca2)
    c = np.asarray(workers, dtype=np.float64)
    en = np.asarray(u, dtype=np.float64) * np.asarray(cores, dtype=np.float64) * s
    sig = en / (1.0 + en)
    pw = sig**c
    return s * (1.0 - pw), pw * sig / (1.0 - sig), pw


def ps_slowdown(u: np.ndarray, cores: np.ndarray, ca2: np.ndarray | float = 1.0) -> np.ndarray:
    """Mean stretch of CPU work under processor sharing at CPU utilisation ``u`` of ``cores`` cores.

    ``u`` must be below 1; fractional core counts interpolate between their neighbours.
    ``ca2`` is the squared coefficient of variation of the arrivals (1: Poisson; see
    :func:`ps_arrival_factor`). The flow plane's tick computes this per replica in its
    Cython kernel (``_queue.replica_prep``); this is the reference it is tested against.
    """
    u = np.asarray(u, dtype=np.float64)
    cores = np.asarray(cores, dtype=np.float64)
    u_b, c_b, a_b = np.broadcast_arrays(u, cores, np.asarray(ca2, dtype=np.float64))
    f = ps_arrival_factor(u_b, a_b)
    out = np.empty(u_b.shape)
    small = c_b <= 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out[small] = (1.0 + f[small] * u_b[small] / (1.0 - u_b[small])) / c_b[small]
        big = ~small
        if big.any():
            lo = np.floor(c_b[big]).astype(np.int64)
            hi = np.ceil(c_b[big]).astype(np.int64)
            frac = c_b[big] - lo
            s_lo = 1.0 + f[big] * erlang_c(lo, u_b[big] * lo) / (lo * (1.0 - u_b[big]))
            s_hi = 1.0 + f[big] * erlang_c(hi, u_b[big] * hi) / (hi * (1.0 - u_b[big]))
            out[big] = s_lo + frac * (s_hi - s_lo)
    return out


def min_residual_ratio(samples: np.ndarray, c: int) -> float:
    """``E[min of c equilibrium residuals of S] / (E[S]/c)`` for the distribution of ``samples``.

    1 for exponential service; ``(1 + cs²)/2`` when ``c = 1``.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    x = x[np.isfinite(x) & (x >= 0)]
    if x.size < 2 or x.mean() <= 0:
        return 1.0
    m = x.mean()
    n = x.size
    # E[(S - t)+] at t = each sample, exactly for the empirical distribution.
    suffix = np.concatenate((np.cumsum(x[::-1])[::-1], [0.0]))
    t = np.concatenate(([0.0], x))
    idx = np.searchsorted(x, t, side="left")
    excess = (suffix[idx] - t * (n - idx)) / n
    fe = np.clip(excess / m, 0.0, 1.0)
    # Between samples E[(S-t)+] is linear in t; integrate fe**c with the trapezoid rule.
    emin = float(np.sum(0.5 * (fe[:-1] ** c + fe[1:] ** c) * np.diff(t)))
    return float(emin / (m / c))
