"""Traffic faults as rate patterns: the running pattern, boosted, from the fault's start."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devopsim.traffic.patterns import DAY, RatePattern

__all__ = ["Boosted"]


@dataclass(frozen=True)
class Boosted(RatePattern):
    """``factor`` x ``base`` plus ``extra``, installed ``offset`` seconds into ``base``.

    Times count from the moment this pattern is installed (the fault's start): the
    base pattern continues where it was (``t + offset`` in its own time, the same time
    of day), and ``extra`` starts at zero.
    """

    base: RatePattern
    offset: float
    factor: float = 1.0
    extra: RatePattern | None = None

    def rate(self, t: np.ndarray, clock0: float = 0.0, left: bool = False) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        out = self.factor * self.base.rate(t + self.offset, (clock0 - self.offset) % DAY, left)
        if self.extra is not None:
            out = out + self.extra.rate(t, clock0, left)
        return np.asarray(out, dtype=np.float64)

    def breakpoints(self, t0: float, t1: float) -> np.ndarray:
        bps = self.base.breakpoints(t0 + self.offset, t1 + self.offset) - self.offset
        if self.extra is not None:
            bps = np.union1d(bps, self.extra.breakpoints(t0, t1))
        return np.asarray(bps, dtype=np.float64)

    def peak(self) -> float:
        return self.factor * self.base.peak() + (self.extra.peak() if self.extra is not None else 0.0)

    def scaled(self, factor: float) -> RatePattern:
        extra = self.extra.scaled(factor) if self.extra is not None else None
        return Boosted(self.base.scaled(factor), self.offset, self.factor, extra)

    def __str__(self) -> str:
        parts = [f"{self.factor:g} x {self.base}" if self.factor != 1.0 else str(self.base)]
        if self.extra is not None:
            parts.append(str(self.extra))
        return " + ".join(parts)
