"""The control clock: periodic actions keep only their next occurrence on the heap, and every
action runs in the order an eager heap of all occurrences would give."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

import pytest

from devopsim.engine.clock import Clock


class EagerClock:
    """The reference: every occurrence of a periodic action pushed at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, int, Callable[[float], None]]] = []
        self._seq = itertools.count()

    def schedule(self, at: float, action: Callable[[float], None], priority: int = 0) -> None:
        heapq.heappush(self._heap, (at, priority, next(self._seq), action))

    def every(self, period: float, until: float, action: Callable[[float], None], priority: int = 0) -> None:
        k = 0
        while k * period < until:
            self.schedule(k * period, action, priority)
            k += 1

    def peek(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    def run_due(self, t: float) -> None:
        self.now = t
        while self._heap and self._heap[0][0] <= t:
            at, _, _, action = heapq.heappop(self._heap)
            action(at)


def _drive(clock: Clock | EagerClock, end: float) -> list[tuple[str, float]]:
    """Periodic series with equal periods and priorities, one-offs tied with them, and actions
    that schedule others at their own time and later."""
    seen: list[tuple[str, float]] = []

    def rec(name: str) -> Callable[[float], None]:
        return lambda t: seen.append((name, t))

    def spawner(t: float) -> None:
        seen.append(("spawner", t))
        clock.schedule(t, rec("child-now"), priority=10)  # same time and priority as the scrapes
        clock.schedule(t + 15.0, rec("child-later"), priority=10)

    clock.schedule(30.0, rec("one-off-before"), priority=10)  # scheduled before the series
    clock.every(15.0, end, rec("scrape"), priority=10)
    clock.every(15.0, end, rec("record"), priority=10)
    clock.every(5.0, end, rec("probe"), priority=0)
    clock.every(0.1, 1.0, rec("tenth"), priority=0)  # float steps: 10 occurrences, not 11
    clock.every(7.0, end, spawner, priority=10)
    clock.schedule(45.0, rec("one-off-after"), priority=10)  # scheduled after them
    t = 0.0
    while True:
        t = min(clock.peek(), end)
        clock.run_due(t)
        if t >= end:
            break
    return seen


def test_lazy_periodic_actions_run_in_the_eager_order() -> None:
    lazy, eager = _drive(Clock(), 120.0), _drive(EagerClock(), 120.0)
    assert lazy == eager
    assert sum(1 for name, _ in lazy if name == "tenth") == 10
    names_at_30 = [name for name, t in lazy if t == 30.0]
    assert names_at_30.index("one-off-before") < names_at_30.index("scrape") < names_at_30.index("record")


def test_the_heap_holds_one_entry_per_periodic_action() -> None:
    clock = Clock()
    clock.every(15.0, 86_400.0, lambda t: None, priority=10)
    clock.every(5.0, 86_400.0, lambda t: None)
    assert len(clock._heap) == 2
    clock.run_due(3_600.0)
    assert len(clock._heap) == 2
    assert clock.peek() == 3_605.0


def test_every_is_not_scheduled_in_the_past() -> None:
    clock = Clock()
    clock.run_due(10.0)
    with pytest.raises(ValueError, match="past"):
        clock.every(5.0, 100.0, lambda t: None)
    clock.every(5.0, 0.0, lambda t: None)  # no occurrence at all: nothing to refuse
