"""Terminal views of stored runs (Rich): the run list, one run, two runs side by side."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from devopsim.store.figures import comparable_figures
from devopsim.store.runstore import RunInfo, StoredRun

__all__ = ["compare_table", "render_run", "runs_table"]

STATUS_STYLE = {"completed": "green", "running": "cyan", "interrupted": "yellow", "failed": "red"}


def _when(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _wall(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    return f"{m}m{sec:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def _lat(x: Any) -> str:
    if not isinstance(x, int | float):
        return "-"
    return f"{x * 1000:.3g} ms" if x < 1 else f"{x:.3g} s"


def _avail(x: Any) -> str:
    if not isinstance(x, int | float):
        return "-"
    return f"{100 * x:.4g}%"


def _source(src: str) -> str:
    return src if src.startswith(("--", "<")) else Path(src).name


def runs_table(infos: list[RunInfo], title: str | None = None) -> Table:
    """The run list: id, name, scenario, seed, plane, status, started, duration, key figures."""
    t = Table(title=title, title_justify="left", header_style="bold")
    for col, just in (
        ("id", "left"),
        ("name", "left"),
        ("scenario", "left"),
        ("seed", "right"),
        ("plane", "left"),
        ("status", "left"),
        ("started", "left"),
        ("took", "right"),
        ("requests", "right"),
        ("availability", "right"),
        ("worst p99", "right"),
        ("SLOs met", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in infos:
        f = r.figures
        slos = f"{f.get('slos_met', 0)}/{f['slos']}" if f.get("slos") else "-"
        req = f.get("requests")
        t.add_row(
            Text(r.short_id, style="bold"),
            r.name,
            _source(r.source),
            str(r.seed),
            r.plane,
            Text(r.status, style=STATUS_STYLE.get(r.status, "")),
            _when(r.started_at),
            _wall(r.wall_s),
            f"{req:,}" if isinstance(req, int) and r.status == "completed" else "-",
            _avail(f.get("availability")),
            _lat(f.get("p99_s")),
            slos,
        )
    return t


def render_run(run: StoredRun, sizes: dict[str, int], console: Console) -> None:
    """One run: provenance and status, then its summary as ``devopsim run`` prints it."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("run", run.id)
    head.add_row("status", Text(run.status, style=STATUS_STYLE.get(run.status, "")))
    if run.error:
        head.add_row("error", Text(run.error, style="red"))
    head.add_row("scenario", f"{run.name} ({run.source})")
    head.add_row("scenario sha256", run.scenario_sha256[:16])
    if run.overrides:
        head.add_row("overrides", ", ".join(f"{k}={v}" for k, v in run.overrides.items()))
    head.add_row("seed, plane", f"{run.seed}, {run.plane}")
    head.add_row("devopsim", run.version)
    head.add_row("started", f"{_when(run.started_at)}  on {run.host} (pid {run.pid})")
    head.add_row("took", _wall(run.wall_s))
    if run.n_samples is not None:
        size = sum(sizes.values())
        head.add_row(
            "stored",
            f"{run.n_samples:,} samples, {run.n_events or 0:,} events, {size / 1e6:.2f} MB",
        )
    if run.alerts is not None:
        head.add_row("alerts", str(len(run.alerts)))
    console.print(head)
    if run.summary is not None:
        from devopsim.results.render import render_summary

        console.print()
        render_summary(run.summary, console)


def _fmt(name: str, x: float | None) -> str:
    if x is None:
        return "-"
    if "availability" in name or "attained" in name or "ratio" in name or "utilization" in name:
        return f"{100 * x:.4g}%"
    if "(s)" in name:
        return _lat(x)
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.4g}"


def _delta(name: str, a: float | None, b: float | None) -> Text:
    if a is None or b is None:
        return Text("-")
    d = b - a
    if d == 0:
        return Text("=", style="dim")
    if "availability" in name or "attained" in name or "ratio" in name or "utilization" in name:
        text = f"{100 * d:+.3g} pp"
    elif "(s)" in name:
        text = ("+" if d > 0 else "-") + _lat(abs(d))
    else:
        text = f"{d:+,.4g}"
    if a != 0 and math.isfinite(a):
        text += f" ({100 * d / abs(a):+.3g}%)"
    return Text(text)


def compare_table(a: StoredRun, b: StoredRun) -> Group:
    """The headline figures of two runs side by side, with B - A (absolute and relative)."""
    fa = comparable_figures(a.summary or {})
    fb = comparable_figures(b.summary or {})
    names = list(fa) + [n for n in fb if n not in fa]
    t = Table(header_style="bold")
    t.add_column("figure")
    t.add_column(f"A {a.short_id}", justify="right")
    t.add_column(f"B {b.short_id}", justify="right")
    t.add_column("B - A", justify="right")
    for n in names:
        t.add_row(n, _fmt(n, fa.get(n)), _fmt(n, fb.get(n)), _delta(n, fa.get(n), fb.get(n)))
    lines = [
        Text.assemble(
            ("A ", "bold"), f"{a.short_id}  {a.name}  seed {a.seed}  {a.plane}  {_when(a.started_at)}"
        ),
        Text.assemble(
            ("B ", "bold"), f"{b.short_id}  {b.name}  seed {b.seed}  {b.plane}  {_when(b.started_at)}"
        ),
    ]
    if a.scenario_sha256 != b.scenario_sha256:
        lines.append(Text("the scenarios differ (different sha256)", style="yellow"))
    return Group(*lines, t)
