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
moves); every other scrape is a few NumPy gathers over the cached layout, and
appends the same ids array, so the store keeps one table per layout. When a pod
goes, its series get a staleness marker at the next scrape, as Prometheus writes one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from devopsim.engine.request import layout as L
from devopsim.model.platform import Platform, Pod
from devopsim.model.program import ERROR_NAMES, Program
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
#: A container's writable layer and logs (constant: the twin models no disk I/O).
FS_USAGE_BYTES = 50 * 1024**2
#: The ephemeral-storage volume a container sees.
FS_LIMIT_BYTES = 10 * 1024**3
IMPLICIT_NODE_MIN_CPU = 1.0
IMPLICIT_NODE_MIN_MEMORY = 1024**3
_NODE_FS_BYTES = 100 * 1024**3

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
_POD_PLAIN = (
    "devopsim_replica_in_flight",
    "devopsim_replica_queue_length",
    "devopsim_replica_queue_seconds_total",
)


def _flat(shape: tuple[int, ...], *idx: np.ndarray) -> np.ndarray:
    return np.ravel_multi_index(tuple(np.asarray(i, dtype=np.int64) for i in idx), shape)


class _Layout:
    """Every series of the pods alive at one platform generation, and how to read each."""

    def __init__(self) -> None:
        self.rq: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # slot, local, code, ids
        self.hb: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # slot, local, bucket, ids
        self.hs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # slot, local, sum, count
        self.pod_slot: list[int] = []
        self.pod_ids: list[np.ndarray] = []  # per pod: _POD_METRICS + ready + phases + info + _POD_PLAIN
        self.pod_static: list[list[float]] = []  # restarts, fs usage, fs limit, ready, phases x5, info
        self.pod_node: list[int] = []
        self.pod_mem: list[tuple[float, float, float]] = []  # base, leak/s, container start


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
        self._templates: dict[int, dict[str, Any]] = {}
        self._node_cpu: dict[str, tuple[float, float, float]] = {}  # node -> (user, idle, last t)
        self._node_net: dict[str, tuple[float, float]] = {}
        self._prev_vals = np.zeros((3, 0))  # per pod of the layout: (cpu, rx, tx) at the last scrape
        self._node_names: list[str] = []
        self._nstate: np.ndarray | None = None
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
        self._layout = _Layout()
        self._all_ids = np.empty(0, dtype=np.int64)
        self._ids = np.empty(0, dtype=np.int64)
        self._static: tuple[np.ndarray, np.ndarray] = (np.empty(0, np.int64), np.empty(0))
        self._prev_pods: set[str] = set()
        self._pod_series: dict[str, np.ndarray] = {}

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

    def _pod_rows(self, pods: list[Pod], svc: int) -> np.ndarray:
        """The series ids of each pod (rows in template order), registering new pods in bulk."""
        tm = self._template(svc)
        keys = []
        missing: list[int] = []
        cache = self._pod_cache
        for k, pod in enumerate(pods):
            labels = pod.labels()
            key = (pod.name, pod.slot, tuple(labels.values()))
            keys.append((key, labels))
            if key not in cache:
                missing.append(k)
        if missing:
            block = self.store.series_template(tm["series"], [keys[k][1] for k in missing])
            for row, k in enumerate(missing):
                cache[keys[k][0]] = block[row]
        if not pods:
            return np.empty((0, len(tm["series"])), dtype=np.int64)
        return np.stack([cache[key] for key, _ in keys])

    def _node_ids(self, node: Any) -> dict[str, Any]:
        key = ("node", node.name, 0, ())
        cached: dict[str, Any] | None = self._pod_cache.get(key)
        if cached is not None:
            return cached
        st = self.store
        base = {
            "instance": node.name,
            "node": node.name,
            "zone": node.zone,
            "region": node.region,
            "cloud": node.cloud,
        }
        ids = {
            "cpu": st.series_many(
                "node_cpu_seconds_total", base, [(("cpu", "0"), ("mode", m)) for m in ("idle", "user")]
            ),
            "mem": st.series_many("node_memory_MemTotal_bytes", base, [()]).tolist()
            + st.series_many("node_memory_MemAvailable_bytes", base, [()]).tolist(),
            "net": st.series_many("node_network_receive_bytes_total", base, [(("device", "eth0"),)]).tolist()
            + st.series_many("node_network_transmit_bytes_total", base, [(("device", "eth0"),)]).tolist(),
            "fs": st.series_many(
                "node_filesystem_avail_bytes",
                base,
                [(("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/"))],
            ).tolist()
            + st.series_many(
                "node_filesystem_size_bytes",
                base,
                [(("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/"))],
            ).tolist(),
        }
        self._pod_cache[key] = ids
        return ids

    def _nodes(self, pods: list[Pod]) -> list[Any]:
        cluster = getattr(self.platform, "cluster", None)
        if cluster is None:
            return []
        return [n for n in cluster.nodes.values() if not getattr(n, "removed", False)]

    def _rebuild(self, pods: list[Pod]) -> None:
        lay = _Layout()
        svc_of = self._svc_index
        nodes = self._nodes(pods)
        node_index = {n.name: i for i, n in enumerate(nodes)}
        self._nodes_now = nodes
        rq_ids, rq_s, rq_l, rq_c = [], [], [], []
        hb_ids: list[np.ndarray] = []
        hs_sum, hs_cnt, hs_s, hs_l = [], [], [], []
        pod_ids = []
        behaviour = getattr(self.platform, "behaviour_of", None)
        by_svc: dict[int, list[Pod]] = {}
        for pod in pods:
            by_svc.setdefault(svc_of[pod.service], []).append(pod)
        ordered: list[Pod] = []
        for svc, group in by_svc.items():
            tm = self._template(svc)
            rows = self._pod_rows(group, svc)
            slots = np.array([p.slot for p in group], dtype=np.int64)
            n_rq = tm["rq_idx"].shape[0]
            if n_rq:
                rq_ids.append(rows[:, tm["rq"]].ravel())
                rq_s.append(np.repeat(slots, n_rq))
                rq_l.append(np.tile(tm["rq_idx"][:, 0], slots.size))
                rq_c.append(np.tile(tm["rq_idx"][:, 1], slots.size))
                hb_ids.append(rows[:, tm["hb"]].ravel())
                hs_sum.append(rows[:, tm["hs_sum"]].ravel())
                hs_cnt.append(rows[:, tm["hs_cnt"]].ravel())
                hs_s.append(np.repeat(slots, tm["hs_idx"].size))
                hs_l.append(np.tile(tm["hs_idx"], slots.size))
            pod_ids.append(rows[:, tm["pod"]])
            ordered += group
        pods = ordered
        for pod in pods:
            svc = svc_of[pod.service]
            lay.pod_slot.append(pod.slot)
            ready = 1.0 if pod.ready else 0.0
            phase = str(getattr(pod, "k8s_phase", "Running"))
            lay.pod_static.append(
                [float(pod.restarts), float(FS_USAGE_BYTES), float(FS_LIMIT_BYTES), ready]
                + [1.0 if p == phase else 0.0 for p in _PHASES]
                + [1.0]
            )
            lay.pod_node.append(node_index.get(pod.node, -1))
            leak = float(behaviour(pod).memory_leak) if behaviour is not None else 0.0
            started = getattr(pod, "container_started", None)
            lay.pod_mem.append(
                (self._base_mem[svc], leak, float(started) if started is not None else math.inf)
            )
        cat = np.concatenate
        i64 = np.int64
        rp = self.plane.replicas
        self._rq = _flat(rp.cnt.shape, cat(rq_s), cat(rq_l), cat(rq_c)) if rq_ids else None
        self._hs = _flat(rp.lat_sum.shape[:2], cat(hs_s), cat(hs_l)) if hs_sum else None
        self._pslots = np.asarray(lay.pod_slot, dtype=i64)
        self._pstatic = np.asarray(lay.pod_static, dtype=np.float64).reshape(-1, 4 + len(_PHASES) + 1)
        self._pnode = np.asarray(lay.pod_node, dtype=i64)
        self._pmem = np.asarray(lay.pod_mem, dtype=np.float64).reshape(-1, 3)
        old_names = getattr(self, "_pod_names", [])
        old_prev = getattr(self, "_prev_vals", np.zeros((3, 0)))
        where = {nm: k for k, nm in enumerate(old_names)}
        self._pod_names = [p.name for p in pods]
        prev = np.zeros((3, len(pods)))
        if old_prev.shape[1] == len(old_names):
            for k, nm in enumerate(self._pod_names):
                j = where.get(nm)
                if j is not None:
                    prev[:, k] = old_prev[:, j]
        self._prev_vals = prev
        self._pod_req = np.array(
            [(float(getattr(p, "cpu_request", 0.0)), float(getattr(p, "mem_request", 0.0))) for p in pods]
        ).reshape(-1, 2)
        node_ids = [self._node_ids(n) for n in nodes]
        self._node_layout(nodes)
        pod_mat = cat(pod_ids).astype(i64) if pod_ids else np.empty((0, _N_POD), i64)
        # Counter children (request codes, histogram children) appear once first incremented:
        # their ids, where their value is read, and whether they are visible yet.
        self._rq_ids = cat(rq_ids) if rq_ids else np.empty(0, i64)
        self._hb_ids = cat(hb_ids).reshape(-1, len(_LE)) if hb_ids else np.empty((0, len(_LE)), i64)
        self._hs_ids = (cat(hs_sum), cat(hs_cnt)) if hs_sum else (np.empty(0, i64), np.empty(0, i64))
        self._rq_vis = np.zeros(self._rq_ids.size, dtype=bool)
        self._hs_vis = np.zeros(self._hs_ids[0].size, dtype=bool)
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
        self._ready_counts = [(len(w.live()), w.ready_count()) for w in self.platform.workloads.values()]
        self._layout = lay
        self._refresh_visible()

    def _refresh_visible(self) -> None:
        """The ids array of what is visible now (a new array only when visibility changed)."""
        hv = self._hs_vis
        self._rq_on = self._rq[self._rq_vis] if self._rq is not None else np.empty(0, np.int64)
        self._hs_on = self._hs[hv] if self._hs is not None else np.empty(0, np.int64)
        self._ids = np.concatenate(
            [
                self._rq_ids[self._rq_vis],
                self._hb_ids[hv].ravel(),
                self._hs_ids[0][hv],
                self._hs_ids[1][hv],
                self._var_ids,
            ]
        )

    # -- scrape ------------------------------------------------------------------------------

    def _values(self, t: float) -> np.ndarray:
        """The values of ``self._ids`` (visible counter children, then the varying series)."""
        rp = self.plane.replicas
        out: list[np.ndarray] = []
        if self._rq is not None and self._hs is not None:
            cnt = rp.cnt.ravel()
            served = (rp.cnt[:, :, L.CODE_200] + rp.cnt[:, :, L.CODE_500]).ravel()  # answered, timed
            new_rq = ~self._rq_vis
            new_rq[new_rq] = np.take(cnt, self._rq[new_rq]) > 0
            new_hs = ~self._hs_vis
            new_hs[new_hs] = np.take(served, self._hs[new_hs]) > 0
            if new_rq.any() or new_hs.any():
                self._rq_vis |= new_rq
                self._hs_vis |= new_hs
                self._refresh_visible()
            out.append(np.take(cnt, self._rq_on).astype(np.float64))
            hist = rp.lat_hist.reshape(-1, rp.lat_hist.shape[2])
            out.append(np.cumsum(hist[self._hs_on], axis=1).ravel().astype(np.float64))
            out.append(np.take(np.ascontiguousarray(rp.lat_sum).ravel(), self._hs_on).astype(np.float64))
            out.append(np.take(served, self._hs_on).astype(np.float64))
        slots = self._pslots
        busy = rp.busy[slots].astype(np.float64)
        qlen = rp.qlen[slots].astype(np.float64)
        mem = self._pmem
        uptime = np.maximum(t - mem[:, 2], 0.0) if mem.size else np.zeros(0)
        uptime = np.where(np.isfinite(uptime), uptime, 0.0)
        work = mem[:, 0] + MEMORY_PER_REQUEST * busy + mem[:, 1] * uptime
        cnt2 = rp.cnt.reshape(rp.cnt.shape[0], -1)
        answered = cnt2[slots] @ np.ones(cnt2.shape[1]) if slots.size else busy  # (BLAS: fast)
        rx = (answered + busy + qlen) * REQUEST_BYTES
        tx = answered * RESPONSE_BYTES
        cpu = rp.cpu_area[slots].astype(np.float64)
        # in the order of _POD_VAR
        out += [cpu, work, rx, tx, busy, qlen, np.maximum(rp.occ_area[slots] - rp.busy_area[slots], 0.0)]
        out.append(self._node_values(t, cpu, work, rx, tx))
        dep: list[float] = []
        for w, (live, ready) in zip(self.platform.workloads.values(), self._ready_counts, strict=True):
            dep += [float(w.desired), float(live), float(ready)]
        out.append(np.asarray(dep, dtype=np.float64))
        s_ = self.plane.stats
        out += [
            s_.cls_tot.ravel().astype(np.float64),
            np.cumsum(s_.cls_pb, axis=1).ravel().astype(np.float64),
            np.asarray(s_.cls_psum, dtype=np.float64).ravel(),
            s_.cls_tot[:, 0].astype(np.float64),
            np.array([float(self.plane.in_system)]),
        ]
        return np.concatenate(out)

    def _node_layout(self, nodes: list[Any]) -> None:
        """Per-node arrays for the layout (state carried over by node name)."""
        old = self._nstate
        if old is not None:
            for k, name in enumerate(self._node_names):
                self._node_cpu[name] = (float(old[0, k]), float(old[1, k]), float(old[2, k]))
                self._node_net[name] = (float(old[3, k]), float(old[4, k]))
        self._node_names = [nd.name for nd in nodes]
        n = len(nodes)
        idx = self._pnode
        ok = idx >= 0
        self._pnode_ok = ok
        req_cpu = np.bincount(idx[ok], weights=self._pod_req[ok, 0], minlength=n)
        req_mem = np.bincount(idx[ok], weights=self._pod_req[ok, 1], minlength=n)
        cpu = np.array([float(nd.cpu) for nd in nodes])
        mem = np.array([float(nd.memory) for nd in nodes])
        self._ncores = np.where(np.isfinite(cpu), cpu, np.maximum(IMPLICIT_NODE_MIN_CPU, np.ceil(req_cpu)))
        self._nmem_req = np.where(np.isfinite(mem), mem, np.maximum(float(IMPLICIT_NODE_MIN_MEMORY), req_mem))
        self._nmem_fixed = np.isfinite(mem)
        pods_here = np.bincount(idx[ok], minlength=n)
        self._nfs = np.maximum(0.0, _NODE_FS_BYTES - FS_USAGE_BYTES * pods_here)
        state = np.zeros((5, n))  # user, idle, last t, rx, tx
        for k, nd in enumerate(nodes):
            u, i, t0 = self._node_cpu.get(nd.name, (0.0, 0.0, float(getattr(nd, "created", 0.0))))
            r, x = self._node_net.get(nd.name, (0.0, 0.0))
            state[:, k] = (u, i, t0, r, x)
        self._nstate = state

    def _node_values(
        self, t: float, cpu: np.ndarray, work: np.ndarray, rx: np.ndarray, tx: np.ndarray
    ) -> np.ndarray:
        n = len(self._node_names)
        if not n:
            return np.empty(0)
        # Counters per node accumulate the pods' increments since the last scrape (pods come and go).
        now_vals = np.stack([cpu, rx, tx])
        prev = self._prev_vals if self._prev_vals.shape == now_vals.shape else np.zeros_like(now_vals)
        delta = np.maximum(now_vals - prev, 0.0)
        self._prev_vals = now_vals
        ok = self._pnode_ok
        if n == 1 and ok.all():  # one node (the implicit one): plain sums
            used, nrx, ntx = delta.sum(axis=1)[:, None]
            ws = np.array([work.sum()])
        else:
            idx = self._pnode[ok]
            used = np.bincount(idx, weights=delta[0][ok], minlength=n)
            nrx = np.bincount(idx, weights=delta[1][ok], minlength=n)
            ntx = np.bincount(idx, weights=delta[2][ok], minlength=n)
            ws = np.bincount(idx, weights=work[ok], minlength=n)
        st = self._nstate
        assert st is not None
        st[0] += used
        st[1] += np.maximum(0.0, self._ncores * np.maximum(t - st[2], 0.0) - used)  # idle: the rest
        st[2] = t
        st[3] += nrx
        st[4] += ntx
        total_mem = np.where(self._nmem_fixed, self._nmem_req, np.maximum(self._nmem_req, ws))
        out = np.stack(
            [
                st[1],
                st[0],
                total_mem,
                np.maximum(0.0, total_mem - ws),
                st[3],
                st[4],
                self._nfs,
                np.full(n, float(_NODE_FS_BYTES)),
            ],
            axis=1,
        )
        return out.ravel()

    def scrape(self, t: float) -> None:
        """Append one scrape at simulated time ``t``."""
        gen = self.platform.generation
        rp = self.plane.replicas
        shape = (rp.cnt.shape, rp.lat_hist.shape)
        if gen != self._gen or shape != self._shape:
            before = np.concatenate((self._ids, self._static[0]))
            self._rebuild(self.platform.pods())
            self._gen, self._shape = gen, shape
            mark = np.zeros(len(self.store.series_metric), dtype=bool)
            mark[self._all_ids] = True
            gone = before[~mark[before]]
            if gone.size:
                self.store.mark_stale(t, gone)
        self.plane.sync_integrals(t)  # brings CPU integrals up to t
        vals = self._values(t)
        self.store.append(t, self._ids, vals, self._static)
