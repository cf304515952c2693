"""Arrival times from a rate pattern, by inversion of the cumulative rate.

A non-homogeneous Poisson process with rate ``λ(t)`` is a unit-rate Poisson
process run on the clock ``Λ(t) = ∫λ``. Each arrival stream therefore keeps a
running sum of unit-mean increments drawn from its own random stream, and maps
them back through ``Λ⁻¹``. The sample path depends only on the stream and the
pattern, never on how the run is cut into windows, and two runs that differ
only in their traffic share their random numbers (common random numbers).
``burstiness`` (the coefficient of variation of the increments, which are
gamma distributed) above 1 makes arrivals burstier than Poisson; 1 is
Poisson; 0 spaces them evenly.

Within a window ``λ`` is taken as piecewise linear on a grid no coarser than
``grid`` seconds that includes every jump of the pattern, so constant, step,
spike, ramp and trace patterns are integrated exactly and diurnal ones to
within ~1e-9.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from devopsim.traffic.patterns import RatePattern

__all__ = ["ArrivalStream", "smooth_integral"]


def smooth_integral(pattern: RatePattern, clock0: float, a: float, b: float, longest: float) -> float | None:
    """``∫ rate`` over ``[a, b)`` when the stretch is at most ``longest`` seconds and the rate
    has no jump or kink inside it (in closed form where the pattern has one, else by
    Simpson's rule), else None.

    On such a short smooth stretch (the flow plane asks for each tick) Simpson's rule is
    exact to far below a request. The rate at ``b`` is the limit from the left.
    """
    if b - a > longest or pattern.breakpoints(a, b).size:
        return None
    exact = pattern.integral(a, b, clock0)
    if exact is not None:
        return exact
    if pattern.continuous():
        lam = pattern.rate(np.array([a, 0.5 * (a + b), b]), clock0)
        return float((b - a) * (lam[0] + 4.0 * lam[1] + lam[2]) / 6.0)
    lam = pattern.rate(np.array([a, 0.5 * (a + b)]), clock0, left=False)
    lam_b = float(pattern.rate(np.array([b]), clock0, left=True)[0])  # just before b
    return float((b - a) * (lam[0] + 4.0 * lam[1] + lam_b) / 6.0)


class ArrivalStream:
    """Arrival times of one request class.

    Args:
        rng: the class's own random stream.
        burstiness: coefficient of variation of the inter-arrival increments (1 is Poisson).
        grid: the coarsest integration step, seconds.
    """

    def __init__(self, rng: np.random.Generator, burstiness: float = 1.0, grid: float = 1.0) -> None:
        self._rng = rng
        self._burstiness = burstiness
        self._grid = grid
        self._pending = float(self._increments(1)[0])  # Λ-distance to the next arrival
        self._buf = np.empty(0)  # increments drawn but not yet used
        self._pattern: RatePattern | None = None
        self._origin = 0.0  # run time at which the pattern took effect
        self._clock0 = 0.0  # time of day at the pattern's origin
        # Called before the pattern changes (the flow plane simulates what it deferred first).
        self.on_change: Callable[[], None] | None = None

    def _increments(self, n: int) -> np.ndarray:
        if self._burstiness == 1.0:
            return self._rng.standard_exponential(n)
        if self._burstiness == 0.0:  # deterministic: evenly spaced in Λ
            return np.ones(n)
        shape = 1.0 / self._burstiness**2
        return self._rng.gamma(shape, 1.0 / shape, n)

    @property
    def pattern(self) -> RatePattern | None:
        """The rate pattern the stream follows now."""
        return self._pattern

    @property
    def grid(self) -> float:
        """The coarsest integration step, seconds."""
        return self._grid

    @property
    def burstiness(self) -> float:
        """Coefficient of variation of the inter-arrival increments (1 is Poisson, 0 even)."""
        return self._burstiness

    @burstiness.setter
    def burstiness(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"burstiness must be >= 0 (got {value})")
        self._burstiness = value

    def set_pattern(self, pattern: RatePattern, origin: float, clock0: float) -> None:
        """Install ``pattern`` from run time ``origin``; ``clock0`` is the time of day then."""
        if self.on_change is not None:
            self.on_change()
        self._pattern = pattern
        self._origin = origin
        self._clock0 = clock0

    def _integrate(self, t0: float, t1: float) -> tuple[np.ndarray, ...]:
        """Grid, rates at each cell's ends, widths and cumulative Λ over ``[t0, t1)``."""
        assert self._pattern is not None
        p = self._pattern
        a, b = t0 - self._origin, t1 - self._origin
        n_grid = max(1, int(np.ceil((b - a) / self._grid)))
        grid = np.linspace(a, b, n_grid + 1)
        bps = p.breakpoints(a, b)
        if bps.size:
            grid = np.union1d(grid, bps)
        lam_l = p.rate(grid[:-1], self._clock0, left=False)
        lam_r = p.rate(grid[1:], self._clock0, left=True)
        h = np.diff(grid)
        seg = 0.5 * h * (lam_l + lam_r)
        cum = np.concatenate(([0.0], np.cumsum(seg)))
        return grid, lam_l, lam_r, h, seg, cum

    def expected(self, t0: float, t1: float) -> float:
        """The expected number of arrivals in ``[t0, t1)``: the integral of the rate."""
        if self._pattern is None or t1 <= t0:
            return 0.0
        a, b = t0 - self._origin, t1 - self._origin
        short = smooth_integral(self._pattern, self._clock0, a, b, 60.0 * self._grid)
        return short if short is not None else float(self._integrate(t0, t1)[5][-1])

    def window(self, t0: float, t1: float) -> np.ndarray:
        """All arrival times in ``[t0, t1)``, increasing. Calls must tile time in order."""
        if self._pattern is None or t1 <= t0:
            return np.empty(0)
        grid, lam_l, lam_r, h, seg, cum = self._integrate(t0, t1)
        total = cum[-1]
        if self._pending >= total:
            self._pending -= total
            return np.empty(0)
        # Unit increments are consumed strictly in the order the stream produced
        # them; unused ones wait in a buffer, so the path never depends on windows.
        targets = self._pending + np.concatenate(([0.0], np.cumsum(self._buf)))
        while targets[-1] < total:
            expect = total - targets[-1]
            n = int(expect + 4.0 * np.sqrt(expect) * max(self._burstiness, 1.0) + 16)
            inc = self._increments(n)
            self._buf = np.concatenate((self._buf, inc))
            targets = np.concatenate((targets, targets[-1] + np.cumsum(inc)))
        first_out = int(np.searchsorted(targets, total, side="left"))
        self._pending = targets[first_out] - total
        self._buf = self._buf[first_out:]
        s = targets[:first_out]
        k = np.searchsorted(cum, s, side="right") - 1
        k = np.clip(k, 0, len(seg) - 1)
        d = s - cum[k]
        lam0 = lam_l[k]
        slope = (lam_r[k] - lam0) / h[k]
        # Solve lam0*x + slope*x²/2 = d for x in [0, h] (stable when slope is ~0).
        disc = np.sqrt(np.maximum(lam0 * lam0 + 2.0 * slope * d, 0.0))
        denom = lam0 + disc
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(denom > 0, 2.0 * d / denom, 0.0)
        x = np.minimum(x, h[k])
        times = grid[k] + x + self._origin
        return np.maximum.accumulate(times)
