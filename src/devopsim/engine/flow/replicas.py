"""The flow plane's replicas and the control interface the platform model drives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from devopsim.engine.request import layout as L
from devopsim.engine.totals import ServiceTotals, retire, service_total, service_totals, services_cpu
from devopsim.model.program import LB_WEIGHTED

if TYPE_CHECKING:
    from devopsim.engine.request.layout import Stats

__all__ = ["FlowReplicas", "grow"]


@dataclass
class _Replicas:
    """Per-slot arrays, with the field names the scraper reads."""

    svc: np.ndarray
    ver: np.ndarray
    alive: np.ndarray
    ready: np.ndarray
    weight: np.ndarray
    busy: np.ndarray
    qlen: np.ndarray
    cpu_area: np.ndarray
    busy_area: np.ndarray
    occ_area: np.ndarray
    cnt: np.ndarray
    lat_sum: np.ndarray
    lat_hist: np.ndarray
    n: np.ndarray
    b: np.ndarray


def grow(arr: np.ndarray, n: int, fill: float = 0) -> np.ndarray:
    out = np.full((n, *arr.shape[1:]), fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class FlowReplicas:
    """Per-slot state and the control interface (add, ready, kill, release, versions)."""

    replicas: _Replicas
    _stats: Stats
    S: int
    warmup: float
    ver_err: np.ndarray
    ver_lat: np.ndarray
    _lmax: int
    _free: list[int]
    _gen: np.ndarray
    _ready: list[list[int]]
    _totals: list[ServiceTotals]
    _topology: int
    _replica_set: int  # changes whenever replicas come, go, or change readiness, weight or version
    lb: np.ndarray
    _lb_own: np.ndarray | None = None  # the services' own policies, once a weight was set

    # --- replicas (the control interface) ------------------------------------------

    def _new_replicas(self, n: int) -> _Replicas:
        return _Replicas(
            svc=np.full(n, -1, dtype=np.int64),
            ver=np.zeros(n, dtype=np.int64),
            alive=np.zeros(n, dtype=np.int64),
            ready=np.zeros(n, dtype=bool),
            weight=np.ones(n),
            busy=np.zeros(n),
            qlen=np.zeros(n),
            cpu_area=np.zeros(n),
            busy_area=np.zeros(n),
            occ_area=np.zeros(n),
            cnt=np.zeros((n, self._lmax, L.N_CODES)),
            lat_sum=np.zeros((n, self._lmax)),
            lat_hist=np.zeros((n, self._lmax, L.N_PB)),
            n=np.zeros(n),
            b=np.zeros(n),
        )

    def _close_open_window(self) -> None:
        """Close the open window (the plane overrides this)."""

    def _changed(self) -> None:
        """The replicas change now.

        The window so far is closed with what it had, and the next tick is computed afresh.
        """
        self._close_open_window()
        self._topology += 1
        self._replica_set += 1

    def add_replica(self, service: int, version: int, now: float, weight: float = 1.0) -> int:
        """Create a replica (not ready yet) and return its slot."""
        self._changed()
        if not self._free:
            n = self.replicas.svc.shape[0]
            rp = self.replicas
            for name in rp.__dataclass_fields__:
                arr = getattr(rp, name)
                setattr(rp, name, grow(arr, 2 * n, -1 if name == "svc" else (1.0 if name == "weight" else 0)))
            self._gen = grow(self._gen, 2 * n)
            self._free = list(range(2 * n - 1, n - 1, -1))
        r = self._free.pop()
        rp = self.replicas
        rp.svc[r], rp.ver[r], rp.alive[r], rp.ready[r], rp.weight[r] = service, version, 1, False, weight
        for arr in (rp.busy, rp.qlen, rp.cpu_area, rp.busy_area, rp.occ_area, rp.n, rp.b):
            arr[r] = 0.0
        rp.cnt[r] = 0.0
        rp.lat_sum[r] = 0.0
        rp.lat_hist[r] = 0.0
        self._gen[r] += 1
        return r

    def set_ready(self, slot: int, ready: bool) -> None:
        """Add the replica to, or remove it from, its service's load-balancing set."""
        svc = int(self.replicas.svc[slot])
        lst = self._ready[svc]
        if ready and slot not in lst:
            self._changed()
            lst.append(slot)
        elif not ready and slot in lst:
            self._changed()
            lst.remove(slot)
        else:
            return  # no change: the ticks and the composition stay valid
        self.replicas.ready[slot] = ready

    def ready_slots(self, service: int) -> list[int]:
        """Slots in the service's load-balancing set."""
        return list(self._ready[service])

    def outstanding(self, slot: int) -> int:
        """Requests the replica holds (rounded expected value)."""
        rp = self.replicas
        return round(float(rp.busy[slot] + rp.qlen[slot]))

    def kill(self, slot: int, now: float) -> None:
        """The replica dies: what it holds fails (counted as unavailable)."""
        self._changed()
        rp = self.replicas
        held = float(rp.n[slot] + rp.b[slot])
        if now >= self.warmup:
            self._stats.sv_err[rp.svc[slot]] += held
        self.set_ready(slot, False)
        rp.n[slot] = rp.b[slot] = rp.busy[slot] = rp.qlen[slot] = 0.0

    def release(self, slot: int, now: float) -> None:
        """The replica is gone; its slot may be reused."""
        self._changed()
        rp = self.replicas
        svc = int(rp.svc[slot])
        self.set_ready(slot, False)
        retire(self._totals[svc], rp.cpu_area[slot], rp.busy_area[slot], rp.occ_area[slot])
        rp.alive[slot] = 0
        self._free.append(slot)

    def set_version(self, version: int, error_rate: float, latency_factor: float) -> None:
        """Change how a version behaves."""
        self._changed()
        if version >= self.ver_err.size:
            self.ver_err = grow(self.ver_err, version + 1)
            self.ver_lat = grow(self.ver_lat, version + 1, 1.0)
        self.ver_err[version] = error_rate
        self.ver_lat[version] = latency_factor

    def set_weight(self, slot: int, weight: float) -> None:
        """Set a replica's load-balancing weight (a weighted route, e.g. a canary's traffic split).

        While a live replica of the service carries a weight other than 1, the service's requests
        are split by weight (weighted random, as a mesh routes between subsets), whatever its
        policy; once every weight is back to 1 the service's own policy applies again.
        """
        self._changed()
        rp = self.replicas
        rp.weight[slot] = weight
        svc = int(rp.svc[slot])
        if self._lb_own is None:
            self._lb_own = self.lb.copy()
            self.lb = self.lb.copy()
        mine = (rp.svc == svc) & (rp.alive == 1)
        self.lb[svc] = LB_WEIGHTED if bool(np.any(rp.weight[mine] != 1.0)) else self._lb_own[svc]

    def slot_generation(self, slot: int) -> int:
        """Increases each time a slot is given to a new replica."""
        return int(self._gen[slot])

    def sync_integrals(self, now: float) -> None:
        """Bring the replicas' integrals up to ``now`` (the ticks keep them current already)."""

    def service_totals(self, now: float) -> list[ServiceTotals]:
        """Each service's integrals so far (core-seconds, worker-seconds, request-seconds)."""
        rp = self.replicas
        return service_totals(self._totals, rp.svc, rp.alive, rp.cpu_area, rp.busy_area, rp.occ_area)

    def service_cpu(self, services: list[int], now: float) -> float:
        """The CPU integrals of ``services`` together (``totals.services_cpu``)."""
        rp = self.replicas
        return services_cpu(self._totals, services, rp.svc, rp.alive, rp.cpu_area)

    def service_total(self, service: int, now: float) -> ServiceTotals:
        """``service_totals(now)[service]``, without the other services' integrals."""
        rp = self.replicas
        return service_total(self._totals, service, rp.svc, rp.alive, rp.cpu_area, rp.busy_area, rp.occ_area)
