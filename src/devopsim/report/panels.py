"""The report's time-series panels, as plain JSON-ready dicts.

Each panel: ``id``, ``title``, ``unit`` (how the axis is labelled and values
printed), ``kind`` (``line`` or ``step``), ``stack`` and ``series``; a series
is ``name``, ``color``, ``run`` (which run's time axis, 0 or 1), ``dash`` and
``y`` (one value per grid time, ``None`` where there is nothing). Colours stay
with a service, a request class or an error cause on every panel, and in a
comparison run A is drawn solid, run B dashed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from devopsim.report.run import RunData
from devopsim.report.series import Grid

__all__ = ["SERVICE_COLORS", "Palette", "build_panels", "markers", "to_json_list"]

# Tableau 10 (services) and a darker set (request classes): readable, distinct, colour-blind aware.
SERVICE_COLORS = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
]  # fmt: skip
CLASS_COLORS = ["#1f4e79", "#a63603", "#2c7a2c", "#6a3d9a", "#b15928", "#01665e", "#8c2d04", "#54278f"]
OUTCOME_COLORS = {
    "ok": "#59a14f",
    "timeout": "#f28e2b",
    "rejected": "#e15759",
    "downstream": "#b07aa1",
    "injected": "#9c755f",
    "unavailable": "#76b7b2",
}
ERROR_CAUSES = ("timeout", "rejected", "downstream", "injected", "unavailable")

#: Event kinds drawn as markers on every time axis (pod lifecycle and scaling have their own panel;
#: alert notifications and pending states would only crowd the axis).
MARKER_KINDS = {"deploy", "rollback", "pod.killed", "traffic.change", "alert.firing", "alert.resolved"}
MARKER_PREFIXES = ("datastore.", "fault", "chaos.", "incident")


class Palette:
    """Stable colours per service and per request class (by order of first appearance)."""

    def __init__(self, services: Sequence[str] = (), classes: Sequence[str] = ()) -> None:
        self.services: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        for s in services:
            self.service(s)
        for c in classes:
            self.cls(c)

    def service(self, name: str) -> str:
        """The colour of a service."""
        if name not in self.services:
            self.services[name] = SERVICE_COLORS[len(self.services) % len(SERVICE_COLORS)]
        return self.services[name]

    def service_rank(self, name: str) -> int:
        """Where a service comes in the palette (its place in tables and legends)."""
        self.service(name)
        return list(self.services).index(name)

    def class_rank(self, name: str) -> int:
        """Where a request class comes in the palette."""
        self.cls(name)
        return list(self.classes).index(name)

    def cls(self, name: str) -> str:
        """The colour of a request class."""
        if name not in self.classes:
            self.classes[name] = CLASS_COLORS[len(self.classes) % len(CLASS_COLORS)]
        return self.classes[name]


def to_json_list(y: np.ndarray, digits: int = 4) -> list[float | None]:
    """Values rounded to ``digits`` significant digits; NaN and infinities become ``None``."""
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(y)
    out = np.where(finite, y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(out != 0, np.floor(np.log10(np.abs(out))), 0.0)
    scale = 10.0 ** (digits - 1 - mag)
    out = np.round(out * scale) / scale
    return [float(v) if f else None for v, f in zip(out.tolist(), finite.tolist(), strict=True)]


def _series(name: str, y: np.ndarray, color: str, run: int = 0, dash: bool = False) -> dict[str, Any]:
    return {"name": name, "y": to_json_list(y), "color": color, "run": run, "dash": dash}


def _panel(pid: str, title: str, unit: str, series: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "title": title,
        "unit": unit,
        "kind": "line",
        "stack": False,
        "series": series,
        **extra,
    }


def build_panels(run: RunData, grid: Grid, palette: Palette, run_index: int = 0) -> list[dict[str, Any]]:
    """Every time-series panel the run's metrics allow, in reading order."""
    ri = run_index
    panels: list[dict[str, Any]] = []
    step = grid.step

    # -- traffic and what clients saw
    by_cls = grid.rate("devopsim_client_requests_total", ("class",))
    if by_cls:
        order = sorted(by_cls, key=lambda k: palette.class_rank(k[0]))
        series = [_series(k[0], by_cls[k], palette.cls(k[0]), ri) for k in order]
        panels.append(_panel("traffic", "Traffic: requests per second by class", "req/s", series))
    q = grid.quantiles("devopsim_client_request_duration_seconds_bucket", (0.5, 0.99), ("class",))
    if q:
        series = []
        for (cls,), qv in sorted(q.items(), key=lambda kv: palette.class_rank(kv[0][0])):
            series.append(_series(f"{cls} p99", qv[0.99], palette.cls(cls), ri))
            series.append({**_series(f"{cls} p50", qv[0.5], palette.cls(cls), ri), "thin": True})
        panels.append(
            _panel(
                "latency",
                "Latency by class: p99 (thick) and p50 (thin)",
                "s",
                series,
                note=f"histogram_quantile over {step:g} s windows of the client histogram "
                "(Prometheus default buckets, linear interpolation inside a bucket)",
                log=True,
            )
        )
    outcomes = grid.rate("devopsim_client_requests_total", ("outcome",))
    if outcomes:
        series = [
            _series(k[0], v, OUTCOME_COLORS.get(k[0], "#999999"), ri)
            for k, v in outcomes.items()
            if k[0] in ERROR_CAUSES
        ]
        total = sum(outcomes.values())
        errs = sum((v for k, v in outcomes.items() if k[0] != "ok"), np.zeros_like(grid.times))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total > 0, errs / total, np.nan)
        panels.append(_panel("errors", "Errors per second by cause", "req/s", series, stack=True))
        panels.append(
            _panel(
                "error_ratio",
                "Error ratio (failed / all client requests)",
                "%",
                [_series("error ratio", ratio, "#e15759", ri)],
            )
        )

    # -- services
    svc_lat = grid.quantiles("http_request_duration_seconds_bucket", (0.99,), ("service",))
    if svc_lat:
        order = sorted(svc_lat, key=lambda k: palette.service_rank(k[0]))
        series = [_series(k[0], svc_lat[k][0.99], palette.service(k[0]), ri) for k in order]
        panels.append(
            _panel(
                "service_latency",
                "Service latency p99 (server side, incl. downstream calls)",
                "s",
                series,
                log=True,
            )
        )
    svc_rate = grid.rate("http_requests_total", ("service",))
    if svc_rate:
        series = [_series(k[0], v, palette.service(k[0]), ri) for k, v in svc_rate.items()]
        panels.append(_panel("service_rate", "Requests per second by service", "req/s", series))
    spec = grid.gauge("kube_deployment_spec_replicas", ("deployment",))
    ready = grid.gauge("kube_pod_status_ready", ("service",))
    if spec or ready:
        series = []
        for (name,), v in ready.items():
            series.append(_series(f"{name} ready", v, palette.service(name), ri))
        for (name,), v in spec.items():
            series.append({**_series(f"{name} desired", v, palette.service(name), ri), "thin": True})
        panels.append(
            _panel(
                "replicas",
                "Replicas: ready pods (thick) and desired (thin)",
                "pods",
                series,
                kind="step",
            )
        )
    cpu = grid.rate("container_cpu_usage_seconds_total", ("service",))
    if cpu:
        series = [_series(k[0], v, palette.service(k[0]), ri) for k, v in cpu.items()]
        panels.append(_panel("cpu", "CPU used by service", "cores", series))
    mem = grid.gauge("container_memory_working_set_bytes", ("service",))
    if mem:
        series = [_series(k[0], v, palette.service(k[0]), ri) for k, v in mem.items()]
        panels.append(_panel("memory", "Memory working set by service", "bytes", series))
    qlen = grid.gauge("devopsim_replica_queue_length", ("service",))
    if qlen:
        series = [_series(k[0], v, palette.service(k[0]), ri) for k, v in qlen.items()]
        panels.append(_panel("queue", "Requests queued (waiting for a worker) by service", "req", series))

    # -- the stateful tier, when the run has one
    panels += _datastore_panels(grid, palette, ri)
    return panels


def _datastore_panels(grid: Grid, palette: Palette, ri: int) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    commits = grid.rate("pg_stat_database_xact_commit", ("datastore",))
    rollbacks = grid.rate("pg_stat_database_xact_rollback", ("datastore",))
    if commits:
        series = [_series(f"{k[0]} commits", v, palette.service(k[0]), ri) for k, v in commits.items()]
        series += [
            {**_series(f"{k[0]} rollbacks", v, palette.service(k[0]), ri), "thin": True}
            for k, v in rollbacks.items()
        ]
        panels.append(_panel("pg_tx", "PostgreSQL transactions per second", "tx/s", series))
    lag = grid.gauge("pg_replication_lag_seconds", ("datastore", "replica"))
    if lag:
        series = [_series(f"{k[0]} {k[1]}", v, palette.service(k[0]), ri) for k, v in lag.items()]
        panels.append(_panel("pg_lag", "PostgreSQL replication lag", "s", series))
    up = {**grid.gauge("pg_up", ("datastore",)), **grid.gauge("redis_up", ("datastore",))}
    if up:
        series = [_series(k[0], v, palette.service(k[0]), ri) for k, v in up.items()]
        panels.append(_panel("ds_up", "Datastore up (exporter's *_up)", "up", series, kind="step"))
    hits = grid.increase("redis_keyspace_hits_total", ("datastore",))
    misses = grid.increase("redis_keyspace_misses_total", ("datastore",))
    if hits and misses:
        series = []
        for key, h in hits.items():
            m = misses.get(key, np.zeros_like(h))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(h + m > 0, h / (h + m), np.nan)
            series.append(_series(key[0], ratio, palette.service(key[0]), ri))
        panels.append(_panel("redis_hits", "Redis cache hit ratio", "%", series))
    used = grid.gauge("redis_memory_used_bytes", ("datastore",))
    if used:
        cap = grid.gauge("redis_memory_max_bytes", ("datastore",))
        series = [_series(f"{k[0]} used", v, palette.service(k[0]), ri) for k, v in used.items()]
        series += [
            {**_series(f"{k[0]} max", v, palette.service(k[0]), ri), "thin": True} for k, v in cap.items()
        ]
        panels.append(_panel("redis_mem", "Redis memory", "bytes", series))
    klag = grid.gauge("kafka_consumergroup_lag", ("consumergroup", "topic"))
    if klag:
        series = [_series(f"{k[0]} / {k[1]}", v, palette.service(k[0]), ri) for k, v in klag.items()]
        panels.append(_panel("kafka_lag", "Kafka consumer-group lag", "messages", series))
    return panels


def _label(ev: dict[str, Any]) -> str:
    kind = str(ev.get("kind", ""))
    if kind.startswith("alert."):
        return f"{ev.get('alertname', 'alert')} {kind.removeprefix('alert.')}"
    who = ev.get("service") or ev.get("datastore") or ev.get("target") or ev.get("alertname") or ""
    what = ev.get("version") or ev.get("to_version") or ev.get("fault") or ""
    return " ".join(str(p) for p in (kind, who, what) if p)


def markers(run: RunData) -> list[dict[str, Any]]:
    """Events to mark on every time axis: deploys, rollbacks, faults, alerts, incidents.

    Alerts and incidents come from the summary's ``alerts[]`` and ``incidents[]`` when present.
    """
    out: list[dict[str, Any]] = []
    alert_events = False
    for ev in run.events:
        kind = str(ev.get("kind", ""))
        if kind in MARKER_KINDS or kind.startswith(MARKER_PREFIXES):
            out.append({"t": float(ev["t"]), "label": _label(ev), "kind": kind.split(".")[0]})
            alert_events = alert_events or kind.startswith("alert.")
    for alert in [] if alert_events else run.summary.get("alerts") or []:
        t = _first(alert, ("fired_s", "firing_s", "active_at_s", "started_s", "start_s", "t"))
        if t is not None:
            name = alert.get("name") or alert.get("alertname") or "alert"
            out.append({"t": t, "label": f"alert {name}", "kind": "alert"})
    for inc in run.summary.get("incidents") or []:
        t = _first(inc, ("started_s", "start_s", "detected_s", "t"))
        if t is not None:
            out.append(
                {
                    "t": t,
                    "label": f"incident {inc.get('name') or inc.get('kind') or ''}".strip(),
                    "kind": "incident",
                }
            )
    out.sort(key=lambda m: m["t"])
    return out


def _first(d: dict[str, Any], keys: Sequence[str]) -> float | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, int | float):
            return float(v)
    return None
