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


class _Every:
    """A periodic action: only its next occurrence is on the heap.

    Occurrence ``k`` runs at ``k * period`` with sequence number ``seq0 + k``, the numbers
    reserved when it was scheduled: exactly the keys the occurrences would have had had they
    all been pushed at once, so ties break as they always did, while the heap stays as small
    as the number of loops instead of holding a day of scrapes.
    """

    __slots__ = ("action", "count", "k", "period", "seq0")

    def __init__(self, action: Callable[[float], None], period: float, count: int, seq0: int) -> None:
        self.action = action
        self.period = period
        self.count = count
        self.seq0 = seq0
        self.k = 0


class Clock:
    """Scheduled callbacks ordered by ``(time, priority, sequence)``."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, int, Callable[[float], None] | _Every]] = []
        self._seq = itertools.count()

    def schedule(self, at: float, action: Callable[[float], None], priority: int = 0) -> None:
        """Run ``action(at)`` at simulated time ``at`` (never before ``now``)."""
        if at < self.now:
            raise ValueError(f"cannot schedule in the past ({at} < {self.now})")
        heapq.heappush(self._heap, (at, priority, next(self._seq), action))

    def every(self, period: float, until: float, action: Callable[[float], None], priority: int = 0) -> None:
        """Run ``action`` at 0, ``period``, ``2 * period``, ... while before ``until``."""
        count = 0
        while count * period < until:
            count += 1
        if count == 0:
            return
        if self.now > 0.0:
            raise ValueError(f"cannot schedule in the past (0.0 < {self.now})")
        seq0 = next(self._seq)
        # Reserve the sequence numbers of the later occurrences (see _Every).
        self._seq = itertools.count(seq0 + count)
        heapq.heappush(self._heap, (0.0, priority, seq0, _Every(action, period, count, seq0)))

    def peek(self) -> float:
        """The time of the next scheduled action, or infinity."""
        return self._heap[0][0] if self._heap else float("inf")

    def run_due(self, t: float) -> None:
        """Advance to ``t`` and run every action due at or before it, including ones they schedule."""
        self.now = t
        heap = self._heap
        pop, push = heapq.heappop, heapq.heappush
        while heap and heap[0][0] <= t:
            at, priority, _, action = pop(heap)
            if isinstance(action, _Every):
                k = action.k = action.k + 1
                if k < action.count:
                    push(heap, (k * action.period, priority, action.seq0 + k, action))
                action.action(at)
            else:
                action(at)
