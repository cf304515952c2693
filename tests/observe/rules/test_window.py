"""The sliding window the rules loop evaluates on answers as the whole store does."""

from __future__ import annotations

import numpy as np

from devopsim.observe.promql import Engine
from devopsim.observe.rules.window import WindowStore, needed_history
from devopsim.observe.store import MetricStore


def test_needed_history_counts_ranges_offsets_and_subqueries() -> None:
    assert needed_history(["up"]) == 300.0
    assert needed_history(["rate(x[5m]) > 1", "avg_over_time(y[1h] offset 10m)"]) == 300.0 + 4200.0
    assert needed_history(["max_over_time(rate(x[5m])[30m:1m])"]) == 300.0 + 300.0 + 1800.0
    assert needed_history(["x @ 100"]) is None


def test_window_answers_like_the_full_store() -> None:
    full = MetricStore()
    history = needed_history(["rate(c[5m])"])
    assert history is not None
    win = WindowStore(full, history + 60.0)
    ids = np.array([full.series("c", {"i": "a"}), full.series("c", {"i": "b"}), full.series("g", {})])
    exprs = ["sum(rate(c[5m]))", "g", "max_over_time(g[2m])", "count(c)"]
    for k in range(0, 400):
        t = 15.0 * k
        vals = np.array([3.0 * k, 5.0 * k + (k % 7), float(k % 11)])
        full.append(t, ids, vals)
        win.tee(t, ids, vals)
        if k % 2 == 0:
            win.trim(t)
            a, b = Engine(full), Engine(win.store)
            for e in exprs:
                assert a.instant(e, t) == b.instant(e, t), (e, t)
    assert win.store.n_samples < full.n_samples / 5
