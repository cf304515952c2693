"""Datastores as the data planes see them: synthetic services, and the steps that call them.

The data planes know services, replicas and calls. A datastore becomes one or
two synthetic services named after it, which the planes serve like any other:

* PostgreSQL ``db``: service ``db`` is the primary (or every node of a
  multi-master cluster): one replica per node, ``concurrency`` = the node's
  ``max_connections`` with **no queue**, so a connection attempt beyond the
  limit is refused (an error upstream); CPU = the node's cores, shared by the
  backends in their CPU phase; one endpoint per operation whose work is the
  operation's CPU time. Synchronous replication adds a ``wait`` of the
  standby round trip to write operations (the backend holds its connection).
  With ``readsFrom: replicas`` the standbys form service ``db-replicas``
  serving the read operations.
* Redis ``cache``: service ``cache``, one single-threaded replica per shard,
  one endpoint per keyspace (a GET).
* Kafka ``events``: service ``events``, one replica per broker, one endpoint
  per topic (a produce with ``acks=all``); and ``events-election``, whose
  endpoint ``wait`` is a producer waiting for a partition's new leader
  (``uniform(0, broker.session.timeout.ms)``): every publish calls it first,
  with probability 0 until a broker is lost.

Steps compile into calls: ``query: db.read`` calls the endpoint serving
``read``; ``publish: events.orders`` calls ``events.orders``; ``cache: {store,
keyspace, onMiss}`` calls ``store.keyspace`` and then makes each call of
``onMiss`` with probability = the keyspace's miss ratio (Che's approximation at
the scenario's mean lookup rate). The synthetic services are added to the
scenario's ``services`` before the program is compiled (once; idempotent), so
the platform and the planes treat them like the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from devopsim.scenario.dists import Constant, Distribution, Exponential, Uniform
from devopsim.scenario.infra import Kafka, Postgres, Redis
from devopsim.scenario.schema import Endpoint, Scenario, Service, Step
from devopsim.stateful.cache import KeyspaceLoad, che, zipf_groups
from devopsim.stateful.kafka import BROKER_SESSION_TIMEOUT
from devopsim.stateful.postgres import sync_commit_delay

__all__ = [
    "BROKER_ACK_RTT",
    "REDIS_OP_TIME",
    "Consumer",
    "DatastoreCompiler",
    "cache_loads",
    "network_rtt",
    "synthetic_services",
    "visits",
]

REDIS_OP_TIME = 20e-6  # a GET/SET of a small value on one Redis shard (about 50k ops/s per core)
BROKER_WORK = 200e-6  # a broker appending one record batch
BROKER_ACK_RTT = 1e-3  # acks=all: followers fetch and acknowledge, within a region
ELECTION = "@election"  # alias part: ``kafka.@election`` -> the producers' wait for new leaders
ELECTION_WORKERS = 10000  # producers waiting at once (a wait, not a server: no queue)

OpTuple = tuple[int, int, int, float]


def network_rtt(placement_clouds: list[str] | None, regions: list[str] | None = None) -> float:
    """Round trip between two nodes of a datastore: across clouds/regions 70 ms, else 1 ms (zones)."""
    if (placement_clouds and len(placement_clouds) > 1) or (regions and len(regions) > 1):
        return 0.070
    return 0.001


def _svc(
    replicas: int, concurrency: int, cores: float, endpoints: dict[str, list[Step]], qcap: int | None
) -> Service:
    return Service.model_validate(
        {
            "replicas": replicas,
            "concurrency": concurrency,
            "queue": {"capacity": qcap},
            "resources": {"limits": {"cpu": cores}},
            "terminationGracePeriodSeconds": 0,
            "endpoints": {name: {"steps": steps} for name, steps in endpoints.items()},
        }
    )


def _step(kind: str, dist: Distribution) -> Step:
    return Step.model_validate({kind: dist})


def _is_read(name: str, kind: str | None) -> bool:
    return kind == "read" if kind is not None else name == "read" or name.startswith("read")


def _free_name(base: str, taken: set[str], expanded: bool) -> str:
    """The name a synthetic service gets: ``base``, else ``base-x``, ``base-x-x``, ... (the first
    not taken). ``expanded``: the scenario already holds it (compiled before), so it is the last
    of that chain present in ``taken``."""
    name, last = base, None
    while name in taken:
        last = name
        name += "-x"
    return (last or base) if expanded else name


def _postgres(
    name: str, pg: Postgres, taken: set[str], expanded: bool = False
) -> tuple[dict[str, Service], dict[str, str]]:
    ops = dict(pg.operations) or {}
    rtt = network_rtt(
        pg.placement.clouds if pg.placement else None, pg.placement.regions if pg.placement else None
    )
    primary: dict[str, list[Step]] = {}
    readers: dict[str, list[Step]] = {}
    for op, spec in ops.items():
        steps = [_step("work", spec.work)]
        read = _is_read(op, spec.kind)
        if not read and pg.topology == "primary-replica" and pg.replication == "sync":
            steps.append(_step("wait", Constant(sync_commit_delay(rtt))))
        if read and pg.topology == "primary-replica" and pg.reads_from == "replicas":
            readers[op] = steps
        else:
            primary[op] = steps
    if not primary:
        primary["ping"] = [_step("work", Constant(1e-5))]
    nodes = (pg.nodes or 1) if pg.topology == "multi-master" else 1
    cores, conns = pg.resources.cpu, pg.resources.connections
    out = {name: _svc(nodes, conns, cores, primary, 0)}
    alias = {f"{name}.{op}": f"{name}.{op}" for op in primary}
    if readers:
        rname = _free_name(f"{name}-replicas", taken, expanded)
        out[rname] = _svc(pg.replicas, conns, cores, readers, 0)
        alias.update({f"{name}.{op}": f"{rname}.{op}" for op in readers})
    return out, alias


def synthetic_services(sc: Scenario) -> tuple[dict[str, Service], dict[str, str]]:
    """The services standing for ``sc``'s datastores, and ``store.part`` -> ``service.endpoint``."""
    out: dict[str, Service] = {}
    alias: dict[str, str] = {}
    taken = set(sc.services)
    for name, ds in sc.datastores.items():
        # Compiled before (the loader refuses a service named like a datastore): the services
        # are there already; their names, and so the aliases, are worked out again.
        expanded = name in sc.services
        if isinstance(ds, Postgres):
            svcs, al = _postgres(name, ds, taken, expanded)
        elif isinstance(ds, Redis):
            eps = {ks: [_step("work", Exponential(REDIS_OP_TIME))] for ks in ds.keyspaces} or {
                "ping": [_step("work", Exponential(REDIS_OP_TIME))]
            }
            svcs = {name: _svc(ds.shards, 1, 1.0, eps, None)}
            al = {f"{name}.{ks}": f"{name}.{ks}" for ks in eps}
        else:
            assert isinstance(ds, Kafka)
            eps = {}
            for topic, t in ds.topics.items():
                steps = [_step("work", Exponential(BROKER_WORK))]
                if t.replication_factor > 1:
                    steps.append(_step("wait", Constant(BROKER_ACK_RTT)))
                eps[topic] = steps
            eps = eps or {"ping": [_step("work", Exponential(BROKER_WORK))]}
            svcs = {name: _svc(ds.brokers, 64, 4.0, eps, None)}
            al = {f"{name}.{tp}": f"{name}.{tp}" for tp in eps}
            # A producer whose partition lost its leader waits for the next one (a broker loss):
            # a wait with no CPU, made with probability 0 until then (see ``stateful/loop.py``).
            ename = _free_name(f"{name}-election", taken if expanded else taken | set(out), expanded)
            wait = [_step("wait", Uniform(0.0, BROKER_SESSION_TIMEOUT))]
            svcs[ename] = _svc(1, ELECTION_WORKERS, 1.0, {"wait": wait}, None)
            al[f"{name}.{ELECTION}"] = f"{ename}.wait"
        out.update(svcs)
        alias.update(al)
    return out, alias


def _mean_rate(sc: Scenario) -> float:
    t = np.linspace(0.0, sc.duration, 2001)
    return float(np.mean(sc.traffic.rate.rate(t, sc.clock0)))


def visits(sc: Scenario) -> dict[str, float]:
    """Expected lookups of each ``store.keyspace`` and publishes to each ``store.topic`` per user request."""
    out: dict[str, float] = {}

    def walk(steps: list[Step], weight: float, depth: int) -> None:
        if depth > 64:
            return
        for st in steps:
            if st.call is not None:
                p = 1.0 if st.probability is None else st.probability
                s, e = st.call.split(".")
                if s in sc.services and e in sc.services[s].endpoints:
                    walk(sc.services[s].endpoints[e].steps, weight * p, depth + 1)
            elif st.parallel is not None:
                walk(st.parallel, weight, depth)
            elif st.cache is not None:
                key = f"{st.cache.store}.{st.cache.keyspace}"
                out[key] = out.get(key, 0.0) + weight
                walk(st.cache.on_miss, weight * 0.5, depth)  # only the rate matters, roughly
            elif st.publish is not None:
                out[st.publish] = out.get(st.publish, 0.0) + weight

    for cls, share in zip(sc.traffic.classes, sc.traffic.shares(), strict=True):
        for entry in cls.entries:
            s, e = entry.split(".")
            if s in sc.services and e in sc.services[s].endpoints:
                walk(sc.services[s].endpoints[e].steps, share, 0)
    return out


def cache_loads(sc: Scenario, name: str, rate_per_request: float | None = None) -> list[KeyspaceLoad]:
    """Each keyspace of Redis ``name`` as Che's approximation sees it, at the scenario's mean load."""
    ds = sc.datastores[name]
    assert isinstance(ds, Redis)
    per_request = visits(sc)
    mean = _mean_rate(sc) if rate_per_request is None else rate_per_request
    out = []
    for ks_name, ks in ds.keyspaces.items():
        p, c = zipf_groups(ks.keys, ks.popularity.s)
        rate = mean * per_request.get(f"{name}.{ks_name}", 0.0)
        out.append(KeyspaceLoad(p, c, float(ks.size), max(rate, 1e-9), ks.ttl))
    return out


@dataclass(frozen=True)
class Consumer:
    """A service's ``consume`` section as the planes see it.

    The consumer group's messages are requests of a class of their own (``cls``)
    that enter the service's synthetic endpoint (``endpoint``, whose steps are the
    ``consume`` steps). That class has no share of the user traffic: the stateful
    loop sets its rate to what the group fetches (see ``stateful/loop.py``).
    """

    service: str
    endpoint: str
    cls: str
    store: str
    topic: str
    group: str


@dataclass
class DatastoreCompiler:
    """Adds the synthetic services to a scenario and compiles query, cache and publish steps.

    A service with ``consume`` gets an endpoint running the ``consume`` steps, and the
    program a class of its own whose requests are the group's messages (:class:`Consumer`).

    Attributes:
        alias: ``store.part`` -> ``service.endpoint`` of the synthetic service that serves it.
        miss: ``store.keyspace`` -> the miss ratio the compiled program uses.
        miss_pcs: ``store.keyspace`` -> program counters of the calls made on a miss.
        miss_base: program counter of a call made on a miss -> the step's own probability
            (the call's probability is this times the miss ratio).
        consumers: consumer service -> its :class:`Consumer` (endpoint and class).
        election_pcs: Kafka store -> program counters of the publishes' calls to its
            leader-election wait (probability 0 while every partition has its leader).
    """

    alias: dict[str, str] = field(default_factory=dict)
    miss: dict[str, float] = field(default_factory=dict)
    miss_pcs: dict[str, list[int]] = field(default_factory=dict)
    miss_base: dict[int, float] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    election_pcs: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def expand(cls, sc: Scenario) -> DatastoreCompiler:
        """Add ``sc``'s synthetic services to ``sc.services`` (in place, once) and prepare the steps."""
        services, alias = synthetic_services(sc)
        for k, v in services.items():
            sc.services.setdefault(k, v)
        comp = cls(alias=alias)
        for sname, svc in sc.services.items():
            c = svc.consume
            if c is None:
                continue
            store, _, topic = c.topic.partition(".")
            kds = sc.datastores.get(store)
            if not isinstance(kds, Kafka) or topic not in kds.topics:
                continue  # the loader reports a bad topic
            ep = next(
                (n for n, e in svc.endpoints.items() if e.steps is c.steps),  # added by an earlier expand
                None,
            )
            if ep is None:
                ep = "consume"
                while ep in svc.endpoints:
                    ep += "-x"
                svc.endpoints[ep] = Endpoint(steps=c.steps)
            comp.consumers[sname] = Consumer(sname, ep, f"consume:{sname}", store, topic, c.group)
        for name, ds in sc.datastores.items():
            if isinstance(ds, Redis) and ds.keyspaces:
                fit = che(cache_loads(sc, name), float(ds.memory))
                for ks_name, h in zip(ds.keyspaces, fit.keyspace_hit_ratio, strict=True):
                    comp.miss[f"{name}.{ks_name}"] = min(1.0, max(0.0, 1.0 - h))
        return comp

    def target(self, ref: str, ep_index: dict[str, int]) -> int:
        """The endpoint index serving ``store.part``."""
        return ep_index[self.alias.get(ref, ref)]

    def compile(
        self,
        step: Step,
        where: str,
        prog: list[OpTuple],
        new_sampler: object,
        ep_index: dict[str, int],
        op_call: int,
        op_nop: int,
        branch: bool = False,
    ) -> None:
        """Append the opcodes of a query, cache or publish step to ``prog``.

        ``new_sampler(name)`` registers a uniform sampler and returns its index. A
        ``branch`` of a parallel group takes one opcode exactly (a publish there does
        not wait for a new leader).
        """
        if step.publish is not None and not branch:
            store = step.publish.split(".")[0]
            election = self.alias.get(f"{store}.{ELECTION}")
            if election is not None:  # the wait for a new leader, made with probability 0 for now
                assert callable(new_sampler)
                smp = int(new_sampler(f"election/{where}"))
                self.election_pcs.setdefault(store, []).append(len(prog))
                prog.append((op_call, ep_index[election], smp, 0.0))
        if step.query is not None or step.publish is not None:
            ref = step.query if step.query is not None else step.publish
            assert ref is not None
            prog.append((op_call, self.target(ref, ep_index), -1, 1.0))
            return
        assert step.cache is not None
        key = f"{step.cache.store}.{step.cache.keyspace}"
        prog.append((op_call, self.target(key, ep_index), -1, 1.0))
        miss = self.miss.get(key, 1.0)
        for j, sub in enumerate(step.cache.on_miss):
            ref = sub.call or sub.query or sub.publish
            if ref is None:
                prog.append((op_nop, 0, -1, 1.0))  # work/wait/nested steps on a miss: not simulated yet
                continue
            p = 1.0 if sub.probability is None else sub.probability
            assert callable(new_sampler)
            smp = int(new_sampler(f"miss/{where}.{j}"))
            self.miss_pcs.setdefault(key, []).append(len(prog))
            self.miss_base[len(prog)] = p
            tgt = ep_index[ref] if sub.call is not None else self.target(ref, ep_index)
            prog.append((op_call, tgt, smp, p * miss))
        if not math.isfinite(miss):  # pragma: no cover - guarded by the clamp above
            raise AssertionError("miss ratio must be finite")
