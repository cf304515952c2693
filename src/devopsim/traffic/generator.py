"""All request classes' arrivals, merged into one time-ordered stream per window."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from devopsim.engine.streams import Streams
from devopsim.traffic.arrivals import ArrivalStream, smooth_integral
from devopsim.traffic.patterns import DAY, RatePattern

__all__ = ["TrafficGenerator"]


class TrafficGenerator:
    """Arrivals of every class, each its own Poisson (or bursty) stream.

    Class ``i`` receives ``share[i]`` of the total rate; by Poisson thinning the
    classes are independent streams, so adding a class never changes another's
    arrivals.

    Args:
        classes: class names, in scenario order.
        shares: each class's share of the total rate.
        streams: the run's named random streams.
        burstiness: coefficient of variation of inter-arrival increments (1 is Poisson).
        clock0: the time of day at the start of the run, seconds after midnight UTC.
    """

    def __init__(
        self,
        classes: list[str],
        shares: list[float],
        streams: Streams,
        burstiness: float = 1.0,
        clock0: float = 0.0,
    ) -> None:
        self.classes = classes
        self.shares = shares
        self.clock0 = clock0
        self._streams = [ArrivalStream(streams.generator(f"arrivals/{c}"), burstiness) for c in classes]
        self.pattern: RatePattern | None = None
        self._own: set[int] = set()  # classes whose rate is set on its own (set_class_pattern)
        self._shares = np.asarray(shares, dtype=np.float64)
        self._at, self._clock_at = 0.0, clock0 % DAY  # when the total pattern took effect
        self._installed: list[RatePattern | None] = [None] * len(classes)  # what set_pattern gave each
        # Called before any class's rate changes (whoever integrates the rate lazily catches up).
        self.before_change: Callable[[], None] | None = None
        for stream in self._streams:
            stream.on_change = self._changing

    def _changing(self) -> None:
        if self.before_change is not None:
            self.before_change()

    def set_pattern(self, pattern: RatePattern, at: float) -> None:
        """The total rate follows ``pattern`` from run time ``at``."""
        self._changing()
        self.pattern = pattern
        clock = (self.clock0 + at) % DAY
        self._at, self._clock_at = at, clock
        for i, (stream, share) in enumerate(zip(self._streams, self.shares, strict=True)):
            if i not in self._own:
                stream.set_pattern(pattern.scaled(share), at, clock)
        # The shortcut in ``expected`` holds while every stream still follows exactly these.
        self._installed = [None if i in self._own else st.pattern for i, st in enumerate(self._streams)]

    def set_class_pattern(
        self, index: int, pattern: RatePattern, at: float, burstiness: float | None = None
    ) -> None:
        """Class ``index`` follows ``pattern`` from run time ``at``, whatever the total rate does.

        For classes that are no share of the users' traffic (a consumer group's messages);
        ``burstiness`` replaces the scenario's for this class (0: evenly spaced).
        """
        self._changing()
        self._own.add(index)
        stream = self._streams[index]
        if burstiness is not None:
            stream.burstiness = burstiness
        stream.set_pattern(pattern, at, (self.clock0 + at) % DAY)

    def expected(self, t0: float, t1: float) -> np.ndarray:
        """Expected arrivals of each class in ``[t0, t1)``."""
        if (
            self.pattern is not None
            and t1 > t0
            and all(st.pattern is p for st, p in zip(self._streams, self._installed, strict=True))
        ):
            # Every class is still its share of the total (no class set on its own, no fault
            # boosting one): integrate the total once.
            a, b = t0 - self._at, t1 - self._at
            total = smooth_integral(self.pattern, self._clock_at, a, b, 60.0 * self._streams[0].grid)
            if total is not None:
                return total * self._shares
        return np.array([s.expected(t0, t1) for s in self._streams])

    def drift(self, t0: float, t1: float) -> float | None:
        """An upper bound on how far the total rate moves from its value at ``t0`` within
        ``[t0, t1]``, or None where none is known (a class on its own pattern, a stream
        changed by a fault, a pattern without a bound, a jump or kink inside)."""
        pattern = self._shared_continuous()
        if pattern is None or pattern.breakpoints(t0 - self._at, t1 - self._at).size:
            return None
        return pattern.drift(t0 - self._at, t1 - t0, self._clock_at)

    def smooth(self, t0: float, t1: float) -> bool:
        """Whether every class's rate over ``[t0, t1)`` is its share of one continuous pattern
        with no jump or kink inside (no class on its own pattern, no stream changed by a fault)."""
        pattern = self._shared_continuous()
        return pattern is not None and not pattern.breakpoints(t0 - self._at, t1 - self._at).size

    def steady_until(self, t0: float, band: float) -> float:
        """The run time until which the total rate provably moves by at most ``band`` from
        ``t0`` on, between any two times (``t0`` itself where nothing is known: see
        :meth:`RatePattern.steady_for`)."""
        pattern = self._shared_continuous()
        if pattern is None:
            return t0
        a = t0 - self._at
        span = pattern.steady_for(a, band, self._clock_at)
        if span is None:
            return t0
        bps = pattern.breakpoints(a, a + min(span, 10.0 * DAY))
        if bps.size:
            span = float(bps.min()) - a
        return t0 + span

    def total_rate(self, t: float) -> float | None:
        """The total rate at run time ``t`` where every class is its share of one continuous
        pattern (what :meth:`steady_until` bounds), else None."""
        pattern = self._shared_continuous()
        if pattern is None:
            return None
        return float(pattern.rate(np.array([t - self._at]), self._clock_at)[0])

    def _shared_continuous(self) -> RatePattern | None:
        """The total pattern where it is continuous and every class is still its share of it
        (no class on its own pattern, no stream changed by a fault), else None."""
        pattern = self.pattern
        if (
            pattern is None
            or not pattern.continuous()
            or not all(st.pattern is p for st, p in zip(self._streams, self._installed, strict=True))
        ):
            return None
        return pattern

    def window(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """Arrival times in ``[t0, t1)`` and their class indices, ordered by time (ties by class)."""
        times = [s.window(t0, t1) for s in self._streams]
        if len(times) == 1:
            return times[0], np.zeros(times[0].size, dtype=np.int64)
        cls = np.concatenate([np.full(t.size, i, dtype=np.int64) for i, t in enumerate(times)])
        allt = np.concatenate(times)
        order = np.argsort(allt, kind="stable")
        return allt[order], cls[order]
