"""node_exporter's series of the scrape (see :mod:`devopsim.observe.scrape`).

One target per node of the platform's cluster: ``node_cpu_seconds_total{cpu, mode}``
(``user``, the CPU its pods used, and ``idle``, the rest of its cores' time),
``node_memory_MemTotal_bytes`` and ``node_memory_MemAvailable_bytes``, the network
counters (the pods' bytes) and the root filesystem. The counters accumulate the pods'
increments since the last scrape, so they keep counting as pods come and go.
Split from the scraper (a mixin of :class:`~devopsim.observe.scrape.Scraper`) to keep
each module readable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devopsim.model.platform import Platform, Pod
from devopsim.observe._scrape import ScrapePlan
from devopsim.observe.store import MetricStore

__all__ = ["FS_USAGE_BYTES", "IMPLICIT_NODE_MIN_CPU", "IMPLICIT_NODE_MIN_MEMORY", "NodeSeries"]

#: A container's writable layer and logs (constant: the twin models no disk I/O).
FS_USAGE_BYTES = 50 * 1024**2
IMPLICIT_NODE_MIN_CPU = 1.0
IMPLICIT_NODE_MIN_MEMORY = 1024**3
_NODE_FS_BYTES = 100 * 1024**3


class NodeSeries:
    """The node part of the scraper: the nodes' series ids, per-layout arrays and values.

    Reads the scraper's layout (``_pnode``: each pod's node index or -1; ``_pod_req``: its
    CPU and memory requests) and keeps each node's counters (``_nstate``) and the pods'
    values at the last scrape (``_prev_vals``: cpu, working set, rx, tx).
    """

    store: MetricStore
    platform: Platform
    _pod_cache: dict[Any, Any]
    _pnode: np.ndarray
    _pod_req: np.ndarray
    _prev_vals: np.ndarray
    _node_cpu: dict[str, tuple[float, float, float]]
    _node_net: dict[str, tuple[float, float]]
    _node_names: list[str]
    _nstate: list[list[float]] | np.ndarray | None
    _plan: ScrapePlan
    _one_node: bool

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

    def _node_layout(self, nodes: list[Any]) -> None:
        """Per-node arrays for the layout (state carried over by node name)."""
        old = self._nstate
        if old is not None:
            for k, name in enumerate(self._node_names):
                self._node_cpu[name] = (old[0][k], old[1][k], old[2][k])
                self._node_net[name] = (old[3][k], old[4][k])
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
        state: list[list[float]] = [[], [], [], [], []]  # per node: user, idle, last t, rx, tx
        for nd in nodes:
            u, i, t0 = self._node_cpu.get(nd.name, (0.0, 0.0, float(getattr(nd, "created", 0.0))))
            r, x = self._node_net.get(nd.name, (0.0, 0.0))
            for row, v in zip(state, (u, i, t0, r, x), strict=True):
                row.append(float(v))
        self._nstate = state
        # One node holding every pod (the implicit node): its series from plain sums and floats.
        self._one_node = n == 1 and bool(ok.all())
        if self._one_node:
            self._ncores1 = float(self._ncores[0])
            self._nmem1 = float(self._nmem_req[0])
            self._nmem_fixed1 = bool(self._nmem_fixed[0])
            self._nfs1 = float(self._nfs[0])

    def _node_values(self, t: float, pv: np.ndarray) -> list[Any]:
        """Each node's series (8 per node, in the order of its ids) from the pods' rows ``pv``."""
        n = len(self._node_names)
        if not n:
            return []
        # Counters per node accumulate the pods' increments since the last scrape (pods come
        # and go): of CPU, rx and tx (rows 0, 2, 3; the working set's row 1 is not used).
        now_vals = pv[:4]
        prev = self._prev_vals if self._prev_vals.shape == now_vals.shape else np.zeros_like(now_vals)
        delta = np.maximum(now_vals - prev, 0.0)
        self._prev_vals = now_vals
        return self._node_out(t, delta, pv[1])

    def _plan_nodes(self) -> None:
        """Hand the layout's nodes to the compiled plan, which writes their series (as
        :meth:`_node_out` does) and moves their counters on in place: they are kept as a
        ``(5, nodes)`` array from here until the next layout."""
        st = self._nstate = np.array(self._nstate, dtype=np.float64).reshape(5, -1)
        self._nsums = np.empty(4 * st.shape[1])
        self._plan.set_nodes(
            len(self._node_names), self._one_node, self._pnode, self._ncores, self._nmem_req,
            self._nmem_fixed.view(np.uint8), self._nfs, float(_NODE_FS_BYTES), st, self._nsums,
        )  # fmt: skip

    def _node_out(
        self, t: float, delta: np.ndarray, ws_row: np.ndarray, sums: tuple[float, ...] | None = None
    ) -> list[Any]:
        """Each node's series from the pods' increments ``delta`` (cpu, -, rx, tx) since the
        last scrape and their working sets ``ws_row``; moves the node counters on. ``sums``:
        the sums over pods of delta's rows 0, 2, 3 and of ``ws_row``, when already made."""
        n = len(self._node_names)
        st = self._nstate
        assert st is not None
        if self._one_node:  # one node holding every pod (the implicit one): plain sums
            if sums is None:
                used, _, nrx, ntx = np.add.reduce(delta, axis=1).tolist()  # (= sum(axis=1))
                ws = float(np.add.reduce(ws_row))
            else:
                used, nrx, ntx, ws = sums
            (u,), (i,), (t0,), (r,), (x,) = st
            u += used
            i += max(0.0, self._ncores1 * max(t - t0, 0.0) - used)  # idle: the rest
            r += nrx
            x += ntx
            self._nstate = [[u], [i], [t], [r], [x]]
            total_mem = self._nmem1 if self._nmem_fixed1 else max(self._nmem1, ws)
            return [i, u, total_mem, max(0.0, total_mem - ws), r, x, self._nfs1, float(_NODE_FS_BYTES)]
        ok = self._pnode_ok
        idx = self._pnode[ok]
        n_used = np.bincount(idx, weights=delta[0][ok], minlength=n)
        n_rx = np.bincount(idx, weights=delta[2][ok], minlength=n)
        n_tx = np.bincount(idx, weights=delta[3][ok], minlength=n)
        n_ws = np.bincount(idx, weights=ws_row[ok], minlength=n)
        sa = np.array(st)
        sa[0] += n_used
        sa[1] += np.maximum(0.0, self._ncores * np.maximum(t - sa[2], 0.0) - n_used)  # idle: the rest
        sa[2] = t
        sa[3] += n_rx
        sa[4] += n_tx
        self._nstate = sa.tolist()
        n_mem = np.where(self._nmem_fixed, self._nmem_req, np.maximum(self._nmem_req, n_ws))
        out = np.stack(
            [
                sa[1],
                sa[0],
                n_mem,
                np.maximum(0.0, n_mem - n_ws),
                sa[3],
                sa[4],
                self._nfs,
                np.full(n, float(_NODE_FS_BYTES)),
            ],
            axis=1,
        )
        vals: list[Any] = out.ravel().tolist()
        return vals
