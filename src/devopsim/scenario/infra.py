"""Schema of the platform around the services.

Clouds, regions, zones and node pools; datastores (PostgreSQL with Patroni's
failover names, Redis, Kafka); monitoring (a Prometheus rule file inline);
security; timeline entries; Chaos Toolkit experiments.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from devopsim.scenario.base import Spec
from devopsim.scenario.dists import Zipf
from devopsim.scenario.types import CPU, Dist, Duration, Fraction, Name, Pattern, Popularity, Size, SizeRate

__all__ = [
    "FAULT_KINDS",
    "Changes",
    "Datastore",
    "Experiment",
    "Fault",
    "Kafka",
    "Monitoring",
    "Placement",
    "Platform",
    "Postgres",
    "Redis",
    "Rule",
    "RuleGroup",
    "Security",
    "TimelineEntry",
]


# --- platform -------------------------------------------------------------------


class NodePool(Spec):
    name: Name
    instance_type: str
    count: int = Field(ge=0)
    min_count: int | None = Field(None, ge=0)
    max_count: int | None = Field(None, ge=0)
    zones: list[str] | None = None
    provisioning_time: Duration | None = None


class Region(Spec):
    zones: list[str] = Field(min_length=1)
    node_pools: list[NodePool] = Field(default_factory=list)
    location: str | None = None


class Cloud(Spec):
    regions: dict[str, Region] = Field(min_length=1)


class HealthCheck(Spec):
    interval: Duration = 10.0
    failure_threshold: int = Field(3, ge=1)
    success_threshold: int = Field(1, ge=1)
    timeout: Duration = 5.0


class FrontDoor(Spec):
    kind: Literal["geodns", "anycast", "load-balancer", "api-gateway"] = "load-balancer"
    ttl: Duration = 60.0
    health_check: HealthCheck | None = None
    port: int | None = Field(None, ge=1, le=65535)
    tls: bool | None = None


class Platform(Spec):
    """Where the services run: clouds -> regions -> zones -> node pools, and the front door."""

    clouds: dict[str, Cloud] = Field(default_factory=dict)
    front_door: FrontDoor | None = None


class Placement(Spec):
    clouds: list[str] | None = None
    regions: list[str] | None = None
    zones: list[str] | None = None
    node_pool: str | None = None
    spread: Literal["zone", "region", "cloud", "none"] = "none"


# --- datastores -----------------------------------------------------------------


class Operation(Spec):
    work: Dist
    kind: Literal["read", "write"] | None = None
    rows: int | None = Field(None, ge=0)


class DbResources(Spec):
    cpu: CPU = 2.0
    connections: int = Field(100, ge=1)
    memory: Size | None = None
    disk: Size | None = None
    iops: int | None = Field(None, ge=1)


class Failover(Spec):
    """Patroni's timing settings (its names and defaults)."""

    ttl: Duration = 30.0
    loop_wait: Duration = 10.0
    retry_timeout: Duration = 10.0
    maximum_lag_on_failover: Size = 1048576.0
    synchronous_mode: bool | None = None
    master_start_timeout: Duration = 300.0


class Backup(Spec):
    full: str = "manual"
    wal: Literal["continuous", "none"] = "none"
    geo_redundant: bool = False
    retention: Duration = 7 * 86400.0
    throughput: Size | None = None

    @field_validator("full")
    @classmethod
    def _full(cls, v: str) -> str:
        import re

        if v in ("manual", "none") or re.fullmatch(r"(hourly|daily|weekly)(@\d{1,2}:\d{2})?", v):
            return v
        raise ValueError(f"expected manual, none, hourly, daily@HH:MM or weekly@HH:MM (got {v!r})")


class Postgres(Spec):
    kind: Literal["postgres"]
    version: str = "14"
    topology: Literal["single", "primary-replica", "multi-master"] = "single"
    replicas: int = Field(0, ge=0)
    nodes: int | None = Field(None, ge=1)
    replication: Literal["async", "sync"] = "async"
    reads_from: Literal["primary", "replicas"] = "primary"
    resources: DbResources = Field(default_factory=DbResources)
    operations: dict[str, Operation] = Field(default_factory=dict)
    failover: Failover | None = None
    backup: Backup | None = None
    placement: Placement | None = None
    data_size: Size | None = None
    seed_data: bool = False
    encryption: bool | None = None
    port: int = Field(5432, ge=1, le=65535)
    advisor: bool = False

    @model_validator(mode="after")
    def _check(self) -> Postgres:
        if self.topology == "single" and self.replicas:
            raise ValueError("topology single has no replicas; use primary-replica")
        if self.topology == "primary-replica" and self.replicas < 1:
            raise ValueError("topology primary-replica needs replicas >= 1")
        if self.topology == "multi-master" and (self.nodes or 0) < 2:
            raise ValueError("topology multi-master needs nodes >= 2")
        return self


class Keyspace(Spec):
    keys: int = Field(ge=1)
    size: Size
    popularity: Popularity = Field(default_factory=lambda: Zipf(0.0))
    ttl: Duration | None = None


class Redis(Spec):
    kind: Literal["redis"]
    shards: int = Field(1, ge=1)
    replicas_per_shard: int = Field(0, ge=0)
    memory: Size
    eviction: Literal["allkeys-lru", "volatile-lru", "allkeys-lfu", "noeviction"] = "allkeys-lru"
    keyspaces: dict[str, Keyspace] = Field(default_factory=dict)
    placement: Placement | None = None
    tuning: dict[str, Any] | None = None
    port: int = Field(6379, ge=1, le=65535)


class Topic(Spec):
    partitions: int = Field(ge=1)
    replication_factor: int = Field(1, ge=1)
    retention: Duration | None = None


class Kafka(Spec):
    kind: Literal["kafka"]
    brokers: int = Field(ge=1)
    topics: dict[str, Topic] = Field(default_factory=dict)
    placement: Placement | None = None

    @model_validator(mode="after")
    def _check(self) -> Kafka:
        for name, t in self.topics.items():
            if t.replication_factor > self.brokers:
                raise ValueError(
                    f"topic {name}: replicationFactor {t.replication_factor} exceeds brokers {self.brokers}"
                )
        return self


Datastore = Annotated[Postgres | Redis | Kafka, Field(discriminator="kind")]


# --- monitoring -----------------------------------------------------------------


class Rule(Spec):
    """A Prometheus alerting or recording rule (rule-file field names)."""

    alert: str | None = None
    record: str | None = None
    expr: str
    for_: Duration | None = Field(None, alias="for")
    keep_firing_for: Duration | None = Field(None, alias="keep_firing_for")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if (self.alert is None) == (self.record is None):
            raise ValueError("a rule has exactly one of 'alert' or 'record'")
        if self.record is not None and (self.for_ is not None or self.annotations):
            raise ValueError("a recording rule takes no 'for' or 'annotations'")
        return self


class RuleGroup(Spec):
    name: str
    interval: Duration | None = None
    limit: int | None = Field(None, ge=0)
    query_offset: Duration | None = Field(None, alias="query_offset")
    labels: dict[str, str] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)


class RuleFile(Spec):
    groups: list[RuleGroup] = Field(default_factory=list)


class Notify(Spec):
    kind: Literal["email", "webhook", "alertmanager", "slack", "console"]
    to: str | None = None
    url: str | None = None
    match: dict[str, str] = Field(default_factory=dict)
    send_resolved: bool = True


class Detector(Spec):
    name: str | None = None
    kind: Literal["lstm", "zscore", "ewma", "isolation-forest", "log-analysis"]
    query: str | None = None
    threshold: float | None = None
    window: Duration | None = None


class Monitoring(Spec):
    """What is scraped, kept and alerted on."""

    scrape_interval: Duration = 15.0
    evaluation_interval: Duration = 60.0
    prometheus: bool = True
    grafana: bool = False
    thanos: bool = False
    retention: Duration | None = None
    downsampling: list[Duration] | None = None
    console_logs: bool = False
    rules: RuleFile | None = None
    rule_files: list[str] = Field(default_factory=list)
    external_labels: dict[str, str] = Field(default_factory=dict)
    external_url: str | None = None
    notify: list[Notify] = Field(default_factory=list)
    detectors: list[Detector] = Field(default_factory=list)

    @field_validator("scrape_interval")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("scrapeInterval must be positive")
        return v


# --- security ---------------------------------------------------------------------


class Security(Spec):
    """The security posture of the environment (reported, and flagged when weak)."""

    tls: bool = True
    database_encryption: bool | None = None
    encryption: Literal["none", "aes-128", "aes-256"] | None = None
    credentials: Literal["plaintext", "secret-store", "vault"] = "secret-store"
    debug_endpoints: bool = False
    zero_trust: bool = False
    audits: Literal["none", "regular", "ai"] | None = None
    anomaly_detection: bool = False


# --- timeline ---------------------------------------------------------------------

FaultKind = Literal[
    "pod-kill",
    "pod-failure",
    "container-kill",
    "node-failure",
    "zone-outage",
    "region-outage",
    "cloud-outage",
    "network-delay",
    "network-loss",
    "network-partition",
    "network-bandwidth",
    "cpu-stress",
    "memory-stress",
    "memory-leak",
    "disk-fill",
    "dns-failure",
    "db-primary-crash",
    "replication-break",
    "cache-flush",
    "cache-shard-loss",
    "broker-loss",
    "dependency-slowdown",
    "cert-expiry",
    "traffic-spike",
    "traffic-flood",
    "recover",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


class Changes(Spec):
    error_rate: Fraction | None = None
    latency_factor: float | None = Field(None, gt=0)
    memory_leak: SizeRate | None = None  # bytes/s of container uptime, written 10Mi/m
    crash_on_start: bool = False


class Deploy(Spec):
    service: Name
    version: str
    changes: Changes = Field(default_factory=Changes)


class Fault(Spec):
    kind: FaultKind
    target: str
    count: int | None = Field(None, ge=1)
    percent: Fraction | None = None
    duration: Duration | None = None
    to: str | None = None
    delay: Duration | None = None
    jitter: Duration | None = None
    loss: Fraction | None = None
    bandwidth: str | None = None
    size: Size | None = None  # network-bandwidth: bytes per response (default 4Ki)
    leak: SizeRate | None = None  # memory-leak: bytes/s, written 10Mi/m
    factor: float | None = Field(None, gt=0)
    cores: CPU | None = None
    memory: Size | None = None
    rate: Pattern | None = None


class ScaleAction(Spec):
    service: Name
    replicas: int = Field(ge=0)


class Rollback(Spec):
    service: Name
    to_revision: int | None = Field(None, ge=1)


class TrafficChange(Spec):
    rate: Pattern
    burstiness: float | None = Field(None, ge=0)


class TimelineEntry(Spec):
    """Something that happens at a given time: exactly one action."""

    at: Duration
    deploy: Deploy | None = None
    fault: Fault | None = None
    scale: ScaleAction | None = None
    rollback: Rollback | None = None
    traffic: TrafficChange | None = None

    @model_validator(mode="after")
    def _one(self) -> TimelineEntry:
        actions = [k for k in ("deploy", "fault", "scale", "rollback", "traffic") if getattr(self, k)]
        if len(actions) != 1:
            raise ValueError(
                "a timeline entry has 'at' and exactly one of deploy, fault, scale, "
                f"rollback, traffic (got {len(actions)}: {', '.join(actions) or 'none'})"
            )
        return self

    @property
    def action(self) -> str:
        """Which action this entry holds."""
        return next(k for k in ("deploy", "fault", "scale", "rollback", "traffic") if getattr(self, k))


# --- chaos (Chaos Toolkit experiment shape) ---------------------------------------------


class Pauses(Spec):
    before: Duration | None = None
    after: Duration | None = None


class Activity(Spec):
    """A Chaos Toolkit action or probe."""

    type: Literal["action", "probe"]
    name: str
    provider: dict[str, Any]
    tolerance: Any = None
    pauses: Pauses | None = None
    background: bool = False
    ref: str | None = None
    configuration: dict[str, Any] | None = None
    controls: list[dict[str, Any]] | None = None


class Hypothesis(Spec):
    title: str
    probes: list[Activity] = Field(default_factory=list)


class Experiment(Spec):
    """A Chaos Toolkit experiment, with an ``at`` time in the run."""

    title: str
    description: str | None = None
    at: Duration | None = None
    tags: list[str] = Field(default_factory=list)
    contributions: dict[str, str] | None = None
    configuration: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    extensions: list[dict[str, Any]] | None = None
    controls: list[dict[str, Any]] | None = None
    steady_state_hypothesis: Hypothesis | None = Field(None, alias="steady-state-hypothesis")
    method: list[Activity] = Field(min_length=1)
    rollbacks: list[Activity] = Field(default_factory=list)
