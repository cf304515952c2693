"""A Grafana dashboard for a run: request rate, error ratio, latency p50/p99, CPU and replicas per service.

The panels query the metric names the twin emits (the real exporters' names), so
the same dashboard works on a real cluster. The dashboard is an importable JSON
model: a ``DS_PROMETHEUS`` data-source input, a ``service`` variable listing the
run's services, and a time range covering the run (simulated t=0 at ``start``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devopsim.observe.store import MetricStore

__all__ = ["PANELS", "dashboard"]

_SEL = 'service=~"$service"'
#: (title, unit, [(legend, PromQL)]) of every panel.
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "Request rate",
        "reqps",
        [("{{service}}", f"sum by (service) (rate(http_requests_total{{{_SEL}}}[5m]))")],
    ),
    (
        "Error ratio",
        "percentunit",
        [
            (
                "{{service}}",
                f'sum by (service) (rate(http_requests_total{{{_SEL}, code=~"5.."}}[5m]))'
                f" / sum by (service) (rate(http_requests_total{{{_SEL}}}[5m]))",
            )
        ],
    ),
    (
        "Latency p50 / p99",
        "s",
        [
            (
                f"{{{{service}}}} p{q}",
                f"histogram_quantile({q / 100:g}, sum by (service, le) "
                f"(rate(http_request_duration_seconds_bucket{{{_SEL}}}[5m])))",
            )
            for q in (50, 99)
        ],
    ),
    (
        "CPU (cores)",
        "short",
        [("{{service}}", f"sum by (service) (rate(container_cpu_usage_seconds_total{{{_SEL}}}[5m]))")],
    ),
    (
        "Replicas",
        "short",
        [
            ("{{deployment}} available", 'kube_deployment_status_replicas_available{deployment=~"$service"}'),
            ("{{deployment}} desired", 'kube_deployment_spec_replicas{deployment=~"$service"}'),
        ],
    ),
]


def _services(store: MetricStore) -> list[str]:
    names = {
        str(store.labels_of(sid).get("deployment", ""))
        for sid in store.series_of("kube_deployment_spec_replicas")
    }
    if not names - {""}:
        names = {
            str(store.labels_of(sid).get("service", "")) for sid in store.series_of("http_requests_total")
        }
    return sorted(names - {""})


def _iso(unix: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def dashboard(store: MetricStore, title: str, start: float, duration: float) -> dict[str, Any]:
    """The dashboard JSON model for ``store`` (a run of ``duration`` s whose t=0 is Unix ``start``)."""
    services = _services(store)
    ds = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    panels = []
    for i, (name, unit, targets) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": name,
                "datasource": ds,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {"refId": chr(ord("A") + k), "expr": expr, "legendFormat": legend, "datasource": ds}
                    for k, (legend, expr) in enumerate(targets)
                ],
            }
        )
    options = [{"text": "All", "value": "$__all", "selected": True}] + [
        {"text": s, "value": s, "selected": False} for s in services
    ]
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "title": title,
        "uid": None,
        "editable": True,
        "schemaVersion": 39,
        "tags": ["devopsim"],
        "time": {"from": _iso(start), "to": _iso(start + duration)},
        "timezone": "utc",
        "refresh": "",
        "templating": {
            "list": [
                {
                    "name": "service",
                    "label": "Service",
                    "type": "custom",
                    "query": ",".join(services),
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"text": ["All"], "value": ["$__all"]},
                    "options": options,
                }
            ]
        },
        "panels": panels,
    }
