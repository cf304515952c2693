"""Per-service time integrals of replicas, shared by both data planes.

A service's CPU, busy-worker and occupancy integrals are those of its retired replicas plus
those of its live ones; a replica's integrals move into its service's retired totals when it
is released.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ServiceTotals", "retire", "service_total", "service_totals", "services_cpu"]


@dataclass
class ServiceTotals:
    """Time integrals of a service's replicas (core-seconds, worker-seconds, request-seconds)."""

    cpu: float = 0.0
    busy: float = 0.0
    occupancy: float = 0.0


def retire(total: ServiceTotals, cpu: float, busy: float, occupancy: float) -> None:
    """Add a released replica's integrals to its service's retired totals."""
    total.cpu += float(cpu)
    total.busy += float(busy)
    total.occupancy += float(occupancy)


def service_totals(
    retired: list[ServiceTotals],
    svc: np.ndarray,
    alive: np.ndarray,
    cpu: np.ndarray,
    busy: np.ndarray,
    occupancy: np.ndarray,
) -> list[ServiceTotals]:
    """Retired totals plus the integrals of every live replica, per service."""
    live = alive == 1
    n = len(retired)
    sv = svc[live]
    c, b, o = (np.bincount(sv, weights=a[live], minlength=n).tolist() for a in (cpu, busy, occupancy))
    return [
        ServiceTotals(cpu=r.cpu + c[s], busy=r.busy + b[s], occupancy=r.occupancy + o[s])
        for s, r in enumerate(retired)
    ]


def service_total(
    retired: list[ServiceTotals],
    service: int,
    svc: np.ndarray,
    alive: np.ndarray,
    cpu: np.ndarray,
    busy: np.ndarray,
    occupancy: np.ndarray,
) -> ServiceTotals:
    """One service's entry of :func:`service_totals`, to the bit, without the other services'.

    A caller that reads one service (the stateful loop, at every scrape) need not pay for three
    bincounts over every replica. ``np.bincount`` adds a service's weights one by one in slot
    order from 0.0; the live replicas' values are added here in the same order from 0.0 (a
    plain loop: ``sum`` may compensate, ``np.add.reduce`` sums pairwise). The slots are found
    with one comparison and their ``alive`` flags read one by one (a service has few slots;
    a whole-array mask and three gathers cost more than that).
    """
    c = b = o = 0.0
    for r in (svc == service).nonzero()[0].tolist():
        if alive.item(r) == 1:
            c += cpu.item(r)
            b += busy.item(r)
            o += occupancy.item(r)
    rt = retired[service]
    return ServiceTotals(rt.cpu + c, rt.busy + b, rt.occupancy + o)


def services_cpu(
    retired: list[ServiceTotals], services: list[int], svc: np.ndarray, alive: np.ndarray, cpu: np.ndarray
) -> float:
    """``sum([service_total(...).cpu for each of services])``, to the bit, in one call: each
    service's live CPU integrals added in slot order from 0.0 (as :func:`service_total` does),
    its retired total added to that, and the services' totals summed as ``sum`` does (from
    the integer 0). The stateful loop reads a database's CPU this way at every scrape."""
    total: float = 0
    for service in services:
        c = 0.0
        for r in (svc == service).nonzero()[0].tolist():
            if alive.item(r) == 1:
                c += cpu.item(r)
        total += retired[service].cpu + c
    return total
