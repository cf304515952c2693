"""The compiled ``rate``/``increase``/``delta`` (``_extrapolate.extrapolate``, behind
``rangefuncs._extrapolated``) against its NumPy reference (``_extrapolated_numpy``), bit for
bit, on windows with counter resets, NaN, zeros, -0.0, repeated times and windows too short
to extrapolate; both extrapolation rules (Prometheus 2 and 3), per-window and single ends;
and against a hand computation of Prometheus' extrapolation."""

from __future__ import annotations

import numpy as np
import pytest

from devopsim.observe.promql.rangefuncs import _extrapolated, _extrapolated_numpy
from devopsim.observe.promql.select import Window


def _bits(x: np.ndarray) -> list[int]:
    return np.ascontiguousarray(x, dtype=np.float64).view(np.uint64).tolist()


def test_hand_computed_rate_with_a_reset() -> None:
    # samples at 10, 20, 30, 40 s: 5, 8, 2, 6 (a reset: 8 lost); window (0, 45 s]
    t = np.array([10_000, 20_000, 30_000, 40_000], np.int64)
    v = np.array([5.0, 8.0, 2.0, 6.0])
    w = Window(np.array([3]), t, v, np.array([0]), np.array([4]), 45_000)
    # increase 6 - 5 + 8 = 9 over 30 s sampled; avg interval 10 s, threshold 11 s;
    # start gap 10 s < 11 s, but a counter is not extrapolated below zero: 30 * 5 / 9 = 16.7 s
    # is later than the start, so 10 s is kept; end gap 5 s. 9 * (30 + 10 + 5) / 30 = 13.5
    lids, inc = _extrapolated(w, 45_000, counter=True, is_rate=False, v2=False)
    assert lids.tolist() == [3] and inc.tolist() == [13.5]
    _, rate = _extrapolated(w, 45_000, counter=True, is_rate=True, v2=False)
    assert rate.tolist() == [13.5 / 45.0]


def _case(rng: np.random.Generator, per_window_end: bool) -> Window:
    n = int(rng.integers(0, 80))
    t = np.cumsum(rng.choice([0, 5_000, 15_000, 15_001], n)).astype(np.int64)
    v = np.cumsum(rng.integers(0, 5, n)).astype(np.float64)
    for i in rng.choice(max(n, 1), int(rng.integers(0, 5))).tolist():
        if i < n:
            v[i] = rng.choice([0.0, -0.0, -2.0, np.nan, np.inf, 3.0])
    ncut = min(n + 1, 2 * int(rng.integers(0, 10))) // 2 * 2
    cuts = np.sort(rng.choice(np.arange(n + 1), ncut, replace=False))
    s, e = cuts[0::2].astype(np.int64), cuts[1::2].astype(np.int64)
    last = t[np.maximum(e - 1, 0)] if n else np.zeros(s.size, np.int64)
    ends = last + rng.integers(0, 40_000, s.size)
    ts: int | np.ndarray = ends.astype(np.int64) if per_window_end else int(ends.max(initial=0))
    return Window(np.arange(s.size, dtype=np.int64) + 100, t, v, s, e, ts)


@pytest.mark.parametrize("seed", range(30))
def test_compiled_extrapolation_equals_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(10):
        w = _case(rng, per_window_end=bool(rng.random() < 0.7))
        range_ms = int(rng.choice([30_000, 60_000, 300_000]))
        for counter, is_rate in ((True, True), (True, False), (False, False)):
            for v2 in (False, True):
                with np.errstate(all="ignore"):  # as apply_range_function calls them
                    lids, got = _extrapolated(w, range_ms, counter, is_rate, v2)
                    ref_lids, want = _extrapolated_numpy(w, range_ms, counter, is_rate, v2)
                assert lids.tolist() == ref_lids.tolist()
                assert _bits(got) == _bits(want)
                compared += got.size
    assert compared > 0
