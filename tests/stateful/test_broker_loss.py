"""A broker loss: producers to the partitions it led wait for new leaders (broker.session.timeout.ms).

Hand-computed: 3 brokers, one lost, leaders spread evenly -> 1/3 of publishes in the 9 s
election window wait ``uniform(0, 9 s)``; with a 5 s endpoint timeout, 4/9 of those time
out. At 300 orders/s: 300 x 9 / 3 = 900 waits and 900 x 4/9 = 400 timeouts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import devopsim
from devopsim.stateful.kafka import BROKER_SESSION_TIMEOUT

RATE = 300.0
SCENARIO = f"""
name: broker
duration: 3m
plane: flow
traffic: {{rate: {RATE:g}/s, classes: [{{name: order, entry: api.order}}]}}
services:
  api: {{replicas: 4, concurrency: 1000, endpoints: {{order: {{timeout: 5s,
         steps: [{{work: exp(2ms)}}, {{publish: events.orders}}]}}}}}}
datastores:
  events: {{kind: kafka, brokers: 3, topics: {{orders: {{partitions: 12, replicationFactor: 3}}}}}}
timeline:
  - {{at: 60s, fault: {{kind: broker-loss, target: events}}}}
"""


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_publishes_wait_for_new_leaders_and_time_out_past_the_deadline(tmp_path: Path, plane: str) -> None:
    p = tmp_path / "b.yaml"
    p.write_text(SCENARIO)
    r = devopsim.simulate(p, overrides={"plane": plane})
    s = r.summary
    waits = RATE * BROKER_SESSION_TIMEOUT / 3
    assert s["services"]["events-election"]["requests"] == pytest.approx(waits, rel=0.08)
    timeouts = s["classes"]["order"]["errors"]["timeout"]
    assert timeouts == pytest.approx(
        waits * (BROKER_SESSION_TIMEOUT - 5.0) / BROKER_SESSION_TIMEOUT, rel=0.15
    )
    # Only in the window: none before the loss, none once leaders are elected.
    elected = [e["t"] for e in r.events if e["kind"] == "datastore.leaders_elected"]
    assert elected == [60.0 + BROKER_SESSION_TIMEOUT]
    assert s["services"]["events"]["replicas"]["min"] == 2.0
    # The waits that finish are uniform on [0, 9 s] below the 5 s timeout.
    assert s["classes"]["order"]["latency_s"]["p999"] < 5.0
