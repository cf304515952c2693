"""The incidents loop's per-class totals: one or two rows read one by one, as np.add.reduce sums them."""

from __future__ import annotations

import numpy as np

from devopsim.incidents.loop import _index, _total


def test_total_of_one_or_two_rows_is_the_reduction_to_the_bit() -> None:
    rng = np.random.default_rng(3)
    a = rng.random(6) * 10.0 ** rng.integers(-9, 9, 6)
    for rows in ([2], [0, 1], [4, 1], [3, 4], [0, 2, 5], [1, 2, 3, 4]):
        idx = _index(rows)
        few = tuple(rows) if len(rows) <= 2 else None
        want = float(np.add.reduce(a[idx]))
        assert _total(a, idx, few) == want
        assert _total(a, idx, None) == want
