"""The front-door control loop: which region serves each client region, and what that costs users.

Every ``healthCheck.interval`` seconds the front door probes each serving region
(a region that runs pods of the services the request classes enter); a region is
up while it has a ready pod of each entry service there. The verdicts move the
GeoDNS record or the anycast routes (:class:`devopsim.cloud.frontdoor.FrontDoorModel`),
and the loop acts through the model:

* **latency**: each class gets the mean client-to-region round trip of the
  clients' current split (``plane.set_class_delay``, the data planes' class hook);
* **errors**: requests of clients still sent to a dead region fail with a
  connection error: the loop sets each user class's front-door loss to the dead
  share of the clients' split (``plane.set_class_loss``, the data planes' class
  hook): those requests fail at once as ``unavailable``, never reach a pod, and
  count in the class's errors and SLOs. The share is set again when a region
  dies (the chaos engine tells the loop at once), at every probe and verdict, and
  in 16 steps over the TTL while clients drift (each step takes the share at its
  midpoint, exact for the linear drift). The loop also counts the expected lost
  requests itself (class arrivals x the dead share, integrated over the
  piecewise-linear share): ``frontdoor.lost_requests`` and each failover's.
* **metrics**: at every scrape the loop appends the twin-only counter
  ``devopsim_frontdoor_requests_total{client_region, region, outcome}``
  (``outcome``: ``forwarded`` or ``unavailable``; expected requests since the
  start), so PromQL probes and alerts see front-door failures.

The summary gets ``frontdoor``: the serving regions, each client region's
region and round trip, and every failover with its detection and move times.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from devopsim.cloud.frontdoor import FrontDoorModel
from devopsim.cloud.geo import Location, client_location, known_clients, region_location, rtt_s
from devopsim.errors import ScenarioError
from devopsim.model.platform import PodPhase

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import TimelineEntry

__all__ = ["FrontDoorLoop", "serving_regions"]

OUTAGE_KINDS = ("cloud-outage", "region-outage")
_CHANGE_KINDS = ("chaos.fault", "chaos.recover", "fault", "node.", "pod.", "zone.", "region.", "cloud.")
_SUB = 20  # midpoint sub-steps per segment when integrating lost requests
_DRIFT_STEPS = 16  # class-loss updates over the TTL while clients drift
METRIC = "devopsim_frontdoor_requests_total"


def serving_regions(sim: Simulation) -> list[str]:
    """``cloud/region`` of every region that may run the classes' entry services, scenario order."""
    sc = sim.scenario
    assert sc.platform is not None
    entry_svcs = {e.split(".")[0] for c in sc.traffic.classes for e in c.entries}
    out: list[str] = []
    for cloud, cl in sc.platform.clouds.items():
        for region in cl.regions:
            ok = True
            for s in entry_svcs:
                pl = sc.services[s].placement
                if pl is None:
                    continue
                if pl.clouds is not None and cloud not in pl.clouds:
                    ok = False
                if pl.regions is not None and region not in pl.regions:
                    ok = False
            if ok:
                out.append(f"{cloud}/{region}")
    return out


def _location(sim: Simulation, path: tuple[str | int, ...], name: str, loc: Location | None) -> Location:
    if loc is not None:
        return loc
    raise ScenarioError(
        [
            sim.loaded.source.issue(
                path,
                f"devopsim does not know where {name!r} is; known client regions: "
                f"{', '.join(known_clients())}, or a cloud region such as us-east-1 "
                "(or give the region a location: 'LAT,LON')",
            )
        ]
    )


def _parse_latlon(text: str | None, name: str) -> Location | None:
    if not text:
        return None
    parts = text.split(",")
    if len(parts) == 2:
        try:
            return Location(name, text, float(parts[0]), float(parts[1]))
        except ValueError:
            return None
    return client_location(text)


def _after(events: list[dict[str, Any]], last: dict[str, Any] | None) -> int:
    """Where the events after ``last`` (the last one looked at; None: none yet) start now.

    The front door reads the log without settling the rules loop's owed events (reading
    must not force its batch of evaluations): they are ``alert.*`` and ``rule.error``, which
    it never looks at, but they are inserted later before events already read, so the last
    event read is found again by identity (from the end), not kept as a position.
    """
    if last is None:
        return 0
    for i in range(len(events) - 1, -1, -1):
        if events[i] is last:
            return i + 1
    raise LookupError("the last event read is no longer in the log")


class FrontDoorLoop:
    """Health checks, GeoDNS/anycast steering, client geography (see module docstring)."""

    name = "frontdoor"

    def __init__(self) -> None:
        self.model: FrontDoorModel | None = None
        self.clients: dict[str, float] = {}
        self.rtt: dict[str, dict[str, float]] = {}
        self.lost = np.zeros(0)  # per class, expected requests failed at the front door
        self.lost_series: list[tuple[float, float, float]] = []  # (t0, t1, lost requests), all classes
        self.failovers: list[dict[str, Any]] = []
        self.delay_applied = False
        self._t = 0.0
        self._down_events: set[str] = set()
        self._seen: dict[str, Any] | None = None  # the last event looked at (see _after)
        self._placed = False
        self._delays: np.ndarray | None = None
        self._up: dict[str, bool] = {}
        self._up_key = -1
        self._served: set[str] = set()
        self._seen_account: dict[str, Any] | None = None
        self._user_mask = np.zeros(0)
        self.route_weight: dict[tuple[str, str], float] = {}  # (client, region) -> requests sent
        self.route_lost: dict[tuple[str, str], float] = {}  # (client, dead region) -> requests failed
        self.loss_applied = False
        self._loss: float | None = None
        self._drift_until = -math.inf

    # --- set-up ----------------------------------------------------------------------------

    def attach(self, sim: Simulation) -> None:
        """Build the front door from the scenario and schedule the first probe."""
        sc = sim.scenario
        if sc.platform is None or not sc.platform.clouds:
            return
        regions = serving_regions(sim)
        if not regions:
            return
        locs: dict[str, Location] = {}
        for key in regions:
            cloud, region = key.split("/", 1)
            spec = sc.platform.clouds[cloud].regions[region]
            loc = _parse_latlon(spec.location, key) or region_location(cloud, region)
            locs[key] = _location(sim, ("platform", "clouds", cloud, "regions", region), key, loc)
        self.clients = dict(sc.traffic.clients or {})
        cl_locs: dict[str, Location | None] = {}
        for name in self.clients:
            cl_locs[name] = _location(sim, ("traffic", "clients", name), name, client_location(name))
        fd = sc.platform.front_door
        hc = fd.health_check if fd is not None else None
        kind = fd.kind if fd is not None else "load-balancer"
        if not self.clients:
            self.clients = {"all": 1.0}
            cl_locs = {"all": None}
        for c, cl in cl_locs.items():
            self.rtt[c] = {r: (rtt_s(cl, locs[r]) if cl is not None else 0.0) for r in regions}
        self.model = FrontDoorModel(
            kind=kind,
            regions=regions,
            distance=self.rtt,
            interval=hc.interval if hc is not None else 10.0,
            failure_threshold=hc.failure_threshold if hc is not None else 3,
            success_threshold=hc.success_threshold if hc is not None else 1,
            timeout=hc.timeout if hc is not None else 5.0,
            ttl=fd.ttl if fd is not None else 60.0,
        )
        self.lost = np.zeros(len(sim.program.classes))
        users = {c.name for c in sc.traffic.classes}
        self._user_mask = np.array([1.0 if c in users else 0.0 for c in sim.program.classes])
        self._placed = any(p.cloud in sc.platform.clouds for p in sim.platform.pods())
        self._apply_delay(sim, 0.0)
        self._up = self._regions_up(sim)
        if self.model.steers:
            sim.clock.schedule(0.0, partial(self._probe, sim), priority=60)
        sim.clock.every(sc.monitoring.scrape_interval, sc.duration, partial(self._scrape, sim), priority=61)

    # --- health checks ---------------------------------------------------------------------

    def _outage_events(self, sim: Simulation) -> None:
        """Follow cloud and region outages in the event log (when pods carry no placement)."""
        events = sim.log.unsettled()  # fault and chaos kinds: never owed (see _after)
        for ev in events[_after(events, self._seen) :]:
            kind = str(ev.get("kind", ""))
            if not (kind.startswith("fault") or kind.startswith("chaos.")):
                continue
            fk = ev.get("fault") or ev.get("fault_kind")
            target = ev.get("target")
            if not isinstance(target, str):
                continue
            if fk in OUTAGE_KINDS and not kind.endswith((".end", ".recovered", ".recover")):
                self._down_events.add(target)
            elif fk == "recover" or kind.endswith((".end", ".recovered", ".recover")):
                self._down_events.discard(target)
        if events:
            self._seen = events[-1]

    def region_up(self, sim: Simulation, key: str) -> bool:
        """Whether ``cloud/region`` answers: a ready pod of every entry service there.

        A region that has not served yet (its first pods still starting) counts as up:
        the front door is configured once the platform is live.
        """
        cloud, region = key.split("/", 1)
        if cloud in self._down_events or region in self._down_events:
            return False
        if not self._placed:
            return True
        up = self._serving(sim, cloud, region)
        if up:
            self._served.add(key)
        return up or key not in self._served

    def _serving(self, sim: Simulation, cloud: str, region: str) -> bool:
        cluster = getattr(sim.platform, "cluster", None)
        nodes = getattr(cluster, "nodes", {})
        entry_svcs = {e.split(".")[0] for c in sim.scenario.traffic.classes for e in c.entries}
        for s in entry_svcs:
            w = sim.platform.workloads[s]
            if not any(
                p.ready
                and p.phase == PodPhase.RUNNING
                and p.cloud == cloud
                and p.region == region
                and not getattr(nodes.get(p.node), "failed", False)
                for p in w.pods
            ):
                return False
        return True

    def _open(self, region: str, t: float) -> dict[str, Any]:
        """The failover record of ``region``'s current outage (a new one if none is open)."""
        for k in range(len(self.failovers) - 1, -1, -1):
            old: dict[str, Any] = self.failovers[k]
            if old["region"] == region and old["recovered_s"] is None:
                return old
        f: dict[str, Any] = {
            "region": region,
            "failed_s": t,
            "first_failed_probe_s": None,
            "detected_s": None,
            "clients_moved": {},
            "moved_s": None,
            "recovered_s": None,
            "lost_requests": 0.0,
        }
        self.failovers.append(f)
        return f

    def _regions_up(self, sim: Simulation, t: float | None = None) -> dict[str, bool]:
        """Every serving region's state now (cached while no pod and no outage changes)."""
        m = self.model
        assert m is not None
        before = len(self._down_events), tuple(sorted(self._down_events))
        self._outage_events(sim)
        key = sim.platform.generation
        if key != self._up_key or before != (len(self._down_events), tuple(sorted(self._down_events))):
            new = {r: self.region_up(sim, r) for r in m.regions}
            if t is not None:
                for r, ok in new.items():
                    if not ok and self._up.get(r, True):
                        self._open(r, t)
            self._up = new
            self._up_key = key
        return self._up

    def _probe(self, sim: Simulation, t: float) -> None:
        m = self.model
        assert m is not None
        self._account(sim, t)
        self._apply_loss(sim, t)
        up = dict(self._up)
        for region, verdict in m.probe(t, up):
            # A failed probe is known when its timeout passes; a good answer at once.
            at = t + m.timeout if verdict == "unhealthy" else t
            sim.clock.schedule(at, partial(self._verdict, sim, region, verdict), priority=60)
        if t + m.interval < sim.scenario.duration:
            sim.clock.schedule(t + m.interval, partial(self._probe, sim), priority=60)

    def _verdict(self, sim: Simulation, region: str, verdict: str, t: float) -> None:
        m = self.model
        assert m is not None
        self._account(sim, t)
        before = {c: h[-1][1] for c, h in m.answers.items()}
        m.apply(t, region, verdict)
        moved = {c: (before[c], h[-1][1]) for c, h in m.answers.items() if h[-1][1] != before[c]}
        sim.log.emit(t, f"frontdoor.{verdict}", region=region, front_door=m.kind)
        if verdict == "unhealthy":
            f = self._open(region, t)
            f["first_failed_probe_s"] = m.state[region].down_since
            f["detected_s"] = t
            f["clients_moved"] = {c: to for c, (_, to) in moved.items()}
            f["moved_s"] = t + m.move_time if moved else None
        else:
            for f in reversed(self.failovers):
                if f["region"] == region and f["recovered_s"] is None:
                    f["recovered_s"] = t
                    break
        for c, (frm, to) in moved.items():
            sim.log.emit(t, "frontdoor.failover", client=c, from_region=frm, to_region=to, ttl_s=m.move_time)
        self._apply_delay(sim, t)
        if moved and m.move_time > 0:
            # Re-apply the class delays and losses as clients drift over the TTL.
            self._drift_until = t + m.move_time
            for k in range(1, _DRIFT_STEPS + 1):
                at = t + m.move_time * k / _DRIFT_STEPS
                sim.clock.schedule(at, partial(self._drift, sim, k % 4 == 0), priority=60)
        self._apply_loss(sim, t)

    def _drift(self, sim: Simulation, delay: bool, t: float) -> None:
        self._account(sim, t)
        if delay:
            self._apply_delay(sim, t)
        self._apply_loss(sim, t)

    def changed(self, sim: Simulation, t: float) -> None:
        """A region may have died or come back now (the chaos engine's outages call this)."""
        if self.model is None:
            return
        self._account(sim, t)
        self._regions_up(sim, t)  # also when the loop already looked at this instant
        self._apply_loss(sim, t)

    def _apply_loss(self, sim: Simulation, t: float) -> None:
        """Set the user classes' front-door loss for the coming stretch (``set_class_loss``)."""
        m = self.model
        setter = getattr(sim.plane, "set_class_loss", None)
        if m is None or setter is None:
            return
        self.loss_applied = True
        mid = t
        if t < self._drift_until - 1e-9:
            # The midpoint of the drift step holding t (a probe in between keeps the step's share).
            step = m.move_time / _DRIFT_STEPS
            start = self._drift_until - m.move_time
            mid = start + (math.floor((t - start) / step + 1e-9) + 0.5) * step
        share = min(1.0, max(0.0, self._dead_share(sim, mid, self._up)))
        if self._loss is not None and abs(share - self._loss) < 1e-12:
            return
        for c, user in enumerate(self._user_mask):
            if user > 0:
                setter(c, share)
        self._loss = share

    def _scrape(self, sim: Simulation, t: float) -> None:
        """Append the front-door counters (expected requests since the start) to the store."""
        self._account(sim, t)
        m = self.model
        assert m is not None
        put: list[tuple[dict[str, str], float]] = []
        for c in self.clients:
            for r in m.regions:
                for outcome, table in (("forwarded", self.route_weight), ("unavailable", self.route_lost)):
                    lb = {"client_region": c, "region": r, "outcome": outcome}
                    put.append((lb, table.get((c, r), 0.0)))
        ids = np.array([sim.store.series(METRIC, lb) for lb, _ in put], dtype=np.int64)
        sim.store.append(t, ids, np.array([v for _, v in put], dtype=np.float64))

    # --- effects -----------------------------------------------------------------------------

    def _dead_share(self, sim: Simulation, t: float, up: dict[str, bool]) -> float:
        m = self.model
        assert m is not None
        split = m.split(t)
        return sum(
            share * sum(x for r, x in split[c].items() if not up.get(r, True))
            for c, share in self.clients.items()
        )

    def _account(self, sim: Simulation, t: float) -> None:
        """Count the requests lost at the front door over ``[last, t)``, then look at the regions.

        The regions are looked at every probe (and at every verdict); when one changed
        in between, the change is dated by the first fault, node or pod event since
        the last look, so the lost requests start when the region died.
        """
        t0 = self._t
        m = self.model
        if m is None or t <= t0:
            return
        self._t = t
        before = dict(self._up)
        events = sim.log.unsettled()  # the change kinds are never owed (see _after)
        last = events[-1] if events else None
        t_change = t
        if self._regions_up(sim, None) != before:
            for ev in events[_after(events, self._seen_account) : _after(events, last)]:
                kind = str(ev.get("kind", ""))
                if t0 <= float(ev["t"]) <= t and kind.startswith(_CHANGE_KINDS):
                    t_change = float(ev["t"])
                    break
            for r, ok in self._up.items():
                if not ok and before.get(r, True):
                    self._open(r, t_change)
        self._seen_account = last
        self._segment(sim, t0, t_change, before)
        self._segment(sim, t_change, t, self._up)

    def _segment(self, sim: Simulation, t0: float, t: float, up: dict[str, bool]) -> None:
        """Routes and lost requests over ``[t0, t)`` with the regions in state ``up``."""
        m = self.model
        assert m is not None
        if t <= t0:
            return
        arrivals = sim.traffic.expected(t0, t) * self._user_mask  # not the consumers' messages
        n_all = float(arrivals.sum())
        split_mid = m.split(0.5 * (t0 + t))
        for c, share in self.clients.items():
            for r, x in split_mid[c].items():
                if up.get(r, True):
                    key = (c, r)
                    self.route_weight[key] = self.route_weight.get(key, 0.0) + n_all * share * x
        if all(up.values()):
            return
        # The shares are piecewise linear in t: midpoints integrate them closely.
        h = (t - t0) / _SUB
        frac = 0.0
        for k in range(_SUB):
            split = m.split(t0 + (k + 0.5) * h)
            for c, share in self.clients.items():
                for r, x in split[c].items():
                    if not up.get(r, True) and x > 0:
                        part = share * x / _SUB
                        frac += part
                        self.route_lost[(c, r)] = self.route_lost.get((c, r), 0.0) + n_all * part
        if frac <= 0:
            return
        lost = arrivals * frac
        self.lost += lost
        total = float(lost.sum())
        self.lost_series.append((t0, t, total))
        down = [r for r, ok in up.items() if not ok]
        for r in down:
            self._open(r, t0)["lost_requests"] += total / len(down)

    def _class_delays(self, t: float) -> np.ndarray:
        m = self.model
        assert m is not None
        split = m.split(t)
        d = sum(
            share * sum(x * self.rtt[c][r] for r, x in split[c].items()) for c, share in self.clients.items()
        )
        return np.full(self.lost.size, float(d)) * self._user_mask

    def _apply_delay(self, sim: Simulation, t: float) -> None:
        setter = getattr(sim.plane, "set_class_delay", None)
        if setter is None:
            return
        d = self._class_delays(t)
        if self._delays is not None and np.all(np.abs(d - self._delays) < 1e-4):
            return
        for c, v in enumerate(d):
            setter(c, float(v))
        self._delays = d
        self.delay_applied = True

    # --- results -----------------------------------------------------------------------------

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry (outages come from the chaos engine and the platform)."""
        return False

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Count front-door failures into the classes and SLOs, and add ``frontdoor``."""
        m = self.model
        if m is None:
            return
        self._account(sim, sim.scenario.duration)
        warm = self._lost_after(sim.scenario.warmup)
        if not self.delay_applied:
            add_network_latency(summary, sim, self.route_weight, self.rtt)
        if not self.loss_applied:
            apply_frontdoor_losses(summary, sim.program.classes, warm, sim)
        split0 = {c: h[0][1] for c, h in m.answers.items()}
        summary["frontdoor"] = {
            "kind": m.kind,
            "ttl_s": m.ttl if m.kind == "geodns" else None,
            "health_check": {
                "interval_s": m.interval,
                "failure_threshold": m.failure_threshold,
                "success_threshold": m.success_threshold,
                "timeout_s": m.timeout,
            },
            "regions": list(m.regions),
            "clients": {
                c: {
                    "share": share,
                    "region": split0[c],
                    "rtt_s": _rtt_or_none(self.rtt[c], split0[c]),
                }
                for c, share in self.clients.items()
            },
            "mean_rtt_s": round(float(self._class_delays(0.0).max()) if self.lost.size else 0.0, 6),
            "geography_latency": "data plane (set_class_delay)"
            if self.delay_applied
            else "summary (route mixture)",
            "losses": "data plane (set_class_loss)" if self.loss_applied else "summary (expected counts)",
            "failovers": [{**f, "lost_requests": round(f["lost_requests"], 3)} for f in self.failovers],
            "lost_requests": round(float(warm.sum()), 3),
        }

    def _lost_after(self, t0: float) -> np.ndarray:
        """Per class, the lost requests that arrived after ``t0`` (the warm-up)."""
        if not self.lost_series:
            return self.lost.copy()
        total = sum(x for *_, x in self.lost_series)
        after = sum(x * max(0.0, min(1.0, (b - t0) / (b - a))) for a, b, x in self.lost_series if b > a)
        return self.lost * (after / total if total > 0 else 0.0)


def add_network_latency(
    summary: dict[str, Any],
    sim: Simulation,
    weights: dict[tuple[str, str], float],
    rtt: dict[str, dict[str, float]],
) -> None:
    """Add the client round trip to each class's latency in the summary (no plane class-delay hook).

    A class's latency as users see it is the server's plus the round trip of the
    client's region to the region that served it: a mixture over (client, region)
    routes, weighted by the requests each carried. The class histograms are shifted
    route by route and re-binned; latency SLOs keep the share of good requests the
    shifted histogram gives (the plane's exact count scaled by the ratio of CDFs).
    """
    total = sum(weights.values())
    if total <= 0:
        return
    from devopsim.engine.request.layout import LH_MIN, LH_N, LH_RATIO
    from devopsim.results.stats import latency_block, lh_indices

    comps = [(w / total, rtt[c][r]) for (c, r), w in weights.items() if w > 0]
    mean_rtt = sum(w * d for w, d in comps)
    edges = np.concatenate(([0.0], LH_MIN * LH_RATIO ** np.arange(LH_N - 1)))
    mid = np.concatenate(([0.0], edges[1:] * math.sqrt(LH_RATIO)))
    st = sim.plane.stats
    users = {c.name for c in sim.scenario.traffic.classes}
    shifted: dict[int, np.ndarray] = {}
    for c, name in enumerate(sim.program.classes):
        block = summary["classes"].get(name)
        hist = np.asarray(st.cls_hist[c], dtype=np.float64)
        ok = float(st.cls_ok[c])
        if block is None or hist.sum() <= 0 or name not in users:
            continue
        new = np.zeros(LH_N)
        for w, d in comps:
            new += np.bincount(lh_indices(mid + d), weights=hist * w, minlength=LH_N)[:LH_N]
        shifted[c] = new
        block["latency_s"] = latency_block(new, float(st.cls_lsum[c]) + ok * mean_rtt, ok)
        block["network_rtt_s"] = round(mean_rtt, 6)
    for slo in summary.get("slos", []):
        if slo.get("kind") != "latency" or not slo.get("requests"):
            continue
        idx = (
            [sim.program.classes.index(slo["class"])]
            if slo.get("class")
            else list(range(len(sim.program.classes)))
        )
        thr = lh_indices(np.array([float(slo["latency_s"])]))[0]
        before = sum(float(np.asarray(st.cls_hist[c])[:thr].sum()) for c in idx)
        after = sum(float(shifted[c][:thr].sum()) for c in idx if c in shifted)
        if before <= 0:
            continue
        good = round(slo["good"] * after / before)
        attained = min(1.0, good / slo["requests"])
        slo["good"] = good
        slo["attained"] = round(attained, 9)
        slo["met"] = bool(attained >= slo["objective"])
        slo["budget_burned"] = round((1.0 - attained) / (1.0 - slo["objective"]), 6)


def _rtt_or_none(row: dict[str, float], region: str | None) -> float | None:
    return None if region is None else round(row[region], 6)


def apply_frontdoor_losses(
    summary: dict[str, Any], classes: list[str], lost: np.ndarray, sim: Simulation | None = None
) -> None:
    """Move requests failed at the front door from ``ok`` to ``errors.unavailable``, and out of the SLOs."""
    if not np.any(lost > 0):
        return
    for c, name in enumerate(classes):
        block = summary["classes"].get(name)
        if block is None:
            continue
        n = min(round(float(lost[c])), block["ok"])
        block["ok"] -= n
        block["errors"]["unavailable"] = block["errors"].get("unavailable", 0) + n
    for slo in summary.get("slos", []):
        idx = [classes.index(slo["class"])] if slo.get("class") else list(range(len(classes)))
        total = slo.get("requests") or 0
        if not total:
            continue
        gone = float(lost[idx].sum())
        if slo.get("kind") == "latency":
            gone *= slo["good"] / total  # of the lost requests, those that would have been fast
        good = max(0, round(slo["good"] - gone))
        attained = min(1.0, good / total)
        slo["good"] = good
        slo["attained"] = round(attained, 9)
        slo["met"] = bool(attained >= slo["objective"])
        slo["budget_burned"] = round((1.0 - attained) / (1.0 - slo["objective"]), 6)
    if not math.isfinite(float(lost.sum())):
        raise ValueError("front-door losses are not finite")
