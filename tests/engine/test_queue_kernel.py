"""The flow plane's queue kernel at the edge of saturation (a rate equal to capacity, up to rounding)."""

import numpy as np
import pytest
from devopsim.engine.flow._queue import queue_step

from devopsim.engine.flow.queueing import lq_table


@pytest.mark.parametrize("rel", [-1e-6, -1e-9, -1e-13, 0.0, 1e-13, 1e-9, 1e-6])
@pytest.mark.parametrize("backlog", [0.0, 91.2])
@pytest.mark.parametrize("phi", [0.0, 0.62, 1.0])
def test_rate_at_capacity_stays_finite(rel: float, backlog: float, phi: float) -> None:
    c, hold, dt = 4, 0.16, 15.0
    cap = c / hold
    lam = np.array([cap * (1.0 + rel)])
    n0, b0 = c * 0.99, backlog
    n = np.array([n0])
    b = np.array([b0])
    out = [np.zeros(1) for _ in range(10)]
    queue_step(
        lam,
        np.array([hold]),
        np.array([phi]),
        np.array([c]),
        np.array([-1]),
        np.array([0.0]),
        np.array([0]),
        np.ascontiguousarray(lq_table(c)[None, :]),
        dt,
        n,
        b,
        *out,
    )
    served, rejected, dropped, busy, queue, pwait, _theta, bwait, slack, _settled = out
    for x in (served, rejected, dropped, busy, queue, pwait, bwait, slack, n, b):
        assert np.all(np.isfinite(x))
    # Throughput never passes capacity; what arrives is served, refused, dropped or waits.
    assert served[0] <= cap * dt * (1.0 + 1e-9)
    kept = served[0] + rejected[0] + dropped[0] + (n[0] - n0) + (b[0] - b0)
    assert kept == pytest.approx(lam[0] * dt, rel=1e-3)
    assert 0.0 <= pwait[0] <= 1.0


def test_backlog_drains_when_arrivals_stop() -> None:
    """A replica with a backlog and no more arrivals (it left the load-balancing set) serves
    its queue at c mu; none of it is dropped while it can be served within the timeout."""
    c, hold, tmo, dt = 2, 0.1, 30.0, 5.0
    cap = c / hold
    n = np.array([c * 0.999])
    b = np.array([400.0])  # < c mu T = 600
    out = [np.zeros(1) for _ in range(10)]
    queue_step(
        np.array([0.0]),
        np.array([hold]),
        np.array([1.0]),
        np.array([c]),
        np.array([-1]),
        np.array([tmo]),
        np.array([0]),
        np.ascontiguousarray(lq_table(c)[None, :]),
        dt,
        n,
        b,
        *out,
    )
    served, rejected, dropped = out[0][0], out[1][0], out[2][0]
    assert dropped == 0.0 and rejected == 0.0
    assert served == pytest.approx(cap * dt)
    assert b[0] == pytest.approx(400.0 - cap * dt)
