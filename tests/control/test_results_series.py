"""Replica and pod-state time series in the summary (``pods.replicas``, ``pods.phases``).

External truth: the pod life cycle of SEMANTICS 2.6/2.7 worked by hand. ``api`` has 2 replicas
(Ready at t = 0), ``startup: 5s`` and no probe; a timeline ``scale`` to 3 at 60 s creates a pod
that is ContainerCreating until its process is up at 65 s, then Ready; a scale to 1 at 120 s
terminates the newest two pods (creation bucket, see test_replicaset_scale_down) with 30 s
of grace: they leave the set at once and go when their work is done.
"""

from __future__ import annotations

import pytest

from devopsim import simulate
from devopsim.control.pods import step_series
from devopsim.model.platform import STATES


def _scenario(plane: str) -> dict[str, object]:
    return {
        "name": "series",
        "duration": "4m",
        "seed": 3,
        "plane": plane,
        "traffic": {"rate": "20/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": 2,
                "concurrency": 8,
                "startup": "5s",
                "endpoints": {"get": {"steps": [{"work": "const(5ms)"}]}},
            }
        },
        "timeline": [
            {"at": "1m", "scale": {"service": "api", "replicas": 3}},
            {"at": "2m", "scale": {"service": "api", "replicas": 1}},
        ],
    }


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_replica_and_phase_series_follow_the_pods(plane: str) -> None:
    pods = simulate(_scenario(plane)).summary["pods"]
    rep = pods["replicas"]["api"]  # [t, ready, existing]
    assert rep[:3] == [[0.0, 2, 2], [60.0, 2, 3], [65.0, 3, 3]]
    assert rep[3] == [120.0, 1, 3]  # two pods terminating: not ready, still existing
    assert rep[-1][1:] == [1, 1] and 120.0 <= rep[-1][0] <= 150.0  # gone within the grace period
    assert pods["phases"]["states"] == list(STATES)
    ser = {row[0]: dict(zip(STATES, row[1:], strict=True)) for row in pods["phases"]["series"]}
    assert ser[0.0]["Ready"] == 2
    assert ser[60.0]["Ready"] == 2 and ser[60.0]["ContainerCreating"] == 1
    assert ser[65.0]["Ready"] == 3 and ser[65.0]["ContainerCreating"] == 0
    assert ser[120.0]["Ready"] == 1 and ser[120.0]["Terminating"] == 2
    assert pods["phases"]["series"][-1][1:] == [0, 0, 1, 0, 0, 0, 0]


def test_step_series_buckets_long_histories() -> None:
    rows = [(0.0, (1,)), (1.0, (5,)), (2.0, (2,)), (7.0, (3,)), (8.0, (1,))]
    assert step_series(rows, 10.0, max_points=5) == [[0.0, 1], [1.0, 5], [2.0, 2], [7.0, 3], [8.0, 1]]
    # Buckets of 10 / 2 = 5 s: [0, 5) peaks at 5; [5, 10) enters at 2, peaks at 3.
    assert step_series(rows, 10.0, max_points=2) == [[0.0, 5], [5.0, 3]]
    # Buckets of 10 / 4 = 2.5 s: [0, 2.5) max 5; [2.5, 5) no change: holds 2; [5, 7.5) 3 (entered
    # at 2); [7.5, 10) max(3, 1) = 3, and nothing after it.
    assert step_series(rows, 10.0, max_points=4) == [[0.0, 5], [2.5, 2], [5.0, 3], [7.5, 3]]
