"""The compiled scrape (``ScrapePlan``) against the NumPy path it replaced, to the bit.

``Scraper.kernel = False`` keeps the NumPy path (``Scraper._values_numpy``) as the
reference. A whole run is played with each, and the stores must hold the same series
(ids, metric names, label sets) and the same samples (times and values compared as bit
patterns, so a NaN or a -0.0 counts), with the same staleness markers, and the runs the
same events. The scenarios make the layout change in every way it can: pods added
(scale-up, surge), deleted (pod-kill, scale-down), a container restarted in place
(its counters start again from 0 while its series stay), a leaking version rolled out
and back (per-pod memory leak), nodes lost to a zone outage (pods evicted to the other
zone) and the implicit node of a scenario without ``platform:``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from devopsim.api import _load
from devopsim.engine.flow.plane import FlowPlane
from devopsim.engine.runner import Simulation
from devopsim.observe import scrape as S
from devopsim.scenario.loader import load_scenario
from tests.helpers import EXAMPLES


def _scenario(nodes: bool) -> Any:
    return load_scenario(EXAMPLES / "checkout.yaml", overrides=_overrides(nodes, "20m"))


def _overrides(nodes: bool, duration: str) -> dict[str, Any]:
    over: dict[str, Any] = {"duration": duration}
    over["timeline"] = [
        {"at": "2m", "deploy": {"service": "catalog", "version": "v2", "changes": {"memoryLeak": "10Mi/m"}}},
        {"at": "4m", "traffic": {"rate": "3000/s"}},
        {"at": "5m", "fault": {"kind": "container-kill", "target": "cart"}},
        {"at": "7m", "rollback": {"service": "catalog"}},
        {"at": "9m", "fault": {"kind": "pod-kill", "target": "frontend", "count": 2}},
        {"at": "11m", "scale": {"service": "cart", "replicas": 4}},
        {"at": "14m", "traffic": {"rate": "300/s"}},
        {"at": "16m", "scale": {"service": "cart", "replicas": 1}},
    ]
    if nodes:
        pool = {"name": "general", "instanceType": "m6i.xlarge", "count": 3}
        region = {"zones": ["zone-a", "zone-b"], "nodePools": [pool]}
        over["platform"] = {"clouds": {"aws": {"regions": {"us-east-1": region}}}}
        over["timeline"].append(
            {"at": "12m", "fault": {"kind": "zone-outage", "target": "zone-a", "duration": "4m"}}
        )
    return over


def _run(loaded: Any, kernel: bool, monkeypatch: pytest.MonkeyPatch, odd: bool = False) -> Simulation:
    monkeypatch.setattr(S.Scraper, "kernel", kernel)
    sim = Simulation(_load(loaded, None))
    if odd:
        _odd_values(sim)
    sim.run()
    return sim


def _odd_values(sim: Simulation) -> None:
    """Scrape with odd values in the plane's per-replica arrays (put back after each scrape, so
    the run is the same): a -0.0 queue area (``max(-0.0, 0)`` is +0.0 in NumPy), a negative
    queue area, NaN and -0.0 in the CPU integral, requests in flight and queue length."""
    scrape = sim._scrape
    odd = [
        ("occ_area", 0, -0.0),
        ("busy_area", 0, 0.0),
        ("busy_area", 1, 1e9),
        ("cpu_area", 2, math.nan),
        ("cpu_area", 3, -0.0),
        ("busy", 4, -0.0),
        ("qlen", 5, math.nan),
    ]

    def scrape_odd(t: float) -> None:
        rp = sim.plane.replicas
        alive = np.flatnonzero(rp.alive > 0)
        kept = []
        for name, k, value in odd:
            arr = getattr(rp, name)
            if k < alive.size and int(t) % 60 < 30:
                kept.append((arr, int(alive[k]), float(arr[alive[k]])))
                arr[alive[k]] = value
        scrape(t)
        for arr, slot, value in reversed(kept):
            arr[slot] = value

    sim._scrape = scrape_odd  # type: ignore[method-assign]


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


@pytest.mark.parametrize("nodes", [False, True], ids=["implicit-node", "three-nodes"])
def test_compiled_scrape_writes_what_the_numpy_path_writes(
    nodes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _scenario(nodes)
    ref = _run(loaded, False, monkeypatch)
    got = _run(loaded, True, monkeypatch)
    assert got.scraper is not None and got.scraper._fast  # the compiled path ran
    assert ref.scraper is not None and not ref.scraper._fast
    kinds = {e["kind"] for e in ref.log.events}
    assert {"deploy", "rollback", "pod.killed", "hpa.scale"} <= kinds
    assert ref.platform.counts["restarts"] >= 1  # the container-kill: a counter reset in place
    if nodes:
        assert {"node.failed", "node.recovered", "pod.pending"} <= kinds
    a, b = ref.store, got.store
    assert list(a.metric_names) == list(b.metric_names)
    assert list(a.series_metric) == list(b.series_metric)
    assert a.label_sets == b.label_sets
    assert list(a.series_label_set) == list(b.series_label_set)
    (t1, i1, v1), (t2, i2, v2) = a.columns(), b.columns()
    assert t1.size > 1000
    assert np.array_equal(_bits(t1), _bits(t2))
    assert np.array_equal(i1, i2)
    assert np.array_equal(_bits(v1), _bits(v2))
    (s1, j1), (s2, j2) = a.stale_markers(), b.stale_markers()
    assert s1.size  # pods went
    assert np.array_equal(_bits(s1), _bits(s2)) and np.array_equal(j1, j2)
    assert ref.log.events == got.log.events


@pytest.mark.parametrize("kernel", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("nodes", [False, True], ids=["implicit-node", "three-nodes"])
def test_light_layout_change_writes_what_a_whole_rebuild_writes(
    nodes: bool, kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layout change that keeps the pods (a pod turning ready, a container restarted in
    place, a leaking version's pods, nodes failing) reads only the pods' state again; the
    store and events are those of building every layout whole (``Scraper.light = False``),
    counter children hidden again included."""
    loaded = _scenario(nodes)
    rebuilds = {"light": 0, "whole": 0}
    full = S.Scraper._rebuild

    def counted(self: S.Scraper, pods: Any) -> None:
        before = self._layout_sig
        full(self, pods)
        if self._light_ok and before is not None and before == self._layout_sig:
            rebuilds["light"] += 1
        else:
            rebuilds["whole"] += 1
        rp = self.plane.replicas
        zero.append(max((pod.slot for pod in pods), key=lambda k: float(rp.cnt[k].sum())) if pods else -1)

    def sync(self: Any, t: float) -> None:
        # the busiest container's counters back at 0 at each layout change (as a restart in
        # place leaves them): its children must be hidden again, as a whole rebuild hides them
        sync_integrals(self, t)
        if zero and zero[-1] >= 0:
            for arr in (self.replicas.cnt, self.replicas.lat_hist, self.replicas.lat_sum):
                arr[zero[-1]] = 0
        zero.clear()

    zero: list[int] = []
    sync_integrals = FlowPlane.sync_integrals
    monkeypatch.setattr(FlowPlane, "sync_integrals", sync)
    monkeypatch.setattr(S.Scraper, "_rebuild", counted)
    monkeypatch.setattr(S.Scraper, "light", False)
    ref = _run(loaded, kernel, monkeypatch)
    assert rebuilds["light"] == 0
    monkeypatch.setattr(S.Scraper, "light", True)
    got = _run(loaded, kernel, monkeypatch)
    assert rebuilds["light"] >= 3  # pods turning ready, the restart in place
    a, b = ref.store, got.store
    assert list(a.series_metric) == list(b.series_metric) and a.label_sets == b.label_sets
    (t1, i1, v1), (t2, i2, v2) = a.columns(), b.columns()
    assert np.array_equal(_bits(t1), _bits(t2)) and np.array_equal(i1, i2)
    assert np.array_equal(_bits(v1), _bits(v2))
    (s1, j1), (s2, j2) = a.stale_markers(), b.stale_markers()
    assert np.array_equal(_bits(s1), _bits(s2)) and np.array_equal(j1, j2)
    assert [(x.tobytes(), y.tobytes(), z.tobytes()) for x, y, z in a.tables()] == [
        (x.tobytes(), y.tobytes(), z.tobytes()) for x, y, z in b.tables()
    ]
    assert ref.log.events == got.log.events


@pytest.mark.parametrize("nodes", [False, True], ids=["implicit-node", "three-nodes"])
def test_compiled_scrape_takes_numpys_maximum_and_nan_as_they_come(
    nodes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_scenario(EXAMPLES / "checkout.yaml", overrides=_overrides(nodes, "8m"))
    ref = _run(loaded, False, monkeypatch, odd=True)
    got = _run(loaded, True, monkeypatch, odd=True)
    (t1, i1, v1), (t2, i2, v2) = ref.store.columns(), got.store.columns()
    assert np.isnan(v1).any() and (_bits(v1) == _bits(np.array([-0.0]))[0]).any()  # odd values stored
    assert np.array_equal(_bits(t1), _bits(t2)) and np.array_equal(i1, i2)
    assert np.array_equal(_bits(v1), _bits(v2))


def test_reduce_sum_is_numpys_add_reduce_to_the_bit() -> None:
    """The plan's sums over pods repeat NumPy's pairwise summation: lengths on both sides of
    the 8-wide unrolling and of the 128 block (split in two), values of mixed magnitude and
    sign (so another order of additions shows in the last bits), zeros and -0.0."""
    from devopsim.observe._scrape import reduce_sum

    rng = np.random.default_rng(7)
    differ = 0
    for n in [*range(0, 40), 127, 128, 129, 255, 256, 300, 1000, 4099]:
        for _ in range(20):
            a = rng.standard_normal(n) * np.exp(rng.uniform(-30, 30, n))
            if n and rng.random() < 0.3:
                a[rng.random(n) < 0.5] = 0.0
            if n and rng.random() < 0.2:
                a[0] = -0.0
            want = np.add.reduce(a)
            assert _bits(np.array([reduce_sum(a)]))[0] == _bits(np.array([want]))[0], (n, a)
            differ += _bits(np.array([float(sum(a.tolist()))]))[0] != _bits(np.array([want]))[0]
    assert differ > 100  # a left-to-right sum would not pass: the order is tested


def test_plan_reads_the_arrays_it_is_given_each_time() -> None:
    """The plan keeps views of the arrays of its last call: new arrays of the same shapes (a
    plane that replaced them) are read, not the ones it held; the same arrays changed in
    place are read as they are now."""
    from types import SimpleNamespace

    from devopsim.observe._scrape import ScrapePlan

    rng = np.random.default_rng(3)
    slots = np.array([2, 0, 3], dtype=np.int64)

    def replicas() -> SimpleNamespace:
        f = rng.uniform(1.0, 9.0, (5, 2, 4))
        return SimpleNamespace(
            cnt=f,
            lat_hist=rng.uniform(0.0, 1.0, (5, 2, 3)),
            lat_sum=rng.uniform(0.0, 1.0, (5, 2)),
            **{k: rng.uniform(0.0, 5.0, 5) for k in ("cpu_area", "busy", "qlen", "occ_area", "busy_area")},
        )

    def plan_for() -> tuple[ScrapePlan, np.ndarray]:
        plan = ScrapePlan()
        gather = np.arange(12, dtype=np.int64)
        plan.set_counters(gather, 12, np.arange(6, dtype=np.int64), 3, 4, 0, 1, np.empty(200))
        prev, delta = np.zeros((4, 3)), np.zeros((4, 3))
        base, leak, start = np.full(3, 5.0), np.zeros(3), np.full(3, np.inf)
        plan.set_pods(slots, base, leak, start, False, prev.ravel(), delta.ravel(), 2.0, 3.0, 4.0)
        plan.set_workloads([SimpleNamespace(desired=2)], np.array([2.0, 3.0, 1.0]))
        return plan, np.empty(12 + 7 * 3 + 3 + 1)

    def one_row(plan: ScrapePlan, out: np.ndarray, rp: SimpleNamespace) -> np.ndarray:
        answered = rp.cnt.reshape(5, -1)[slots].sum(axis=1)
        assert plan.row(rp, answered, 10.0, out) == 0
        empty = np.empty((0, 0))
        assert plan.tail(empty, empty, np.empty(0), 7.0) == out.size
        return out.copy()

    held, out = plan_for()
    first, second = replicas(), replicas()
    one_row(held, out, first)
    fresh, out2 = plan_for()
    assert np.array_equal(one_row(held, out, second), one_row(fresh, out2, second))
    second.cnt *= 2.0  # the same array, changed in place
    second.busy[:] = 1.5
    fresh, out2 = plan_for()
    assert np.array_equal(one_row(held, out, second), one_row(fresh, out2, second))
