"""Scrape the twin as Prometheus would scrape the real thing.

Series carry the names and labels of the exporters users already have:

* the HTTP server instrumentation of every pod: ``http_requests_total`` and the
  ``http_request_duration_seconds`` histogram (Prometheus' default buckets),
  labelled ``method``, ``endpoint``, ``code`` and the pod labels; like a client
  library, a labelled child appears once it was first incremented;
* cAdvisor: ``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``,
  ``container_network_receive_bytes_total`` and ``container_network_transmit_bytes_total``
  (requests received times :data:`REQUEST_BYTES`, responses sent times
  :data:`RESPONSE_BYTES`), ``container_fs_usage_bytes`` and ``container_fs_limit_bytes``
  (:data:`FS_USAGE_BYTES` of a :data:`FS_LIMIT_BYTES` volume);
* kube-state-metrics: ``kube_deployment_spec_replicas``,
  ``kube_deployment_status_replicas``, ``kube_deployment_status_replicas_available``,
  ``kube_pod_status_ready``, ``kube_pod_status_phase{phase}``, ``kube_pod_info``
  (with ``node``), ``kube_pod_container_status_restarts_total``;
* node_exporter, one target per node: ``node_cpu_seconds_total{cpu, mode}`` (modes
  ``user``, the CPU its pods used, and ``idle``; the node's cores as ``cpu="0".."n-1"``
  summed into one ``cpu=""``-less series per mode), ``node_memory_MemTotal_bytes``,
  ``node_memory_MemAvailable_bytes``, ``node_network_receive_bytes_total``,
  ``node_network_transmit_bytes_total`` (``device="eth0"``), ``node_filesystem_avail_bytes``
  and ``node_filesystem_size_bytes`` (``mountpoint="/"``). Nodes come from the platform's
  cluster; the implicit node of a scenario without ``platform:`` is sized to its pods'
  requests (:data:`IMPLICIT_NODE_MIN_CPU` cores and :data:`IMPLICIT_NODE_MIN_MEMORY` at least);
* twin-only series, prefixed ``devopsim_``: queue length and requests in flight
  per replica, the time integral of the queue length
  (``devopsim_replica_queue_seconds_total``: its ``rate()`` is the mean queue
  length), and what clients saw per request class.

Pods carry ``service``, ``version``, ``role``, ``pod``, ``node``, ``zone``,
``region``, ``cloud`` (and ``namespace``).

Cost: series are registered in bulk when the pods change (``platform.generation``
moves); every other scrape is two passes of the compiled plan over the cached layout
(:mod:`devopsim.observe._scrape`; the NumPy path it replaced is kept as its reference,
``Scraper.kernel = False``), and appends the same ids array, so the store keeps one
table per layout. When a pod goes, its series get a staleness marker at the next
scrape, as Prometheus writes one. node_exporter's part is :mod:`devopsim.observe.scrape_nodes`.
"""

from __future__ import annotations

import math
from itertools import accumulate
from typing import Any, ClassVar

import numpy as np

from devopsim.engine.request import layout as L
from devopsim.model.platform import Platform, Pod
from devopsim.model.program import ERROR_NAMES, Program
from devopsim.observe._scrape import ScrapePlan
from devopsim.observe.scrape_nodes import (
    FS_USAGE_BYTES,
    IMPLICIT_NODE_MIN_CPU,
    IMPLICIT_NODE_MIN_MEMORY,
    NodeSeries,
)
from devopsim.observe.store import MetricStore
from devopsim.scenario.schema import Scenario

__all__ = [
    "FS_LIMIT_BYTES",
    "FS_USAGE_BYTES",
    "IMPLICIT_NODE_MIN_CPU",
    "IMPLICIT_NODE_MIN_MEMORY",
    "MEMORY_PER_REQUEST",
    "REQUEST_BYTES",
    "RESPONSE_BYTES",
    "Scraper",
]

MEMORY_PER_REQUEST = 256 * 1024  # bytes a request in flight holds (working set model)
_DEFAULT_BASE_MEMORY = 64 * 1024**2
#: Bytes of one request on the wire (headers and a small body) when the scenario gives none.
REQUEST_BYTES = 1024
#: Bytes of one response on the wire when the scenario gives none.
RESPONSE_BYTES = 4096
#: The ephemeral-storage volume a container sees.
FS_LIMIT_BYTES = 10 * 1024**3

_LE = [f"{b:g}" for b in L.PROM_BUCKETS] + ["+Inf"]
_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_POD_METRICS = (
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_container_status_restarts_total",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    "container_fs_usage_bytes",
    "container_fs_limit_bytes",
)
_N_POD = len(_POD_METRICS) + 1 + len(_PHASES) + 1 + 3
# columns of a pod's ids (see _register): cpu, memory, restarts, rx, tx, fs usage, fs limit,
# ready, phases x5, info, in flight, queue length, queue seconds
_POD_VAR = np.array([0, 1, 3, 4, 14, 15, 16])
_POD_STATIC = np.array([2, 5, 6, 7, 8, 9, 10, 11, 12, 13])
# Per row of a scrape's pod values, which per-slot array it starts as (cpu area, busy, qlen,
# occupancy area, busy area); rows 1 to 3 are computed over it (row 1 from busy).
_POD_SRC_ROWS = np.array([0, 1, 0, 0, 1, 2, 3, 4], dtype=np.int64)
_WORK_RX_SCALE = np.array([[float(MEMORY_PER_REQUEST)], [float(REQUEST_BYTES)]])
_Parts = tuple[np.ndarray | None, ...]  # see Scraper._group
_POD_PLAIN = (
    "devopsim_replica_in_flight",
    "devopsim_replica_queue_length",
    "devopsim_replica_queue_seconds_total",
)


def _flat(shape: tuple[int, ...], *idx: np.ndarray) -> np.ndarray:
    return np.ravel_multi_index(tuple(np.asarray(i, dtype=np.int64) for i in idx), shape)


class Scraper(NodeSeries):
    """Reads the plane and the platform at each scrape and appends samples to the store."""

    #: Compute a scrape's values with the compiled :class:`~devopsim.observe._scrape.ScrapePlan`
    #: (False: the NumPy path, :meth:`_values_numpy`, the reference it must equal to the bit).
    #: The plan reads float arrays (the flow plane's); the request plane's integer counters
    #: take the NumPy path.
    kernel: ClassVar[bool] = True
    #: A layout change that keeps the pods (names, slots, labels) and nodes reads only the
    #: pods' state again (:meth:`_rebuild`); False: every layout is built whole (the
    #: reference the tests compare).
    light: ClassVar[bool] = True

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
        self._gen = -1
        self._shape: tuple[tuple[int, ...], ...] = ()
        self._eps: list[list[tuple[int, str, str]]] = [[] for _ in program.services]
        for k, (s, e) in enumerate(program.endpoints):
            si = program.services.index(s)
            method = scenario.services[s].endpoints[e].method
            self._eps[si].append((int(program.arrays["ep_local"][k]), e, method))
        self._svc_index = {s: i for i, s in enumerate(program.services)}
        self._base_mem = []
        for s in program.services:
            req = scenario.services[s].resources.requests.memory
            self._base_mem.append(0.6 * req if req else _DEFAULT_BASE_MEMORY)
        self._pod_cache: dict[Any, Any] = {}  # pod key -> its series ids (template order)
        self._groups: dict[int, tuple[Any, _Parts]] = {}  # service -> (its pods' keys, _group)
        self._templates: dict[int, dict[str, Any]] = {}
        self._node_cpu: dict[str, tuple[float, float, float]] = {}  # node -> (user, idle, last t)
        self._node_net: dict[str, tuple[float, float]] = {}
        self._prev_vals = np.zeros((4, 0))  # per pod of the layout: (cpu, -, rx, tx) at the last scrape
        self._node_names: list[str] = []
        self._nstate: list[list[float]] | None = None
        st = store
        self._deploy_ids = [
            st.series_many(
                "kube_deployment_spec_replicas", {"namespace": "default", "deployment": s}, [()]
            ).tolist()
            + st.series_many(
                "kube_deployment_status_replicas", {"namespace": "default", "deployment": s}, [()]
            ).tolist()
            + st.series_many(
                "kube_deployment_status_replicas_available", {"namespace": "default", "deployment": s}, [()]
            ).tolist()
            for s in program.services
        ]
        outcomes = ["ok", *ERROR_NAMES]
        cls_ids: list[np.ndarray] = []
        for c in program.classes:
            cls_ids.append(
                st.series_many(
                    "devopsim_client_requests_total", {"class": c}, [(("outcome", o),) for o in outcomes]
                )
            )
        for c in program.classes:
            cls_ids.append(
                st.series_many(
                    "devopsim_client_request_duration_seconds_bucket",
                    {"class": c},
                    [(("le", le),) for le in _LE],
                )
            )
        for name in (
            "devopsim_client_request_duration_seconds_sum",
            "devopsim_client_request_duration_seconds_count",
        ):
            for c in program.classes:
                cls_ids.append(st.series_many(name, {"class": c}, [()]))
        cls_ids.append(st.series_many("devopsim_requests_in_system", {}, [()]))
        self._fixed_ids = np.concatenate(cls_ids) if cls_ids else np.empty(0, np.int64)
        self._all_ids = np.empty(0, dtype=np.int64)
        self._ids = np.empty(0, dtype=np.int64)
        self._static: tuple[np.ndarray, np.ndarray] = (np.empty(0, np.int64), np.empty(0))
        self._prev_pods: set[str] = set()
        self._pslots = np.empty(0, dtype=np.int64)  # the layout's pods' slots
        self._pbase = np.empty(0)  # and base memory
        self._light_ok = False  # the next rebuild may keep the ids (see _rebuild)
        self._pod_order: list[int] = []  # the layout's order of the pods the platform lists
        self._layout_sig: tuple[list[Any], list[str]] | None = None  # its pods' keys, its nodes' names
        self._pod_series: dict[str, np.ndarray] = {}
        self._plan = ScrapePlan()
        rp = plane.replicas
        f8 = np.dtype(np.float64)
        self._fast = self.kernel and all(
            a.dtype == f8 for a in (rp.cnt, rp.lat_hist, rp.lat_sum, rp.cpu_area, rp.busy, rp.qlen)
        )
        self._vals = np.empty(0)
        self._delta = np.zeros((4, 0))
        self._src_buf = np.empty(0)

    # -- layout ------------------------------------------------------------------------------

    def _template(self, svc: int) -> dict[str, Any]:
        """The series every pod of service ``svc`` has, in a fixed order, and where each is read."""
        tm = self._templates.get(svc)
        if tm is not None:
            return tm
        rq, hb, hs = [], [], []
        rq_idx: list[tuple[int, int]] = []
        hb_idx: list[tuple[int, int]] = []
        hs_idx: list[int] = []
        for local, ep, method in self._eps[svc]:
            for ci, code in enumerate(L.CODE_NAMES):
                rq.append(("http_requests_total", (("code", code), ("endpoint", ep), ("method", method))))
                rq_idx.append((local, ci))
            for bi, le in enumerate(_LE):
                hb.append(
                    (
                        "http_request_duration_seconds_bucket",
                        (("endpoint", ep), ("le", le), ("method", method)),
                    )
                )
                hb_idx.append((local, bi))
            hs_idx.append(local)
        hs = [("http_request_duration_seconds_sum", e[1][:1] + e[1][2:]) for e in hb[:: len(_LE)]]
        hs += [("http_request_duration_seconds_count", e[1]) for e in hs]
        cont = (("container", self.program.services[svc]),)
        pod: list[tuple[str, tuple[tuple[str, str], ...]]] = [(m, cont) for m in _POD_METRICS]
        pod.append(("kube_pod_status_ready", (("condition", "true"),)))
        pod += [("kube_pod_status_phase", (("phase", p),)) for p in _PHASES]
        pod.append(("kube_pod_info", (("created_by_kind", "ReplicaSet"), ("host_ip", ""), ("pod_ip", ""))))
        pod += [(m, ()) for m in _POD_PLAIN]
        n_rq, n_hb, n_hs = len(rq), len(hb), len(hs_idx)
        tm = self._templates[svc] = {
            "series": rq + hb + hs + pod,
            "rq": slice(0, n_rq),
            "hb": slice(n_rq, n_rq + n_hb),
            "hs_sum": slice(n_rq + n_hb, n_rq + n_hb + n_hs),
            "hs_cnt": slice(n_rq + n_hb + n_hs, n_rq + n_hb + 2 * n_hs),
            "pod": slice(n_rq + n_hb + 2 * n_hs, None),
            "rq_idx": np.array(rq_idx, dtype=np.int64).reshape(-1, 2),
            "hs_idx": np.array(hs_idx, dtype=np.int64),
        }
        return tm

    def _group(self, pods: list[Pod], svc: int) -> _Parts:
        """The series ids of service ``svc``'s pods, and where each counter child is read.

        ``(pod series (rows in template order), request counters, their slots, endpoints
        and codes, histogram buckets, sums, counts, their slots and endpoints)``; the
        counter parts are None for a service without endpoints. New pods are registered in
        bulk; the same pods (names, slots, labels) as last time give the same arrays.
        """
        tm = self._template(svc)
        labels = [pod.labels() for pod in pods]
        keys = tuple((pod.name, pod.slot, tuple(lb.values())) for pod, lb in zip(pods, labels, strict=True))
        hit = self._groups.get(svc)
        if hit is not None and hit[0] == keys:
            return hit[1]
        cache = self._pod_cache
        missing = [k for k, key in enumerate(keys) if key not in cache]
        if missing:
            block = self.store.series_template(tm["series"], [labels[k] for k in missing])
            for row, k in enumerate(missing):
                cache[keys[k]] = block[row]
        rows = np.stack([cache[key] for key in keys]) if keys else np.empty((0, len(tm["series"])), np.int64)
        slots = np.array([p.slot for p in pods], dtype=np.int64)
        n = slots.size
        parts: _Parts = (rows[:, tm["pod"]],) + (None,) * 9
        rq_idx, hs_idx = tm["rq_idx"], tm["hs_idx"]
        if rq_idx.shape[0]:
            parts = (
                rows[:, tm["pod"]],
                rows[:, tm["rq"]].ravel(),
                np.repeat(slots, rq_idx.shape[0]),
                np.broadcast_to(rq_idx[:, 0], (n, rq_idx.shape[0])).ravel(),
                np.broadcast_to(rq_idx[:, 1], (n, rq_idx.shape[0])).ravel(),
                rows[:, tm["hb"]].ravel(),
                rows[:, tm["hs_sum"]].ravel(),
                rows[:, tm["hs_cnt"]].ravel(),
                np.repeat(slots, hs_idx.size),
                np.broadcast_to(hs_idx, (n, hs_idx.size)).ravel(),
            )
        self._groups[svc] = (keys, parts)
        return parts

    def _rebuild(self, pods: list[Pod]) -> None:
        """The layout of ``pods``: their series ids and where each value is read, and the values
        that only change with the pods. With ``_light_ok`` (:attr:`light`, and the plane's
        shapes did not change), if the pods (names, slots, labels, in order) and the nodes are
        those of the last layout, only the pods' state is read again (:meth:`_pods_state`): ids
        and gathers stay as they are. Either way the counter children are hidden again until
        seen incremented."""
        svc_of = self._svc_index
        nodes = self._nodes(pods)
        sig = (
            [(pod.name, pod.slot, tuple(pod.labels().values())) for pod in pods],
            [n.name for n in nodes],
        )
        same = self._light_ok and sig == self._layout_sig
        self._layout_sig = sig
        node_index = {n.name: i for i, n in enumerate(nodes)}
        self._nodes_now = nodes
        if same:
            self._pods_state([pods[k] for k in self._pod_order], node_index)
            self._plan_pods()
            self._node_layout(nodes)
            if self._fast:
                self._plan_nodes()
            self._static = (self._static[0], self._pstatic.T.ravel().copy())
            self._layout_tail()
            return
        rq_ids: list[np.ndarray] = []
        rq_s: list[np.ndarray] = []
        rq_l: list[np.ndarray] = []
        rq_c: list[np.ndarray] = []
        hb_ids: list[np.ndarray] = []
        hs_sum: list[np.ndarray] = []
        hs_cnt: list[np.ndarray] = []
        hs_s: list[np.ndarray] = []
        hs_l: list[np.ndarray] = []
        pod_ids: list[np.ndarray] = []
        by_svc: dict[int, list[Pod]] = {}
        at_svc: dict[int, list[int]] = {}  # where each is in ``pods``
        for k, pod in enumerate(pods):
            svc = svc_of[pod.service]
            by_svc.setdefault(svc, []).append(pod)
            at_svc.setdefault(svc, []).append(k)
        self._pod_order = [k for ks in at_svc.values() for k in ks]  # the layout's order of ``pods``
        ordered: list[Pod] = []
        for svc, group in by_svc.items():
            pod_part, *counters = self._group(group, svc)
            assert pod_part is not None
            pod_ids.append(pod_part)
            if counters[0] is not None:
                for acc, part in zip(
                    (rq_ids, rq_s, rq_l, rq_c, hb_ids, hs_sum, hs_cnt, hs_s, hs_l), counters, strict=True
                ):
                    assert part is not None
                    acc.append(part)
            ordered += group
        pods = ordered
        cat = np.concatenate
        i64 = np.int64
        rp = self.plane.replicas
        self._rq = _flat(rp.cnt.shape, cat(rq_s), cat(rq_l), cat(rq_c)) if rq_ids else None
        self._hs = _flat(rp.lat_sum.shape[:2], cat(hs_s), cat(hs_l)) if hs_sum else None
        self._pslots = np.array([pod.slot for pod in pods], dtype=i64)
        self._pnode = np.array([node_index.get(pod.node, -1) for pod in pods], dtype=i64)
        self._pbase = np.array([self._base_mem[svc_of[pod.service]] for pod in pods], dtype=np.float64)
        self._pods_state(pods, node_index)
        self._ans_rows = np.empty((self._pslots.size, int(np.prod(rp.cnt.shape[1:]))))
        self._answered = np.zeros(self._pslots.size)  # responses per pod (see _values)
        rl = int(np.prod(rp.cnt.shape[:2]))
        self._src_offsets = (rp.cnt.size, rp.cnt.size + rl, rp.lat_hist.shape[2])
        # Where a scrape reads its pods' rows (see _values): cpu, -, -, -, busy, qlen, occupancy
        # area, busy area from the per-slot arrays laid end to end.
        nslot = rp.cpu_area.size
        self._pod_gather = self._pslots[None, :] + nslot * _POD_SRC_ROWS[:, None]
        old_names = getattr(self, "_pod_names", [])
        old_prev = getattr(self, "_prev_vals", np.zeros((4, 0)))
        where = {nm: k for k, nm in enumerate(old_names)}
        self._pod_names = [p.name for p in pods]
        prev = np.zeros((4, len(pods)))
        if old_prev.shape[1] == len(old_names) and old_names:
            src = np.array([where.get(nm, -1) for nm in self._pod_names], dtype=i64)
            kept = src >= 0
            prev[:, kept] = old_prev[:, src[kept]]
        self._prev_vals = prev
        self._delta = np.zeros_like(prev)
        self._plan_pods()
        node_ids = [self._node_ids(n) for n in nodes]
        self._node_layout(nodes)
        if self._fast:
            self._plan_nodes()
        pod_mat = cat(pod_ids).astype(i64) if pod_ids else np.empty((0, _N_POD), i64)
        # Counter children (request codes, histogram children) appear once first incremented:
        # their ids, where their value is read, and whether they are visible yet.
        self._rq_ids = cat(rq_ids) if rq_ids else np.empty(0, i64)
        self._hb_ids = cat(hb_ids).reshape(-1, len(_LE)) if hb_ids else np.empty((0, len(_LE)), i64)
        self._hs_ids = (cat(hs_sum), cat(hs_cnt)) if hs_sum else (np.empty(0, i64), np.empty(0, i64))
        # Pod series: what changes every scrape, and what only changes with the pods (static).
        self._var_ids = cat(
            [
                pod_mat[:, _POD_VAR].T.ravel(),
                np.array(
                    [x for nd in node_ids for x in (*nd["cpu"].tolist(), *nd["mem"], *nd["net"], *nd["fs"])],
                    dtype=i64,
                ),
                np.array([x for ids in self._deploy_ids for x in ids], dtype=i64),
                self._fixed_ids,
            ]
        )
        st_vals = self._pstatic
        self._static = (pod_mat[:, _POD_STATIC].T.ravel().copy(), st_vals.T.ravel().copy())
        self._all_ids = cat(
            [self._rq_ids, self._hb_ids.ravel(), *self._hs_ids, self._var_ids, self._static[0]]
        )
        self._layout_tail()

    def _pods_state(self, pods: list[Pod], node_index: dict[str, int]) -> None:
        """What the layout reads of its pods that may change while they stay (phase, ready,
        restarts, memory leak, container start, requests)."""
        static_l: list[float] = []  # per pod: restarts, fs usage, fs limit, ready, phases x5, info
        leak_l: list[float] = []
        start_l: list[float] = []
        req_l: list[float] = []  # per pod: cpu and memory requests
        fs_use, fs_lim = float(FS_USAGE_BYTES), float(FS_LIMIT_BYTES)
        inf = math.inf
        behaviour = getattr(self.platform, "behaviour_of", None)
        for pod in pods:
            phase = str(getattr(pod, "k8s_phase", "Running"))
            static_l += (float(pod.restarts), fs_use, fs_lim, 1.0 if pod.ready else 0.0)
            static_l += [1.0 if p == phase else 0.0 for p in _PHASES]
            static_l.append(1.0)
            leak_l.append(float(behaviour(pod).memory_leak) if behaviour is not None else 0.0)
            started = getattr(pod, "container_started", None)
            # A container not started (or a start not known) has no uptime: inf makes
            # max(t - start, 0) 0.
            start_l.append(inf if started is None or not math.isfinite(started) else float(started))
            req_l += (float(getattr(pod, "cpu_request", 0.0)), float(getattr(pod, "mem_request", 0.0)))
        self._pstatic = np.array(static_l, dtype=np.float64).reshape(-1, 4 + len(_PHASES) + 1)
        self._pleak = np.array(leak_l, dtype=np.float64)
        self._pstart = np.array(start_l, dtype=np.float64)
        self._leaky = bool(np.any(self._pleak != 0.0))
        self._pod_req = np.array(req_l, dtype=np.float64).reshape(-1, 2)

    def _plan_pods(self) -> None:
        """Give the compiled plan the pods' layout (slots, static values, previous values)."""
        self._plan.set_pods(
            self._pslots,
            self._pbase,
            self._pleak,
            self._pstart,
            self._leaky,
            self._prev_vals.ravel(),
            self._delta.ravel(),
            float(MEMORY_PER_REQUEST),
            float(REQUEST_BYTES),
            float(RESPONSE_BYTES),
        )

    def _layout_tail(self) -> None:
        """The workloads' series and the counter children's visibility, for a new layout."""
        # Per workload: desired (read at each scrape), live and ready pods (fixed between pod changes).
        self._workloads = list(self.platform.workloads.values())
        self._dep = [float(x) for w in self._workloads for x in (w.desired, len(w.live()), w.ready_count())]
        self._plan.set_workloads(self._workloads, np.array(self._dep, dtype=np.float64))
        # Counter children (request codes, histogram children) appear once first incremented:
        # hidden again until a scrape sees them above 0 (a restarted container's start at 0).
        self._rq_vis = np.zeros(self._rq_ids.size, dtype=bool)
        self._hs_vis = np.zeros(self._hs_ids[0].size, dtype=bool)
        self._refresh_visible()

    def _refresh_visible(self) -> None:
        """The ids array of what is visible now (a new array only when visibility changed).

        Also where a scrape reads each visible counter child in its counter sources (see
        :meth:`_counter_sources`), and where the hidden ones are, to find the newly
        incremented ones.
        """
        hv = self._hs_vis
        self._ids = np.concatenate(
            [
                self._rq_ids[self._rq_vis],
                self._hb_ids[hv].ravel(),
                self._hs_ids[0][hv],
                self._hs_ids[1][hv],
                self._var_ids,
            ]
        )
        self._vals = np.empty(self._ids.size)
        if self._rq is None or self._hs is None:
            self._plan.clear_counters()
            return
        o_served, o_cum, nb = self._src_offsets
        rq_on = self._rq[self._rq_vis]
        hs_on = self._hs[hv]
        # The visible histograms' buckets (a row of nb per series), then where each visible
        # series reads its value: request counters, cumulative buckets, sums, counts; then
        # where the hidden ones are read (to find those incremented since).
        self._hist_at = (hs_on[:, None] * nb + np.arange(nb)).ravel()
        o_sum = o_cum + self._hist_at.size
        self._hidden_rq = np.flatnonzero(~self._rq_vis)
        self._hidden_hs = np.flatnonzero(~hv)
        hidden = [self._rq[self._hidden_rq], o_served + self._hs[self._hidden_hs]]
        visible = [rq_on, o_cum + np.arange(self._hist_at.size), o_sum + hs_on, o_served + hs_on]
        self._n_visible = sum(a.size for a in visible)
        self._gather = np.concatenate(visible + hidden)
        self._src_buf = np.empty(o_sum + (o_cum - o_served))  # the counter sources (see below)
        ncode = self.plane.replicas.cnt.shape[2]
        self._plan.set_counters(
            self._gather, self._n_visible, self._hist_at, nb, ncode, L.CODE_200, L.CODE_500, self._src_buf
        )

    # -- scrape ------------------------------------------------------------------------------

    def _counter_sources(self, rp: Any) -> np.ndarray:
        """The counters a scrape reads, in one vector: responses by replica, endpoint and code;
        answered (200 and 500) by replica and endpoint; the visible histograms' cumulative
        buckets (series by series); latency sums by replica and endpoint."""
        cnt = rp.cnt
        served = cnt[:, :, L.CODE_200] + cnt[:, :, L.CODE_500]  # answered, timed
        nb = self._src_offsets[2]
        cum = rp.lat_hist.ravel().take(self._hist_at).reshape(-1, nb)
        np.add.accumulate(cum, axis=1, out=cum)  # (the additions of a cumsum, in place)
        return np.concatenate((cnt.ravel(), served.ravel(), cum.ravel(), rp.lat_sum.ravel()))

    def _values(self, t: float) -> np.ndarray:
        """The values of ``self._ids`` (visible counter children, then the varying series),
        in a buffer the next scrape reuses (the store copies it).

        The compiled plan writes the counters, the pods' rows and the nodes' series in one
        call, then what follows (the element operations of :meth:`_values_numpy`, in the
        same order); the per-pod sums of responses are the NumPy path's own code.
        """
        rp = self.plane.replicas
        plan = self._plan
        answered = self._answered
        if self._pslots.size:
            cnt2 = rp.cnt.reshape(rp.cnt.shape[0], -1)
            # (as _values_numpy: a plain reduction along each pod's row, no BLAS: OpenBLAS's
            # threads for a pods x codes matrix-vector product spin on the other cores between
            # scrapes; "clip": the slots are in range, and no buffered copy)
            np.add.reduce(
                cnt2.take(self._pslots, axis=0, out=self._ans_rows, mode="clip"), axis=1, out=answered
            )
        while plan.row(rp, answered, t, self._vals):
            # Counter children appear once first incremented (as a client library's do).
            now_on = self._src_buf.take(self._gather[self._n_visible :]) > 0
            k = self._hidden_rq.size
            self._rq_vis[self._hidden_rq[now_on[:k]]] = True
            self._hs_vis[self._hidden_hs[now_on[k:]]] = True
            self._refresh_visible()
        s_ = self.plane.class_stats
        in_system = float(self.plane.in_system)
        try:
            plan.tail(s_.cls_tot, s_.cls_pb, s_.cls_psum, in_system)
        except ValueError:  # not float64 arrays: the arrays as floats (the same values)
            f8 = np.float64
            tot, pb, psum = (np.ascontiguousarray(a, f8) for a in (s_.cls_tot, s_.cls_pb, s_.cls_psum))
            plan.tail(tot, pb, psum, in_system)
        return self._vals

    def _values_numpy(self, t: float) -> np.ndarray:
        """:meth:`_values` with whole-array operations over the gathers the layout keeps
        (see :meth:`_rebuild`): the reference the compiled plan must equal."""
        rp = self.plane.replicas
        out: list[Any] = []
        if self._rq is not None and self._hs is not None:
            got = self._counter_sources(rp).take(self._gather)
            n = self._n_visible
            # Counter children appear once first incremented (as a client library's do).
            now_on = got[n:] > 0
            if np.count_nonzero(now_on):
                k = self._hidden_rq.size
                self._rq_vis[self._hidden_rq[now_on[:k]]] = True
                self._hs_vis[self._hidden_hs[now_on[k:]]] = True
                self._refresh_visible()
                got = self._counter_sources(rp).take(self._gather)
                n = self._n_visible
            out.append(got[:n])
        # One row per pod metric, in the order of _POD_VAR (cpu, work, rx, tx, busy, qlen,
        # queue seconds), and the busy area as an eighth: the read ones gathered at once, the
        # others computed over what the gather put in their rows (see _POD_SRC_ROWS).
        per_slot = np.concatenate((rp.cpu_area, rp.busy, rp.qlen, rp.occ_area, rp.busy_area))
        pv = per_slot.take(self._pod_gather)
        busy = pv[4]
        if self._pslots.size:
            cnt2 = rp.cnt.reshape(rp.cnt.shape[0], -1)
            answered = np.add.reduce(cnt2.take(self._pslots, axis=0), axis=1)
        else:
            answered = busy
        rx = pv[2]
        np.add(answered, busy, out=rx)
        rx += pv[5]  # + qlen
        if self._leaky:
            uptime = np.maximum(t - self._pstart, 0.0)
            pv[1] = self._pbase + MEMORY_PER_REQUEST * busy + self._pleak * uptime
            rx *= REQUEST_BYTES
        else:  # no leak: the leak term would add +0.0 to a positive working set
            pv[1:3] *= _WORK_RX_SCALE  # busy x MEMORY_PER_REQUEST, requests x REQUEST_BYTES
            pv[1] += self._pbase
        np.multiply(answered, RESPONSE_BYTES, out=pv[3])
        qsec = pv[6]
        np.subtract(qsec, pv[7], out=qsec)  # occupancy area - busy area
        np.maximum(qsec, 0.0, out=qsec)
        out.append(pv[:7].ravel())
        out.append(self._tail(self._node_values(t, pv)))
        vals: np.ndarray = np.concatenate(out, dtype=np.float64, casting="unsafe")
        return vals

    def _tail(self, tail: list[Any]) -> list[Any]:
        """``tail`` (the nodes' series) and then the workloads' and the classes' series."""
        dep = self._dep
        dep[0::3] = [float(w.desired) for w in self.platform.workloads.values()]
        tail += dep
        s_ = self.plane.class_stats
        tot = s_.cls_tot.tolist()
        for row in tot:
            tail += row
        for row in s_.cls_pb.tolist():
            tail += accumulate(row)  # the same additions as a cumsum over the row
        tail += s_.cls_psum.tolist()
        tail += [row[0] for row in tot]
        tail.append(float(self.plane.in_system))
        return tail

    def scrape(self, t: float) -> None:
        """Append one scrape at simulated time ``t``."""
        gen = self.platform.generation
        rp = self.plane.replicas
        shape = (rp.cnt.shape, rp.lat_hist.shape)
        if gen != self._gen or shape != self._shape:
            before = np.concatenate((self._ids, self._static[0]))
            self._light_ok = self.light and shape == self._shape
            self._rebuild(self.platform.pods())
            self._gen, self._shape = gen, shape
            mark = np.zeros(len(self.store.series_metric), dtype=bool)
            mark[self._all_ids] = True
            gone = before[~mark[before]]
            if gone.size:
                self.store.mark_stale(t, gone)
        self.plane.sync_integrals(t)  # brings CPU integrals up to t
        vals = self._values(t) if self._fast else self._values_numpy(t)
        self.store.append(t, self._ids, vals, self._static)
