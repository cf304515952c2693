"""Units as people write them: durations, rates, sizes, CPU and percentages.

Every parser accepts a plain number too (seconds, per second, bytes, cores, a
fraction) and raises :class:`ValueError` with a message that says what is
allowed; the scenario validator turns it into a file/line error.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "format_duration",
    "parse_cpu",
    "parse_duration",
    "parse_fraction",
    "parse_rate",
    "parse_size",
    "parse_size_rate",
]

_DURATION_UNITS = {
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|s|m|h|d|w)")
_NUMBER = re.compile(r"[+-]?(\d+(?:\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _finite(x: float, what: str) -> float:
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite (got {x!r})")
    return x


def parse_duration(value: object) -> float:
    """Parse a duration into seconds.

    Accepts ``30s``, ``5m``, ``1h30m``, ``250ms``, ``2d``, or a bare number of
    seconds. Negative durations are rejected.

    Raises:
        ValueError: the value is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 5m or 1h30m (got {value!r})")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative (got {value!r})")
        return _finite(float(value), "a duration")
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like 30s, 5m or 1h30m (got {value!r})")
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return parse_duration(float(text))
    if text.startswith("-"):
        raise ValueError(f"a duration cannot be negative (got {value!r})")
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(
            f"expected a duration like 30s, 5m, 1h30m or 250ms (got {value!r}); units: ms, s, m, h, d, w"
        )
    return total


def format_duration(seconds: float) -> str:
    """Format seconds the way people write them (``1h30m``, ``250ms``)."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    out = []
    rest = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            n = int(rest // size)
            out.append(f"{n}{unit}")
            rest -= n * size
    if rest > 1e-9 or not out:
        out.append(f"{rest:g}s")
    return "".join(out)


_RATE_UNITS = {"s": 1.0, "sec": 1.0, "m": 1 / 60.0, "min": 1 / 60.0, "h": 1 / 3600.0, "d": 1 / 86400.0}
_RATE = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*/\s*([a-z]+)")


def parse_rate(value: object) -> float:
    """Parse a rate into events per second: ``1200/s``, ``50/m``, ``3/h`` or a number.

    Raises:
        ValueError: the value is not a rate, or is negative.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a rate like 400/s or 50/m (got {value!r})")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str):
        text = value.strip()
        m = _RATE.fullmatch(text)
        if m and m.group(2) in _RATE_UNITS:
            rate = float(m.group(1)) * _RATE_UNITS[m.group(2)]
        elif _NUMBER.fullmatch(text):
            rate = float(text)
        else:
            raise ValueError(f"expected a rate like 400/s, 50/m or 3/h (got {value!r})")
    else:
        raise ValueError(f"expected a rate like 400/s or 50/m (got {value!r})")
    if rate < 0:
        raise ValueError(f"a rate cannot be negative (got {value!r})")
    return _finite(rate, "a rate")


_SIZE_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "B": 1,
}
_SIZE = re.compile(r"((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)")


def parse_size(value: object) -> float:
    """Parse a size into bytes, Kubernetes style: ``512Mi``, ``4Ki``, ``2Gi``, ``1G``.

    Raises:
        ValueError: the value is not a size.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 512Mi, 4Ki or 2Gi (got {value!r})")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a size cannot be negative (got {value!r})")
        return float(value)
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m and m.group(2) in _SIZE_UNITS:
            return float(m.group(1)) * _SIZE_UNITS[m.group(2)]
    raise ValueError(
        f"expected a size like 512Mi, 4Ki, 2Gi or 1G (got {value!r}); units: Ki, Mi, Gi, Ti, k, M, G, T"
    )


def parse_size_rate(value: object) -> float:
    """Parse a size per unit of time into bytes per second: ``10Mi/m``, ``1Gi/h``, ``512Ki/s``.

    A bare number is bytes per second.

    Raises:
        ValueError: the value is not a size rate.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_size(value)
    if isinstance(value, str) and "/" in value:
        size, _, unit = value.partition("/")
        unit = unit.strip()
        if unit in _RATE_UNITS:
            return parse_size(size.strip()) * _RATE_UNITS[unit]
    raise ValueError(f"expected a size per time like 10Mi/m, 1Gi/h or 512Ki/s (got {value!r})")


def parse_cpu(value: object) -> float:
    """Parse a CPU quantity into cores, Kubernetes style: ``500m``, ``"2"``, ``1.5``.

    Raises:
        ValueError: the value is not a CPU quantity or is not positive.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected CPU like 500m or 2 (got {value!r})")
    cores: float
    if isinstance(value, int | float):
        cores = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("m") and _NUMBER.fullmatch(text[:-1]):
            cores = float(text[:-1]) / 1000.0
        elif _NUMBER.fullmatch(text):
            cores = float(text)
        else:
            raise ValueError(f"expected CPU like 500m, 250m or 2 (got {value!r})")
    else:
        raise ValueError(f"expected CPU like 500m or 2 (got {value!r})")
    if cores <= 0:
        raise ValueError(f"CPU must be positive (got {value!r})")
    return _finite(cores, "CPU")


def parse_fraction(value: object) -> float:
    """Parse a percentage or fraction into a fraction in [0, 1]: ``99.9%`` or ``0.999``.

    Raises:
        ValueError: the value is not a percentage or lies outside [0, 1].
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage like 99.9% or a fraction like 0.999 (got {value!r})")
    if isinstance(value, int | float):
        frac = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("%") and _NUMBER.fullmatch(text[:-1].strip()):
            frac = float(text[:-1]) / 100.0
        elif _NUMBER.fullmatch(text):
            frac = float(text)
        else:
            raise ValueError(f"expected a percentage like 99.9% or a fraction like 0.999 (got {value!r})")
    else:
        raise ValueError(f"expected a percentage like 99.9% or a fraction like 0.999 (got {value!r})")
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"must lie between 0% and 100% (got {value!r})")
    return frac
