"""Argo Rollouts canary against the documented behaviour (reference/SEMANTICS.md 3.1, 3.2).

Expected times are hand-computed from the steps: a deploy at 60 s, pods that start in
10 s, ``setWeight`` done when the canary pods are available, ``pause`` counted from when
the step is reached. Traffic shares are measured on the twin's own scraped counters.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim import simulate
from devopsim.control.canary import basic_canary_counts
from devopsim.observe.promql import Engine


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "expected"),
    [
        (10, 20, True, (2, 8)),  # 2/10 is exact
        (10, 0, True, (0, 10)),
        (10, 100, True, (10, 0)),
        (4, 10, True, (1, 4)),  # 1/5 = 20 % beats 1/4 = 25 % (replicas + 1 with surge)
        (4, 10, False, (1, 3)),  # without surge only the ceiling remains (floor 0 not allowed)
        (3, 50, False, (2, 1)),  # 1.5 is a tie: the ceiling
        (5, 99, False, (4, 1)),  # the stable keeps a pod for weights below 100
    ],
)
def test_basic_canary_counts(replicas: int, weight: int, surge: bool, expected: tuple[int, int]) -> None:
    assert basic_canary_counts(replicas, weight, surge) == expected


def _scenario(plane: str, strategy: dict[str, Any], changes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "canary",
        "duration": "5m",
        "seed": 11,
        "plane": plane,
        "traffic": {"rate": "200/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "slos": [{"name": "availability", "objective": "99.9%"}],
        "services": {
            "api": {
                "replicas": 10,
                "concurrency": 16,
                "startup": "10s",
                "terminationGracePeriodSeconds": 5,
                "endpoints": {"get": {"steps": [{"work": "exp(5ms)"}]}},
                "strategy": strategy,
            }
        },
        "analysisTemplates": {
            "success-rate": {
                "metrics": [
                    {
                        "name": "success-rate",
                        "initialDelay": "30s",
                        "interval": "30s",
                        "count": 3,
                        "failureLimit": 2,
                        "successCondition": "result[0] >= 0.95",
                        "provider": {
                            "prometheus": {
                                "query": 'sum(rate(http_requests_total{service="api", role="canary",'
                                ' code!~"5.."}[1m])) / sum(rate(http_requests_total{service="api",'
                                ' role="canary"}[1m]))'
                            }
                        },
                    }
                ]
            }
        },
        "timeline": [{"at": "60s", "deploy": {"service": "api", "version": "v2", "changes": changes or {}}}],
    }


STEPS = [{"setWeight": 20}, {"pause": {"duration": "60s"}}, {"setWeight": 50}, {"pause": {"duration": "60s"}}]


def _share(store: Any, t0: float, t1: float) -> tuple[float, float]:
    """(requests to v2 in (t0, t1], its share of all) from the scraped counters."""
    eng = Engine(store)
    q = 'sum by (version) (http_requests_total{service="api"})'
    a = {s.labels["version"]: s.value for s in eng.instant(q, t0)}
    b = {s.labels["version"]: s.value for s in eng.instant(q, t1)}
    d = {v: b.get(v, 0.0) - a.get(v, 0.0) for v in b}
    total = sum(d.values())
    return d.get("v2", 0.0), d.get("v2", 0.0) / total


def _steps(events: list[dict[str, Any]]) -> list[tuple[float, str]]:
    return [(e["t"], e["step_kind"]) for e in events if e["kind"] == "canary.step"]


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_canary_with_traffic_router_steps_and_shares(plane: str) -> None:
    strategy = {"type": "Canary", "canary": {"trafficRouting": {"smi": {}}, "steps": STEPS}}
    res = simulate(_scenario(plane, strategy))
    # setWeight 20: 2 canary pods, available at 70; pause 60 s -> 130; setWeight 50: 5 pods,
    # the 3 new ones available at 140; pause -> 200; promotion: 10 pods, available at 210.
    assert _steps(res.events) == [
        (70.0, "pause 60s"),
        (130.0, "setWeight 50"),
        (140.0, "pause 60s"),
        (200.0, "end"),
    ]
    dep = res.summary["deployments"][0]
    assert dep["strategy"] == "Canary" and dep["outcome"] == "Healthy"
    assert dep["finished_s"] == 210.0 and dep["rollbacks"] == 0
    # The router keeps the stable ReplicaSet at 10 pods: 20 % of traffic to 2 pods of 12.
    _, s20 = _share(res.store, 75.0, 120.0)
    _, s50 = _share(res.store, 150.0, 195.0)
    assert s20 == pytest.approx(0.20, abs=0.02)
    assert s50 == pytest.approx(0.50, abs=0.02)
    # The old pods go scaleDownDelaySeconds (30 s) after the promotion.
    old_down = [e["t"] for e in res.events if e["kind"] == "pod.terminating"]
    assert len(old_down) == 10 and set(old_down) == {240.0}
    _, after = _share(res.store, 225.0, 285.0)
    assert after == pytest.approx(1.0)


def test_basic_canary_splits_by_replica_counts() -> None:
    res = simulate(_scenario("flow", {"type": "Canary", "canary": {"steps": STEPS}}))
    # 2 canary + 8 stable pods (the stable scaled down within maxUnavailable 25 % = 2 at once).
    assert _steps(res.events)[:2] == [(70.0, "pause 60s"), (130.0, "setWeight 50")]
    _, s20 = _share(res.store, 75.0, 120.0)
    assert s20 == pytest.approx(2 / 10, abs=0.01)
    _, s50 = _share(res.store, 150.0, 195.0)
    assert s50 == pytest.approx(5 / 10, abs=0.01)
    assert res.summary["deployments"][0]["outcome"] == "Healthy"


def _analysed(plane: str, error_rate: float) -> Any:
    steps = [
        {"setWeight": 20},
        {"analysis": {"templates": [{"templateName": "success-rate"}]}},
        {"setWeight": 100},
    ]
    strategy = {"type": "Canary", "canary": {"trafficRouting": {"smi": {}}, "steps": steps}}
    return simulate(_scenario(plane, strategy, {"errorRate": error_rate}))


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_analysis_fails_a_bad_canary_and_rolls_back(plane: str) -> None:
    res = _analysed(plane, 0.20)
    dep = res.summary["deployments"][0]
    run = dep["analysis_runs"][0]
    m = run["metrics"][0]
    # Measurements at 70 + 30 = 100, 130, 160; failureLimit 2: the third failure fails the run.
    assert m["times"] == [100.0, 130.0, 160.0]
    assert m["failed"] == 3 and m["phase"] == "Failed" and run["phase"] == "Failed"
    assert [v[0] for v in m["values"]] == pytest.approx([0.8, 0.8, 0.8], abs=0.03)
    assert dep["outcome"] == "Aborted" and dep["rollbacks"] == 1 and dep["aborted_s"] == 160.0
    # All traffic back on stable at once; the canary pods go abortScaleDownDelaySeconds later.
    new_after, _ = _share(res.store, 165.0, 285.0)
    assert new_after == 0.0
    v2_down = [e["t"] for e in res.events if e["kind"] == "pod.terminating"]
    assert v2_down == [190.0, 190.0]
    # What the canary served and the errors it caused (20 % of it).
    assert dep["requests_new_version"] == pytest.approx(0.2 * 200 * 90, rel=0.1)
    assert dep["errors_new_version"] == pytest.approx(0.2 * dep["requests_new_version"], rel=0.1)
    assert res.summary["dora"]["change_failure_rate"] == 1.0


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_analysis_passes_a_good_canary(plane: str) -> None:
    res = _analysed(plane, 0.0)
    dep = res.summary["deployments"][0]
    m = dep["analysis_runs"][0]["metrics"][0]
    assert m["times"] == [100.0, 130.0, 160.0] and m["successful"] == 3
    assert dep["analysis_runs"][0]["phase"] == "Successful"
    # setWeight 100 after the analysis: 10 canary pods available at 170, then the promotion.
    assert _steps(res.events) == [(70.0, "analysis"), (160.0, "setWeight 100"), (170.0, "end")]
    assert dep["outcome"] == "Healthy" and dep["finished_s"] == 170.0 and dep["errors_new_version"] == 0


def test_background_analysis_aborts_a_basic_canary() -> None:
    strategy = {
        "type": "Canary",
        "canary": {"steps": STEPS, "analysis": {"templates": [{"templateName": "success-rate"}]}},
    }
    res = simulate(_scenario("flow", strategy, {"errorRate": 0.2}))
    dep = res.summary["deployments"][0]
    run = dep["analysis_runs"][0]
    # Background analysis from the rollout's start (60 s): measurements at 90, 120, 150.
    assert run["kind"] == "background" and run["metrics"][0]["times"] == [90.0, 120.0, 150.0]
    assert dep["outcome"] == "Aborted" and dep["aborted_s"] == 150.0
    # Basic canary: a rolling update back to 10 stable pods, the canary pods gone.
    assert dep["finished_s"] is not None and dep["finished_s"] >= 150.0
    pods = {e["pod"]: e for e in res.events if e["kind"] == "pod.created"}
    live_v2 = {p for p, e in pods.items() if e["version"] == "v2"} - {
        e["pod"] for e in res.events if e["kind"] == "pod.terminating"
    }
    assert not live_v2


def test_slo_burn_guard_rolls_back_a_rolling_update() -> None:
    sc = _scenario("flow", {"type": "RollingUpdate", "autoRollback": {"sloBurnRate": 14.4, "window": "2m"}})
    sc["services"]["api"]["startup"] = "30s"
    sc["timeline"][0]["deploy"]["changes"] = {"errorRate": 0.5}
    res = simulate(sc)
    deps = res.summary["deployments"]
    assert deps[0]["outcome"] == "RolledBack" and deps[0]["rollbacks"] == 1
    assert "slo-burn" in deps[0]["abort_reason"]
    assert deps[1]["kind"] == "rollback" and deps[1]["to_version"] == "v1"
    # The guard runs at scrapes (every 15 s). The first v2 pods are ready at 90 and answer 500s;
    # their 5xx series first appears at the scrape of 105 and rate() needs two samples: 120. The
    # burn rate then is far above 14.4x (an error ratio over 1.44 % against a 0.1 % budget).
    assert deps[0]["aborted_s"] == 120.0
    # What v2 served (from 90 s until the rollback drained it) and the 500s it gave: half.
    assert deps[0]["requests_new_version"] > 0
    assert deps[0]["errors_new_version"] == pytest.approx(0.5 * deps[0]["requests_new_version"], rel=0.05)
    # The rollback's record counts v1 from 120 s only: at most the 200/s of the rest of the run.
    assert 0 < deps[1]["requests_new_version"] <= 200 * 180 * 1.05


def test_slo_burn_guard_leaves_a_good_rollout_alone() -> None:
    sc = _scenario("flow", {"type": "RollingUpdate", "autoRollback": {"sloBurnRate": 14.4, "window": "2m"}})
    res = simulate(sc)
    assert [d["outcome"] for d in res.summary["deployments"]] == ["complete"]


def test_canary_example_catches_the_regression() -> None:
    """examples/canary.yaml: v2 (2 % errors) at 1 h through setWeight 10 / pause 5m / analysis."""
    from tests.helpers import EXAMPLES

    res = simulate(EXAMPLES / "canary.yaml")
    dep = res.summary["deployments"][0]
    m = dep["analysis_runs"][0]["metrics"][0]
    # 1 canary pod (10 % of 10), available at 3610; pause to 3910; the analysis measures at
    # 3910 and 3970 (interval 1m): 2 % > 1 % twice exceeds failureLimit 1.
    assert [s["t"] for s in dep["steps"]] == [3600.0, 3610.0, 3910.0]
    assert m["times"] == [3910.0, 3970.0] and m["phase"] == "Failed"
    assert [v[0] for v in m["values"]] == pytest.approx([0.02, 0.02], abs=0.004)
    assert dep["outcome"] == "Aborted" and dep["aborted_s"] == 3970.0
    # Rolled back by a rolling update: the one stable pod it needs is available 10 s later.
    assert dep["finished_s"] == 3980.0
    assert dep["errors_new_version"] == pytest.approx(0.02 * dep["requests_new_version"], rel=0.1)
    assert res.summary["slos"][0]["met"]


def test_slo_guard_without_an_availability_slo_is_a_clear_error() -> None:
    from devopsim.errors import ScenarioError

    sc = _scenario("flow", {"type": "RollingUpdate", "autoRollback": {"sloBurnRate": 10}})
    sc["slos"] = [{"name": "fast", "objective": "99%", "latency": "100ms"}]
    with pytest.raises(
        ScenarioError, match=r"services\.api\.strategy\.autoRollback\.sloBurnRate.*availability SLO"
    ):
        simulate(sc)


def test_indefinite_pause_then_timeline_rollback_to_stable() -> None:
    strategy = {
        "type": "Canary",
        "canary": {"trafficRouting": {"smi": {}}, "steps": [{"setWeight": 20}, {"pause": {}}]},
    }
    sc = _scenario("request", strategy)
    res = simulate({**sc, "duration": "4m"})
    dep = res.summary["deployments"][0]
    # pause: {} waits for a promote that never comes.
    assert dep["paused"] == "PauseStep" and dep["outcome"] == "in-progress"
    _, share = _share(res.store, 75.0, 225.0)
    assert share == pytest.approx(0.2, abs=0.02)
    # kubectl argo rollouts undo to the stable version mid-rollout: an abort, no steps.
    sc["timeline"].append({"at": "120s", "rollback": {"service": "api"}})
    res = simulate(sc)
    dep = res.summary["deployments"][0]
    assert len(res.summary["deployments"]) == 1
    assert dep["outcome"] == "Aborted" and dep["aborted_s"] == 120.0
    assert dep["min_available"] == 10 and dep["max_pods"] == 12
    new, _ = _share(res.store, 135.0, 285.0)
    assert new == 0.0
