"""Predictive autoscaling policies: the plug-in point and the seasonal-naive policy.

External truth: the seasonal naive forecast ``y(T + h) = y(T + h - m)`` (Hyndman &
Athanasopoulos, FPP section 5.2) applied to a load whose CPU is known in closed form.

Service ``api``: 12 replicas, 250m CPU request, 5 ms of CPU per request, seasonal-naive with
season 240 s, horizon 60 s, target utilization 0.8 (0.2 cores a pod). Load repeats every
240 s: 420/s for 120 s (2.1 cores: ceil(10.5) = 11 pods) then 100/s (0.5 cores: ceil(2.5) =
3 pods); the halves keep Poisson noise on the request plane (about 1-3 %) off the edges. metrics-server reports the CPU of [t - 15, t] at t, so the
sample at t is the load of that window. Each sync at t provisions for the highest sample in
(t - 240, t - 180]; with none there yet (t < 195), for the latest sample.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from devopsim import simulate
from devopsim.api import _load
from devopsim.control.policies import (
    AutoscalerPolicy,
    History,
    Observation,
    SeasonalNaive,
    policy_factory,
    register_policy,
)
from devopsim.errors import ScenarioError
from devopsim.scenario.support import unsupported_features

SEASON, HORIZON, PER_POD = 240.0, 60.0, 0.25 * 0.8


def _rate(t: float) -> float:
    return 420.0 if (t % SEASON) < 120.0 else 100.0


def _cpu_sample(t: float) -> float:
    return _rate(t - 15.0) * 0.005  # the window [t - 15, t) lies inside one level


def _expected(t: float) -> int:
    past = [s for s in range(15, int(t) + 1, 15) if t - SEASON < s <= t - SEASON + HORIZON]
    cpu = max(_cpu_sample(s) for s in past) if past else _cpu_sample(t)
    return math.ceil(cpu / PER_POD)


def _scenario(plane: str, model: str = "seasonal-naive", **svc: Any) -> dict[str, Any]:
    return {
        "name": "predictive",
        "duration": "9m",
        "seed": 4,
        "plane": plane,
        "traffic": {
            "rate": "step(420/s, 2m: 100/s, 4m: 420/s, 6m: 100/s, 8m: 420/s)",
            "classes": [{"name": "c", "entry": "api.get"}],
        },
        "services": {
            "api": {
                "replicas": 12,
                "concurrency": 16,
                "resources": {"requests": {"cpu": "250m"}},
                "endpoints": {"get": {"steps": [{"work": "const(5ms)"}]}},
                "autoscaler": {
                    "kind": "predictive",
                    "model": model,
                    "season": "4m",
                    "horizon": "1m",
                    "minReplicas": 1,
                    "maxReplicas": 20,
                    "targetUtilization": 0.8,
                },
                **svc,
            }
        },
    }


def test_seasonal_naive_unit() -> None:
    h = History()
    for t, cpu in [(15.0, 2.0), (30.0, 0.5), (45.0, 1.0)]:
        h.append(Observation(t, cpu, 3, 3))
    p = SeasonalNaive(season=40.0, horizon=10.0, per_pod=0.25)
    assert isinstance(p, AutoscalerPolicy)
    # At 45 the window (5, 15] holds the 15 s sample: 2.0 cores -> ceil(2.0 / 0.25) = 8.
    assert p.forecast(45.0, h) == 2.0 and p.recommend(45.0, h) == 8
    # At 30 the window (-10, 0] is empty: the latest sample (0.5 cores at 30) -> 2.
    assert p.recommend(30.0, History(h.observations[:2], [15.0, 30.0])) == 2


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_seasonal_naive_scales_ahead_of_a_repeating_load(plane: str) -> None:
    r = simulate(_scenario(plane))
    trace = {t: n for t, n in r.summary["autoscalers"]["api"]["desired"]}
    assert sorted(trace) == [15.0 * k for k in range(1, 36)]
    for t, n in trace.items():
        assert n == _expected(t), t
    # By hand: low load seen at 135 -> 3; 195 looks at the 15 s sample (2.1 cores) -> 11, 45 s
    # before the load returns at 240; 360 sees only low samples (135-180) -> 3; 435 sees the
    # 255 s sample -> 11, 45 s before 480.
    assert [trace[t] for t in (120.0, 135.0, 180.0, 195.0, 345.0, 360.0, 420.0, 435.0)] == [
        11,
        3,
        3,
        11,
        11,
        3,
        3,
        11,
    ]
    ups = [e for e in r.events if e["kind"] == "autoscaler.scale" and e["to_replicas"] > e["from_replicas"]]
    assert [e["t"] for e in ups] == [195.0, 435.0]
    assert r.summary["services"]["api"]["replicas"]["max"] == 12


def test_plugin_point_runs_a_registered_policy() -> None:
    class Fixed:
        def recommend(self, now: float, history: History) -> int:
            return 5 if now >= 60.0 else 12

    register_policy("test-fixed", lambda spec, service: Fixed())
    try:
        data = _scenario("flow")
        data["services"]["api"]["autoscaler"] = {"kind": "rl", "policy": "test-fixed", "maxReplicas": 8}
        r = simulate(data)
        scales = [(e["t"], e["to_replicas"]) for e in r.events if e["kind"] == "autoscaler.scale"]
        assert scales == [(15.0, 8), (60.0, 5)]  # 12 clamped to maxReplicas 8
        assert r.summary["autoscalers"]["api"]["policy"] == "test-fixed"
    finally:
        from devopsim.control import policies

        policies._REGISTRY.pop("test-fixed")


def test_unregistered_models_stay_not_simulated() -> None:
    assert policy_factory("xgboost") is None
    loaded = _load(_scenario("flow", model="xgboost"), None)
    paths = [u.path for u in unsupported_features(loaded.scenario, loaded.source)]
    assert "services.api.autoscaler" in paths
    loaded = _load(_scenario("flow"), None)
    paths = [u.path for u in unsupported_features(loaded.scenario, loaded.source)]
    assert "services.api.autoscaler" not in paths


def test_seasonal_naive_needs_a_cpu_request() -> None:
    with pytest.raises(ScenarioError, match=r"services\.api\.resources\.requests\.cpu"):
        simulate(_scenario("flow", resources={}))
