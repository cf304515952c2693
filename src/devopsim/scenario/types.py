"""Field types of the scenario schema: units, distributions and patterns.

Each is an ``Annotated`` pydantic type whose validator accepts what people
write (``30s``, ``400/s``, ``512Mi``, ``500m``, ``99.9%``, ``exp(2ms)``,
``diurnal(...)``) and stores plain numbers or frozen objects. Files named in
``empirical()`` and ``trace()`` resolve against the scenario's folder, passed
as the ``base_dir`` validation context.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo

from devopsim.scenario.dists import Distribution, Zipf, parse_distribution, parse_popularity
from devopsim.scenario.units import (
    parse_cpu,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
    parse_size_rate,
)
from devopsim.traffic.patterns import RatePattern, parse_pattern

__all__ = [
    "CPU",
    "Dist",
    "Duration",
    "Fraction",
    "IntOrPercent",
    "Name",
    "Pattern",
    "Popularity",
    "Rate",
    "Size",
    "SizeRate",
]


def _base_dir(info: ValidationInfo) -> Path | None:
    ctx = info.context or {}
    base = ctx.get("base_dir")
    return Path(base) if base is not None else None


def _dist(value: Any, info: ValidationInfo) -> Distribution:
    return parse_distribution(value, _base_dir(info))


def _pattern(value: Any, info: ValidationInfo) -> RatePattern:
    return parse_pattern(value, _base_dir(info))


_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(
            f"names are lower-case letters, digits and '-', starting and ending with a "
            f"letter or digit, at most 63 characters, as Kubernetes wants (got {value!r})"
        )
    return value


def _int_or_percent(value: Any) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"expected a count like 2 or a percentage like 25% (got {value!r})")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative (got {value})")
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?%", value.strip()):
        return value.strip()
    raise ValueError(f"expected a count like 2 or a percentage like 25% (got {value!r})")


def _str(x: object) -> str:
    return str(x)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; written ``30s``, ``5m``, ``1h30m``, ``250ms`` or a number of seconds."""
Rate = Annotated[float, BeforeValidator(parse_rate)]
"""Per second; written ``400/s``, ``50/m``."""
Size = Annotated[float, BeforeValidator(parse_size)]
"""Bytes; written ``512Mi``, ``4Ki``, ``2Gi``."""
SizeRate = Annotated[float, BeforeValidator(parse_size_rate)]
"""Bytes per second; written ``10Mi/m``, ``1Gi/h``."""
CPU = Annotated[float, BeforeValidator(parse_cpu)]
"""Cores; written ``500m``, ``"2"``."""
Fraction = Annotated[float, BeforeValidator(parse_fraction)]
"""A fraction in [0, 1]; written ``99.9%`` or ``0.999``."""
Dist = Annotated[Distribution, BeforeValidator(_dist), PlainSerializer(_str)]
"""A distribution of seconds, e.g. ``lognormal(mean=8ms, cv=0.7)``."""
Pattern = Annotated[RatePattern, BeforeValidator(_pattern), PlainSerializer(_str)]
"""A rate pattern, e.g. ``diurnal(min=200/s, max=1200/s, peak=20:00)``."""
Popularity = Annotated[Zipf, BeforeValidator(parse_popularity), PlainSerializer(_str)]
"""Key popularity, e.g. ``zipf(0.9)``."""
Name = Annotated[str, BeforeValidator(_name)]
"""A DNS-label name (services, endpoints, datastores)."""
IntOrPercent = Annotated[int | str, BeforeValidator(_int_or_percent)]
"""An absolute count or a percentage string, as Kubernetes' IntOrString."""
