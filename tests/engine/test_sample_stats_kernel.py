"""The compiled statistics of composed samples against the NumPy expressions they replace.

``results.stats.lh_indices`` files a value by its logarithm; the kernel by the exact bucket
edges (``EDGES``: bucket ``k`` holds ``[LH_MIN r^(k-1), LH_MIN r^k)``), so the two may differ
only for values within rounding of an edge. Prometheus buckets follow ``le`` (the first
bound at or above the value, as ``_queue.bucket_hist``). ``queueing.min_residual_ratio`` is
the reference of ``residual_ratio``; the plane's former NumPy learning code (kept here) is
the reference of ``sample_stats`` and ``service_resid``.
"""

from __future__ import annotations

import numpy as np
import pytest
from devopsim.engine.flow._queue import bucket_hist

from devopsim.engine.flow._stats import EDGES, PROM_BOUNDS, call_stats, lh_bins, prom_bins, residual_ratio
from devopsim.engine.flow.graph import CallGraph
from devopsim.engine.flow.latency import CallSamples, Composer
from devopsim.engine.flow.queueing import min_residual_ratio
from devopsim.engine.flow.tally import _endpoint_unit, errors_of, sample_stats, service_resid
from devopsim.engine.request import layout as L
from devopsim.engine.streams import Streams
from devopsim.model.program import compile_program
from devopsim.results.stats import lh_indices
from devopsim.scenario.loader import load_scenario
from tests.engine.test_compose_kernel import CASES, READY, SCENARIO, SLOTS, _hop

RNG = np.random.default_rng(20260105)


def _values() -> np.ndarray:
    edges = EDGES[1:]
    bounds = np.asarray(L.PROM_BUCKETS)
    return np.concatenate(
        [
            RNG.lognormal(-5.0, 3.0, 50_000),
            RNG.exponential(0.01, 5_000),
            edges,
            np.nextafter(edges, 0.0),
            np.nextafter(edges, np.inf),
            bounds,
            np.nextafter(bounds, 0.0),
            np.nextafter(bounds, np.inf),
            [0.0, -1.0, 5e-324, 1e-7, 0.999e-6, 1e-6, 1e9, 1e300],
        ]
    )


def test_log_buckets_follow_the_exact_edges() -> None:
    x = _values()
    got = np.empty(x.size, dtype=np.int64)
    lh_bins(x, got)
    # The definition: bucket 0 below LH_MIN, bucket k >= 1 holds [EDGES[k], EDGES[k+1]).
    want = np.where(x < L.LH_MIN, 0, np.searchsorted(EDGES, x, side="right") - 1)
    np.testing.assert_array_equal(got, np.clip(want, 0, L.LH_N - 1))
    np.testing.assert_array_equal(EDGES[1:], L.LH_MIN * L.LH_RATIO ** np.arange(L.LH_N - 1))
    # lh_indices (by logarithms) agrees except within rounding of an edge.
    ref = lh_indices(x)
    k = np.clip(got, 1, L.LH_N - 2)
    near = (np.abs(x / EDGES[k] - 1) < 1e-12) | (np.abs(x / EDGES[k + 1] - 1) < 1e-12)
    assert np.all((got == ref) | near)
    assert np.mean(got == ref) > 0.9


def test_prometheus_buckets_are_le_buckets() -> None:
    x = _values()
    got = np.empty(x.size, dtype=np.int64)
    prom_bins(x, got)
    np.testing.assert_array_equal(got, np.searchsorted(L.PROM_BUCKETS, x, side="left"))
    np.testing.assert_array_equal(PROM_BOUNDS, L.PROM_BUCKETS)
    hist = np.zeros(L.N_PB)
    bucket_hist(x, L.PROM_BUCKETS, hist, 1.0)
    np.testing.assert_array_equal(np.bincount(got, minlength=L.N_PB), hist)


@pytest.fixture(scope="module")
def composed() -> list[CallSamples]:
    program = compile_program(load_scenario(text=SCENARIO).scenario)
    out: list[CallSamples] = []
    for case, setup in CASES.items():
        comp = Composer(program, CallGraph.build(program), Streams(9), 8000)
        hop = _hop()
        setup(hop, comp)
        ready = [s.copy() for s in SLOTS]
        for svc, slots in READY.get(case, {}).items():
            ready[svc] = np.asarray(slots, dtype=np.int64)
        out.extend(comp.compose(hop, ready).values())
    return out


def _close(a: np.ndarray | float, b: np.ndarray | float) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-15)


def test_endpoint_statistics_match_numpy(composed: list[CallSamples]) -> None:
    assert any(cs.server.size == 0 for cs in composed)  # the unavailable endpoint
    for cs in composed:
        st = sample_stats(cs)
        assert sample_stats(cs) is st  # computed once
        eu, ref = st.unit, _endpoint_unit(cs, errors_of)
        for name in ("ok", "lsum", "sv_ok", "sv_lsum", "sv_wmean"):
            _close(getattr(eu, name), getattr(ref, name))
        _close(eu.err, ref.err)
        for name in ("hist", "sv_hist", "sv_whist"):
            a, b = getattr(eu, name), getattr(ref, name)
            assert (a is None) == (b is None), name
            if a is not None:
                _close(a, b)
        # What the plane learns (its former NumPy code).
        _close(st.call_fail, float(np.mean(cs.outcome != L.OK)))
        _close(st.call_mean, float(cs.duration.mean()))
        _close(st.call_var, float(cs.duration.var()))
        ok = cs.server_ok & np.isfinite(cs.server)
        srv = cs.server[ok]
        _close(st.srv_mean, float(srv.mean()) if srv.size else 0.0)
        if srv.size:
            want = np.zeros(L.N_PB)
            bucket_hist(np.ascontiguousarray(srv), L.PROM_BUCKETS, want, 1.0 / srv.size)
            assert st.srv_buckets is not None
            _close(st.srv_buckets, want)
        else:
            assert st.srv_buckets is None


def test_class_statistics_match_numpy(composed: list[CallSamples]) -> None:
    thr = np.array([0.01, 0.03, np.nan])
    for cs in composed:
        dur, outcome = cs.duration, cs.outcome
        k = dur.size
        err = np.zeros(L.N_ERR + 1)
        hist = np.zeros(L.LH_N)
        pb = np.zeros(L.N_PB)
        good = np.zeros(thr.size)
        n_ok, ok_sum, mean, var = call_stats(dur, outcome, err, hist, 1.0 / k, pb, 1.0 / k, thr, good)
        ok = outcome == L.OK
        okd = dur[ok]
        assert n_ok == ok.sum()
        _close(ok_sum, okd.sum())
        _close(mean, dur.mean())
        _close(var, dur.var())
        np.testing.assert_array_equal(err, np.bincount(outcome[~ok], minlength=L.N_ERR + 1))
        _close(np.bincount(lh_indices(okd), minlength=L.LH_N) / k, hist)
        want = np.zeros(L.N_PB)
        bucket_hist(np.ascontiguousarray(okd), L.PROM_BUCKETS, want, 1.0 / k)
        _close(pb, want)
        np.testing.assert_array_equal(good, [np.sum(ok & (dur <= t)) for t in thr])


@pytest.mark.parametrize("c", [1, 2, 7, 32, 200])
def test_residual_ratio_matches_reference(c: int) -> None:
    samples = [
        RNG.lognormal(-5.0, 1.0, 4000),
        RNG.exponential(1.0, 3000),
        np.round(RNG.exponential(1.0, 3000), 2),  # ties
        np.concatenate([np.zeros(50), RNG.uniform(0, 1, 500), [np.nan, np.inf, -1.0]]),
        np.full(100, 2.0),
        np.array([0.0, 0.0, 1.0]),
        np.array([3.0]),
        np.zeros(10),
    ]
    for x in samples:
        assert residual_ratio(np.sort(x), c) == pytest.approx(min_residual_ratio(x, c), rel=1e-10, abs=1e-14)
    # Exponential service: 1 for every c; (1 + cs^2) / 2 for one worker.
    assert residual_ratio(np.sort(RNG.exponential(1.0, 200_000)), c) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError):
        residual_ratio(np.array([2.0, 1.0]), c)


def test_service_resid_matches_the_former_learning(composed: list[CallSamples]) -> None:
    def reference(parts: list[np.ndarray], weights: np.ndarray, conc: int) -> float | None:
        if weights.sum() <= 0:
            weights = np.ones(len(parts))
        take = []
        for x, w in zip(parts, weights / weights.sum(), strict=True):
            x = x[np.isfinite(x)]
            if x.size:
                take.append(x[: max(1, round(float(w) * min(x.size, 4000)))])
        return min_residual_ratio(np.concatenate(take), conc) if take else None

    for i in range(0, len(composed) - 2, 3):
        parts = [cs.service for cs in composed[i : i + 3]]
        for weights in (np.array([1.0, 2.0, 5.0]), np.zeros(3), np.array([0.0, 1.0, 0.0])):
            for conc in (1, 16):
                want = reference(parts, weights, conc)
                got = service_resid(parts, weights, conc)
                if want is None:
                    assert got is None
                else:
                    assert got == pytest.approx(want, rel=1e-10)
    assert service_resid([np.empty(0)], np.ones(1), 4) is None
