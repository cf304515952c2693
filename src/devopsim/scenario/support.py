"""What this version of devopsim simulates, and what it only accepts.

A scenario may use every field of the format. Fields whose behaviour a later
capability brings are validated and kept, and each use is reported here as
"not simulated yet", with what the run does instead: never silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from devopsim.scenario.checks import walk_steps
from devopsim.scenario.schema import Scenario
from devopsim.scenario.yamlsrc import PathKey, Source, dotted

__all__ = ["Unsupported", "unsupported_features"]

# capability -> the open issue that brings it
CAPABILITY = {
    "flow": "the flow data plane (issue #3)",
    "observability": "PromQL, rules and alerts (issue #4)",
    "control": "the control plane (issue #5)",
    "stateful": "the stateful tier (issue #6)",
    "chaos": "chaos, multi-cloud and cost (issue #7)",
    "security": "the security model",
    "ml": "the AI/ML pipeline (a later issue)",
}


@dataclass(frozen=True)
class Unsupported:
    """One use of a field that is accepted but not simulated yet."""

    file: str
    line: int | None
    path: str
    what: str
    capability: str
    instead: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return (
            f"{where}: {self.path}: not simulated yet: {self.what} "
            f"(comes with {CAPABILITY[self.capability]}); {self.instead}"
        )


def _policy_registered(autoscaler: object) -> bool:
    """Whether a predictive or learned autoscaler names a registered policy (control/policies.py)."""
    from devopsim.control.policies import policy_factory, policy_name
    from devopsim.scenario.controllers import Learned, Predictive

    if not isinstance(autoscaler, Predictive | Learned):
        return False
    return policy_factory(policy_name(autoscaler)) is not None


def _policy_of(autoscaler: object) -> str:
    from devopsim.control.policies import policy_name, registered_policies
    from devopsim.scenario.controllers import Learned, Predictive

    if isinstance(autoscaler, Predictive | Learned):
        known = ", ".join(registered_policies())
        return f" with policy {policy_name(autoscaler)!r} (policies simulated: {known})"
    return ""


def unsupported_features(sc: Scenario, src: Source) -> list[Unsupported]:
    """Every field of ``sc`` whose behaviour is not simulated yet."""
    out: list[Unsupported] = []

    def add(path: PathKey, what: str, cap: str, instead: str) -> None:
        file, line = src.where(path)
        out.append(Unsupported(file, line, dotted(path), what, cap, instead))

    for name, svc in sc.services.items():
        base: PathKey = ("services", name)
        simulated = ("manual", "hpa", "knative", "keda-kafka")
        a = svc.autoscaler
        if a is not None and a.kind not in simulated and not _policy_registered(a):
            add(
                (*base, "autoscaler"),
                f"the {a.kind} autoscaler{_policy_of(a)}",
                "ml",
                "replicas change only through timeline 'scale' entries",
            )
        # Stateful tier: query, cache and publish steps are calls to the datastores' services,
        # consume is a consumer group (stateful/); what a cache miss does besides calls is not.
        step_lists = [((*base, "endpoints", e, "steps"), ep.steps) for e, ep in svc.endpoints.items()]
        if svc.consume is not None:
            step_lists.append(((*base, "consume", "steps"), svc.consume.steps))
        for where, steps in step_lists:
            for step, p in walk_steps(steps, where):
                if step.cache is not None:
                    for j, sub in enumerate(step.cache.on_miss):
                        if sub.kind not in ("call", "query", "publish"):
                            add(
                                (*p, "cache", "onMiss", j),
                                f"a {sub.kind} step on a cache miss",
                                "stateful",
                                "it is skipped (the miss makes only its calls, queries and publishes)",
                            )
    for dname, ds in sc.datastores.items():
        dbase: PathKey = ("datastores", dname)
        if getattr(ds, "eviction", "allkeys-lru") != "allkeys-lru":
            add(
                (*dbase, "eviction"),
                f"the {getattr(ds, 'eviction', '')} eviction policy",
                "stateful",
                "the hit ratio is LRU's (Che's approximation)",
            )
        if getattr(ds, "advisor", False):
            add((*dbase, "advisor"), "query and index advice", "ml", "none is given")
    mon = sc.monitoring
    if mon.detectors:
        add(("monitoring", "detectors"), "anomaly detectors", "ml", "none run")
    if sc.security is not None:
        add(("security",), "the security posture", "security", "it is recorded in the summary only")
    from devopsim.chaos.faults import NOT_SIMULATED  # faults that need models not built yet

    for i, entry in enumerate(sc.timeline):
        if entry.fault is not None and entry.fault.kind in NOT_SIMULATED:
            add(
                ("timeline", i, "fault"),
                f"the {entry.fault.kind} fault",
                "chaos",
                f"nothing breaks: {NOT_SIMULATED[entry.fault.kind]}",
            )
    return out
