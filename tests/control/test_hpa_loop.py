"""The HPA as a control loop of a run: a step in load, replica counts at the expected sync times.

Service ``api``: 2 replicas, 500m CPU request (limit 2), 10 ms of CPU per request, HPA on CPU
utilization with target 50 %, no ``behavior`` (the legacy path), pods ready 20 s after creation.
Load 50/s, 200/s from 5 min, 50/s from 10 min. metrics-server reads every 15 s from t = 0 and
reports the CPU rate over the last 15 s; the HPA syncs every 15 s from t = 15 s, after the reading.

Hand computation (utilization = int(100 x sum(usage) / sum(request))):

* before 300 s: 50/s x 10 ms = 0.5 cores over 2 pods = 250m each -> 50 % -> ratio 1.0 -> 2.
* 315 s (window 300-315): 200/s -> 2 cores / 2 pods = 1000m each -> 200 % -> ratio 4 ->
  ceil(4 x 2) = 8, capped at max(2 x 2, 4) = 4.
* 330 s: the 2 new pods (created at 315, after the 315 reading) have no sample: missing.
  Ready pods: 200 % -> ratio 4 > 1, missing count 0 -> 2000m / 2000m = 100 % -> ratio 2
  -> ceil(2 x 4) = 8 <= max(2 x 4, 4) = 8 -> 8.
* 345 s: pods 3-4 ready at 335, their samples (t = 345 < 335 + 15) are ignored (CPU init period);
  pods 5-8 missing. Ready pods ran 5 s at 1 core and 10 s at 0.5: 667m each -> 133 % -> 2.66;
  filling unready/missing with 0 -> 1334 / 4000 = 33 % -> 0.66: direction flips -> stay 8.
* 360 s: likewise (4 counted pods at 334m -> 1.32; filled 0.66 -> flip) -> 8; from 375 s
  8 pods x 250m = 50 % -> 8.
* 600 s: the load drops; proposals fall to 2 (12 % -> ceil(0.25 x 8) = 2), but the legacy path
  keeps the highest recommendation of the last 300 s: the last 8 was recorded at 600 s and
  still counts at 900 s (cutoff inclusive) -> scale-down at 915 s, to 2.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim import simulate


def _scenario(plane: str, **autoscaler: Any) -> dict[str, Any]:
    hpa = {
        "kind": "hpa",
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
            }
        ],
        **autoscaler,
    }
    return {
        "name": "hpa-step",
        "duration": "20m",
        "seed": 3,
        "plane": plane,
        "traffic": {
            "rate": "step(50/s, 5m: 200/s, 10m: 50/s)",
            "classes": [{"name": "c", "entry": "api.get"}],
        },
        "services": {
            "api": {
                "replicas": 2,
                "concurrency": 32,
                "startup": "20s",
                "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "2"}},
                "endpoints": {"get": {"steps": [{"work": "const(10ms)"}]}},
                "autoscaler": hpa,
            }
        },
    }


def _scales(events: list[dict[str, Any]]) -> list[tuple[float, int, int]]:
    return [(e["t"], e["from_replicas"], e["to_replicas"]) for e in events if e["kind"] == "hpa.scale"]


def test_step_load_flow_plane_matches_hand_computation() -> None:
    r = simulate(_scenario("flow"))
    assert _scales(r.events) == [(315.0, 2, 4), (330.0, 4, 8), (915.0, 8, 2)]
    reasons = [e["reason"] for e in r.events if e["kind"] == "hpa.scale"]
    assert reasons == ["cpu resource metric above target"] * 2 + ["All metrics below target"]
    assert r.summary["services"]["api"]["replicas"]["max"] == 8
    assert r.summary["autoscalers"]["api"]["rescales"] == 3


def test_step_load_request_plane_follows_the_same_rules() -> None:
    # Poisson arrivals make each 15 s CPU sample noisy (a few %), so only what the noise cannot
    # move is asserted: the capped first step, the second step, no scale-down inside the window.
    got = _scales(simulate(_scenario("request")).events)
    assert got[0] == (315.0, 2, 4)
    assert got[1][:2] == (330.0, 4) and 8 <= got[1][2] <= 9
    downs = [s for s in got if s[2] < s[1]]
    assert downs and all(t >= 900.0 for t, _, _ in downs)
    assert 2 <= got[-1][2] <= 3


def test_behavior_policies_pace_the_scale_up() -> None:
    # scaleUp: 1 pod per 60 s. 315: limit 2 + 1 = 3; 330, 345, 360: the 315 event is inside
    # the 60 s period (periodStart 2) -> stay 3; 375: 315 is not after 375 - 60 -> 3 + 1 = 4.
    beh = {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    got = _scales(simulate(_scenario("flow", behavior=beh)).events)
    ups = [s for s in got if s[2] > s[1]]
    assert ups[:2] == [(315.0, 2, 3), (375.0, 3, 4)]


def test_kube_state_metrics_hpa_series() -> None:
    r = simulate(_scenario("flow"))
    m = r.metrics
    hpa = m[m["metric"].str.startswith("kube_horizontalpodautoscaler_")]
    last = hpa[hpa["t"] == hpa["t"].max()].set_index("metric")["value"]
    assert last["kube_horizontalpodautoscaler_spec_min_replicas"] == 2
    assert last["kube_horizontalpodautoscaler_spec_max_replicas"] == 10
    assert last["kube_horizontalpodautoscaler_status_desired_replicas"] == 2
    at = hpa[(hpa["t"] == 600.0)].set_index("metric")["value"]
    assert at["kube_horizontalpodautoscaler_status_desired_replicas"] == 8
    assert at["kube_horizontalpodautoscaler_status_current_replicas"] == 8


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_without_metrics_the_hpa_holds(plane: str) -> None:
    # A Pods metric nobody exports: every sync fails, the HPA neither scales up nor down.
    sc = _scenario(
        plane,
        metrics=[
            {
                "type": "Pods",
                "pods": {"metric": {"name": "nope"}, "target": {"type": "AverageValue", "averageValue": 1}},
            }
        ],
    )
    r = simulate(sc)
    assert _scales(r.events) == []
    assert r.summary["autoscalers"]["api"]["failed_syncs"] == r.summary["autoscalers"]["api"]["syncs"]
