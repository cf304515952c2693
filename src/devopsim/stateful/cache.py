"""The hit ratio of an LRU cache with TTLs: Che's approximation, and a tuner.

Che's approximation (Che, Tung and Wang, 2002; justified by Fricker, Robert
and Roberts, 2012) treats each key of an LRU cache under independent requests
as if it were held for a fixed *characteristic time* ``T`` after its last
request: key ``i``, requested at rate ``λ_i``, hits with probability
``1 - exp(-λ_i T)``, and ``T`` is the one value for which the expected
occupancy equals the capacity, ``Σ_i size_i · h_i(T) = memory``.

Redis adds expiry. A cache-aside client writes a key with ``SET key value EX
ttl`` on a miss, and a hit does not renew the TTL, so a key leaves the cache
``ttl`` after it was written even if it is hot (a *non-reset* timer), or
earlier if LRU evicts it (``T`` after its last request). With Poisson
requests this is a renewal process that restarts at every miss; the expected
number of hits per cycle is ``E[H] = λ ∫_0^ttl q(t) dt``, where ``q(t)`` is
the probability that no gap between requests longer than ``T`` has occurred
in ``t`` seconds since the write, and ``h = E[H] / (1 + E[H])``. Both limits
are the textbook ones: ``ttl → ∞`` gives Che's ``1 - exp(-λT)``, ``T → ∞``
gives the TTL cache's ``λ·ttl / (1 + λ·ttl)``. The Laplace transform of ``q``
is ``(1 - e^{-(λ+s)T}) / (s + λ e^{-(λ+s)T})``; we invert it exactly as a
finite series when ``ttl`` spans few ``T`` and by its dominant pole when it
spans many. By PASTA the hit probability is also the time-average
occupancy, so the same ``h`` enters the capacity equation.

Large keyspaces (millions of keys) are summarised by popularity groups: the
most popular ranks one by one, the tail in narrow geometric bins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CacheFit",
    "KeyspaceLoad",
    "TuneAdvice",
    "characteristic_time",
    "che",
    "hit_probability",
    "tune",
    "warm_hit_ratio",
    "zipf_groups",
]

_SERIES_MAX_TERMS = 40  # ttl/T up to this: exact finite series; beyond: dominant pole
_EXACT_RANKS = 2000


@dataclass(frozen=True)
class KeyspaceLoad:
    """One keyspace as the cache sees it.

    Args:
        probs: popularity of each key group (per key), summing with ``counts`` to 1.
        counts: how many keys each group holds.
        size: bytes one key occupies.
        rate: lookups per second into this keyspace.
        ttl: seconds a written key lives (``None``: no expiry).
    """

    probs: np.ndarray
    counts: np.ndarray
    size: float
    rate: float
    ttl: float | None = None

    @property
    def keys(self) -> int:
        """Number of keys."""
        return int(self.counts.sum())


@dataclass(frozen=True)
class CacheFit:
    """What Che's approximation says about one cache.

    Attributes:
        characteristic_time: ``T`` in seconds (``inf`` when everything fits).
        hit_ratio: lookups that hit, over all keyspaces.
        keyspace_hit_ratio: the same, per keyspace (in input order).
        used_bytes: expected bytes held.
    """

    characteristic_time: float
    hit_ratio: float
    keyspace_hit_ratio: tuple[float, ...]
    used_bytes: float


@dataclass(frozen=True)
class TuneAdvice:
    """A proposal to reach a target hit ratio.

    Attributes:
        target: the hit ratio asked for.
        memory: bytes the cache needs.
        ttl_factor: the factor to multiply every TTL by (1: keep them).
        reachable: whether the target can be reached at all.
        hit_ratio: the hit ratio the proposal gives.
        note: one line saying what limits the hit ratio.
    """

    target: float
    memory: float
    ttl_factor: float
    reachable: bool
    hit_ratio: float
    note: str


def zipf_groups(
    n: int, s: float, exact: int = _EXACT_RANKS, ratio: float = 1.01
) -> tuple[np.ndarray, np.ndarray]:
    """Zipf(``s``) popularity of ``n`` keys as groups: (probability per key, keys per group).

    The ``exact`` most popular ranks are their own groups; the rest fall into
    bins whose rank bounds grow by ``ratio``, each with its keys' exact mean
    probability, so the total is exactly 1.
    """
    if n < 1:
        raise ValueError(f"a keyspace needs at least one key (got {n})")
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    p = w / w.sum()
    if n <= exact:
        return p, np.ones(n, dtype=np.float64)
    edges = [exact]
    while edges[-1] < n:
        edges.append(min(n, max(edges[-1] + 1, math.ceil(edges[-1] * ratio))))
    cs = np.concatenate([[0.0], np.cumsum(p)])
    e = np.asarray(edges, dtype=np.int64)
    counts = np.diff(e).astype(np.float64)
    mass = cs[e[1:]] - cs[e[:-1]]
    return np.concatenate([p[:exact], mass / counts]), np.concatenate([np.ones(exact), counts])


def _expected_hits_series(lam: np.ndarray, T: float, tau: float) -> np.ndarray:
    """``λ ∫_0^τ q(t) dt`` by the exact finite series (``τ/T`` small)."""
    a = lam * np.exp(-lam * T)
    K = math.floor(tau / T)

    def h1(x: float) -> np.ndarray:
        out = np.zeros_like(lam)
        for k in range(K + 2):
            u = x - k * T
            if u <= 0:
                break
            out += (-a * u) ** k * u / math.factorial(k + 1)
        return out

    integral = h1(tau) - np.exp(-lam * T) * h1(tau - T)
    # The series is exact; clip the last bits of rounding to the physical range [0, τ].
    out: np.ndarray = lam * np.clip(integral, 0.0, tau)
    return out


def _expected_hits_pole(lam: np.ndarray, T: float, tau: float) -> np.ndarray:
    """``λ ∫_0^τ q(t) dt`` from the dominant pole of ``q``'s transform (``τ/T`` large)."""
    c = lam * T
    c = np.where(np.abs(c - 1.0) < 1e-6, 1.0 + 1e-6, c)
    # y = (λ - θ) T is the non-zero root of y = c (1 - e^{-y}); Newton from the convex side.
    y = np.where(c > 1.0, c, -2.0 * np.log(2.0 / np.minimum(c, 0.999)) - 2.0)
    for _ in range(80):
        f = y - c * (1.0 - np.exp(-y))
        step = f / (1.0 - c * np.exp(-y))
        y = y - step
        if np.all(np.abs(step) <= 1e-13 * np.maximum(1.0, np.abs(y))):
            break
    theta = lam * np.exp(-y)  # the pole equation, θ = λ e^{-(λ-θ)T}, without cancellation
    resid = (1.0 - theta / lam) / (1.0 - theta * T)  # residue of the transform at -θ
    small = c <= 30.0
    # Few hits per life (c small): ∫_0^τ q = Q(0) - (C/θ) e^{-θτ}, Q(0) = (e^c - 1)/λ.
    cs = np.where(small, c, 0.0)
    th_s = np.where(small, theta, 1.0)
    exact = np.expm1(cs) / lam - resid / th_s * np.exp(-th_s * tau)
    # Many hits per life: the dominant pole carries all but O(1/λ) of the integral.
    x = theta * tau
    phi = np.where(x > 1e-12, -np.expm1(-x) / np.maximum(x, 1e-300), 1.0 - 0.5 * x)
    dominant = resid * tau * phi
    out: np.ndarray = lam * np.clip(np.where(small, exact, dominant), 0.0, tau)
    return out


def hit_probability(lam: np.ndarray | float, T: float, ttl: float | None = None) -> np.ndarray:
    """Probability that a lookup of a key requested at rate ``lam`` hits.

    Args:
        lam: request rate of each key (per second).
        T: the LRU characteristic time in seconds (``inf``: no eviction).
        ttl: the key's TTL in seconds, set on write and not renewed by hits (``None``: none).
    """
    lam = np.asarray(lam, dtype=np.float64)
    if ttl is None or math.isinf(ttl):
        if math.isinf(T):
            return np.ones_like(lam)
        return -np.expm1(-lam * T)
    if ttl <= 0:
        return np.zeros_like(lam)
    if math.isinf(T):
        x = lam * ttl
        return x / (1.0 + x)
    if T <= 0:
        return np.zeros_like(lam)
    pos = lam > 0
    lam_p = np.where(pos, lam, 1.0)
    if ttl / T <= _SERIES_MAX_TERMS:
        eh = _expected_hits_series(lam_p, T, ttl)
    else:
        eh = _expected_hits_pole(lam_p, T, ttl)
    return np.where(pos, eh / (1.0 + eh), 0.0)


def _occupancy(spaces: Sequence[KeyspaceLoad], T: float) -> float:
    return float(
        sum(ks.size * np.dot(ks.counts, hit_probability(ks.rate * ks.probs, T, ks.ttl)) for ks in spaces)
    )


def characteristic_time(spaces: Sequence[KeyspaceLoad], memory: float) -> float:
    """The ``T`` at which the expected bytes held equal ``memory`` (``inf`` if all fits).

    Raises:
        ValueError: memory is not positive.
    """
    if memory <= 0:
        raise ValueError(f"cache memory must be positive (got {memory:g})")
    if _occupancy(spaces, math.inf) <= memory:
        return math.inf
    rates = [ks.rate * ks.probs.max() for ks in spaces if ks.rate > 0]
    if not rates:
        return math.inf
    lo, hi = 1e-9 / max(rates), 1.0 / max(rates)
    while _occupancy(spaces, hi) < memory:
        lo, hi = hi, hi * 4.0
        if hi > 1e15:
            return math.inf
    # Bisection in log T: occupancy is increasing in T.
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if _occupancy(spaces, mid) < memory:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-10:
            break
    return math.sqrt(lo * hi)


def che(spaces: Sequence[KeyspaceLoad], memory: float) -> CacheFit:
    """Hit ratios of a cache of ``memory`` bytes shared by ``spaces`` (Che's approximation)."""
    T = characteristic_time(spaces, memory)
    per: list[float] = []
    hits = 0.0
    total = 0.0
    for ks in spaces:
        h = hit_probability(ks.rate * ks.probs, T, ks.ttl)
        r = float(np.dot(ks.counts * ks.probs, h))
        per.append(r)
        hits += r * ks.rate
        total += ks.rate
    overall = hits / total if total > 0 else (sum(per) / len(per) if per else 0.0)
    return CacheFit(T, overall, tuple(per), _occupancy(spaces, T))


def warm_hit_ratio(ks: KeyspaceLoad, T: float, since: float) -> float:
    """Hit ratio of a keyspace ``since`` seconds after the cache was emptied.

    Key ``i`` is back once it has been requested again (probability ``1 - e^{-λ_i t}``)
    and is then held as in the steady state.
    """
    lam = ks.rate * ks.probs
    h = hit_probability(lam, T, ks.ttl)
    return float(np.dot(ks.counts * ks.probs, h * -np.expm1(-lam * max(since, 0.0))))


def _scaled(spaces: Sequence[KeyspaceLoad], factor: float) -> list[KeyspaceLoad]:
    return [
        KeyspaceLoad(ks.probs, ks.counts, ks.size, ks.rate, None if ks.ttl is None else ks.ttl * factor)
        for ks in spaces
    ]


def _overall(spaces: Sequence[KeyspaceLoad], T: float) -> float:
    total = sum(ks.rate for ks in spaces)
    hits = sum(
        ks.rate * float(np.dot(ks.counts * ks.probs, hit_probability(ks.rate * ks.probs, T, ks.ttl)))
        for ks in spaces
    )
    return hits / total if total > 0 else 0.0


def tune(spaces: Sequence[KeyspaceLoad], target: float, max_ttl_factor: float = 100.0) -> TuneAdvice:
    """Propose memory (and, if the TTLs cap the hit ratio, longer TTLs) for ``target``.

    The hit ratio grows with ``T``; we find the smallest ``T`` that reaches the
    target and size the memory to hold what that ``T`` keeps. If even an
    unbounded cache misses the target because keys expire too soon, the TTLs
    are stretched by the smallest factor (up to ``max_ttl_factor``) that makes
    it reachable.

    Raises:
        ValueError: the target is not in (0, 1).
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target hit ratio must lie strictly between 0 and 1 (got {target:g})")
    factor = 1.0
    note = "memory"
    if _overall(spaces, math.inf) < target:
        if all(ks.ttl is None for ks in spaces):
            return TuneAdvice(target, math.nan, 1.0, False, _overall(spaces, math.inf), "unreachable")
        lo, hi = 1.0, 2.0
        while _overall(_scaled(spaces, hi), math.inf) < target:
            lo, hi = hi, hi * 2.0
            if hi > max_ttl_factor:
                best = _overall(_scaled(spaces, max_ttl_factor), math.inf)
                return TuneAdvice(target, math.nan, max_ttl_factor, False, best, "ttl too short")
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            if _overall(_scaled(spaces, mid), math.inf) < target:
                lo = mid
            else:
                hi = mid
        factor = hi * 1.0001
        note = "ttl"
    sp = _scaled(spaces, factor)
    if _overall(sp, math.inf) < target:  # pragma: no cover - guarded above
        raise AssertionError("target unreachable after ttl scaling")
    rates = [ks.rate * ks.probs.max() for ks in sp if ks.rate > 0]
    lo, hi = 1e-9 / max(rates), 1.0 / max(rates)
    while _overall(sp, hi) < target:
        lo, hi = hi, hi * 4.0
        if hi > 1e15:
            break
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if _overall(sp, mid) < target:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-10:
            break
    memory = _occupancy(sp, hi)
    return TuneAdvice(target, memory, factor, True, _overall(sp, hi), note)
