"""Database connection exhaustion and CPU saturation seen upstream, with their causes in the summary.

External truth: a PostgreSQL node refuses a connection beyond ``max_connections`` (no
queue), so the share refused is Erlang B of the offered load (insensitive to the holding
time's distribution); a CPU-bound node serves at most ``cores / CPU per query`` queries
per second, and refuses the rest once its connections fill.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import devopsim
from devopsim.stateful.postgres import sync_commit_delay


def erlang_b(c: int, a: float) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


CONNECTIONS = """
name: conns
duration: 3m
plane: flow
traffic: {rate: 400/s, classes: [{name: x, entry: a.go}]}
services:
  a: {replicas: 4, concurrency: 200, endpoints: {go: {timeout: 2s, steps: [{work: exp(1ms)}, {query: db.write}]}}}
datastores:
  db: {kind: postgres, topology: primary-replica, replicas: 1, replication: sync, placement: {clouds: [aws, gcp]},
       resources: {cpu: 2, connections: 25}, operations: {write: {work: exp(1ms)}}}
"""

CPU = """
name: cpu
duration: 4m
plane: flow
traffic: {rate: "step(200/s, 2m: 900/s)", classes: [{name: x, entry: a.go}]}
services:
  a: {replicas: 4, concurrency: 200, endpoints: {go: {timeout: 2s, steps: [{work: exp(1ms)}, {query: db.write}]}}}
datastores:
  db: {kind: postgres, resources: {cpu: 2, connections: 50}, operations: {write: {work: exp(4ms)}}}
"""


def _run(tmp: Path, text: str, plane: str) -> dict:  # type: ignore[type-arg]
    p = tmp / "s.yaml"
    p.write_text(text)
    return devopsim.simulate(p, overrides={"plane": plane}).summary


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_connection_exhaustion_refuses_at_the_erlang_b_rate(tmp_path: Path, plane: str) -> None:
    s = _run(tmp_path, CONNECTIONS, plane)
    # A write holds its connection for its CPU work and the synchronous standby's round trip
    # (two clouds: 70 ms, plus the standby's flush).
    offered = 400 * (0.001 + sync_commit_delay(0.070))
    refused = 400 * 180 * erlang_b(25, offered)
    db = s["datastores"]["db"]
    assert db["connections"]["refused"] == pytest.approx(refused, rel=0.06)
    assert db["saturated"] == ["connections"]  # the cores are mostly idle
    assert db["cpu"]["peak_utilization"] < 0.3
    # Upstream: every refused connection fails the user's request (an error from downstream).
    errors = s["classes"]["x"]["errors"]
    assert errors["downstream"] == pytest.approx(db["connections"]["refused"], rel=0.03)
    assert sum(errors.values()) == errors["downstream"]


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_cpu_saturation_caps_throughput_and_fills_the_connections(tmp_path: Path, plane: str) -> None:
    s = _run(tmp_path, CPU, plane)
    db = s["datastores"]["db"]
    assert db["saturated"] == ["cpu", "connections"]  # the cores first, hence the connections
    assert db["cpu"]["peak_utilization"] > 0.95
    assert db["connections"]["peak_in_use"] > 0.9 * 50
    # 2 cores / 4 ms = 500 queries/s at most: of 900/s for two minutes, about 400/s fail.
    assert db["connections"]["refused"] == pytest.approx((900 - 500) * 120, rel=0.06)
    errors = s["classes"]["x"]["errors"]
    assert errors["downstream"] == pytest.approx(db["connections"]["refused"], rel=0.06)
    # Queries that get a connection wait for the shared cores: latency rises upstream.
    assert s["classes"]["x"]["latency_s"]["p99"] > 20 * 0.005
