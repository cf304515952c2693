"""A compact terminal view of a run summary (Rich tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

__all__ = ["render_summary"]


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 1.0:
        return f"{x * 1000:.3g} ms"
    return f"{x:.3g} s"


def _pct(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{100 * x:.{digits}g}%"


def _err_share(block: dict[str, Any]) -> tuple[int, float | None]:
    errors = sum(block["errors"].values())
    n = block["requests"]
    return errors, (errors / n if n else None)


def _causes(errors: dict[str, int]) -> str:
    parts = [f"{k} {v}" for k, v in errors.items() if v]
    return ", ".join(parts) if parts else ""


def _deployments(deps: list[dict[str, Any]]) -> Table:
    """Each rollout: what changed, how it ended, what the new version served and how long an abort took."""
    t = Table(title="Deployments", title_justify="left")
    left = ("service", "change", "strategy", "outcome")
    for col in (*left, "new version served", "aborted after", "done after"):
        t.add_column(col, justify="left" if col in left else "right")
    for d in deps:
        n, e = d.get("requests_new_version") or 0, d.get("errors_new_version") or 0
        aborted = d.get("aborted_s")
        start, end = d["started_s"], d.get("finished_s")
        outcome = d["outcome"] + (f" ({d['abort_reason']})" if d.get("abort_reason") else "")
        to = d["to_version"]
        change = f"{d['from_version']} -> {to}" if d["kind"] == "deploy" else f"rollback to {to}"
        t.add_row(
            d["service"],
            change,
            d["strategy"],
            Text(outcome, style="bold red" if aborted is not None else ""),
            f"{n:,.0f} requests, {e:,.0f} errors",
            "-" if aborted is None else f"{aborted - start:g} s",
            "-" if end is None else f"{end - start:g} s",
        )
    return t


def render_summary(summary: dict[str, Any], console: Console) -> None:
    """Print the summary as tables: classes, services, SLOs, deployments."""
    head = Text.assemble(
        ("devopsim ", "bold"),
        (summary["scenario"], "bold cyan"),
        f"  seed {summary['seed']}  plane {summary['plane']}  "
        f"{summary['duration_s']:g} s simulated (warm-up {summary['warmup_s']:g} s)",
    )
    classes = Table(title="What users saw, by request class", title_justify="left", expand=False)
    for col in ("class", "requests", "errors", "p50", "p90", "p99", "p99.9", "mean", "error causes"):
        classes.add_column(col, justify="left" if col in ("class", "error causes") else "right")
    for name, c in summary["classes"].items():
        n_err, share = _err_share(c)
        lat = c["latency_s"]
        classes.add_row(
            name,
            f"{c['requests']:,}",
            f"{n_err:,} ({_pct(share)})",
            _ms(lat["p50"]),
            _ms(lat["p90"]),
            _ms(lat["p99"]),
            _ms(lat["p999"]),
            _ms(lat["mean"]),
            _causes(c["errors"]),
        )
    services = Table(title="Services", title_justify="left")
    for col in ("service", "requests", "errors", "p99", "wait p99", "CPU", "workers", "replicas"):
        services.add_column(col, justify="left" if col == "service" else "right")
    for name, s in summary["services"].items():
        r = s["replicas"]
        reps = (
            f"{r['min']:g}" if r["min"] == r["max"] else f"{r['min']:g}-{r['max']:g} (mean {r['mean']:.3g})"
        )
        services.add_row(
            name,
            f"{s['requests']:,}",
            f"{s['errors']:,}",
            _ms(s["latency_s"]["p99"]),
            _ms(s["wait_s"]["p99"]),
            _pct(s["utilization"]),
            _pct(s["worker_utilization"]),
            reps,
        )
    parts: list[Any] = [head, classes, services]
    if summary["slos"]:
        slos = Table(title="SLOs", title_justify="left")
        for col in ("slo", "objective", "attained", "met", "error budget burned"):
            slos.add_column(col, justify="left" if col == "slo" else "right")
        for s in summary["slos"]:
            met = s["met"]
            verdict = Text(
                "-" if met is None else ("yes" if met else "NO"),
                style="" if met is None else ("green" if met else "bold red"),
            )
            slos.add_row(
                s["name"], _pct(s["objective"], 4), _pct(s["attained"], 5), verdict, _pct(s["budget_burned"])
            )
        parts.append(slos)
    deps = summary.get("deployments") or []
    if deps:
        parts.append(_deployments(deps))
    ll = summary.get("littles_law", {})
    if ll.get("relative_error") is not None:
        parts.append(
            Text(
                f"Little's law: L = {ll['mean_in_system']:.4g}, λW = "
                f"{ll['arrival_rate'] * ll['mean_response_s']:.4g} "
                f"(relative difference {ll['relative_error']:.2e})",
                style="dim",
            )
        )
    console.print(Group(*parts))
