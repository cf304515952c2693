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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devopsim.control.hpa_metrics import PodSample
from devopsim.model.platform import PodPhase
from devopsim.observe.scrape import MEMORY_PER_REQUEST

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation

__all__ = ["DEFAULT_BASE_MEMORY", "METRIC_RESOLUTION", "MetricsServer"]

METRIC_RESOLUTION = 15.0  # metrics-server --metric-resolution
DEFAULT_BASE_MEMORY = 64 * 1024**2  # working set of an idle pod with no memory request, bytes


@dataclass
class MetricsServer:
    """The resource metrics API of one run.

    Args:
        resolution: seconds between readings (and the window of each CPU sample).
    """

    resolution: float = METRIC_RESOLUTION
    cpu: dict[str, PodSample] = field(default_factory=dict)
    memory: dict[str, PodSample] = field(default_factory=dict)
    _last: dict[str, tuple[float, float]] = field(default_factory=dict)

    def attach(self, sim: Simulation) -> None:
        """Read the plane every ``resolution`` seconds from t = 0 (before same-time autoscaler syncs)."""
        self._sim = sim
        self._schedule(sim, 0.0)

    def _schedule(self, sim: Simulation, t: float) -> None:
        if t < sim.scenario.duration:
            sim.clock.schedule(t, self.collect, priority=-20)

    def collect(self, t: float) -> None:
        """Take one reading of every live pod at ``t``."""
        sim = self._sim
        plane = sim.plane
        plane.service_totals(t)  # brings the request plane's CPU integrals up to t
        rp = plane.replicas
        cpu: dict[str, PodSample] = {}
        mem: dict[str, PodSample] = {}
        last: dict[str, tuple[float, float]] = {}
        for w in sim.platform.workloads.values():
            req_mem = w.spec.resources.requests.memory
            base = 0.6 * req_mem if req_mem else DEFAULT_BASE_MEMORY
            for pod in w.pods:
                if pod.phase == PodPhase.GONE:
                    continue
                area = float(rp.cpu_area[pod.slot])
                prev = self._last.get(pod.name)
                if prev is not None and t > prev[0]:
                    cpu[pod.name] = PodSample(max(area - prev[1], 0.0) / (t - prev[0]), t, t - prev[0])
                    mem[pod.name] = PodSample(base + MEMORY_PER_REQUEST * float(rp.busy[pod.slot]), t, 0.0)
                last[pod.name] = (t, area)
        self.cpu, self.memory, self._last = cpu, mem, last
        self._schedule(sim, t + self.resolution)
