"""Render a run, or two runs side by side, as one self-contained HTML page.

Charts are drawn by Apache ECharts, vendored as package data
(``vendor/echarts.common.min.js``, the library's own "common" build: line,
bar, markers, tooltips, legends, zoom; Apache-2.0, licence files beside it)
and inlined once per page. Why ECharts: it draws every chart a report needs
(time series with event markers and shaded spans, stacked areas, step lines,
log axes, linked cursors and zoom across charts) from plain JSON options, at
about 0.7 MB (0.24 MB gzipped). Plotly's bundle is over 3.5 MB per page;
uPlot is tiny but lacks stacked areas, markers and legends we would have to
hand-write. Nothing is fetched: no CDN, no fonts, no network; the page
opens from disk offline. Pages are Jinja2 templates (``templates/``).
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from devopsim.errors import TelemetryError
from devopsim.report.figures import Change, cost_of, diff_figures
from devopsim.report.panels import Palette, build_panels, markers
from devopsim.report.run import RunData
from devopsim.report.series import Grid

__all__ = ["render_comparison", "render_report", "write_html"]


@lru_cache(maxsize=1)
def _echarts() -> str:
    return (resources.files("devopsim.report") / "vendor" / "echarts.common.min.js").read_text("utf-8")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("devopsim.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["dur"] = _fmt_duration
    env.filters["num"] = _fmt_num
    env.filters["secs"] = _fmt_secs
    env.filters["pct"] = _fmt_pct
    env.filters["value"] = _fmt_value
    return env


def _fmt_duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = float(s)
    if s < 120:
        return f"{s:g} s"
    h, rem = divmod(round(s), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" + (f"{sec:02d}s" if sec else "") if h else f"{m}m{sec:02d}s"


def _fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or float(x).is_integer() or abs(x) >= 10**digits:
        return f"{round(x):,}"
    return f"{x:,.{digits}g}"


def _fmt_secs(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 1.0:
        return f"{x * 1000:.3g} ms"
    return f"{x:.3g} s"


def _fmt_pct(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{100 * x:.{digits}g} %"


def _fmt_value(x: float | None, unit: str, delta: bool = False) -> str:
    if unit == "%" and delta:
        return "-" if x is None else f"{100 * x:+.3g} pp"
    if unit == "s":
        return _fmt_secs(x)
    if unit == "%":
        return _fmt_pct(x, 5)
    if x is None:
        return "-"
    return f"{_fmt_num(x)} {unit}".strip()


def _json(data: Any) -> str:
    # Safe inside <script>: no "</script>", no HTML comment openers.
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _flag_flat(panels: list[dict[str, Any]]) -> None:
    """Mark panels whose every value is 0 (or missing): their axis gets a small fixed range."""
    for p in panels:
        p["flat"] = all(not v for s in p["series"] for v in s["y"])


def _times(grid: Grid) -> list[float]:
    return [round(float(t), 3) for t in grid.times]


def _view(run: RunData, palette: Palette) -> dict[str, Any]:
    """The run's tables, ready for the template."""
    s = run.summary
    services = s.get("services") or {}
    for name in services:
        palette.service(name)
    for name in s.get("classes") or {}:
        palette.cls(name)
    cost, cost_unit, cost_label = cost_of(s)
    brief = [
        ("scenario", s.get("scenario")),
        ("description", run.scenario_info.get("description")),
        ("simulated", _fmt_duration(s.get("duration_s"))),
        ("warm-up", _fmt_duration(s.get("warmup_s"))),
        ("data plane", s.get("plane")),
        ("seed", s.get("seed")),
        ("services", ", ".join(services)),
        ("request classes", ", ".join(s.get("classes") or {})),
        ("devopsim", s.get("devopsim_version")),
    ]
    return {
        "s": s,
        "label": run.label,
        "brief": [(k, v) for k, v in brief if v not in (None, "")],
        "cost": {"value": cost, "unit": cost_unit, "label": cost_label},
        "priced": isinstance(s.get("cost"), int | float | dict),
        "autoscalers": [
            {"service": name, **block}
            for name, block in (s.get("autoscalers") or {}).items()
            if isinstance(block, dict)
        ],
    }


def render_report(run: RunData, title: str | None = None) -> str:
    """The HTML report of one run (a complete, self-contained page)."""
    palette = Palette()
    view = _view(run, palette)
    grid = Grid(run.store)
    panels = build_panels(run, grid, palette)
    _flag_flat(panels)
    marks = markers(run)
    data: dict[str, Any] = {
        "mode": "report",
        "times": [_times(grid)],
        "duration": float(run.summary.get("duration_s") or (grid.times[-1] if grid.times.size else 0)),
        "warmup": [float(run.summary.get("warmup_s") or 0.0)],
        "panels": panels,
        "markers": [marks],
        "runs": [run.label or str(run.summary.get("scenario", ""))],
    }
    page = _env().get_template("report.html.j2")
    return str(
        page.render(
            title=title or f"devopsim report: {run.summary.get('scenario', '')}",
            run=view,
            palette=palette,
            panels=panels,
            markers=marks,
            echarts=_echarts(),
            data=_json(data),
        )
    )


def _merge(pa: list[dict[str, Any]], pb: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Overlay B's panels on A's (same id), B's lines dashed."""
    merged: dict[str, dict[str, Any]] = {}
    for p in pa:
        merged[p["id"]] = {**p, "series": [{**s, "name": f"A {s['name']}"} for s in p["series"]]}
    for p in pb:
        series = [{**s, "name": f"B {s['name']}", "dash": True} for s in p["series"]]
        if p["id"] in merged:
            merged[p["id"]]["series"] += series
        else:
            merged[p["id"]] = {**p, "series": series}
    out = list(merged.values())
    for p in out:
        p["stack"] = False  # stacked areas of two runs would add them up
    return out


def render_comparison(a: RunData, b: RunData, title: str | None = None) -> str:
    """Two runs side by side: overlaid time series and a table of key figures with differences."""
    palette = Palette()
    va, vb = _view(a, palette), _view(b, palette)
    ga, gb = Grid(a.store), Grid(b.store)
    panels = _merge(build_panels(a, ga, palette, 0), build_panels(b, gb, palette, 1))
    _flag_flat(panels)
    rows = diff_figures(a.summary, b.summary)
    ma, mb = markers(a), markers(b)
    data = {
        "mode": "compare",
        "times": [_times(ga), _times(gb)],
        "duration": max(float(a.summary.get("duration_s") or 0), float(b.summary.get("duration_s") or 0)),
        "warmup": [float(a.summary.get("warmup_s") or 0.0), float(b.summary.get("warmup_s") or 0.0)],
        "panels": panels,
        "markers": [ma, mb],
        "runs": [a.label or "A", b.label or "B"],
    }
    page = _env().get_template("compare.html.j2")
    return str(
        page.render(
            title=title or f"devopsim comparison: {a.label or 'A'} vs {b.label or 'B'}",
            a=va,
            b=vb,
            rows=rows,
            groups=_groups(rows),
            headline=_headline(rows),
            trade_off=_trade_off(rows),
            palette=palette,
            panels=panels,
            echarts=_echarts(),
            data=_json(data),
        )
    )


def _groups(rows: list[Change]) -> list[tuple[str, list[Change]]]:
    out: dict[str, list[Change]] = {}
    for r in rows:
        out.setdefault(r.group, []).append(r)
    return list(out.items())


def _trade_off(rows: list[Change]) -> str | None:
    """One sentence when cost and latency moved in opposite directions."""
    cost = next((r for r in rows if r.group == "Cost" and r.verdict), None)
    lat = [r for r in rows if r.group == "Request classes" and r.name.endswith(" p99") and r.verdict]
    if cost is None or cost.relative is None or not lat:
        return None
    cheaper = cost.verdict == "better"
    opposite = [r for r in lat if (r.verdict == "worse") == cheaper]
    if not opposite:
        return None
    what = "cost" if cost.name == "cost" else "replica-seconds"
    parts = ", ".join(
        f"{r.name.removesuffix(' p99')} {100 * r.relative:+.3g} %" for r in opposite if r.relative is not None
    )
    pct = f"{abs(100 * cost.relative):.3g} %"
    if cheaper:
        return f"Trade-off: B saves {pct} of {what} and pays for it in p99 latency ({parts})."
    return f"Trade-off: B spends {pct} more {what} and buys lower p99 latency with it ({parts})."


def _headline(rows: list[Change]) -> list[str]:
    """One line per change that matters, worst first."""
    lines = []
    for r in sorted(rows, key=lambda r: {"worse": 0, "better": 1, "changed": 2}.get(r.verdict, 3)):
        if not r.verdict:
            continue
        if r.group == "SLOs" and r.note:
            lines.append(f"SLO {r.name}: {r.note}")
            continue
        rel = r.relative
        how = f"{_fmt_value(r.a, r.unit)} → {_fmt_value(r.b, r.unit)}"
        if rel is not None:
            how += f" ({100 * rel:+.3g} %)"
        lines.append(f"{r.name}: {how}")
    return lines


def write_html(text: str, path: str | Path) -> Path:
    """Write a page atomically (a temporary file moved into place).

    Raises:
        TelemetryError: the file cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a page like any other file, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as exc:
        raise TelemetryError(f"cannot write {path}: {exc}") from None
    return path
