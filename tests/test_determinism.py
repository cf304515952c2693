"""Same scenario and seed: byte-identical results. Named streams: components do not disturb each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import devopsim
from devopsim.cli import app
from devopsim.engine.runner import Simulation
from devopsim.scenario import load_scenario
from tests.helpers import EXAMPLES


def _run_cli(out: Path, *extra: str) -> bytes:
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(EXAMPLES / "checkout.yaml"),
            "--set",
            "duration=20m",
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ],
    )
    assert res.exit_code == 0, res.output
    return (out / "summary.json").read_bytes()


def test_same_seed_gives_byte_identical_summary(tmp_path: Path) -> None:
    a = _run_cli(tmp_path / "a")
    b = _run_cli(tmp_path / "b")
    assert a == b
    assert (tmp_path / "a" / "events.jsonl").read_bytes() == (tmp_path / "b" / "events.jsonl").read_bytes()
    ma = devopsim.simulate(EXAMPLES / "checkout.yaml", overrides=["duration=20m"]).metrics
    mb = devopsim.simulate(EXAMPLES / "checkout.yaml", overrides=["duration=20m"]).metrics
    assert ma.equals(mb)


def test_a_different_seed_gives_a_different_summary(tmp_path: Path) -> None:
    a = _run_cli(tmp_path / "a")
    c = _run_cli(tmp_path / "c", "--seed", "43")
    assert a != c


SHOP = {
    "duration": "30m",
    "plane": "request",
    "traffic": {"rate": "40/s", "classes": [{"name": "browse", "entry": "web.home", "share": 1.0}]},
    "services": {
        "web": {
            "replicas": 2,
            "concurrency": 8,
            "endpoints": {"home": {"steps": [{"work": "lognormal(mean=5ms, cv=1)"}, {"call": "db.get"}]}},
        },
        "db": {"replicas": 1, "concurrency": 4, "endpoints": {"get": {"steps": [{"work": "exp(3ms)"}]}}},
    },
}


def test_adding_an_unrelated_service_changes_nothing_else() -> None:
    bigger = {
        **SHOP,
        "services": {
            **SHOP["services"],
            "batch": {
                "replicas": 3,
                "concurrency": 2,
                "endpoints": {"run": {"steps": [{"work": "exp(20ms)"}]}},
            },
        },
        "traffic": {
            "rate": "60/s",
            "classes": [
                {"name": "browse", "entry": "web.home", "share": 2 / 3},
                {"name": "jobs", "entry": "batch.run", "share": 1 / 3},
            ],
        },
    }
    a = devopsim.simulate(SHOP).summary
    b = devopsim.simulate(bigger).summary
    # The browse class gets 40/s in both runs from the same named stream, and web and db draw
    # their work from their own streams: everything about them is identical.
    assert a["classes"]["browse"] == b["classes"]["browse"]
    for name in ("web", "db"):
        assert a["services"][name] == b["services"][name]
    # The arrival sample path itself is the same.
    ta = Simulation(load_scenario(text=__import__("yaml").safe_dump(SHOP))).traffic.window(0, 1800)
    tb = Simulation(load_scenario(text=__import__("yaml").safe_dump(bigger))).traffic.window(0, 1800)
    np.testing.assert_array_equal(ta[0], tb[0][tb[1] == 0])


def test_examples_run_deterministically_from_python() -> None:
    for name in ("mmc.yaml", "canary.yaml", "global.yaml"):
        over = ["duration=10m", "warmup=1m"]
        a = devopsim.simulate(EXAMPLES / name, overrides=over).summary
        b = devopsim.simulate(EXAMPLES / name, overrides=over).summary
        assert a == b
        assert a["littles_law"]["relative_error"] < 1e-2


TWICE = """
name: twice
duration: 3m
plane: flow
traffic: {rate: 200/s, classes: [{name: order, entry: api.order}]}
services:
  api: {replicas: 2, concurrency: 64, endpoints: {order: {timeout: 5s,
         steps: [{work: exp(2ms)}, {query: db.read}, {query: db.write}, {publish: events.orders}]}}}
  db-replicas: {replicas: 1, endpoints: {noop: {steps: [{work: exp(1ms)}]}}}
datastores:
  db: {kind: postgres, topology: primary-replica, replicas: 1, readsFrom: replicas,
       operations: {read: {work: exp(1ms)}, write: {work: exp(2ms)}}}
  events: {kind: kafka, brokers: 3, topics: {orders: {partitions: 6, replicationFactor: 3}}}
timeline:
  - {at: 60s, fault: {kind: broker-loss, target: events}}
"""


def test_one_loaded_scenario_runs_twice_alike(tmp_path: Path) -> None:
    """Compiling a run adds the datastores' services to the scenario; a second run of the same
    loaded scenario finds them there and must give the same results (it once lost the
    datastores' aliases: KeyError 'db.read'). A user service takes the name the read replicas
    would get, so theirs is the next one (``db-replicas-x``) both times."""
    p = tmp_path / "twice.yaml"
    p.write_text(TWICE)
    loaded = load_scenario(p)
    first = Simulation(loaded).run().summary
    second = Simulation(loaded).run().summary
    assert "db-replicas-x" in first["services"] and "events-election" in first["services"]
    assert first["services"]["db-replicas-x"]["requests"] > 0
    assert second["services"] == first["services"]
    assert second["classes"] == first["classes"]
