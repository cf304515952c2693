"""Argo Rollouts blue-green against the documented sequence (reference/SEMANTICS.md 3.3).

A deploy at 60 s; pods start in 10 s. Expected times are hand-computed from the spec.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim import simulate
from devopsim.observe.promql import Engine


def _scenario(
    plane: str, blue_green: dict[str, Any], changes: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": "bluegreen",
        "duration": "5m",
        "seed": 5,
        "plane": plane,
        "traffic": {"rate": "100/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {
            "api": {
                "replicas": 4,
                "concurrency": 16,
                "startup": "10s",
                "terminationGracePeriodSeconds": 5,
                "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
                "strategy": {"type": "BlueGreen", "blueGreen": blue_green},
            }
        },
        "analysisTemplates": {
            "errors": {
                "metrics": [
                    {
                        "name": "preview-ok",
                        "initialDelay": "10s",
                        "interval": "20s",
                        "count": 2,
                        "successCondition": "result[0] > 0",
                        "provider": {"prometheus": {"query": 'sum(kube_pod_status_ready{role="preview"})'}},
                    }
                ]
            },
            "never": {
                "metrics": [
                    {
                        "name": "impossible",
                        "successCondition": "result[0] < 0",
                        "provider": {"prometheus": {"query": "vector(1)"}},
                    }
                ]
            },
        },
        "timeline": [{"at": "60s", "deploy": {"service": "api", "version": "v2", "changes": changes or {}}}],
    }


def _by_version(store: Any, t0: float, t1: float) -> dict[str, float]:
    eng = Engine(store)
    q = 'sum by (version) (http_requests_total{service="api"})'
    a = {s.labels["version"]: s.value for s in eng.instant(q, t0)}
    b = {s.labels["version"]: s.value for s in eng.instant(q, t1)}
    return {v: b.get(v, 0.0) - a.get(v, 0.0) for v in set(a) | set(b)}


def _terminating(events: list[dict[str, Any]]) -> list[float]:
    return [e["t"] for e in events if e["kind"] == "pod.terminating"]


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_preview_then_auto_promotion_then_scale_down(plane: str) -> None:
    res = simulate(_scenario(plane, {"autoPromotionSeconds": 60, "scaleDownDelaySeconds": 30}))
    steps = res.summary["deployments"][0]["steps"]
    # Preview: 4 new pods at 60, available at 70 (the pause begins); promotion 60 s later.
    assert [(s["t"], s["kind"]) for s in steps] == [
        (60.0, "preview"),
        (70.0, "preview-ready"),
        (130.0, "promoted"),
        (160.0, "old-scaled-down"),
    ]
    # The preview takes no user traffic; after the switch the old pods take none.
    during = _by_version(res.store, 75.0, 120.0)
    assert during.get("v2", 0.0) == 0.0 and during["v1"] > 0
    after = _by_version(res.store, 135.0, 150.0)
    assert after.get("v1", 0.0) == 0.0 and after["v2"] == pytest.approx(100 * 15, rel=0.1)
    # The old ReplicaSet goes scaleDownDelaySeconds after the switch.
    assert _terminating(res.events) == [160.0] * 4
    dep = res.summary["deployments"][0]
    assert dep["outcome"] == "Healthy" and dep["finished_s"] == 130.0


def test_preview_replica_count_and_pre_promotion_analysis() -> None:
    bg = {
        "previewReplicaCount": 1,
        "prePromotionAnalysis": {"templates": [{"templateName": "errors"}]},
        "scaleDownDelaySeconds": 10,
    }
    res = simulate(_scenario("flow", bg))
    dep = res.summary["deployments"][0]
    run = dep["analysis_runs"][0]
    # One preview pod available at 70; analysis (initialDelay 10 s: the scrape of 75 has seen
    # the pod ready) at 80 and 100 (count 2): Successful at 100; then the new ReplicaSet is
    # scaled to 4 (3 more pods, available at 110) and the switch happens.
    assert run["kind"] == "prePromotion" and run["phase"] == "Successful"
    assert run["metrics"][0]["times"] == [80.0, 100.0]
    kinds = [(s["t"], s["kind"]) for s in dep["steps"]]
    assert kinds == [
        (60.0, "preview"),
        (70.0, "preview-ready"),
        (110.0, "promoted"),
        (120.0, "old-scaled-down"),
    ]
    assert _terminating(res.events) == [120.0] * 4


def test_failed_pre_promotion_analysis_aborts() -> None:
    bg = {
        "prePromotionAnalysis": {"templates": [{"templateName": "never"}]},
        "abortScaleDownDelaySeconds": 30,
    }
    res = simulate(_scenario("flow", bg))
    dep = res.summary["deployments"][0]
    # The single measurement at 70 fails (count 1 without interval): abort at 70, the preview
    # pods scaled down 30 s later, no user request ever reached v2.
    assert dep["outcome"] == "Aborted" and dep["aborted_s"] == 70.0 and dep["rollbacks"] == 1
    assert _terminating(res.events) == [100.0] * 4
    assert _by_version(res.store, 60.0, 295.0).get("v2", 0.0) == 0.0


def test_manual_promotion_stays_paused() -> None:
    res = simulate(_scenario("flow", {"autoPromotionEnabled": False}))
    dep = res.summary["deployments"][0]
    assert dep["paused"] == "BlueGreenPause" and dep["outcome"] == "in-progress"
    assert _by_version(res.store, 75.0, 285.0).get("v2", 0.0) == 0.0


def test_failed_post_promotion_analysis_switches_back() -> None:
    bg = {"postPromotionAnalysis": {"templates": [{"templateName": "never"}]}, "scaleDownDelaySeconds": 30}
    res = simulate(_scenario("request", bg))
    dep = res.summary["deployments"][0]
    # Auto-promotion without delay: the switch at 70 when the preview is available; the
    # post-promotion measurement at 70 fails: abort, traffic back on the old pods (still up:
    # their scale-down waits for the analysis), the new pods go 30 s later.
    assert [(s["t"], s["kind"]) for s in dep["steps"]][:3] == [
        (60.0, "preview"),
        (70.0, "preview-ready"),
        (70.0, "promoted"),
    ]
    assert dep["outcome"] == "Aborted" and dep["aborted_s"] == 70.0
    assert _terminating(res.events) == [100.0] * 4
    assert _by_version(res.store, 75.0, 295.0).get("v2", 0.0) == 0.0
