"""The data planes' class-loss hook (``set_class_loss``) against queueing theory.

A share p of a class's arrivals lost at the front door fails at once as ``unavailable``:
the class's error ratio is p (binomial), its availability SLO attains 1 - p, and the
pods see a Poisson stream thinned to (1 - p) λ: an M/M/1 with service rate μ answers the
requests that got through in 1/(μ - (1 - p) λ) on average.
"""

from __future__ import annotations

from typing import Any

import pytest

from devopsim.api import _load
from devopsim.engine.runner import Simulation
from tests.helpers import one_service

MU = 10.0  # exp(100ms)
PLANES = ["request", "flow"]


def _run(plane: str, lam: float, p: float) -> dict[str, Any]:
    sc = one_service(f"{lam}/s", "exp(100ms)", duration="4h", warmup="10m", plane=plane)
    sc["slos"] = [{"name": "avail", "class": "get", "objective": 0.5}]
    sim = Simulation(_load(sc, None))
    sim.plane.set_class_loss(0, p)
    return sim.run().summary


@pytest.mark.parametrize("plane", PLANES)
def test_class_loss_fails_that_share_and_thins_the_load(plane: str) -> None:
    lam, p = 5.0, 0.3
    s = _run(plane, lam, p)
    cls = s["classes"]["get"]
    n = cls["requests"]
    # 4 standard errors of a share p (the flow plane marks round(p k) of its k >= 1000 samples).
    tol = 4 * (p * (1 - p) / n) ** 0.5 if plane == "request" else 1e-3
    assert cls["errors"]["unavailable"] / n == pytest.approx(p, abs=tol)
    assert (n - cls["ok"]) / n == pytest.approx(p, abs=tol)
    slo = s["slos"][0]
    assert slo["attained"] == pytest.approx(1 - p, abs=tol)
    # The service saw only the requests that got through: (1 - p) of them, and an M/M/1 at (1 - p) λ.
    assert s["services"]["api"]["requests"] / n == pytest.approx(1 - p, abs=tol)
    assert cls["latency_s"]["mean"] == pytest.approx(1.0 / (MU - (1 - p) * lam), rel=0.03)


@pytest.mark.parametrize("plane", PLANES)
def test_class_loss_back_to_zero_restores(plane: str) -> None:
    sc = one_service("5/s", "exp(100ms)", duration="2h", warmup="10m", plane=plane)
    sim = Simulation(_load(sc, None))
    sim.plane.set_class_loss(0, 0.8)
    sim.plane.set_class_loss(0, 0.0)
    s = sim.run().summary
    assert s["classes"]["get"]["ok"] == s["classes"]["get"]["requests"]
    assert s["classes"]["get"]["latency_s"]["mean"] == pytest.approx(1.0 / (MU - 5.0), rel=0.04)


@pytest.mark.parametrize("plane", PLANES)
def test_bad_class_loss_is_refused(plane: str) -> None:
    sim = Simulation(_load(one_service("1/s", "exp(100ms)", duration="1m", plane=plane), None))
    with pytest.raises(ValueError, match="class loss"):
        sim.plane.set_class_loss(0, 1.5)
