"""Datastores in a run: synthetic services, cache misses to the database, Patroni failover."""

from __future__ import annotations

from pathlib import Path

import pytest

import devopsim

SCENARIO = """
name: fo
duration: 10m
plane: request
traffic: {rate: 200/s, classes: [{name: x, entry: a.go}]}
services:
  a: {replicas: 2, concurrency: 32, endpoints: {go: {steps: [{work: exp(2ms)}, {query: db.write},
      {cache: {store: kv, keyspace: k, onMiss: [{query: db.read}]}}]}}}
datastores:
  kv: {kind: redis, memory: 1Mi, keyspaces: {k: {keys: 10000, size: 1Ki, popularity: zipf(0.9)}}}
  db: {kind: postgres, topology: primary-replica, replicas: 1, readsFrom: replicas,
       operations: {read: {work: exp(1ms)}, write: {work: exp(2ms)}}, backup: {full: daily@02:00}}
timeline:
  - {at: 5m, fault: {kind: db-primary-crash, target: db}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> devopsim.Result:  # type: ignore[name-defined]
    p: Path = tmp_path_factory.mktemp("fo") / "fo.yaml"
    p.write_text(SCENARIO)
    return devopsim.simulate(p)


def test_misses_reach_the_database_at_the_che_rate(run) -> None:  # type: ignore[no-untyped-def]
    from devopsim.stateful.cache import KeyspaceLoad, che, zipf_groups

    svc = run.summary["services"]
    miss = 1 - che([KeyspaceLoad(*zipf_groups(10000, 0.9), 1024.0, 200.0)], 1024.0**2).hit_ratio
    assert svc["db-replicas"]["requests"] / svc["kv"]["requests"] == pytest.approx(miss, abs=0.01)


def test_primary_crash_fails_over_in_patroni_time_and_writes_fail_meanwhile(run) -> None:  # type: ignore[no-untyped-def]
    db = run.summary["datastores"]["db"]
    assert db["failovers"] == 1
    assert 21.0 <= db["rto_s"] <= 41.0  # ttl 30, loop_wait 10, promotion 1 s
    # Every request during the outage fails (its write has no primary); nothing after it.
    errors = run.summary["classes"]["x"]["errors"]["downstream"]
    assert errors == pytest.approx(200 * db["rto_s"], rel=0.15)
    # Asynchronous: lost = write rate x ship lag (half the 1 ms in-region round trip).
    assert db["writes_lost"] == pytest.approx(200 * 0.0005, rel=0.1)
    assert db["backup"]["rpo_worst_s"] > 86400
