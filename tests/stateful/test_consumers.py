"""Kafka consumer groups through the data planes: lag = produced - consumed, at the members' capacity.

Expectations are hand-computed: a member processes at most ``cores / work`` messages per
second (CPU-bound: 1 core, 40 ms of work = 25/s); at most one member per partition; the
group's lag grows at the produce rate minus the active members' capacity and drains at
the difference once there are more members.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import devopsim

PRODUCE = 100.0  # orders/s, each publishes one message
CAP = 1.0 / 0.040  # messages/s per member: 1 core, 40 ms of CPU each


def _scenario(partitions: int, replicas: int, scale_to: int | None, duration: str = "12m") -> str:
    timeline = (
        f"timeline:\n  - {{at: 6m, scale: {{service: billing, replicas: {scale_to}}}}}\n" if scale_to else ""
    )
    return f"""
name: consumers
duration: {duration}
plane: flow
traffic: {{rate: {PRODUCE:g}/s, classes: [{{name: order, entry: api.order}}]}}
slos:
  - {{name: availability, objective: 99%}}
  - {{name: fast, objective: 99%, latency: 100ms}}
services:
  api: {{replicas: 2, concurrency: 32, endpoints: {{order: {{steps: [{{work: exp(2ms)}}, {{publish: events.orders}}]}}}}}}
  billing:
    replicas: {replicas}
    concurrency: 4
    resources: {{limits: {{cpu: "1"}}}}
    consume: {{topic: events.orders, group: billing, steps: [{{work: exp(40ms)}}, {{query: db.write}}]}}
datastores:
  events: {{kind: kafka, brokers: 3, topics: {{orders: {{partitions: {partitions}, replicationFactor: 3}}}}}}
  db: {{kind: postgres, operations: {{write: {{work: exp(1ms)}}}}}}
{timeline}"""


def _lag(result: devopsim.Result) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[name-defined]
    m = result.metrics
    s = m[m.metric == "kafka_consumergroup_lag_sum"].groupby("t")["value"].sum()
    return s.index.to_numpy(dtype=float), s.to_numpy(dtype=float)


def _run(tmp: Path, text: str, plane: str) -> devopsim.Result:  # type: ignore[name-defined]
    p = tmp / f"c-{plane}.yaml"
    p.write_text(text)
    return devopsim.simulate(p, overrides={"plane": plane})


@pytest.fixture(scope="module", params=["flow", "request"])
def scaled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> devopsim.Result:  # type: ignore[name-defined]
    return _run(tmp_path_factory.mktemp("scaled"), _scenario(12, 2, 6), request.param)


def test_lag_grows_at_produce_minus_consume_then_drains(scaled) -> None:  # type: ignore[no-untyped-def]
    t, lag = _lag(scaled)
    grow = (np.interp(345, t, lag) - np.interp(60, t, lag)) / 285
    assert grow == pytest.approx(PRODUCE - 2 * CAP, rel=0.06)
    drain = (np.interp(420, t, lag) - np.interp(700, t, lag)) / 280
    assert drain == pytest.approx(6 * CAP - PRODUCE, rel=0.06)


def test_partitions_share_the_lag_and_members_the_work(scaled) -> None:  # type: ignore[no-untyped-def]
    m = scaled.metrics
    per = m[(m.metric == "kafka_consumergroup_lag") & (m.t == 300.0)]["value"].to_numpy()
    assert per.size == 12
    # 6 partitions to each of 2 members: equal within a member, about equal between them.
    assert per[:6] == pytest.approx(np.full(6, per[0]), rel=1e-9)
    assert per[6:] == pytest.approx(np.full(6, per[6]), rel=1e-9)
    assert per[0] == pytest.approx(per[6], rel=0.02)
    s = scaled.summary
    # Every processed message ran the consume steps: its query reached the database.
    # (up to what is in work at the end: about one poll of 500 per member).
    consumed = s["services"]["billing"]["requests"]
    assert s["services"]["db"]["requests"] == pytest.approx(consumed, abs=6 * 500)
    assert s["services"]["billing"]["utilization"] > 0.95  # the members work flat out while there is lag
    # SLOs without a class cover the users' requests, not the group's messages.
    slo = {x["name"]: x for x in s["slos"]}
    assert slo["availability"]["requests"] == s["classes"]["order"]["requests"]
    assert slo["fast"]["requests"] == s["classes"]["order"]["requests"]
    assert slo["fast"]["attained"] > 0.99  # the consumers' minutes of backlog are not the users' latency


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_members_beyond_the_partitions_sit_idle(tmp_path: Path, plane: str) -> None:
    r = _run(tmp_path, _scenario(2, 4, None, duration="5m"), plane)
    t, lag = _lag(r)
    grow = (np.interp(280, t, lag) - np.interp(60, t, lag)) / 220
    assert grow == pytest.approx(PRODUCE - 2 * CAP, rel=0.06)  # 2 partitions: 2 active members of 4


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_a_group_that_keeps_up_has_almost_no_lag(tmp_path: Path, plane: str) -> None:
    r = _run(tmp_path, _scenario(12, 6, None, duration="5m"), plane)
    t, lag = _lag(r)
    # Capacity 150/s for 100/s: what is left is what is in work at a scrape (Little: rate x time).
    assert lag[t > 60].max() < PRODUCE * 2.0
    s = r.summary
    assert s["classes"]["consume:billing"]["requests"] == pytest.approx(
        s["classes"]["order"]["requests"], rel=0.02
    )


def test_the_books_balance_and_runs_repeat(tmp_path: Path) -> None:
    text = _scenario(12, 2, 6, duration="4m")
    a = _run(tmp_path, text, "request").summary
    b = _run(tmp_path, text, "request").summary
    assert a == b  # same seed, same run, bit for bit
    g = a["datastores"]["events"]["consumer_groups"]["billing"]
    assert g["produced"] - g["committed"] == pytest.approx(g["lag"], abs=1e-6)
    assert g["rebalances"] == 1  # the 2 members joined; the scale-up comes at 6 min, after the run
    assert g["members"] == 2
