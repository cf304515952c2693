"""The dated price table: on-demand instance-hours and egress per GB of the four clouds.

The table ships as package data (``cost/data/prices.yaml``) with the date it was
last checked and its sources; :func:`price_table` loads it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["InstancePrice", "PriceTable", "price_table"]


@dataclass(frozen=True)
class InstancePrice:
    """What one instance of a type costs in one region, and what it holds."""

    cloud: str
    region: str
    instance_type: str
    hourly: float
    vcpu: float
    memory_gib: float
    exact_region: bool  # False: the cloud's default region price stood in


@dataclass(frozen=True)
class PriceTable:
    """Prices by cloud; see ``cost/data/prices.yaml`` for the sources."""

    date: str
    currency: str
    clouds: dict[str, Any]
    sources: tuple[dict[str, Any], ...] = ()  # what a check against published prices found

    def instance(self, cloud: str, region: str, instance_type: str) -> InstancePrice | None:
        """The price of ``instance_type`` in ``cloud``/``region``; ``None`` when the table lacks it."""
        c = self.clouds.get(cloud)
        if c is None:
            return None
        row = c["instances"].get(instance_type)
        if row is None:
            return None
        hourly = row["hourly"]
        exact = region in hourly
        price = hourly.get(region, hourly.get(c["default"]))
        if price is None:
            price = next(iter(hourly.values()))
        return InstancePrice(
            cloud, region, instance_type, float(price), float(row["vcpu"]), float(row["memory_gib"]), exact
        )

    def egress_per_gb(self, cloud: str) -> float | None:
        """Internet egress, per GB, of ``cloud`` (the first pricing tier)."""
        c = self.clouds.get(cloud)
        return None if c is None else float(c["egress_per_gb"])

    def instance_types(self, cloud: str) -> list[str]:
        """The instance types the table prices for ``cloud``."""
        c = self.clouds.get(cloud)
        return sorted(c["instances"]) if c is not None else []


@cache
def price_table() -> PriceTable:
    """The packaged price table."""
    text = resources.files("devopsim.cost").joinpath("data/prices.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return PriceTable(
        str(data["date"]),
        str(data["currency"]),
        dict(data["clouds"]),
        tuple(dict(x) for x in data.get("sources") or ()),
    )
