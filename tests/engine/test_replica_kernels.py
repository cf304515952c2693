"""The flow plane's per-replica kernels against the formulas they implement.

``replica_prep`` computes, per replica, what ``queueing.ps_slowdown`` (processor sharing on
``C`` cores, an M/M/C insensitivity result) and the Allen-Cunneen / Kraemer &
Langenbach-Belz factors give; ``add_scaled`` / ``add_pairs`` are the tick's counter updates.
Each is checked against a plain NumPy evaluation of the documented formula.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from devopsim.engine.flow._queue import replica_post, replica_prep
from devopsim.engine.flow._tally import add_pairs, add_rows, add_scaled

from devopsim.engine.flow.queueing import erlang_c, ps_workers


def _prep(
    *,
    rate: float,
    cores: float,
    conc: int,
    lat: float = 1.0,
    a: float = 0.002,
    b: float = 0.004,
    cpu_var: float = 1.6e-5,
    ca2: float = 1.0,
    resid: float = 1.0,
    alive: int = 1,
    prev: tuple[float, float] | None = None,
    backlog: float = 0.0,
) -> dict[str, float]:
    """One replica, one service, one endpoint: a holding time of ``a`` plus CPU work ``b``."""
    one = np.ones(1)
    out = {k: np.zeros(1) for k in ("lam", "cpu_frame", "thru", "k", "hold", "phi", "tail", "tmo")}
    ints = {k: np.zeros(1, dtype=np.int64) for k in ("conc", "qcap", "row")}
    replica_prep(
        np.zeros(1, dtype=np.int64),
        np.array([lat]),
        np.array([alive], dtype=np.int64),
        np.zeros(1),
        np.array([backlog]),
        one,
        np.array([ca2]),
        np.array([rate]),
        np.array([a]),
        np.array([b]),
        np.array([a * a]),
        np.array([2 * a * b]),
        np.array([cpu_var + b * b]),
        np.array([cores], dtype=np.float64),
        np.array([conc], dtype=np.int64),
        np.array([resid]),
        np.array([2.5]),
        np.array([-1], dtype=np.int64),
        np.array([0], dtype=np.int64),
        np.array([prev[0]]) if prev else np.empty(0),
        np.array([prev[1]]) if prev else np.empty(0),
        *out.values(),
        *ints.values(),
    )
    res = {k: float(v[0]) for k, v in out.items()}
    res.update({k: float(v[0]) for k, v in ints.items()})
    return res


@pytest.mark.parametrize("cores", [0.25, 0.5, 1.0, 1.5, 2.0, 3.7, 8.0])
@pytest.mark.parametrize("util", [0.05, 0.3, 0.6, 0.85, 0.95])
@pytest.mark.parametrize("ca2", [1.0, 0.25, 2.0])
def test_stretch_is_processor_sharing(cores: float, util: float, ca2: float) -> None:
    b, lat = 0.004, 1.3
    rate = util * cores / (b * lat)  # the CPU load that gives utilisation ``util``
    got = _prep(rate=rate, cores=cores, conc=64, lat=lat, b=b, ca2=ca2)
    want = lat * float(ps_workers(np.array([util]), np.array([cores]), ca2, 64)[0][0])
    assert got["k"] == pytest.approx(want, rel=1e-12)
    assert got["thru"] == pytest.approx(rate, rel=1e-12)
    assert got["cpu_frame"] == pytest.approx(b * lat, rel=1e-15)
    assert got["hold"] == pytest.approx(0.002 + b * want, rel=1e-12)


def test_round_robin_arrivals_queue_less_on_the_cpu() -> None:
    # A quarter core at u = 0.92, two replicas behind round robin (ca² = 1/2): the queueing
    # part u/(1-u) = 11.5 is scaled by (ca² + 1)/2 = 0.75 and the KLB factor
    # exp(-2 (1-u)(1-ca²)² / (3u (ca² + 1))) = exp(-0.04 / 4.14).
    phi = 0.75 * math.exp(-0.04 / 4.14)
    unlimited = (1.0 + phi * 0.92 / 0.08) / 0.25
    assert unlimited == pytest.approx(38.2, abs=0.05)  # against 50 with Poisson arrivals
    got = _prep(rate=0.92 * 0.25 / 0.004, cores=0.25, conc=1000, ca2=0.5)  # workers never run out
    assert got["k"] == pytest.approx(unlimited, rel=1e-9)
    poisson = _prep(rate=0.92 * 0.25 / 0.004, cores=0.25, conc=1000)
    assert poisson["k"] == pytest.approx(50.0, rel=1e-9)


def test_processor_sharing_behind_few_workers() -> None:
    # A quarter core at u = 0.96 behind 16 workers, Poisson arrivals: unlimited PS would have
    # E[N] = u/(1-u) = 24 jobs on the CPU (slowdown 1/(C(1-u)) = 100); σ = 24/25, so the 16
    # in service stretch by 100 (1 - σ^16), E[(N-16)+] = σ^17/(1-σ) wait for a worker, and an
    # arrival waits with chance σ^16 (the M/M/1 numbers, which do not depend on the order).
    a, b = 0.0002, 0.004
    rate = 0.96 * 0.25 / b
    sig = 24.0 / 25.0
    got = _prep(rate=rate, cores=0.25, conc=16, a=a, b=b)
    k = 100.0 * (1.0 - sig**16)
    assert got["k"] == pytest.approx(k, rel=1e-9)
    hold = a + b * k
    assert got["hold"] == pytest.approx(hold, rel=1e-9)
    rho_w = rate * hold / 16
    ec = float(erlang_c(16, 16 * rho_w))
    lq_mmc = ec * rho_w / (1.0 - rho_w)
    assert got["phi"] == pytest.approx(sig**17 / (1.0 - sig) / lq_mmc, rel=1e-9)
    assert got["tail"] == pytest.approx(ec / sig**16, rel=1e-9)
    ref = ps_workers(np.array([0.96]), np.array([0.25]), 1.0, 16)
    assert float(ref[0][0]) == pytest.approx(k, rel=1e-12)
    assert float(ref[1][0]) == pytest.approx(sig**17 / (1.0 - sig), rel=1e-12)


def test_stretch_on_whole_cores_is_erlang_c() -> None:
    # 1 + EC(C, uC) / (C (1 - u)) on C = 4 cores at u = 0.75 (workers enough never to run out).
    u, c = 0.75, 4
    want = 1.0 + float(erlang_c(c, u * c)) / (c * (1.0 - u))
    got = _prep(rate=u * c / 0.004, cores=float(c), conc=1000)
    assert got["k"] == pytest.approx(want, rel=1e-12)


def test_no_sharing_when_every_worker_has_a_core() -> None:
    got = _prep(rate=400.0, cores=4.0, conc=4)
    assert got["k"] == 1.0


def test_overloaded_cpu_takes_the_largest_stretch() -> None:
    # u >= 0.999: the stretch is capped at conc/cores (every worker sharing the cores).
    got = _prep(rate=1e6, cores=2.0, conc=16)
    assert got["k"] == pytest.approx(8.0)


def test_load_is_halfway_from_the_last_tick() -> None:
    got = _prep(rate=100.0, cores=1.0, conc=8, prev=(150.0, 60.0), backlog=12.0)
    # A backlog drains: max(arrivals, last served) = 150, half-way from the last load 60.
    assert got["thru"] == pytest.approx(105.0)


def test_without_a_backlog_the_load_is_what_arrives() -> None:
    # Served above arrivals with no backlog is the stochastic queue settling, not the CPU
    # working through a backlog: taking it as load fed the stretch back into the queue
    # and made near-saturated replicas swing from tick to tick.
    got = _prep(rate=100.0, cores=1.0, conc=8, prev=(150.0, 60.0))
    assert got["thru"] == pytest.approx(80.0)


@pytest.mark.parametrize("ca2", [0.2, 1.0, 2.5])
@pytest.mark.parametrize("resid", [0.6, 1.0, 1.4])
def test_allen_cunneen_factor(ca2: float, resid: float) -> None:
    rate, conc, a, b, cpu_var = 300.0, 4, 0.002, 0.004, 1.6e-5
    got = _prep(rate=rate, cores=8.0, conc=conc, a=a, b=b, cpu_var=cpu_var, ca2=ca2, resid=resid)
    hold = a + b  # no sharing: 4 workers on 8 cores
    cs2 = (a * a + 2 * a * b + cpu_var + b * b) / hold**2 - 1.0
    rho = rate * hold / conc
    if ca2 < 1:
        klb = np.exp(-2 * (1 - rho) * (1 - ca2) ** 2 / (3 * rho * (ca2 + cs2)))
    else:
        klb = np.exp(-(1 - rho) * (ca2 - 1) / (ca2 + 4 * cs2))
    lt = max(2 * resid - 1, 0.0)
    phi = 0.5 * (ca2 + rho * cs2 + (1 - rho) * lt) * klb
    assert got["hold"] == pytest.approx(hold, rel=1e-14)
    assert got["phi"] == pytest.approx(phi, rel=1e-12)
    assert got["tail"] == pytest.approx(0.5 * (ca2 + cs2) * klb / phi, rel=1e-12)


def test_idle_or_dead_replicas_hold_nothing() -> None:
    assert _prep(rate=0.0, cores=1.0, conc=8)["hold"] == 0.0
    assert _prep(rate=100.0, cores=1.0, conc=8, alive=0)["hold"] == 0.0


def test_post_shares_and_waits() -> None:
    lam = np.array([100.0, 100.0, 0.0])
    pwait = np.array([0.3, 1.0, 0.0])
    theta = np.array([50.0, 20.0, np.inf])
    bwait = np.array([0.0, 0.4, 0.0])
    tail = np.array([1.5, 1.0, 1.0])
    dropped = np.array([20.0, 100.0, 0.0])
    rejected = np.array([10.0, 0.0, 0.0])
    outs = [np.zeros(3) for _ in range(5)]
    replica_post(lam, pwait, theta, bwait, tail, dropped, rejected, 10.0, *outs)
    mwait, pw_tail, mean_w, drop_frac, rej_frac = outs
    np.testing.assert_allclose(mean_w, [0.3 / 50, 1.0 / 20, 0.0])
    np.testing.assert_allclose(mwait, [0.3 / 50, 0.4 + 1.0 / 20, 0.0])
    np.testing.assert_allclose(pw_tail, [0.2, 1.0, 0.0])
    np.testing.assert_allclose(drop_frac, [0.02, 0.1, 0.0])
    np.testing.assert_allclose(rej_frac, [0.01, 0.0, 0.0])


def test_counter_updates_equal_numpy() -> None:
    rng = np.random.default_rng(7)
    d1, d2 = rng.random(6), rng.random(6)
    s1, s2 = rng.random(6), rng.random(6)
    want1, want2 = d1 + s1 * 2.5, d2 + s2 * 2.5
    add_scaled((d1, d2), (s1, s2), 2.5)
    np.testing.assert_array_equal(d1, want1)
    np.testing.assert_array_equal(d2, want2)
    with pytest.raises(ValueError):
        add_scaled((d1,), (np.zeros(5),), 1.0)
    cnt, lsum, hist = rng.random((5, 3, 4)), rng.random((5, 3)), rng.random((5, 3, 7))
    pr = np.array([0, 0, 2, 4], dtype=np.int64)
    loc = np.array([0, 2, 1, 1], dtype=np.int64)
    codes, ls, hs = rng.random((4, 4)), rng.random(4), rng.random((4, 7))
    w_cnt, w_lsum, w_hist = cnt.copy(), lsum.copy(), hist.copy()
    w_cnt[pr, loc] += codes * 0.5
    w_lsum[pr, loc] += ls * 0.5
    w_hist[pr, loc] += hs * 0.5
    add_pairs(cnt, lsum, hist, pr, loc, codes, ls, hs, 0.5)
    np.testing.assert_array_equal(cnt, w_cnt)
    np.testing.assert_array_equal(lsum, w_lsum)
    np.testing.assert_array_equal(hist, w_hist)
    with pytest.raises(IndexError):
        add_pairs(
            cnt,
            lsum,
            hist,
            np.array([5], dtype=np.int64),
            np.array([0], dtype=np.int64),
            codes[:1],
            ls[:1],
            hs[:1],
            1.0,
        )


@pytest.mark.parametrize("n", [1, 2, 7, 8000])
def test_stratified_uniforms_fill_every_stratum_once(n: int) -> None:
    from devopsim.engine.flow._queue import stratified

    out = np.empty(n)
    stratified(out, 2024)
    assert np.all((out >= 0.0) & (out < 1.0))
    np.testing.assert_array_equal(np.sort(np.floor(out * n)), np.arange(n))
    again = np.empty(n)
    stratified(again, 2024)
    np.testing.assert_array_equal(out, again)  # deterministic for a seed


def test_stratified_order_is_random() -> None:
    from devopsim.engine.flow._queue import stratified

    n = 8000
    a, b = np.empty(n), np.empty(n)
    stratified(a, 1)
    stratified(b, 2)
    assert not np.array_equal(a, b)
    # Neither sorted nor tied to the index, nor to another draw: correlations ~ N(0, 1/n).
    idx = np.arange(n)
    for x, y in ((a, idx), (b, idx), (a, b), (a[:-1], a[1:])):
        assert abs(np.corrcoef(x, y)[0, 1]) < 5.0 / np.sqrt(n)
    # Shares below p are p to within 1/n, for any p (the point of stratifying).
    for p in (0.001, 0.03, 0.5, 0.97):
        assert abs(np.mean(a < p) - p) <= 1.0 / n


def test_bucket_hist_is_searchsorted_left() -> None:
    from devopsim.engine.flow._queue import bucket_hist

    from devopsim.engine.request import layout as L

    rng = np.random.default_rng(11)
    # Values on the bounds themselves go to the bucket they bound (le semantics).
    x = np.concatenate((rng.lognormal(-4.0, 2.0, 20000), L.PROM_BUCKETS, [0.0, 1e9]))
    want = np.bincount(np.searchsorted(L.PROM_BUCKETS, x, side="left"), minlength=L.N_PB) * 0.25
    got = np.zeros(L.N_PB)
    bucket_hist(x, L.PROM_BUCKETS, got, 0.25)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError):
        bucket_hist(x, L.PROM_BUCKETS, np.zeros(L.N_PB - 1), 1.0)


@pytest.mark.parametrize("p", [1.0, 0.3])
def test_call_target_is_the_parallel_group_rule(p: float) -> None:
    """Longest call, failing with the first failing one, calls made with probability p."""
    from devopsim.engine.flow._queue import call_target

    rng = np.random.default_rng(5)
    n, m = 5000, 800
    cs_dur = rng.exponential(0.01, m)
    cs_out = np.where(rng.random(m) < 0.2, 3, -1).astype(np.int64)
    dur = rng.exponential(0.005, n)  # an earlier branch of the group
    first_fail = np.where(rng.random(n) < 0.1, rng.exponential(0.005, n), np.inf)
    fail = np.isfinite(first_fail)
    idx = rng.integers(0, m, n)
    u = rng.random(n)
    made = u < p if p < 1.0 else np.ones(n, dtype=bool)
    d = np.where(made, cs_dur[idx], 0.0)
    f = made & (cs_out[idx] != -1)
    want_dur = np.maximum(dur, d)
    want_ff = np.where(f, np.minimum(first_fail, d), first_fail)
    want_fail = fail | f
    call_target(idx, u, p, cs_dur, cs_out, dur, first_fail, fail.view(np.uint8))
    np.testing.assert_array_equal(dur, want_dur)
    np.testing.assert_array_equal(first_fail, want_ff)
    np.testing.assert_array_equal(fail, want_fail)
    with pytest.raises(IndexError):
        call_target(
            np.array([m], dtype=np.int64),
            u[:1],
            1.0,
            cs_dur,
            cs_out,
            dur[:1],
            first_fail[:1],
            fail[:1].view(np.uint8),
        )


def test_add_rows_is_volumes_times_rows() -> None:
    rng = np.random.default_rng(5)
    dst = rng.random((4, 7))
    v = np.array([0.0, 2.5, 0.0, 1e-3])
    src = rng.random((4, 9))[:, 1:8]  # a strided view, as a column slice of a wider table
    want = dst + v[:, None] * src
    add_rows(dst, v, src)
    np.testing.assert_allclose(dst, want, rtol=1e-15, atol=0.0)
    with pytest.raises(ValueError, match="agree in shape"):
        add_rows(dst, v[:3], src)


@pytest.mark.parametrize("n_slo", [0, 3])
def test_apply_classes_is_volumes_times_units(n_slo: int) -> None:
    # The window's class volumes times the per-unit statistics, as NumPy writes it.
    from devopsim.engine.flow._tally import apply_classes

    rng = np.random.default_rng(11)
    C, ne, nb, nh = 3, 6, 12, 50
    st = {
        "cls_tot": rng.random((C, ne + 1)),
        "cls_pb": rng.random((C, nb)),
        "cls_psum": rng.random(C),
        "cls_n": rng.random(C),
        "cls_ok": rng.random(C),
        "cls_err": rng.random((C, ne)),
        "cls_asum": rng.random(C),
        "cls_lsum": rng.random(C),
        "cls_hist": rng.random((C, nh)),
        "slo_good": rng.random(n_slo),
    }
    u = {
        "ok": rng.random(C),
        "err": rng.random((C, ne)),
        "pb": rng.random((C, nb)),
        "lsum": rng.random(C),
        "asum": rng.random(C),
        "hist": rng.random((C, nh)),
        "slo": rng.random((C, n_slo)),
    }
    v_all, v = np.array([120.0, 30.5, 0.0]), np.array([100.0, 0.0, 0.0])
    want = {k: x.copy() for k, x in st.items()}
    want["cls_tot"][:, 0] += v_all * u["ok"]
    want["cls_tot"][:, 1:] += v_all[:, None] * u["err"]
    want["cls_pb"] += v_all[:, None] * u["pb"]
    want["cls_psum"] += v_all * u["lsum"]
    want["cls_n"] += v
    want["cls_ok"] += v * u["ok"]
    want["cls_err"] += v[:, None] * u["err"]
    want["cls_asum"] += v * u["asum"]
    want["cls_lsum"] += v * u["lsum"]
    want["cls_hist"] += v[:, None] * u["hist"]
    want["slo_good"] += v @ u["slo"]
    little, insys = apply_classes(*st.values(), *u.values(), v_all, v)
    for k in st:
        np.testing.assert_allclose(st[k], want[k], rtol=1e-14, atol=0.0, err_msg=k)
    assert little == pytest.approx(float(v @ u["asum"]), rel=1e-14)
    assert insys == pytest.approx(float(v_all @ u["asum"]), rel=1e-14)


def test_window_state_and_moved_are_the_numpy_judgement() -> None:
    # The window's queue state and the steadiness judgement as windows.py wrote them in NumPy.
    from devopsim.engine.flow._tally import stretch_tol, window_moved, window_state

    from devopsim.engine.flow.windows import stretch_tolerance

    rng = np.random.default_rng(8)
    R, E = 12, 5
    lam = rng.uniform(0.0, 50.0, R)
    lam[[2, 7]] = 0.0  # replicas that took nothing in the window
    win = rng.uniform(0.0, 1.0, (7, R)) * lam
    win[1, 4] = 0.0  # no waiting at all on one
    lat = rng.uniform(0.8, 1.5, R)
    ready = rng.random(R) < 0.8
    out = np.empty((10, R))
    window_state(lam, win, lat, ready.view(np.uint8), *out)
    pw, _mw, _theta, _bw, stretch, rej, _slack, drop, weight, mean_wait = out
    with np.errstate(invalid="ignore", divide="ignore"):
        want = {
            "pw": np.where(lam > 0, win[0] / lam, 0.0),
            "mw": np.where(lam > 0, win[1] / lam, 0.0),
            "bw": np.where(lam > 0, win[2] / lam, 0.0),
            "slack": np.where(lam > 0, win[3] / lam, 0.0),
            "drop": np.where(lam > 0, win[4] / lam, 0.0),
            "stretch": np.where(lam > 0, win[5] / lam, lat),
            "rej": np.where(lam > 0, win[6] / lam, 0.0),
        }
        want["theta"] = np.where(want["mw"] > 0, want["pw"] / want["mw"], np.inf)
    want["weight"] = np.where(ready, np.maximum(lam, 1e-12), 0.0)
    t = want["theta"]
    want["mean_wait"] = (
        np.where(np.isfinite(t) & (t > 0), want["pw"] / np.maximum(t, 1e-300), 0.0) + want["bw"]
    )
    got = dict(
        zip(
            ("pw", "mw", "theta", "bw", "stretch", "rej", "slack", "drop", "weight", "mean_wait"),
            out,
            strict=True,
        )
    )
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)

    breaker, err, hold = rng.random(E) * 0.1, np.zeros(R), rng.uniform(0.001, 0.01, R)
    # CPU work per frame: on some replicas most of the holding time, on some little of it,
    # on one unknown (no tick yet: 0, the stretch judged by 2 %).
    cpu_frame = rng.uniform(0.00002, 0.002, R)
    cpu_frame[5] = 0.0
    wsum = float(weight.sum())

    def sig() -> np.ndarray:
        return np.concatenate((mean_wait, pw, stretch, rej, drop, weight / wsum, breaker, err))

    tol = np.concatenate(
        (0.05 * hold + 1e-6, np.full(R, 0.02), stretch_tolerance(stretch, hold, cpu_frame, lat), np.full(R, 0.005), np.full(R, 0.005),
         np.full(R, 0.02), np.full(E, 1e-9), np.full(R, 1e-9))
    )  # fmt: skip
    base = sig()
    seen = set()
    for i in range(base.size):  # nudge each entry around its tolerance, both ways
        for f in (0.5, 0.97, 1.03, 2.0, -0.97, -1.03):
            prev = base.copy()
            prev[i] = base[i] + f * max(tol[i], 0.02 * abs(base[i]))
            reference = bool(np.any(np.abs(base - prev) > np.maximum(tol, 0.02 * np.abs(prev))))
            got_moved = window_moved(
                prev, mean_wait, pw, stretch, rej, drop, weight, wsum, breaker, err, hold, cpu_frame, lat
            )
            assert got_moved == reference, (i, f)
            seen.add(reference)
    assert seen == {True, False}
    assert not window_moved(
        base, mean_wait, pw, stretch, rej, drop, weight, wsum, breaker, err, hold, cpu_frame, lat
    )
    st = stretch_tolerance(stretch, hold, cpu_frame, lat)
    assert (st > 0.02 * stretch + 1e-9).any() and (st == 0.02 * stretch + 1e-9).any()  # both kinds judged
    for r in range(R):
        assert stretch_tol(stretch[r], hold[r], cpu_frame[r], lat[r]) == st[r]


def test_a_stretch_is_judged_by_what_it_does_to_the_holding_time() -> None:
    from devopsim.engine.flow._tally import stretch_tol

    # 2 ms of CPU work at a stretch of 2.5 is 5 ms of a 10 ms holding time: moving the
    # holding time by 5 % (0.5 ms) takes a stretch 0.25 (10 %) higher.
    assert stretch_tol(2.5, 0.010, 0.002, 1.0) == pytest.approx(0.25)
    assert stretch_tol(2.5, 0.010, 0.004, 2.0) == pytest.approx(
        0.25
    )  # the same work, at a version twice as slow
    # All of the holding time CPU: 5 % of the stretch.
    assert stretch_tol(2.5, 0.005, 0.002, 1.0) == pytest.approx(0.125)
    # CPU time far beyond the holding time cannot be (a stale tick): never below 2 %.
    assert stretch_tol(2.5, 0.001, 0.002, 1.0) == pytest.approx(0.02 * 2.5 + 1e-9)
    assert stretch_tol(2.5, 0.010, 0.0, 1.0) == pytest.approx(0.02 * 2.5 + 1e-9)  # no tick yet


def _accrual_case(rng: np.random.Generator, pairs: bool) -> dict[str, Any]:
    R, L_, NC, NH, S, E, C = 9, 2, 4, 7, 3, 5, 2
    pr = np.array([0, 2, 2, 5, 8], dtype=np.int64) if pairs else np.empty(0, dtype=np.int64)
    loc = np.array([0, 0, 1, 1, 0], dtype=np.int64) if pairs else np.empty(0, dtype=np.int64)
    P = pr.size
    return {
        "rp": {k: rng.random(R) for k in ("busy", "qlen", "busy_area", "occ_area", "cpu_area")}
        | {
            "cnt": rng.random((R, L_, NC)),
            "lat_sum": rng.random((R, L_)),
            "lat_hist": rng.random((R, L_, NH)),
        },
        "src": {k: rng.random(R) for k in ("busy", "queue", "occ", "cpu")},
        "pairs": (pr, loc, rng.random((P, NC)), rng.random(P), rng.random((P, NH))),
        "sv": [rng.random(S) for _ in range(5)] + [rng.random(C), rng.random(E)],  # counters after warm-up
        "sv_inc": [rng.random(S) for _ in range(4)] + [rng.random(E)],  # sv_n, sv_err, sv_srv, sv_wsum, calls
        "all": [rng.random(C), rng.random(C), rng.random(E)],
        "att": rng.random(E),
        "lam": rng.random(C) * 100,
    }


@pytest.mark.parametrize("pairs", [True, False])
@pytest.mark.parametrize("warm", [True, False])
def test_accrual_adds_what_add_scaled_and_add_pairs_add(pairs: bool, warm: bool) -> None:
    # A tick's counters bound once (Accrual) against the calls FlowPlane._account made before.
    from devopsim.engine.flow._tally import Accrual

    a = _accrual_case(np.random.default_rng(4), pairs)
    b = copy.deepcopy(a)
    dt, wd = 7.25, 3.5
    # The reference: the old sequence of calls.
    rp, src = a["rp"], a["src"]
    rp["busy"][:] = src["busy"]
    rp["qlen"][:] = src["queue"]
    add_scaled((rp["busy_area"], rp["occ_area"], rp["cpu_area"]), (src["busy"], src["occ"], src["cpu"]), dt)
    if pairs:
        add_pairs(rp["cnt"], rp["lat_sum"], rp["lat_hist"], *a["pairs"], dt)
    sv_n, sv_err, sv_srv, sv_wsum, calls = a["sv_inc"]
    if warm:
        add_scaled(tuple(a["sv"]), (sv_n, sv_err, sv_srv, sv_wsum, sv_srv, a["lam"], calls), wd)
    add_scaled(tuple(a["all"]), (a["lam"], a["lam"], a["att"]), dt)
    # The bound one.
    rp, src = b["rp"], b["src"]
    acc = Accrual(
        rp["busy"], rp["qlen"], src["busy"], src["queue"],
        rp["busy_area"], rp["occ_area"], rp["cpu_area"], src["occ"], src["cpu"],
        rp["cnt"], rp["lat_sum"], rp["lat_hist"], *b["pairs"],
        *b["sv"], *b["sv_inc"], *b["all"], b["att"],
    )  # fmt: skip
    acc.add(dt, warm, wd, b["lam"])
    for k in a["rp"]:
        np.testing.assert_array_equal(b["rp"][k], a["rp"][k], err_msg=k)
    for x, y in zip(b["sv"] + b["all"], a["sv"] + a["all"], strict=True):
        np.testing.assert_array_equal(x, y)
    if not warm:
        np.testing.assert_array_equal(b["sv"][0], _accrual_case(np.random.default_rng(4), pairs)["sv"][0])


def test_accrual_refuses_arrays_that_disagree() -> None:
    from devopsim.engine.flow._tally import Accrual

    a = _accrual_case(np.random.default_rng(5), True)
    rp, src = a["rp"], a["src"]

    def make(pairs: tuple[np.ndarray, ...], att: np.ndarray) -> Any:
        return Accrual(
            rp["busy"], rp["qlen"], src["busy"], src["queue"],
            rp["busy_area"], rp["occ_area"], rp["cpu_area"], src["occ"], src["cpu"],
            rp["cnt"], rp["lat_sum"], rp["lat_hist"], *pairs, *a["sv"], *a["sv_inc"], *a["all"], att,
        )  # fmt: skip

    pr, loc, codes, lsum, hist = a["pairs"]
    with pytest.raises(IndexError, match="outside the counters"):
        make((pr + 9, loc, codes, lsum, hist), a["att"])
    with pytest.raises(ValueError, match="one row of increments per pair"):
        make((pr, loc, codes[:-1], lsum, hist), a["att"])
    with pytest.raises(ValueError, match="per endpoint"):
        make(a["pairs"], a["att"][:-1])
    with pytest.raises(ValueError, match="one rate per class"):
        make(a["pairs"], a["att"]).add(1.0, True, 1.0, a["lam"][:-1])


@pytest.mark.parametrize(("example", "duration"), [("checkout.yaml", "3h"), ("canary.yaml", "2h")])
def test_compiled_increments_are_the_numpy_ones_at_every_tick(
    monkeypatch: pytest.MonkeyPatch, example: str, duration: str
) -> None:
    # What a tick adds per second, compiled (_queue.increments) and in NumPy, at every tick of
    # two runs: one with autoscaling and a bad rollout, one with a canary whose versions
    # differ in injected errors (the per-pair failure shares).
    from devopsim import simulate
    from devopsim.engine.flow import plane as flow_plane
    from tests.helpers import EXAMPLES

    real = flow_plane.FlowPlane._increments
    seen = {"ticks": 0, "mixed": 0}

    def both(self: Any, r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        got = real(self, r)
        want = self._increments_numpy(r)
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        seen["ticks"] += 1
        seen["mixed"] += bool(self._err_mixed[1])
        return got

    monkeypatch.setattr(flow_plane.FlowPlane, "_increments", both)
    simulate(str(EXAMPLES / example), overrides=[f"duration={duration}"])
    assert seen["ticks"] > 30
    if example == "canary.yaml":
        assert seen["mixed"] > 0


def test_compiled_increments_refuse_pairs_outside_the_replicas() -> None:
    from devopsim.engine.flow._queue import increments

    R, E, S, P, NB = 4, 3, 2, 2, 5
    z = np.zeros
    args = [z(R) for _ in range(7)] + [
        z(E),
        np.arange(R, dtype=np.int64),
        np.array([0, 0, 1, 1], dtype=np.int64),
    ]
    pr, pe = np.array([0, 9], dtype=np.int64), np.array([0, 1], dtype=np.int64)
    rest = [
        np.empty(0),
        z(E),
        np.zeros(E, dtype=np.int64),
        np.array([0, 0, 1], dtype=np.int64),
        z(E),
        z((E, NB)),
        z(R),
        z((7, R)),
    ]
    outs = [
        z(R),
        z(R),
        np.zeros(P, dtype=np.int64),
        z((P, 4)),
        z(P),
        z((P, NB)),
        z(S),
        z(S),
        z(S),
        z(S),
        z((7, R)),
    ]
    with pytest.raises(IndexError, match="pair outside"):
        increments(*args, pr, pe, *rest, *outs)
    with pytest.raises(ValueError, match="one row per"):
        increments(*args, pr[:1], pe, *rest, *outs)
