"""Weak-point search: fail each component in turn at the worst time of day, rank by user impact.

Components and what "fails" means for each (one instance, as a single hardware or
process failure takes it):

* a service: one of its pods dies (``pod-kill``); the Deployment replaces it;
* a PostgreSQL primary: ``db-primary-crash`` (Patroni fails over to a replica, or
  the primary restarts after the repair time when there is none);
* a PostgreSQL read replica: one replica is down for the repair time (``pod-failure``);
* a Redis shard: its node is down for the repair time (the calls for its keys fail,
  a ``1/shards`` share of the cache's calls) and it comes back empty
  (``cache-shard-loss``);
* a Kafka broker: ``broker-loss``;
* a zone, region or cloud of the platform: its outage for the repair time.

Each failure is played in its own run over a window around the worst moment (the
peak of the traffic), from ``lead`` before it (the warm-up: autoscalers settle) to
``tail`` after the repair; the scenario's timeline and experiments are left out so
that only this failure differs from a baseline run over the same window. A
clock-following traffic pattern (constant or diurnal) lets the window be cut out
of the day: the run starts at the window, so a sweep costs minutes, not days.

Impact per component: the users' failed requests (and how many more than the
baseline), and SLO minutes lost: minutes in which the users' error ratio broke an
availability SLO's objective, beyond the baseline's.

Recovery per component: whether the users' error ratio came back, by the end of the
window, under the bad-minute threshold (the first availability SLO's error budget
``1 - objective``, or twice the baseline's ratio in that minute if higher), and
``time_to_recover_s``: from the failure to the end of the last bad minute (0 when no
minute broke it). A failure that is repaired but leaves the system failing is
*metastable*: something other than the fault sustains the errors (a retry storm on a
saturated service, worker pools held by calls without deadlines). checkout.yaml at
its peak is such a system: see docs/chaos.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np

from devopsim.errors import ChaosError
from devopsim.scenario.infra import Kafka, Postgres, Redis
from devopsim.scenario.loader import LoadedScenario
from devopsim.traffic.patterns import DAY, ConstantRate, Diurnal

__all__ = ["Component", "components", "sweep", "worst_time"]

LEAD = 1800.0  # s before the failure: warm-up, the autoscalers settle
TAIL = 1800.0  # s after the repair: recovery, warm caches
SweepProgress = Callable[[int, int, str], None]
Component = dict[str, Any]  # {name, fault(s)}


def worst_time(loaded: LoadedScenario, at: str | None = None) -> float:
    """Run seconds of the peak traffic (or of the time of day ``at``, like ``20:00``)."""
    sc = loaded.scenario
    if at is not None:
        hh, _, mm = at.partition(":")
        try:
            tod = int(hh) * 3600 + int(mm or 0) * 60
        except ValueError:
            raise ChaosError(f"--at takes a time of day like 20:00 (got {at!r})") from None
        return (
            float((tod - sc.clock0) % DAY)
            if sc.duration >= DAY
            else min(float((tod - sc.clock0) % DAY), sc.duration)
        )
    t = np.arange(0.0, sc.duration, 60.0)
    r = sc.traffic.rate.rate(t, sc.clock0)
    return float(t[int(np.argmax(r))])


def components(loaded: LoadedScenario, repair: float) -> list[Component]:
    """Every component a sweep fails, with the faults that fail it."""
    sc = loaded.scenario
    out: list[Component] = []
    stores = set(sc.datastores)
    synthetic = {s for s in sc.services if any(s == d or s.startswith(d + "-") for d in stores)}
    for name in sc.services:
        if name in synthetic:
            continue
        out.append(
            {"component": f"{name} (one pod)", "faults": [{"kind": "pod-kill", "target": name, "count": 1}]}
        )
    for name, ds in sc.datastores.items():
        if isinstance(ds, Postgres):
            out.append(
                {
                    "component": f"{name} primary",
                    "faults": [{"kind": "db-primary-crash", "target": name, "duration": repair}],
                }
            )
            if ds.topology == "primary-replica" and ds.reads_from == "replicas" and ds.replicas:
                out.append(
                    {
                        "component": f"{name} replica",
                        "faults": [
                            {
                                "kind": "pod-failure",
                                "target": f"{name}-replicas",
                                "count": 1,
                                "duration": repair,
                            }
                        ],
                    }
                )
        elif isinstance(ds, Redis):
            out.append(
                {
                    "component": f"{name} shard" if ds.shards > 1 else f"{name} node",
                    "faults": [
                        {
                            "kind": "network-partition" if ds.shards == 1 else "network-loss",
                            "target": name,
                            "loss": 1.0 / ds.shards,
                            "duration": repair,
                        },
                        {"kind": "cache-shard-loss", "target": name, "count": 1},
                    ],
                }
            )
        elif isinstance(ds, Kafka):
            out.append(
                {
                    "component": f"{name} broker",
                    "faults": [{"kind": "broker-loss", "target": name, "count": 1}],
                }
            )
    if sc.platform is not None:
        for cname, cloud in sc.platform.clouds.items():
            for rname, region in cloud.regions.items():
                for z in region.zones:
                    out.append(
                        {
                            "component": f"zone {z}",
                            "faults": [{"kind": "zone-outage", "target": z, "duration": repair}],
                        }
                    )
                if len(cloud.regions) > 1:
                    out.append(
                        {
                            "component": f"region {rname}",
                            "faults": [{"kind": "region-outage", "target": rname, "duration": repair}],
                        }
                    )
            out.append(
                {
                    "component": f"cloud {cname}",
                    "faults": [{"kind": "cloud-outage", "target": cname, "duration": repair}],
                }
            )
    for c in out:
        for f in c["faults"]:
            if f["kind"] == "network-partition":
                f.pop("loss", None)
    return out


def _window(loaded: LoadedScenario, t_fail: float, repair: float) -> tuple[LoadedScenario, float]:
    """The scenario cut to the window around ``t_fail``; returns it and the failure's run time in it."""
    sc = loaded.scenario
    clock_based = isinstance(sc.traffic.rate, Diurnal | ConstantRate)
    start = max(0.0, t_fail - LEAD) if clock_based else 0.0
    end = min(sc.duration if not clock_based else float("inf"), t_fail + repair + TAIL)
    if clock_based:
        end = t_fail + repair + TAIL
    update: dict[str, Any] = {
        "timeline": [],
        "chaos": [],
        "duration": end - start,
        "warmup": t_fail - start,
    }
    if start > 0 and sc.start is not None:
        update["start"] = sc.start + timedelta(seconds=start)
    elif start > 0 and isinstance(sc.traffic.rate, Diurnal):
        # No wall clock: a diurnal pattern follows run time from midnight, so shift its peak
        # instead (a constant rate does not care).
        r = sc.traffic.rate
        update["traffic"] = sc.traffic.model_copy(
            update={"rate": Diurnal(r.low, r.high, (r.peak_at - start) % DAY)}
        )
    # Deep copies: compiling a scenario adds the datastores' services to it, once per object.
    new = sc.model_copy(update=update, deep=True)
    return replace(loaded, scenario=new, unsupported=[]), t_fail - start


def _minute_ratios(store: Any, loaded: LoadedScenario) -> tuple[np.ndarray, np.ndarray]:
    """(minute ends, the users' error ratio in each minute) after the warm-up.

    Minutes, or two scrape intervals when scrapes come less often than every 30 s.
    """
    from devopsim.observe.promql import Engine

    sc = loaded.scenario
    step = max(60.0, 2.0 * sc.monitoring.scrape_interval)  # two scrapes in each range at least
    t0, t1 = sc.warmup + step, sc.duration
    if t1 < t0:
        return np.zeros(0), np.zeros(0)
    eng = Engine(store)
    rng = f"[{step:g}s]"
    bad = eng.range(f'sum(increase(devopsim_client_requests_total{{outcome!="ok"}}{rng}))', t0, t1, step)
    all_ = eng.range(f"sum(increase(devopsim_client_requests_total{rng}))", t0, t1, step)
    if not all_:
        return np.zeros(0), np.zeros(0)
    times, a = all_[0][1], all_[0][2]
    b = np.zeros_like(a)
    if bad:
        idx = np.searchsorted(times, bad[0][1])
        b[idx] = bad[0][2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return times, np.where(a > 0, b / a, 0.0)


def recovery(
    times: np.ndarray, ratio: np.ndarray, base: np.ndarray, threshold: float, t_fail: float
) -> tuple[bool, float | None]:
    """(recovered by the end, seconds from the failure to the end of the last bad minute).

    A minute is bad when its error ratio exceeds ``threshold`` and twice the baseline's in
    the same minute (``base``, aligned with ``times``; empty: no baseline).
    """
    if times.size == 0:
        return True, 0.0
    limit = np.full(times.size, threshold)
    if base.size == times.size:
        limit = np.maximum(limit, 2.0 * base)
    bad = (ratio > limit) & (times > t_fail)
    if not bad.any():
        return True, 0.0
    last = int(np.flatnonzero(bad)[-1])
    if last == times.size - 1:
        return False, None
    return True, float(times[last] - t_fail)


def _threshold(loaded: LoadedScenario) -> float:
    slos = [s for s in loaded.scenario.slos if s.latency is None]
    return 1.0 - slos[0].objective if slos else 0.001


def _impact(summary: dict[str, Any], store: Any, loaded: LoadedScenario) -> dict[str, float]:
    classes = summary.get("classes", {})
    req = sum(float(c.get("requests", 0.0)) for c in classes.values())
    ok = sum(float(c.get("ok", 0.0)) for c in classes.values())
    return {"requests": req, "failed": req - ok, "slo_minutes": _slo_minutes(store, loaded)}


def _slo_minutes(store: Any, loaded: LoadedScenario) -> float:
    """Minutes after the warm-up in which the users' error ratio broke an availability SLO."""
    from devopsim.observe.promql import Engine

    sc = loaded.scenario
    slos = [s for s in sc.slos if s.latency is None]
    if not slos:
        return 0.0
    eng = Engine(store)
    step = 60.0
    t0, t1 = sc.warmup + step, sc.duration
    if t1 < t0:
        return 0.0
    total = 0.0
    for slo in slos:
        sel = f'class="{slo.class_}",' if slo.class_ else ""
        bad = eng.range(
            f'sum(increase(devopsim_client_requests_total{{{sel}outcome!="ok"}}[1m]))', t0, t1, step
        )
        all_ = eng.range(
            f"sum(increase(devopsim_client_requests_total{{{sel[:-1] if sel else ''}}}[1m]))", t0, t1, step
        )
        if not bad or not all_:
            continue
        b, a = bad[0][2], all_[0][2]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(a > 0, b / a, 0.0)
        total += float(np.sum(ratio > 1.0 - slo.objective)) * step / 60.0
    return total


def sweep(
    loaded: LoadedScenario,
    repair: float = 300.0,
    at: str | None = None,
    only: list[str] | None = None,
    progress: SweepProgress | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Fail each component in turn; the ranking, worst first.

    Args:
        loaded: the scenario.
        repair: how long a failed node stays down when nothing fails over (s).
        at: the time of day to fail at (``HH:MM``); default: the traffic's peak.
        only: sweep only the components whose name starts with one of these.
        progress: called with (runs done, runs in all, what runs now).
        seed: overrides the scenario's seed (the same for every run).

    Raises:
        ChaosError: nothing to sweep, or a bad ``at``.
    """
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import Fault, TimelineEntry

    loaded = replace(loaded, scenario=loaded.scenario.model_copy(deep=True))
    t_fail = worst_time(loaded, at)
    comps = components(loaded, repair)
    if only:
        comps = [c for c in comps if any(c["component"].startswith(o) for o in only)]
    if not comps:
        raise ChaosError("nothing to sweep: the scenario has no services, datastores or locations")
    window, t_in = _window(loaded, t_fail, repair)
    total = len(comps) + 1
    if progress is not None:
        progress(0, total, "baseline")
    base_out = Simulation(replace(window, scenario=window.scenario.model_copy(deep=True)), seed=seed).run()
    base = _impact(base_out.summary, base_out.store, window)
    _, base_ratio = _minute_ratios(base_out.store, window)
    threshold = _threshold(window)
    rows = []
    for i, comp in enumerate(comps, 1):
        if progress is not None:
            progress(i, total, comp["component"])
        entries = [TimelineEntry(at=t_in, fault=Fault.model_validate(f)) for f in comp["faults"]]
        sc = window.scenario.model_copy(update={"timeline": entries}, deep=True)
        out = Simulation(replace(window, scenario=sc), seed=seed).run()
        imp = _impact(out.summary, out.store, window)
        times, ratio = _minute_ratios(out.store, window)
        recovered, ttr = recovery(times, ratio, base_ratio, threshold, t_in)
        rows.append(
            {
                "component": comp["component"],
                "fault": " + ".join(f["kind"] for f in comp["faults"]),
                "failed_requests": imp["failed"],
                "extra_failed_requests": max(0.0, imp["failed"] - base["failed"]),
                "failed_share": imp["failed"] / imp["requests"] if imp["requests"] else 0.0,
                "slo_minutes_lost": max(0.0, imp["slo_minutes"] - base["slo_minutes"]),
                "recovered": recovered,
                "time_to_recover_s": ttr,
                "final_error_ratio": float(ratio[-1]) if ratio.size else 0.0,
                "faults": comp["faults"],
            }
        )
    if progress is not None:
        progress(total, total, "done")
    rows.sort(key=lambda r: (-r["extra_failed_requests"], -r["slo_minutes_lost"], r["component"]))
    tod = (loaded.scenario.clock0 + t_fail) % DAY
    return {
        "scenario": loaded.scenario.name,
        "at": f"{int(tod // 3600):02d}:{int(tod % 3600 // 60):02d}",
        "t_fail_s": t_fail,
        "repair_s": repair,
        "window_s": window.scenario.duration,
        "bad_minute_threshold": threshold,
        "baseline": {
            "failed_requests": base["failed"],
            "requests": base["requests"],
            "slo_minutes": base["slo_minutes"],
        },
        "ranking": rows,
    }
