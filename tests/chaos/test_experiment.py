"""Chaos Toolkit experiments: parsing, tolerances (Chaos Toolkit's rules), the run flow and the journal.

Expectations come from the Chaos Toolkit reference (SEMANTICS.md section 5.1) and from
the scenario's own numbers, computed here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devopsim.api import _load
from devopsim.chaos.experiment import load_experiment, parse_experiment
from devopsim.chaos.tolerance import jsonpath, within_tolerance
from devopsim.engine.runner import Simulation
from devopsim.errors import ChaosError, ExperimentError
from tests.helpers import EXAMPLES, one_service

AVAILABILITY = 'sum(rate(devopsim_client_requests_total{outcome="ok"}[2m])) / sum(rate(devopsim_client_requests_total[2m]))'


# --- tolerances ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tolerance", "value", "met"),
    [
        (True, True, True),
        (True, False, False),
        (False, 0, False),  # a bool tolerance is not an int comparison
        ("up", "up", True),
        ("up", "down", False),
        (200, 200, True),
        (200, {"status": 200, "body": "x"}, True),  # an int compares with value["status"]
        (200, {"status": 503}, False),
        ([0.99, 1.0], 0.995, True),
        ([0.99, 1.0], 0.98, False),
        ([0.99, 1.0], float("nan"), False),
        ([200, 201], {"status": 201}, True),  # a list holds allowed statuses
        (["a", "b", "c"], "b", True),
        (["a", "b", "c"], "d", False),
        ({"type": "range", "range": [1, 5]}, 5, True),
        ({"type": "range", "range": [1, 5]}, 5.01, False),
        ({"type": "range", "range": [0, 1], "target": "ratio"}, {"ratio": 0.5}, True),
        ({"type": "regex", "pattern": "^ok"}, "ok, all good", True),
        ({"type": "regex", "pattern": "^ok"}, "not ok", False),
        (
            {"type": "jsonpath", "path": "$.data.result[0].value[1]", "expect": 1},
            {"data": {"result": [{"value": [0, "1"]}]}},
            True,
        ),
        (
            {"type": "jsonpath", "path": "$.items[*].ready", "expect": True},
            {"items": [{"ready": True}, {"ready": True}]},
            True,
        ),
        (
            {"type": "jsonpath", "path": "$.items[*].ready", "expect": True},
            {"items": [{"ready": True}, {"ready": False}]},
            False,
        ),
        ({"type": "jsonpath", "path": "$.items[*]", "count": 2}, {"items": [1, 2]}, True),
        ({"type": "jsonpath", "path": "$.items[*]", "count": 3}, {"items": [1, 2]}, False),
        ({"type": "jsonpath", "path": "$.missing"}, {"items": []}, False),
    ],
)
def test_tolerances_follow_chaos_toolkit(tolerance: Any, value: Any, met: bool) -> None:
    assert within_tolerance(tolerance, value) is met


def test_jsonpath_subset() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2}], "d": {"c": 3}}}
    assert jsonpath("$.a.b[1].c", doc) == [2]
    assert jsonpath("$.a.b[*].c", doc) == [1, 2]
    assert sorted(jsonpath("$..c", doc)) == [1, 2, 3]
    assert jsonpath("$['a']['d']", doc) == [{"c": 3}]
    with pytest.raises(ChaosError, match="unsupported JSONPath"):
        jsonpath("$.a[?(@.c > 1)]", doc)


# --- parsing ----------------------------------------------------------------------------------


def _exp(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "title": "t",
        "description": "d",
        "steady-state-hypothesis": {
            "title": "available",
            "probes": [
                {
                    "type": "probe",
                    "name": "availability",
                    "tolerance": {"type": "range", "range": [0.99, 1.0]},
                    "provider": {"type": "prometheus", "query": AVAILABILITY},
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "cut-api-off",
                "provider": {"type": "fault", "fault": {"kind": "network-partition", "target": "api"}},
                "pauses": {"after": "3m"},
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "heal",
                "provider": {"type": "fault", "fault": {"kind": "recover", "target": "api"}},
            }
        ],
    }
    e.update(over)
    return e


def test_parse_reads_pauses_refs_and_notes() -> None:
    raw = _exp(configuration={"k": 1}, secrets={"s": {"x": "y"}})
    raw["method"].append({"ref": "availability"})
    exp = parse_experiment(raw)
    assert exp.method[0].pause_after == 180.0
    assert exp.method[1].name == "availability" and exp.method[1].type == "probe"
    assert exp.hypothesis is not None and exp.hypothesis.probes[0].has_tolerance
    assert len(exp.notes) == 2 and "configuration" in exp.notes[0]


def test_parse_refuses_what_cannot_run_in_the_twin(tmp_path: Path) -> None:
    raw = _exp()
    raw["method"].append(
        {"type": "probe", "name": "site", "provider": {"type": "http", "url": "https://shop.example.com"}}
    )
    raw["steady-state-hypothesis"]["probes"][0].pop("tolerance")
    raw["method"].append(
        {"type": "action", "name": "x", "provider": {"type": "python", "module": "m", "func": "f"}}
    )
    p = tmp_path / "exp.yaml"
    import yaml

    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ExperimentError) as ei:
        load_experiment(p)
    text = str(ei.value)
    assert "http providers reach outside the twin" in text
    assert "a hypothesis probe needs a tolerance" in text
    assert "python provider m.f does not run in the twin" in text
    assert f"{p}:" in text  # file:line of each problem


def test_bad_promql_is_refused_when_the_experiment_is_read() -> None:
    raw = _exp()
    raw["steady-state-hypothesis"]["probes"][0]["provider"]["query"] = "sum(rate(x[5m]"
    with pytest.raises(ExperimentError, match="query"):
        parse_experiment(raw)


# --- running -------------------------------------------------------------------------------------


def _run(exp: dict[str, Any], at: str = "10m", plane: str = "request") -> Any:
    sc = one_service("5/s", "exp(10ms)", duration="40m", concurrency=4, scrape="15s", plane=plane)
    sim = Simulation(_load(sc, None))
    parsed = parse_experiment({**exp, "at": at})
    sim.chaos_experiments = [parsed]  # type: ignore[attr-defined]
    out = sim.run()
    loop = next(lp for lp in sim.loops if lp.name == "chaos")
    return out, loop.runs[0].journal()


@pytest.mark.parametrize("plane", ["request", "flow"])
def test_a_partition_breaks_the_hypothesis_and_the_rollback_heals(plane: str) -> None:
    out, j = _run(_exp(), plane=plane)
    assert j["status"] == "completed" and j["deviated"] is True
    assert j["steady_states"]["before"]["steady_state_met"] is True
    assert j["steady_states"]["after"]["steady_state_met"] is False
    # Every request in the last 2 minutes of the partition failed: availability 0.
    assert j["steady_states"]["after"]["probes"][0]["output"] == pytest.approx(0.0, abs=1e-9)
    assert [r["activity"]["name"] for r in j["run"]] == ["cut-api-off"]
    assert j["run"][0]["output"]["affected"] == ["api"]
    assert [r["activity"]["name"] for r in j["rollbacks"]] == ["heal"]
    # Times: before at 10m, the action at 10m, after and rollbacks at 13m (the pause).
    assert j["run"][0]["t_s"] == 600.0 and j["rollbacks"][0]["t_s"] == 780.0
    assert j["start"] == "1970-01-01T00:10:00Z" and j["end"] == "1970-01-01T00:13:00Z"
    assert j["duration"] == 180.0
    # The partition lasted from the action to the rollback: 3 minutes of failed requests.
    lost = out.summary["classes"]["get"]["errors"]["unavailable"]
    assert lost == pytest.approx(5.0 * 180, abs=4 * (5.0 * 180) ** 0.5 + 10)
    f = out.summary["faults"][0]
    assert (f["kind"], f["start_s"], f["end_s"]) == ("network-partition", 600.0, 780.0)
    ex = out.summary["experiments"][0]
    assert ex["deviated"] is True and ex["steady_state_before"] is True


def test_a_harmless_method_keeps_the_steady_state() -> None:
    exp = _exp()
    exp["method"] = [
        {
            "type": "action",
            "name": "slow-api",
            "provider": {
                "type": "fault",
                "fault": {"kind": "network-delay", "target": "api", "delay": "5ms"},
            },
            "pauses": {"after": "2m"},
        }
    ]
    _, j = _run(exp)
    assert j["status"] == "completed" and j["deviated"] is False
    assert j["steady_states"]["after"]["steady_state_met"] is True


def test_steady_state_not_met_before_skips_the_method() -> None:
    exp = _exp()
    exp["steady-state-hypothesis"]["probes"][0]["tolerance"] = {"type": "range", "range": [2.0, 3.0]}
    out, j = _run(exp)
    # Chaos Toolkit: the method does not run; the status is completed (no probe errored).
    assert j["status"] == "completed" and j["deviated"] is False
    assert j["run"] == [] and j["steady_states"]["after"] is None
    assert "unavailable" not in out.summary["classes"]["get"]["errors"] or (
        out.summary["classes"]["get"]["errors"]["unavailable"] == 0
    )


def test_an_experiment_longer_than_the_run_is_interrupted() -> None:
    exp = _exp()
    exp["method"][0]["pauses"] = {"after": "1h"}
    _, j = _run(exp)
    assert j["status"] == "interrupted"


def test_a_real_chaostoolkit_kubernetes_experiment_runs_as_written() -> None:
    # chaostoolkit-kubernetes + chaostoolkit-prometheus, as one would run against a cluster.
    exp = {
        "version": "1.0.0",
        "title": "Killing an api pod keeps the service available",
        "description": "terminate_pods, with a Prometheus probe",
        "configuration": {"prometheus_base_url": "http://prometheus:9090"},
        "steady-state-hypothesis": {
            "title": "all pods run and requests succeed",
            "probes": [
                {
                    "type": "probe",
                    "name": "pods-running",
                    "tolerance": True,
                    "provider": {
                        "type": "python",
                        "module": "chaosk8s.pod.probes",
                        "func": "pods_in_phase",
                        "arguments": {"label_selector": "app=api", "phase": "Running", "ns": "default"},
                    },
                },
                {
                    "type": "probe",
                    "name": "requests-ok",
                    "tolerance": {
                        "type": "jsonpath",
                        "path": "$.data.result[0].metric.class",
                        "expect": "get",
                    },
                    "provider": {
                        "type": "python",
                        "module": "chaosprometheus.probes",
                        "func": "query",
                        "arguments": {
                            "query": 'sum by (class) (rate(devopsim_client_requests_total{outcome="ok"}[1m]))'
                        },
                    },
                },
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "terminate-one-api-pod",
                "provider": {
                    "type": "python",
                    "module": "chaosk8s.pod.actions",
                    "func": "terminate_pods",
                    "arguments": {"label_selector": "app=api", "qty": 1, "rand": True, "ns": "default"},
                },
                "pauses": {"after": 60},
            },
            {
                "type": "probe",
                "name": "count",
                "provider": {
                    "type": "python",
                    "module": "chaosk8s.pod.probes",
                    "func": "count_pods",
                    "arguments": {"label_selector": "app=api", "phase": "Running"},
                },
            },
        ],
        "rollbacks": [],
    }
    sc = one_service("5/s", "exp(10ms)", duration="30m", concurrency=4, replicas=3, scrape="15s")
    sc["services"]["api"]["startup"] = "20s"
    sim = Simulation(_load(sc, None))
    sim.chaos_experiments = [parse_experiment({**exp, "at": "10m"})]  # type: ignore[attr-defined]
    out = sim.run()
    j = next(lp for lp in sim.loops if lp.name == "chaos").runs[0].journal()
    assert j["status"] == "completed" and j["deviated"] is False, json.dumps(j, indent=1)[:3000]
    killed = j["run"][0]["output"]
    assert len(killed) == 1 and killed[0].startswith("api-")
    assert j["run"][1]["output"] == 3  # the ReplicaSet's replacement is Running 60 s later
    assert any("configuration" in n for n in j["notes"])
    assert out.summary["faults"][0]["kind"] == "pod-kill"


def test_an_experiment_in_the_scenario_runs_in_devopsim_run() -> None:
    import devopsim

    sc = one_service("5/s", "exp(10ms)", duration="30m", concurrency=4, scrape="15s")
    sc["chaos"] = [{**_exp(), "at": "10m"}]
    s = devopsim.simulate(sc).summary
    ex = s["experiments"][0]
    assert ex["status"] == "completed" and ex["deviated"] is True and ex["start_s"] == 600.0


@pytest.mark.slow
def test_global_example_experiment_runs_and_says_whether_the_hypothesis_held() -> None:
    sim = Simulation(_load(EXAMPLES / "global.yaml", None))
    out = sim.run()
    j = next(lp for lp in sim.loops if lp.name == "chaos").runs[0].journal()
    assert j["status"] == "completed"
    assert j["start"] == "2026-03-02T17:30:00Z" and j["end"] == "2026-03-02T17:50:00Z"
    assert isinstance(j["steady_states"]["before"]["steady_state_met"], bool)
    assert isinstance(j["steady_states"]["after"]["steady_state_met"], bool)
    assert j["deviated"] is (not j["steady_states"]["after"]["steady_state_met"])
    kinds = [f["kind"] for f in out.summary["faults"]]
    assert kinds[0] == "cloud-outage" and out.summary["faults"][0]["end_s"] == 17.5 * 3600 + 1200


def test_continuous_hypothesis_checks_during_the_method() -> None:
    exp = _exp(
        runtime={"hypothesis": {"strategy": "continuous", "freq": 60}, "rollbacks": {"strategy": "never"}}
    )
    _, j = _run(exp)
    # Checks at 10m, 11m, 12m while the 3-minute pause runs (the method ends at 13m).
    during = j["steady_states"]["during"]
    assert len(during) == 3
    assert [d["probes"][0]["t_s"] for d in during] == [600.0, 660.0, 720.0]
    assert during[0]["steady_state_met"] is True  # the partition's failures are not scraped yet
    assert during[2]["steady_state_met"] is False
    assert j["deviated"] is True and j["rollbacks"] == []  # strategy never


def test_rollbacks_only_if_deviated() -> None:
    exp = _exp(runtime={"rollbacks": {"strategy": "deviated"}})
    exp["method"][0]["provider"]["fault"] = {"kind": "network-delay", "target": "api", "delay": "1ms"}
    _, j = _run(exp)
    assert j["deviated"] is False and j["rollbacks"] == []
