"""Scrape the twin as Prometheus would scrape the real thing.

Series carry the names and labels of the exporters users already have:

* the HTTP server instrumentation of every pod: ``http_requests_total`` and the
  ``http_request_duration_seconds`` histogram (Prometheus' default buckets),
  labelled ``method``, ``endpoint``, ``code`` and the pod labels;
* cAdvisor: ``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``;
* kube-state-metrics: ``kube_deployment_spec_replicas``,
  ``kube_deployment_status_replicas``, ``kube_deployment_status_replicas_available``,
  ``kube_pod_status_ready``, ``kube_pod_container_status_restarts_total``;
* twin-only series, prefixed ``devopsim_``: queue length and requests in flight
  per replica, the time integral of the queue length
  (``devopsim_replica_queue_seconds_total``: its ``rate()`` is the mean queue
  length), and what clients saw per request class.

Pods carry ``service``, ``version``, ``role``, ``pod``, ``node``, ``zone``,
``region``, ``cloud`` (and ``namespace``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devopsim.engine.request import layout as L
from devopsim.model.platform import Platform, Pod
from devopsim.model.program import ERROR_NAMES, Program
from devopsim.observe.store import MetricStore
from devopsim.scenario.schema import Scenario

__all__ = ["MEMORY_PER_REQUEST", "Scraper"]

MEMORY_PER_REQUEST = 256 * 1024  # bytes a request in flight holds (working set model)
_DEFAULT_BASE_MEMORY = 64 * 1024**2

_LE = [f"{b:g}" for b in L.PROM_BUCKETS] + ["+Inf"]


class _Table:
    """Flat gather indices for every live pod's series."""

    def __init__(self) -> None:
        self.rq: list[tuple[int, int, int, int]] = []  # slot, local, code, id
        self.hb: list[tuple[int, int, int, int]] = []  # slot, local, bucket, id
        self.hs: list[tuple[int, int, int, int]] = []  # slot, local, sum id, count id
        self.pod: list[tuple[int, ...]] = []  # slot, svc, ids x7
        self.freeze()

    def freeze(self) -> None:
        self.a_rq = np.array(self.rq, dtype=np.int64).reshape(-1, 4)
        self.a_hb = np.array(self.hb, dtype=np.int64).reshape(-1, 4)
        self.a_hs = np.array(self.hs, dtype=np.int64).reshape(-1, 4)
        self.a_pod = np.array(self.pod, dtype=np.int64).reshape(-1, 9)


class Scraper:
    """Reads the plane and the platform at each scrape and appends samples to the store."""

    def __init__(
        self,
        store: MetricStore,
        program: Program,
        platform: Platform,
        plane: Any,
        scenario: Scenario,
    ) -> None:
        self.store = store
        self.program = program
        self.platform = platform
        self.plane = plane
        self._key: tuple[tuple[int, int], ...] = ()
        self._table = _Table()
        self._pod_cache: dict[tuple[int, int, str], list[tuple[Any, ...]]] = {}
        self._eps: list[list[tuple[int, str, str]]] = [[] for _ in program.services]
        for k, (s, e) in enumerate(program.endpoints):
            si = program.services.index(s)
            method = scenario.services[s].endpoints[e].method
            self._eps[si].append((int(program.arrays["ep_local"][k]), e, method))
        self._base_mem = []
        for s in program.services:
            req = scenario.services[s].resources.requests.memory
            self._base_mem.append(0.6 * req if req else _DEFAULT_BASE_MEMORY)
        st = store
        self._deploy_ids = [
            (
                st.series("kube_deployment_spec_replicas", {"namespace": "default", "deployment": s}),
                st.series("kube_deployment_status_replicas", {"namespace": "default", "deployment": s}),
                st.series(
                    "kube_deployment_status_replicas_available", {"namespace": "default", "deployment": s}
                ),
            )
            for s in program.services
        ]
        outcomes = ["ok", *ERROR_NAMES]
        self._cls_tot_ids = np.array(
            [
                [st.series("devopsim_client_requests_total", {"class": c, "outcome": o}) for o in outcomes]
                for c in program.classes
            ],
            dtype=np.int64,
        )
        self._cls_b_ids = np.array(
            [
                [
                    st.series("devopsim_client_request_duration_seconds_bucket", {"class": c, "le": le})
                    for le in _LE
                ]
                for c in program.classes
            ],
            dtype=np.int64,
        )
        self._cls_sum_ids = np.array(
            [
                st.series("devopsim_client_request_duration_seconds_sum", {"class": c})
                for c in program.classes
            ],
            dtype=np.int64,
        )
        self._cls_cnt_ids = np.array(
            [
                st.series("devopsim_client_request_duration_seconds_count", {"class": c})
                for c in program.classes
            ],
            dtype=np.int64,
        )
        self._in_system_id = st.series("devopsim_requests_in_system", {})

    def _register(self, pod: Pod, svc: int) -> list[tuple[Any, ...]]:
        gen = self.plane.slot_generation(pod.slot)
        key = (pod.slot, gen, pod.name)
        cached = self._pod_cache.get(key)
        if cached is not None:
            return cached
        st = self.store
        base = pod.labels()
        rows: list[tuple[Any, ...]] = []
        for local, ep, method in self._eps[svc]:
            for ci, code in enumerate(L.CODE_NAMES):
                sid = st.series(
                    "http_requests_total", {**base, "endpoint": ep, "method": method, "code": code}
                )
                rows.append(("rq", pod.slot, local, ci, sid))
            for bi, le in enumerate(_LE):
                sid = st.series(
                    "http_request_duration_seconds_bucket",
                    {**base, "endpoint": ep, "method": method, "le": le},
                )
                rows.append(("hb", pod.slot, local, bi, sid))
            rows.append(
                (
                    "hs",
                    pod.slot,
                    local,
                    st.series(
                        "http_request_duration_seconds_sum", {**base, "endpoint": ep, "method": method}
                    ),
                    st.series(
                        "http_request_duration_seconds_count", {**base, "endpoint": ep, "method": method}
                    ),
                )
            )
        cont = {**base, "container": pod.service}
        rows.append(
            (
                "pod",
                pod.slot,
                svc,
                st.series("container_cpu_usage_seconds_total", cont),
                st.series("container_memory_working_set_bytes", cont),
                st.series("kube_pod_container_status_restarts_total", cont),
                st.series("kube_pod_status_ready", {**base, "condition": "true"}),
                st.series("devopsim_replica_in_flight", base),
                st.series("devopsim_replica_queue_length", base),
                st.series("devopsim_replica_queue_seconds_total", base),
            )
        )
        self._pod_cache[key] = rows
        return rows

    def _rebuild(self, pods: list[Pod]) -> None:
        table = _Table()
        for pod in pods:
            svc = self.program.services.index(pod.service)
            for row in self._register(pod, svc):
                getattr(table, str(row[0])).append(tuple(row[1:]))
        table.freeze()
        self._table = table

    def scrape(self, t: float) -> None:
        """Append one scrape at simulated time ``t``."""
        pods = self.platform.pods()
        key = tuple((p.slot, self.plane.slot_generation(p.slot)) for p in pods)
        if key != self._key:
            self._rebuild(pods)
            self._key = key
        rp = self.plane.replicas
        self.plane.service_totals(t)  # brings CPU integrals up to t
        tb = self._table
        ids: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        if tb.a_rq.size:
            v = rp.cnt[tb.a_rq[:, 0], tb.a_rq[:, 1], tb.a_rq[:, 2]]
            keep = v > 0
            ids.append(tb.a_rq[keep, 3])
            vals.append(v[keep].astype(np.float64))
        if tb.a_hs.size:
            count = (
                rp.cnt[tb.a_hs[:, 0], tb.a_hs[:, 1], L.CODE_200]
                + rp.cnt[tb.a_hs[:, 0], tb.a_hs[:, 1], L.CODE_500]
            )
            keep = count > 0
            ids += [tb.a_hs[keep, 2], tb.a_hs[keep, 3]]
            vals += [rp.lat_sum[tb.a_hs[keep, 0], tb.a_hs[keep, 1]], count[keep].astype(np.float64)]
            cum = np.cumsum(rp.lat_hist, axis=2)
            hb = tb.a_hb
            hcount = rp.cnt[hb[:, 0], hb[:, 1], L.CODE_200] + rp.cnt[hb[:, 0], hb[:, 1], L.CODE_500]
            keep = hcount > 0
            ids.append(hb[keep, 3])
            vals.append(cum[hb[keep, 0], hb[keep, 1], hb[keep, 2]].astype(np.float64))
        if tb.a_pod.size:
            slots = tb.a_pod[:, 0]
            svcs = tb.a_pod[:, 1]
            ready = np.array([1.0 if p.ready else 0.0 for p in pods])
            busy = rp.busy[slots].astype(np.float64)
            mem = np.asarray(self._base_mem)[svcs] + MEMORY_PER_REQUEST * busy
            ids += [tb.a_pod[:, k] for k in range(2, 9)]
            vals += [
                rp.cpu_area[slots],
                mem,
                np.zeros(slots.size),
                ready,
                busy,
                rp.qlen[slots].astype(np.float64),
                np.maximum(rp.occ_area[slots] - rp.busy_area[slots], 0.0),
            ]
        dep_ids, dep_vals = [], []
        for w, (spec_id, exist_id, avail_id) in zip(
            self.platform.workloads.values(), self._deploy_ids, strict=True
        ):
            dep_ids += [spec_id, exist_id, avail_id]
            dep_vals += [w.desired, len(w.live()), w.ready_count()]
        ids.append(np.array(dep_ids, dtype=np.int64))
        vals.append(np.array(dep_vals, dtype=np.float64))
        s = self.plane.stats
        ids += [
            self._cls_tot_ids.ravel(),
            self._cls_b_ids.ravel(),
            self._cls_sum_ids,
            self._cls_cnt_ids,
            np.array([self._in_system_id]),
        ]
        vals += [
            s.cls_tot.ravel().astype(np.float64),
            np.cumsum(s.cls_pb, axis=1).ravel().astype(np.float64),
            s.cls_psum,
            s.cls_tot[:, 0].astype(np.float64),
            np.array([float(self.plane.in_system)]),
        ]
        self.store.append(t, np.concatenate(ids), np.concatenate(vals))
