"""The scraper against a reference scrape that derives every series from the run's state.

The scraper keeps a layout per platform generation (series ids, gathers, per-pod constants)
and computes values with whole-array operations over it. The reference here keeps nothing
between scrapes but the counters' running state: at every scrape it walks the pods, nodes,
workloads and classes and writes down each series' labels and value as the module docstring
of :mod:`devopsim.observe.scrape` defines them. A stale layout (pods changed without the
scraper noticing, a per-pod constant kept too long, a gather pointing at the wrong slot)
shows as a series missing, extra or with another value; a series that left without a
staleness marker, or with one too many, shows in the markers.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from itertools import accumulate
from typing import Any

import pytest

from devopsim.api import _load
from devopsim.engine.request import layout as L
from devopsim.engine.runner import Simulation
from devopsim.model.program import ERROR_NAMES
from devopsim.observe import scrape as S
from devopsim.scenario.loader import LoadedScenario, load_scenario
from tests.helpers import EXAMPLES, one_service

_LE = [f"{b:g}" for b in L.PROM_BUCKETS] + ["+Inf"]
_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_GI = 1024**3

Key = tuple[str, str]  # metric, labels as canonical JSON


def _key(metric: str, labels: dict[str, str]) -> Key:
    return metric, json.dumps(labels, sort_keys=True, separators=(",", ":"))


class ReferenceScrape:
    """Every series a scrape at ``t`` should write, the long way, from the simulation's state."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        sc = sim.scenario
        self.endpoints: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        program = sim.program
        for k, (s, e) in enumerate(program.endpoints):
            local = int(program.arrays["ep_local"][k])
            self.endpoints[s].append((local, e, sc.services[s].endpoints[e].method))
        self.pod_last: dict[str, tuple[float, float, float]] = {}  # pod -> cpu, rx, tx at the last scrape
        self.node_state: dict[str, list[float]] = {}  # node -> user, idle, last t, rx, tx
        self.written: set[Key] = set()  # what the last scrape wrote
        self.rows: dict[float, dict[Key, float]] = {}
        self.stale: set[tuple[float, Key]] = set()
        self.metrics: set[str] = set()

    def scrape(self, t: float) -> None:
        sim = self.sim
        plane = sim.plane
        plane.sync_integrals(t)
        stats = plane.class_stats
        rp = plane.replicas
        sc = sim.scenario
        out: dict[Key, float] = {}
        possible: set[Key] = set()

        def put(metric: str, labels: dict[str, str], value: float, visible: bool = True) -> None:
            k = _key(metric, labels)
            possible.add(k)
            self.metrics.add(metric)
            if visible:
                assert k not in out, k
                out[k] = float(value)

        pods = sim.platform.pods()
        nodes = [n for n in sim.platform.cluster.nodes.values() if not getattr(n, "removed", False)]
        node_names = {n.name for n in nodes}
        per_node: dict[str, list[float]] = {n.name: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0] for n in nodes}
        pod_last: dict[str, tuple[float, float, float]] = {}
        for pod in pods:
            base = pod.labels()
            slot = pod.slot
            answered = 0.0
            for local, ep, method in self.endpoints[pod.service]:
                codes = [float(rp.cnt[slot, local, c]) for c in range(L.N_CODES)]
                answered += sum(codes)
                for name, v in zip(L.CODE_NAMES, codes, strict=True):
                    put(
                        "http_requests_total",
                        {**base, "code": name, "endpoint": ep, "method": method},
                        v,
                        v > 0,
                    )
                count = codes[L.CODE_200] + codes[L.CODE_500]
                for le, v in zip(_LE, accumulate(float(x) for x in rp.lat_hist[slot, local]), strict=True):
                    labels = {**base, "endpoint": ep, "le": le, "method": method}
                    put("http_request_duration_seconds_bucket", labels, v, count > 0)
                labels = {**base, "endpoint": ep, "method": method}
                put("http_request_duration_seconds_sum", labels, float(rp.lat_sum[slot, local]), count > 0)
                put("http_request_duration_seconds_count", labels, count, count > 0)
            busy, qlen = float(rp.busy[slot]), float(rp.qlen[slot])
            cpu = float(rp.cpu_area[slot])
            req_mem = sc.services[pod.service].resources.requests.memory
            started = pod.container_started
            uptime = 0.0 if started is None else max(t - started, 0.0)
            leak = sim.platform.behaviour_of(pod).memory_leak
            work = (0.6 * req_mem if req_mem else 64 * 1024**2) + S.MEMORY_PER_REQUEST * busy + leak * uptime
            rx = (answered + busy + qlen) * S.REQUEST_BYTES
            tx = answered * S.RESPONSE_BYTES
            cont = {**base, "container": pod.service}
            put("container_cpu_usage_seconds_total", cont, cpu)
            put("container_memory_working_set_bytes", cont, work)
            put("kube_pod_container_status_restarts_total", cont, pod.restarts)
            put("container_network_receive_bytes_total", cont, rx)
            put("container_network_transmit_bytes_total", cont, tx)
            put("container_fs_usage_bytes", cont, S.FS_USAGE_BYTES)
            put("container_fs_limit_bytes", cont, S.FS_LIMIT_BYTES)
            put("kube_pod_status_ready", {**base, "condition": "true"}, 1.0 if pod.ready else 0.0)
            for phase in _PHASES:
                put("kube_pod_status_phase", {**base, "phase": phase}, 1.0 if pod.k8s_phase == phase else 0.0)
            info = {**base, "created_by_kind": "ReplicaSet", "host_ip": "", "pod_ip": ""}
            put("kube_pod_info", info, 1.0)
            put("devopsim_replica_in_flight", base, busy)
            put("devopsim_replica_queue_length", base, qlen)
            put(
                "devopsim_replica_queue_seconds_total",
                base,
                max(float(rp.occ_area[slot] - rp.busy_area[slot]), 0.0),
            )
            pod_last[pod.name] = (cpu, rx, tx)
            if pod.node in node_names:
                last = self.pod_last.get(pod.name, (0.0, 0.0, 0.0))
                acc = per_node[pod.node]
                for i, (now, before) in enumerate(zip((cpu, rx, tx), last, strict=True)):
                    acc[i] += max(now - before, 0.0)
                acc[3] += work
                acc[4] += pod.cpu_request
                acc[5] += pod.mem_request
                acc[6] += 1
        self.pod_last = pod_last
        for nd in nodes:
            used, nrx, ntx, ws, req_cpu, req_mem, n_pods = per_node[nd.name]
            st = self.node_state.setdefault(nd.name, [0.0, 0.0, float(getattr(nd, "created", 0.0)), 0.0, 0.0])
            cores = nd.cpu if math.isfinite(nd.cpu) else max(S.IMPLICIT_NODE_MIN_CPU, math.ceil(req_cpu))
            st[0] += used
            st[1] += max(0.0, cores * max(t - st[2], 0.0) - used)
            st[2] = t
            st[3] += nrx
            st[4] += ntx
            total = nd.memory if math.isfinite(nd.memory) else max(S.IMPLICIT_NODE_MIN_MEMORY, req_mem, ws)
            base = {
                "instance": nd.name,
                "node": nd.name,
                "zone": nd.zone,
                "region": nd.region,
                "cloud": nd.cloud,
            }
            put("node_cpu_seconds_total", {**base, "cpu": "0", "mode": "idle"}, st[1])
            put("node_cpu_seconds_total", {**base, "cpu": "0", "mode": "user"}, st[0])
            put("node_memory_MemTotal_bytes", base, total)
            put("node_memory_MemAvailable_bytes", base, max(0.0, total - ws))
            put("node_network_receive_bytes_total", {**base, "device": "eth0"}, st[3])
            put("node_network_transmit_bytes_total", {**base, "device": "eth0"}, st[4])
            fs = {**base, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
            put("node_filesystem_avail_bytes", fs, max(0.0, 100 * _GI - S.FS_USAGE_BYTES * n_pods))
            put("node_filesystem_size_bytes", fs, 100 * _GI)
        for w in sim.platform.workloads.values():
            labels = {"namespace": "default", "deployment": w.name}
            put("kube_deployment_spec_replicas", labels, w.desired)
            put("kube_deployment_status_replicas", labels, len(w.live()))
            put("kube_deployment_status_replicas_available", labels, w.ready_count())
        for ci, c in enumerate(sim.program.classes):
            for k, outcome in enumerate(["ok", *ERROR_NAMES]):
                put("devopsim_client_requests_total", {"class": c, "outcome": outcome}, stats.cls_tot[ci, k])
            for le, v in zip(_LE, accumulate(float(x) for x in stats.cls_pb[ci]), strict=True):
                put("devopsim_client_request_duration_seconds_bucket", {"class": c, "le": le}, v)
            put("devopsim_client_request_duration_seconds_sum", {"class": c}, stats.cls_psum[ci])
            put("devopsim_client_request_duration_seconds_count", {"class": c}, stats.cls_tot[ci, 0])
        put("devopsim_requests_in_system", {}, plane.in_system)
        self.stale |= {(t, k) for k in self.written - possible}
        self.written = set(out)
        self.rows[t] = out


def _run(data: dict[str, Any] | LoadedScenario) -> tuple[Simulation, ReferenceScrape]:
    sim = Simulation(_load(data, None))
    ref = ReferenceScrape(sim)
    scrape = sim._scrape

    def both(t: float) -> None:
        ref.scrape(t)
        scrape(t)

    sim._scrape = both  # type: ignore[method-assign]
    sim.run()
    return sim, ref


def _store_rows(sim: Simulation, metrics: set[str]) -> dict[float, dict[Key, float]]:
    st = sim.store
    t, ids, v = st.columns()
    names = st.metric_names
    label_sets = st.label_sets
    rows: dict[float, dict[Key, float]] = defaultdict(dict)
    for tt, sid, val in zip(t.tolist(), ids.tolist(), v.tolist(), strict=True):
        metric = names[st.series_metric[sid]]
        if metric in metrics:
            k = (metric, label_sets[st.series_label_set[sid]])
            assert k not in rows[tt], f"{k} written twice at {tt}"
            rows[tt][k] = val
    return rows


def _check(sim: Simulation, ref: ReferenceScrape) -> None:
    got = _store_rows(sim, ref.metrics)
    assert sorted(got) == sorted(ref.rows)
    for t, want in ref.rows.items():
        have = got[t]
        assert set(have) == set(want), (t, sorted(set(have) ^ set(want))[:5])
        bad = [
            (k, have[k], v)
            for k, v in want.items()
            if not math.isclose(have[k], v, rel_tol=1e-9, abs_tol=1e-6)
        ]
        assert not bad, (t, bad[:5])
    st_t, st_ids = sim.store.stale_markers()
    st = sim.store
    stale = {
        (tt, (st.metric_names[st.series_metric[sid]], st.label_sets[st.series_label_set[sid]]))
        for tt, sid in zip(st_t.tolist(), st_ids.tolist(), strict=True)
    }
    stale = {x for x in stale if x[1][0] in ref.metrics}
    assert stale == ref.stale


def _checkout_short(nodes: bool) -> LoadedScenario:
    """checkout.yaml in 25 minutes: a leaking rollout and its rollback, a pod kill, a scale, a surge."""
    over: dict[str, Any] = {"duration": "25m"}
    over["timeline"] = [
        {"at": "2m", "deploy": {"service": "catalog", "version": "v2", "changes": {"memoryLeak": "10Mi/m"}}},
        {"at": "5m", "traffic": {"rate": "3000/s"}},
        {"at": "8m", "rollback": {"service": "catalog"}},
        {"at": "11m", "fault": {"kind": "pod-kill", "target": "frontend", "count": 2}},
        {"at": "14m", "scale": {"service": "cart", "replicas": 4}},
        {"at": "17m", "traffic": {"rate": "300/s"}},
        {"at": "20m", "scale": {"service": "cart", "replicas": 1}},
    ]
    if nodes:
        pool = {"name": "general", "instanceType": "m6i.xlarge", "count": 3}
        region = {"zones": ["zone-a", "zone-b"], "nodePools": [pool]}
        over["platform"] = {"clouds": {"aws": {"regions": {"us-east-1": region}}}}
    return load_scenario(EXAMPLES / "checkout.yaml", overrides=over)


@pytest.mark.parametrize("nodes", [False, True], ids=["implicit-node", "three-nodes"])
def test_checkout_scrapes_match_the_reference(nodes: bool) -> None:
    sim, ref = _run(_checkout_short(nodes))
    events = {e["kind"] for e in sim.log.events}
    assert {"deploy", "rollback", "pod.killed", "hpa.scale"} <= events
    assert len(ref.rows) == 25 * 4 + 1
    assert ref.stale  # pods came and went
    _check(sim, ref)


def test_request_plane_scrapes_match_the_reference() -> None:
    data = one_service(
        "40/s",
        "exp(20ms)",
        replicas=3,
        concurrency=2,
        duration="12m",
        scrape="15s",
        timeline=[
            {"at": "2m", "scale": {"service": "api", "replicas": 5}},
            {"at": "5m", "fault": {"kind": "pod-kill", "target": "api", "count": 2}},
            {"at": "8m", "scale": {"service": "api", "replicas": 2}},
        ],
    )
    sim, ref = _run(data)
    assert ref.stale
    _check(sim, ref)
