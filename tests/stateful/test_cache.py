"""Che's approximation (with TTLs) against exact request-level LRU simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devopsim.stateful.cache import (
    KeyspaceLoad,
    che,
    hit_probability,
    tune,
    warm_hit_ratio,
    zipf_groups,
)
from tests.stateful.lru_oracle import (
    lru_hit_ratio_direct,
    lru_hit_ratios,
    lru_ttl_hit_ratio,
    stack_distances,
)

N_KEYS = 5000


def _space(n: int, s: float, rate: float = 1.0, ttl: float | None = None, exact: bool = True) -> KeyspaceLoad:
    p, c = zipf_groups(n, s, exact=n if exact else 2000)
    return KeyspaceLoad(p, c, 1.0, rate, ttl)


def test_vectorised_oracle_equals_request_by_request_lru() -> None:
    rng = np.random.default_rng(1)
    keys = rng.choice(300, size=6000, p=_space(300, 0.9).probs)
    d = stack_distances(keys)
    assert d.min() == -1
    for size in (1, 7, 30, 150):
        assert lru_hit_ratios(keys, [size], 1000)[0] == pytest.approx(
            lru_hit_ratio_direct(keys, size, 1000), abs=0
        )


@pytest.mark.parametrize("s", [0.6, 0.8, 1.0, 1.2])
def test_che_within_two_points_of_exact_lru(s: float) -> None:
    space = _space(N_KEYS, s)
    rng = np.random.default_rng(int(s * 100))
    keys = rng.choice(N_KEYS, size=400_000, p=space.probs)
    fractions = [0.01, 0.05, 0.1, 0.25, 0.5]
    sizes = [int(f * N_KEYS) for f in fractions]
    exact = lru_hit_ratios(keys, sizes, skip=100_000)
    for size, sim in zip(sizes, exact, strict=True):
        model = che([space], float(size)).hit_ratio
        assert abs(model - sim) < 0.02, (s, size, model, sim)


def test_limits_are_the_textbook_formulas() -> None:
    lam = np.array([0.01, 0.3, 2.0, 50.0])
    assert hit_probability(lam, 3.0) == pytest.approx(1 - np.exp(-lam * 3.0))
    assert hit_probability(lam, math.inf, 5.0) == pytest.approx(lam * 5 / (1 + lam * 5))
    # A TTL far beyond T changes nothing; a T far beyond the TTL leaves only the TTL.
    assert hit_probability(lam, 3.0, 1e6) == pytest.approx(1 - np.exp(-lam * 3.0), rel=1e-6)
    assert hit_probability(lam, 1e7, 5.0) == pytest.approx(lam * 5 / (1 + lam * 5), rel=1e-6)


def test_series_and_pole_inversions_agree_where_they_meet() -> None:
    lam = np.geomspace(1e-3, 30, 40)
    for T in (0.5, 2.0):
        below = hit_probability(lam, T, 39.999 * T)
        above = hit_probability(lam, T, 40.001 * T)
        assert np.max(np.abs(below - above)) < 1e-4


def _poisson_stream(space: KeyspaceLoad, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0 / space.rate, size=n))
    keys = rng.choice(space.keys, size=n, p=space.probs)
    return times, keys


# TTLs from 0.3 T to 60 T (T: the characteristic time without TTL), so both the
# finite series (ttl < 40 T) and the dominant-pole inversion are judged.
@pytest.mark.parametrize(
    ("s", "fraction", "ttl", "binds"),
    [
        (0.8, 0.05, 4.0, True),
        (0.8, 0.05, 12.0, True),
        (0.8, 0.2, 20.0, True),
        (1.0, 0.1, 40.0, True),
        (0.6, 0.5, 550.0, True),
        (0.8, 0.05, 740.0, False),
    ],
)
def test_che_with_ttl_within_two_points_of_exact_lru_ttl(
    s: float, fraction: float, ttl: float, binds: bool
) -> None:
    n_keys = 2000
    space = _space(n_keys, s, rate=10.0, ttl=ttl)
    times, keys = _poisson_stream(space, 150_000, seed=int(ttl))
    size = int(fraction * n_keys)
    sim = lru_ttl_hit_ratio(times, keys, size, ttl, skip=30_000)
    model = che([space], float(size)).hit_ratio
    assert abs(model - sim) < 0.02, (s, fraction, ttl, model, sim)
    # The TTL matters here: without it the hit ratio would be clearly higher.
    no_ttl = che([_space(n_keys, s, rate=10.0)], float(size)).hit_ratio
    if binds:
        assert no_ttl > model + 0.01


def test_ttl_only_cache_matches_simulation() -> None:
    space = _space(1000, 0.9, rate=5.0, ttl=60.0)
    times, keys = _poisson_stream(space, 100_000, seed=3)
    sim = lru_ttl_hit_ratio(times, keys, 10**9, 60.0, skip=10_000)
    fit = che([space], 1e12)
    assert math.isinf(fit.characteristic_time)
    assert abs(fit.hit_ratio - sim) < 0.01


def test_grouping_large_keyspaces_is_accurate() -> None:
    exact = _space(200_000, 0.9, exact=True)
    grouped = _space(200_000, 0.9, exact=False)
    assert grouped.probs.size < 3000
    assert grouped.keys == 200_000
    assert float(np.dot(grouped.probs, grouped.counts)) == pytest.approx(1.0)
    for size in (2000.0, 20_000.0, 100_000.0):
        assert che([grouped], size).hit_ratio == pytest.approx(che([exact], size).hit_ratio, abs=2e-4)


def test_keyspaces_share_memory_by_their_byte_sizes() -> None:
    a = KeyspaceLoad(*zipf_groups(1000, 0.9), size=4096.0, rate=100.0)
    b = KeyspaceLoad(*zipf_groups(1000, 0.9), size=1024.0, rate=100.0)
    fit = che([a, b], 200 * 4096.0)
    # Same popularity and rate, same T: each key is held with the same probability,
    # so the byte shares are 4:1 and the occupancy equals the memory.
    assert fit.keyspace_hit_ratio[0] == pytest.approx(fit.keyspace_hit_ratio[1])
    assert fit.used_bytes == pytest.approx(200 * 4096.0, rel=1e-6)


def test_warm_up_after_a_flush_recovers_to_the_steady_state() -> None:
    space = _space(1000, 0.9, rate=50.0)
    fit = che([space], 100.0)
    assert warm_hit_ratio(space, fit.characteristic_time, 0.0) == 0.0
    mid = warm_hit_ratio(space, fit.characteristic_time, 10.0)
    late = warm_hit_ratio(space, fit.characteristic_time, 1e6)
    assert 0.0 < mid < late
    assert late == pytest.approx(fit.hit_ratio, rel=1e-9)


def test_tuner_finds_memory_for_a_target() -> None:
    space = _space(5000, 0.9)
    advice = tune([space], 0.6)
    assert advice.reachable and advice.ttl_factor == 1.0
    assert che([space], advice.memory).hit_ratio == pytest.approx(0.6, abs=1e-3)


def test_tuner_stretches_ttl_when_expiry_caps_the_hit_ratio() -> None:
    space = _space(5000, 0.8, rate=20.0, ttl=30.0)
    cap = che([space], 1e12).hit_ratio
    advice = tune([space], min(0.95, cap + 0.1))
    assert advice.reachable and advice.ttl_factor > 1.0 and advice.note == "ttl"
    stretched = KeyspaceLoad(space.probs, space.counts, 1.0, 20.0, 30.0 * advice.ttl_factor)
    assert che([stretched], advice.memory).hit_ratio == pytest.approx(advice.target, abs=2e-3)
    with pytest.raises(ValueError, match="target hit ratio"):
        tune([space], 1.0)
