"""Kubernetes probes: when a container is started, Ready, or killed by its probes.

Semantics (``reference/SEMANTICS.md`` section 2.6, core/v1 defaults): a probe
runs every ``periodSeconds``; its first run is ``initialDelaySeconds`` after the
container starts, so runs fall at ``start + initialDelaySeconds + k x
periodSeconds`` (the kubelet's own phase offset, up to one period, is taken as
zero so timings can be computed by hand).

* **startupProbe**: while it has not succeeded, liveness and readiness do not
  run. It succeeds at its first run once the process is up (``startup`` seconds
  after the container started); after ``failureThreshold`` failed runs the
  container is killed (and restarted with back-off).
* **livenessProbe**: runs from the start (or from the startup probe's success);
  ``failureThreshold`` consecutive failures kill the container. Before the process
  is up every run fails, so a liveness probe without a startup probe kills a
  slow-starting container at ``start + initialDelaySeconds + (failureThreshold - 1)
  x periodSeconds`` when the process is not up by then.
* **readinessProbe**: the pod turns Ready after ``successThreshold`` consecutive
  successes, the first being the first run once the process is up; it leaves the
  load-balancing set after ``failureThreshold`` consecutive failures and comes
  back after ``successThreshold`` successes. Without a readiness probe the pod is
  Ready once the process is up (and, with a startup probe, once that succeeded).

What makes a probe fail in the twin: the process not up yet, the container
crashed (a version with ``crashOnStart`` exits as soon as it is up), or, for
HTTP and gRPC probes on a running pod, overload: the probe request waits in the
replica's queue behind ``queue`` requests while all ``concurrency`` workers are
busy, about ``(queue + 1) x S / concurrency`` with ``S`` the service's mean local
service time (the mean of its endpoints' ``work`` and ``wait`` steps); the run
fails when that exceeds ``timeoutSeconds``. TCP and exec probes do not queue
behind requests and fail only for the first two reasons.

:func:`plan` computes, at container start, when the container becomes Ready or
is killed; :class:`OverloadProbe` evaluates a service's steady pods every period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from devopsim.scenario.controllers import Probe
    from devopsim.scenario.schema import Service, Step

__all__ = ["OverloadProbe", "Plan", "failing", "mean_service_time", "plan", "queues_behind_requests"]

_EPS = 1e-9


@dataclass(frozen=True)
class Plan:
    """What happens to one container, computed when it starts.

    Attributes:
        up: when the process is up (``start + startup``).
        started: when liveness/readiness probes may run (the startup probe's success).
        ready: when the Ready condition turns True, or ``None`` if the container
            exits first.
        exit: when the container is killed or exits, or ``None``.
        reason: why it exits: ``Error`` (it crashed), ``StartupProbe`` or ``Liveness``.
    """

    up: float
    started: float | None
    ready: float | None
    exit: float | None
    reason: str


def _first_run_at_or_after(start: float, probe: Probe, t: float) -> float:
    """The first probe run at or after ``t`` on the grid ``start + delay + k period``."""
    base = start + probe.initial_delay_seconds
    if t <= base:
        return base
    k = math.ceil((t - base) / probe.period_seconds - _EPS)
    return base + k * probe.period_seconds


def plan(spec: Service, start: float, crash: bool = False) -> Plan:
    """When a container of ``spec`` that starts at ``start`` becomes Ready or is killed.

    Args:
        spec: the service (its ``startup`` and probes).
        start: when the container starts (the pod was scheduled, or a restart).
        crash: the version crashes on start (the process exits once up).
    """
    up = start + spec.startup
    exit_at = math.inf
    reason = ""
    if crash:
        exit_at, reason = up, "Error"
    started = start
    sp = spec.startup_probe
    if sp is not None:
        ok = _first_run_at_or_after(start, sp, up)
        kill = start + sp.initial_delay_seconds + (sp.failure_threshold - 1) * sp.period_seconds
        if crash:
            ok = math.inf  # the process never answers
        if kill < ok - _EPS:
            if kill < exit_at:
                exit_at, reason = kill, "StartupProbe"
            started = math.inf
        else:
            started = ok
    lp = spec.liveness_probe
    if lp is not None and math.isfinite(started):
        first = _first_run_at_or_after(start, lp, started)
        kill = first + (lp.failure_threshold - 1) * lp.period_seconds
        healthy_from = math.inf if crash else up
        if kill < healthy_from - _EPS and kill < exit_at:
            exit_at, reason = kill, "Liveness"
    rp = spec.readiness_probe
    ready = max(up, started)
    if rp is not None and math.isfinite(ready):
        ready = _first_run_at_or_after(start, rp, ready) + (rp.success_threshold - 1) * rp.period_seconds
    if crash or ready >= exit_at - _EPS or not math.isfinite(ready):
        ready_at: float | None = None
    else:
        ready_at = ready
    return Plan(
        up=up,
        started=started if math.isfinite(started) else None,
        ready=ready_at,
        exit=exit_at if math.isfinite(exit_at) else None,
        reason=reason,
    )


def queues_behind_requests(probe: Probe) -> bool:
    """Whether the probe is an HTTP or gRPC request (the default handler is HTTP)."""
    return probe.tcp_socket is None and probe.exec is None


def _steps_mean(steps: list[Step]) -> float:
    total = 0.0
    for s in steps:
        if s.work is not None:
            total += s.work.mean
        elif s.wait is not None:
            total += s.wait.mean
    return total


def mean_service_time(spec: Service) -> float:
    """Mean local time a request holds a worker: its endpoints' work and wait steps, averaged."""
    eps = list(spec.endpoints.values())
    if not eps:
        return _steps_mean(spec.consume.steps) if spec.consume is not None else 0.0
    return sum(_steps_mean(e.steps) for e in eps) / len(eps)


class OverloadProbe:
    """One HTTP probe of a service, run every period on its steady pods.

    Args:
        kind: ``readiness`` or ``liveness``.
        probe: the probe spec.
        concurrency: workers per replica.
        service_time: mean local service time, seconds.
    """

    def __init__(self, kind: str, probe: Probe, concurrency: int, service_time: float) -> None:
        self.kind = kind
        self.probe = probe
        self.concurrency = concurrency
        self.service_time = service_time
        self.fails: dict[str, int] = {}  # pod name -> consecutive failures
        self.oks: dict[str, int] = {}  # pod name -> consecutive successes while taken out
        self.down: set[str] = set()  # pods this (readiness) probe took out of the set

    def failing(self, busy: np.ndarray, queued: np.ndarray) -> np.ndarray:
        """Which replicas would time the probe out, given their busy workers and queue."""
        return failing(busy, queued, self.concurrency, self.service_time, self.probe.timeout_seconds)


def failing(
    busy: np.ndarray,
    queued: np.ndarray,
    concurrency: float | np.ndarray,
    service_time: float | np.ndarray,
    timeout: float | np.ndarray,
) -> np.ndarray:
    """Which replicas would time an HTTP probe out (parameters per replica, or one for all).

    The probe waits ``(queued + 1) x service_time / concurrency`` when all workers are busy
    and a queue has formed; it fails when that exceeds ``timeout``.
    """
    wait = (queued + 1.0) * service_time / concurrency
    return (busy >= concurrency - 0.5) & (queued > 0.5) & (wait > timeout)
