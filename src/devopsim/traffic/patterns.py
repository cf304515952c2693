"""Arrival-rate patterns: how many requests per second arrive, over time.

Written in scenarios as a constant ``400/s``; ``diurnal(min=200/s,
max=1200/s, peak=20:00)``; ``step(100/s, 30m: 200/s, 1h: 50/s)``;
``spike(base=200/s, peak=2000/s, at=12h, for=10m)``; ``ramp(100/s, 1000/s,
over=2h)``; ``trace(FILE.csv, scale=2)``.

A pattern's times count from the moment it takes effect (the start of the run,
or the timeline entry that installs it); ``diurnal`` follows the wall clock,
for which it is given the time of day at that moment.
"""

from __future__ import annotations

import csv
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devopsim.scenario.calls import bind_args, parse_call
from devopsim.scenario.units import parse_duration, parse_rate

__all__ = [
    "ConstantRate",
    "Diurnal",
    "Ramp",
    "RatePattern",
    "Spike",
    "Step",
    "Trace",
    "parse_pattern",
]

DAY = 86400.0


class RatePattern(ABC):
    """A rate in requests per second as a function of time since it took effect."""

    def continuous(self) -> bool:
        """Whether the rate never jumps (its limit from the left is its value everywhere)."""
        return False

    @abstractmethod
    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        """Rate at times ``t`` (seconds since the pattern took effect).

        Args:
            t: times, seconds.
            clock0: the time of day (seconds after midnight UTC) at ``t = 0``.
            left: take the limit from the left at a jump (the rate just before ``t``).
        """

    def breakpoints(self, t0: float, t1: float) -> np.ndarray:
        """Times in ``(t0, t1)`` where the rate jumps or changes slope."""
        return np.empty(0)

    def integral(self, a: float, b: float, clock0: float = 0.0) -> float | None:
        """``∫ rate`` over ``[a, b)`` in closed form, or None where the pattern has none.

        The flow plane integrates the rate over every piece of time it simulates; a
        closed form in scalar arithmetic costs a fraction of evaluating the rate on arrays.
        """
        return None

    def drift(self, t: float, span: float, clock0: float = 0.0) -> float | None:
        """An upper bound on ``|rate(s) - rate(t)|`` for ``s`` in ``[t, t + span]``, or None where
        the pattern gives none (the flow plane then simulates every piece as it comes)."""
        return None

    def steady_for(self, t: float, band: float, clock0: float = 0.0) -> float | None:
        """The longest span from ``t`` over which the rate provably moves by at most ``band``
        between any two times (its highest minus its lowest there), or None where the
        pattern gives no bound. Any two averages of the rate over parts of that span then
        differ by at most ``band`` as well."""
        return None

    @abstractmethod
    def peak(self) -> float:
        """The highest rate the pattern reaches (requests per second)."""

    def scaled(self, factor: float) -> RatePattern:
        """This pattern with every rate multiplied by ``factor``."""
        return _Scaled(self, factor)


@dataclass(frozen=True)
class _Scaled(RatePattern):
    inner: RatePattern
    factor: float

    def continuous(self) -> bool:
        return self.inner.continuous()

    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        return self.inner.rate(t, clock0, left) * self.factor

    def breakpoints(self, t0: float, t1: float) -> np.ndarray:
        return self.inner.breakpoints(t0, t1)

    def integral(self, a: float, b: float, clock0: float = 0.0) -> float | None:
        inner = self.inner.integral(a, b, clock0)
        return None if inner is None else inner * self.factor

    def drift(self, t: float, span: float, clock0: float = 0.0) -> float | None:
        inner = self.inner.drift(t, span, clock0)
        return None if inner is None else inner * abs(self.factor)

    def steady_for(self, t: float, band: float, clock0: float = 0.0) -> float | None:
        if self.factor == 0:
            return math.inf
        return self.inner.steady_for(t, band / abs(self.factor), clock0)

    def peak(self) -> float:
        return self.inner.peak() * self.factor

    def scaled(self, factor: float) -> RatePattern:
        return _Scaled(self.inner, self.factor * factor)

    def __str__(self) -> str:
        return f"{self.factor:g} x {self.inner}"


@dataclass(frozen=True)
class ConstantRate(RatePattern):
    """The same rate at all times."""

    value: float

    def continuous(self) -> bool:
        return True

    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        return np.full(np.shape(t), self.value)

    def integral(self, a: float, b: float, clock0: float = 0.0) -> float | None:
        return self.value * (b - a)

    def drift(self, t: float, span: float, clock0: float = 0.0) -> float | None:
        return 0.0

    def steady_for(self, t: float, band: float, clock0: float = 0.0) -> float | None:
        return math.inf if band >= 0 else 0.0

    def peak(self) -> float:
        return self.value

    def scaled(self, factor: float) -> RatePattern:
        return ConstantRate(self.value * factor)

    def __str__(self) -> str:
        return f"{self.value:g}/s"


@dataclass(frozen=True)
class Diurnal(RatePattern):
    """A daily cosine between ``low`` and ``high``, highest at ``peak_at`` (seconds after midnight UTC)."""

    low: float
    high: float
    peak_at: float

    def continuous(self) -> bool:
        return True

    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        phase = 2.0 * math.pi * (np.asarray(t, dtype=np.float64) + clock0 - self.peak_at) / DAY
        return self.low + (self.high - self.low) * 0.5 * (1.0 + np.cos(phase))

    def integral(self, a: float, b: float, clock0: float = 0.0) -> float | None:
        # (low + high)/2 (b - a) + (high - low)/2 · D/2π · (sin φb - sin φa), the difference
        # of sines written as 2 cos(mid) sin(half-width) so short pieces lose no digits.
        w = 2.0 * math.pi / DAY
        mid = w * (0.5 * (a + b) + clock0 - self.peak_at)
        wave = 2.0 * math.cos(mid) * math.sin(0.5 * w * (b - a)) / w
        return 0.5 * (self.low + self.high) * (b - a) + 0.5 * (self.high - self.low) * wave

    def drift(self, t: float, span: float, clock0: float = 0.0) -> float | None:
        # Taylor: |rate'(t)| span + max|rate''| span² / 2, with rate' = -A w sin φ, |rate''| <= A w².
        w = 2.0 * math.pi / DAY
        amp = 0.5 * abs(self.high - self.low)
        slope = amp * w * abs(math.sin(w * (t + clock0 - self.peak_at)))
        return slope * span + 0.5 * amp * w * w * span * span

    def steady_for(self, t: float, band: float, clock0: float = 0.0) -> float | None:
        # Taylor around t: two times in [t, t + s] differ by at most |rate'(t)| s + max|rate''| s²
        # (each remainder is at most max|rate''| s² / 2); the root of b s² + a s = band, written
        # to lose no digits.
        if band <= 0:
            return 0.0
        w = 2.0 * math.pi / DAY
        amp = 0.5 * abs(self.high - self.low)
        a = amp * w * abs(math.sin(w * (t + clock0 - self.peak_at)))
        b = amp * w * w
        if a == 0.0 and b == 0.0:
            return math.inf
        return 2.0 * band / (a + math.sqrt(a * a + 4.0 * b * band))

    def peak(self) -> float:
        return self.high

    def scaled(self, factor: float) -> RatePattern:
        return Diurnal(self.low * factor, self.high * factor, self.peak_at)

    def __str__(self) -> str:
        h, m = divmod(round(self.peak_at) // 60, 60)
        return f"diurnal(min={self.low:g}/s, max={self.high:g}/s, peak={h:02d}:{m:02d})"


@dataclass(frozen=True)
class Step(RatePattern):
    """Piecewise constant: ``initial`` until the first change, then each ``(time, rate)``."""

    initial: float
    changes: tuple[tuple[float, float], ...]

    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        times = np.array([c[0] for c in self.changes])
        values = np.array([self.initial, *(c[1] for c in self.changes)])
        idx = np.searchsorted(times, t, side="left" if left else "right")
        return values[idx]

    def breakpoints(self, t0: float, t1: float) -> np.ndarray:
        return np.array([c[0] for c in self.changes if t0 < c[0] < t1])

    def peak(self) -> float:
        return max([self.initial, *(c[1] for c in self.changes)])

    def scaled(self, factor: float) -> RatePattern:
        return Step(self.initial * factor, tuple((a, r * factor) for a, r in self.changes))

    def __str__(self) -> str:
        parts = [f"{self.initial:g}/s", *(f"{a:g}s: {r:g}/s" for a, r in self.changes)]
        return f"step({', '.join(parts)})"


@dataclass(frozen=True)
class Spike(RatePattern):
    """``base``, except ``peak_rate`` during ``[at, at + length)``."""

    base: float
    peak_rate: float
    at: float
    length: float

    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        end = self.at + self.length
        inside = (t > self.at) & (t <= end) if left else (t >= self.at) & (t < end)
        return np.where(inside, self.peak_rate, self.base)

    def breakpoints(self, t0: float, t1: float) -> np.ndarray:
        return np.array([x for x in (self.at, self.at + self.length) if t0 < x < t1])

    def peak(self) -> float:
        return max(self.base, self.peak_rate)

    def scaled(self, factor: float) -> RatePattern:
        return Spike(self.base * factor, self.peak_rate * factor, self.at, self.length)

    def __str__(self) -> str:
        return (
            f"spike(base={self.base:g}/s, peak={self.peak_rate:g}/s, at={self.at:g}s, for={self.length:g}s)"
        )


@dataclass(frozen=True)
class Ramp(RatePattern):
    """Linear from ``start`` to ``end`` over ``over`` seconds, then ``end``."""

    start: float
    end: float
    over: float

    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if self.over <= 0:
            return np.full(t.shape, self.end)
        frac = np.clip(t / self.over, 0.0, 1.0)
        return self.start + (self.end - self.start) * frac

    def breakpoints(self, t0: float, t1: float) -> np.ndarray:
        return np.array([self.over]) if t0 < self.over < t1 else np.empty(0)

    def peak(self) -> float:
        return max(self.start, self.end)

    def scaled(self, factor: float) -> RatePattern:
        return Ramp(self.start * factor, self.end * factor, self.over)

    def __str__(self) -> str:
        return f"ramp({self.start:g}/s, {self.end:g}/s, over={self.over:g}s)"


@dataclass(frozen=True)
class Trace(RatePattern):
    """A recorded rate: ``times`` (s) and ``rates`` (/s), linearly interpolated.

    Before the first point the first rate holds; after the last, the last rate
    holds, unless ``loop`` repeats the trace.
    """

    times: tuple[float, ...]
    rates: tuple[float, ...]
    source: str = ""
    loop: bool = False

    def _wrap(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if self.loop and len(self.times) > 1:
            t0, period = self.times[0], self.times[-1] - self.times[0]
            return t0 + np.mod(t - t0, period)
        return t

    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        return np.asarray(np.interp(self._wrap(t), self.times, self.rates), dtype=np.float64)

    def breakpoints(self, t0: float, t1: float) -> np.ndarray:
        times = np.asarray(self.times)
        if self.loop and len(times) > 1:
            period = times[-1] - times[0]
            k0 = math.floor((t0 - times[0]) / period)
            k1 = math.floor((t1 - times[0]) / period)
            if k1 - k0 > 2:  # many periods: the caller's grid is fine enough anyway
                return np.empty(0)
            allp = np.concatenate([times + k * period for k in range(k0, k1 + 1)])
        else:
            allp = times
        return allp[(allp > t0) & (allp < t1)]

    def peak(self) -> float:
        return max(self.rates)

    def scaled(self, factor: float) -> RatePattern:
        return Trace(self.times, tuple(r * factor for r in self.rates), self.source, self.loop)

    def __str__(self) -> str:
        return f"trace({self.source})"


def _time_of_day(text: str) -> float:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text.strip())
    if not m:
        raise ValueError(f"expected a time of day like 20:00 (got {text!r})")
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 24 or mi > 59 or s > 59:
        raise ValueError(f"not a time of day: {text!r}")
    return float(h * 3600 + mi * 60 + s) % DAY


def load_trace(path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Read a two-column CSV (time in seconds, rate per second); a header row is skipped.

    Raises:
        ValueError: the file is missing or malformed.
    """
    if not path.is_file():
        raise ValueError(f"trace file not found: {path}")
    times: list[float] = []
    rates: list[float] = []
    with path.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{lineno}: expected two columns: time (s), rate (/s)")
            try:
                t, r = float(row[0]), float(row[1])
            except ValueError:
                if not times and lineno == 1:
                    continue  # header
                raise ValueError(f"{path}:{lineno}: not numbers: {row[:2]!r}") from None
            if r < 0 or not (math.isfinite(t) and math.isfinite(r)):
                raise ValueError(f"{path}:{lineno}: rates must be finite and non-negative")
            if times and t <= times[-1]:
                raise ValueError(f"{path}:{lineno}: times must increase (got {t:g} after {times[-1]:g})")
            times.append(t)
            rates.append(r)
    if not times:
        raise ValueError(f"{path}: no data rows")
    return tuple(times), tuple(rates)


_KINDS = (
    "400/s, diurnal(min=, max=, peak=HH:MM), step(R, T: R, ...), "
    "spike(base=, peak=, at=, for=), ramp(FROM, TO, over=), trace(FILE.csv, scale=)"
)


def parse_pattern(value: object, base_dir: Path | None = None) -> RatePattern:
    """Parse a rate pattern.

    Raises:
        ValueError: unknown pattern or bad arguments.
    """
    if isinstance(value, RatePattern):
        return value
    if not isinstance(value, str):
        return ConstantRate(parse_rate(value))
    call = parse_call(value)
    if call is None:
        try:
            return ConstantRate(parse_rate(value))
        except ValueError as exc:
            if "negative" in str(exc):
                raise
            raise ValueError(f"expected a rate pattern: {_KINDS} (got {value!r})") from None
    name, args, kw = call.name, call.args, call.kwargs
    if name == "diurnal":
        b = bind_args(name, args, kw, ["min", "max"], {"peak": "12:00"})
        low, high = parse_rate(b["min"]), parse_rate(b["max"])
        if high < low:
            raise ValueError(f"diurnal() needs min <= max (got {low:g}/s > {high:g}/s)")
        return Diurnal(low, high, _time_of_day(b["peak"]))
    if name == "step":
        if kw:
            raise ValueError("step() takes an initial rate then 'TIME: RATE' changes, no keywords")
        if not args:
            raise ValueError("step() needs an initial rate")
        initial = parse_rate(args[0])
        changes: list[tuple[float, float]] = []
        for part in args[1:]:
            if ":" not in part:
                raise ValueError(f"step() changes are written 'TIME: RATE' (got {part!r})")
            at_text, rate_text = part.split(":", 1)
            at = parse_duration(at_text.strip())
            if changes and at <= changes[-1][0]:
                raise ValueError(f"step() change times must increase (got {at_text.strip()!r})")
            changes.append((at, parse_rate(rate_text.strip())))
        return Step(initial, tuple(changes))
    if name == "spike":
        b = bind_args(name, args, kw, ["base", "peak", "at", "for"])
        return Spike(
            parse_rate(b["base"]), parse_rate(b["peak"]), parse_duration(b["at"]), parse_duration(b["for"])
        )
    if name == "ramp":
        b = bind_args(name, args, kw, ["start", "end", "over"])
        return Ramp(parse_rate(b["start"]), parse_rate(b["end"]), parse_duration(b["over"]))
    if name == "trace":
        b = bind_args(name, args, kw, ["file"], {"scale": "1", "loop": "false"})
        path = Path(b["file"].strip("'\""))
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            scale = float(b["scale"])
        except ValueError:
            raise ValueError(f"trace() scale must be a number (got {b['scale']!r})") from None
        if scale < 0:
            raise ValueError(f"trace() scale must be non-negative (got {scale:g})")
        loop = b["loop"].strip().lower()
        if loop not in ("true", "false"):
            raise ValueError(f"trace() loop must be true or false (got {b['loop']!r})")
        times, rates = load_trace(path)
        return Trace(times, tuple(r * scale for r in rates), b["file"], loop == "true")
    raise ValueError(f"unknown rate pattern {name!r}; allowed: {_KINDS}")
