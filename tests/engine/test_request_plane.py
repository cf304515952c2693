"""Behaviour of the request plane on cases whose answer is known exactly or from theory."""

from __future__ import annotations

import math

import pytest

import devopsim
from tests.helpers import one_service


def run(sc, seed=None):
    return devopsim.simulate(sc, seed=seed).summary


def test_deterministic_arrivals_and_work_give_exact_latency():
    s = run(
        one_service("1/s", "const(0.5s)", duration="100s")
        | {"traffic": {"rate": "1/s", "burstiness": 0, "classes": [{"name": "get", "entry": "api.get"}]}}
    )
    c = s["classes"]["get"]
    # The first arrival comes one gap after the start: 1 s, 2 s, ..., 99 s.
    assert c["requests"] == 99 and c["ok"] == 99
    assert c["latency_s"]["mean"] == pytest.approx(0.5, abs=1e-9)
    assert c["latency_s"]["p50"] == pytest.approx(0.5, rel=0.01)
    assert c["latency_s"]["p999"] == pytest.approx(0.5, rel=0.01)
    assert s["services"]["api"]["wait_s"]["mean"] == 0.0
    assert s["services"]["api"]["utilization"] == pytest.approx(99 * 0.5 / 100, rel=1e-9)


def test_overload_queue_grows_linearly():
    # D/D/1 with work 2 s and an arrival every second: request k waits k seconds.
    sc = one_service("1/s", "const(2s)", duration="100s")
    sc["traffic"]["burstiness"] = 0
    s = run(sc)
    c = s["classes"]["get"]
    # Arrivals at 1, 2, ..., 99 s; the k-th completes at 2k + 1 s, so 49 finish within 100 s.
    assert c["requests"] == 49
    assert s["littles_law"]["in_flight_at_end"] == 99 - 49
    assert s["services"]["api"]["utilization"] == pytest.approx(1.0, abs=0.03)


def test_timeouts_and_retries_multiply_attempts():
    sc = one_service(
        "2/s",
        "const(2s)",
        concurrency=100,
        duration="200s",
        endpoint={"timeout": "1s", "retries": {"attempts": 2, "backoff": "10ms"}},
    )
    s = run(sc)
    c = s["classes"]["get"]
    assert c["ok"] == 0
    assert c["errors"]["timeout"] == c["requests"] > 300
    # Each request made three attempts; the server saw (and finished) each of them.
    assert s["services"]["api"]["requests"] == pytest.approx(3 * c["requests"], abs=9)
    # A timed-out request took three timeouts plus the backoffs (10 ms, 20 ms).
    e = s["endpoints"]["api.get"]
    assert e["errors"]["timeout"] == c["requests"]


def test_injected_errors_and_retry_success_probability():
    base = one_service(
        "20/s", "exp(1ms)", concurrency=50, duration="2000s", extra_service={"errorRate": "50%"}
    )
    s = run(base)
    c = s["classes"]["get"]
    frac = c["errors"]["injected"] / c["requests"]
    assert abs(frac - 0.5) < 4 * math.sqrt(0.25 / c["requests"])
    retry = one_service(
        "20/s",
        "exp(1ms)",
        concurrency=50,
        duration="2000s",
        extra_service={"errorRate": "50%"},
        endpoint={"retries": {"attempts": 3, "backoff": "1ms"}},
    )
    s = run(retry)
    c = s["classes"]["get"]
    p = 0.5**4
    frac = c["errors"]["injected"] / c["requests"]
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / c["requests"])


def test_circuit_breaker_opens_and_fails_fast():
    sc = one_service(
        "10/s",
        "const(1ms)",
        concurrency=10,
        duration="100s",
        extra_service={"errorRate": "100%"},
        endpoint={
            "circuitBreaker": {
                "failureRateThreshold": "50%",
                "slidingWindowSize": 10,
                "minimumNumberOfCalls": 10,
                "waitDurationInOpenState": "10s",
                "permittedNumberOfCallsInHalfOpenState": 3,
            }
        },
    )
    s = run(sc)
    c = s["classes"]["get"]
    # 10 calls open the breaker; every 10 s it lets 3 trial calls through, which fail and re-open it.
    assert c["errors"]["injected"] == pytest.approx(10 + 3 * 9, abs=3)
    assert c["errors"]["rejected"] == c["requests"] - c["errors"]["injected"]
    assert s["services"]["api"]["requests"] == c["errors"]["injected"]


def test_mm1k_blocking_probability():
    lam, mu, k = 0.9, 1.0, 5  # system capacity 5: one in service, four waiting
    sc = one_service(
        f"{lam}/s",
        "exp(1s)",
        duration="300000s",
        warmup="1000s",
        extra_service={"queue": {"capacity": k - 1}},
    )
    s = run(sc, seed=4)
    c = s["classes"]["get"]
    rho = lam / mu
    p_block = (1 - rho) * rho**k / (1 - rho ** (k + 1))
    frac = c["errors"]["rejected"] / c["requests"]
    assert frac == pytest.approx(p_block, rel=0.05)


def test_parallel_fan_out_waits_for_the_slowest_branch():
    sc = {
        "duration": "100s",
        "plane": "request",
        "traffic": {"rate": "1/s", "burstiness": 0, "classes": [{"name": "c", "entry": "a.x"}]},
        "services": {
            "a": {
                "concurrency": 10,
                "endpoints": {
                    "x": {
                        "steps": [
                            {"work": "const(1ms)"},
                            {"parallel": [{"call": "b.y"}, {"call": "c.z"}]},
                            {"work": "const(2ms)"},
                        ]
                    }
                },
            },
            "b": {"concurrency": 10, "endpoints": {"y": {"steps": [{"wait": "const(10ms)"}]}}},
            "c": {"concurrency": 10, "endpoints": {"z": {"steps": [{"work": "const(20ms)"}]}}},
        },
    }
    s = run(sc)
    lat = s["classes"]["c"]["latency_s"]
    assert lat["mean"] == pytest.approx(0.023, abs=1e-9)
    assert s["endpoints"]["b.y"]["requests"] == s["endpoints"]["c.z"]["requests"] == 99


def test_call_probability_and_journeys():
    sc = {
        "duration": "2000s",
        "plane": "request",
        "traffic": {"rate": "10/s", "classes": [{"name": "j", "entry": ["a.x", "b.y"]}]},
        "services": {
            "a": {
                "concurrency": 100,
                "endpoints": {
                    "x": {"steps": [{"work": "const(5ms)"}, {"call": "c.z", "probability": "30%"}]}
                },
            },
            "b": {"concurrency": 100, "endpoints": {"y": {"steps": [{"work": "const(7ms)"}]}}},
            "c": {"concurrency": 100, "endpoints": {"z": {"steps": [{"wait": "const(100ms)"}]}}},
        },
    }
    s = run(sc)
    n = s["classes"]["j"]["requests"]
    frac = s["endpoints"]["c.z"]["requests"] / n
    assert abs(frac - 0.3) < 4 * math.sqrt(0.21 / n)
    # Journey latency is a's plus b's: 12 ms, or 112 ms when a called c.
    expect = 0.012 + 0.1 * frac
    assert s["classes"]["j"]["latency_s"]["mean"] == pytest.approx(expect, rel=1e-6)
    assert s["classes"]["j"]["latency_s"]["p50"] == pytest.approx(0.012, rel=0.01)


def test_processor_sharing_is_insensitive_to_the_work_distribution():
    # M/G/1-PS: mean response = E[S] / (1 - rho) whatever the distribution of S.
    for work in ("const(100ms)", "exp(100ms)", "lognormal(mean=100ms, cv=2)"):
        sc = one_service("5/s", work, concurrency=1000, cpu=1, duration="200000s", warmup="500s")
        s = run(sc, seed=2)
        assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(0.2, rel=0.04), work
        assert s["services"]["api"]["utilization"] == pytest.approx(0.5, rel=0.02)


def test_fractional_cpu_slows_a_single_request_down():
    sc = one_service("0.1/s", "const(100ms)", concurrency=4, cpu=0.25, duration="10000s")
    sc["traffic"]["burstiness"] = 0
    s = run(sc)
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(0.4, rel=1e-9)


def test_weighted_load_balancing_splits_by_weight():
    sc = one_service(
        "1/s",
        "exp(1s)",
        replicas=2,
        lb="weighted",
        duration="400000s",
        warmup="1000s",
        extra_service={"weights": [3, 1]},
    )
    s = run(sc, seed=3)
    expect = 0.75 * (1 / (1 - 0.75)) + 0.25 * (1 / (1 - 0.25))
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(expect, rel=0.06)


def test_balancing_policies_rank_as_queueing_theory_says():
    means = {}
    for lb in ("random", "round-robin", "least-request", "least-outstanding"):
        sc = one_service("3.2/s", "exp(1s)", replicas=4, lb=lb, duration="100000s", warmup="500s")
        means[lb] = run(sc, seed=5)["classes"]["get"]["latency_s"]["mean"]
    assert means["random"] > means["round-robin"] > means["least-request"] >= means["least-outstanding"]
    assert means["random"] == pytest.approx(1 / (1 - 0.8), rel=0.08)


def test_no_ready_replica_means_unavailable():
    s = run(one_service("5/s", "exp(1ms)", replicas=0, duration="100s"))
    c = s["classes"]["get"]
    assert c["requests"] > 0 and c["errors"]["unavailable"] == c["requests"]


def test_timeline_scaling_and_traffic_changes():
    sc = one_service(
        "20/s",
        "exp(50ms)",
        replicas=1,
        concurrency=4,
        duration="3000s",
        extra_service={"startup": "30s"},
        timeline=[
            {"at": "600s", "scale": {"service": "api", "replicas": 3}},
            {"at": "1200s", "scale": {"service": "api", "replicas": 1}},
            {"at": "2000s", "traffic": {"rate": "0/s"}},
        ],
    )
    res = devopsim.simulate(sc)
    r = res.summary["services"]["api"]["replicas"]
    assert (r["min"], r["max"]) == (1, 3)
    # 1 replica for 630 s, 3 for 570 s, then 1: a time-weighted mean of (630 + 1710 + 1800) / 3000.
    assert r["mean"] == pytest.approx((630 + 3 * 570 + 1800) / 3000, rel=1e-6)
    ready = [e for e in res.events if e["kind"] == "pod.ready" and e["t"] > 0]
    assert [e["t"] for e in ready] == [630.0, 630.0]
    deleted = [e for e in res.events if e["kind"] == "pod.deleted"]
    assert len(deleted) == 2 and all(1200 <= e["t"] <= 1231 for e in deleted)
    assert res.summary["classes"]["get"]["errors"] == dict.fromkeys(
        res.summary["classes"]["get"]["errors"], 0
    )
    arrivals_after = res.metrics.query("metric == 'devopsim_client_requests_total' and t >= 2010")
    assert arrivals_after.groupby("t")["value"].sum().nunique() == 1  # no new requests after 2000 s


def test_pods_past_their_grace_period_are_killed():
    sc = one_service(
        "2/s",
        "const(1ms)",
        replicas=2,
        concurrency=50,
        duration="300s",
        extra_service={"terminationGracePeriodSeconds": 5},
        endpoint={"steps": [{"wait": "const(20s)"}]},
        timeline=[{"at": "100s", "scale": {"service": "api", "replicas": 1}}],
    )
    res = devopsim.simulate(sc)
    c = res.summary["classes"]["get"]
    # The removed pod held ~20 s of requests (about 20 of them); 5 s later they fail.
    assert 10 <= c["errors"]["unavailable"] <= 35
    assert any(e["kind"] == "pod.killed" and e["t"] == 105.0 for e in res.events)
