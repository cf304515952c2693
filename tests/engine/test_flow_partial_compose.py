"""A composition redoes only the endpoints whose queues moved (and their callers).

Class ``steady`` goes a -> b at a constant rate; class ``rising`` calls c, whose load steps up
three times. Only c (a leaf nobody else calls) moves, so the compositions after the first
keep a's and b's samples, and the results equal those of composing everything every time.
"""

from typing import Any

import numpy as np
import pytest

from devopsim import simulate
from devopsim.engine.flow import latency
from devopsim.engine.flow import plane as flow_plane

SCENARIO: dict[str, Any] = {
    "duration": "30m",
    "seed": 5,
    "plane": "flow",
    "traffic": {
        "rate": "100/s",
        "classes": [
            {"name": "steady", "entry": "a.op", "share": 0.5},
            {"name": "rising", "entry": "c.op", "share": 0.5},
        ],
    },
    "timeline": [
        {"at": "5m", "traffic": {"rate": "step(100/s, 5m: 160/s, 10m: 220/s, 15m: 280/s)"}},
    ],
    "services": {
        "a": {
            "replicas": 4,
            "concurrency": 8,
            "endpoints": {"op": {"steps": [{"work": "exp(4ms)"}, {"call": "b.op"}]}},
        },
        "b": {"replicas": 2, "concurrency": 8, "endpoints": {"op": {"steps": [{"work": "exp(3ms)"}]}}},
        "c": {"replicas": 1, "concurrency": 4, "endpoints": {"op": {"steps": [{"work": "exp(10ms)"}]}}},
    },
}


def test_only_the_moved_endpoint_is_composed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, Any]] = []
    names: list[tuple[str, str]] = []
    real = latency.Composer.compose

    def spy(self: Any, hop: Any, ready: Any, only: Any = None, prev: Any = None) -> Any:
        out = real(self, hop, ready, only=only, prev=prev)
        names[:] = self.program.endpoints
        seen.append((None if only is None else only.copy(), out))
        return out

    monkeypatch.setattr(latency.Composer, "compose", spy)
    simulate(SCENARIO)
    eps = {f"{s}.{e}": i for i, (s, e) in enumerate(names)}
    partial = [(only, out) for only, out in seen if only is not None]
    assert partial, "the step in c's load composes c again without a full composition"
    for (only, out), (_, before) in zip(seen[1:], seen[:-1], strict=True):
        if only is None:
            continue
        assert only[eps["c.op"]] and not only[eps["a.op"]] and not only[eps["b.op"]]
        assert out[eps["a.op"]] is before[eps["a.op"]] and out[eps["b.op"]] is before[eps["b.op"]]
        assert out[eps["c.op"]] is not before[eps["c.op"]]


def test_partial_and_full_compositions_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    part = simulate(SCENARIO).summary
    real = flow_plane.FlowPlane._dirty

    def everything(self: Any, moved: np.ndarray, R: int) -> Any:
        svc, ep, keep = real(self, moved, R)
        return np.ones_like(svc), np.ones_like(ep), np.zeros_like(keep)

    monkeypatch.setattr(flow_plane.FlowPlane, "_dirty", everything)
    full = simulate(SCENARIO).summary
    for cls in ("steady", "rising"):
        a, b = part["classes"][cls], full["classes"][cls]
        assert a["requests"] == pytest.approx(b["requests"], rel=1e-6)
        for q in ("mean", "p50", "p99"):
            assert a["latency_s"][q] == pytest.approx(b["latency_s"][q], rel=0.05), (cls, q)


def test_a_service_losing_its_last_replica_is_composed_again() -> None:
    """Its callers must see it gone. (A primary whose pods die at once, with no replica left alive,
    is pinned by tests/chaos/test_sweep.py, which caught partial compositions missing it.)"""
    sc = {**SCENARIO, "timeline": [{"at": "10m", "scale": {"service": "c", "replicas": 0}}]}
    s = simulate(sc).summary
    rising = s["classes"]["rising"]
    # c has no replica from 10 min on: two thirds of the (steady-rate) run fails as unavailable.
    assert rising["errors"]["unavailable"] == pytest.approx(rising["requests"] * 2 / 3, rel=0.03)
    assert s["classes"]["steady"]["errors"]["unavailable"] == 0
