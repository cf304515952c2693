"""Geography: where regions and clients are, and the round-trip time between them.

The latency model is the one network engineers use for a first estimate:
light in fibre travels at about two thirds of ``c`` (refractive index ~1.5),
real routes are longer than the great circle (a route factor), and switching
adds a few milliseconds::

    rtt = 2 * great_circle_km * ROUTE_FACTOR / FIBRE_KM_PER_S + RTT_BASE_S

``tests/cloud/test_geo.py`` checks it against published inter-region round
trips (AWS regions, cloudping measurements): median error about 15 %, the worst
pairs (routes that detour, e.g. Singapore-Sydney) within 50 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = [
    "FIBRE_KM_PER_S",
    "ROUTE_FACTOR",
    "RTT_BASE_S",
    "Location",
    "client_location",
    "great_circle_km",
    "region_location",
    "rtt_s",
]

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
FIBRE_KM_PER_S = 299_792.458 * 2.0 / 3.0  # light in glass fibre
ROUTE_FACTOR = 1.5  # real fibre paths over the great circle
RTT_BASE_S = 0.003  # switching, serialisation, the last hops


@dataclass(frozen=True)
class Location:
    """A named point on the globe (degrees)."""

    name: str
    city: str
    lat: float
    lon: float


@cache
def _table() -> dict[str, Any]:
    text = resources.files("devopsim.cloud").joinpath("data/regions.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def known_regions() -> dict[str, list[str]]:
    """Every cloud region the table knows, by cloud."""
    return {cloud: sorted(regs) for cloud, regs in _table()["regions"].items()}


def known_clients() -> list[str]:
    """The client region names the table knows."""
    return sorted(_table()["clients"])


def region_location(cloud: str, region: str) -> Location | None:
    """Where ``cloud``'s ``region`` is; ``None`` when the table does not know it."""
    row = _table()["regions"].get(cloud, {}).get(region)
    if row is None:
        return None
    return Location(f"{cloud}/{region}", str(row["city"]), float(row["lat"]), float(row["lon"]))


def client_location(name: str) -> Location | None:
    """A client region by name: a named area (``europe``) or a cloud region (``us-east-1``)."""
    row = _table()["clients"].get(name)
    if row is not None:
        return Location(name, str(row["city"]), float(row["lat"]), float(row["lon"]))
    cloud, _, region = name.partition("/")
    if region:
        return region_location(cloud, region)
    for c, regs in _table()["regions"].items():
        if name in regs:
            return region_location(c, name)
    return None


def great_circle_km(a: Location, b: Location) -> float:
    """Great-circle distance (haversine), kilometres."""
    la1, lo1, la2, lo2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def rtt_s(a: Location, b: Location) -> float:
    """Modelled round-trip time between two points, seconds."""
    return 2.0 * great_circle_km(a, b) * ROUTE_FACTOR / FIBRE_KM_PER_S + RTT_BASE_S
