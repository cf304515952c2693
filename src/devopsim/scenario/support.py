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


def unsupported_features(sc: Scenario, src: Source) -> list[Unsupported]:
    """Every field of ``sc`` whose behaviour is not simulated yet."""
    out: list[Unsupported] = []

    def add(path: PathKey, what: str, cap: str, instead: str) -> None:
        file, line = src.where(path)
        out.append(Unsupported(file, line, dotted(path), what, cap, instead))

    if sc.platform is not None:
        add(
            ("platform",),
            "the multi-cloud platform",
            "chaos",
            "pods run on one implicit node pool with no network latency",
        )
    if sc.traffic.clients is not None:
        add(("traffic", "clients"), "client geography", "chaos", "all clients are equally close")
    for name, svc in sc.services.items():
        base: PathKey = ("services", name)
        if svc.autoscaler is not None and svc.autoscaler.kind not in ("manual", "hpa", "knative"):
            add(
                (*base, "autoscaler"),
                f"the {svc.autoscaler.kind} autoscaler",
                "control",
                "replicas change only through timeline 'scale' entries",
            )
        if svc.consume is not None:
            add(
                (*base, "consume"),
                "consuming a Kafka topic",
                "stateful",
                "the consumer group receives no messages",
            )
        for ename, ep in svc.endpoints.items():
            for step, p in walk_steps(ep.steps, (*base, "endpoints", ename, "steps")):
                if step.kind in ("query", "cache", "publish"):
                    instead = {
                        "query": "it takes no time and always succeeds",
                        "cache": "every lookup hits, at no cost",
                        "publish": "it takes no time and always succeeds",
                    }[step.kind]
                    add((*p, step.kind), f"a {step.kind} step", "stateful", instead)
    if sc.datastores:
        add(("datastores",), "datastores", "stateful", "they are not modelled")
    mon = sc.monitoring
    if mon.detectors:
        add(("monitoring", "detectors"), "anomaly detectors", "observability", "none run")
    if sc.security is not None:
        add(("security",), "the security posture", "security", "it is recorded in the summary only")
    for i, entry in enumerate(sc.timeline):
        if entry.action == "fault":
            add(
                ("timeline", i, "fault"),
                f"the {entry.fault.kind} fault" if entry.fault else "a fault",
                "chaos",
                "nothing breaks",
            )
    for i, _ in enumerate(sc.chaos):
        add(("chaos", i), "a chaos experiment", "chaos", "it does not run")
    return out
