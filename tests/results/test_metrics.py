"""Scraped series: the names and labels real exporters use, consistent with the summary."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import devopsim
from tests.helpers import EXAMPLES

POD_LABELS = {"namespace", "service", "version", "role", "pod", "node", "zone", "region", "cloud"}


@pytest.fixture(scope="module")
def checkout():
    return devopsim.simulate(
        EXAMPLES / "checkout.yaml",
        overrides=[
            "duration=30m",
            "warmup=0s",
            "plane=request",
            # fixed replica counts: these checks compare the last scrape with whole-run totals
            "services.frontend.autoscaler=null",
            "services.catalog.autoscaler=null",
        ],
    )


def _series(df, metric):
    sub = df[df["metric"] == metric]
    return [(json.loads(lbl), g) for lbl, g in sub.groupby("labels", observed=True)]


def test_metric_names_are_the_real_ones(checkout):
    names = set(checkout.metrics["metric"].astype(str).unique())
    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "kube_deployment_spec_replicas",
        "kube_deployment_status_replicas_available",
        "kube_pod_container_status_restarts_total",
        "kube_pod_status_ready",
        "devopsim_replica_queue_length",
        "devopsim_replica_in_flight",
        "devopsim_client_requests_total",
    ):
        assert name in names, name
    for name in names:
        assert name.startswith(
            ("http_", "container_", "kube_", "node_", "devopsim_", "ALERTS", "pg_", "redis_", "kafka_")
        ), name  # ALERTS*: rules; exporters


def test_pod_series_carry_the_pod_labels(checkout):
    for labels, _ in _series(checkout.metrics, "http_requests_total"):
        assert POD_LABELS | {"endpoint", "method", "code"} <= set(labels)
        assert labels["role"] == "stable" and labels["pod"].startswith(labels["service"] + "-")
    for labels, _ in _series(checkout.metrics, "container_cpu_usage_seconds_total"):
        assert set(labels) >= POD_LABELS and labels["container"] == labels["service"]


def test_request_counters_add_up_to_the_summary(checkout):
    """Every request a service received was answered (counted by code) or is still held at the end."""
    df = checkout.metrics
    last = df[df["t"] == df["t"].max()]
    totals: dict[str, float] = {}
    for metric in ("http_requests_total", "devopsim_replica_in_flight", "devopsim_replica_queue_length"):
        rows = last[last["metric"] == metric]
        for lbl, v in zip(rows["labels"], rows["value"], strict=True):
            name = json.loads(lbl)["service"]
            totals[name] = totals.get(name, 0) + v
    for name, svc in checkout.summary["services"].items():
        assert totals[name] == svc["requests"], name


def test_histograms_are_cumulative_and_end_at_count(checkout):
    df = checkout.metrics
    end = df["t"].max()
    last = df[df["t"] == end]
    buckets = last[last["metric"] == "http_request_duration_seconds_bucket"]
    counts = {
        json.dumps({k: v for k, v in json.loads(lbl).items()}, sort_keys=True): val
        for lbl, val in zip(
            last[last["metric"] == "http_request_duration_seconds_count"]["labels"],
            last[last["metric"] == "http_request_duration_seconds_count"]["value"],
            strict=True,
        )
    }
    groups: dict[str, list[tuple[float, float]]] = {}
    for lbl, val in zip(buckets["labels"], buckets["value"], strict=True):
        d = json.loads(lbl)
        le = d.pop("le")
        groups.setdefault(json.dumps(d, sort_keys=True), []).append((float(le), val))
    assert groups
    for key, pts in groups.items():
        pts.sort()
        vals = [v for _, v in pts]
        assert vals == sorted(vals)
        assert pts[-1][0] == float("inf") and vals[-1] == counts[key]


def test_cpu_counter_rate_matches_utilisation(checkout):
    df = checkout.metrics
    cpu = df[df["metric"] == "container_cpu_usage_seconds_total"]
    total_cpu = 0.0
    for lbl, g in cpu.groupby("labels", observed=True):
        if json.loads(lbl)["service"] == "frontend":
            total_cpu += g["value"].max()
    s = checkout.summary["services"]["frontend"]
    capacity = 1.0 * s["replicas"]["mean"] * 1800  # 1 core limit x replicas x seconds
    assert total_cpu / capacity == pytest.approx(s["utilization"], rel=1e-3)


def test_replica_gauges(checkout):
    expect = {"frontend": 3, "catalog": 2, "cart": 2}
    seen = set()
    for labels, g in _series(checkout.metrics, "kube_deployment_status_replicas_available"):
        name = labels["deployment"]
        if name in checkout.summary.get("datastores", {}) or name.endswith("-replicas"):
            continue  # the stateful tier's nodes (see tests/stateful)
        seen.add(name)
        assert (g["value"] == expect[name]).all()
    assert seen == set(expect)


def test_parquet_has_the_contract_columns(checkout, tmp_path):
    files = checkout.write(tmp_path / "run")
    assert sorted(f.name for f in files) == ["events.jsonl", "metrics.parquet", "report.html", "summary.json"]
    table = pq.read_table(tmp_path / "run" / "metrics.parquet")
    assert table.column_names == ["t", "metric", "labels", "value"]
    df = table.to_pandas()
    assert len(df) == len(checkout.metrics)
    assert np.isfinite(df["value"]).all()
    json.loads(df["labels"].iloc[0])
    # Scrapes every 15 s, from 0 to the end.
    times = np.unique(df["t"])
    assert times[0] == 0 and times[-1] == 1800 and np.allclose(np.diff(times), 15)
    events = [json.loads(x) for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert events[0]["kind"] == "run.start" and events[-1]["kind"] == "run.end"
    assert all(a["t"] <= b["t"] for a, b in itertools.pairwise(events))


def test_every_pod_series_has_the_pod_labels(checkout):
    store = checkout.store
    for name in store.metric_names:
        for sid in store.series_of(name):
            labels = store.labels_of(sid)
            if "pod" in labels:
                assert set(labels) >= POD_LABELS, (name, labels)


def test_network_bytes_follow_requests_and_responses(checkout):
    """cAdvisor network counters: requests in x REQUEST_BYTES, responses out x RESPONSE_BYTES."""
    from devopsim.observe.scrape import REQUEST_BYTES, RESPONSE_BYTES

    df = checkout.metrics
    last = df[df["t"] == df["t"].max()]

    def per_pod(metric):
        rows = last[last["metric"] == metric]
        out: dict[str, float] = {}
        for lbl, v in zip(rows["labels"], rows["value"], strict=True):
            pod = json.loads(lbl)["pod"]
            out[pod] = out.get(pod, 0.0) + v
        return out

    answered = per_pod("http_requests_total")
    held = {
        p: a + b
        for (p, a), b in zip(
            per_pod("devopsim_replica_in_flight").items(),
            per_pod("devopsim_replica_queue_length").values(),
            strict=True,
        )
    }
    tx, rx = (
        per_pod("container_network_transmit_bytes_total"),
        per_pod("container_network_receive_bytes_total"),
    )
    assert answered and set(answered) <= set(tx)
    for pod, n in answered.items():
        assert tx[pod] == n * RESPONSE_BYTES
        assert rx[pod] == (n + held.get(pod, 0.0)) * REQUEST_BYTES


def test_node_exporter_series_add_up_over_the_node(checkout):
    df = checkout.metrics
    last = df[df["t"] == df["t"].max()]
    cpu = last[last["metric"] == "node_cpu_seconds_total"]
    modes = {json.loads(lbl)["mode"]: v for lbl, v in zip(cpu["labels"], cpu["value"], strict=True)}
    pods_cpu = last[last["metric"] == "container_cpu_usage_seconds_total"]["value"].sum()
    # one implicit node: its user CPU is what its pods used (no pod left during this run)
    assert modes["user"] == pytest.approx(pods_cpu, rel=1e-9)
    assert modes["idle"] >= 0
    tot = last[last["metric"] == "node_memory_MemTotal_bytes"]["value"].iloc[0]
    avail = last[last["metric"] == "node_memory_MemAvailable_bytes"]["value"].iloc[0]
    ws = last[last["metric"] == "container_memory_working_set_bytes"]["value"].sum()
    assert tot - avail == pytest.approx(ws, rel=1e-9)
    phases = last[last["metric"] == "kube_pod_status_phase"]
    by_pod: dict[str, float] = {}
    for lbl, v in zip(phases["labels"], phases["value"], strict=True):
        by_pod[json.loads(lbl)["pod"]] = by_pod.get(json.loads(lbl)["pod"], 0.0) + v
    assert by_pod and all(v == 1.0 for v in by_pod.values())  # exactly one phase per pod


def test_a_gone_pod_gets_staleness_markers_and_leaves_instant_queries_at_once():
    from devopsim.observe.promql import Engine

    res = devopsim.simulate(
        {
            "name": "scale-down",
            "duration": "3m",
            "plane": "request",
            "monitoring": {"scrapeInterval": "15s"},
            "traffic": {"rate": "5/s", "classes": [{"name": "c", "entry": "api.op"}]},
            "services": {
                "api": {
                    "replicas": 3,
                    "terminationGracePeriodSeconds": 0,
                    "endpoints": {"op": {"steps": [{"work": "const(1ms)"}]}},
                }
            },
            "timeline": [{"at": "62s", "scale": {"service": "api", "replicas": 1}}],
        }
    )
    gone = [e["pod"] for e in res.events if e["kind"] == "pod.deleted"]
    assert len(gone) == 2
    t_st, ids = res.store.stale_markers()
    marked = {res.store.labels_of(int(s))["pod"] for s in ids}
    assert marked == set(gone) and set(t_st.tolist()) == {75.0}  # the first scrape after 62 s
    e = Engine(res.store)
    assert len(e.instant("kube_pod_status_ready", 74.0)) == 3
    assert len(e.instant("kube_pod_status_ready", 75.0)) == 1  # not 5 minutes later


def test_summary_start_is_the_origin_exports_use(checkout):
    from devopsim.export.openmetrics import DEFAULT_EPOCH, parse_start

    assert checkout.summary["start"] == "2026-01-05T00:00:00Z"  # checkout.yaml's start
    res = devopsim.simulate(
        EXAMPLES / "checkout.yaml", overrides=["duration=1m", "start=2026-03-02T10:30:00.5Z"]
    )
    assert res.summary["start"] == "2026-03-02T10:30:00.5Z"
    res = devopsim.simulate(EXAMPLES / "checkout.yaml", overrides=["duration=1m", "start=null"])
    assert parse_start(res.summary["start"]) == DEFAULT_EPOCH


def test_the_scrape_rebuilds_its_layout_only_when_the_pods_change(monkeypatch):
    from devopsim.observe.scrape import Scraper

    rebuilds, gens = [], []
    rebuild, scrape = Scraper._rebuild, Scraper.scrape

    def counting_rebuild(self, pods):
        rebuilds.append(self.platform.generation)
        rebuild(self, pods)

    def recording_scrape(self, t):
        gens.append(self.platform.generation)
        scrape(self, t)

    monkeypatch.setattr(Scraper, "_rebuild", counting_rebuild)
    monkeypatch.setattr(Scraper, "scrape", recording_scrape)
    res = devopsim.simulate(
        EXAMPLES / "checkout.yaml",
        overrides=["duration=20m", "services.frontend.autoscaler=null", "services.catalog.autoscaler=null"],
    )
    changes = sum(1 for a, b in itertools.pairwise([None, *gens]) if a != b)
    assert len(gens) == 81 and len(rebuilds) == changes < 20
    # between pod changes every scrape appends the same layout: a handful of tables, not one per scrape
    assert len(res.store.tables()) < 10
