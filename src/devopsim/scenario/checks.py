"""Cross-reference checks that need the whole scenario.

Calls to endpoints that exist, queries to datastores that exist, no call
cycles, classes that enter at real endpoints, timeline entries that name real
services, inside the run. Each finding points at the line of the reference.
"""

from __future__ import annotations

from collections.abc import Iterator

from devopsim.errors import Issue
from devopsim.scenario.base import suggest
from devopsim.scenario.infra import Kafka, Postgres, Redis
from devopsim.scenario.schema import Scenario, Step
from devopsim.scenario.units import format_duration
from devopsim.scenario.yamlsrc import PathKey, Source

__all__ = ["Checker", "check_scenario", "scenario_warnings", "walk_steps"]


def walk_steps(steps: list[Step], path: PathKey) -> Iterator[tuple[Step, PathKey]]:
    """Every step, nested ones included, with its path."""
    for i, step in enumerate(steps):
        p = (*path, i)
        yield step, p
        if step.parallel is not None:
            yield from walk_steps(step.parallel, (*p, "parallel"))
        if step.cache is not None:
            yield from walk_steps(step.cache.on_miss, (*p, "cache", "onMiss"))


def _did_you_mean(word: str, choices: list[str]) -> str:
    hint = suggest(word, choices)
    if hint:
        return f" (did you mean {hint!r}?)"
    if choices:
        return f"; known: {', '.join(sorted(choices)[:12])}"
    return ""


class Checker:
    """Collects the problems (and warnings) of one scenario."""

    def __init__(self, sc: Scenario, src: Source) -> None:
        self.sc = sc
        self.src = src
        self.issues: list[Issue] = []
        self.warnings: list[Issue] = []

    def add(self, path: PathKey, message: str) -> None:
        self.issues.append(self.src.issue(path, message))

    def warn(self, path: PathKey, message: str) -> None:
        self.warnings.append(self.src.issue(path, message))

    def endpoint_ref(self, ref: str, path: PathKey) -> bool:
        svc_name, _, ep_name = ref.partition(".")
        svc = self.sc.services.get(svc_name)
        if svc is None:
            self.add(path, f"no service {svc_name!r}{_did_you_mean(svc_name, list(self.sc.services))}")
            return False
        if ep_name not in svc.endpoints:
            self.add(
                path,
                f"service {svc_name!r} has no endpoint {ep_name!r}"
                f"{_did_you_mean(ep_name, list(svc.endpoints))}",
            )
            return False
        return True

    def store_ref(self, name: str, kind: type, path: PathKey) -> object | None:
        store = self.sc.datastores.get(name)
        kinds: dict[type, str] = {Postgres: "postgres", Redis: "redis", Kafka: "kafka"}
        wanted = kinds[kind]
        if store is None:
            known = [n for n, d in self.sc.datastores.items() if isinstance(d, kind)]
            self.add(path, f"no {wanted} datastore {name!r}{_did_you_mean(name, known)}")
            return None
        if not isinstance(store, kind):
            self.add(path, f"datastore {name!r} is {store.kind}, not {wanted}")
            return None
        return store

    def steps(self, steps: list[Step], path: PathKey) -> None:
        for step, p in walk_steps(steps, path):
            if step.call is not None:
                self.endpoint_ref(step.call, (*p, "call"))
            elif step.query is not None:
                db, _, op = step.query.partition(".")
                store = self.store_ref(db, Postgres, (*p, "query"))
                if isinstance(store, Postgres) and store.operations and op not in store.operations:
                    self.add(
                        (*p, "query"),
                        f"datastore {db!r} has no operation {op!r}"
                        f"{_did_you_mean(op, list(store.operations))}",
                    )
            elif step.cache is not None:
                store = self.store_ref(step.cache.store, Redis, (*p, "cache", "store"))
                ks = step.cache.keyspace
                if isinstance(store, Redis) and ks not in store.keyspaces:
                    self.add(
                        (*p, "cache", "keyspace"),
                        f"redis {step.cache.store!r} has no keyspace "
                        f"{ks!r}{_did_you_mean(ks, list(store.keyspaces))}",
                    )
            elif step.publish is not None:
                self.topic_ref(step.publish, (*p, "publish"))

    def topic_ref(self, ref: str, path: PathKey) -> None:
        name, _, topic = ref.partition(".")
        store = self.store_ref(name, Kafka, path)
        if isinstance(store, Kafka) and topic not in store.topics:
            self.add(path, f"kafka {name!r} has no topic {topic!r}{_did_you_mean(topic, list(store.topics))}")

    def cycles(self) -> None:
        # Edges between endpoints, each with the path of the call that makes it.
        edges: dict[str, list[tuple[str, PathKey]]] = {}
        for sname, svc in self.sc.services.items():
            for ename, ep in svc.endpoints.items():
                node = f"{sname}.{ename}"
                out = edges.setdefault(node, [])
                for step, p in walk_steps(ep.steps, ("services", sname, "endpoints", ename, "steps")):
                    if step.call is not None and step.call.partition(".")[0] in self.sc.services:
                        tgt_svc = self.sc.services[step.call.partition(".")[0]]
                        if step.call.partition(".")[2] in tgt_svc.endpoints:
                            out.append((step.call, (*p, "call")))
        state: dict[str, int] = {}
        stack: list[str] = []
        reported: set[frozenset[str]] = set()

        def visit(node: str) -> None:
            state[node] = 1
            stack.append(node)
            for nxt, p in edges.get(node, []):
                if state.get(nxt) == 1:
                    cyc = [*stack[stack.index(nxt) :], nxt]
                    key = frozenset(cyc)
                    if key not in reported:
                        reported.add(key)
                        self.add(
                            p, "call cycle: " + " -> ".join(cyc) + "; a request would call itself forever"
                        )
                elif state.get(nxt) is None:
                    visit(nxt)
            stack.pop()
            state[node] = 2

        for node in sorted(edges):
            if node not in state:
                visit(node)

    def node_pools(self) -> None:
        _node_pools(self)

    def run(self) -> list[Issue]:
        sc = self.sc
        for dname in sc.datastores:
            if dname in sc.services:
                self.add(
                    ("datastores", dname),
                    f"datastore {dname!r} has the name of a service: a datastore runs as pods of its own "
                    "name, so datastores and services need different names",
                )
        for sname, svc in sc.services.items():
            base: PathKey = ("services", sname)
            for ename, ep in svc.endpoints.items():
                self.steps(ep.steps, (*base, "endpoints", ename, "steps"))
            if svc.consume is not None:
                self.topic_ref(svc.consume.topic, (*base, "consume", "topic"))
                self.steps(svc.consume.steps, (*base, "consume", "steps"))
            if svc.weights is not None and len(svc.weights) < svc.replicas:
                self.add(
                    (*base, "weights"),
                    f"one weight per replica: {len(svc.weights)} weights for {svc.replicas} replicas",
                )
            a = svc.autoscaler
            if a is not None and a.kind == "keda-kafka" and svc.consume is None and a.topic is None:
                self.add(
                    (*base, "autoscaler"),
                    "a keda-kafka autoscaler needs the service to 'consume' a topic (or a 'topic')",
                )
            st = svc.strategy
            if st is not None:
                refs = []
                if st.canary is not None:
                    if st.canary.analysis is not None:
                        refs += [
                            (t.template_name, (*base, "strategy", "canary", "analysis"))
                            for t in st.canary.analysis.templates
                        ]
                    for i, cs in enumerate(st.canary.steps or []):
                        if cs.analysis is not None:
                            refs += [
                                (t.template_name, (*base, "strategy", "canary", "steps", i, "analysis"))
                                for t in cs.analysis.templates
                            ]
                if st.blue_green is not None:
                    for an in (st.blue_green.pre_promotion_analysis, st.blue_green.post_promotion_analysis):
                        if an is not None:
                            refs += [
                                (t.template_name, (*base, "strategy", "blueGreen")) for t in an.templates
                            ]
                for name, p in refs:
                    if name not in sc.analysis_templates:
                        self.add(
                            p,
                            f"no analysis template {name!r}"
                            f"{_did_you_mean(name, list(sc.analysis_templates))}",
                        )
            if svc.placement is not None and svc.placement.clouds and sc.platform is not None:
                for c in svc.placement.clouds:
                    if c not in sc.platform.clouds:
                        self.add(
                            (*base, "placement", "clouds"),
                            f"no cloud {c!r} in platform.clouds{_did_you_mean(c, list(sc.platform.clouds))}",
                        )
        self.node_pools()
        for i, cls in enumerate(sc.traffic.classes):
            for e in cls.entries:
                self.endpoint_ref(e, ("traffic", "classes", i, "entry"))
        class_names = [c.name for c in sc.traffic.classes]
        for i, slo in enumerate(sc.slos):
            if slo.class_ is not None and slo.class_ not in class_names:
                self.add(
                    ("slos", i, "class"),
                    f"no request class {slo.class_!r}{_did_you_mean(slo.class_, class_names)}",
                )
        for i, entry in enumerate(sc.timeline):
            tp: PathKey = ("timeline", i)
            if entry.at >= sc.duration:
                self.warn(
                    (*tp, "at"),
                    f"at {format_duration(entry.at)} is after the end of the run "
                    f"(duration {format_duration(sc.duration)}): it never happens",
                )
            for action in ("deploy", "scale", "rollback"):
                obj = getattr(entry, action)
                if obj is not None and obj.service not in sc.services:
                    self.add(
                        (*tp, action, "service"),
                        f"no service {obj.service!r}{_did_you_mean(obj.service, list(sc.services))}",
                    )
            if entry.fault is not None:
                self.fault_target(entry.fault.kind, entry.fault.target, (*tp, "fault", "target"))
        for i, n in enumerate(sc.monitoring.notify):
            if n.kind == "email" and not n.to:
                self.add(("monitoring", "notify", i), "an email notification needs 'to'")
            if n.kind in ("webhook", "alertmanager", "slack") and not n.url:
                self.add(("monitoring", "notify", i), f"a {n.kind} notification needs 'url'")
        self.cycles()
        return self.issues

    def targets(self) -> list[str]:
        sc = self.sc
        names = list(sc.services) + list(sc.datastores)
        if sc.platform is not None:
            for cname, cloud in sc.platform.clouds.items():
                names.append(cname)
                for rname, region in cloud.regions.items():
                    names.append(rname)
                    names.extend(region.zones)
                    names.extend(pool.name for pool in region.node_pools)
        return names

    def fault_target(self, kind: str, target: str, path: PathKey) -> None:
        if kind in ("traffic-spike", "traffic-flood") and (
            target in ("traffic", "*", "all") or target in {c.name for c in self.sc.traffic.classes}
        ):
            return  # traffic faults may also name a request class
        known = self.targets()
        if target not in known and not target.startswith("node-"):
            self.add(
                path,
                f"{kind}: no service, datastore, node pool, zone, region or cloud named "
                f"{target!r}{_did_you_mean(target, known)}",
            )


def _node_pools(checker: Checker) -> None:
    """Node pools: known instance types, zones of their region, count within min/max."""
    plat = checker.sc.platform
    if plat is None:
        return
    from devopsim.model.nodes import instance_types  # instance sizes (package data)

    known = instance_types()
    for cname, cloud in plat.clouds.items():
        for rname, region in cloud.regions.items():
            for k, np_ in enumerate(region.node_pools):
                p: PathKey = ("platform", "clouds", cname, "regions", rname, "nodePools", k)
                if np_.instance_type not in known:
                    checker.add(
                        (*p, "instanceType"),
                        f"unknown instanceType {np_.instance_type!r}"
                        f"{_did_you_mean(np_.instance_type, list(known))}; known: {', '.join(sorted(known))}",
                    )
                bad = [z for z in np_.zones or [] if z not in region.zones]
                if bad:
                    checker.add((*p, "zones"), f"zones {bad} are not zones of region {rname} {region.zones}")
                lo = np_.min_count if np_.min_count is not None else np_.count
                if np_.max_count is not None and not lo <= np_.count <= np_.max_count:
                    checker.add(
                        (*p, "count"),
                        f"count {np_.count} must lie within minCount {lo} and maxCount {np_.max_count}",
                    )


def check_scenario(sc: Scenario, src: Source) -> list[Issue]:
    """All cross-reference problems of ``sc``, located in ``src``."""
    return Checker(sc, src).run()


def scenario_warnings(sc: Scenario, src: Source) -> list[Issue]:
    """Things that are allowed but probably not meant (a timeline entry after the end, say)."""
    checker = Checker(sc, src)
    checker.run()
    return checker.warnings
