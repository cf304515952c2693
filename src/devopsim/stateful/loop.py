"""The stateful tier's control loop: lag, failover, cache state, Kafka lag, exporter metrics.

At every scrape the loop reads what the synthetic datastore services served
(from the plane's per-replica counters), carries the time-varying models
forward (replication lag, consumer-group lag, cache warm-up), writes the
series postgres_exporter, redis_exporter and kafka_exporter would expose, and
acts through the model for datastore faults in the timeline:

* ``db-primary-crash`` on a PostgreSQL: the primary's pods die at once; with
  replicas, Patroni's timeline (lease expiry, next HA loop, replay, promotion)
  decides when a replica becomes the primary; asynchronous replication loses
  the writes the standby had not received.
* ``replication-break`` / ``recover``: the WAL stream stops and resumes.
* ``cache-flush`` and ``cache-shard-loss``: the cache empties (or a shard's
  keys go) and warms up again; the miss ratio of the compiled cache steps
  follows on both planes (``plane.set_call_probability``).
* ``broker-loss``: a broker's pods die; its partitions' leaders are re-elected
  after ``broker.session.timeout.ms``, and producers to them wait meanwhile
  (``duration`` or a ``recover`` brings the brokers back).

``finish`` writes ``datastores.<name>`` into the summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.model.datastores import cache_loads, network_rtt, visits
from devopsim.scenario.infra import Fault, Kafka, Postgres, Redis, TimelineEntry
from devopsim.stateful.cache import che, warm_hit_ratio
from devopsim.stateful.consumers import ConsumerGroups, _Group, member_capacity
from devopsim.stateful.kafka import ConsumerGroup
from devopsim.stateful.postgres import (
    REPLAY_COST_FRACTION,
    WAL_BYTES_PER_WRITE,
    ReplicationLink,
    backup_plan,
    failover_timeline,
    patroni_timing,
)

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation

__all__ = ["DEFAULT_DATA_SIZE", "StatefulLoop"]

# The timeline faults this loop simulates when aimed at a datastore (the rest stay "not simulated").
DATASTORE_FAULTS = frozenset(
    {"db-primary-crash", "replication-break", "recover", "cache-flush", "cache-shard-loss", "broker-loss"}
)
CPU_SATURATED = 0.95  # a scrape interval with this share of the database's cores busy: CPU-bound
DEFAULT_DATA_SIZE = 10 * 1024**3  # bytes of a database whose scenario gives no dataSize


_Labels = tuple[tuple[str, str], ...]


class _Put:
    """A tick's samples: their series (metric, labels) and values, in two lists."""

    __slots__ = ("keys", "vals")

    def __init__(self) -> None:
        self.keys: list[tuple[str, _Labels]] = []
        self.vals: list[float] = []

    def append(self, sample: tuple[str, _Labels, float]) -> None:
        """Add one sample (metric, labels, value)."""
        self.keys.append(sample[:2])
        self.vals.append(sample[2])


@dataclass
class _Store:
    name: str
    kind: str
    services: list[str]
    # (svc, ep) -> [its requests' counter at the last tick, its requests since the start]
    totals: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    errors_now: dict[tuple[str, str], float] = field(default_factory=dict)  # (svc, ep) -> errors so far
    pods: _Pods | None = None  # its services' live pods, at one platform generation
    lab: _Labels = ()  # its exporters' labels: ``datastore``
    lab_app: _Labels = ()  # ... and ``datname``
    lab_replica: dict[int, _Labels] = field(default_factory=dict)  # ... and ``replica``, by index
    lag_series: dict[int, tuple[str, _Labels]] = field(default_factory=dict)  # their lag's series
    # The 503s of each pod of ``pods`` (per pod, its local endpoints' rows as _delta gathered
    # them, at _delta's time), or None: _pg_load reads them itself
    refused_rows: list[list[float]] | None = None

    # Its exporters' series (metric, labels), made once: a tick lists the same tuples, so
    # comparing its series with the last tick's is a matter of identity.
    series: dict[str, tuple[str, _Labels]] = field(default_factory=dict)
    redis_series: tuple[tuple[str, _Labels], ...] = ()

    def __post_init__(self) -> None:
        self.facts["errors_now"] = self.errors_now
        self.lab = lab = (("datastore", self.name),)
        self.lab_app = app = (("datastore", self.name), ("datname", "app"))
        for metric, labels in (
            ("pg_up", lab),
            ("pg_stat_database_xact_commit", app),
            ("pg_stat_database_xact_rollback", app),
            ("pg_settings_max_connections", lab),
            ("devopsim_pg_write_conflicts_total", lab),
            ("devopsim_pg_cpu_utilization", lab),
            ("pg_stat_activity_count", (*app, ("state", "active"))),
            ("devopsim_pg_connections_refused_total", lab),
        ):
            self.series[metric] = (metric, labels)
        self.redis_series = tuple(
            (metric, lab)
            for metric in (
                "redis_up",
                "redis_keyspace_hits_total",
                "redis_keyspace_misses_total",
                "redis_memory_max_bytes",
                "redis_memory_used_bytes",
            )
        )


@dataclass
class _Pods:
    """A store's live pods at one platform generation, and its endpoints' rows in ``cnt``."""

    generation: int
    names: list[str]
    slots: np.ndarray
    keys: list[tuple[str, str]]  # (service, endpoint), per endpoint of a service that has a workload
    # Per endpoint, end to end: its service's pods' slots and its local index (the axes of
    # ``cnt``); endpoint k's rows are bounds[k]:bounds[k + 1].
    ep_slots: np.ndarray
    ep_local: np.ndarray
    bounds: list[int]
    ep_flat: np.ndarray  # the same rows of ``cnt`` seen as (replica x local endpoint, codes)
    locals_: int  # local endpoints per replica in ``cnt`` when ``ep_flat`` was made
    services: list[int]  # the store's services' indices in the program
    writes: list[bool] = field(default_factory=list)  # per endpoint of ``keys``: a write (PostgreSQL)
    # PostgreSQL: ``ep_flat`` and then, per pod, its every local endpoint's row (of ``locals_``),
    # gathered together so that the 503s per pod come with the requests per endpoint
    gather: np.ndarray | None = None
    ready: tuple[int, int] = (-1, 0)  # (platform generation, the store's ready pods then)
    # Per endpoint of ``keys``: (key, its ``totals`` entry, its rows' bounds in the gather)
    spans: list[tuple[tuple[str, str], list[float], int, int]] = field(default_factory=list)


@dataclass
class _Gathered:
    """One gather of the plane's counters for the first stores of a tick (see ``_tick``)."""

    generation: int
    locals_: int  # local endpoints per replica in ``cnt`` when ``index`` was made
    index: np.ndarray  # rows of ``cnt`` seen as (replica x local endpoint, codes), end to end
    stores: list[tuple[_Pods, int, int]]  # per store, in order: its pods and its rows lo:hi


class StatefulLoop(ConsumerGroups):
    """Runs the stateful tier's time-varying models alongside the data plane."""

    name = "stateful"

    def __init__(self) -> None:
        self.stores: dict[str, _Store] = {}
        self.links: dict[str, list[ReplicationLink]] = {}
        self.groups: dict[str, _Group] = {}  # consumer service -> its group
        self.flushed: dict[str, float] = {}  # cache -> time it was emptied
        self.t_prev = 0.0
        self._series: dict[tuple[str, _Labels], int] = {}  # series ids, by labels
        self._ids: tuple[list[int], np.ndarray] = ([], np.zeros(0, dtype=np.int64))  # the last tick's
        self._keys: list[tuple[str, _Labels]] = []  # the last tick's series, by (metric, labels)
        # Per (service, ready only): the live pods, their names and slots at one platform generation.
        self._live: dict[tuple[str, bool], tuple[int, list[Any], list[str], np.ndarray]] = {}
        self._gathered: _Gathered | None = None

    # --- set-up --------------------------------------------------------------------------

    def attach(self, sim: Simulation) -> None:
        """Build the models and schedule the scrape-time ticks and the datastore faults."""
        sc = sim.scenario
        comp = sim.program.datastores
        for name, ds in sc.datastores.items():
            svcs = sorted(
                {
                    a.split(".")[0]
                    for k, a in (comp.alias.items() if comp else [])
                    if k.startswith(name + ".") and not k.startswith(name + ".@")  # not the election wait
                }
            )
            st = _Store(name, ds.kind, svcs or [name])
            self.stores[name] = st
            if isinstance(ds, Postgres) and ds.topology == "primary-replica":
                write = [op.work.mean for n, op in ds.operations.items() if (op.kind or n) != "read"]
                replay = 1.0 / (REPLAY_COST_FRACTION * (write[0] if write else 1e-3))
                rtt = network_rtt(ds.placement.clouds if ds.placement else None)
                self.links[name] = [ReplicationLink(rtt / 2, replay) for _ in range(ds.replicas)]
            st.facts.update(failovers=0, writes_lost=0.0, conflicts=0.0, peak_lag_s=0.0, rto_s=None)
        per_user = visits(sc) if comp and comp.consumers else {}
        for sname, cons in (comp.consumers if comp else {}).items():
            kds = sc.datastores[cons.store]
            assert isinstance(kds, Kafka)
            self.groups[sname] = _Group(
                cons,
                sim.program.classes.index(cons.cls),
                ConsumerGroup(kds.topics[cons.topic].partitions, member_capacity(sim, sname)),
                float(sc.services[sname].concurrency),
                per_request=per_user.get(f"{cons.store}.{cons.topic}", 0.0),
            )
        sim.clock.every(sc.monitoring.scrape_interval, sc.duration, partial(self._tick, sim), priority=11)
        for i, entry in enumerate(sc.timeline):
            f = entry.fault
            if self.handles(sim, entry):
                assert f is not None
                sim.clock.schedule(entry.at, partial(self._fault, sim, f, i), priority=1)

    # --- reading the plane -------------------------------------------------------------------

    def _pods(self, sim: Simulation, st: _Store) -> _Pods:
        """The store's live pods (made again only when the platform's pods change)."""
        gen = sim.platform.generation
        if st.pods is not None and st.pods.generation == gen:
            return st.pods
        names: list[str] = []
        slots: list[int] = []
        keys: list[tuple[str, str]] = []
        ep_slots: list[int] = []
        ep_local: list[int] = []
        bounds = [0]
        local = sim.program.arrays["ep_local"]
        for svc in st.services:
            w = sim.platform.workloads.get(svc)
            if w is None:
                continue
            own = [pod.slot for pod in w.live()]
            names += [pod.name for pod in w.live()]
            slots += own
            for k, (s, e) in enumerate(sim.program.endpoints):
                if s == svc:
                    keys.append((s, e))
                    ep_slots += own
                    ep_local += [int(local[k])] * len(own)
                    bounds.append(len(ep_slots))
        ds = sim.scenario.datastores.get(st.name)
        ops = ds.operations if isinstance(ds, Postgres) else None
        n_local = int(sim.plane.replicas.cnt.shape[1])
        ep_flat = np.array(ep_slots, dtype=np.int64) * n_local + np.array(ep_local, dtype=np.int64)
        st.pods = _Pods(
            gen,
            names,
            np.array(slots, dtype=np.int64),
            keys,
            np.array(ep_slots, dtype=np.int64),
            np.array(ep_local, dtype=np.int64),
            bounds,
            ep_flat,
            n_local,
            [sim.program.services.index(x) for x in st.services if x in sim.program.services],
            [] if ops is None else [(ops[e].kind or e) != "read" and e in ops for _, e in keys],
        )
        if ops is not None and slots and n_local <= 2:
            # (a pod's 503s add its local endpoints' in order: what np.add.reduce does with 1 or 2)
            every = np.array([s * n_local + k for s in slots for k in range(n_local)], dtype=np.int64)
            st.pods.gather = np.concatenate((ep_flat, every))
        # (each endpoint's totals entry is made when its pods are first counted, as before)
        totals = st.totals
        st.pods.spans = [
            (key, totals.setdefault(key, [0.0, 0.0]), bounds[k], bounds[k + 1]) for k, key in enumerate(keys)
        ]
        return st.pods

    def _delta(self, sim: Simulation, st: _Store) -> dict[tuple[str, str], float]:
        """Requests per endpoint since the last tick (counter resets folded in).

        One gather of the plane's counters per store (see ``_count``).
        """
        pods = st.pods
        if pods is None or pods.generation != sim.platform.generation:
            pods = self._pods(sim, st)
        if not pods.keys:
            return {}
        cnt = sim.plane.replicas.cnt
        if cnt.shape[1] == pods.locals_:  # (endpoint x pod, codes)
            if pods.gather is not None:
                rows = cnt.reshape(-1, cnt.shape[2]).take(pods.gather, 0).tolist()
            else:
                rows = cnt.reshape(-1, cnt.shape[2]).take(pods.ep_flat, 0).tolist()
            return self._count(st, pods, rows, cnt.shape[2] == 4)
        st.refused_rows = None
        rows = cnt[pods.ep_slots, pods.ep_local].tolist()
        return self._count(st, pods, rows, cnt.shape[2] == 4, gathered=False)

    @staticmethod
    def _count(
        st: _Store, pods: _Pods, rows: list[list[float]], four: bool, gathered: bool = True
    ) -> dict[tuple[str, str], float]:
        """Requests per endpoint since the last tick from the gathered rows of ``pods``
        (``_Pods.gather`` or ``ep_flat``; only the endpoints' rows where not ``gathered``).

        The sums run in Python, in the same order (pods in order, codes in order, from 0.0) as
        numpy sums such short rows.
        """
        if gathered:
            st.refused_rows = rows[pods.bounds[-1] :] if pods.gather is not None else None
        d: dict[tuple[str, str], float] = {}
        errors_now = st.errors_now
        for key, tot, lo, hi in pods.spans:
            ok = err = 0.0
            if four:
                # ((0.0 + x1) + x2) + x3 is (x1 + x2) + x3 but for the sign of a zero, which
                # adding it to err (from 0.0) drops
                for row in rows[lo:hi]:
                    ok += row[0]
                    err += row[1] + row[2] + row[3]
            else:
                for row in rows[lo:hi]:
                    ok += row[0]
                    e = 0.0
                    for x in row[1:]:
                        e += x
                    err += e
            now = ok + err
            prev = tot[0]
            inc = now - prev if now >= prev else now
            tot[0] = now
            d[key] = inc
            tot[1] = tot[1] + inc
            errors_now[key] = err
        return d

    def _gather(self, sim: Simulation) -> _Gathered:
        """The first stores' pods and their rows in one index: every PostgreSQL store up to and
        including the first other store (a PostgreSQL store's tick does not change the plane's
        counters, so the next store's rows read before it are the rows read after it)."""
        gen = sim.platform.generation
        g = self._gathered
        if g is not None and g.generation == gen:
            return g
        datastores = sim.scenario.datastores
        parts: list[np.ndarray] = []
        stores: list[tuple[_Pods, int, int]] = []
        at = 0
        locals_ = -1
        for name, st in self.stores.items():
            pods = self._pods(sim, st)
            if pods.keys:
                if locals_ not in (-1, pods.locals_):
                    break
                locals_ = pods.locals_
                idx = pods.gather if pods.gather is not None else pods.ep_flat
                parts.append(idx)
                stores.append((pods, at, at + idx.size))
                at += idx.size
            else:
                stores.append((pods, at, at))
            if not isinstance(datastores[name], Postgres):
                break
        index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self._gathered = g = _Gathered(gen, locals_, index, stores)
        return g

    # --- the tick ------------------------------------------------------------------------------

    def _tick(self, sim: Simulation, t: float) -> None:
        dt = t - self.t_prev
        self.t_prev = t
        datastores = sim.scenario.datastores
        put = _Put()
        # The first stores' rows of the plane's counters in one gather (see _gather).
        g = self._gather(sim) if self.stores else None
        first: list[tuple[_Pods, int, int]] = []
        rows: list[list[float]] = []
        four = False
        if g is not None:
            cnt = sim.plane.replicas.cnt
            if cnt.shape[1] == g.locals_:
                rows = cnt.reshape(-1, cnt.shape[2]).take(g.index, 0).tolist()
                four = cnt.shape[2] == 4
                first = g.stores
        for i, (name, st) in enumerate(self.stores.items()):
            ds = datastores[name]
            if i < len(first):
                pods, lo, hi = first[i]
                delta = self._count(st, pods, rows[lo:hi], four) if pods.keys else {}
            else:
                delta = self._delta(sim, st)
            if isinstance(ds, Postgres):
                self._postgres(sim, st, ds, delta, dt, t, put)
            elif isinstance(ds, Redis):
                self._redis(sim, st, ds, delta, t, put)
            else:
                self._kafka(sim, st, ds, delta, dt, t, put)
        keys = put.keys
        if keys:
            # The same series as the last tick: the same ids array, the store's fast path.
            if keys != self._keys:
                known = self._series
                ids_l = []
                for key in keys:
                    sid = known.get(key)
                    if sid is None:
                        sid = known[key] = sim.store.series(key[0], dict(key[1]))
                    ids_l.append(sid)
                if ids_l != self._ids[0]:
                    self._ids = (ids_l, np.array(ids_l, dtype=np.int64))
                self._keys = keys
            sim.store.append(t, self._ids[1], np.array(put.vals, dtype=np.float64))

    def _postgres(
        self,
        sim: Simulation,
        st: _Store,
        ds: Postgres,
        delta: dict[tuple[str, str], float],
        dt: float,
        t: float,
        put: _Put,
    ) -> None:
        pods = st.pods
        assert pods is not None  # (made by _delta, in the same tick)
        # (delta lists the endpoints in the order of pods.keys)
        writes = sum([v for v, w in zip(delta.values(), pods.writes, strict=True) if w])
        rate = writes / dt if dt > 0 else 0.0
        facts = st.facts
        facts["writes"] = facts.get("writes", 0.0) + writes
        queries = facts["queries"] = sum([v[1] for v in st.totals.values()])
        lab = st.lab_app
        keys, vals = put.keys, put.vals
        series = st.series
        keys.append(series["pg_up"])
        gen = sim.platform.generation
        if pods.ready[0] != gen:  # (a pod's readiness changes with the platform's generation)
            pods.ready = (gen, sim.platform.workloads[st.name].ready_count())
        vals.append(1.0 if pods.ready[1] > 0 else 0.0)
        self._pg_load(sim, st, ds, dt, lab, put)
        keys.append(series["pg_stat_database_xact_commit"])
        vals.append(float(queries))
        keys.append(series["pg_stat_database_xact_rollback"])
        vals.append(float(sum(facts.get("errors_now", {}).values())))
        keys.append(series["pg_settings_max_connections"])
        vals.append(float(ds.resources.connections))
        links = self.links.get(st.name)
        if links:
            for i, link in enumerate(links):
                link.advance(dt, rate, t)
                lag = link.replay_lag
                facts["peak_lag_s"] = max(facts["peak_lag_s"], lag)
                key = st.lag_series.get(i)
                if key is None:
                    replica = st.lab_replica[i] = (*st.lab, ("replica", f"{st.name}-{i + 1}"))
                    key = st.lag_series[i] = ("pg_replication_lag_seconds", replica)
                keys.append(key)
                vals.append(lag)
        if ds.topology == "multi-master" and (ds.nodes or 1) > 1:
            from devopsim.stateful.cache import zipf_groups

            if "keys" not in facts:
                facts["keys"] = zipf_groups(1_000_000, 0.99)
            p, c = facts["keys"]
            window = network_rtt(ds.placement.clouds if ds.placement else None) / 2
            n = ds.nodes or 1
            lam = rate * p
            cr = float(np.sum(c * lam * -np.expm1(-2.0 * window * lam * (n - 1) / n)))
            facts["conflicts"] += cr * dt
            keys.append(series["devopsim_pg_write_conflicts_total"])
            vals.append(facts["conflicts"])

    def _pg_load(
        self,
        sim: Simulation,
        st: _Store,
        ds: Postgres,
        dt: float,
        lab: _Labels,
        put: _Put,
    ) -> None:
        """Connections in use and refused, and CPU use, of the database's nodes since the last tick.

        A node refuses a connection beyond ``max_connections`` (the backend limit: the
        synthetic service has as many workers and no queue), which the caller sees as an
        error; CPU saturation stretches every query (the cores are shared by the backends)
        until the connections fill up too.
        """
        rp = sim.plane.replicas
        pods = st.pods
        if pods is None or pods.generation != sim.platform.generation:
            pods = self._pods(sim, st)
        facts = st.facts
        refused = in_use = peak = 0.0
        # The last tick's 503s per pod: (its pods' names, their counts).
        prev: tuple[list[str], list[float]] | None = facts.get("refused_at")
        if pods.names:
            # 503s (no connection slot free) per pod: rp.cnt[pods.slots, :, 2].sum(axis=1)
            got, st.refused_rows = st.refused_rows, None
            if got is not None:  # (gathered by _delta in this tick: 1 or 2 local endpoints)
                if pods.locals_ == 1:
                    n = [row[2] for row in got]
                else:
                    n = [x[2] + y[2] for x, y in zip(got[::2], got[1::2], strict=True)]
            else:
                n = np.add.reduce(rp.cnt[:, :, 2].take(pods.slots, 0), 1).tolist()
            if prev is not None and prev[0] is pods.names:  # the same pods, in the same order
                for x, y in zip(n, prev[1], strict=True):
                    inc = x - y
                    refused += inc if inc > 0.0 else 0.0
            else:
                last = dict(zip(*prev, strict=True)) if prev is not None else {}
                for name, x in zip(pods.names, n, strict=True):
                    inc = x - last.get(name, 0.0)
                    refused += inc if inc > 0.0 else 0.0
            busy = rp.busy[pods.slots].tolist()  # (whole numbers on the request plane)
            for b in busy:
                in_use += b
            peak = max(float(max(busy)), 0.0)
            facts["refused_at"] = (pods.names, n)
        else:
            facts["refused_at"] = None
        total_refused = facts["refused"] = facts.get("refused", 0.0) + refused
        facts["peak_connections"] = max(facts.get("peak_connections", 0.0), peak)
        # CPU: core-seconds used over core-seconds the nodes had, since the last tick.
        # (the database's services only; at the tick's time, the plane brought up to it as
        # service_totals would)
        plane, now = sim.plane, self.t_prev
        if pods.services:
            used = plane.service_cpu(pods.services, now)  # (sum of service_total(i, now).cpu)
        else:
            plane.sync_integrals(now)
            used = 0
        cores = float(ds.resources.cpu) * len(pods.names)
        prev = facts.get("cpu_used")
        facts["cpu_used"] = used
        keys, vals, series = put.keys, put.vals, st.series
        if prev is not None and dt > 0 and cores > 0:
            u = max(used - prev, 0.0) / (cores * dt)
            facts["peak_cpu"] = max(facts.get("peak_cpu", 0.0), u)
            keys.append(series["devopsim_pg_cpu_utilization"])
            vals.append(u)
        if lab is st.lab_app:
            keys.append(series["pg_stat_activity_count"])
        else:
            keys.append(("pg_stat_activity_count", (*lab, ("state", "active"))))
        vals.append(in_use)
        keys.append(series["devopsim_pg_connections_refused_total"])
        vals.append(total_refused)

    def _hit_ratios(self, sim: Simulation, st: _Store, ds: Redis, t0: float, t1: float) -> list[float]:
        """Each keyspace's mean hit ratio over ``[t0, t1]`` (warming up after a flush, shards lost)."""
        if "loads" not in st.facts:
            loads = cache_loads(sim.scenario, st.name)
            fit = che(loads, float(ds.memory))
            st.facts.update(loads=loads, fit=fit, hits=0.0, misses=0.0)
        loads, fit = st.facts["loads"], st.facts["fit"]
        lost = st.facts.get("shards_lost", 0)
        flushed = self.flushed.get(st.name)
        steady = flushed is None or t1 <= flushed
        if steady and st.facts.get("steady_lost") == lost:
            return list(st.facts["steady_ratios"])  # no warm-up under way: the last answer holds
        out = []
        for idx, base in enumerate(fit.keyspace_hit_ratio):
            if flushed is None or t1 <= flushed:
                h = float(base)
            else:
                # Midpoint rule over the interval (the warm-up curve is smooth and concave).
                k = 8
                mids = t0 + (np.arange(k) + 0.5) * (t1 - t0) / k
                h = float(
                    np.mean([warm_hit_ratio(loads[idx], fit.characteristic_time, m - flushed) for m in mids])
                )
            out.append(h * (1.0 - lost / ds.shards))
        if steady:
            st.facts.update(steady_lost=lost, steady_ratios=list(out))
        return out

    def _set_miss(self, sim: Simulation, st: _Store, ds: Redis, t: float) -> None:
        """Make the compiled on-miss calls follow the hit ratio of the coming scrape interval."""
        facts = st.facts
        t1 = t + sim.scenario.monitoring.scrape_interval
        applied = facts.get("applied")
        if (
            applied is not None
            and facts.get("steady_lost") == facts.get("shards_lost", 0)
            and applied == facts.get("steady_ratios")
        ):
            flushed = self.flushed.get(st.name)
            if flushed is None or t1 <= flushed:
                return  # steady, and the planes use the steady ratios already (see _hit_ratios)
        comp = sim.program.datastores
        h = self._hit_ratios(sim, st, ds, t, t1)
        if h == st.facts.get("applied"):
            return  # the planes use these ratios already (only this method sets the miss calls)
        st.facts["applied"] = h
        if comp is None:
            return
        p = sim.program.arrays["prog_p"]
        for ks_name, hk in zip(ds.keyspaces, h, strict=True):
            for pc in comp.miss_pcs.get(f"{st.name}.{ks_name}", []):
                want = comp.miss_base.get(pc, 1.0) * (1.0 - hk)
                if abs(float(p[pc]) - want) > 1e-12:
                    sim.plane.set_call_probability(pc, want)

    def _count_lookups(
        self, sim: Simulation, st: _Store, ds: Redis, delta: dict[tuple[str, str], float], t: float
    ) -> None:
        """Lookups since the last count hit at the ratio the planes used for them."""
        facts = st.facts
        applied = facts.get("applied")
        if applied is None:
            applied = self._hit_ratios(sim, st, ds, t, t)
        name = st.name
        hits, misses = facts["hits"], facts["misses"]
        for ks_name, h in zip(ds.keyspaces, applied, strict=True):
            n = delta.get((name, ks_name), 0.0)
            hits += n * h
            misses += n * (1 - h)
        facts["hits"], facts["misses"] = hits, misses

    def _redis(
        self,
        sim: Simulation,
        st: _Store,
        ds: Redis,
        delta: dict[tuple[str, str], float],
        t: float,
        put: _Put,
    ) -> None:
        self._count_lookups(sim, st, ds, delta, t)
        self._set_miss(sim, st, ds, t)
        facts = st.facts
        lost = facts.get("shards_lost", 0)
        memory = float(ds.memory)
        put.keys.extend(st.redis_series)
        put.vals.extend(
            (
                1.0 if lost < ds.shards else 0.0,
                facts["hits"],
                facts["misses"],
                memory,
                min(memory, facts["fit"].used_bytes),
            )
        )

    # --- faults -----------------------------------------------------------------------------------

    def _fault(self, sim: Simulation, f: Fault, index: int, t: float) -> None:
        self.inject(sim, f, t, f"timeline[{index}]")

    def inject(self, sim: Simulation, f: Fault, t: float, source: str) -> None:
        """Apply a datastore fault now (from the timeline, or a chaos experiment's action)."""
        sc = sim.scenario
        ds = sc.datastores[f.target]
        st = self.stores[f.target]
        sim.log.emit(t, "datastore.fault", datastore=f.target, fault=f.kind, source=source)
        if isinstance(ds, Redis) and "loads" in st.facts:
            self._count_lookups(sim, st, ds, self._delta(sim, st), t)  # at the ratio before the fault
        if f.kind == "db-primary-crash" and isinstance(ds, Postgres):
            sim.platform.scale(f.target, 0, t, reason="db-primary-crash")
            links = self.links.get(f.target, [])
            if ds.topology == "primary-replica" and links:
                fo = ds.failover
                timing = patroni_timing(*(fo.ttl, fo.loop_wait, fo.retry_timeout) if fo else ())
                rng = sim.streams.generator(f"stateful/patroni/{f.target}")
                best = min(links, key=lambda lk: lk.received_lag_bytes)
                limit = fo.maximum_lag_on_failover if fo else 1048576.0
                eligible = best.received_lag_bytes <= limit
                tl = failover_timeline(
                    t,
                    timing,
                    float(rng.uniform(0, timing.loop_wait)),
                    float(rng.uniform(0, timing.loop_wait)),
                    best.replay_backlog_seconds,
                    eligible,
                )
                lost = 0.0 if ds.replication == "sync" else best.unshipped
                st.facts["writes_lost"] += lost
                st.facts["rto_s"] = tl.rto if math.isfinite(tl.rto) else None
                if eligible:
                    st.facts["failovers"] += 1
                    sim.clock.schedule(
                        tl.promoted, partial(self._promote, sim, f.target, links.index(best), lost)
                    )
            elif f.duration:
                sim.clock.schedule(t + f.duration, partial(self._restart, sim, f.target))
        elif f.kind == "replication-break":
            for lk in self.links.get(f.target, []):
                lk.break_stream(t)
        elif f.kind == "recover":
            for lk in self.links.get(f.target, []):
                lk.heal(t)
            self.stores[f.target].facts["shards_lost"] = 0
            if isinstance(ds, Kafka):
                self._brokers_back(sim, f.target, t)
        elif f.kind == "cache-flush":
            self.flushed[f.target] = t
        elif f.kind == "cache-shard-loss" and isinstance(ds, Redis):
            st.facts["shards_lost"] = min(ds.shards, st.facts.get("shards_lost", 0) + (f.count or 1))
        elif f.kind == "broker-loss" and isinstance(ds, Kafka):
            self._broker_loss(sim, st, ds, f, t)
        if isinstance(ds, Redis) and f.kind in ("cache-flush", "cache-shard-loss", "recover"):
            self._set_miss(sim, st, ds, t)  # misses jump now, not at the next scrape

    def _promote(self, sim: Simulation, name: str, replica: int, lost: float, t: float) -> None:
        sim.platform.scale(name, 1, t, reason="patroni failover")
        # The old primary rejoins as a replica (pg_rewind), so the read pool keeps its size.
        self.links[name].pop(replica)
        sim.log.emit(t, "datastore.failover", datastore=name, writes_lost=lost)

    def _restart(self, sim: Simulation, name: str, t: float) -> None:
        sim.platform.scale(name, 1, t, reason="primary restarted")

    # --- summary -------------------------------------------------------------------------------------

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Faults aimed at a datastore, of a kind this loop simulates."""
        f = entry.fault
        return f is not None and f.target in sim.scenario.datastores and f.kind in DATASTORE_FAULTS

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Write ``datastores.<name>`` (after a last look at the plane, at the end of the run)."""
        sc = sim.scenario
        if self.t_prev < sc.duration:
            self._tick(sim, sc.duration)
        out: dict[str, Any] = {}
        for name, st in self.stores.items():
            ds = sc.datastores[name]
            total = sum(v[1] for v in st.totals.values())
            errors = sum(st.facts.get("errors_now", {}).values())
            d: dict[str, Any] = {"kind": st.kind, "queries": total, "errors": errors}
            if isinstance(ds, Postgres):
                wal_rate = st.facts.get("writes", 0.0) / max(sc.duration, 1e-9) * WAL_BYTES_PER_WRITE
                refused = st.facts.get("refused", 0.0)
                peak_cpu = st.facts.get("peak_cpu", 0.0)
                causes = [
                    c for c, on in (("cpu", peak_cpu >= CPU_SATURATED), ("connections", refused > 0)) if on
                ]
                d.update(
                    connections={
                        "max": ds.resources.connections,
                        "peak_in_use": st.facts.get("peak_connections", 0.0),
                        "refused": refused,
                    },
                    cpu={"cores": ds.resources.cpu, "peak_utilization": peak_cpu},
                    saturated=causes,
                    failovers=st.facts["failovers"],
                    writes_lost=st.facts["writes_lost"],
                    rto_s=st.facts["rto_s"],
                    peak_replication_lag_s=st.facts["peak_lag_s"],
                    write_conflicts=st.facts["conflicts"],
                )
                if ds.backup is not None:
                    b = ds.backup
                    plan = backup_plan(
                        b.full,
                        b.wal,
                        b.geo_redundant,
                        b.retention,
                        float(ds.data_size or DEFAULT_DATA_SIZE),
                        wal_rate,
                        b.throughput,
                    )
                    d["backup"] = {
                        "rpo_worst_s": plan.rpo_worst if math.isfinite(plan.rpo_worst) else None,
                        "rpo_expected_s": plan.rpo_expected if math.isfinite(plan.rpo_expected) else None,
                        "rto_worst_s": plan.rto_worst if math.isfinite(plan.rto_worst) else None,
                        "notes": list(plan.notes),
                    }
            elif isinstance(ds, Redis):
                hits, misses = st.facts.get("hits", 0.0), st.facts.get("misses", 0.0)
                d.update(hit_ratio=hits / (hits + misses) if hits + misses > 0 else None)
            else:
                groups = {
                    g.cons.group: {
                        "topic": g.cons.topic,
                        "consumer": g.cons.service,
                        "produced": g.group.produced,
                        "committed": g.group.consumed,
                        "lag": g.group.total_lag,
                        "peak_lag": g.peak_lag,
                        "rebalances": g.group.rebalances,
                        "members": g.group.members,
                    }
                    for g in self.groups.values()
                    if g.cons.store == name
                }
                d.update(
                    peak_consumer_lag=st.facts.get("peak_consumer_lag", 0.0),
                    brokers_lost=st.facts.get("brokers_lost", 0),
                    consumer_groups=groups,
                )
            out[name] = d
        if out:
            summary["datastores"] = out
