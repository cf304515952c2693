"""The flow plane's per-unit statistics: the all-at-once path equals the endpoint-by-endpoint one."""

from typing import Any

import numpy as np

from devopsim import simulate
from devopsim.engine.flow import plane as flow_plane
from devopsim.engine.flow import tally


def _captured(monkeypatch: Any) -> list[tuple[Any, Any, Any]]:
    seen: list[tuple[Any, Any, Any]] = []
    real = flow_plane.unit_stats

    def grab(plane: Any, calls: Any, journeys: Any) -> Any:
        seen.append((plane, calls, journeys))
        return real(plane, calls, journeys)

    monkeypatch.setattr(flow_plane, "unit_stats", grab)
    return seen


def test_vector_and_loop_paths_agree(monkeypatch: Any) -> None:
    seen = _captured(monkeypatch)
    # Retries, a parallel fan-out, timeouts and errors: every kind of sample the paths read.
    simulate(
        {
            "duration": "5m",
            "plane": "flow",
            "traffic": {"rate": "300/s", "classes": [{"name": "c", "entry": "a.op"}]},
            "services": {
                "a": {
                    "replicas": 2,
                    "concurrency": 4,
                    "errorRate": "2%",
                    "endpoints": {
                        "op": {
                            "timeout": "80ms",
                            "retries": {"attempts": 2, "backoff": "5ms"},
                            "steps": [
                                {"work": "lognormal(mean=3ms, cv=1)"},
                                {"parallel": [{"call": "b.x"}, {"call": "b.y"}]},
                            ],
                        }
                    },
                },
                "b": {
                    "replicas": 1,
                    "concurrency": 2,
                    "endpoints": {
                        "x": {"steps": [{"work": "exp(4ms)"}]},
                        "y": {"steps": [{"work": "exp(2ms)"}, {"call": "c.z", "probability": "50%"}]},
                    },
                },
                "c": {"replicas": 1, "concurrency": 1, "endpoints": {"z": {"steps": [{"work": "exp(1ms)"}]}}},
            },
        }
    )
    assert seen
    for plane, calls, _ in seen[:5]:
        keys = [k for k in tally.LAZY_FIELDS if k.startswith(("ep_", "sv_"))] + ["sv_wsum"]
        a = {k: np.zeros_like(v) for k, v in tally.unit_stats(plane, calls, []).items()}
        b = {k: v.copy() for k, v in a.items()}
        tally._endpoint_units(plane, calls, a)
        tally._endpoint_units_loop(plane, calls, b)
        for k in keys:
            if k in a:
                np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-12, err_msg=k)
        assert a["ep_hist"].sum() > 0 and a["sv_whist"].sum() > 0
