"""The global front door: GeoDNS with health checks and TTLs, or anycast.

**GeoDNS** (Route 53 / Azure Traffic Manager / NS1 style). Each client region
resolves to the nearest healthy serving region. The DNS service probes every
region every ``healthCheck.interval`` seconds (probes at ``k * interval``); a
probe to a dead region fails once its ``timeout`` has passed without an answer,
and ``failureThreshold`` consecutive failures mark the region unhealthy. The
record then changes at once (no propagation delay is modelled). Clients that
resolved before the change keep their answer until its ``ttl`` expires; their
last lookups are spread evenly over the previous ``ttl`` seconds, so the share
of a region's clients still sent to the dead region falls linearly from 1 to 0
over ``ttl`` after the change (:func:`stale_share`). Between the failure and the
change all of them are sent there. A recovered region comes back after
``successThreshold`` consecutive good probes, and clients drift back over the
TTL (no errors: the old answer still works).

For a failure at ``t_f`` the record changes at::

    t_d = first probe at or after t_f + (failureThreshold - 1) * interval + timeout

so ``t_d - t_f`` lies in ``[(F - 1) * interval + timeout, F * interval + timeout)``
and every client has moved by ``t_d + ttl`` (:func:`failover_expectation`).

**Anycast** (one address announced from every region). The front door's own
health checks decide as above, then routing converges in
``ANYCAST_CONVERGENCE_S`` seconds (BGP withdrawal and re-convergence inside one
provider's network: a few seconds), the share falling linearly over it; clients
cache nothing.

**load-balancer / api-gateway**: one regional entry, no geographic steering and
no failover between regions: every client uses the serving region nearest to
it, healthy or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "ANYCAST_CONVERGENCE_S",
    "FailoverExpectation",
    "FrontDoorModel",
    "RegionState",
    "failover_expectation",
    "stale_share",
]

ANYCAST_CONVERGENCE_S = 5.0  # seconds for anycast routes to converge after a withdrawal


def stale_share(t: float, changed_at: float, ttl: float) -> float:
    """Share of clients still using an answer given out before a record changed at ``changed_at``."""
    if t < changed_at:
        return 1.0
    if ttl <= 0:
        return 0.0
    return max(0.0, 1.0 - (t - changed_at) / ttl)


@dataclass(frozen=True)
class FailoverExpectation:
    """When a region lost at ``failed_at`` is detected, and when its clients have all moved."""

    failed_at: float
    first_probe: float
    detected_at: float
    moved_at: float

    @property
    def detection_s(self) -> float:
        """Seconds from the failure to the record change."""
        return self.detected_at - self.failed_at

    @property
    def failover_s(self) -> float:
        """Seconds from the failure until no client is sent to the dead region."""
        return self.moved_at - self.failed_at


def failover_expectation(
    failed_at: float, interval: float, failure_threshold: int, timeout: float, ttl: float
) -> FailoverExpectation:
    """The failover timeline the health-check and TTL settings imply (probes at ``k * interval``)."""
    first = math.ceil(failed_at / interval - 1e-9) * interval
    detected = first + (failure_threshold - 1) * interval + timeout
    return FailoverExpectation(failed_at, first, detected, detected + ttl)


@dataclass
class RegionState:
    """What the front door's health checker believes about one serving region."""

    key: str  # cloud/region
    healthy: bool = True
    fails: int = 0
    oks: int = 0
    changed_at: float | None = None  # when the record last moved clients away or back
    down_since: float | None = None  # first failed probe of the current run of failures


@dataclass
class FrontDoorModel:
    """Health checks and client steering of one front door.

    Args:
        kind: ``geodns``, ``anycast``, ``load-balancer`` or ``api-gateway``.
        regions: serving regions (``cloud/region``), in scenario order.
        distance: ``distance[client][region]``, seconds of round trip.
        interval, failure_threshold, success_threshold, timeout: the health check.
        ttl: the DNS TTL, seconds (GeoDNS only).
    """

    kind: str
    regions: list[str]
    distance: dict[str, dict[str, float]]
    interval: float = 10.0
    failure_threshold: int = 3
    success_threshold: int = 1
    timeout: float = 5.0
    ttl: float = 60.0
    state: dict[str, RegionState] = field(default_factory=dict)
    # client -> list of (since, region): the answers the record has given, newest last
    answers: dict[str, list[tuple[float, str | None]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = {r: RegionState(r) for r in self.regions}
        for c in self.distance:
            self.answers[c] = [(-math.inf, self._choose(c))]

    @property
    def steers(self) -> bool:
        """Whether the front door moves clients away from an unhealthy region."""
        return self.kind in ("geodns", "anycast")

    @property
    def move_time(self) -> float:
        """Seconds over which clients move after the record changes."""
        return self.ttl if self.kind == "geodns" else ANYCAST_CONVERGENCE_S if self.kind == "anycast" else 0.0

    def _choose(self, client: str) -> str | None:
        pool = [r for r in self.regions if self.state[r].healthy] if self.steers else list(self.regions)
        if not pool:
            pool = list(self.regions)  # nothing healthy: DNS keeps answering with the nearest
        if not pool:
            return None
        return min(pool, key=lambda r: (self.distance[client][r], self.regions.index(r)))

    def probe(self, t: float, up: dict[str, bool]) -> list[tuple[str, str]]:
        """Record the probes sent at ``t`` (results known at ``t + timeout`` for a dead region).

        Returns the health transitions ``(region, "unhealthy" | "healthy")`` they cause;
        the caller applies them with :meth:`apply` at the time the result is known.
        """
        out: list[tuple[str, str]] = []
        for r in self.regions:
            st = self.state[r]
            if up.get(r, True):
                st.fails = 0
                st.oks += 1
                if not st.healthy and st.oks >= self.success_threshold:
                    out.append((r, "healthy"))
            else:
                st.oks = 0
                st.fails += 1
                if st.fails == 1:
                    st.down_since = t
                if st.healthy and st.fails >= self.failure_threshold:
                    out.append((r, "unhealthy"))
        return out

    def apply(self, t: float, region: str, verdict: str) -> None:
        """Mark ``region`` healthy or unhealthy at ``t`` and re-answer every client."""
        st = self.state[region]
        st.healthy = verdict == "healthy"
        st.changed_at = t
        for c in self.answers:
            new = self._choose(c)
            if new != self.answers[c][-1][1]:
                self.answers[c].append((t, new))

    def split(self, t: float) -> dict[str, dict[str, float]]:
        """``split[client][region]``: share of each client region's requests going to each region.

        A client's answers move over :attr:`move_time` after each record change
        (linearly, :func:`stale_share`); older answers are long expired.
        """
        out: dict[str, dict[str, float]] = {}
        w = self.move_time
        for c, hist in self.answers.items():
            shares: dict[str, float] = {}
            taken = 0.0
            # Newest first: the clients that looked up after answer k was given hold it,
            # 1 - stale(t, since_k) of them, less those that hold a newer answer.
            for k in range(len(hist) - 1, -1, -1):
                since, region = hist[k]
                fresh = 1.0 if k == 0 else 1.0 - stale_share(t, since, w)
                took = max(0.0, fresh - taken)
                if region is not None and took > 0:
                    shares[region] = shares.get(region, 0.0) + took
                taken = max(taken, fresh)
                if taken >= 1.0 - 1e-15:
                    break
            out[c] = shares
        return out
