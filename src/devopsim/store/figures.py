"""Key figures of a run, read off its summary (for listing and comparing runs).

Availability is the share of requests that succeeded, over every request class
(``sum(ok) / sum(requests)``); ``p99_s`` is the worst class's 99th percentile
latency in seconds. Both are what a user scans a list of runs for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["comparable_figures", "key_figures"]


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)


def key_figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The few figures ``runs ls`` shows: requests, availability, worst p99, SLOs met, alerts."""
    classes = summary.get("classes") or {}
    requests = 0
    ok = 0
    p99: float | None = None
    for block in classes.values():
        if not isinstance(block, dict):
            continue
        requests += int(block.get("requests") or 0)
        ok += int(block.get("ok") or 0)
        q = _num((block.get("latency_s") or {}).get("p99"))
        if q is not None:
            p99 = q if p99 is None else max(p99, q)
    slos = [s for s in summary.get("slos") or [] if isinstance(s, dict)]
    alerts = summary.get("alerts")
    return {
        "requests": requests,
        "availability": ok / requests if requests else None,
        "p99_s": p99,
        "slos_met": sum(1 for s in slos if s.get("met")),
        "slos": len(slos),
        "alerts": len(alerts) if isinstance(alerts, list) else None,
        "duration_s": _num(summary.get("duration_s")),
    }


def _latency(prefix: str, block: dict[str, Any], out: dict[str, float]) -> None:
    lat = block.get("latency_s") or {}
    for q in ("mean", "p50", "p99"):
        v = _num(lat.get(q))
        if v is not None:
            out[f"{prefix} latency {q} (s)"] = v


def comparable_figures(summary: dict[str, Any]) -> dict[str, float]:
    """Every headline number of a summary under a readable name, in display order.

    Overall figures first, then per request class, per SLO, per service, and
    the cost and DORA blocks when the summary has them.
    """
    out: dict[str, float] = {}
    kf = key_figures(summary)
    for key, name in (("requests", "requests"), ("availability", "availability"), ("p99_s", "worst p99 (s)")):
        v = _num(kf[key])
        if v is not None:
            out[name] = v
    if kf["slos"]:
        out["SLOs met"] = float(kf["slos_met"])
    if kf["alerts"] is not None:
        out["alerts"] = float(kf["alerts"])
    for cls, block in sorted((summary.get("classes") or {}).items()):
        if not isinstance(block, dict):
            continue
        n = _num(block.get("requests"))
        if n is not None:
            out[f"class {cls} requests"] = n
            errs = block.get("errors") or {}
            total = sum(v for v in errs.values() if isinstance(v, int | float))
            if n:
                out[f"class {cls} error ratio"] = total / n
        _latency(f"class {cls}", block, out)
    for slo in summary.get("slos") or []:
        if isinstance(slo, dict) and "name" in slo:
            for key in ("attained", "budget_burned"):
                v = _num(slo.get(key))
                if v is not None:
                    out[f"SLO {slo['name']} {key.replace('_', ' ')}"] = v
    for svc, block in sorted((summary.get("services") or {}).items()):
        if not isinstance(block, dict):
            continue
        v = _num(block.get("utilization"))
        if v is not None:
            out[f"service {svc} utilization"] = v
        reps = block.get("replicas") or {}
        v = _num(reps.get("mean")) if isinstance(reps, dict) else None
        if v is not None:
            out[f"service {svc} replicas mean"] = v
        lat = block.get("latency_s") or {}
        v = _num(lat.get("p99")) if isinstance(lat, dict) else None
        if v is not None:
            out[f"service {svc} latency p99 (s)"] = v
    for section in ("cost", "dora"):
        block = summary.get(section)
        if isinstance(block, dict):
            for key, value in block.items():
                v = _num(value)
                if v is not None:
                    out[f"{section} {key}"] = v
    return out
