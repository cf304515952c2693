"""The Knative Pod Autoscaler against reference/SEMANTICS.md 4.1, with hand-computed decisions.

Service ``fn``: ``const(100ms)`` of work and 64 workers per pod (no queueing), so its observed
concurrency is rate x 0.1 s (Little's law): 20/s -> 2, then 350/s -> 35 from 5 m, then 0 from
10 m. Target 10 (``target: 10`` at 100 %). Decisions every 2 s on 1-s buckets stamped at the
end of their second; stable window 60 s, panic window 6 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim import simulate
from devopsim.scenario.controllers import Knative


def _kpa(**kw: Any) -> Knative:
    return Knative(kind="knative", **kw)


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        ({}, 70.0),  # 100 x 70 %
        ({"containerConcurrency": 10}, 7.0),
        ({"target": 50, "containerConcurrency": 10}, 7.0),  # the annotation is capped at cc
        ({"target": 10, "targetUtilizationPercentage": 100}, 10.0),
        ({"metric": "rps"}, 140.0),  # 200 x 70 %
    ],
)
def test_target_per_pod(spec: dict[str, Any], target: float) -> None:
    from devopsim.control.knative import kpa_target

    assert kpa_target(_kpa(**spec)) == pytest.approx(target)


def _scenario(plane: str) -> dict[str, Any]:
    return {
        "name": "kpa",
        "duration": "12m",
        "seed": 3,
        "plane": plane,
        "traffic": {
            "rate": "step(20/s, 5m: 350/s, 10m: 0/s)",
            "classes": [{"name": "c", "entry": "fn.call"}],
        },
        "services": {
            "fn": {
                "replicas": 1,
                "concurrency": 64,
                "endpoints": {"call": {"steps": [{"work": "const(100ms)"}]}},
                "autoscaler": {"kind": "knative", "target": 10, "targetUtilizationPercentage": 100},
            },
            # A second service keeps a pod up while fn is at zero.
            "other": {"replicas": 1, "endpoints": {"x": {"steps": [{"work": "const(1ms)"}]}}},
        },
    }


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_step_gives_panic_then_scale_to_zero(plane: str) -> None:
    res = simulate(_scenario(plane))
    scales = [(e["t"], e["to_replicas"], e["panic"]) for e in res.events if e["kind"] == "kpa.scale"]
    panics = [(e["t"], e["panic"]) for e in res.events if e["kind"] == "kpa.panic"]
    # t=302: panic window (296, 302] holds 4 buckets of 2 and 2 of 35: 78/6 = 13 -> dppc 2,
    #   2/1 >= 200 %: panic; desired max(stable ceil(3.27/10)=1, 2) = 2.
    # t=304: (4*35 + 2*2)/6 = 24 -> 3 (3/2 < 2: no new trigger, still in panic) -> 3.
    # t=306: 35 -> 4. The panic held since 302 ends at the first decision after 302 + 60: 364.
    # Stable: ceil(35/10) = 4 pods; never fewer during the panic.
    assert scales[:3] == [(302.0, 2, True), (304.0, 3, True), (306.0, 4, True)]
    assert panics == [(302.0, True), (364.0, False)]
    # From 600 the stable average over (t-60, t] is 35 (660 - t)/60: it falls to <= 30, 20, 10
    # at t >= 608.6, 625.7, 642.9: decisions at 610, 626, 644. The bucket of (600, 601] still
    # holds the draining requests, so the window is empty only from 662: desired 0, inactive;
    # scale to zero strictly after the 30 s grace: 694.
    assert scales[3:] == [(610.0, 3, False), (626.0, 2, False), (644.0, 1, False), (694.0, 0, False)]
    inactive = [e["t"] for e in res.events if e["kind"] == "kpa.inactive"]
    assert inactive == [662.0]
    summ = res.summary["autoscalers"]["fn"]
    assert summ["kind"] == "knative" and summ["replicas_max"] == 4 and summ["replicas_min"] == 0
    assert summ["panics"] == [{"start_s": 302.0, "end_s": 364.0}]


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_scale_from_zero_and_bounds(plane: str) -> None:
    sc = _scenario(plane)
    sc["traffic"]["rate"] = "step(0/s, 121s: 50/s)"
    sc["services"]["fn"]["autoscaler"].update({"maxScale": 3, "scaleToZeroGracePeriod": "10s"})
    res = simulate(sc)
    scales = [(e["t"], e["to_replicas"]) for e in res.events if e["kind"] == "kpa.scale"]
    # No traffic: the first decision at 2 s already sees only empty buckets (desired 0,
    # inactive at 2), zero strictly after 2 + 10 s: 14. Traffic from 121 s reaches the
    # "activator" (requests failing as unavailable, 50 per second): the revision wakes at 122
    # and never exceeds maxScale 3 (concurrency 5 -> 1 pod at the stable rate).
    assert scales[0] == (14.0, 0)
    assert scales[1][0] == 122.0 and scales[1][1] >= 1
    assert max(n for _, n in scales) <= 3
    assert scales[-1][1] == 1


def test_rps_metric() -> None:
    sc = _scenario("flow")
    sc["traffic"]["rate"] = "250/s"
    sc["duration"] = "3m"
    sc["services"]["fn"]["autoscaler"] = {
        "kind": "knative",
        "metric": "rps",
        "target": 100,
        "targetUtilizationPercentage": 100,
    }
    res = simulate(sc)
    # 250 responses per second against 100 per pod: ceil(2.5) = 3 pods, reached through panic
    # (the first full bucket at 1 s: 250/100 -> 3, 3/1 >= 200 %).
    scales = [(e["t"], e["to_replicas"]) for e in res.events if e["kind"] == "kpa.scale"]
    assert scales == [(2.0, 3)]
    assert res.summary["autoscalers"]["fn"]["panics"][0]["start_s"] == 2.0


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_idle_revision_goes_to_zero_after_the_default_grace(plane: str) -> None:
    sc = {
        "duration": "2m",
        "plane": plane,
        "traffic": {"rate": "0/s", "classes": [{"name": "c", "entry": "fn.call"}]},
        "services": {
            "fn": {
                "endpoints": {"call": {"steps": [{"work": "const(10ms)"}]}},
                "autoscaler": {"kind": "knative"},
            }
        },
    }
    res = simulate(sc)
    # Buckets of 1 and 2 s are empty: desired 0 at the first decision (2 s), inactive; zero
    # strictly after the 30 s grace period: the decision at 34 s.
    assert [(e["t"], e["to_replicas"]) for e in res.events if e["kind"] == "kpa.scale"] == [(34.0, 0)]
    assert res.summary["services"]["fn"]["replicas"]["min"] == 0
