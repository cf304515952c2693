"""Providers: what an experiment's activities call, and how real ones map onto the twin.

Provider types:

* ``fault`` (devopsim's own): ``{type: fault, fault: {kind, target, ...}}`` injects a
  twin fault (the timeline's fault fields); the output says what it hit.
* ``prometheus`` (devopsim's own): ``{type: prometheus, query: PROMQL}`` evaluates
  the query over the run's metrics at the activity's time; the output is the value
  of a one-sample result, ``null`` for an empty one, else a list of
  ``{labels, value}``.
* ``python``: ``module`` + ``func`` + ``arguments``, for devopsim's own functions
  (``devopsim.chaos.activities``) and for these real Chaos Toolkit extension
  functions, run as written against the twin:

  - ``chaosk8s.pod.actions.terminate_pods`` / ``delete_pods``: pod-kill of the pods
    the label selector (``app=NAME``, ``service=NAME``, ...) or name pattern picks
    (``qty``, ``all``, ``mode: fixed|percentage``);
  - ``chaosk8s.pod.probes.pods_in_phase``, ``pods_not_in_phase``, ``count_pods``;
  - ``chaosk8s.deployment.actions.scale_deployment``;
    ``chaosk8s.deployment.probes.deployment_available_and_healthy``;
  - ``chaosk8s.node.actions.drain_nodes`` / ``delete_nodes`` and
    ``chaosaws.ec2.actions.stop_instances`` / ``terminate_instances``: node failures
    (an ``az`` argument fails that zone);
  - ``chaosprometheus.probes.query``: the Prometheus HTTP API's JSON answer, so
    ``jsonpath`` tolerances written for a real Prometheus work unchanged.

``http`` and ``process`` providers reach outside the twin and are refused with a
message when the experiment is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devopsim.errors import ChaosError

if TYPE_CHECKING:
    from devopsim.chaos.faults import FaultInjector
    from devopsim.engine.runner import Simulation
    from devopsim.model.platform import Pod

__all__ = ["PYTHON_FUNCTIONS", "Context", "check_provider", "run_provider"]


@dataclass
class Context:
    """What an activity runs against: the simulation, now."""

    sim: Simulation
    injector: FaultInjector
    t: float
    source: str
    engine: Any = None

    def query(self, expr: str) -> Any:
        """Evaluate PromQL at the current time."""
        if self.engine is None:
            from devopsim.observe.promql import Engine

            self.engine = Engine(self.sim.store)
        return self.engine.instant(expr, self.t)


# --- devopsim's own -----------------------------------------------------------------------


def _fault(ctx: Context, fault: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    from devopsim.scenario.infra import Fault

    try:
        f = Fault.model_validate(fault)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ChaosError(f"bad fault {fault!r}: {msgs}") from None
    af = ctx.injector.inject(f, ctx.t, ctx.source)
    out: dict[str, Any] = {"kind": f.kind, "target": f.target, "affected": list(af.affected)}
    if not af.simulated:
        out["simulated"] = False
        out["note"] = af.note
    return out


def _prometheus(ctx: Context, query: str) -> Any:
    res = ctx.query(query)
    if isinstance(res, float):
        return res
    if len(res) == 1:
        return res[0].value
    if not res:
        return None
    return [{"labels": s.labels, "value": s.value} for s in res]


def inject_fault(ctx: Context, kind: str, target: str, **fields: Any) -> dict[str, Any]:
    """devopsim.chaos.activities.inject_fault: a twin fault (the timeline's fields)."""
    return _fault(ctx, {"kind": kind, "target": target, **fields})


def recover(ctx: Context, target: str) -> dict[str, Any]:
    """devopsim.chaos.activities.recover: end every fault aimed at ``target``."""
    return _fault(ctx, {"kind": "recover", "target": target})


def query(ctx: Context, query: str) -> Any:
    """devopsim.chaos.activities.query: PromQL over the run's metrics, now."""
    return _prometheus(ctx, query)


def ready_replicas(ctx: Context, service: str) -> int:
    """devopsim.chaos.activities.ready_replicas: pods of ``service`` ready now."""
    w = ctx.sim.platform.workloads.get(service)
    if w is None:
        raise ChaosError(f"no service {service!r}")
    return w.ready_count()


# --- Kubernetes (chaostoolkit-kubernetes) ---------------------------------------------------------


def _select(ctx: Context, label_selector: str | None, name_pattern: str | None) -> list[Pod]:
    pods = [p for p in ctx.sim.platform.pods()]
    if label_selector:
        for part in str(label_selector).split(","):
            part = part.strip()
            if not part:
                continue
            key, _, value = part.partition("=")
            value = value.lstrip("=").strip()
            key = key.rstrip("!").strip()
            labels_ok = []
            for p in pods:
                labels = p.labels()
                labels.setdefault("app", p.service)
                labels.setdefault("app.kubernetes.io/name", p.service)
                labels.setdefault("name", p.service)
                if labels.get(key) == value:
                    labels_ok.append(p)
            pods = labels_ok
    if name_pattern:
        rx = re.compile(name_pattern)
        pods = [p for p in pods if rx.search(p.name)]
    return pods


def terminate_pods(
    ctx: Context,
    label_selector: str | None = None,
    name_pattern: str | None = None,
    all: bool = False,
    rand: bool = False,
    mode: str = "fixed",
    qty: int = 1,
    grace_period: int = -1,
    ns: str = "default",
    order: str = "alphabetic",
) -> list[str]:
    """chaosk8s.pod.actions.terminate_pods, against the twin's pods."""
    from devopsim.model.platform import PodPhase

    pods = [
        p
        for p in _select(ctx, label_selector, name_pattern)
        if p.phase in (PodPhase.RUNNING, PodPhase.STARTING)
    ]
    if not pods:
        raise ChaosError(f"no pod matches label_selector={label_selector!r} name_pattern={name_pattern!r}")
    if all:
        chosen = pods
    else:
        n = max(1, round(len(pods) * qty / 100)) if mode == "percentage" else int(qty)
        n = min(n, len(pods))
        if rand:
            idx = sorted(ctx.injector.rng.choice(len(pods), size=n, replace=False).tolist())
            chosen = [pods[i] for i in idx]
        else:
            key = (lambda p: p.created) if order == "oldest" else (lambda p: p.name)
            chosen = sorted(pods, key=key)[:n]
    names = [p.name for p in chosen]
    af = ctx.injector.open(
        "pod-kill", label_selector or name_pattern or "pods", ctx.t, ctx.source, affected=names
    )
    for p in chosen:
        ctx.injector.kill_pod(
            p, ctx.t, "terminate_pods", grace=None if grace_period < 0 else float(grace_period)
        )
    ctx.injector.close(af, ctx.t, "instant")
    return names


def pods_in_phase(ctx: Context, label_selector: str, phase: str = "Running", ns: str = "default") -> bool:
    """chaosk8s.pod.probes.pods_in_phase: every selected pod is in ``phase`` (else the probe fails)."""
    pods = _select(ctx, label_selector, None)
    if not pods:
        raise ChaosError(f"no pod matches {label_selector!r}")
    bad = [p.name for p in pods if _phase(p) != phase]
    if bad:
        raise ChaosError(f"pods not in phase {phase}: {', '.join(bad)}")
    return True


def pods_not_in_phase(ctx: Context, label_selector: str, phase: str = "Running", ns: str = "default") -> bool:
    """chaosk8s.pod.probes.pods_not_in_phase."""
    pods = _select(ctx, label_selector, None)
    bad = [p.name for p in pods if _phase(p) == phase]
    if bad:
        raise ChaosError(f"pods in phase {phase}: {', '.join(bad)}")
    return True


def count_pods(ctx: Context, label_selector: str, phase: str | None = None, ns: str = "default") -> int:
    """chaosk8s.pod.probes.count_pods."""
    pods = _select(ctx, label_selector, None)
    return sum(1 for p in pods if phase is None or _phase(p) == phase)


def _phase(p: Pod) -> str:
    # Kubernetes shows a starting pod as Pending until its containers run, a terminating one as Running.
    return {"Starting": "Pending", "Terminating": "Running"}.get(str(p.phase), str(p.phase))


def scale_deployment(ctx: Context, name: str, replicas: int, ns: str = "default") -> dict[str, Any]:
    """chaosk8s.deployment.actions.scale_deployment."""
    if name not in ctx.sim.platform.workloads:
        raise ChaosError(f"no deployment {name!r}")
    ctx.sim.platform.scale(name, int(replicas), ctx.t, reason=ctx.source)
    return {"name": name, "replicas": int(replicas)}


def deployment_available_and_healthy(
    ctx: Context,
    name: str | None = None,
    ns: str = "default",
    label_selector: str | None = None,
    raise_on_unavailable: bool = True,
) -> bool:
    """chaosk8s.deployment.probes.deployment_available_and_healthy: ready == desired."""
    names = [name] if name else sorted({p.service for p in _select(ctx, label_selector, None)})
    ok = True
    for n in names:
        w = ctx.sim.platform.workloads.get(n)
        if w is None:
            raise ChaosError(f"no deployment {n!r}")
        ok &= w.ready_count() >= w.desired
    if not ok and raise_on_unavailable:
        raise ChaosError(f"deployment {', '.join(names)} is not available")
    return ok


def _nodes(ctx: Context, kind: str, names: list[str]) -> dict[str, Any]:
    out = []
    for n in names:
        out.append(_fault(ctx, {"kind": kind, "target": n}))
    return {"faults": out}


def drain_nodes(
    ctx: Context,
    name: str | None = None,
    label_selector: str | None = None,
    count: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """chaosk8s.node.actions.drain_nodes / delete_nodes: the nodes fail."""
    names = [name] if name else _node_names(ctx, label_selector, count)
    return _nodes(ctx, "node-failure", names)


def _node_names(ctx: Context, label_selector: str | None, count: int | None) -> list[str]:
    nodes = sorted({p.node for p in ctx.sim.platform.pods()})
    if label_selector:
        key, _, value = label_selector.partition("=")
        by = {"topology.kubernetes.io/zone": "zone", "topology.kubernetes.io/region": "region"}.get(
            key.strip()
        )
        if by:
            nodes = sorted({p.node for p in ctx.sim.platform.pods() if getattr(p, by) == value.strip()})
        elif key.strip() in ("kubernetes.io/hostname",):
            nodes = [value.strip()]
    if not nodes:
        raise ChaosError(f"no node matches {label_selector!r}")
    return nodes[: count or len(nodes)]


def stop_instances(
    ctx: Context, instance_ids: list[str] | None = None, az: str | None = None, **_: Any
) -> dict[str, Any]:
    """chaosaws.ec2.actions.stop_instances / terminate_instances: instances (or a zone) fail."""
    if az:
        return _nodes(ctx, "zone-outage", [az])
    if not instance_ids:
        raise ChaosError("stop_instances needs instance_ids or az")
    return _nodes(ctx, "node-failure", list(instance_ids))


def prometheus_query(ctx: Context, query: str, when: str | None = None, **_: Any) -> dict[str, Any]:
    """chaosprometheus.probes.query: the Prometheus HTTP API's answer to an instant query."""
    res = ctx.query(query)
    ts = ctx.sim.scenario.start.timestamp() + ctx.t if ctx.sim.scenario.start else ctx.t
    if isinstance(res, float):
        data: dict[str, Any] = {"resultType": "scalar", "result": [ts, _num(res)]}
    else:
        data = {
            "resultType": "vector",
            "result": [{"metric": s.labels, "value": [ts, _num(s.value)]} for s in res],
        }
    return {"status": "success", "data": data}


def _num(v: float) -> str:
    """A sample value as the Prometheus API writes it (Go's shortest float format)."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


Fn = Callable[..., Any]

PYTHON_FUNCTIONS: dict[str, tuple[str, Fn]] = {
    # devopsim's own
    "devopsim.chaos.activities.inject_fault": ("action", inject_fault),
    "devopsim.chaos.activities.recover": ("action", recover),
    "devopsim.chaos.activities.query": ("probe", query),
    "devopsim.chaos.activities.ready_replicas": ("probe", ready_replicas),
    # chaostoolkit-kubernetes
    "chaosk8s.pod.actions.terminate_pods": ("action", terminate_pods),
    "chaosk8s.pod.actions.delete_pods": ("action", terminate_pods),
    "chaosk8s.pod.probes.pods_in_phase": ("probe", pods_in_phase),
    "chaosk8s.pod.probes.pods_not_in_phase": ("probe", pods_not_in_phase),
    "chaosk8s.pod.probes.count_pods": ("probe", count_pods),
    "chaosk8s.deployment.actions.scale_deployment": ("action", scale_deployment),
    "chaosk8s.deployment.probes.deployment_available_and_healthy": (
        "probe",
        deployment_available_and_healthy,
    ),
    "chaosk8s.node.actions.drain_nodes": ("action", drain_nodes),
    "chaosk8s.node.actions.delete_nodes": ("action", drain_nodes),
    # chaostoolkit-aws
    "chaosaws.ec2.actions.stop_instances": ("action", stop_instances),
    "chaosaws.ec2.actions.terminate_instances": ("action", stop_instances),
    # chaostoolkit-prometheus
    "chaosprometheus.probes.query": ("probe", prometheus_query),
}


def check_provider(kind: str, prov: dict[str, Any]) -> str | None:
    """Why a provider cannot run in the twin (``None`` when it can)."""
    ptype = prov.get("type")
    if ptype == "fault":
        if not isinstance(prov.get("fault"), dict):
            return "a fault provider needs 'fault': {kind, target, ...}"
        return None
    if ptype == "prometheus":
        if not isinstance(prov.get("query"), str):
            return "a prometheus provider needs 'query' (PromQL)"
        from devopsim.observe.promql import check

        try:
            check(prov["query"])
        except Exception as exc:  # a PromQLError with the parser's message
            return f"query: {exc}"
        return None
    if ptype == "python":
        key = f"{prov.get('module')}.{prov.get('func')}"
        if key not in PYTHON_FUNCTIONS:
            return f"python provider {key} does not run in the twin; supported: " + ", ".join(
                sorted(PYTHON_FUNCTIONS)
            )
        args = prov.get("arguments") or {}
        if not isinstance(args, dict):
            return "arguments must be a mapping"
        return None
    if ptype in ("http", "process"):
        return (
            f"{ptype} providers reach outside the twin and do not run in it; use a prometheus probe "
            "(PromQL over the twin's metrics) or a fault action"
        )
    return f"unknown provider type {ptype!r}; expected fault, prometheus or python"


def run_provider(ctx: Context, prov: dict[str, Any]) -> Any:
    """Run a provider (already checked) and return its output.

    Raises:
        ChaosError: the activity failed (a fault that cannot be injected, a probe that raises).
    """
    ptype = prov["type"]
    if ptype == "fault":
        return _fault(ctx, prov["fault"])
    if ptype == "prometheus":
        return _prometheus(ctx, prov["query"])
    _, fn = PYTHON_FUNCTIONS[f"{prov['module']}.{prov['func']}"]
    try:
        return fn(ctx, **(prov.get("arguments") or {}))
    except TypeError as exc:
        raise ChaosError(f"{prov['module']}.{prov['func']}: {exc}") from None
