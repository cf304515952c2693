"""Counter-reset correction of ``rate``/``increase`` (``rangefuncs._add_resets``), which finds the
windows holding a reset from the reset positions alone, against its dense reference
(``_sequential_add`` over ``_reset_drops``, every sample's term) and against hand computation
of Prometheus' rule (a sample below its predecessor adds the predecessor back)."""

from __future__ import annotations

import numpy as np
import pytest

from devopsim.observe.promql.rangefuncs import _add_resets, _reset_drops, _sequential_add


def test_hand_computed_increase_over_a_reset() -> None:
    v = np.array([7.0, 5.0, 10.0, 2.0, 4.0, 1.0])
    # window 1..4 (5, 10, 2, 4): last - first + 10 lost at the reset to 2
    got = _add_resets(np.array([4.0 - 5.0]), v, np.array([2]), np.array([5]))
    assert got.tolist() == [9.0]
    # window 1..2 (5, 10): no reset inside, nothing added (the 7 -> 5 drop is before it)
    assert _add_resets(np.array([5.0]), v, np.array([2]), np.array([3])).tolist() == [5.0]


def _bits(x: np.ndarray) -> list[int]:
    return np.ascontiguousarray(x, dtype=np.float64).view(np.uint64).tolist()


@pytest.mark.parametrize("seed", range(30))
def test_sparse_reset_correction_equals_the_dense_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n = int(rng.integers(0, 60))
        v = np.cumsum(rng.integers(0, 4, n)).astype(np.float64)
        for i in rng.choice(max(n, 1), int(rng.integers(0, 4)), replace=True).tolist():
            if i < n:  # resets, to zero, to a negative value, NaN and -0.0 around them
                v[i] = rng.choice([0.0, -0.0, -3.0, np.nan, 1.0])
        if n and rng.random() < 0.3:
            v[rng.integers(0, n)] = 0.0  # a drop from zero adds a 0 term, not a reset
        # ordered, non-overlapping windows of 1+ samples, as a range function reads them
        ncut = min(n + 1, 2 * int(rng.integers(0, 8))) // 2 * 2
        cuts = np.sort(rng.choice(np.arange(n + 1), ncut, replace=False))
        s, e = cuts[0::2].astype(np.int64), cuts[1::2].astype(np.int64)
        keep = (e - s) >= 2
        s, e = s[keep], e[keep]
        init = rng.choice([0.0, -0.0, 1.5, -2.0], s.size)
        want = _sequential_add(init, _reset_drops(v), s + 1, e)
        got = _add_resets(init, v, s + 1, e)
        assert _bits(got) == _bits(want)
