"""Invariants that hold for any scenario (hypothesis draws the scenarios).

* arrived = completed + failed + in flight
* queues are never negative
* counters never fall
* latency is at least the work a request needs
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devopsim.engine.request import layout as L
from devopsim.engine.runner import Simulation
from devopsim.scenario import load_scenario


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    n_svc = draw(st.integers(1, 3))
    names = [f"s{i}" for i in range(n_svc)]
    services = {}
    min_work = {}
    for i, name in enumerate(names):
        work_ms = draw(st.sampled_from([1, 5, 20, 80]))
        kind = draw(st.sampled_from(["const", "exp", "lognormal", "uniform"]))
        work = {
            "const": f"const({work_ms}ms)",
            "exp": f"exp({work_ms}ms)",
            "lognormal": f"lognormal(mean={work_ms}ms, cv=1.5)",
            "uniform": f"uniform({work_ms}ms, {2 * work_ms}ms)",
        }[kind]
        min_work[name] = work_ms / 1000 if kind in ("const", "uniform") else 0.0
        steps: list[dict] = [{"work": work}]
        later = names[i + 1 :]
        if later and draw(st.booleans()):
            if len(later) > 1 and draw(st.booleans()):
                steps.append({"parallel": [{"call": f"{t}.op"} for t in later]})
            else:
                steps.append(
                    {"call": f"{later[0]}.op", "probability": draw(st.sampled_from(["100%", "50%"]))}
                )
        ep: dict = {"steps": steps}
        if draw(st.booleans()):
            ep["timeout"] = draw(st.sampled_from(["50ms", "300ms", "2s"]))
        if draw(st.booleans()):
            ep["retries"] = {"attempts": draw(st.integers(1, 2)), "backoff": "5ms"}
        svc: dict = {
            "replicas": draw(st.integers(0 if i else 1, 3)),
            "concurrency": draw(st.integers(1, 8)),
            "resources": {"requests": {"cpu": draw(st.sampled_from(["250m", "1", "4"]))}},
            "loadBalancer": draw(
                st.sampled_from(["round-robin", "random", "least-request", "least-outstanding"])
            ),
            "errorRate": draw(st.sampled_from(["0%", "5%"])),
            "endpoints": {"op": ep},
        }
        if draw(st.booleans()):
            svc["queue"] = {"capacity": draw(st.integers(0, 20))}
        services[name] = svc
    timeline = []
    if draw(st.booleans()):
        timeline.append({"at": "40s", "scale": {"service": "s0", "replicas": draw(st.integers(0, 4))}})
    return {
        "duration": "120s",
        "plane": "request",
        "monitoring": {"scrapeInterval": "10s"},
        "traffic": {
            "rate": f"{draw(st.sampled_from([5, 50, 400]))}/s",
            "classes": [{"name": "c", "entry": "s0.op"}],
        },
        "services": services,
        "timeline": timeline,
        "_min_work": min_work,
    }


KILLED_WITH_A_LONG_QUEUE = {  # found by hypothesis: a pod killed holding ~14,000 queued requests
    "duration": "120s",
    "plane": "request",
    "monitoring": {"scrapeInterval": "10s"},
    "traffic": {"rate": "400/s", "classes": [{"name": "c", "entry": "s0.op"}]},
    "services": {
        "s0": {
            "replicas": 1,
            "concurrency": 1,
            "resources": {"requests": {"cpu": "250m"}},
            "loadBalancer": "round-robin",
            "errorRate": "0%",
            "endpoints": {"op": {"steps": [{"work": "const(5ms)"}]}},
        }
    },
    "timeline": [{"at": "40s", "scale": {"service": "s0", "replicas": 0}}],
    "_min_work": {"s0": 0.005},
}


# Derandomized so CI is reproducible; new seeds are explored by running with --hypothesis-seed.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@example(KILLED_WITH_A_LONG_QUEUE)
@given(scenarios())
def test_invariants(data: dict) -> None:
    data = dict(data)
    min_work = data.pop("_min_work")
    sim = Simulation(load_scenario(text=__import__("yaml").safe_dump(data)))
    plane = sim.plane
    windows: list[tuple[np.ndarray, np.ndarray]] = []
    original = plane.advance

    def watched(t_end, arr_t, arr_c, on_chunk=None):
        original(t_end, arr_t, arr_c, on_chunk)
        rp = plane.replicas
        assert (rp.qlen >= 0).all() and (rp.busy >= 0).all() and (rp.ncpu >= 0).all()
        assert (rp.busy <= np.maximum(sim.program.arrays["svc_conc"][np.maximum(rp.svc, 0)], 0)).all()
        windows.append((plane.stats.cls_tot.copy(), plane.stats.cls_arr.copy()))

    plane.advance = watched  # type: ignore[method-assign]
    out = sim.run()
    s = out.summary
    st_ = plane.stats
    arrived = int(st_.cls_arr.sum())
    finished = int(st_.cls_tot.sum())
    assert arrived == finished + plane.in_system
    c = s["classes"]["c"]
    assert c["requests"] == c["ok"] + sum(c["errors"].values())
    # Counters never fall, in the kernel and in the scraped series.
    for (tot_a, arr_a), (tot_b, arr_b) in itertools.pairwise(windows):
        assert (tot_b >= tot_a).all() and (arr_b >= arr_a).all()
    df = out.store.to_pandas()
    counters = df[df["metric"].astype(str).str.endswith(("_total", "_count", "_bucket", "_sum"))]
    for _, g in counters.groupby(["metric", "labels"], observed=True):
        assert (np.diff(g["value"].to_numpy()) >= -1e-9).all()
    # Latency is at least the work on the request's own path (s0's work at least).
    hist = st_.cls_hist[0]
    if hist.sum():
        lowest = int(np.argmax(hist > 0))
        lower_edge = 0.0 if lowest == 0 else L.LH_MIN * L.LH_RATIO ** (lowest - 1)
        assert lower_edge * L.LH_RATIO >= min_work["s0"] * (1 - 1e-9)
    # Server-side: each service received = ok + errors + in flight.
    for _name, svc in s["services"].items():
        assert svc["requests"] >= svc["errors"]
