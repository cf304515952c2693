"""The Kubernetes HorizontalPodAutoscaler (``autoscaling/v2``): one HPA's reconcile.

A faithful, side-effect-free rendering of kube-controller-manager's
``horizontal.go`` (``reference/SEMANTICS.md`` section 1): the special cases
(scaling disabled at 0 replicas, outside ``[minReplicas, maxReplicas]``), the
maximum over the metrics' proposals (:mod:`devopsim.control.hpa_metrics`), then
either the behavior path (stabilization windows, ``Pods`` / ``Percent`` policies
per ``periodSeconds``, ``selectPolicy`` ``Max`` / ``Min`` / ``Disabled``) or the
legacy path (max over the 5 min downscale window, scale-up capped at
``max(2 x current, 4)``), and the min/max clamp. Recommendation and scale-event
histories live in memory, as in the real controller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from devopsim.control.hpa_metrics import (
    CPU_INITIALIZATION_PERIOD,
    INITIAL_READINESS_DELAY,
    TOLERANCE,
    MetricReading,
    MetricUnavailable,
    PodInfo,
    PodSample,
    Tolerances,
    group_pods,
    replicas_for_metric,
    replicas_for_metrics,
)
from devopsim.scenario.controllers import HPA as HPASpec
from devopsim.scenario.controllers import Behavior as BehaviorSpec
from devopsim.scenario.controllers import ScalingRules as RulesSpec

__all__ = [
    "CPU_INITIALIZATION_PERIOD",
    "DOWNSCALE_STABILIZATION",
    "INITIAL_READINESS_DELAY",
    "SYNC_PERIOD",
    "TOLERANCE",
    "Decision",
    "HPAController",
    "MetricReading",
    "MetricUnavailable",
    "PodInfo",
    "PodSample",
    "Policy",
    "Rules",
    "Tolerances",
    "group_pods",
    "replicas_for_metric",
    "replicas_for_metrics",
    "resolve_behavior",
]

SYNC_PERIOD = 15.0  # --horizontal-pod-autoscaler-sync-period
DOWNSCALE_STABILIZATION = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization

_SCALE_UP_LIMIT_FACTOR = 2.0
_SCALE_UP_LIMIT_MINIMUM = 4.0


# --- behavior -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A ``HPAScalingPolicy``: ``Pods`` or ``Percent``, per ``period`` seconds."""

    type: Literal["Pods", "Percent"]
    value: int
    period: int


@dataclass(frozen=True)
class Rules:
    """``HPAScalingRules`` with the API defaults filled in."""

    window: float
    select: Literal["Max", "Min", "Disabled"]
    policies: tuple[Policy, ...]
    tolerance: float | None = None


_UP_DEFAULT = (Policy("Pods", 4, 15), Policy("Percent", 100, 15))
_DOWN_DEFAULT = (Policy("Percent", 100, 15),)


def _rules(spec: RulesSpec | None, up: bool, downscale_window: float) -> Rules:
    default_policies = _UP_DEFAULT if up else _DOWN_DEFAULT
    default_window = 0.0 if up else downscale_window
    if spec is None:
        return Rules(default_window, "Max", default_policies)
    window = (
        float(spec.stabilization_window_seconds) if spec.stabilization_window_seconds is not None else None
    )
    policies = (
        tuple(Policy(p.type, p.value, p.period_seconds) for p in spec.policies)
        if spec.policies
        else default_policies
    )
    return Rules(default_window if window is None else window, spec.select_policy, policies, spec.tolerance)


def resolve_behavior(
    spec: BehaviorSpec | None, downscale_window: float = DOWNSCALE_STABILIZATION
) -> tuple[Rules, Rules] | None:
    """(scale-up rules, scale-down rules) with defaults, or None for the legacy path."""
    if spec is None:
        return None
    return _rules(spec.scale_up, True, downscale_window), _rules(spec.scale_down, False, downscale_window)


@dataclass(frozen=True)
class Decision:
    """The outcome of one reconcile.

    Attributes:
        desired: the replica count to write (equal to current: no change).
        current: ``scale.spec.replicas`` read at the start.
        proposal: the raw metric proposal (None in the special cases or on error).
        reason: the ``SuccessfulRescale`` reason, a special-case reason, or the error.
        able_to_scale: the AbleToScale condition's reason.
        limited: the ScalingLimited condition's reason.
        active: False when ScalingActive is False (disabled, or metrics failed).
    """

    desired: int
    current: int
    proposal: int | None
    reason: str
    able_to_scale: str = "ReadyForNewScale"
    limited: str = "DesiredWithinRange"
    active: bool = True

    @property
    def rescale(self) -> bool:
        """The HPA writes a new size."""
        return self.desired != self.current


@dataclass
class _Event:
    change: int
    t: float
    outdated: bool = False


@dataclass
class HPAController:
    """One HorizontalPodAutoscaler's reconcile logic and in-memory history.

    Args:
        min_replicas: ``spec.minReplicas`` (default 1).
        max_replicas: ``spec.maxReplicas``.
        behavior: resolved rules (see :func:`resolve_behavior`), None for the legacy path.
        tolerance: the cluster's tolerance flag.
        downscale_window: the downscale-stabilization flag, seconds.
    """

    min_replicas: int
    max_replicas: int
    behavior: tuple[Rules, Rules] | None = None
    tolerance: float = TOLERANCE
    downscale_window: float = DOWNSCALE_STABILIZATION
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD
    initial_readiness_delay: float = INITIAL_READINESS_DELAY
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[_Event] = field(default_factory=list)
    down_events: list[_Event] = field(default_factory=list)
    # (tolerance, behavior, the band they give): made again only when either is set anew.
    _band: tuple[float, tuple[Rules, Rules] | None, Tolerances] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # The decisions made so far, by their fields: a sync that decides what an earlier one did
    # gets the same (immutable) Decision, not a new one.
    _decisions: dict[tuple[int, int, int, str, str, str], Decision] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_spec(cls, spec: HPASpec) -> HPAController:
        """Build from a scenario's ``autoscaler: {kind: hpa, ...}`` section."""
        return cls(spec.min_replicas, spec.max_replicas, resolve_behavior(spec.behavior))

    def tolerances(self) -> Tolerances:
        """The band in force: per-direction tolerances where the behavior sets them."""
        band = self._band
        if band is not None and band[0] == self.tolerance and band[1] is self.behavior:
            return band[2]
        if self.behavior is None:
            tol = Tolerances(self.tolerance, self.tolerance)
        else:
            up, down = self.behavior
            tol = Tolerances(
                down=self.tolerance if down.tolerance is None else down.tolerance,
                up=self.tolerance if up.tolerance is None else up.tolerance,
            )
        self._band = (self.tolerance, self.behavior, tol)
        return tol

    def reconcile(
        self,
        now: float,
        current: int,
        readings: Sequence[MetricReading],
        pods: Sequence[PodInfo],
        status_replicas: int | None = None,
    ) -> Decision:
        """One sync at ``now``: what ``scale.spec.replicas`` should become.

        Records the recommendation and, when the size changes, the scale event, as
        the real controller does.
        """
        if current == 0 and self.min_replicas != 0:
            return Decision(0, current, None, "ScalingDisabled", active=False)
        if current > self.max_replicas:
            d = Decision(
                self.max_replicas, current, None, "Current number of replicas above Spec.MaxReplicas"
            )
        elif current < self.min_replicas:
            d = Decision(
                self.min_replicas, current, None, "Current number of replicas below Spec.MinReplicas"
            )
        else:
            try:
                proposal, metric = replicas_for_metrics(
                    readings,
                    pods,
                    current,
                    now,
                    self.tolerances(),
                    status_replicas,
                    self.cpu_initialization_period,
                    self.initial_readiness_delay,
                )
            except MetricUnavailable as e:
                return Decision(current, current, None, f"FailedGetMetrics: {e}", active=False)
            return self.decide(now, current, proposal, metric)
        if d.rescale:
            self._store_event(now, current, d.desired)
        return d

    def reads_metrics(self, current: int) -> bool:
        """Whether a sync with ``current`` replicas gets as far as the metrics (scaling is not
        disabled and ``current`` is within ``[minReplicas, maxReplicas]``)."""
        if current == 0 and self.min_replicas != 0:
            return False
        return self.min_replicas <= current <= self.max_replicas

    def decide(self, now: float, current: int, proposal: int, metric: str) -> Decision:
        """The rest of a sync once the metrics proposed ``proposal`` (``metric``: the one that
        gave it): stabilization, policies or the legacy limits, the clamp; records the
        recommendation and, when the size changes, the scale event."""
        reason = ""
        if proposal > current:
            reason = f"{metric} above target"
        elif proposal < current:
            reason = "All metrics below target"
        if self.behavior is None:
            desired, able, limited = self._normalize_legacy(now, current, proposal)
        else:
            desired, able, limited = self._normalize_behavior(now, current, proposal)
        key = (desired, current, proposal, reason, able, limited)
        d = self._decisions.get(key)
        if d is None:
            d = self._decisions[key] = Decision(desired, current, proposal, reason, able, limited)
        if desired != current:
            self._store_event(now, current, desired)
        return d

    # --- legacy path -------------------------------------------------------------------

    def _normalize_legacy(self, now: float, current: int, proposal: int) -> tuple[int, str, str]:
        stabilized = proposal
        cutoff = now - self.downscale_window
        old = -1
        for i, (t, rec) in enumerate(self.recommendations):
            if t < cutoff:
                old = i
            elif rec > stabilized:
                stabilized = rec
        if old >= 0:
            self.recommendations[old] = (now, proposal)
        else:
            self.recommendations.append((now, proposal))
        able = "ScaleDownStabilized" if stabilized != proposal else "ReadyForNewScale"
        up_limit = int(max(_SCALE_UP_LIMIT_FACTOR * current, _SCALE_UP_LIMIT_MINIMUM))
        if self.max_replicas > up_limit:
            hi, hi_reason = up_limit, "ScaleUpLimit"
        else:
            hi, hi_reason = self.max_replicas, "TooManyReplicas"
        if stabilized < self.min_replicas:
            return self.min_replicas, able, "TooFewReplicas"
        if stabilized > hi:
            return hi, able, hi_reason
        return stabilized, able, "DesiredWithinRange"

    # --- behavior path ---------------------------------------------------------------------

    def _normalize_behavior(self, now: float, current: int, proposal: int) -> tuple[int, str, str]:
        assert self.behavior is not None
        up, down = self.behavior
        up_cut, down_cut = now - up.window, now - down.window
        old_cut = up_cut if up_cut < down_cut else down_cut  # older than both windows
        up_rec = down_rec = proposal
        old = -1
        for i, (t, rec) in enumerate(self.recommendations):
            if t > up_cut and rec < up_rec:
                up_rec = rec
            if t > down_cut and rec > down_rec:
                down_rec = rec
            if t < old_cut:
                old = i
        stabilized = current
        if stabilized < up_rec:
            stabilized = up_rec
        if stabilized > down_rec:
            stabilized = down_rec
        if old >= 0:
            self.recommendations[old] = (now, proposal)
        else:
            self.recommendations.append((now, proposal))
        if stabilized < proposal:
            able = "ScaleUpStabilized"
        elif stabilized > proposal:
            able = "ScaleDownStabilized"
        else:
            able = "ReadyForNewScale"
        if stabilized > current:
            limit = max(self._up_limit(now, current, up), current)
            if self.max_replicas > limit:
                hi, reason = limit, "ScaleUpLimit"
            else:
                hi, reason = self.max_replicas, "TooManyReplicas"
            if stabilized > hi:
                return hi, able, reason
        elif stabilized < current:
            limit = min(self._down_limit(now, current, down), current)
            if self.min_replicas < limit:
                lo, reason = limit, "ScaleDownLimit"
            else:
                lo, reason = self.min_replicas, "TooFewReplicas"
            if stabilized < lo:
                return lo, able, reason
        return stabilized, able, "DesiredWithinRange"

    @staticmethod
    def _changed(events: list[_Event], now: float, period: float) -> int:
        cutoff = now - period
        return sum(e.change for e in events if e.t > cutoff)

    def _period_start(self, now: float, current: int, period: float) -> int:
        return (
            current
            - self._changed(self.up_events, now, period)
            + self._changed(self.down_events, now, period)
        )

    def _up_limit(self, now: float, current: int, rules: Rules) -> int:
        if rules.select == "Disabled":
            return current
        out: int | None = None
        for p in rules.policies:
            start = self._period_start(now, current, p.period)
            proposed = start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100))
            if out is None:
                out = proposed
            else:
                out = max(out, proposed) if rules.select == "Max" else min(out, proposed)
        return current if out is None else out

    def _down_limit(self, now: float, current: int, rules: Rules) -> int:
        if rules.select == "Disabled":
            return current
        out: int | None = None
        for p in rules.policies:
            start = self._period_start(now, current, p.period)
            proposed = start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100))
            if out is None:
                out = proposed
            else:
                out = min(out, proposed) if rules.select == "Max" else max(out, proposed)
        return current if out is None else out

    def _store_event(self, now: float, prev: int, new: int) -> None:
        if self.behavior is None:
            return
        up, down = self.behavior
        rules, events, change = (
            (up, self.up_events, new - prev) if new > prev else (down, self.down_events, prev - new)
        )
        longest = max((p.period for p in rules.policies), default=0)
        for e in events:
            if e.t < now - longest:
                e.outdated = True
        for i, e in enumerate(events):
            if e.outdated:
                events[i] = _Event(change, now)
                return
        events.append(_Event(change, now))
