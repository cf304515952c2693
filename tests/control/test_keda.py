"""KEDA's Kafka scaler in a run, against reference/SEMANTICS.md section 4.2 (hand-computed).

The HPA KEDA creates reads ``totalLag`` as an External ``AverageValue`` metric with target
``lagThreshold``: ``desired = ceil(totalLag / lagThreshold)`` unless the ratio to the
current replicas is within 10 %; ``totalLag`` is capped at ``partitions x lagThreshold``;
the legacy HPA path limits a scale-up to ``max(2 x current, 4)`` and keeps the highest
recommendation of the last 300 s when scaling down; KEDA polls every 30 s, scales 0 -> 1
when the lag exceeds ``activationLagThreshold`` and back to 0 once ``cooldownPeriod``
(300 s) has passed since the trigger was last active.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import devopsim

PLANES = ["flow", "request"]


def _run(tmp: Path, text: str, plane: str) -> devopsim.Result:  # type: ignore[name-defined]
    p = tmp / "keda.yaml"
    p.write_text(text)
    return devopsim.simulate(p, overrides={"plane": plane})


def _scalings(r: devopsim.Result) -> list[tuple[float, int, int]]:  # type: ignore[name-defined]
    return [
        (e["t"], e["from_replicas"], e["to_replicas"])
        for e in r.events
        if e["kind"] in ("hpa.scale", "keda.scale") and e["service"] == "billing"
    ]


def _hpa(lag: float, current: int, threshold: float, partitions: int, max_replicas: int) -> int:
    """One sync of KEDA's HPA on the legacy path, with no scale-down in sight."""
    total = min(lag, partitions * threshold)
    ratio = total / (threshold * current)
    if abs(ratio - 1.0) <= 0.1:
        return current
    return min(math.ceil(total / threshold), max(2 * current, 4), max_replicas)


GROWING = """
name: keda
duration: 5m
plane: flow
traffic: {rate: 7/s, burstiness: 0, classes: [{name: order, entry: api.order}]}
services:
  api: {replicas: 1, concurrency: 32, endpoints: {order: {steps: [{work: const(1ms)}, {publish: events.orders}]}}}
  billing:
    replicas: 1
    concurrency: 1
    resources: {limits: {cpu: "1"}}
    consume: {topic: events.orders, group: billing, steps: [{work: const(1000s)}]}
    autoscaler: {kind: keda-kafka, minReplicas: 1, maxReplicas: 30, lagThreshold: 100}
datastores:
  events: {kind: kafka, brokers: 1, topics: {orders: {partitions: 12}}}
"""


@pytest.mark.parametrize("plane", PLANES)
def test_replicas_follow_ceil_lag_over_threshold_capped_by_partitions(tmp_path: Path, plane: str) -> None:
    # Nobody keeps up (1000 s a message): the lag at time t is the 7t messages produced.
    r = _run(tmp_path, GROWING, plane)
    want, current = [], 1
    for t in np.arange(15.0, 300.0, 15.0):
        lag = 7.0 * t - 1.0  # the publish in flight at the sync (evenly spaced orders)
        new = _hpa(lag, current, 100, 12, 30)
        assert new == _hpa(lag + 1.0, current, 100, 12, 30)  # no knife edge
        if new != current:
            want.append((float(t), current, new))
        current = new
    # 1 -> 3 -> 5 -> 7 -> 9 -> 11, then the capped lag (1200 for 11 replicas) is within tolerance.
    assert want == [(30.0, 1, 3), (60.0, 3, 5), (90.0, 5, 7), (120.0, 7, 9), (150.0, 9, 11)]
    assert _scalings(r) == want
    assert r.summary["autoscalers"]["billing"]["last_lag"] == 1200.0  # partitions x lagThreshold


ACTIVATION = """
name: keda0
duration: 8m
plane: flow
traffic: {rate: 7/s, burstiness: 0, classes: [{name: order, entry: api.order}]}
services:
  api: {replicas: 1, concurrency: 32, endpoints: {order: {steps: [{work: const(1ms)}, {publish: events.orders}]}}}
  billing:
    replicas: 0
    concurrency: 4
    consume: {topic: events.orders, group: billing, steps: [{work: const(5ms)}]}
    autoscaler: {kind: keda-kafka, minReplicas: 0, maxReplicas: 30, lagThreshold: 100}
datastores:
  events: {kind: kafka, brokers: 1, topics: {orders: {partitions: 12}}}
timeline:
  - {at: 20s, traffic: {rate: 0/s}}
"""


@pytest.mark.parametrize("plane", PLANES)
def test_activation_from_zero_and_cooldown_back_to_zero(tmp_path: Path, plane: str) -> None:
    r = _run(tmp_path, ACTIVATION, plane)
    # Poll at 0: no lag. Poll at 30: 140 messages wait -> KEDA scales 0 -> 1; the HPA's sync at
    # 30 then reads 140 / (100 x 1) = 1.4 -> 2. The group drains it within a tick and nothing
    # more comes: the HPA keeps 2 for its 300 s downscale window (the 2 of t=30 leaves it at
    # t=345), and KEDA scales to 0 at the first poll strictly after 30 + 300 s: t=360.
    assert _scalings(r) == [(30.0, 0, 1), (30.0, 1, 2), (345.0, 2, 1), (360.0, 1, 0)]
    a = r.summary["autoscalers"]["billing"]
    assert a["activations"] == 1 and a["deactivations"] == 1
    assert r.summary["classes"]["consume:billing"]["requests"] in (139, 140)  # [0, 20 s) at 7/s, evenly


DRAIN = """
name: kedadrain
duration: 15m
plane: flow
traffic: {rate: 100/s, classes: [{name: order, entry: api.order}]}
services:
  api: {replicas: 2, concurrency: 32, endpoints: {order: {steps: [{work: exp(2ms)}, {publish: events.orders}]}}}
  billing:
    replicas: 1
    concurrency: 4
    resources: {limits: {cpu: "1"}}
    consume: {topic: events.orders, group: billing, steps: [{work: exp(40ms)}]}
    autoscaler: {kind: keda-kafka, minReplicas: 1, maxReplicas: 24, lagThreshold: 100}
datastores:
  events: {kind: kafka, brokers: 3, topics: {orders: {partitions: 12, replicationFactor: 3}}}
"""


@pytest.mark.parametrize("plane", PLANES)
def test_lag_grows_then_drains_as_keda_adds_consumers(tmp_path: Path, plane: str) -> None:
    r = _run(tmp_path, DRAIN, plane)
    m = r.metrics
    lag = m[m.metric == "kafka_consumergroup_lag_sum"].groupby("t")["value"].sum()
    t, v = lag.index.to_numpy(dtype=float), lag.to_numpy(dtype=float)
    # One member (25/s) for the first 30 s: the lag grows at 100 - 25 = 75/s.
    assert v[t == 15.0][0] == pytest.approx(75 * 15, rel=0.08)
    # Never more members than partitions, though maxReplicaCount is 24.
    scal = _scalings(r)
    assert max(to for _, _, to in scal) <= 12
    for e in r.events:  # each scale-up: within the legacy limit, and towards what the lag asks
        if e["kind"] == "hpa.scale" and e["to_replicas"] > e["from_replicas"]:
            assert e["to_replicas"] <= max(2 * e["from_replicas"], 4)
    # Enough consumers: the backlog drains until the HPA is content, its lag per replica
    # within the 10 % tolerance of lagThreshold (4 members x 25/s = the 100/s produced can
    # keep a standing lag of that size), well below the peak.
    final = r.summary["services"]["billing"]["replicas"]
    last = [to for _, _, to in scal][-1]
    assert v[-1] <= 1.1 * 100 * last
    assert v[t >= 780].mean() < 0.5 * v.max()
    assert final["max"] <= 12
