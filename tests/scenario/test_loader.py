from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devopsim.cli import app
from devopsim.errors import ScenarioError
from devopsim.scenario import ENVIRONMENTS, load_scenario
from tests.helpers import EXAMPLES

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_four_examples():
    assert {p.name for p in EXAMPLE_FILES} >= {"mmc.yaml", "checkout.yaml", "canary.yaml", "global.yaml"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_validate(path: Path):
    loaded = load_scenario(path)
    sc = loaded.scenario
    assert sc.services and sc.traffic.classes
    # Every field of the examples is simulated (global.yaml's platform, clients and placement too).
    assert loaded.unsupported == []


def test_checkout_unsupported_names_each_field():
    loaded = load_scenario(EXAMPLES / "checkout.yaml")
    paths = {u.path for u in loaded.unsupported}
    assert "services.frontend.autoscaler" not in paths  # the HPA is simulated (control plane)
    assert "services.frontend.readinessProbe" not in paths  # probes are simulated (control.probes)
    assert "services.catalog.endpoints.list.steps[1].cache" not in paths  # the stateful tier
    assert "datastores" not in paths
    assert "monitoring.rules" not in paths  # rules are evaluated (observe.rules)
    assert "timeline[2].fault" not in paths  # the pod-kill is simulated (chaos)


def test_stateful_leftovers_are_named_with_file_and_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(
        """name: s
duration: 1m
traffic: {rate: 10/s, classes: [{name: x, entry: a.go}]}
services:
  a:
    endpoints:
      go:
        steps:
          - cache:
              store: kv
              keyspace: k
              onMiss:
                - work: exp(1ms)
                - query: db.read
  b:
    consume: {topic: ev.t, group: g, steps: [{work: exp(1ms)}]}
    autoscaler: {kind: keda-kafka, maxReplicas: 4}
datastores:
  kv: {kind: redis, memory: 1Mi, eviction: allkeys-lfu, keyspaces: {k: {keys: 10, size: 1Ki}}}
  db: {kind: postgres, advisor: true, operations: {read: {work: exp(1ms)}}}
  ev: {kind: kafka, brokers: 1, topics: {t: {partitions: 2}}}
"""
    )
    loaded = load_scenario(p)
    got = {u.path: u for u in loaded.unsupported}
    assert set(got) == {
        "services.a.endpoints.go.steps[0].cache.onMiss[0]",
        "datastores.kv.eviction",
        "datastores.db.advisor",
    }
    assert got["datastores.kv.eviction"].line == 19
    assert "issue #6" in str(got["services.a.endpoints.go.steps[0].cache.onMiss[0]"])


def test_checkout_fields_are_read_field_for_field():
    sc = load_scenario(EXAMPLES / "checkout.yaml").scenario
    fe = sc.services["frontend"]
    assert fe.concurrency == 32
    assert fe.resources.limits.cpu == 1.0 and fe.resources.requests.cpu == 0.5
    assert fe.resources.requests.memory == 256 * 2**20
    assert fe.endpoints["checkout"].retries.attempts == 2
    assert fe.endpoints["checkout"].retries.backoff == pytest.approx(0.05)
    assert fe.autoscaler.max_replicas == 30
    assert fe.autoscaler.metrics[0].resource.target.average_utilization == 70
    assert sc.services["catalog"].autoscaler.behavior.scale_down.stabilization_window_seconds == 300
    assert sc.traffic.shares() == pytest.approx([0.8, 0.2])
    assert sc.clock0 == 0.0 and sc.duration == 86400
    assert sc.slos[1].latency == pytest.approx(0.3) and sc.slos[1].class_ == "browse"
    ops = sc.datastores["orders-db"].operations
    assert ops["read"].work.mean == pytest.approx(
        0.0015
    )  # "lognormal(mean=1.5ms, cv=1)" inside a flow mapping


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_presets_load_and_follow_the_seed_table(env: str):
    sc = load_scenario(env=env).scenario
    if env == "production":
        assert sc.services["gateway"].port == 8080
        assert all(s.autoscaler.kind == "hpa" for s in sc.services.values() if s.autoscaler)
        assert sc.datastores["main-db"].topology == "primary-replica"
        assert sc.security.tls is True
    elif env == "development":
        app_ = sc.services["app"]
        assert app_.port == 3000 and app_.ports["debug"] == 9229 and app_.replicas == 1
        assert app_.hot_reload and app_.autoscaler.kind == "manual" and app_.strategy.type == "Recreate"
        assert sc.datastores["local-db"].seed_data is True
        assert sc.security.tls is False and sc.security.debug_endpoints is True
    else:
        app_ = sc.services["app"]
        assert sorted(app_.ports.values()) == [9000, 9001, 9002]
        assert app_.autoscaler.kind == "predictive"
        db = sc.datastores["cluster-db"]
        assert db.topology == "multi-master" and db.nodes == 5 and db.backup.geo_redundant
        assert set(sc.platform.clouds) == {"aws", "azure", "gcp", "digitalocean"}
        assert sc.platform.front_door.kind == "geodns"


def test_overrides_set_existing_and_new_fields():
    loaded = load_scenario(
        EXAMPLES / "mmc.yaml",
        overrides=[
            "services.api.replicas=3",
            "traffic.rate=2/s",
            "traffic.classes[0].name=read",
            "seed=9",
            "services.api.queue.capacity=5",
        ],
    )
    sc = loaded.scenario
    assert sc.services["api"].replicas == 3
    assert sc.traffic.rate.peak() == 2.0
    assert sc.traffic.classes[0].name == "read"
    assert sc.seed == 9
    assert sc.services["api"].queue.capacity == 5
    assert loaded.source.where(("services", "api", "replicas")) == ("<--set>", None)


def test_override_mapping_values_and_errors():
    sc = load_scenario(
        EXAMPLES / "mmc.yaml", overrides={"services.api.resources": {"requests": {"cpu": 2}}}
    ).scenario
    assert sc.services["api"].resources.requests.cpu == 2
    with pytest.raises(ScenarioError, match="expected PATH=VALUE"):
        load_scenario(EXAMPLES / "mmc.yaml", overrides=["services.api.replicas"])
    with pytest.raises(ScenarioError, match="cannot follow"):
        load_scenario(EXAMPLES / "mmc.yaml", overrides=["traffic.classes[5].name=x"])


def test_unknown_environment():
    with pytest.raises(ScenarioError, match="unknown environment 'staging'"):
        load_scenario(env="staging")


def test_init_writes_a_preset_that_validates(tmp_path: Path):
    out = tmp_path / "prod.yaml"
    res = CliRunner().invoke(app, ["init", "--env", "production", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert load_scenario(out).scenario.name == "production"
    again = CliRunner().invoke(app, ["init", "--env", "production", "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_validate_reports_ok_and_not_simulated(tmp_path: Path):
    # A field still only accepted (the security posture) is reported with the file's own.
    extra = tmp_path / "secure.yaml"
    extra.write_text((EXAMPLES / "mmc.yaml").read_text() + "security: {tls: true}\n")
    res = CliRunner().invoke(app, ["validate", *map(str, EXAMPLE_FILES), str(extra), "--verbose"])
    assert res.exit_code == 0, res.output
    assert res.output.count("ok ") == len(EXAMPLE_FILES) + 1
    assert "not simulated yet" in res.output


def test_yaml_flow_mappings_keep_call_syntax_whole():
    text = (
        "duration: 1m\ntraffic: {rate: step(1/s, 30s: 2/s), classes: [{name: a, entry: s.e}]}\n"
        "services: {s: {endpoints: {e: {steps: [{work: lognormal(mean=1ms, cv=2)}, "
        "{wait: uniform(1ms, 2ms)}]}}}}\n"
    )
    sc = load_scenario(text=text).scenario
    steps = sc.services["s"].endpoints["e"].steps
    assert steps[0].work.cv == pytest.approx(2.0)
    assert steps[1].wait.mean == pytest.approx(0.0015)
    assert sc.traffic.rate.peak() == 2.0
