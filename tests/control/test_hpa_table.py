"""The HPA replica calculation against the documented rules (reference/SEMANTICS.md section 1).

Every expected count is worked out by hand from the rules of kube-controller-manager
(``replica_calculator.go``, ``horizontal.go``); the arithmetic is in each case's comment.
CPU values are cores, requests 500m unless said; utilization = int(100 * sum(usage) /
sum(request)) over the pods counted, in milli-units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from devopsim.control.hpa import (
    HPAController,
    MetricReading,
    PodInfo,
    PodSample,
    Policy,
    Rules,
    resolve_behavior,
)
from devopsim.scenario.controllers import Behavior

NOW = 1000.0  # well past the 5 min CPU initialization period of pods started at 0


def pods(n: int, req: float | None = 0.5, **special: dict[str, object]) -> list[PodInfo]:
    """n running, ready pods p0..p{n-1}; ``special`` overrides fields of single pods."""
    out = []
    for i in range(n):
        kw: dict[str, object] = {"name": f"p{i}", "request": req}
        kw.update(special.get(f"p{i}", {}))
        out.append(PodInfo(**kw))  # type: ignore[arg-type]
    return out


def samples(values: Sequence[float | None], t: float = NOW) -> dict[str, PodSample]:
    return {f"p{i}": PodSample(v, t, 15.0) for i, v in enumerate(values) if v is not None}


def cpu(values: Sequence[float | None], target: int, t: float = NOW) -> MetricReading:
    return MetricReading("Resource", "cpu", "Utilization", target, samples=samples(values, t))


def cpu_avg(values: Sequence[float | None], target: float) -> MetricReading:
    return MetricReading("Resource", "cpu", "AverageValue", target, samples=samples(values))


def mem_avg(values: Sequence[float | None], target: float) -> MetricReading:
    return MetricReading("Resource", "memory", "AverageValue", target, samples=samples(values))


def pods_metric(values: Sequence[float | None], target: float) -> MetricReading:
    return MetricReading("Pods", "rps", "AverageValue", target, samples=samples(values))


def ext(value: float, target: float = 100.0, kind: str = "AverageValue") -> MetricReading:
    return MetricReading("External", "lag", kind, target, value=value)  # type: ignore[arg-type]


def broken() -> MetricReading:
    return MetricReading("Pods", "qps", "AverageValue", 1.0, error="the metrics API is down")


@dataclass
class Case:
    id: str
    current: int
    readings: list[MetricReading]
    pods: list[PodInfo]
    expected: int
    min: int = 1
    max: int = 100
    now: float = NOW
    behavior: tuple[Rules, Rules] | None = None
    extra: dict[str, object] = field(default_factory=dict)


NOT_READY_EARLY = {"ready": False, "start": 900.0, "ready_since": 900.0}  # within 5 min of start

CASES = [
    # 4 x 400m / 4 x 500m = 80 %; 80/50 = 1.6 -> ceil(1.6 * 4) = ceil(6.4) = 7; legacy cap max(8, 4) = 8.
    Case("utilization scale-up", 4, [cpu([0.4] * 4, 50)], pods(4), 7),
    # 4 x 275m = 1100 / 2000 = 55 %; 55/50 = 1.1 is inside the inclusive band -> stay at 4.
    Case("upper tolerance bound is inclusive", 4, [cpu([0.275] * 4, 50)], pods(4), 4),
    # 4 x 280m = 1120 / 2000 = 56 %; 1.12 > 1.1 -> ceil(1.12 * 4) = ceil(4.48) = 5.
    Case("just above tolerance", 4, [cpu([0.28] * 4, 50)], pods(4), 5),
    # 4 x 225m = 900 / 2000 = 45 %; 0.9 inside the band -> 4.
    Case("lower tolerance bound is inclusive", 4, [cpu([0.225] * 4, 50)], pods(4), 4),
    # 4 x 100m = 400 / 2000 = 20 %; 0.4 -> ceil(1.6) = 2; fresh history, so stabilized = 2.
    Case("utilization scale-down", 4, [cpu([0.1] * 4, 50)], pods(4), 2),
    # 3 x 100m / 3 x 300m = int(33.3) = 33 %; 33/30 = 1.1 -> inside the band (truncation) -> 3.
    Case("utilization truncates to an integer", 3, [cpu([0.1] * 3, 30)], pods(3, req=0.3), 3),
    # p3 missing; 3 x 500m/1500 = 100 % -> 2.0 > 1: missing counts 0 -> 1500/2000 = 75 %,
    # 1.5 -> ceil(1.5 * 4) = 6.
    Case("missing pod on scale-up counts 0", 4, [cpu([0.5, 0.5, 0.5, None], 50)], pods(4), 6),
    # p3 missing; 300/1500 = 20 % -> 0.4 < 1: missing counts max(100, 50) % of 500m = 500
    # -> 800/2000 = 40 %, 0.8 -> ceil(0.8 x 4) = ceil(3.2) = 4 = current -> 4 (2 without the fill).
    Case("missing pod on scale-down counts 100 %", 4, [cpu([0.1, 0.1, 0.1, None], 50)], pods(4), 4),
    # target 150 %: 750/1500 = 50 % -> 0.333; missing counts 150 % of 500 = 750 -> 1500/2000
    # = 75 % -> 0.5 -> ceil(0.5 * 4) = 2.
    Case("missing pod with target above 100 %", 4, [cpu([0.25, 0.25, 0.25, None], 150)], pods(4), 2),
    # p3 not ready within its init period -> unready; ready ratio 100/50 = 2 > 1 so unready
    # counts 0 -> 1500/2000 = 75 % -> 1.5 -> ceil(6) = 6.
    Case("unready pod on scale-up counts 0", 4, [cpu([0.5] * 4, 50)], pods(4, p3=NOT_READY_EARLY), 6),
    # same, ready pods at 100m: 300/1500 = 20 % -> 0.4 < 1, unready left out -> fast path over
    # the 3 ready pods: ceil(0.4 * 3) = ceil(1.2) = 2.
    Case("unready pod left out on scale-down", 4, [cpu([0.1] * 4, 50)], pods(4, p3=NOT_READY_EARLY), 2),
    # p3 started 950, ready since 960; sample at 1000 is < 960 + 15? no: 1000 >= 975 -> counted.
    # 4 x 100 % -> 2.0 -> ceil(8) = 8; legacy cap max(2 x 4, 4) = 8.
    Case(
        "fresh sample of a ready pod in its init period counts",
        4,
        [cpu([0.5] * 4, 50)],
        pods(4, p3={"start": 950.0, "ready_since": 960.0}),
        8,
    ),
    # sample at 970 < ready_since 960 + window 15 = 975 -> p3 unready -> as the unready case: 6.
    Case(
        "sample older than ready + window is ignored in the init period",
        4,
        [cpu([0.5] * 4, 50, t=970.0)],
        pods(4, p3={"start": 950.0, "ready_since": 960.0}),
        6,
        now=975.0,
    ),
    # past init; p3 not ready, Ready changed at 10 < start 0 + 30 s: never been ready -> unready -> 6.
    Case(
        "never-ready pod past the init period is unready",
        4,
        [cpu([0.5] * 4, 50)],
        pods(4, p3={"ready": False, "ready_since": 10.0}),
        6,
    ),
    # past init; p3 not ready since 100 (was ready before) -> its sample counts: 4 x 100 % -> 8.
    Case(
        "once-ready pod past the init period counts",
        4,
        [cpu([0.5] * 4, 50)],
        pods(4, p3={"ready": False, "ready_since": 100.0}),
        8,
    ),
    # memory: only Pending is unready, so p3 (not ready, in init) counts: avg 1.5e6/1e6 = 1.5
    # -> ceil(1.5 * 4) = 6.
    Case("memory ignores readiness", 4, [mem_avg([1.5e6] * 4, 1e6)], pods(4, p3=NOT_READY_EARLY), 6),
    # cpu AverageValue, target 200m: ready avg 300m -> 1.5; p3 unready -> 0: (900)/4 = 225
    # -> 1.125 -> ceil(4.5) = 5.
    Case(
        "cpu AverageValue with an unready pod", 4, [cpu_avg([0.3] * 4, 0.2)], pods(4, p3=NOT_READY_EARLY), 5
    ),
    # Pods metric, p3 Pending: 3 x 20 / 3 = 20 vs 10 -> 2; Pending unready -> 0: 60/4 = 15
    # -> 1.5 -> ceil(6) = 6.
    Case(
        "pending pod is unready for any metric",
        4,
        [pods_metric([20, 20, 20, None], 10)],
        pods(4, p3={"phase": "Pending"}),
        6,
    ),
    # p3 deleting: ignored; 3 x 100 % -> 2.0 -> ceil(2 * 3) = 6.
    Case("deleting pod is ignored", 4, [cpu([0.5, 0.5, 0.5, 0.0], 50)], pods(4, p3={"deleting": True}), 6),
    # p3 Failed: ignored likewise -> 6.
    Case("failed pod is ignored", 4, [cpu([0.5, 0.5, 0.5, 0.0], 50)], pods(4, p3={"phase": "Failed"}), 6),
    # Pods metric avg (10+20+30+40)/4 = 25 vs 10 -> 2.5 -> ceil(10) = 10; legacy cap max(8, 4) = 8.
    Case("legacy scale-up limit 2x", 4, [pods_metric([10, 20, 30, 40], 10)], pods(4), 8),
    # 1 pod, ratio 10 -> ceil(10) = 10; legacy cap max(2 x 1, 4) = 4.
    Case("legacy scale-up limit minimum 4", 1, [pods_metric([100], 10)], pods(1), 4),
    # Pods metric, p3 missing on scale-down: 3 x 2 / 3 = 2 vs 10 -> 0.2; missing = target 10:
    # (6 + 10)/4 = 4 -> 0.4 -> ceil(1.6) = 2.
    Case("plain metric missing pod counts the target", 4, [pods_metric([2, 2, 2, None], 10)], pods(4), 2),
    # 2 of 4 pods report 350m: 700/1000 = 70 % -> 1.4; missing count 0: 700/2000 = 35 % -> 0.7,
    # the direction flips -> stay at 4.
    Case("direction flip keeps current", 4, [cpu([0.35, 0.35, None, None], 50)], pods(4), 4),
    # Object Value 300 vs 100 -> 3; ready running pods 2 (p2 not ready) -> ceil(3 * 2) = 6;
    # legacy cap max(6, 4) = 6.
    Case(
        "object value uses ready pods",
        3,
        [MetricReading("Object", "qps", "Value", 100.0, value=300.0)],
        pods(3, p2={"ready": False}),
        6,
    ),
    # Object AverageValue 1000, target 100, 5 replicas: ratio 1000/(100 x 5) = 2 -> ceil(1000/100)
    # = 10; cap max(10, 4) = 10.
    Case(
        "object average value",
        5,
        [MetricReading("Object", "qps", "AverageValue", 100.0, value=1000.0)],
        pods(5),
        10,
    ),
    # External AverageValue 420 vs 100 x 4 -> 1.05 inside the band -> 4.
    Case("external average value within tolerance", 4, [ext(420)], pods(4), 4),
    # External AverageValue 1000 vs 100 x 4 -> 2.5 -> ceil(1000/100) = 10; cap 8.
    Case("external average value is capped", 4, [ext(1000)], pods(4), 8),
    # minReplicas 0, current 0: External Value 250 vs 100 -> ceil(2.5) = 3; cap max(0, 4) = 4 -> 3.
    Case("scale from zero with an external value", 0, [ext(250, kind="Value")], [], 3, min=0),
    # max over metrics: cpu proposes 7 (first case), Pods 25/20 = 1.25 -> ceil(5) = 5 -> 7.
    Case(
        "several metrics take the maximum",
        4,
        [pods_metric([25] * 4, 20), cpu([0.4] * 4, 50)],
        pods(4),
        7,
    ),
    # one metric fails, the other scales up (7) -> 7.
    Case("failed metric, the rest scale up", 4, [broken(), cpu([0.4] * 4, 50)], pods(4), 7),
    # one metric fails, the other would scale down (2) -> hold 4.
    Case("failed metric, the rest scale down: hold", 4, [broken(), cpu([0.1] * 4, 50)], pods(4), 4),
    # every metric fails -> hold.
    Case("all metrics failed: hold", 4, [broken()], pods(4), 4),
    # current 0 with minReplicas 1: scaling disabled, stays 0 whatever the metric says.
    Case("zero replicas disables autoscaling", 0, [ext(1000)], [], 0),
    # current 12 > max 10 -> 10, metrics not consulted.
    Case("above maxReplicas", 12, [cpu([0.5] * 12, 50)], pods(12), 10, max=10),
    # current 1 < min 3 -> 3, metrics not consulted (they say scale down).
    Case("below minReplicas", 1, [cpu([0.01], 50)], pods(1), 3, min=3),
    # 1.6 -> 7, clamped to maxReplicas 5.
    Case("clamp to maxReplicas", 4, [cpu([0.4] * 4, 50)], pods(4), 5, max=5),
    # 0.4 -> 2, clamped to minReplicas 3.
    Case("clamp to minReplicas", 4, [cpu([0.1] * 4, 50)], pods(4), 3, min=3),
    # behavior set (defaults): 10 -> ext 30: Pods 4 -> 14, Percent 100 -> ceil(10 x 2) = 20; Max -> 20.
    Case(
        "behavior default scale-up policies",
        10,
        [ext(3000)],
        pods(10),
        20,
        behavior=resolve_behavior(Behavior()),
    ),
    # selectPolicy Min -> min(14, 20) = 14.
    Case(
        "selectPolicy Min",
        10,
        [ext(3000)],
        pods(10),
        14,
        behavior=resolve_behavior(Behavior.model_validate({"scaleUp": {"selectPolicy": "Min"}})),
    ),
    # selectPolicy Disabled -> the limit is current: 10.
    Case(
        "selectPolicy Disabled",
        10,
        [ext(3000)],
        pods(10),
        10,
        behavior=resolve_behavior(Behavior.model_validate({"scaleUp": {"selectPolicy": "Disabled"}})),
    ),
    # scaleUp tolerance 1 %: 4 x 210m = 840/2000 = 42 % vs 40 -> 1.05 > 1.01 -> ceil(4.2) = 5;
    # limit max(4 + 4, ceil(4 x 2)) = 8 -> 5. (With the default 10 % it would stay 4.)
    Case(
        "per-direction tolerance",
        4,
        [cpu([0.21] * 4, 40)],
        pods(4),
        5,
        behavior=resolve_behavior(Behavior.model_validate({"scaleUp": {"tolerance": 0.01}})),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_single_sync(case: Case) -> None:
    hpa = HPAController(case.min, case.max, case.behavior)
    d = hpa.reconcile(case.now, case.current, case.readings, case.pods)
    assert d.desired == case.expected, d


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) + len(SEQUENCES) >= 30


# --- sequences: stabilization windows and rate limits over several syncs -------------------


def _rules(up: dict[str, object] | None = None, down: dict[str, object] | None = None) -> tuple[Rules, Rules]:
    b = resolve_behavior(Behavior.model_validate({"scaleUp": up, "scaleDown": down}))
    assert b is not None
    return b


# (id, behavior, min, max, [(t, current, proposal)], [expected desired per sync])
# Proposals come from an External AverageValue metric (value = proposal x 100, target 100),
# whose proposal is exactly ceil(value / target) once outside the band.
SEQUENCES = [
    # Legacy: max over proposals of the last 300 s, cutoff inclusive (a sample exactly 300 s
    # old still counts): t0 10, t15 4 -> max(10, 4) = 10; t300: the t0 sample is 300 s old, kept
    # -> 10; t315: t0 is older than 300 s -> max(4, 4) = 4.
    (
        "legacy downscale stabilization",
        None,
        1,
        20,
        [(0, 10, 10), (15, 10, 4), (300, 10, 4), (315, 10, 4)],
        [10, 10, 10, 4],
    ),
    # Behavior defaults: scale-down window 300 s, samples strictly inside (t > now - 300):
    # t300 excludes t0 -> max(4, 4) = 4; the down limit Percent 100 -> int(10 x 0) = 0 -> min 1 -> 4.
    (
        "behavior downscale stabilization",
        _rules(),
        1,
        20,
        [(0, 10, 10), (15, 10, 4), (300, 10, 4)],
        [10, 10, 4],
    ),
    # scaleDown Percent 50 per 60 s, window 0: t0 20 -> int(20 x 0.5) = 10; t15 periodStart
    # 10 + 10 = 20 -> 10 = current -> 10; t60 the t0 event is not after 60 - 60 -> start 10 -> 5.
    (
        "scale-down percent per period",
        _rules(
            down={
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
            }
        ),
        1,
        50,
        [(0, 20, 2), (15, 10, 2), (60, 10, 2)],
        [10, 10, 5],
    ),
    # scaleDown Pods 1 per 15 s: 5 -> 4 at t0, 4 -> 3 at t15 (the t0 event is not after 0).
    (
        "scale-down pods per period",
        _rules(
            down={
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}],
            }
        ),
        1,
        50,
        [(0, 5, 1), (15, 4, 1)],
        [4, 3],
    ),
    # scaleUp window 60 s: t0 proposal 4 (= current); t15 proposal 10 -> min(10, 4) = 4 -> 4;
    # t75: t0 and t15 are not after 15 -> min(10) = 10; limit max(4 + 4, 8) = 8 -> 8.
    (
        "scale-up stabilization window",
        _rules(up={"stabilizationWindowSeconds": 60}),
        1,
        50,
        [(0, 4, 4), (15, 4, 10), (75, 4, 10)],
        [4, 4, 8],
    ),
    # scaleUp Pods 2/60 s, scaleDown Pods 3/60 s, windows 0: t0 10 -> 5 limited to 10 - 3 = 7;
    # t15 proposal 20: periodStart = 7 - 0 + 3 = 10 -> 10 + 2 = 12.
    (
        "scale-down events widen the scale-up start",
        _rules(
            up={"policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
            down={
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Pods", "value": 3, "periodSeconds": 60}],
            },
        ),
        1,
        50,
        [(0, 10, 5), (15, 7, 20)],
        [7, 12],
    ),
    # Default scale-up policies over syncs: 2 -> max(2 + 4, 2 x 2) = 6 at t0; t15 the t0 event is
    # not after 0 -> start 6 -> max(10, 12) = 12; t30 -> max(16, 24) = 24, clamped by max 20 -> 20.
    (
        "default scale-up rate over syncs",
        _rules(),
        1,
        20,
        [(0, 2, 100), (15, 6, 100), (30, 12, 100)],
        [6, 12, 20],
    ),
]


@pytest.mark.parametrize(
    ("name", "behavior", "lo", "hi", "syncs", "expected"), SEQUENCES, ids=[s[0] for s in SEQUENCES]
)
def test_sequence(
    name: str,
    behavior: tuple[Rules, Rules] | None,
    lo: int,
    hi: int,
    syncs: list[tuple[float, int, int]],
    expected: list[int],
) -> None:
    hpa = HPAController(lo, hi, behavior)
    got = []
    for t, current, proposal in syncs:
        d = hpa.reconcile(float(t), current, [ext(proposal * 100.0)], pods(current))
        got.append(d.desired)
    assert got == expected


def test_behavior_defaults_follow_the_api() -> None:
    up, down = _rules()
    assert up == Rules(0.0, "Max", (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))
    assert down == Rules(300.0, "Max", (Policy("Percent", 100, 15),))
    assert resolve_behavior(None) is None
