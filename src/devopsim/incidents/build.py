"""Incidents from what a run recorded: faults, SLO burn, alerts, failovers, rollbacks, scale-outs.

Every fault (the chaos engine's ``faults[]``, else the scenario's timeline
faults) and every stretch of fast SLO burn that no fault explains becomes an
incident with the SRE timeline:

* ``start_s``: the fault's injection; for an SLO breach no fault explains (a
  stretch of bad intervals during which the fast burn condition holds), its
  first bad interval, or the start of a deploy in the 10 minutes before it.
* ``detected_s`` / ``detected_by``: the earliest of an alert firing
  (``alert:NAME``), the front door's health check marking a region of the
  fault's target unhealthy (``health-check:REGION``), and a fast SLO burn
  (``slo-burn:SLO``): the moment the error ratio over the last 5 minutes
  reaches :data:`FAST_BURN` times the SLO's error budget (the short window of
  the SRE workbook's page alert, 14.4 = 2 % of a 30-day budget in an hour); a
  burn alert already firing when the incident starts detects nothing new.
* A breach that starts within :data:`SLACK_S` of a region losing its last
  serving pod (no fault: e.g. a scale-down emptied it) is ``region-lost``, with
  the health check as detection and the failover as mitigation.
* ``mitigated_s`` / ``mitigation``: the first automatic or manual action after
  the start: a front-door failover, a datastore failover, a rollback, a
  scale-out.
* ``recovered_s``: the end of the last bad interval before :data:`QUIET_S`
  seconds without one; an interval is bad when its share of bad requests is
  above both the SLO's budget and :data:`BASELINE_FACTOR` times the usual
  share: its median over the hour before the incident (over the whole run
  when there is no such hour, and for breaches no fault explains). A platform
  that always misses its SLO a little still recovers from an incident when it
  is back to its usual self.
* ``users_affected``: requests that failed, or missed a latency SLO, from the
  start to the recovery (front-door connection errors included);
  ``writes_lost``: writes the datastores lost in failovers meanwhile.

``mttd_s`` is the mean of ``detected_s - start_s`` over detected incidents,
``mttr_s`` the mean of ``recovered_s - start_s`` over incidents that hurt users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BASELINE_FACTOR", "FAST_BURN", "QUIET_S", "SHORT_WINDOW_S", "Interval", "build_incidents"]

FAST_BURN = 14.4
SHORT_WINDOW_S = 300.0
QUIET_S = 300.0
BASELINE_FACTOR = 3.0
BASELINE_S = 3600.0
SLACK_S = 30.0  # a region lost this close to a breach's start is taken as its cause


@dataclass(frozen=True)
class Interval:
    """User requests over ``[t0, t1)``: all of them, and the bad ones (failed or too slow)."""

    t0: float
    t1: float
    requests: float
    failed: float
    slow: float = 0.0  # succeeded but missed a latency SLO

    @property
    def bad(self) -> float:
        return self.failed + self.slow


@dataclass
class _Incident:
    kind: str
    cause: str
    target: str | None
    start: float
    fault_end: float | None = None
    detections: list[tuple[float, str]] = field(default_factory=list)
    mitigations: list[tuple[float, str]] = field(default_factory=list)


def _burning(series: list[Interval], budget: float) -> list[bool]:
    """Per interval: whether the short-window burn rate is at least :data:`FAST_BURN` at its end."""
    out = []
    lo = 0
    n = bad = 0.0
    for iv in series:
        n += iv.requests
        bad += iv.failed
        while series[lo].t1 <= iv.t1 - SHORT_WINDOW_S:
            n -= series[lo].requests
            bad -= series[lo].failed
            lo += 1
        out.append(n > 0 and bad / n >= FAST_BURN * budget)
    return out


def _onsets(series: list[Interval], burning: list[bool]) -> list[float]:
    """When the burn alert starts firing (an alert already on at the run's start counts once)."""
    return [iv.t1 for k, iv in enumerate(series) if burning[k] and (k == 0 or not burning[k - 1])]


def _threshold(series: list[Interval], budget: float, before: float | None) -> float:
    """Share of bad requests above which an interval is bad: the budget, or BASELINE_FACTOR x the
    usual share (the median over the hour before ``before``, else over the whole run)."""
    ratios: list[float] = []
    if before is not None:
        ratios = sorted(
            iv.bad / iv.requests for iv in series if iv.requests > 0 and before - BASELINE_S <= iv.t0 < before
        )
    if not ratios:
        ratios = sorted(iv.bad / iv.requests for iv in series if iv.requests > 0)
    usual = ratios[len(ratios) // 2] if ratios else 0.0
    return max(budget, BASELINE_FACTOR * usual)


def _is_bad(iv: Interval, budget: float) -> bool:
    """Worse than the threshold (the budget, or :data:`BASELINE_FACTOR` x the run's usual error ratio)."""
    return iv.requests > 0 and iv.bad / iv.requests > budget


def _recovery(
    series: list[Interval], start: float, budget: float, until: float
) -> tuple[float | None, float]:
    """(end of the last bad interval before a quiet stretch, bad requests from ``start`` to it)."""
    last: float | None = None
    for iv in series:
        if iv.t1 <= start:
            continue
        if iv.t0 >= until:
            break
        if _is_bad(iv, budget):
            last = iv.t1
        elif iv.t0 - (start if last is None else last) >= QUIET_S:
            break
    if last is None:
        return None, 0.0
    affected = sum(iv.bad for iv in series if iv.t1 > start and iv.t0 < last)
    return last, affected


def _matches(target: str | None, region: str) -> bool:
    if not target:
        return False
    cloud, _, name = region.partition("/")
    return target in (cloud, name, region)


def build_incidents(
    *,
    faults: list[dict[str, Any]],
    series: list[Interval],
    budget: float,
    slo_name: str,
    alerts: list[dict[str, Any]],
    failovers: list[dict[str, Any]],
    events: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    end: float,
) -> tuple[list[dict[str, Any]], float | None, float | None]:
    """The run's incidents and its MTTD and MTTR, seconds (see the module docstring).

    Args:
        faults: ``{kind, target, start_s, end_s}`` of every fault injected.
        series: user requests per interval, in time order.
        budget: the availability SLO's error budget (1 - objective).
        slo_name: the SLO that budget belongs to.
        alerts: ``alerts[]`` of the summary (``name``, ``firing_at``).
        failovers: the front door's failovers (``region``, ``failed_s``, ``detected_s``, ...).
        events: the event log.
        deployments: ``deployments[]`` of the summary.
        end: the run's duration, seconds.
    """
    threshold = _threshold(series, budget, None)
    incs: list[_Incident] = []
    for f in sorted(faults, key=lambda f: float(f["start_s"])):
        if f.get("kind") == "recover":
            continue
        target = f.get("target")
        inc = _Incident(str(f["kind"]), f"{f['kind']} {target}", target, float(f["start_s"]), f.get("end_s"))
        for fo in failovers:
            if _matches(target, fo["region"]) and (fo.get("detected_s") or -1.0) >= inc.start:
                inc.detections.append((fo["detected_s"], f"health-check:{fo['region']}"))
                moved = ", ".join(f"{c}->{r}" for c, r in (fo.get("clients_moved") or {}).items())
                inc.mitigations.append(
                    (fo["detected_s"], f"failover {fo['region']}" + (f" ({moved})" if moved else ""))
                )
        incs.append(inc)
    burning = _burning(series, budget)
    burns = _onsets(series, burning)
    # SLO breaches no fault explains: each stretch of bad intervals during which the fast
    # burn condition holds is an incident of its own.
    covered = [
        (
            i.start,
            (_recovery(series, i.start, _threshold(series, budget, i.start), end)[0] or i.start)
            + SHORT_WINDOW_S,
        )
        for i in incs
    ]
    k = 0
    while k < len(series):
        iv = series[k]
        if not _is_bad(iv, threshold) or any(a <= iv.t0 < b for a, b in covered):
            k += 1
            continue
        start = iv.t0
        rec, _ = _recovery(series, start, threshold, end)
        stop = rec if rec is not None else iv.t1
        if any(burning[j] for j in range(k, len(series)) if series[j].t1 <= stop + SHORT_WINDOW_S):
            deploy = next(
                (
                    d
                    for d in deployments
                    if d.get("kind") == "deploy" and start - 600 <= float(d["started_s"]) <= start
                ),
                None,
            )
            if deploy is not None:
                incs.append(
                    _Incident(
                        "deploy",
                        f"deploy {deploy['service']} {deploy.get('to_version', '')}".strip(),
                        deploy["service"],
                        float(deploy["started_s"]),
                    )
                )
            else:
                incs.append(_Incident("slo-burn", f"fast burn of SLO {slo_name}", None, start))
        while k < len(series) and series[k].t0 < stop:
            k += 1
    incs.sort(key=lambda i: i.start)
    out: list[dict[str, Any]] = []
    for k, inc in enumerate(incs):
        until = incs[k + 1].start if k + 1 < len(incs) else end
        recovered, affected = _recovery(series, inc.start, _threshold(series, budget, inc.start), until)
        window_end = recovered if recovered is not None else (inc.fault_end or inc.start)
        for a in alerts:
            fired = a.get("firing_at")
            if (
                isinstance(fired, int | float)
                and inc.start <= fired <= max(window_end, inc.start) + SHORT_WINDOW_S
            ):
                inc.detections.append((float(fired), f"alert:{a.get('name')}"))
        for t in burns:
            if inc.start <= t <= max(window_end, inc.start) + SHORT_WINDOW_S:
                inc.detections.append((t, f"slo-burn:{slo_name}"))
                break
        for ev in events:
            t = float(ev["t"])
            if t < inc.start or t > max(window_end, inc.start) + SHORT_WINDOW_S:
                continue
            kind = str(ev.get("kind", ""))
            if kind == "datastore.failover":
                inc.mitigations.append((t, f"failover {ev.get('datastore')}"))
            elif kind == "scale" and int(ev.get("to_replicas", 0)) > int(ev.get("from_replicas", 0)):
                inc.mitigations.append((t, f"scale-out {ev.get('service')}"))
            elif "abort" in kind or kind == "rollback":
                inc.mitigations.append((t, f"rollback {ev.get('service', '')}".strip()))
        for d in deployments:
            t = float(d.get("started_s", -1))
            if d.get("kind") == "rollback" and inc.start <= t <= max(window_end, inc.start) + SHORT_WINDOW_S:
                inc.mitigations.append((t, f"rollback {d['service']}"))
        writes = sum(
            float(ev.get("writes_lost") or 0.0)
            for ev in events
            if ev.get("kind") == "datastore.failover"
            and inc.start <= float(ev["t"]) <= max(window_end, inc.start) + 60
        )
        if inc.target is None:
            # A breach no fault explains: a region that stopped serving (its last pod gone) is
            # its cause, the health check its detection and the failover its mitigation.
            for fo in failovers:
                failed = fo.get("failed_s")
                if failed is None or not inc.start - SLACK_S <= failed <= inc.start + SLACK_S:
                    continue
                inc.cause = f"region {fo['region']} stopped serving"
                inc.kind = "region-lost"
                if fo.get("detected_s") is not None:
                    inc.detections.append((fo["detected_s"], f"health-check:{fo['region']}"))
                    inc.mitigations.append((fo["detected_s"], f"failover {fo['region']}"))
        det = min(inc.detections) if inc.detections else None
        mit = min(inc.mitigations) if inc.mitigations else None
        out.append(
            {
                "id": f"INC-{k + 1}",
                "name": inc.cause,
                "kind": inc.kind,
                "cause": inc.cause,
                "target": inc.target,
                "start_s": inc.start,
                "fault_end_s": inc.fault_end,
                "detected_s": None if det is None else det[0],
                "detected_by": None if det is None else det[1],
                "mitigated_s": None if mit is None else mit[0],
                "mitigation": None if mit is None else mit[1],
                "recovered_s": recovered,
                "ttd_s": None if det is None else round(det[0] - inc.start, 6),
                "ttr_s": None if recovered is None else round(recovered - inc.start, 6),
                "impact": recovered is not None,
                "users_affected": round(affected),
                "writes_lost": round(writes, 3),
            }
        )
    ttd = [i["ttd_s"] for i in out if i["ttd_s"] is not None]
    ttr = [i["ttr_s"] for i in out if i["ttr_s"] is not None]
    mttd = sum(ttd) / len(ttd) if ttd else None
    mttr = sum(ttr) / len(ttr) if ttr else None
    return out, mttd, mttr
