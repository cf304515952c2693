"""The HPA's reading of metrics-server samples aligned with its pods, against the general path.

The autoscaling loop hands the replica calculation its pods' samples as one value per pod
(:class:`AlignedSamples`), which it reads in one pass without a :class:`PodSample` per pod.
The general path (a plain ``{pod: PodSample}`` mapping, the one the hand-computed tables of
``test_hpa_table`` check) must give the same proposal, or the same error, for any pods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devopsim import simulate
from devopsim.control import hpa_metrics
from devopsim.control.autoscaling import AutoscalingLoop
from devopsim.control.hpa import HPAController
from devopsim.control.hpa_metrics import (
    AlignedSamples,
    MetricReading,
    MetricUnavailable,
    PodInfo,
    PodSample,
    Tolerances,
    replicas_for_metric,
)
from devopsim.control.metrics_server import MetricsServer
from devopsim.observe.scrape import MEMORY_PER_REQUEST
from tests.control.test_hpa_loop import _scenario
from tests.observe.test_scrape import _checkout_short

NOW = 1000.0

# Mostly pods that count (running, ready, started long ago, with a sample), so that most
# examples take the aligned path; the rest cover each way out of it.
times = st.sampled_from([0.0, 0.0, 0.0, 0.0, None, 500.0, 690.0, 700.0, 701.0, 960.0, 985.0, 990.0])
pod_infos = st.builds(
    PodInfo,
    name=st.just(""),
    phase=st.sampled_from(["Running"] * 8 + ["Pending", "Failed"]),
    ready=st.sampled_from([True] * 5 + [False]),
    deleting=st.sampled_from([False] * 8 + [True]),
    start=times,
    ready_since=times,
    request=st.sampled_from([0.5] * 6 + [0.25, 1.0, 0.0, None]),
)
healthy = st.builds(
    PodInfo,
    name=st.just(""),
    ready=st.sampled_from([True, True, True, False]),
    start=st.sampled_from([0.0, 500.0, 701.0]),
    ready_since=st.sampled_from([0.0, 20.0, 980.0]),
    request=st.sampled_from([0.5, 0.25, 1.0]),
)
# Usages near the targets' tolerance bands (0.35 cores is 70 % of 500m; 0.3 the AverageValue).
near = st.sampled_from([0.3, 0.33, 0.3305, 0.331, 0.27, 0.2695, 0.35, 0.385, 0.3851, 0.315, 0.3149])
values = st.one_of(
    st.floats(0.0, 3.0),
    st.floats(0.0, 3.0),
    st.sampled_from([0.35, 0.1749999, 0.3500001, 0.0]),
    st.none(),
)


def _proposal(reading: MetricReading, pods: list[PodInfo], current: int, tol: Tolerances, now: float) -> Any:
    try:
        return replicas_for_metric(reading, pods, current, now, tol)
    except MetricUnavailable as e:
        return f"error: {e}"


@settings(max_examples=600, deadline=None, derandomize=True)
@example(  # 661m over 2 pods: 330m each (integer division), exactly 10 % over the target
    pods=[(PodInfo(""), 0.3305), (PodInfo(""), 0.33)],
    kind=("Resource", "cpu", "AverageValue", 0.3),
    current=2,
    tolerance=0.1,
    window=15.0,
)
@example(  # 1399m x 100 // 2000m = 69 % of a 70 % target: within the band
    pods=[(PodInfo("", request=1.0), 0.7), (PodInfo("", request=1.0), 0.699)],
    kind=("Resource", "cpu", "Utilization", 70.0),
    current=2,
    tolerance=0.0,
    window=15.0,
)
@given(
    pods=st.one_of(
        st.lists(st.tuples(healthy, st.one_of(st.floats(0.0, 3.0), near)), min_size=1, max_size=6),
        st.lists(st.tuples(st.one_of(healthy, pod_infos), values), max_size=6),
    ),
    kind=st.sampled_from(
        [
            ("Resource", "cpu", "Utilization", 70.0),
            ("Resource", "cpu", "AverageValue", 0.3),
            ("Resource", "memory", "Utilization", 50.0),
            ("ContainerResource", "cpu", "Utilization", 60.0),
            ("Pods", "rps", "AverageValue", 2.0),
        ]
    ),
    current=st.integers(1, 10),
    tolerance=st.sampled_from([0.1, 0.0, 0.5]),
    window=st.sampled_from([15.0, 0.0, 30.0]),
)
def test_aligned_samples_give_what_the_general_path_gives(
    pods: list[tuple[PodInfo, float | None]],
    kind: tuple[Any, str, Any, float],
    current: int,
    tolerance: float,
    window: float,
) -> None:
    infos = [PodInfo(**{**p.__dict__, "name": f"p{i}"}) for i, (p, _) in enumerate(pods)]
    mtype, name, target_type, target = kind
    tol = Tolerances(tolerance, tolerance)
    memo: dict[Any, Any] = {}  # what the pods alone tell, kept from one reading to the next
    # Readings at later times, with other values: pods leave their initialization period.
    for now, scale in ((NOW, 1.0), (NOW + 250.0, 1.1), (NOW + 600.0, 0.5)):
        vals = [None if v is None else v * scale for _, v in pods]
        ts = now - 5.0
        plain = {p.name: PodSample(v, ts, window) for p, v in zip(infos, vals, strict=True) if v is not None}
        aligned = AlignedSamples(infos, vals, ts, window, memo)
        assert dict(aligned) == plain
        general = _proposal(
            MetricReading(mtype, name, target_type, target, samples=plain), infos, current, tol, now
        )
        fast = _proposal(
            MetricReading(mtype, name, target_type, target, samples=aligned), infos, current, tol, now
        )
        assert fast == general


def test_aligned_samples_need_one_value_per_pod() -> None:
    with pytest.raises(ValueError, match="one value per pod"):
        AlignedSamples([PodInfo("a")], [], 0.0, 15.0)


def _runs(scenario: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    proposals: list[int | None] = []
    proposal = AutoscalingLoop._proposal

    def counted(self: AutoscalingLoop, *a: Any) -> int | None:
        got = proposal(self, *a)
        proposals.append(got)
        return got

    with monkeypatch.context() as m:
        m.setattr(AutoscalingLoop, "_proposal", counted)
        fast = simulate(scenario())
    assert any(p is not None for p in proposals)  # the loop's own fast path was taken
    with monkeypatch.context() as m:
        m.setattr(hpa_metrics, "_aligned_replicas", lambda *a, **k: None)  # always the general path
        m.setattr(AutoscalingLoop, "_proposal", lambda *a, **k: None)
        general = simulate(scenario())
    return fast, general


@pytest.mark.parametrize("min_replicas", [0, 1, 3])
def test_reads_metrics_where_reconcile_reads_them(min_replicas: int) -> None:
    # horizontal.go: scaling disabled at 0 replicas (unless minReplicas is 0), and outside
    # [minReplicas, maxReplicas] the count is corrected without reading metrics.
    failing = [MetricReading("Resource", "cpu", "Utilization", 50.0, error="metrics API down")]
    for current in range(0, 8):
        ctl = HPAController(min_replicas, 5)
        d = ctl.reconcile(NOW, current, failing, [PodInfo("p")])
        assert ctl.reads_metrics(current) == d.reason.startswith("FailedGetMetrics"), (current, d)


@pytest.mark.parametrize("plane", ["flow", "request"])
def test_hpa_runs_decide_as_the_general_path(plane: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, general = _runs(lambda: _scenario(plane), monkeypatch)
    assert fast.events == general.events
    assert fast.summary == general.summary


def test_checkout_hpas_decide_as_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, general = _runs(lambda: _checkout_short(nodes=True), monkeypatch)
    scales = [e for e in fast.events if e["kind"] == "hpa.scale"]
    assert len(scales) > 5
    assert fast.events == general.events
    assert fast.summary["autoscalers"] == general.summary["autoscalers"]


def test_metrics_server_aligned_reading_is_its_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    # At every sync of checkout's HPAs (pods starting, ready, terminating), the aligned reading
    # (what the loop's own path reads, and what AlignedSamples holds) is exactly the samples
    # metrics-server serves for those pods.
    aligned_values = MetricsServer.aligned_values
    checked = []

    def both(self: MetricsServer, resource: str, service: str, pods: Any) -> Any:
        got = aligned_values(self, resource, service, pods)
        names = {p.name for p in pods}
        want = {k: v for k, v in self.samples(resource, service).items() if k in names}
        assert got is not None
        assert dict(AlignedSamples(pods, *got)) == want
        checked.append(len(want))
        return got

    monkeypatch.setattr(MetricsServer, "aligned_values", both)
    simulate(_checkout_short(nodes=False))
    assert len(checked) >= 2 * (25 * 4 - 1) and sum(checked) > 0  # syncs at 15 s ... 1485 s


# --- Quantity.MilliValue -------------------------------------------------------------------

# Values whose milli-units land on, or within float noise of, a whole number (where rounding to
# 6 decimals decides), and values anywhere.
_near_whole = st.builds(
    lambda k, eps: k / 1000.0 + eps,
    st.integers(-(10**12), 10**12),
    st.sampled_from([0.0, 1e-13, -1e-13, 4e-10, -4e-10, 5e-10, -5e-10, 6e-10, -6e-10, 1e-9, -1e-9]),
)


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(x=st.one_of(_near_whole, st.floats(-1e9, 1e9), st.floats(0.0, 3.0), st.floats(-1e-6, 1e-6)))
def test_milli_is_quantity_milli_value(x: float) -> None:
    # MilliValue of a float as the HPA reads it: ceil(round(x * 1000, 6)) (the float noise of the
    # product removed at 6 decimals, then rounded up); the fast path skips the rounding only
    # where it cannot change the result.
    assert hpa_metrics._milli(x) == math.ceil(round(x * 1000.0, 6))


def test_milli_examples() -> None:
    # 0.1 * 1000 is 100.00000000000001 in floats: the noise is removed, not rounded up to 101.
    assert hpa_metrics._milli(0.1) == 100
    assert hpa_metrics._milli(0.35) == 350  # 350.00000000000006
    assert hpa_metrics._milli(0.0001) == 1  # 0.1 milli-units round up
    assert hpa_metrics._milli(0.3500001) == 351
    assert hpa_metrics._milli(-0.0016) == -1
    assert hpa_metrics._milli(0.0) == 0


# --- metrics-server's views --------------------------------------------------------------------


def test_metrics_server_views_hold_the_reading_when_read_later(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cpu and memory views (and the working sets) are made when first read. Read only at
    # the next reading, after the plane moved on 15 s, they must hold what was there at the
    # reading's time: the CPU rate over the interval, and 64 MiB (no memory request: 60 % of
    # it otherwise) + 256 KiB per busy worker.
    collect = MetricsServer.collect
    want: list[tuple[dict[str, float], dict[str, float]]] = []
    checked = [0]

    def eager_then_lazy(self: MetricsServer, t: float) -> None:
        if want:  # the last reading's views, first read now
            cpu, mem = want[-1]
            assert {k: v.value for k, v in self.cpu.items()} == cpu
            assert {k: v.value for k, v in self.memory.items()} == mem
            checked[0] += len(cpu)
        collect(self, t)
        idx = self._index
        assert idx is not None
        rp = self._sim.plane.replicas
        rows = idx.every if self._has is idx.all_seen else np.flatnonzero(self._has)
        mem_now = idx.base + MEMORY_PER_REQUEST * np.asarray(rp.busy[idx.slots], dtype=np.float64)
        want.append(
            (
                {idx.names[i]: float(self._cpu[i]) for i in rows.tolist()},
                {idx.names[i]: float(mem_now[i]) for i in rows.tolist()},
            )
        )

    monkeypatch.setattr(MetricsServer, "collect", eager_then_lazy)
    simulate(_checkout_short(nodes=False))
    assert len(want) == 25 * 4 and checked[0] > 100
