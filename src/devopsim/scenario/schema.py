"""The scenario: one YAML file describing a platform, its traffic and what happens to it.

The top-level sections are those of DESIGN.md: ``name``, ``description``,
``seed``, ``start``, ``duration``, ``warmup``, ``plane``, ``platform``,
``traffic``, ``slos``, ``services``, ``datastores``, ``monitoring``,
``analysisTemplates``, ``security``, ``timeline`` and ``chaos``.
Cross-references (calls, queries, classes, timeline targets) and call cycles
are checked afterwards by :mod:`devopsim.scenario.checks`, which can point
at the exact line of the offending reference.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from devopsim.scenario.base import Spec
from devopsim.scenario.controllers import AnalysisTemplate, Autoscaler, PodDisruptionBudget, Probe, Strategy
from devopsim.scenario.infra import (
    Datastore,
    Experiment,
    Monitoring,
    Placement,
    Platform,
    Security,
    TimelineEntry,
)
from devopsim.scenario.types import CPU, Dist, Duration, Fraction, Name, Pattern, Size

__all__ = [
    "SLO",
    "CacheStep",
    "CircuitBreaker",
    "Endpoint",
    "RequestClass",
    "Resources",
    "Retries",
    "Scenario",
    "Service",
    "Step",
    "Traffic",
]

STEP_KINDS = ("work", "wait", "call", "parallel", "query", "cache", "publish")
ErrorKind = Literal["timeout", "rejected", "downstream", "injected", "unavailable"]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)


class CacheStep(Spec):
    """Look a key up in a cache; on a miss run ``onMiss`` (typically a query)."""

    store: Name
    keyspace: str
    on_miss: list[Step] = Field(default_factory=list)


class Step(Spec):
    """One step of an endpoint: exactly one of work, wait, call, parallel, query, cache, publish.

    ``work`` is CPU time on one core (shared when more requests are in their
    CPU phase than the replica has cores); ``wait`` holds the request without
    CPU; ``call`` is a synchronous call to ``service.endpoint``, made with
    ``probability`` (default 1); ``parallel`` makes its calls at once and waits
    for all.
    """

    work: Dist | None = None
    wait: Dist | None = None
    call: str | None = None
    probability: Fraction | None = None
    parallel: list[Step] | None = None
    query: str | None = None
    cache: CacheStep | None = None
    publish: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        kinds = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a step has exactly one of {', '.join(STEP_KINDS)} "
                f"(got {', '.join(kinds) if kinds else 'none'})"
            )
        if self.probability is not None and self.call is None:
            raise ValueError("'probability' only goes with a 'call' step")
        if self.parallel is not None:
            if not self.parallel:
                raise ValueError("'parallel' needs at least one branch")
            if len(self.parallel) > 64:
                raise ValueError(f"'parallel' takes at most 64 branches (got {len(self.parallel)})")
            for b in self.parallel:
                if b.kind not in ("call", "query", "publish"):
                    raise ValueError(f"parallel branches are call, query or publish steps (got {b.kind})")
        for field in ("call", "query", "publish"):
            ref = getattr(self, field)
            if ref is not None and (
                not isinstance(ref, str) or ref.count(".") != 1 or not all(ref.split("."))
            ):
                raise ValueError(f"'{field}' names a target as NAME.PART, e.g. catalog.list (got {ref!r})")
        return self

    @property
    def kind(self) -> str:
        """Which of the step kinds this is."""
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)


class Retries(Spec):
    """Retry failed calls to this endpoint (Istio's ``attempts`` = retries after the first try)."""

    attempts: int = Field(ge=0, le=100)
    backoff: Duration = 0.025
    max_backoff: Duration | None = None
    jitter: bool = False
    retry_on: list[ErrorKind] = Field(default_factory=lambda: list(get_args(ErrorKind)))


class CircuitBreaker(Spec):
    """A count-based circuit breaker (resilience4j's names and defaults)."""

    failure_rate_threshold: Fraction = 0.5
    sliding_window_size: int = Field(100, ge=1, le=10000)
    minimum_number_of_calls: int = Field(100, ge=1)
    wait_duration_in_open_state: Duration = 60.0
    permitted_number_of_calls_in_half_open_state: int = Field(10, ge=1, le=10000)


class Endpoint(Spec):
    """An operation a service offers: its steps, timeout, retries and circuit breaker."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    timeout: Duration | None = None
    retries: Retries | None = None
    circuit_breaker: CircuitBreaker | None = None
    steps: list[Step] = Field(min_length=1)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("timeout must be positive")
        return v


class Consume(Spec):
    """Consume a Kafka topic as a consumer group, running ``steps`` per message."""

    topic: str
    group: str
    steps: list[Step] = Field(min_length=1)


class ResourceAmounts(Spec):
    cpu: CPU | None = None
    memory: Size | None = None
    ephemeral_storage: Size | None = None


class Resources(Spec):
    requests: ResourceAmounts = Field(default_factory=ResourceAmounts)
    limits: ResourceAmounts = Field(default_factory=ResourceAmounts)


class Queue(Spec):
    """Each replica's FIFO queue in front of its workers; no capacity means unbounded."""

    capacity: int | None = Field(None, ge=0)


LB_POLICIES = ("round-robin", "random", "least-request", "least-outstanding", "weighted")


class Service(Spec):
    """A deployed service: its replicas, workers, resources, endpoints and controllers."""

    version: str = "v1"
    replicas: int = Field(1, ge=0, le=100000)
    concurrency: int = Field(100, ge=1, le=100000)
    queue: Queue = Field(default_factory=Queue)
    startup: Duration = 0.0
    port: int | None = Field(None, ge=1, le=65535)
    ports: dict[str, int] = Field(default_factory=dict)
    hot_reload: bool = False
    resources: Resources = Field(default_factory=Resources)
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None
    termination_grace_period_seconds: int = Field(30, ge=0)
    pod_disruption_budget: PodDisruptionBudget | None = None
    min_ready_seconds: int = Field(0, ge=0)
    progress_deadline_seconds: int = Field(600, ge=1)
    revision_history_limit: int = Field(10, ge=0)
    error_rate: Fraction = 0.0
    latency_factor: float = Field(1.0, gt=0)
    load_balancer: Literal["round-robin", "random", "least-request", "least-outstanding", "weighted"] = (
        "round-robin"
    )
    weights: list[float] | None = None
    endpoints: dict[Name, Endpoint] = Field(default_factory=dict)
    consume: Consume | None = None
    autoscaler: Autoscaler | None = None
    strategy: Strategy | None = None
    placement: Placement | None = None

    @model_validator(mode="after")
    def _check(self) -> Service:
        if not self.endpoints and self.consume is None:
            raise ValueError("a service needs 'endpoints' or 'consume'")
        if self.weights is not None:
            if self.load_balancer != "weighted":
                raise ValueError("'weights' only goes with loadBalancer: weighted")
            if any(w < 0 for w in self.weights) or not any(w > 0 for w in self.weights):
                raise ValueError("weights must be non-negative with at least one positive")
        for port in self.ports.values():
            if not 1 <= port <= 65535:
                raise ValueError(f"ports must lie in 1..65535 (got {port})")
        return self

    @property
    def cores(self) -> float:
        """CPU cores one replica can use: its limit, else its request, else one per worker."""
        lim = self.resources.limits.cpu
        if lim is not None:
            return lim
        req = self.resources.requests.cpu
        if req is not None:
            return req
        return float(self.concurrency)


class RequestClass(Spec):
    """A kind of user request: where it enters, and its share of the traffic.

    ``entry`` is one ``service.endpoint``, or a list of them: a journey the
    client makes in order, each after the previous one answered.
    """

    name: Name
    entry: str | list[str]
    share: Fraction | None = None

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: str | list[str]) -> str | list[str]:
        items = [v] if isinstance(v, str) else v
        if not items:
            raise ValueError("'entry' needs at least one service.endpoint")
        for e in items:
            if not isinstance(e, str) or e.count(".") != 1 or not all(e.split(".")):
                raise ValueError(f"'entry' names service.endpoint, e.g. frontend.home (got {e!r})")
        return v

    @property
    def entries(self) -> list[str]:
        """The journey as a list of ``service.endpoint``."""
        return [self.entry] if isinstance(self.entry, str) else list(self.entry)


class Traffic(Spec):
    """Where requests come from: the total rate, its burstiness and the request classes."""

    rate: Pattern
    burstiness: float = Field(1.0, ge=0, le=20)
    clients: dict[str, Fraction] | None = None
    classes: list[RequestClass] = Field(min_length=1)

    @field_validator("classes")
    @classmethod
    def _shares(cls, classes: list[RequestClass]) -> list[RequestClass]:
        names = [c.name for c in classes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"class names must be unique (repeated: {', '.join(sorted(dup))})")
        given = [c.share for c in classes if c.share is not None]
        if len(given) == len(classes):
            total = sum(given)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"class shares must add up to 100% (they add up to {100 * total:.6g}%)")
        elif sum(given) > 1.0 + 1e-6:
            raise ValueError(f"class shares add up to more than 100% ({100 * sum(given):.6g}%)")
        return classes

    @field_validator("clients")
    @classmethod
    def _clients(cls, clients: dict[str, float] | None) -> dict[str, float] | None:
        if clients is not None and abs(sum(clients.values()) - 1.0) > 1e-6:
            raise ValueError(
                f"client shares must add up to 100% (they add up to {100 * sum(clients.values()):.6g}%)"
            )
        return clients

    def shares(self) -> list[float]:
        """Each class's share; classes without one split what the others leave equally."""
        given = sum(c.share for c in self.classes if c.share is not None)
        missing = [c for c in self.classes if c.share is None]
        rest = max(0.0, 1.0 - given) / len(missing) if missing else 0.0
        return [c.share if c.share is not None else rest for c in self.classes]


class SLO(Spec):
    """A service level objective over the run: availability, or latency below a threshold."""

    name: str
    objective: Fraction
    class_: str | None = Field(None, alias="class")
    latency: Duration | None = None

    @field_validator("objective")
    @classmethod
    def _objective(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError(f"objective must lie strictly between 0% and 100% (got {v:g})")
        return v


class FlowSettings(Spec):
    """Settings of the flow plane."""

    tick: Duration = 1.0
    samples: int = Field(8000, ge=100, le=200000)

    @field_validator("tick")
    @classmethod
    def _tick(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("tick must be positive")
        return v


class Scenario(Spec):
    """A whole scenario file."""

    name: str = "scenario"
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    start: datetime | None = None
    duration: Duration
    warmup: Duration = 0.0
    plane: Literal["request", "flow"] = "flow"
    flow: FlowSettings = Field(default_factory=FlowSettings)
    platform: Platform | None = None
    traffic: Traffic
    slos: list[SLO] = Field(default_factory=list)
    services: dict[Name, Service] = Field(min_length=1)
    datastores: dict[Name, Datastore] = Field(default_factory=dict)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    analysis_templates: dict[str, AnalysisTemplate] = Field(default_factory=dict)
    security: Security | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    chaos: list[Experiment] = Field(default_factory=list)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"expected a date-time like 2026-01-05T00:00:00Z (got {v!r})") from None
        if isinstance(v, datetime) and v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.warmup >= self.duration:
            raise ValueError(
                f"warmup must be shorter than duration (got {self.warmup:g}s >= {self.duration:g}s)"
            )
        return self

    @property
    def clock0(self) -> float:
        """Seconds after midnight UTC at which the run starts (0 without ``start``)."""
        if self.start is None:
            return 0.0
        s = self.start.astimezone(UTC)
        return float(s.hour * 3600 + s.minute * 60 + s.second) + s.microsecond / 1e6


CacheStep.model_rebuild()
Step.model_rebuild()
