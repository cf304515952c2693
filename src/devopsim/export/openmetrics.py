"""Write a run's samples as OpenMetrics text that ``promtool tsdb create-blocks-from openmetrics`` loads.

Families are typed from the metric names, as the exporters the twin imitates
type them: ``X_total`` is a counter (family ``X``); ``X_bucket`` (with ``le``),
``X_sum`` and ``X_count`` together are a histogram (family ``X``); everything
else is a gauge. Every sample carries a timestamp in seconds (millisecond
precision, as Prometheus stores it): simulated time ``t`` maps to
``start + t``, with ``start`` the Unix time of the run's origin
(:data:`DEFAULT_EPOCH`, 2026-01-01T00:00:00Z, unless given). Each series'
points are contiguous and in time order, families are not interleaved, and the
text ends with ``# EOF``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

import numpy as np

if TYPE_CHECKING:
    from devopsim.observe.store import MetricStore

__all__ = ["DEFAULT_EPOCH", "families", "parse_start", "run_start", "write_openmetrics"]

#: Unix time that simulated t=0 maps to by default: 2026-01-01T00:00:00Z.
DEFAULT_EPOCH = 1767225600


def run_start(start: datetime | None) -> str:
    """The run's origin (simulated t = 0) as ISO 8601 UTC: the scenario's ``start``, else
    :data:`DEFAULT_EPOCH`. The summary's ``start``; exports and alert timestamps use it."""
    dt = start if start is not None else datetime.fromtimestamp(DEFAULT_EPOCH, tz=UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"


def parse_start(text: str) -> float:
    """A start given as Unix seconds or an ISO 8601 time (``2026-01-05T00:00:00Z``)."""
    from devopsim.errors import ConfigError

    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--start: {text!r} is neither Unix seconds nor an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def families(names: list[str], has_le: set[str]) -> list[tuple[str, str, list[str]]]:
    """``(family, type, metric names)`` for every metric, in a stable order."""
    present = set(names)
    used: set[str] = set()
    out: list[tuple[str, str, list[str]]] = []
    for name in sorted(present):
        if name in used:
            continue
        if name.endswith("_bucket") and name in has_le:
            base = name[: -len("_bucket")]
            parts = [base + "_bucket", base + "_count", base + "_sum"]
            if all(p in present for p in parts) and base not in present:
                out.append((base, "histogram", parts))
                used.update(parts)
                continue
        if name.endswith("_total") and name[: -len("_total")] not in present:
            out.append((name[: -len("_total")], "counter", [name]))
            used.add(name)
            continue
        out.append((name, "gauge", [name]))
        used.add(name)
    out.sort(key=lambda f: f[0])
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _fmt_times(t: np.ndarray, start_ms: int) -> list[str]:
    ms = np.round(t * 1000.0).astype(np.int64) + start_ms
    sec, frac = np.divmod(ms, 1000)
    return [f"{s}.{f:03d}" if f else f"{s}" for s, f in zip(sec.tolist(), frac.tolist(), strict=True)]


def _lines(store: MetricStore, start: float) -> Iterator[str]:
    start_ms = round(start * 1000)
    has_le = set()
    for name in store.metric_names:
        sids = store.series_of(name)
        if sids and "le" in store.labels_of(sids[0]):
            has_le.add(name)
    for family, kind, metrics in families(list(store.metric_names), has_le):
        yield f"# TYPE {family} {kind}\n"
        series: list[tuple[str, int]] = []
        for metric in metrics:
            for sid in store.series_of(metric):
                labels = store.labels_of(sid)
                body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()) if str(v) != "")
                series.append((f"{metric}{{{body}}}" if body else metric, sid))
        series.sort()
        for prefix, sid in series:
            t, v = store.samples(sid)
            if t.size == 0:
                continue
            times = _fmt_times(np.asarray(t, dtype=np.float64), start_ms)
            values = [_fmt_value(x) for x in np.asarray(v, dtype=np.float64).tolist()]
            yield "".join(f"{prefix} {val} {ts}\n" for val, ts in zip(values, times, strict=True))
    yield "# EOF\n"


def write_openmetrics(store: MetricStore, out: TextIO, start: float = DEFAULT_EPOCH) -> int:
    """Write every sample of ``store`` to ``out``; simulated t=0 is Unix time ``start``. Returns lines."""
    n = 0
    for chunk in _lines(store, start):
        out.write(chunk)
        n += chunk.count("\n")
    return n
