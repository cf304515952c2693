"""Schema of control-loop sections, taken field for field from the real tools.

Autoscalers (Kubernetes HPA ``autoscaling/v2``, KEDA's Kafka scaler, the
Knative Pod Autoscaler, predictive and learned policies), rollout strategies
(Deployment strategies, Argo Rollouts canary and blue-green), Argo
``AnalysisTemplate`` specs and Kubernetes probes. Defaults are those of
``reference/SEMANTICS.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from devopsim.scenario.base import Spec
from devopsim.scenario.types import Duration, Fraction, IntOrPercent
from devopsim.scenario.units import parse_cpu, parse_size

__all__ = [
    "HPA",
    "AnalysisTemplate",
    "Autoscaler",
    "KedaKafka",
    "Knative",
    "PodDisruptionBudget",
    "Probe",
    "Strategy",
]


# --- probes (core/v1 Probe) -------------------------------------------------


class Probe(Spec):
    """A Kubernetes probe; defaults from core/v1 ``SetDefaults_Probe``."""

    initial_delay_seconds: int = Field(0, ge=0)
    period_seconds: int = Field(10, ge=1)
    timeout_seconds: int = Field(1, ge=1)
    success_threshold: int = Field(1, ge=1)
    failure_threshold: int = Field(3, ge=1)
    termination_grace_period_seconds: int | None = Field(None, ge=0)
    http_get: dict[str, Any] | None = None
    tcp_socket: dict[str, Any] | None = None
    exec: dict[str, Any] | None = None
    grpc: dict[str, Any] | None = None


# --- PodDisruptionBudget (policy/v1) ------------------------------------------


class PodDisruptionBudget(Spec):
    """A PodDisruptionBudget for the service's pods: exactly one of the two (int or percent)."""

    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None

    @model_validator(mode="after")
    def _one(self) -> PodDisruptionBudget:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("a PodDisruptionBudget has exactly one of minAvailable or maxUnavailable")
        return self


# --- HPA autoscaling/v2 -------------------------------------------------------


def _quantity(value: Any) -> Any:
    """A Kubernetes quantity (``500m``, ``2``, ``100Mi``, ``1k``) as a plain number."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return parse_cpu(value)
    except ValueError:
        pass
    try:
        return parse_size(value)
    except ValueError:
        raise ValueError(f"expected a quantity like 500m, 2, 100Mi or 1k (got {value!r})") from None


Quantity = Annotated[float, BeforeValidator(_quantity)]


class MetricTarget(Spec):
    type: Literal["Utilization", "AverageValue", "Value"]
    average_utilization: int | None = Field(None, ge=1)
    average_value: Quantity | None = None
    value: Quantity | None = None

    @model_validator(mode="after")
    def _check(self) -> MetricTarget:
        need = {"Utilization": "average_utilization", "AverageValue": "average_value", "Value": "value"}
        if getattr(self, need[self.type]) is None:
            alias = {
                "average_utilization": "averageUtilization",
                "average_value": "averageValue",
                "value": "value",
            }[need[self.type]]
            raise ValueError(f"target type {self.type} needs {alias}")
        return self


class ResourceMetric(Spec):
    name: Literal["cpu", "memory"]
    target: MetricTarget


class ContainerResourceMetric(Spec):
    name: Literal["cpu", "memory"]
    container: str
    target: MetricTarget


class MetricIdentifier(Spec):
    name: str
    selector: dict[str, Any] | None = None


class PodsMetric(Spec):
    metric: MetricIdentifier
    target: MetricTarget


class ObjectMetric(Spec):
    metric: MetricIdentifier
    described_object: dict[str, Any] | None = None
    target: MetricTarget


class ExternalMetric(Spec):
    metric: MetricIdentifier
    target: MetricTarget


class MetricSpec(Spec):
    """One entry of ``spec.metrics``."""

    type: Literal["Resource", "Pods", "Object", "External", "ContainerResource"]
    resource: ResourceMetric | None = None
    pods: PodsMetric | None = None
    object: ObjectMetric | None = None
    external: ExternalMetric | None = None
    container_resource: ContainerResourceMetric | None = None

    @model_validator(mode="after")
    def _check(self) -> MetricSpec:
        key = {
            "Resource": "resource",
            "Pods": "pods",
            "Object": "object",
            "External": "external",
            "ContainerResource": "container_resource",
        }[self.type]
        if getattr(self, key) is None:
            raise ValueError(f"a metric of type {self.type} needs its '{key}' section")
        return self


class ScalingPolicy(Spec):
    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0)
    period_seconds: int = Field(ge=1, le=1800)


class ScalingRules(Spec):
    stabilization_window_seconds: int | None = Field(None, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] | None = None
    tolerance: float | None = Field(None, ge=0)


class Behavior(Spec):
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


def _default_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            type="Resource",
            resource=ResourceMetric(
                name="cpu", target=MetricTarget(type="Utilization", average_utilization=80)
            ),
        )
    ]


class HPA(Spec):
    """A HorizontalPodAutoscaler ``spec`` (autoscaling/v2), field for field."""

    kind: Literal["hpa"]
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(ge=1)
    metrics: list[MetricSpec] = Field(default_factory=_default_metrics)
    behavior: Behavior | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_metrics(cls, data: Any) -> Any:
        # The API fills in the default CPU metric when ``metrics`` is empty, not only when absent.
        if isinstance(data, dict) and data.get("metrics") == []:
            data = {k: v for k, v in data.items() if k != "metrics"}
        return data

    @model_validator(mode="after")
    def _check(self) -> HPA:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas must be >= minReplicas (got {self.max_replicas} < {self.min_replicas})"
            )
        return self


class KedaKafka(Spec):
    """KEDA's Kafka scaler: a ScaledObject with one kafka trigger."""

    kind: Literal["keda-kafka"]
    min_replicas: int = Field(0, ge=0)
    max_replicas: int = Field(100, ge=1)
    lag_threshold: int = Field(10, gt=0)
    activation_lag_threshold: int = Field(0, ge=0)
    offset_reset_policy: Literal["latest", "earliest"] = "latest"
    allow_idle_consumers: bool = False
    limit_to_partitions_with_lag: bool = False
    ensure_even_distribution_of_partitions: bool = False
    exclude_persistent_lag: bool = False
    scale_to_zero_on_invalid_offset: bool = False
    polling_interval: int = Field(30, ge=1)
    cooldown_period: int = Field(300, ge=0)
    topic: str | None = None
    consumer_group: str | None = None
    behavior: Behavior | None = None


class Knative(Spec):
    """The Knative Pod Autoscaler's per-revision settings (config-autoscaler keys)."""

    kind: Literal["knative"]
    container_concurrency: int = Field(0, ge=0)
    target: float | None = Field(None, gt=0)
    target_utilization_percentage: float = Field(70.0, gt=0, le=100)
    metric: Literal["concurrency", "rps"] = "concurrency"
    stable_window: Duration = 60.0
    panic_window_percentage: float = Field(10.0, gt=0, le=100)
    panic_threshold_percentage: float = Field(200.0, gt=0)
    max_scale_up_rate: float = Field(1000.0, gt=1)
    max_scale_down_rate: float = Field(2.0, gt=1)
    scale_to_zero_grace_period: Duration = 30.0
    scale_down_delay: Duration = 0.0
    initial_scale: int = Field(1, ge=0)
    min_scale: int = Field(0, ge=0)
    max_scale: int = Field(0, ge=0)


class Predictive(Spec):
    """Scale ahead of a load forecast (XGBoost by default)."""

    kind: Literal["predictive"]
    model: Literal["xgboost", "linear", "seasonal-naive"] = "xgboost"
    horizon: Duration = 600.0
    season: Duration = Field(86400.0, gt=0)  # the period the load repeats with (seasonal-naive)
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(ge=1)
    target_utilization: Fraction = 0.7
    metrics: list[MetricSpec] | None = None


class Learned(Spec):
    """A reinforcement-learning scaling policy."""

    kind: Literal["rl"]
    policy: str | None = None
    algorithm: Literal["ppo", "dqn", "a2c"] = "ppo"
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(ge=1)


class Manual(Spec):
    """No autoscaler: replicas change only when a person says so (timeline ``scale``)."""

    kind: Literal["manual"]


Autoscaler = Annotated[HPA | KedaKafka | Knative | Predictive | Learned | Manual, Field(discriminator="kind")]


# --- rollout strategies -----------------------------------------------------


def _zero(v: int | str) -> bool:
    return v == 0 if isinstance(v, int) else float(v.rstrip("%")) == 0.0


def _check_fenceposts(max_surge: int | str, max_unavailable: int | str) -> None:
    if _zero(max_surge) and _zero(max_unavailable):
        raise ValueError(
            f"maxSurge and maxUnavailable cannot both be 0 (got maxSurge={max_surge}, "
            f"maxUnavailable={max_unavailable}): the rollout could never replace a pod"
        )
    if isinstance(max_unavailable, str) and float(max_unavailable.rstrip("%")) > 100:
        raise ValueError(f"maxUnavailable must not be greater than 100% (got {max_unavailable})")


class RollingUpdateParams(Spec):
    """``strategy.rollingUpdate`` of a Deployment (apps/v1 defaults 25 % / 25 %)."""

    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"

    @model_validator(mode="after")
    def _check(self) -> RollingUpdateParams:
        _check_fenceposts(self.max_surge, self.max_unavailable)
        return self


class AnalysisRef(Spec):
    template_name: str
    cluster_scope: bool = False


class AnalysisArg(Spec):
    name: str
    value: str | None = None
    value_from: dict[str, Any] | None = None


class RolloutAnalysis(Spec):
    templates: list[AnalysisRef] = Field(min_length=1)
    args: list[AnalysisArg] | None = None
    starting_step: int | None = Field(None, ge=0)


class Pause(Spec):
    duration: Duration | None = None


class SetCanaryScale(Spec):
    replicas: int | None = Field(None, ge=0)
    weight: int | None = Field(None, ge=0, le=100)
    match_traffic_weight: bool | None = None


class CanaryStep(Spec):
    """One Argo Rollouts canary step: exactly one of its keys."""

    set_weight: int | None = Field(None, ge=0, le=100)
    pause: Pause | None = None
    analysis: RolloutAnalysis | None = None
    set_canary_scale: SetCanaryScale | None = None
    experiment: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_pause(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pause" in data and data["pause"] is None:
            data = {**data, "pause": {}}
        return data

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        set_keys = [
            k
            for k in ("set_weight", "pause", "analysis", "set_canary_scale", "experiment")
            if getattr(self, k) is not None
        ]
        if len(set_keys) != 1:
            raise ValueError(
                "a canary step has exactly one of setWeight, pause, analysis, "
                f"setCanaryScale, experiment (got {len(set_keys)})"
            )
        return self


class Canary(Spec):
    steps: list[CanaryStep] | None = None
    analysis: RolloutAnalysis | None = None
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"
    traffic_routing: dict[str, Any] | None = None
    dynamic_stable_scale: bool = False
    scale_down_delay_seconds: int = Field(30, ge=0)
    abort_scale_down_delay_seconds: int = Field(30, ge=0)
    stable_service: str | None = None
    canary_service: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Canary:
        _check_fenceposts(self.max_surge, self.max_unavailable)
        return self


class BlueGreen(Spec):
    active_service: str | None = None
    preview_service: str | None = None
    preview_replica_count: int | None = Field(None, ge=0)
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: int | None = Field(None, ge=0)
    scale_down_delay_seconds: int = Field(30, ge=0)
    scale_down_delay_revision_limit: int | None = Field(None, ge=0)
    abort_scale_down_delay_seconds: int = Field(30, ge=0)
    pre_promotion_analysis: RolloutAnalysis | None = None
    post_promotion_analysis: RolloutAnalysis | None = None
    max_unavailable: IntOrPercent = 0


class AutoRollback(Spec):
    """devopsim's own: roll back when analysis fails or the SLO burns too fast."""

    on_analysis_failure: bool = True
    slo_burn_rate: float | None = Field(None, gt=0)
    window: Duration = 300.0


class Strategy(Spec):
    """A Deployment strategy, or an Argo Rollouts canary / blue-green strategy."""

    type: Literal["RollingUpdate", "Recreate", "Canary", "BlueGreen"] = "RollingUpdate"
    rolling_update: RollingUpdateParams | None = None
    canary: Canary | None = None
    blue_green: BlueGreen | None = None
    auto_rollback: AutoRollback | None = None

    @model_validator(mode="after")
    def _check(self) -> Strategy:
        if self.type == "Canary" and self.canary is None:
            raise ValueError("type Canary needs a 'canary' section")
        if self.type == "BlueGreen" and self.blue_green is None:
            raise ValueError("type BlueGreen needs a 'blueGreen' section")
        if self.rolling_update is not None and self.type != "RollingUpdate":
            raise ValueError(f"'rollingUpdate' only goes with type RollingUpdate (type is {self.type})")
        return self


# --- Argo AnalysisTemplate -----------------------------------------------------


class PrometheusProvider(Spec):
    query: str
    address: str | None = None
    timeout: int | None = None


class MetricProvider(Spec):
    prometheus: PrometheusProvider | None = None
    job: dict[str, Any] | None = None
    web: dict[str, Any] | None = None
    kayenta: dict[str, Any] | None = None


class AnalysisMetric(Spec):
    name: str
    interval: Duration | None = None
    initial_delay: Duration | None = None
    count: int | None = Field(None, ge=0)
    success_condition: str | None = None
    failure_condition: str | None = None
    failure_limit: int = Field(0, ge=-1)
    inconclusive_limit: int = Field(0, ge=0)
    consecutive_error_limit: int = Field(4, ge=0)
    consecutive_success_limit: int = Field(0, ge=0)
    dry_run: bool = False
    provider: MetricProvider


class AnalysisTemplate(Spec):
    """An Argo Rollouts ``AnalysisTemplate`` spec."""

    args: list[AnalysisArg] | None = None
    metrics: list[AnalysisMetric] = Field(min_length=1)
    dry_run: list[dict[str, Any]] | None = None
