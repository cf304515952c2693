"""``devopsim query``: answer a PromQL expression from a stored run, as a table or as JSON.

The JSON mirrors Prometheus' HTTP API (``resultType`` and ``result`` with
``[time, "value"]`` pairs, values as strings so NaN and infinities survive).
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from devopsim.errors import ConfigError

__all__ = ["parse_time", "query_json", "render_query"]


def parse_time(text: str, what: str) -> float:
    """Simulated seconds from ``3600``, ``1.5`` or a Prometheus duration such as ``1h30m``."""
    try:
        return float(text)
    except ValueError:
        pass
    import promql_parser

    try:
        return float(promql_parser.parse_duration(text).total_seconds())
    except ValueError:
        raise ConfigError(
            f"{what}: {text!r} is not a time (seconds, or a duration like 90s or 1h30m)"
        ) from None


def parse_range(text: str) -> tuple[float, float, float]:
    """``START:END:STEP`` into seconds."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--range: {text!r} must be START:END:STEP, e.g. 0:1h:1m")
    start, end, step = (parse_time(p, "--range") for p in parts)
    if step <= 0 or end < start:
        raise ConfigError(f"--range: {text!r} needs START <= END and STEP > 0")
    return start, end, step


def _num(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def query_json(result: Any, t: float | None) -> dict[str, Any]:
    """Prometheus-API-shaped data for an instant (``t``) or range (``t`` None) result."""
    if isinstance(result, float):
        return {"resultType": "scalar", "result": [t, _num(result)]}
    if t is not None:
        return {
            "resultType": "vector",
            "result": [{"metric": s.labels, "value": [t, _num(s.value)]} for s in result],
        }
    return {
        "resultType": "matrix",
        "result": [
            {"metric": labels, "values": [[float(a), _num(float(b))] for a, b in zip(ts, vs, strict=True)]}
            for labels, ts, vs in result
        ],
    }


def _fmt_labels(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def render_query(result: Any, t: float | None, console: Console) -> None:
    """Print a result as a Rich table."""
    if isinstance(result, float):
        console.print(f"scalar at t={t:g} s: {_num(result)}")
        return
    if t is not None:
        table = Table(title=f"instant vector at t={t:g} s ({len(result)} series)")
        table.add_column("series", overflow="fold")
        table.add_column("value", justify="right")
        for s in sorted(result, key=lambda s: sorted(s.labels.items())):
            table.add_row(_fmt_labels(s.labels), f"{s.value:.6g}")
        console.print(table)
        return
    table = Table(title=f"range result ({len(result)} series)")
    table.add_column("series", overflow="fold")
    for col in ("points", "first", "last", "min", "max"):
        table.add_column(col, justify="right")
    for labels, ts, vs in result:
        finite = [v for v in vs.tolist() if not math.isnan(v)]
        table.add_row(
            _fmt_labels(labels),
            str(len(ts)),
            f"{vs[0]:.6g} @{ts[0]:g}s",
            f"{vs[-1]:.6g} @{ts[-1]:g}s",
            f"{min(finite):.6g}" if finite else "NaN",
            f"{max(finite):.6g}" if finite else "NaN",
        )
    console.print(table)


def dumps(data: dict[str, Any]) -> str:
    """JSON text of a query answer."""
    return json.dumps({"status": "success", "data": data}, indent=2) + "\n"
