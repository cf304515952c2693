"""The run summary, exactly as the results contract of DESIGN.md lays it out.

Statistics cover requests that arrived after the warm-up. Latency blocks
describe successful requests; failed ones are counted by cause. All times are
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from devopsim import __version__
from devopsim.engine.totals import ServiceTotals
from devopsim.export.openmetrics import run_start
from devopsim.model.platform import Platform
from devopsim.model.program import ERROR_NAMES, Program
from devopsim.results.stats import latency_block
from devopsim.scenario.schema import Scenario
from devopsim.scenario.support import Unsupported

__all__ = ["SummaryInputs", "build_summary"]


@dataclass
class SummaryInputs:
    """Everything the summary is computed from."""

    scenario: Scenario
    seed: int
    program: Program
    plane: Any
    platform: Platform
    totals_at_warmup: list[ServiceTotals]
    totals_at_end: list[ServiceTotals]
    unsupported: list[Unsupported]


def _r(x: float | None, nd: int = 9) -> float | None:
    return None if x is None else round(float(x), nd)


def _n(x: float | np.floating | np.integer) -> int:
    """A count; the flow plane counts expected values, so round them."""
    return round(float(x))


def _errors(row: np.ndarray) -> dict[str, int]:
    return {name: _n(row[i]) for i, name in enumerate(ERROR_NAMES)}


def _step_stats(
    history: list[tuple[float, int, int]], col: int, t0: float, t1: float
) -> tuple[float, float, float, float]:
    """min, max, time-weighted mean and integral of a step function over [t0, t1]."""
    times = [h[0] for h in history] + [t1]
    values = [h[col] for h in history]
    seen: list[float] = []
    area = 0.0
    for i, v in enumerate(values):
        a, b = max(times[i], t0), min(times[i + 1], t1)
        if b > a or (b == a and times[i] <= t0 < times[i + 1]):
            seen.append(v)
        if b > a:
            area += v * (b - a)
    if not seen:
        seen = [values[-1]] if values else [0]
    span = t1 - t0
    return float(min(seen)), float(max(seen)), area / span if span > 0 else float(seen[-1]), area


def build_summary(x: SummaryInputs) -> dict[str, Any]:
    """Build the summary dictionary (JSON-ready, deterministic)."""
    sc, st, prog = x.scenario, x.plane.stats, x.program
    t0, t1 = sc.warmup, sc.duration
    out: dict[str, Any] = {
        "scenario": sc.name,
        "seed": x.seed,
        "plane": x.plane.name,
        "duration_s": t1,
        "warmup_s": t0,
        "start": run_start(sc.start),  # the wall-clock time of t = 0 (exports, alert timestamps)
        "devopsim_version": __version__,
    }
    classes: dict[str, Any] = {}
    for c, name in enumerate(prog.classes):
        n = _n(st.cls_n[c])
        ok = _n(st.cls_ok[c])
        classes[name] = {
            "requests": n,
            "ok": ok,
            "errors": _errors(st.cls_err[c]),
            "latency_s": latency_block(st.cls_hist[c], float(st.cls_lsum[c]), float(st.cls_ok[c])),
        }
    out["classes"] = classes
    services: dict[str, Any] = {}
    for s, name in enumerate(prog.services):
        w = x.platform.workloads[name]
        rmin, rmax, rmean, _ = _step_stats(w.history, 1, t0, t1)
        _, _, _, pod_seconds = _step_stats(w.history, 2, t0, t1)
        cores = float(prog.arrays["svc_cores"][s])
        conc = float(prog.arrays["svc_conc"][s])
        cpu = x.totals_at_end[s].cpu - x.totals_at_warmup[s].cpu
        busy = x.totals_at_end[s].busy - x.totals_at_warmup[s].busy
        wait = latency_block(st.sv_whist[s], float(st.sv_wsum[s]), float(st.sv_wn[s]), ("p50", "p99"))
        services[name] = {
            "requests": _n(st.sv_n[s]),
            "errors": _n(st.sv_err[s]),
            "latency_s": latency_block(st.sv_hist[s], float(st.sv_lsum[s]), float(st.sv_ok[s])),
            "wait_s": wait,
            "utilization": _r(cpu / (cores * pod_seconds), 6) if pod_seconds > 0 else None,
            "worker_utilization": _r(busy / (conc * pod_seconds), 6) if pod_seconds > 0 else None,
            "replicas": {"min": rmin, "max": rmax, "mean": _r(rmean, 6)},
        }
    out["services"] = services
    endpoints: dict[str, Any] = {}
    for k, (svc_name, ep_name) in enumerate(prog.endpoints):
        endpoints[f"{svc_name}.{ep_name}"] = {
            "requests": _n(st.ep_n[k]),
            "ok": _n(st.ep_ok[k]),
            "errors": _errors(st.ep_err[k]),
            "latency_s": latency_block(st.ep_hist[k], float(st.ep_lsum[k]), float(st.ep_ok[k])),
        }
    out["endpoints"] = endpoints
    out["slos"] = _slos(x)
    area, arrived = x.plane.little
    span = t1 - t0
    finished = float(st.cls_n.sum())
    mean_w = float(st.cls_asum.sum()) / finished if finished else None
    lam = arrived / span if span > 0 else 0.0
    mean_l = area / span if span > 0 else 0.0
    out["littles_law"] = {
        "arrival_rate": _r(lam, 9),
        "mean_in_system": _r(mean_l, 9),
        "mean_response_s": _r(mean_w, 9),
        "relative_error": _r(abs(mean_l - lam * mean_w) / mean_l, 9)
        if mean_w is not None and mean_l > 0
        else None,
        "in_flight_at_end": x.plane.in_system,
    }
    out["not_simulated"] = [f"{u.path}: {u.what}" for u in x.unsupported]
    return out


def _slos(x: SummaryInputs) -> list[dict[str, Any]]:
    sc, st, prog = x.scenario, x.plane.stats, x.program
    out = []
    lat_k = 0
    for slo in sc.slos:
        users = prog.user_classes if prog.user_classes >= 0 else len(prog.classes)  # not consumer groups
        idx = [prog.classes.index(slo.class_)] if slo.class_ else list(range(users))
        total = _n(st.cls_n[idx].sum())
        if slo.latency is not None:
            rows = prog.slo_rows[lat_k] if lat_k < len(prog.slo_rows) else [lat_k]
            good = _n(st.slo_good[rows].sum())
            lat_k += 1
            kind = "latency"
        else:
            good = _n(st.cls_ok[idx].sum())
            kind = "availability"
        attained = min(1.0, good / total) if total else None
        budget = (1.0 - attained) / (1.0 - slo.objective) if attained is not None else None
        out.append(
            {
                "name": slo.name,
                "kind": kind,
                "class": slo.class_,
                "latency_s": slo.latency,
                "objective": slo.objective,
                "requests": total,
                "good": good,
                "attained": _r(attained, 9),
                "met": None if attained is None else bool(attained >= slo.objective),
                "budget_burned": _r(budget, 6),
            }
        )
    return out
