"""A cache shard lost, then recovered: the hit ratio drops by the lost share and comes back, on both planes.

A lost shard takes its share of the keys (``1 / shards``): every lookup of them misses,
so the hit ratio is Che's steady ratio times ``1 - lost / shards`` from the fault to the
``recover``, and the database gets the misses. Before and after, the steady ratio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import devopsim

RATE = 300.0
LOSS, RECOVER = 300.0, 900.0
SCENARIO = f"""
name: shards
duration: 20m
plane: flow
traffic: {{rate: {RATE:g}/s, classes: [{{name: x, entry: a.go}}]}}
services:
  a: {{replicas: 4, concurrency: 32, endpoints: {{go: {{steps: [{{work: exp(2ms)}},
      {{cache: {{store: kv, keyspace: k, onMiss: [{{query: db.read}}]}}}}]}}}}}}
datastores:
  kv: {{kind: redis, shards: 3, memory: 512Mi,
        keyspaces: {{k: {{keys: 100000, size: 1Ki, popularity: zipf(0.6), ttl: 30m}}}}}}
  db: {{kind: postgres, operations: {{read: {{work: exp(1ms)}}}}}}
timeline:
  - {{at: {LOSS:g}s, fault: {{kind: cache-shard-loss, target: kv}}}}
  - {{at: {RECOVER:g}s, fault: {{kind: recover, target: kv}}}}
"""


def _steady_hit_ratio() -> float:
    """Che's approximation for the keyspace alone in 512 MiB."""
    from devopsim.stateful.cache import KeyspaceLoad, characteristic_time, hit_probability, zipf_groups

    p, c = zipf_groups(100000, 0.6)
    ks = KeyspaceLoad(p, c, 1024.0, RATE, 1800.0)
    T = characteristic_time([ks], 512 * 2**20)
    return float(np.dot(c * p, hit_probability(RATE * p, T, 1800.0)))


def _interval_ratio(m: object, t0: float, t1: float) -> float:
    """Hits over lookups between the scrapes at ``t0`` and ``t1`` (the exporter's counters)."""
    import pandas as pd

    assert isinstance(m, pd.DataFrame)

    def at(metric: str, t: float) -> float:
        return float(m[(m.metric == metric) & (m.t == t)]["value"].sum())

    hits = at("redis_keyspace_hits_total", t1) - at("redis_keyspace_hits_total", t0)
    misses = at("redis_keyspace_misses_total", t1) - at("redis_keyspace_misses_total", t0)
    return hits / (hits + misses)


@pytest.fixture(scope="module", params=["flow", "request"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> devopsim.Result:  # type: ignore[name-defined]
    path: Path = tmp_path_factory.mktemp("shards") / "shards.yaml"
    path.write_text(SCENARIO)
    return devopsim.simulate(path, overrides={"plane": request.param})


def test_lost_shard_takes_its_share_of_hits_until_recovered(run) -> None:  # type: ignore[no-untyped-def]
    h = _steady_hit_ratio()
    m = run.metrics
    # The exporter counts lookups at the ratio the planes used: exact up to the counters' sums.
    assert _interval_ratio(m, 60.0, LOSS) == pytest.approx(h, rel=1e-6)
    assert _interval_ratio(m, LOSS + 15.0, RECOVER) == pytest.approx(h * 2 / 3, rel=1e-6)
    assert _interval_ratio(m, RECOVER + 15.0, 1185.0) == pytest.approx(h, rel=1e-6)
    up = m[m.metric == "redis_up"]
    assert set(up["value"]) == {1.0}  # two shards of three still answer


def test_database_gets_the_lost_shards_misses(run) -> None:  # type: ignore[no-untyped-def]
    h = _steady_hit_ratio()
    m = run.metrics
    m = m[(m.metric == "http_requests_total") & m.labels.str.contains('"service":"db"', regex=False)]
    s = m.groupby("t")["value"].sum()
    t, v = s.index.to_numpy(dtype=float), s.to_numpy(dtype=float)
    rate = np.diff(v) / np.diff(t)
    mid = t[1:]
    for lo, hi, ratio in ((60.0, LOSS, h), (LOSS + 60.0, RECOVER, h * 2 / 3), (RECOVER + 60.0, 1200.0, h)):
        sel = (mid > lo) & (mid <= hi)
        assert rate[sel].mean() == pytest.approx(RATE * (1.0 - ratio), rel=0.05), (lo, hi)
