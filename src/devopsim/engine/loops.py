"""Control loops: what acts on the platform at known times while the data plane runs.

A loop is attached once the platform has started: it schedules its own
callbacks on the simulation's control clock (``sim.clock.schedule(t, fn,
priority)``), reads what it needs (the plane, the platform, the metric store)
and acts through the model (``sim.platform``, ``sim.traffic``, ``sim.log``).
When the run ends, ``finish`` adds its part to the summary (``alerts``,
``deployments``, ...). Capabilities register their loop in :func:`default_loops`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry

__all__ = ["Loop", "default_loops"]


class Loop(Protocol):
    """A control loop of one run."""

    name: str

    def attach(self, sim: Simulation) -> None:
        """Schedule the loop's first callbacks on ``sim.clock``."""

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Whether the loop acts on this timeline entry (else the run reports it not simulated)."""

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add what the loop saw and did to the run's summary."""


def default_loops(sim: Simulation) -> list[Loop]:
    """The loops the scenario asks for, in the order they act at equal times."""
    loops: list[Loop] = []
    # Each capability appends its loop here, one line each.
    from devopsim.control.autoscaling import AutoscalingLoop
    from devopsim.control.rollout import RolloutLoop

    loops.append(AutoscalingLoop())
    from devopsim.control.policies import PolicyLoop  # predictive and learned autoscaling policies

    loops.append(PolicyLoop())
    loops.append(RolloutLoop())
    from devopsim.stateful.loop import StatefulLoop  # datastores: lag, failover, cache, Kafka lag

    loops.append(StatefulLoop())
    from devopsim.control.keda import KedaLoop  # KEDA's Kafka scaler (after the consumer groups)

    loops.append(KedaLoop())
    from devopsim.chaos.loop import ChaosLoop  # timeline faults and Chaos Toolkit experiments

    loops.append(ChaosLoop())
    from devopsim.observe.rules.loop import RulesLoop  # alerting and recording rules

    loops.append(RulesLoop())
    from devopsim.cloud.loop import FrontDoorLoop  # GeoDNS/anycast, client geography, failover

    loops.append(FrontDoorLoop())
    from devopsim.control.pods import PodsLoop  # probes under load, OOM checks, version misbehaviour

    loops.append(PodsLoop())
    from devopsim.control.cluster_autoscaler import ClusterAutoscalerLoop  # nodes for Pending pods

    loops.append(ClusterAutoscalerLoop())
    from devopsim.control.knative import KnativeLoop  # the Knative Pod Autoscaler (KPA)

    loops.append(KnativeLoop())
    from devopsim.cost.loop import CostLoop  # prices the run (after the front door's split)

    loops.append(CostLoop())
    from devopsim.incidents.loop import IncidentsLoop  # last: its finish reads the others' results

    loops.append(IncidentsLoop())
    return loops
