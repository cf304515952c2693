"""The 503s per PostgreSQL pod read with the tick's gather of the plane's counters.

``_delta`` gathers, besides each endpoint's rows, every local endpoint's row of each of the
database's pods, and ``_pg_load`` adds their 503s from those; the reference is its own
reduction of the plane's counters (``np.add.reduce(cnt[slots, :, 2], 1)``), the path taken
when no such gather was made. Both must give the same summary, to the bit. The primary
serves reads and writes, so each of its pods has two local endpoints whose 503s add up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import devopsim
from devopsim.stateful.loop import StatefulLoop, _Pods, _Store

SCENARIO = """
name: conns
duration: 3m
plane: {plane}
traffic: {{rate: "step(300/s, 1m: 700/s)", classes: [{{name: x, entry: a.go}}]}}
services:
  a: {{replicas: 4, concurrency: 200, endpoints: {{go: {{timeout: 2s, steps: [{{work: exp(1ms)}}, {{query: db.write}}, {{query: db.read}}]}}}}}}
datastores:
  db: {{kind: postgres, topology: primary-replica, replicas: 1, readsFrom: primary,
       resources: {{cpu: 2, connections: 8}}, operations: {{write: {{work: exp(2ms)}}, read: {{work: exp(1ms)}}}}}}
"""


def _run(tmp: Path, plane: str) -> Any:
    p = tmp / "s.yaml"
    p.write_text(SCENARIO.format(plane=plane))
    return devopsim.simulate(p)


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_gathered_refusals_equal_the_reduction(tmp_path: Path, plane: str, monkeypatch: Any) -> None:
    used: list[bool] = []
    pods_fn = StatefulLoop._pods

    def spy(self: StatefulLoop, sim: Any, st: _Store) -> _Pods:
        pods = pods_fn(self, sim, st)
        used.append(pods.gather is not None)
        return pods

    monkeypatch.setattr(StatefulLoop, "_pods", spy)
    fast = _run(tmp_path, plane)
    assert any(used)  # the gathered path ran

    def no_gather(self: StatefulLoop, sim: Any, st: _Store) -> _Pods:
        pods = pods_fn(self, sim, st)
        pods.gather = None  # _pg_load reduces the plane's counters itself
        return pods

    monkeypatch.setattr(StatefulLoop, "_pods", no_gather)
    ref = _run(tmp_path, plane)
    db = fast.summary["datastores"]["db"]
    assert db == ref.summary["datastores"]["db"]
    assert db["connections"]["refused"] > 0  # the case is exercised
    assert fast.summary == ref.summary
