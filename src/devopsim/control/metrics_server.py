"""Per-pod resource metrics as metrics-server serves them to autoscalers.

Every ``resolution`` seconds (metrics-server's ``--metric-resolution``, 15 s by
default) it reads each pod's cumulative CPU seconds from the data plane
(cAdvisor's ``container_cpu_usage_seconds_total``) and reports the usage rate
over the last interval, stamped with the interval's end; a pod needs two
readings before it has a sample, so a pod created less than one resolution
ago has no metric yet (the HPA counts it as *missing*). Memory is the working
set at the reading (the same model as the scraped
``container_memory_working_set_bytes``). An autoscaler that syncs reads the
latest samples, so what it sees lags the data plane by up to one resolution,
as in a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.control.hpa_metrics import AlignedSamples, PodInfo, PodSample
from devopsim.model.platform import PodPhase
from devopsim.observe.scrape import MEMORY_PER_REQUEST

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation

__all__ = ["DEFAULT_BASE_MEMORY", "METRIC_RESOLUTION", "MetricsServer", "PodSamples"]

METRIC_RESOLUTION = 15.0  # metrics-server --metric-resolution
DEFAULT_BASE_MEMORY = 64 * 1024**2  # working set of an idle pod with no memory request, bytes

_EMPTY = np.zeros(0, dtype=np.int64)


class PodSamples(Mapping[str, PodSample]):
    """Pods' samples of one reading, keyed by pod name, made on demand from the reading's arrays.

    Args:
        pos: pod name -> row in ``values`` (the pods this view covers).
        names: every row's pod name.
        rows: the covered rows that have a sample, in pod order.
        values: each row's value.
        has: whether each row has a sample.
        timestamp: the reading's time.
        window: the samples' window, seconds.
    """

    __slots__ = ("_has", "_names", "_pos", "_rows", "_t", "_values", "_window")

    def __init__(
        self,
        pos: Mapping[str, int],
        names: Sequence[str],
        rows: np.ndarray,
        values: np.ndarray,
        has: np.ndarray,
        timestamp: float,
        window: float,
    ) -> None:
        self._pos, self._names, self._rows = pos, names, rows
        self._values, self._has, self._t, self._window = values, has, timestamp, window

    def __getitem__(self, name: str) -> PodSample:
        i = self._pos[name]
        if not self._has[i]:
            raise KeyError(name)
        return PodSample(float(self._values[i]), self._t, self._window)

    def __iter__(self) -> Iterator[str]:
        names = self._names
        return (names[i] for i in self._rows.tolist())

    def __len__(self) -> int:
        return int(self._rows.size)


@dataclass
class _Index:
    """The live pods at one platform generation: names, slots, idle memory, rows per service."""

    generation: int
    names: list[str]
    pos: dict[str, int]
    slots: np.ndarray
    base: np.ndarray
    services: dict[str, tuple[dict[str, int], np.ndarray]]
    every: np.ndarray = field(default_factory=lambda: _EMPTY)  # all rows (each read once read twice)
    all_seen: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # all True, shared


_NO_SAMPLES = PodSamples({}, [], _EMPTY, np.zeros(0), np.zeros(0, dtype=bool), 0.0, 0.0)


@dataclass
class MetricsServer:
    """The resource metrics API of one run.

    Readings are taken for every live pod (of the services it serves) at once from the
    plane's per-replica arrays; the list of pods is rebuilt only when the platform's pods
    change (``platform.generation``).

    Args:
        resolution: seconds between readings (and the window of each CPU sample).
    """

    resolution: float = METRIC_RESOLUTION
    _index: _Index | None = None
    _t_last: float | None = None  # time of the last reading
    _area: np.ndarray = field(default_factory=lambda: np.zeros(0))  # CPU seconds at it, per row
    _seen: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # row read then
    _cpu: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _busy: np.ndarray = field(default_factory=lambda: np.zeros(0))  # busy workers at the reading
    _mem_cache: np.ndarray | None = None  # the working sets, once asked for (see _mem)
    _has: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _rows: np.ndarray = field(default_factory=lambda: _EMPTY)  # the rows with a sample
    # The reading's cpu and memory views, made when first asked for (see cpu, memory).
    _cpu_view: PodSamples | None = None
    _mem_view: PodSamples | None = None
    _window: float = 0.0
    _views: dict[tuple[str, str], dict[str, PodSample]] = field(default_factory=dict)
    # Per service: the rows of an autoscaler's pods (by position; -1: not read; None: the
    # service's rows in order, one per pod), for an index and a pods list (see aligned).
    _aligned_rows: dict[str, tuple[_Index, Sequence[PodInfo], int, int, list[int] | None, dict[Any, Any]]] = (
        field(default_factory=dict)
    )

    def attach(self, sim: Simulation, services: Sequence[str] | None = None) -> None:
        """Read the plane every ``resolution`` seconds from t = 0 (before same-time autoscaler syncs).

        Args:
            sim: the run.
            services: read only these services' pods (the ones an autoscaler reads); None: all.
        """
        self._sim = sim
        self._services = None if services is None else set(services)
        self._schedule(sim, 0.0)

    @property
    def cpu(self) -> Mapping[str, PodSample]:
        """The last reading's CPU samples (cores) of every live pod read twice, by pod name."""
        view = self._cpu_view
        if view is None:
            view = self._cpu_view = self._view(self._cpu, self._window)
        return view

    @property
    def memory(self) -> Mapping[str, PodSample]:
        """The last reading's working sets (bytes) of every live pod read twice, by pod name."""
        view = self._mem_view
        if view is None:
            view = self._mem_view = self._view(self._mem, 0.0)
        return view

    def _view(self, values: np.ndarray, window: float) -> PodSamples:
        idx = self._index
        if idx is None or self._t_last is None:
            return _NO_SAMPLES
        return PodSamples(idx.pos, idx.names, self._rows, values, self._has, self._t_last, window)

    @property
    def _mem(self) -> np.ndarray:
        """The last reading's working sets, per row (worked out from its busy workers when asked)."""
        mem = self._mem_cache
        if mem is None:
            idx = self._index
            base = idx.base if idx is not None else np.zeros(0)
            mem = self._mem_cache = base + MEMORY_PER_REQUEST * self._busy
        return mem

    def _schedule(self, sim: Simulation, t: float) -> None:
        if t < sim.scenario.duration:
            sim.clock.schedule(t, self.collect, priority=-20)

    def _reindex(self) -> _Index:
        """The live pods now; the last reading's rows follow their pods by name."""
        plat = self._sim.platform
        names: list[str] = []
        slots: list[int] = []
        base: list[float] = []
        services: dict[str, tuple[dict[str, int], np.ndarray]] = {}
        for w in plat.workloads.values():
            if self._services is not None and w.name not in self._services:
                continue
            req_mem = w.spec.resources.requests.memory
            b = 0.6 * req_mem if req_mem else DEFAULT_BASE_MEMORY
            first = len(names)
            own: dict[str, int] = {}
            for pod in w.pods:
                if pod.phase == PodPhase.GONE:
                    continue
                own[pod.name] = len(names)
                names.append(pod.name)
                slots.append(pod.slot)
                base.append(b)
            services[w.name] = (own, np.arange(first, len(names), dtype=np.int64))
        pos = {n: i for i, n in enumerate(names)}
        old = self._index
        area = np.zeros(len(names))
        seen = np.zeros(len(names), dtype=bool)
        if old is not None and self._seen.size:
            for i, n in enumerate(names):
                j = old.pos.get(n)
                if j is not None and self._seen[j]:
                    area[i] = self._area[j]
                    seen[i] = True
        self._area, self._seen = area, seen
        idx = _Index(plat.generation, names, pos, np.array(slots, dtype=np.int64), np.array(base), services)
        idx.every = np.arange(len(names), dtype=np.int64)
        idx.all_seen = np.ones(len(names), dtype=bool)
        self._index = idx
        return idx

    def collect(self, t: float) -> None:
        """Take one reading of every live pod at ``t``."""
        sim = self._sim
        plane = sim.plane
        plane.sync_integrals(t)  # brings the request plane's CPU integrals up to t
        rp = plane.replicas
        idx = self._index
        if idx is None or idx.generation != sim.platform.generation:
            idx = self._reindex()
        area = np.asarray(rp.cpu_area[idx.slots], dtype=np.float64)
        last = self._t_last
        if last is not None and t > last:
            has = self._seen  # (never written to: a new array when the pods change)
            window = t - last
            cpu = np.maximum(area - self._area, 0.0) / window
        else:
            has = np.zeros(area.size, dtype=bool)
            window = 0.0
            cpu = np.zeros(area.size)
        # The working sets are worked out from the busy workers when someone reads them.
        self._busy = np.asarray(rp.busy[idx.slots], dtype=np.float64)
        self._mem_cache = None
        self._rows = idx.every if has is idx.all_seen else np.flatnonzero(has)
        self._cpu_view = self._mem_view = None
        self._cpu, self._has, self._window = cpu, has, window
        if self._views:
            self._views = {}
        self._t_last, self._area = t, area
        self._seen = idx.all_seen
        self._schedule(sim, t + self.resolution)

    def aligned(self, resource: str, service: str, pods: Sequence[PodInfo]) -> AlignedSamples:
        """The last reading's ``cpu`` or ``memory`` samples of ``pods`` (the service's pods as an
        autoscaler sees them), one value per pod in their order: what :meth:`samples` gives for
        each, without a :class:`PodSample` per pod."""
        got = self.aligned_values(resource, service, pods)
        if got is None:
            return AlignedSamples(pods, [None] * len(pods), 0.0, 0.0)
        return AlignedSamples(pods, *got)

    def aligned_values(
        self, resource: str, service: str, pods: Sequence[PodInfo]
    ) -> tuple[list[float | None], float, float, dict[Any, Any]] | None:
        """What :meth:`aligned` holds: (one value per pod, None where it has no sample; the
        reading's time; the samples' window; the memo kept for these pods), or None before the
        first reading or for a service not read (no pod has a sample)."""
        idx = self._index
        t = self._t_last
        if idx is None or t is None or service not in idx.services:
            return None
        hit = self._aligned_rows.get(service)
        if hit is not None and hit[1] is pods and hit[0] is idx:
            _, _, first, end, rel, memo = hit
        else:
            # (the same pods read at another index keep the reader's memo: it holds what the
            # pods alone tell)
            memo = hit[5] if hit is not None and hit[1] is pods else {}
            own, rows = idx.services[service]
            first = int(rows[0]) if rows.size else 0
            end = first + len(own)
            rel = [own[p.name] - first if p.name in own else -1 for p in pods]
            if rel == list(range(len(own))):
                rel = None  # (the pods and the index list the same pods in the same order)
            self._aligned_rows[service] = (idx, pods, first, end, rel, memo)
        values: list[float | None]
        if resource == "cpu":
            values, window = self._cpu[first:end].tolist(), self._window
        else:
            values, window = self._mem[first:end].tolist(), 0.0
        if self._has is not idx.all_seen:
            has = self._has[first:end].tolist()
            at = range(len(pods)) if rel is None else rel
            values = [values[r] if r >= 0 and has[r] else None for r in at]
        elif rel is not None:
            values = [values[r] if r >= 0 else None for r in rel]
        return values, t, window, memo

    def samples(self, resource: str, service: str) -> dict[str, PodSample]:
        """The last reading's ``cpu`` or ``memory`` samples of one service's pods (made once per reading)."""
        key = (resource, service)
        view = self._views.get(key)
        if view is not None:
            return view
        idx = self._index
        view = {}
        if idx is not None and self._t_last is not None and service in idx.services:
            rows = idx.services[service][1]
            rows = rows[self._has[rows]]
            t = self._t_last
            if resource == "cpu":
                vals, window = self._cpu[rows].tolist(), self._window
            else:
                vals, window = self._mem[rows].tolist(), 0.0
            names = idx.names
            for i, v in zip(rows.tolist(), vals, strict=True):
                view[names[i]] = PodSample(v, t, window)
        self._views[key] = view
        return view
