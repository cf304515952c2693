"""The control-plane clock: a heap of timed callbacks in simulated seconds.

It orders what the platform and its controllers do (scrapes, pods becoming
ready, timeline entries); between two of its events the data plane runs on
its own. Ties run in the order they were scheduled, so runs are
deterministic. Nothing here reads the wall clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

__all__ = ["Clock"]


class Clock:
    """Scheduled callbacks ordered by ``(time, priority, sequence)``."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, int, Callable[[float], None]]] = []
        self._seq = itertools.count()

    def schedule(self, at: float, action: Callable[[float], None], priority: int = 0) -> None:
        """Run ``action(at)`` at simulated time ``at`` (never before ``now``)."""
        if at < self.now:
            raise ValueError(f"cannot schedule in the past ({at} < {self.now})")
        heapq.heappush(self._heap, (at, priority, next(self._seq), action))

    def every(self, period: float, until: float, action: Callable[[float], None], priority: int = 0) -> None:
        """Run ``action`` at 0, ``period``, ``2 * period``, ... while before ``until``."""
        k = 0
        while k * period < until:
            self.schedule(k * period, action, priority)
            k += 1

    def peek(self) -> float:
        """The time of the next scheduled action, or infinity."""
        return self._heap[0][0] if self._heap else float("inf")

    def run_due(self, t: float) -> None:
        """Advance to ``t`` and run every action due at or before it, including ones they schedule."""
        self.now = t
        while self._heap and self._heap[0][0] <= t:
            at, _, _, action = heapq.heappop(self._heap)
            action(at)
