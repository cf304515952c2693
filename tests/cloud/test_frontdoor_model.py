"""GeoDNS failover against the timeline its health-check and TTL settings imply."""

from __future__ import annotations

import pytest

from devopsim.cloud.frontdoor import ANYCAST_CONVERGENCE_S, FrontDoorModel, failover_expectation, stale_share

DIST = {
    "europe": {"aws/us-east-1": 0.09, "gcp/europe-west1": 0.008},
    "na": {"aws/us-east-1": 0.02, "gcp/europe-west1": 0.1},
}


def _run(kind: str, t_fail: float, interval: float, threshold: int, timeout: float, ttl: float):  # type: ignore[no-untyped-def]
    m = FrontDoorModel(
        kind, ["aws/us-east-1", "gcp/europe-west1"], DIST, interval, threshold, 1, timeout, ttl
    )
    pending: list[tuple[float, str, str]] = []
    t = 0.0
    while t < t_fail + 10 * interval:
        for at, r, v in [p for p in pending if p[0] <= t]:
            m.apply(at, r, v)
        pending = [p for p in pending if p[0] > t]
        up = {"aws/us-east-1": True, "gcp/europe-west1": t < t_fail}
        pending += [(t + (timeout if v == "unhealthy" else 0.0), r, v) for r, v in m.probe(t, up)]
        t += interval
    for at, r, v in pending:
        m.apply(at, r, v)
    return m


@pytest.mark.parametrize(
    ("t_fail", "interval", "threshold", "timeout", "ttl"),
    [(63000.0, 10.0, 3, 5.0, 60.0), (63003.0, 10.0, 3, 5.0, 60.0), (100.0, 30.0, 2, 4.0, 300.0)],
)
def test_geodns_detects_after_threshold_probes_then_clients_move_over_ttl(
    t_fail: float, interval: float, threshold: int, timeout: float, ttl: float
) -> None:
    m = _run("geodns", t_fail, interval, threshold, timeout, ttl)
    # Hand computation: the first probe at or after the failure, F - 1 more, then the timeout.
    first = -(-t_fail // interval) * interval
    detected = first + (threshold - 1) * interval + timeout
    assert (threshold - 1) * interval + timeout <= detected - t_fail < threshold * interval + timeout
    exp = failover_expectation(t_fail, interval, threshold, timeout, ttl)
    assert exp.detected_at == pytest.approx(detected)
    assert exp.moved_at == pytest.approx(detected + ttl)
    assert m.state["gcp/europe-west1"].changed_at == pytest.approx(detected)
    # Europe's clients: all on the dead region until the change, then a linear decay over the TTL.
    for dt, want in [(-1.0, 1.0), (0.0, 1.0), (ttl / 4, 0.75), (ttl / 2, 0.5), (ttl, 0.0), (2 * ttl, 0.0)]:
        got = m.split(detected + dt)["europe"].get("gcp/europe-west1", 0.0)
        assert got == pytest.approx(want, abs=1e-12)
        assert m.split(detected + dt)["europe"].get("aws/us-east-1", 0.0) == pytest.approx(
            1 - want, abs=1e-12
        )
    # North America never pointed at the dead region.
    assert m.split(detected + ttl / 2)["na"] == {"aws/us-east-1": 1.0}


def test_anycast_converges_in_seconds() -> None:
    m = _run("anycast", 1000.0, 10.0, 3, 5.0, 300.0)
    det = failover_expectation(1000.0, 10.0, 3, 5.0, 300.0).detected_at
    assert m.split(det + ANYCAST_CONVERGENCE_S / 2)["europe"]["gcp/europe-west1"] == pytest.approx(0.5)
    assert m.split(det + ANYCAST_CONVERGENCE_S)["europe"].get("gcp/europe-west1", 0.0) == 0.0


def test_load_balancer_does_not_steer() -> None:
    m = _run("load-balancer", 1000.0, 10.0, 3, 5.0, 60.0)
    assert m.split(5000.0)["europe"] == {"gcp/europe-west1": 1.0}


def test_stale_share() -> None:
    assert stale_share(5.0, 10.0, 60.0) == 1.0
    assert stale_share(40.0, 10.0, 60.0) == 0.5
    assert stale_share(100.0, 10.0, 60.0) == 0.0
    assert stale_share(10.0, 10.0, 0.0) == 0.0
