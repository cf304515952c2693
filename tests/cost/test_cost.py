"""Cost against hours x price computed by hand from the packaged table's numbers."""

from __future__ import annotations

from typing import Any

import pytest

from devopsim.api import _load
from devopsim.cost.prices import price_table
from devopsim.engine.runner import Simulation
from devopsim.errors import ScenarioError
from tests.helpers import one_service

HOURS = 2.0


def _scenario(**svc: Any) -> dict[str, Any]:
    sc = one_service(
        20,
        "exp(10ms)",
        replicas=3,
        concurrency=4,
        cpu=1.0,
        duration=f"{HOURS:g}h",
        plane="flow",
        extra_service={"placement": {"clouds": ["aws"]}, **svc},
    )
    sc["services"]["api"]["resources"]["requests"]["memory"] = "2Gi"
    sc["platform"] = {
        "clouds": {
            "aws": {
                "regions": {
                    "us-east-1": {
                        "zones": ["us-east-1a"],
                        "nodePools": [{"name": "general", "instanceType": "m6i.xlarge", "count": 2}],
                    }
                }
            },
            "digitalocean": {
                "regions": {
                    "nyc3": {
                        "zones": ["nyc3"],
                        "nodePools": [{"name": "small", "instanceType": "s-4vcpu-8gb", "count": 1}],
                    }
                }
            },
        }
    }
    return sc


def test_the_table_is_dated_and_prices_every_example_instance_type() -> None:
    t = price_table()
    assert t.date and t.currency == "USD"
    for cloud, region, itype in [
        ("aws", "us-east-1", "m6i.xlarge"),
        ("gcp", "europe-west1", "n2-standard-4"),
        ("azure", "southeastasia", "Standard_D4s_v5"),
        ("azure", "westeurope", "Standard_D4s_v5"),
        ("digitalocean", "nyc3", "s-4vcpu-8gb"),
        ("digitalocean", "sgp1", "s-4vcpu-8gb"),
    ]:
        p = t.instance(cloud, region, itype)
        assert p is not None and p.hourly > 0 and p.vcpu == 4
    # The published list prices the table claims, to the cent.
    assert t.instance("aws", "us-east-1", "m6i.xlarge").hourly == 0.192  # type: ignore[union-attr]
    assert t.instance("digitalocean", "nyc3", "s-4vcpu-8gb").hourly == pytest.approx(48 / 672, abs=1e-4)  # type: ignore[union-attr]
    assert t.egress_per_gb("aws") == 0.09


def test_run_cost_is_hours_times_price() -> None:
    s = Simulation(_load(_scenario(), None)).run().summary
    cost = s["cost"]
    aws_h, do_h = 0.192, 0.07143  # m6i.xlarge us-east-1, s-4vcpu-8gb
    pools = {"aws/us-east-1/general": 2 * HOURS * aws_h, "digitalocean/nyc3/small": 1 * HOURS * do_h}
    assert cost["by_node_pool"] == pytest.approx(pools, rel=1e-6)
    assert cost["compute"] == pytest.approx(sum(pools.values()), rel=1e-6)
    # api: 3 pods x 2 h, each max(1 vCPU / 4, 2 GiB / 16 GiB) = 1/4 of an m6i.xlarge.
    api = 3 * HOURS * 0.25 * aws_h
    assert cost["by_service"]["api"] == pytest.approx(api, rel=1e-6)
    assert cost["idle"]["unrequested"] == pytest.approx(sum(pools.values()) - api, rel=1e-6)
    util = s["services"]["api"]["utilization"]
    assert cost["idle"]["unused_requests"] == pytest.approx(api * (1 - util), rel=1e-6)
    # Egress: answered requests x 4 KiB, all from AWS (the only cloud api runs in), $0.09/GB.
    gb = s["classes"]["get"]["ok"] * 4 * 1024 / 1e9
    assert cost["egress"]["by_cloud"] == {"aws": pytest.approx(gb * 0.09, rel=1e-5)}
    assert cost["total"] == pytest.approx(cost["compute"] + cost["egress"]["total"], rel=1e-9)
    assert sum(cost["by_cloud"].values()) == pytest.approx(cost["total"], rel=1e-9)
    assert cost["price_table_date"] == price_table().date


def test_unknown_instance_type_is_a_scenario_error() -> None:
    sc = _scenario()
    sc["platform"]["clouds"]["aws"]["regions"]["us-east-1"]["nodePools"][0]["instanceType"] = "m99.huge"
    with pytest.raises(ScenarioError, match=r"instanceType.*m99.huge"):
        Simulation(_load(sc, None)).run()


def test_every_instance_type_the_platform_knows_is_priced_with_the_same_size() -> None:
    nodes = pytest.importorskip("devopsim.model.nodes")
    t = price_table()
    for it in nodes.instance_types().values():
        p = t.instance(it.cloud, t.clouds[it.cloud]["default"], it.name)
        assert p is not None, it.name
        assert p.vcpu == it.vcpu
        assert p.memory_gib * 1024.0**3 == it.memory


def test_price_table_agrees_with_its_cited_sources() -> None:
    t = price_table()
    # Figures as the cited pages give them (prices.yaml `sources`).
    for itype, hourly in (
        ("t3.medium", 0.0416),
        ("t3.large", 0.0832),
        ("c6i.2xlarge", 0.34),
        ("m5.xlarge", 0.192),
    ):
        p = t.instance("aws", "us-east-1", itype)
        assert p is not None and p.hourly == hourly, itype
    assert t.egress_per_gb("aws") == 0.09
    # DigitalOcean bills $0.01 per GiB: per 10^9 bytes that is 0.01 x 10^9 / 2^30.
    assert t.egress_per_gb("digitalocean") == pytest.approx(0.01 * 1e9 / 2**30, abs=5e-7)
    # Droplets: hourly = monthly / 672 h ($24, $48, $96 a month).
    for itype, monthly in (("s-2vcpu-4gb", 24), ("s-4vcpu-8gb", 48), ("s-8vcpu-16gb", 96)):
        p = t.instance("digitalocean", "nyc3", itype)
        assert p is not None and p.hourly == pytest.approx(monthly / 672, abs=5e-6), itype
    statuses = {s["status"] for s in t.sources}
    assert statuses <= {"agrees", "corrected", "unverified"}
    assert all(s.get("url") for s in t.sources if s["status"] != "unverified")
    assert {s["cloud"] for s in t.sources} == {"aws", "gcp", "azure", "digitalocean"}
