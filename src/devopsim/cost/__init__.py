"""Cost: a dated price table and what a run cost by cloud, service and node pool, idle included."""

from devopsim.cost.loop import CostLoop, pod_seconds
from devopsim.cost.prices import InstancePrice, PriceTable, price_table

__all__ = ["CostLoop", "InstancePrice", "PriceTable", "pod_seconds", "price_table"]
