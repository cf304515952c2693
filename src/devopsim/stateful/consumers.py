"""The Kafka side of the stateful loop: consumer groups and broker loss.

At every scrape :class:`~devopsim.stateful.loop.StatefulLoop` books what producers
published to each consumed topic and what each member of the consuming service
processed (:meth:`ConsumerGroups._settle`), then plans how fast each member fetches
until the next scrape (:meth:`ConsumerGroups._consume`: consumers pull, at most one
member per partition) and writes kafka_exporter's series. ``broker-loss`` kills
brokers, and producers to the partitions they led wait for new leaders. The loop
gets these as a base class (kept apart so that the loop's module stays readable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.model.datastores import Consumer
from devopsim.scenario.infra import Fault, Kafka, Postgres
from devopsim.stateful.kafka import BROKER_SESSION_TIMEOUT, ConsumerGroup
from devopsim.traffic.patterns import ConstantRate

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.stateful.loop import _Put, _Store

__all__ = ["MAX_POLL_RECORDS", "ConsumerGroups", "member_capacity"]

MAX_POLL_RECORDS = 500  # max.poll.records: what one member fetches and holds while the group has lag


def _seqsum(values: list[float]) -> float:
    """The values added in order from 0.0 (the same rounding as a running sum over pods)."""
    total = 0.0
    for v in values:
        total += v
    return total


@dataclass
class _Group:
    cons: Consumer
    cls: int  # the class of its messages
    group: ConsumerGroup
    workers: float  # messages one member works on at once (the service's concurrency)
    published: dict[str, float] = field(default_factory=dict)  # topic pod -> acknowledged publishes
    settled: float = -1.0
    planned_at: float = -1.0
    produced_since_plan: float = 0.0
    users_at_plan: float = 0.0  # the users' requests that had arrived at the last plan
    per_request: float = 0.0  # publishes to the topic per user request, from the call graph
    rate: float = 0.0
    peak_lag: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)  # member pod -> load-balancing weight set
    members: list[str] = field(default_factory=list)  # member pods, in the group's member order
    processed: dict[str, float] = field(default_factory=dict)  # consumer pod -> messages processed


def _class_stats(sim: Simulation) -> Any:
    """The plane's statistics with the per-class fields current (``class_stats`` where it has it)."""
    return getattr(sim.plane, "class_stats", None) or sim.plane.stats


def member_capacity(sim: Simulation, service: str) -> float:
    """Messages per second one member of ``service``'s group processes at most (nominal).

    Its workers (``concurrency``) each hold a message for the consume steps' work and
    waits plus the queries' work; with fewer cores than workers the CPU work bounds it.
    The fetch rate is corrected from what the plane actually serves (see ``_consume``).
    """
    sc = sim.scenario
    svc = sc.services[service]
    assert svc.consume is not None
    cpu = hold = 0.0
    for step in svc.consume.steps:
        if step.work is not None:
            cpu += step.work.mean * svc.latency_factor
        elif step.wait is not None:
            hold += step.wait.mean
        elif step.query is not None:
            name, _, op = step.query.partition(".")
            ds = sc.datastores.get(name)
            if isinstance(ds, Postgres) and op in ds.operations:
                hold += ds.operations[op].work.mean
    hold += cpu
    cap = svc.concurrency / hold if hold > 0 else math.inf
    if svc.cores < svc.concurrency and cpu > 0:
        cap = min(cap, svc.cores / cpu)
    return cap if math.isfinite(cap) else 1e6


class ConsumerGroups:
    """The consumer groups of a run's Kafka topics, and what a broker loss does to them."""

    groups: dict[str, _Group]  # consumer service -> its group
    # Per (service, ready only): the live pods, their names and slots at one platform generation.
    _live: dict[tuple[str, bool], tuple[int, list[Any], list[str], np.ndarray]]

    def _live_pods(
        self, sim: Simulation, service: str, ready: bool = False
    ) -> tuple[list[Any], list[str], np.ndarray]:
        """A service's live (or live and ready) pods, names and slots (made again when the pods change)."""
        gen = sim.platform.generation
        hit = self._live.get((service, ready))
        if hit is not None and hit[0] == gen:
            return hit[1], hit[2], hit[3]
        w = sim.platform.workloads.get(service)
        pods = [] if w is None else [p for p in w.live() if p.ready or not ready]
        names = [p.name for p in pods]
        slots = np.array([p.slot for p in pods], dtype=np.int64)
        self._live[(service, ready)] = (gen, pods, names, slots)
        return pods, names, slots

    def _kafka(
        self,
        sim: Simulation,
        st: _Store,
        ds: Kafka,
        delta: dict[tuple[str, str], float],
        dt: float,
        t: float,
        put: _Put,
    ) -> None:
        put.append(("kafka_brokers", st.lab, float(sim.platform.workloads[st.name].ready_count())))
        for topic, tp in ds.topics.items():
            put.append(("kafka_topic_partitions", (*st.lab, ("topic", topic)), float(tp.partitions)))
        for g in self.groups.values():
            if g.cons.store != st.name:
                continue
            self._consume(sim, g, t)
            lag = g.group.total_lag
            st.facts["peak_consumer_lag"] = max(st.facts.get("peak_consumer_lag", 0.0), lag)
            g.peak_lag = max(g.peak_lag, lag)
            lab = (("consumergroup", g.cons.group), ("topic", g.cons.topic))
            for p, lp in enumerate(g.group.lag):
                put.append(("kafka_consumergroup_lag", (*lab, ("partition", str(p))), float(lp)))
            put.append(("kafka_consumergroup_lag_sum", lab, lag))
            put.append(
                ("kafka_consumergroup_members", (("consumergroup", g.cons.group),), float(g.group.members))
            )

    # --- consumer groups --------------------------------------------------------------------------

    def _settle(self, sim: Simulation, g: _Group, t: float) -> None:
        """Book what was produced to the topic and processed by each member up to ``t``."""
        if t <= g.settled:
            return
        g.settled = t
        cnt = sim.plane.replicas.cnt
        w = sim.platform.workloads.get(g.cons.store)
        produced = 0.0
        if w is not None:
            k = sim.program.ep_index[f"{g.cons.store}.{g.cons.topic}"]
            local = int(sim.program.arrays["ep_local"][k])
            _, names, slots = self._live_pods(sim, g.cons.store)
            now = cnt[slots, local, 0]  # acknowledged publishes (200)
            before = np.array([g.published.get(n, 0.0) for n in names])
            produced = _seqsum(np.maximum(now - before, 0.0).tolist())
            g.published = dict(zip(names, now.tolist(), strict=True))
        # Processed (200 at the consume endpoint) by each pod of the consumer: members by
        # their index in the group, pods that left with what they finished on their way out.
        local = int(
            sim.program.arrays["ep_local"][sim.program.ep_index[f"{g.cons.service}.{g.cons.endpoint}"]]
        )
        index = {name: i for i, name in enumerate(g.members)}
        mine = np.zeros(len(g.members))
        _, names, slots = self._live_pods(sim, g.cons.service)
        done = cnt[slots, local, 0]
        before = np.array([g.processed.get(n, 0.0) for n in names])
        inc = np.maximum(done - before, 0.0)
        total = _seqsum(inc.tolist())
        at = [(index[n], i) for i, n in enumerate(names) if n in index]  # members are distinct pods
        if at:
            m, i = zip(*at, strict=True)
            mine[list(m)] += inc[list(i)]
        g.processed = dict(zip(names, done.tolist(), strict=True))
        g.group.settle(produced, total, mine)
        g.produced_since_plan += produced

    @staticmethod
    def _held(sim: Simulation, slots: np.ndarray) -> np.ndarray:
        """Messages fetched and not yet processed by each pod: what it holds (busy + queued)."""
        rp = sim.plane.replicas
        return np.asarray(rp.busy[slots] + rp.qlen[slots], dtype=np.float64)

    def _consume(self, sim: Simulation, g: _Group, t: float) -> None:
        """Settle the books and set how fast each member fetches until the next tick.

        Consumers pull. A member (at most one per partition, RangeAssignor) keeps its
        workers busy while its partitions have lag: it fetches at its capacity, corrected so
        that what it has fetched and not yet processed stays at about one poll
        (``max.poll.records``; uncommitted, so in the lag), and never more than its
        partitions' lag plus what producers add to them meanwhile. The plane then serves
        the messages at its own pace (the member's cores, workers, queries). The group's
        class rate is the sum, split over the members by their load-balancing weights.
        After a membership change nobody fetches for ``REBALANCE_PAUSE`` seconds. Fetched
        messages arrive evenly spaced (a worker takes the next when it is done).
        """
        self._settle(sim, g, t)
        ready, names, slots = self._live_pods(sim, g.cons.service, ready=True)
        g.group.set_members(len(ready), t, changed=names != g.members)
        g.members = names
        interval = sim.scenario.monitoring.scrape_interval
        pause = min(max(g.group.paused_until - t, 0.0), interval)
        cap = g.group.capacity * (interval - pause) / interval
        # What producers will add until the next tick: messages per user request (as in the last
        # interval) times the users' expected requests (the traffic pattern knows its steps).
        users = sim.program.user_classes if sim.program.user_classes >= 0 else len(sim.program.classes)
        arrived = float(_class_stats(sim).cls_arr[:users].sum())
        came = arrived - g.users_at_plan
        per_request = g.produced_since_plan / came if came > 0 else g.per_request
        produce = per_request * float(sim.traffic.expected(t, t + interval)[:users].sum()) / interval
        g.produced_since_plan = 0.0
        g.users_at_plan = arrived
        parts = g.group.member_partitions()[: len(ready)]
        lag = g.group.member_lag()[: len(ready)]
        held = self._held(sim, slots)
        poll = max(MAX_POLL_RECORDS, g.workers)
        fetch = np.minimum(
            cap + (poll - held) / interval,
            (lag - held) / interval + produce * parts / g.group.partitions,
        )
        fetch = np.where(parts > 0, np.maximum(fetch, 0.0), 0.0)  # idle members fetch nothing
        rate = float(fetch.sum())
        top = float(fetch.max()) if fetch.size else 0.0
        weights = fetch / top if top > 0 else (parts > 0).astype(np.float64)
        for pod, wgt in zip(ready, np.round(weights, 3), strict=True):  # no churn from rounding noise
            if g.weights.get(pod.name) != float(wgt):
                sim.plane.set_weight(pod.slot, float(wgt))
                g.weights[pod.name] = float(wgt)
        g.planned_at = t
        g.rate = rate
        sim.traffic.set_class_pattern(g.cls, ConstantRate(rate), t, burstiness=0.0)

    def consumer_lag(self, sim: Simulation, service: str, t: float) -> np.ndarray | None:
        """Per-partition lag of ``service``'s consumer group at ``t`` (None: not a consumer)."""
        g = self.groups.get(service)
        if g is None:
            return None
        self._settle(sim, g, t)
        return g.group.lag.copy()

    def consumer_committed(self, service: str) -> np.ndarray | None:
        """Messages ``service``'s group has committed on each partition (None: not a consumer)."""
        g = self.groups.get(service)
        return None if g is None else g.group.committed.copy()

    def consumer_partitions(self, service: str) -> int | None:
        """Partitions of the topic ``service`` consumes (None: not a consumer)."""
        g = self.groups.get(service)
        return None if g is None else g.group.partitions

    def _broker_loss(self, sim: Simulation, st: _Store, ds: Kafka, f: Fault, t: float) -> None:
        """Brokers die; producers to the partitions they led wait for new leaders.

        The controller notices a dead broker after ``broker.session.timeout.ms`` and moves
        leadership of its partitions to in-sync followers; meanwhile producers to those
        partitions (leaders spread evenly: ``lost / brokers`` of them) retry
        (``retries``, ``delivery.timeout.ms`` 120 s) and their sends complete once the new
        leader is known: a publish in the window waits ``uniform(0, timeout)`` with that
        probability (the ``<kafka>-election`` wait every publish calls first).
        """
        w = sim.platform.workloads[f.target]
        alive = w.desired
        lost = min(f.count or 1, alive)
        sim.platform.scale(f.target, alive - lost, t, reason="broker-loss")
        st.facts["leader_election_pause_s"] = BROKER_SESSION_TIMEOUT
        st.facts["brokers_lost"] = st.facts.get("brokers_lost", 0) + lost
        comp = sim.program.datastores
        pcs = comp.election_pcs.get(f.target, []) if comp is not None else []
        share = lost / alive if alive > 0 else 0.0
        if alive - lost > 0 and share > 0:
            for pc in pcs:
                sim.plane.set_call_probability(pc, share)
            sim.clock.schedule(
                t + BROKER_SESSION_TIMEOUT, partial(self._elected, sim, f.target, pcs), priority=1
            )
        if f.duration:
            sim.clock.schedule(t + f.duration, partial(self._brokers_back, sim, f.target), priority=1)

    def _elected(self, sim: Simulation, name: str, pcs: list[int], t: float) -> None:
        for pc in pcs:
            sim.plane.set_call_probability(pc, 0.0)
        sim.log.emit(t, "datastore.leaders_elected", datastore=name)

    def _brokers_back(self, sim: Simulation, name: str, t: float) -> None:
        ds = sim.scenario.datastores[name]
        assert isinstance(ds, Kafka)
        if sim.platform.workloads[name].desired < ds.brokers:
            sim.platform.scale(name, ds.brokers, t, reason="broker back")
