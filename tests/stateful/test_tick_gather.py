"""One gather of the plane's counters for the first stores of a tick.

``_tick`` reads the rows of every PostgreSQL store up to and including the first other store
in one gather (``_gather``) and counts each store's requests from its part; the reference is
each store's own gather (``_delta``), the path taken for the other stores. Both must give the
same summary and the same metric store, to the bit, whatever the stores' order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import devopsim
from devopsim.stateful.loop import StatefulLoop, _Gathered

STORES = {
    "kv": "{kind: redis, memory: 1Mi, keyspaces: {k: {keys: 10000, size: 1Ki, popularity: zipf(0.9)}}}",
    "db": "{kind: postgres, topology: primary-replica, replicas: 1, readsFrom: replicas, "
    "resources: {cpu: 1, connections: 6}, operations: {read: {work: exp(1ms)}, write: {work: exp(2ms)}}}",
    "db2": "{kind: postgres, operations: {read: {work: exp(1ms)}}}",
}

SCENARIO = """
name: g
duration: 4m
plane: {plane}
traffic: {{rate: "step(200/s, 2m: 500/s)", classes: [{{name: x, entry: a.go}}]}}
services:
  a: {{replicas: 2, concurrency: 64, endpoints: {{go: {{steps: [{{work: exp(2ms)}}, {{query: db.write}},
      {{query: db2.read}}, {{cache: {{store: kv, keyspace: k, onMiss: [{{query: db.read}}]}}}}]}}}}}}
datastores:
{stores}
timeline:
  - {{at: 3m, fault: {{kind: cache-flush, target: kv}}}}
"""


def _run(tmp: Path, plane: str, order: list[str]) -> Any:
    p = tmp / "g.yaml"
    stores = "\n".join(f"  {name}: {STORES[name]}" for name in order)
    p.write_text(SCENARIO.format(plane=plane, stores=stores))
    return devopsim.simulate(p)


@pytest.mark.parametrize("plane", ["flow", "request"])
@pytest.mark.parametrize("order", [["db", "db2", "kv"], ["kv", "db", "db2"], ["db", "kv", "db2"]])
def test_one_gather_counts_what_each_store_s_own_gather_counts(
    tmp_path: Path, plane: str, order: list[str], monkeypatch: Any
) -> None:
    gathered: list[int] = []
    gather = StatefulLoop._gather

    def spy(self: StatefulLoop, sim: Any) -> _Gathered:
        g = gather(self, sim)
        gathered.append(len(g.stores))
        return g

    monkeypatch.setattr(StatefulLoop, "_gather", spy)
    fast = _run(tmp_path, plane, order)
    # every PostgreSQL store up to the first other one, and that one
    assert max(gathered) == (order.index("kv") + 1)

    def none(self: StatefulLoop, sim: Any) -> _Gathered:
        return _Gathered(sim.platform.generation, -2, np.zeros(0, dtype=np.int64), [])

    monkeypatch.setattr(StatefulLoop, "_gather", none)
    ref = _run(tmp_path, plane, order)
    assert fast.summary["datastores"] == ref.summary["datastores"]
    assert fast.summary == ref.summary
    for a, b in zip(fast.store.columns(), ref.store.columns(), strict=True):
        assert a.tobytes() == b.tobytes()
