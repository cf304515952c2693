"""The HPA's per-metric replica calculation (kube-controller-manager ``replica_calculator.go``).

The proposals over ready pods with the tolerance band, the missing-metric and
not-ready substitutions and their direction guards, the CPU initialization
period and initial readiness delay (``groupPods``), Resource / ContainerResource
/ Pods / Object / External metrics, and the maximum over metrics with the
invalid-metric rule of ``computeReplicasForMetrics``. See
``reference/SEMANTICS.md`` sections 1.3 to 1.5.

Quantities are handled as Kubernetes does: values become milli-units
(``Quantity.MilliValue()``, rounding up) and averages and utilizations use
integer division. Times are simulated seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CPU_INITIALIZATION_PERIOD",
    "INITIAL_READINESS_DELAY",
    "TOLERANCE",
    "AlignedSamples",
    "MetricReading",
    "MetricUnavailable",
    "PodInfo",
    "PodSample",
    "Tolerances",
    "aligned_proposal",
    "group_pods",
    "replicas_for_metric",
    "replicas_for_metrics",
]

TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay

MetricType = Literal["Resource", "Pods", "Object", "External", "ContainerResource"]
TargetType = Literal["Utilization", "AverageValue", "Value"]


class MetricUnavailable(Exception):
    """A metric could not be computed (no pods, no samples, the metrics API failed)."""


_ceil = math.ceil


def _milli(x: float) -> int:
    """``Quantity.MilliValue()``: milli-units, rounded up (after removing float noise).

    That is ``ceil(round(x * 1000, 6))``. Rounding to 6 decimals moves ``x * 1000`` by at
    most 5e-7 (and an ulp), so where the product is more than 1e-6 away from every whole
    number it rounds up to the same whole number without it: the rounding (a decimal
    conversion, most of the cost) is done only for values close to a whole number.
    """
    y = x * 1000.0
    up = _ceil(y)
    if up - y >= 1e-6 and y - up > -0.999999:  # more than 1e-6 from up and from up - 1
        return up
    return _ceil(round(y, 6))


# --- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodInfo:
    """What the HPA reads of one pod of its target.

    Attributes:
        name: the pod's name (keys the samples).
        phase: ``Pending``, ``Running``, ``Succeeded`` or ``Failed``.
        ready: the Ready condition's status.
        deleting: the pod has a deletionTimestamp.
        start: ``status.startTime`` (None: not set).
        ready_since: the Ready condition's lastTransitionTime (None: no Ready condition).
        request: the pod's request of the scaled resource (cores or bytes), summed over
            containers; None when a container has none.
    """

    name: str
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] = "Running"
    ready: bool = True
    deleting: bool = False
    start: float | None = 0.0
    ready_since: float | None = 0.0
    request: float | None = None


@dataclass(frozen=True)
class PodSample:
    """One pod's metric as a metrics API reports it: a value over ``[timestamp - window, timestamp]``."""

    value: float
    timestamp: float = 0.0
    window: float = 15.0


class AlignedSamples(Mapping[str, PodSample]):
    """Samples given in the order of the target's pods: ``pod_values[i]`` is the value of ``pods[i]``
    (None: that pod has no sample), all stamped ``timestamp`` over ``window``.

    A mapping from pod name to :class:`PodSample` like any other samples; passed with the same
    ``pods`` sequence to :func:`replicas_for_metric`, it is read without making a
    :class:`PodSample` per pod (the metrics-server reading of an HPA's own pods).

    ``memo``, when given, is where the replica calculation keeps what it works out from the
    pods alone (which count, their requests): the caller passes the same dict with the same
    ``pods`` at every reading, and a new one with other pods.
    """

    __slots__ = ("_pos", "memo", "pod_values", "pods", "timestamp", "window")

    def __init__(
        self,
        pods: Sequence[PodInfo],
        values: Sequence[float | None],
        timestamp: float,
        window: float,
        memo: dict[Any, Any] | None = None,
    ) -> None:
        if len(values) != len(pods):
            raise ValueError(f"one value per pod expected (got {len(values)} for {len(pods)} pods)")
        self.pods, self.pod_values, self.timestamp, self.window = pods, values, timestamp, window
        self.memo = memo
        self._pos: dict[str, int] | None = None

    def __getitem__(self, name: str) -> PodSample:
        if self._pos is None:
            self._pos = {p.name: i for i, p in enumerate(self.pods)}
        v = self.pod_values[self._pos[name]]
        if v is None:
            raise KeyError(name)
        return PodSample(v, self.timestamp, self.window)

    def __iter__(self) -> Iterator[str]:
        return (p.name for p, v in zip(self.pods, self.pod_values, strict=True) if v is not None)

    def __len__(self) -> int:
        return sum(1 for v in self.pod_values if v is not None)


@dataclass(frozen=True)
class MetricReading:
    """One ``spec.metrics`` entry with what the metrics APIs returned for it.

    Attributes:
        type: the metric source type.
        name: the resource (``cpu``, ``memory``) or the metric's name.
        target_type: ``Utilization``, ``AverageValue`` or ``Value``.
        target: the target: a percent for Utilization, else a quantity.
        samples: per-pod samples (Resource, ContainerResource, Pods).
        value: the object's value, or the sum over matching series (External).
        error: set when the metrics API failed for this metric.
    """

    type: MetricType
    name: str
    target_type: TargetType
    target: float
    samples: Mapping[str, PodSample] | None = None
    value: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Tolerances:
    """The tolerance band: ``1 - down <= ratio <= 1 + up`` changes nothing (both inclusive)."""

    down: float = TOLERANCE
    up: float = TOLERANCE

    def within(self, ratio: float) -> bool:
        """``isWithin``: the ratio is too close to 1 to act on."""
        return (1.0 - self.down) <= ratio <= (1.0 + self.up)


# --- pod grouping (groupPods) ----------------------------------------------------------


def group_pods(
    pods: Sequence[PodInfo],
    samples: Mapping[str, PodSample],
    resource: str | None,
    now: float,
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
    initial_readiness_delay: float = INITIAL_READINESS_DELAY,
) -> tuple[int, set[str], set[str], set[str]]:
    """Split pods as ``groupPods`` does: (ready count, unready, missing, ignored).

    Ignored: deleting or Failed. Unready: Pending, and for CPU only the start-up
    rules. Missing: running pods without a sample. ``resource`` is ``"cpu"`` to apply
    the CPU rules.
    """
    ready_count = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        sample = samples.get(pod.name)
        if sample is None:
            missing.add(pod.name)
            continue
        if resource == "cpu":
            if pod.ready_since is None or pod.start is None:
                is_unready = True
            elif pod.start + cpu_initialization_period > now:
                # Within the initialization period: ignore the sample if the pod is not
                # ready, or if a full metric window has not passed since it became ready.
                is_unready = (not pod.ready) or sample.timestamp < pod.ready_since + sample.window
            else:
                # Past it: ignore only a pod that is not ready and has never been ready.
                is_unready = (not pod.ready) and pod.start + initial_readiness_delay > pod.ready_since
            if is_unready:
                unready.add(pod.name)
                continue
        ready_count += 1
    return ready_count, unready, missing, ignored


# --- per-metric proposals ---------------------------------------------------------------


def _utilization(values: Mapping[str, int], requests: Mapping[str, int]) -> int:
    total = sum(v for k, v in values.items() if k in requests)
    req = sum(requests[k] for k in values if k in requests)
    if req == 0:
        raise MetricUnavailable("no resource requests for the pods with metrics")
    return (total * 100) // req


def _average(values: Mapping[str, int]) -> int:
    return sum(values.values()) // len(values)


def _pod_replicas(
    reading: MetricReading,
    pods: Sequence[PodInfo],
    current: int,
    tol: Tolerances,
    now: float,
    cpu_initialization_period: float,
    initial_readiness_delay: float,
) -> int:
    """Resource and Pods metrics: ``GetResourceReplicas`` / ``calcPlainMetricReplicas``."""
    if not pods:
        raise MetricUnavailable("no pods returned by selector while calculating replica count")
    samples = reading.samples if reading.samples is not None else {}
    if isinstance(samples, AlignedSamples) and samples.pods is pods:
        fast = _aligned_replicas(
            reading, samples, current, tol, now, cpu_initialization_period, initial_readiness_delay
        )
        if fast is not None:
            return fast
    is_resource = reading.type in ("Resource", "ContainerResource")
    resource = reading.name if is_resource else None
    ready_count, unready, missing, ignored = group_pods(
        pods, samples, resource, now, cpu_initialization_period, initial_readiness_delay
    )
    live = {p.name for p in pods}
    metrics = {
        k: _milli(s.value) for k, s in samples.items() if k in live and k not in ignored and k not in unready
    }
    if not metrics:
        raise MetricUnavailable("did not receive metrics for targeted pods (pods might be unready)")
    utilization_mode = is_resource and reading.target_type == "Utilization"
    requests: dict[str, int] = {}
    if utilization_mode:
        milli: dict[float, int] = {}  # the pods of a workload mostly share one request
        for p in pods:
            if p.request is None:
                raise MetricUnavailable(f"missing request for {reading.name} in pod {p.name}")
            m = milli.get(p.request)
            if m is None:
                m = milli[p.request] = _milli(p.request)
            requests[p.name] = m
        target_pct = int(reading.target)

        def ratio_of(vals: Mapping[str, int]) -> float:
            return _utilization(vals, requests) / target_pct
    else:
        target_milli = _milli(reading.target)

        def ratio_of(vals: Mapping[str, int]) -> float:
            return _average(vals) / target_milli

    ratio = ratio_of(metrics)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tol.within(ratio):
            return current
        return math.ceil(ratio * ready_count)
    if missing:
        if utilization_mode:
            if ratio < 1.0:
                # Scale-down: a missing pod is taken to use max(100 %, target) of its request.
                fallback = max(100, target_pct)
                for name in missing:
                    metrics[name] = requests[name] * fallback // 100
            elif ratio > 1.0:
                for name in missing:
                    metrics[name] = 0
        elif ratio < 1.0:
            for name in missing:  # scale-down: exactly the target
                metrics[name] = target_milli
        else:
            for name in missing:
                metrics[name] = 0
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = 0
    new_ratio = ratio_of(metrics)
    if tol.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    proposal = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current
    return proposal


@dataclass(frozen=True)
class _PodPlan:
    """What :func:`_aligned_replicas` needs of a list of pods, whatever the time and the values.

    ``counted``: the pods that count (all but the ignored ones), None when a pod makes the
    general path necessary at any time (Pending, no start or Ready time under the CPU rules,
    no request in utilization mode). ``requests``: their requests, milli-units, summed.
    ``timed_until``: the latest end of a counted pod's CPU initialization period; until then
    ``timed`` decides per pod: (end of its initialization period, ready, Ready since, unready
    once past it: not ready and never ready). ``later_ok``: past every initialization
    period, whether every counted pod counts.
    """

    counted: list[int] | None
    requests: int = 0
    timed_until: float = -math.inf
    timed: tuple[tuple[float, bool, float, bool], ...] = ()
    later_ok: bool = True


def _pod_plan(
    pods: Sequence[PodInfo],
    cpu_rules: bool,
    utilization_mode: bool,
    cpu_initialization_period: float,
    initial_readiness_delay: float,
) -> _PodPlan:
    counted: list[int] = []
    requests = 0
    timed: list[tuple[float, bool, float, bool]] = []
    for i, pod in enumerate(pods):
        req = pod.request
        if utilization_mode and req is None:
            return _PodPlan(None)
        if pod.deleting or pod.phase == "Failed":
            continue  # ignored
        if pod.phase == "Pending":
            return _PodPlan(None)  # unready
        if cpu_rules:
            start, ready_since = pod.start, pod.ready_since
            if ready_since is None or start is None:
                return _PodPlan(None)
            # Past its initialization period: unready if not ready and never ready.
            never_ready = (not pod.ready) and start + initial_readiness_delay > ready_since
            timed.append((start + cpu_initialization_period, pod.ready, ready_since, never_ready))
        if utilization_mode:
            assert req is not None
            requests += _milli(req)
        counted.append(i)
    until = max((end for end, _, _, _ in timed), default=-math.inf)
    return _PodPlan(counted, requests, until, tuple(timed), not any(t[3] for t in timed))


def _aligned_replicas(
    reading: MetricReading,
    samples: AlignedSamples,
    current: int,
    tol: Tolerances,
    now: float,
    cpu_initialization_period: float,
    initial_readiness_delay: float,
) -> int | None:
    """:func:`_pod_replicas` where every pod counts or is ignored (none unready, none missing).

    See :func:`aligned_proposal`; None where that case does not hold, for the general path.
    """
    return aligned_proposal(
        reading.type,
        reading.name,
        reading.target_type,
        reading.target,
        samples.pods,
        samples.pod_values,
        samples.timestamp,
        samples.window,
        samples.memo,
        current,
        tol,
        now,
        cpu_initialization_period,
        initial_readiness_delay,
    )


def aligned_proposal(
    kind: MetricType,
    name: str,
    target_type: TargetType,
    target: float,
    pods: Sequence[PodInfo],
    values: Sequence[float | None],
    timestamp: float,
    window: float,
    memo: dict[Any, Any] | None,
    current: int,
    tol: Tolerances,
    now: float,
    cpu_initialization_period: float,
    initial_readiness_delay: float,
) -> int | None:
    """A Resource, ContainerResource or Pods metric's proposal from one value per pod (None: no
    sample), where every pod counts or is ignored (none unready, none missing).

    The same grouping (``group_pods``), milli-values and integer arithmetic over the pods
    that count as :func:`_pod_replicas`; None where that case does not hold (a pod unready or
    without a sample, a missing request, no pod counted), for the general path to decide.
    ``memo`` keeps what the pods alone tell between readings of the same ``pods`` (see
    :class:`AlignedSamples`).
    """
    is_resource = kind == "Resource" or kind == "ContainerResource"
    cpu_rules = is_resource and name == "cpu"
    utilization_mode = is_resource and target_type == "Utilization"
    key = (cpu_rules, utilization_mode, cpu_initialization_period, initial_readiness_delay)
    plan = memo.get(key) if memo is not None else None
    if plan is None:
        plan = _pod_plan(pods, *key)
        if memo is not None:
            memo[key] = plan
    counted = plan.counted
    if not counted:
        return None
    if plan.timed_until > now:  # some pod is within its CPU initialization period
        for end, ready, ready_since, never_ready in plan.timed:
            if end > now:
                # Within it: unready if not ready, or if a full metric window has not passed
                # since it became ready.
                if (not ready) or timestamp < ready_since + window:
                    return None
            elif never_ready:
                return None
    elif not plan.later_ok:
        return None
    if len(counted) == len(values):
        if None in values:
            return None  # missing
        vals = values
    else:
        vals = [values[i] for i in counted]
        if None in vals:
            return None
    # sum(map(_milli, vals)), _milli written out (a call per pod at every sync costs more
    # than the arithmetic), and worked out once for a run of equal values (the pods of a
    # service on the flow plane mostly report the same usage)
    total = 0
    last: float | None = None
    up = 0
    for x in vals:
        if x != last:
            last = x
            y = x * 1000.0  # type: ignore[operator]
            up = _ceil(y)
            if not (up - y >= 1e-6 and y - up > -0.999999):
                up = _ceil(round(y, 6))
        total += up
    count = len(counted)
    if utilization_mode:
        if plan.requests == 0:
            return None
        ratio = ((total * 100) // plan.requests) / int(target)
    else:
        ratio = (total // count) / _milli(target)
    if (1.0 - tol.down) <= ratio <= (1.0 + tol.up):  # tol.within(ratio)
        return current
    return math.ceil(ratio * count)


_POD_METRICS = ("Resource", "ContainerResource", "Pods")  # metrics with one value per pod


def _ready_running(pods: Sequence[PodInfo]) -> int:
    return sum(1 for p in pods if p.phase == "Running" and p.ready and not p.deleting)


def _value_replicas(
    reading: MetricReading, pods: Sequence[PodInfo], current: int, status_replicas: int, tol: Tolerances
) -> int:
    """Object and External metrics (``Value`` and ``AverageValue`` targets)."""
    if reading.value is None:
        raise MetricUnavailable(f"no value for {reading.type} metric {reading.name}")
    usage = _milli(reading.value)
    target = _milli(reading.target)
    if reading.target_type == "AverageValue":
        ratio = usage / (target * status_replicas) if status_replicas else math.inf
        if tol.within(ratio):
            return status_replicas
        return math.ceil(usage / target)
    ratio = usage / target
    if current != 0:
        if tol.within(ratio):
            return current
        return math.ceil(ratio * _ready_running(pods))
    return math.ceil(ratio)


def replicas_for_metric(
    reading: MetricReading,
    pods: Sequence[PodInfo],
    current: int,
    now: float,
    tol: Tolerances | None = None,
    status_replicas: int | None = None,
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
    initial_readiness_delay: float = INITIAL_READINESS_DELAY,
) -> int:
    """The replica count one metric proposes.

    Args:
        reading: the metric spec and what its API returned.
        pods: the target's pods.
        current: ``scale.spec.replicas``.
        now: the sync time, seconds.
        tol: the tolerance band (default 0.1 each way).
        status_replicas: ``scale.status.replicas`` (for AverageValue targets of Object
            and External metrics); defaults to ``current``.

    Raises:
        MetricUnavailable: the metric cannot be computed this sync.
    """
    tol = tol or Tolerances()
    if reading.error is not None:
        raise MetricUnavailable(reading.error)
    if reading.type in _POD_METRICS:
        return _pod_replicas(
            reading, pods, current, tol, now, cpu_initialization_period, initial_readiness_delay
        )
    return _value_replicas(
        reading, pods, current, current if status_replicas is None else status_replicas, tol
    )


def replicas_for_metrics(
    readings: Sequence[MetricReading],
    pods: Sequence[PodInfo],
    current: int,
    now: float,
    tol: Tolerances | None = None,
    status_replicas: int | None = None,
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
    initial_readiness_delay: float = INITIAL_READINESS_DELAY,
) -> tuple[int, str]:
    """The maximum proposal over metrics, and the name of the metric that gave it.

    Raises:
        MetricUnavailable: every metric failed, or some failed and the others would
            scale down (the HPA then holds its size).
    """
    best = 0
    best_name = ""
    invalid = 0
    first_error = ""
    tol = tol or Tolerances()
    for r in readings:
        samples = r.samples
        proposal: int | None = None
        if (
            r.error is None
            and isinstance(samples, AlignedSamples)
            and samples.pods is pods
            and pods
            and r.type in _POD_METRICS
        ):
            # (what replicas_for_metric does first for such a reading, without its calls)
            proposal = _aligned_replicas(
                r, samples, current, tol, now, cpu_initialization_period, initial_readiness_delay
            )
        if proposal is None:
            try:
                proposal = replicas_for_metric(
                    r,
                    pods,
                    current,
                    now,
                    tol,
                    status_replicas,
                    cpu_initialization_period,
                    initial_readiness_delay,
                )
            except MetricUnavailable as e:
                if invalid == 0:
                    first_error = f"{r.type} metric {r.name}: {e}"
                invalid += 1
                continue
        if best == 0 or proposal > best:
            best, best_name = proposal, f"{r.name} {r.type.lower()} metric"
    if invalid >= len(readings) or (invalid > 0 and best < current):
        raise MetricUnavailable(first_error or "no metrics")
    return best, best_name
