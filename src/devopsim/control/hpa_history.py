"""An HPA's recommendation history read without scanning it at every sync.

kube-controller-manager keeps each HPA's recommendations in a slice of ``(time,
replicas)``. At every sync the stabilization reads it whole: the highest entry
within the downscale window (and, with ``behavior``, the lowest within the
scale-up window), and the last entry older than every window, which the new
recommendation overwrites (else it is appended). :class:`HPAController
<devopsim.control.hpa.HPAController>` keeps that very list; this module answers
the same questions from the entries in the order they were written, which is
their time order while the syncs' times do not go back:

* the entries older than a cutoff are the oldest ones: they leave the front of
  a queue as the cutoff passes them, and the ones older than every window (all
  of which the real controller may still overwrite) are kept apart;
* the extreme within a window is the front of a monotonic queue (each entry
  drops the newer-or-equal... older entries it dominates, as in a sliding-window
  maximum), so a sync costs a few steps instead of one per entry.

The answers are exact (the same integers and the same index as the scan) as long
as the list changes only through the controller, the times passed do not
decrease and the windows stay the same; the controller builds a new one when any
of that does not hold (see ``HPAController._history``).
"""

from __future__ import annotations

from collections import deque

__all__ = ["RecentRecommendations"]


class RecentRecommendations:
    """Sliding-window views of a controller's ``recommendations`` list.

    Args:
        recs: the controller's list of ``(time, replicas)``, each time at most ``now``.
        now: the time of the sync being made.
        key: what the windows are (kept to tell when they change).
        with_min: also keep the minimum of a second window (the ``behavior`` path's scale-up one).
    """

    __slots__ = ("_hi", "_lo", "_order", "_stale", "key", "now", "recs", "size", "with_min")

    def __init__(self, recs: list[tuple[float, int]], now: float, key: object, with_min: bool) -> None:
        self.recs, self.now, self.key, self.with_min = recs, now, key, with_min
        self.size = len(recs)
        self._order: deque[int] = deque()  # entries not yet older than every window, oldest first
        self._stale: list[int] = []  # entries older than every window (any order)
        self._hi: deque[int] = deque()  # candidates for the window's highest: replicas decreasing
        self._lo: deque[int] = deque()  # ... for the lowest: replicas increasing
        for i in sorted(range(len(recs)), key=lambda i: recs[i][0]):  # (stable: ties by index)
            self._push(i)

    def _push(self, i: int) -> None:
        recs = self.recs
        rec = recs[i][1]
        self._order.append(i)
        hi = self._hi
        while hi and recs[hi[-1]][1] <= rec:
            hi.pop()
        hi.append(i)
        if self.with_min:
            lo = self._lo
            while lo and recs[lo[-1]][1] >= rec:
                lo.pop()
            lo.append(i)

    def _age(self, old_cut: float) -> int:
        """Set apart the entries older than ``old_cut``; the last such index (-1: none)."""
        recs, order, stale = self.recs, self._order, self._stale
        while order and recs[order[0]][0] < old_cut:
            stale.append(order.popleft())
        return max(stale) if stale else -1

    def legacy(self, cutoff: float, proposal: int) -> tuple[int, int]:
        """(the highest of ``proposal`` and the entries at or after ``cutoff``, the last index
        before it or -1): the legacy path's scan."""
        recs, hi = self.recs, self._hi
        while hi and recs[hi[0]][0] < cutoff:
            hi.popleft()
        best = proposal
        if hi and recs[hi[0]][1] > best:
            best = recs[hi[0]][1]
        return best, self._age(cutoff)

    def behavior(self, up_cut: float, down_cut: float, proposal: int) -> tuple[int, int, int]:
        """(the lowest of ``proposal`` and the entries after ``up_cut``, the highest of it and
        those after ``down_cut``, the last index before both or -1): the behavior path's scan."""
        recs, hi, lo = self.recs, self._hi, self._lo
        while hi and recs[hi[0]][0] <= down_cut:
            hi.popleft()
        while lo and recs[lo[0]][0] <= up_cut:
            lo.popleft()
        up_rec = down_rec = proposal
        if lo and recs[lo[0]][1] < up_rec:
            up_rec = recs[lo[0]][1]
        if hi and recs[hi[0]][1] > down_rec:
            down_rec = recs[hi[0]][1]
        return up_rec, down_rec, self._age(up_cut if up_cut < down_cut else down_cut)

    def wrote(self, i: int, now: float) -> None:
        """The controller wrote entry ``i`` (``now``, replicas): overwritten (it was the last one
        older than every window) or appended."""
        stale = self._stale
        if stale and i in stale:
            stale.remove(i)
        # (an overwritten entry is out of both window queues already: older than every window)
        self._push(i)
        self.size = len(self.recs)
        self.now = now
