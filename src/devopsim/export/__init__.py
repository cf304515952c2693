"""Exports of a stored run: OpenMetrics text for Prometheus backfill, Grafana dashboards."""
