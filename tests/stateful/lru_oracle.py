"""Exact request-level LRU simulations: the oracles Che's approximation is judged against.

``lru_hit_ratios`` replays a request stream through LRU caches of every size at once
(Mattson's stack algorithm: a request hits a cache of ``C`` keys iff fewer than ``C``
distinct other keys were requested since its previous request). The stack distances
come from an offline dominance count done level by level with NumPy sorts, so a
stream of half a million requests takes about a second.

``lru_ttl_hit_ratio`` simulates a Redis-like cache with an LRU limit and a TTL that
is set when a key is written on a miss and not renewed by hits; expired keys are
freed at once. It runs request by request (OrderedDict), in simulated time.
"""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np


def stack_distances(keys: np.ndarray) -> np.ndarray:
    """For each request, distinct other keys requested since its key's previous request (-1: first)."""
    n = keys.size
    order = np.lexsort((np.arange(n), keys))
    sk = keys[order]
    prev = np.full(n, -1, dtype=np.int64)
    same = sk[1:] == sk[:-1]
    prev[order[1:][same]] = order[:-1][same]
    # A_i = #{j < i : prev[j] <= prev[i]}; distance = A_i - (prev[i] + 1).
    count = np.zeros(n, dtype=np.int64)
    idx = np.arange(n, dtype=np.int64)
    m = n + 2
    h = 1
    while h < n:
        block = idx // (2 * h)
        right = (idx // h) % 2 == 1
        left_keys = np.sort(block[~right] * m + prev[~right] + 1)
        qb = block[right]
        hi = np.searchsorted(left_keys, qb * m + prev[right] + 1, side="right")
        lo = np.searchsorted(left_keys, qb * m, side="left")
        count[right] += hi - lo
        h *= 2
    dist = count - (prev + 1)
    dist[prev < 0] = -1
    return dist


def lru_hit_ratios(keys: np.ndarray, sizes: list[int], skip: int) -> list[float]:
    """Exact hit ratio of LRU caches of each of ``sizes`` keys over ``keys[skip:]``."""
    d = stack_distances(keys)[skip:]
    return [float(np.mean((d >= 0) & (d < c))) for c in sizes]


def lru_hit_ratio_direct(keys: np.ndarray, size: int, skip: int) -> float:
    """The same, request by request with an OrderedDict (the reference for the vectorised one)."""
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for i, k in enumerate(keys.tolist()):
        if k in cache:
            cache.move_to_end(k)
            hits += i >= skip
        else:
            cache[k] = None
            if len(cache) > size:
                cache.popitem(last=False)
    return hits / (keys.size - skip)


def lru_ttl_hit_ratio(times: np.ndarray, keys: np.ndarray, size: int, ttl: float, skip: int) -> float:
    """Hit ratio of an LRU cache of ``size`` keys whose entries expire ``ttl`` after being written."""
    cache: OrderedDict[int, float] = OrderedDict()  # key -> write time
    writes: deque[tuple[float, int]] = deque()
    hits = 0
    for i, (t, k) in enumerate(zip(times.tolist(), keys.tolist(), strict=True)):
        while writes and writes[0][0] + ttl <= t:
            wt, wk = writes.popleft()
            if cache.get(wk) == wt:
                del cache[wk]
        if k in cache:
            cache.move_to_end(k)
            hits += i >= skip
            continue
        cache[k] = t
        writes.append((t, k))
        if len(cache) > size:
            cache.popitem(last=False)
    return hits / (keys.size - skip)
