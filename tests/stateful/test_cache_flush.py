"""A cache flush at run time: the database load jumps and decays as the cache warms, on both planes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import devopsim

RATE = 300.0
FLUSH = 300.0
SCENARIO = f"""
name: flush
duration: 30m
plane: flow
traffic: {{rate: {RATE:g}/s, classes: [{{name: x, entry: a.go}}]}}
services:
  a: {{replicas: 4, concurrency: 32, endpoints: {{go: {{steps: [{{work: exp(2ms)}},
      {{cache: {{store: kv, keyspace: k, onMiss: [{{query: db.read}}]}}}}]}}}}}}
datastores:
  kv: {{kind: redis, memory: 512Mi, keyspaces: {{k: {{keys: 100000, size: 1Ki, popularity: zipf(0.6), ttl: 30m}}}}}}
  db: {{kind: postgres, operations: {{read: {{work: exp(1ms)}}}}}}
timeline:
  - {{at: {FLUSH:g}s, fault: {{kind: cache-flush, target: kv}}}}
"""


def _db_rate(result: devopsim.Result) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[name-defined]
    m = result.metrics
    m = m[(m.metric == "http_requests_total") & m.labels.str.contains('"service":"db"', regex=False)]
    s = m.groupby("t")["value"].sum()
    t, v = s.index.to_numpy(dtype=float), s.to_numpy(dtype=float)
    return t[1:], np.diff(v) / np.diff(t)


def _expected_miss_rate(t: np.ndarray) -> np.ndarray:
    """Che's approximation: before the flush the steady miss ratio; after it, key i is back once
    requested again (1 - exp(-lambda_i (t - flush))) and then hits as in the steady state."""
    from devopsim.stateful.cache import KeyspaceLoad, characteristic_time, hit_probability, zipf_groups

    p, c = zipf_groups(100000, 0.6)
    ks = KeyspaceLoad(p, c, 1024.0, RATE, 1800.0)
    T = characteristic_time([ks], 512 * 2**20)
    lam = RATE * p
    h = hit_probability(lam, T, 1800.0)
    out = []
    for x in t:
        since = x - FLUSH
        warm = 1.0 if since < 0 else -np.expm1(-lam * since)
        out.append(RATE * (1.0 - float(np.dot(c * p, h * warm))))
    return np.array(out)


@pytest.fixture(scope="module")
def rates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    path: Path = tmp_path_factory.mktemp("flush") / "flush.yaml"
    path.write_text(SCENARIO)
    return {
        plane: _db_rate(devopsim.simulate(path, overrides={"plane": plane})) for plane in ("flow", "request")
    }


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_flush_makes_the_database_load_jump_then_decay(rates, plane) -> None:  # type: ignore[no-untyped-def]
    t, r = rates[plane]
    before = r[(t > 60) & (t <= FLUSH)].mean()
    first = r[(t > FLUSH)][0]  # the scrape interval right after the flush
    assert first > 3.5 * before
    late = r[t > 1500].mean()
    assert late < 0.5 * first and late > before  # warming up, not yet back at the steady state
    # Each 2-minute bin follows Che's warm-up curve (the interval mean of the rate).
    for t0 in np.arange(FLUSH, 1800, 120.0):
        sel = (t > t0) & (t <= t0 + 120)
        fine = np.linspace(t0, t0 + 120, 241)[:-1] + 0.25
        assert r[sel].mean() == pytest.approx(_expected_miss_rate(fine).mean(), rel=0.08), t0


def test_flow_follows_the_request_plane(rates) -> None:  # type: ignore[no-untyped-def]
    (t, flow), (_, req) = rates["flow"], rates["request"]
    for t0 in np.arange(0, 1800, 120.0):
        sel = (t > t0) & (t <= t0 + 120)
        assert flow[sel].mean() == pytest.approx(req[sel].mean(), rel=0.15), t0


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_set_call_probability_refuses_what_it_cannot_do(tmp_path: Path, plane: str) -> None:
    from devopsim.engine.runner import Simulation
    from devopsim.model.program import OP_CALL
    from devopsim.scenario.loader import load_scenario

    path = tmp_path / "flush.yaml"
    path.write_text(SCENARIO.replace("plane: flow", f"plane: {plane}"))
    sim = Simulation(load_scenario(path))
    comp = sim.program.datastores
    assert comp is not None
    miss = comp.miss_pcs["kv.k"][0]
    sim.plane.set_call_probability(miss, 0.25)
    assert sim.program.arrays["prog_p"][miss] == 0.25
    with pytest.raises(ValueError):
        sim.plane.set_call_probability(miss, 1.5)
    if plane == "request":  # a call made always has no probability draw to change
        always = next(
            pc
            for pc, (op, b) in enumerate(
                zip(sim.program.arrays["prog_op"], sim.program.arrays["prog_b"], strict=True)
            )
            if op == OP_CALL and b < 0
        )
        with pytest.raises(ValueError):
            sim.plane.set_call_probability(always, 0.5)
