"""The compiled learning and per-unit tallies against the NumPy / Python code they replaced.

``_stats.service_resid`` (the values taken, bucket-sorted, ``residual_ratio``) against
``tally.service_resid(..., reference=True)`` (NumPy filtering, ``np.sort``), and the sort
alone against ``np.sort``; ``tally.unit_stats`` (``_stats.class_units`` and
``_tally.combine_units`` into reused buffers) against ``unit_stats(..., reference=True)``
(the former loops over classes, endpoints and services), all bit for bit: the kernels make
the same floating-point operations in the same order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from devopsim.engine.flow._tally import combine_units

from devopsim import simulate
from devopsim.engine.flow import tally, windows
from devopsim.engine.flow._stats import class_units, sort_nonneg
from devopsim.engine.request import layout as L

RNG = np.random.default_rng(20260106)


def _samples() -> list[np.ndarray]:
    """Values as a service's holding times come, and the awkward cases of a bucket sort."""
    base = RNG.lognormal(-5.0, 1.0, 4000)
    return [
        base,
        RNG.exponential(0.01, 3000),
        np.round(RNG.exponential(1.0, 3000), 2),  # ties
        np.full(500, 0.002),  # all equal
        np.concatenate([np.zeros(300), RNG.uniform(0, 1, 300)]),  # zeros
        # a crowd inside one narrow band, and outliers far away (crowded buckets)
        np.concatenate([0.1 + RNG.uniform(0, 1e-4, 3000), [1e-7, 30.0, 1e5]]),
        np.concatenate([1.0 + np.arange(2000) * 2.0**-52, [1e-300, 1e300]]),
        np.array([5e-324, 1e-310, 0.0, 1e-320]),  # subnormals
        RNG.lognormal(0.0, 8.0, 5000),  # dozens of octaves
        np.array([3.0]),
        np.array([2.0, 1.0]),
        np.empty(0),
    ]


def test_bucket_sort_is_numpy_sort() -> None:
    for x in _samples():
        for y in (x, RNG.permutation(x), np.sort(x), np.sort(x)[::-1].copy()):
            got = np.ascontiguousarray(y, dtype=np.float64).copy()
            sort_nonneg(got)
            np.testing.assert_array_equal(got, np.sort(y))
    with pytest.raises(ValueError):
        sort_nonneg(np.array([1.0, -0.0]))
    with pytest.raises(ValueError):
        sort_nonneg(np.array([1.0, np.nan]))


def _same(a: float | None, b: float | None) -> bool:
    """Equal, or both NaN (subnormal samples overflow the reference too)."""
    return a == b or (a is not None and b is not None and np.isnan(a) and np.isnan(b))


def _dirty(x: np.ndarray) -> np.ndarray:
    """``x`` with what the kernel leaves out or treats alike: non-finite values, negative
    values, -0.0."""
    y = x.copy()
    if y.size > 10:
        y[::7] = np.nan
        y[3::11] = np.inf
        y[5::13] = -y[5::13]
        y[1] = -0.0
    return y


@pytest.mark.parametrize("conc", [1, 2, 16, 200])
def test_service_resid_is_the_numpy_reference(conc: int) -> None:
    parts_list = [[x] for x in _samples()]
    s = _samples()
    parts_list += [
        [s[0], s[1]],
        [s[1], _dirty(s[0]), s[4]],
        [np.empty(0), s[8], RNG.lognormal(-4.0, 1.0, 9000)],  # more than 4,000 finite values
        [_dirty(s[2]), np.full(20, np.nan)],
        [np.full(5, np.nan), np.array([-1.0, -2.0])],  # only negative values: ratio 1
        [np.full(5, np.nan)],  # nothing finite: None
    ]
    weights = [None, "zeros", "one", "spread"]
    for parts in parts_list:
        for wk in weights:
            n = len(parts)
            if wk is None:
                w = np.ones(n)
            elif wk == "zeros":
                w = np.zeros(n)
            elif wk == "one":
                w = np.eye(1, n, n - 1)[0] * 3.0
            else:
                w = RNG.uniform(0.0, 5000.0, n)
            want = tally.service_resid(parts, w, conc, reference=True)
            got = tally.service_resid(parts, w, conc)
            assert _same(got, want), (wk, [p.size for p in parts])
            assert (got is None) == all(not np.isfinite(p).any() for p in parts)


def _class_reference(
    durs: list[np.ndarray], outcomes: list[np.ndarray], thr: np.ndarray
) -> dict[str, np.ndarray]:
    """The former per-class loop of ``unit_stats`` (``call_stats`` per class)."""
    from devopsim.engine.flow._stats import call_stats

    C, Q = len(durs), thr.shape[1]
    u = {
        "ok": np.zeros(C),
        "err": np.zeros((C, L.N_ERR)),
        "lsum": np.zeros(C),
        "hist": np.zeros((C, L.LH_N)),
        "asum": np.zeros(C),
        "pb": np.zeros((C, L.N_PB)),
        "slo": np.zeros((C, Q)),
    }
    for c, (dur, outcome) in enumerate(zip(durs, outcomes, strict=True)):
        k = dur.size
        err = np.zeros(L.N_ERR + 1)
        good = np.zeros(Q)
        n_ok, ok_sum, mean, _ = call_stats(
            dur, outcome, err, u["hist"][c], 1.0 / k, u["pb"][c], 1.0 / k, thr[c], good
        )
        u["ok"][c] = n_ok / k
        u["err"][c] = tally._fold_errors(err) / k
        u["asum"][c] = mean
        u["lsum"][c] = ok_sum / k
        u["slo"][c] = good / k
    return u


@pytest.mark.parametrize("Q", [0, 1, 3])
def test_class_units_are_the_call_stats_loop(Q: int) -> None:
    C, k = 4, 5000
    durs = [RNG.lognormal(-3.0, 1.5, k) for _ in range(C)]
    outcomes = [
        RNG.choice(np.arange(-1, L.N_ERR + 1), k, p=[0.7, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05])
        for _ in range(C)
    ]
    outcomes[1][:] = -1  # every request ok
    outcomes[3][:] = 0  # none ok: an empty histogram
    durs[2][::3] = np.inf  # timeouts without a duration are not ok; infinite sums stay
    thr = RNG.uniform(0.01, 0.2, (C, Q))
    if Q:
        thr[1, 0] = np.nan  # another class's SLO
    want = _class_reference(durs, outcomes, thr)
    # Buffers holding stale numbers: every row is written, not added to.
    got = {name: np.full_like(a, 7.0) for name, a in want.items()}
    class_units(
        durs,
        outcomes,
        thr,
        got["ok"],
        got["err"],
        got["lsum"],
        got["hist"],
        got["asum"],
        got["pb"],
        got["slo"],
    )
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # The same, with each histogram row's span of buckets (stale spans overwritten).
    span = np.full((C, 2), 99, dtype=np.int64)
    class_units(
        durs, outcomes, thr, *(got[n] for n in ("ok", "err", "lsum", "hist", "asum", "pb", "slo")), span
    )
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    _check_spans(got["hist"], span)
    assert span[3, 0] == span[3, 1]  # no ok request
    with pytest.raises(ValueError):
        class_units(
            durs, outcomes[:-1], thr, *(got[n] for n in ("ok", "err", "lsum", "hist", "asum", "pb", "slo"))
        )
    with pytest.raises(ValueError):
        class_units(
            durs,
            outcomes,
            thr,
            *(got[n] for n in ("ok", "err", "lsum", "hist", "asum", "pb", "slo")),
            span[:-1],
        )


def _check_spans(hist: np.ndarray, span: np.ndarray, tight: bool = True) -> None:
    """Each row's span is its buckets' that are not +0.0 (empty rows: an empty span); not
    ``tight``: the row is +0.0 outside its span."""
    for row, (lo, hi) in zip(hist, span, strict=True):
        nz = np.flatnonzero((row != 0.0) | np.signbit(row))
        if tight and nz.size:
            assert (lo, hi) == (nz[0], nz[-1] + 1)
        elif tight:
            assert lo == hi
        outside = np.concatenate((row[:lo], row[hi:]))
        assert not outside.any() and not np.signbit(outside).any()


def test_combine_units_is_the_service_loop() -> None:
    """Services of one, two and three endpoints (and one of none), weights with and without
    attempts, endpoints without answers or waits, and buffers reused with stale rows."""
    E, S, m = 7, 5, L.LH_N
    ep_svc = np.array([0, 1, 1, 3, 3, 3, 4])
    off = np.array([0, 1, 3, 3, 6, 7])
    grp = np.arange(E)
    sc = RNG.uniform(0, 1, (E, 5))
    err = RNG.uniform(0, 0.1, (E, L.N_ERR))
    hist = RNG.uniform(0, 1e-3, (3, E, m))
    has = np.ones((E, 2), dtype=np.uint8)
    has[2] = (0, 1)
    has[4] = (1, 0)
    stamp = np.arange(E, dtype=np.int64)
    for w_att in (RNG.uniform(0, 100, E), np.array([0.0, 0.0, 0.0, 5.0, 0.0, 1.0, 0.0])):
        out = {
            "ep_ok": np.full(E, 3.0),
            "ep_err": np.full((E, L.N_ERR), 3.0),
            "ep_lsum": np.full(E, 3.0),
            "ep_hist": np.full((E, m), 3.0),
            "sv_ok": np.full(S, 3.0),
            "sv_lsum": np.full(S, 3.0),
            "sv_hist": np.full((S, m), 3.0),
            "sv_wsum": np.full(S, 3.0),
            "sv_whist": np.full((S, m), 3.0),
        }
        seen = np.full(E, -1, dtype=np.int64)
        seen[1] = stamp[1]  # row 1 held already: left as it is
        combine_units(off, grp, w_att, sc, err, hist, has, stamp, seen, *out.values())
        np.testing.assert_array_equal(seen, stamp)
        np.testing.assert_array_equal(out["ep_ok"], sc[:, 0])
        np.testing.assert_array_equal(out["ep_lsum"], sc[:, 1])
        np.testing.assert_array_equal(out["ep_err"], err)
        np.testing.assert_array_equal(np.delete(out["ep_hist"], 1, 0), np.delete(hist[0], 1, 0))
        np.testing.assert_array_equal(out["ep_hist"][1], 3.0)
        # The reference: the former loop of unit_stats, on zeros.
        want = {k: np.zeros_like(out[k]) for k in ("sv_ok", "sv_lsum", "sv_hist", "sv_wsum", "sv_whist")}
        wl = w_att.tolist()
        for s in range(S):
            eps = [e for e in range(E) if ep_svc[e] == s]
            total = sum(wl[e] for e in eps)
            for e in eps:
                w = wl[e] / total if total > 0 else 1.0 / len(eps)
                if has[e, 0]:
                    want["sv_ok"][s] += w * sc[e, 2]
                    want["sv_lsum"][s] += w * sc[e, 3]
                    want["sv_hist"][s] += hist[1, e] if w == 1.0 else w * hist[1, e]
                if has[e, 1]:
                    want["sv_wsum"][s] += w * sc[e, 4]
                    want["sv_whist"][s] += hist[2, e] if w == 1.0 else w * hist[2, e]
        for k, v in want.items():
            np.testing.assert_array_equal(out[k], v, err_msg=k)
    with pytest.raises(ValueError):
        combine_units(off[:-1], grp, w_att, sc, err, hist, has, stamp, seen, *out.values())


SCENARIO: dict[str, Any] = {
    "duration": "20m",
    "seed": 3,
    "plane": "flow",
    "traffic": {
        "rate": "step(150/s, 2m: 260/s, 4m: 120/s, 6m: 300/s, 8m: 200/s, 10m: 330/s, 12m: 90/s, 14m: 240/s)",
        "classes": [
            {"name": "browse", "entry": "front.home", "share": 0.7},
            {"name": "buy", "entry": "front.buy", "share": 0.3},
        ],
    },
    "slos": [
        {"name": "fast", "objective": "99%", "class": "browse", "latency": "50ms"},
        {"name": "ok", "objective": "99%", "latency": "80ms"},
    ],
    "services": {
        "front": {
            "replicas": 3,
            "concurrency": 8,
            "endpoints": {
                "home": {"timeout": "1s", "steps": [{"work": "exp(3ms)"}, {"call": "back.read"}]},
                "buy": {
                    "timeout": "1s",
                    "retries": {"attempts": 2, "backoff": "10ms"},
                    "steps": [{"work": "exp(4ms)"}, {"call": "back.write"}, {"call": "side.op"}],
                },
            },
        },
        "back": {
            "replicas": 2,
            "concurrency": 4,
            "endpoints": {
                "read": {"steps": [{"work": "lognormal(mean=4ms, cv=1.5)"}]},
                "write": {"steps": [{"work": "exp(9ms)"}]},
            },
        },
        "side": {"replicas": 1, "concurrency": 2, "endpoints": {"op": {"steps": [{"work": "exp(6ms)"}]}}},
    },
}


def test_unit_stats_and_learning_are_the_reference_in_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every composition of a run (full and partial ones, two buffers in turn): the per-unit
    statistics and the holding-time shapes equal the reference's, and the run's summary is
    the one the reference gives."""
    real_us, real_sr = tally.unit_stats, tally.service_resid
    n = {"us": 0, "sr": 0}

    def us(plane: Any, calls: Any, journeys: Any) -> dict[str, np.ndarray]:
        want = real_us(plane, calls, journeys, reference=True)
        got = real_us(plane, calls, journeys)
        assert got.keys() == want.keys()
        for k in want:
            if not k.endswith("span"):  # (the reference's spans are every bucket)
                np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        _check_spans(got["cls_hist"], got["cls_span"])
        for h, sp in (("ep_hist", "ep_span"), ("sv_hist", "sv_span"), ("sv_whist", "sv_wspan")):
            _check_spans(got[h], got[sp], tight=False)
            np.testing.assert_array_equal(want[sp], [[0, L.LH_N]] * len(want[sp]))
        n["us"] += 1
        return got

    def sr(parts: list[np.ndarray], weights: np.ndarray, conc: int) -> float | None:
        want = real_sr(parts, weights, conc, reference=True)
        got = real_sr(parts, weights, conc)
        assert _same(got, want)
        n["sr"] += 1
        return got

    monkeypatch.setattr(windows, "unit_stats", us)
    monkeypatch.setattr(windows, "service_resid", sr)
    got = simulate(SCENARIO).summary
    assert n["us"] > 5 and n["sr"] > n["us"], n
    monkeypatch.setattr(windows, "unit_stats", lambda p, c, j: real_us(p, c, j, reference=True))
    monkeypatch.setattr(windows, "service_resid", lambda a, b, c: real_sr(a, b, c, reference=True))
    monkeypatch.setattr(windows, "apply_unit_stats", tally._apply_unit_stats_reference)
    real_flush = tally.flush_pending
    monkeypatch.setattr(tally, "flush_pending", lambda plane, **kw: real_flush(plane, reference=True))
    assert simulate(SCENARIO).summary == got


def _plane(C: int, E: int, S: int, Q: int) -> Any:
    """What ``apply_unit_stats`` and ``flush_pending`` read of a plane."""
    from types import SimpleNamespace

    return SimpleNamespace(
        _stats=tally.new_stats(C, E, S, Q),
        _pending=tally.PendingVolumes(E, S),
        _little_area=0.0,
        _in_system=0.0,
        _win_start=0.0,
    )


def _units(C: int, E: int, S: int, Q: int) -> dict[str, np.ndarray]:
    """Random per-unit statistics; each class's histogram 0 outside a span of buckets (one
    row all 0, one of a single bucket, one with zeros inside), or every bucket."""
    u = {
        k: RNG.uniform(0.0, 1.0, v.shape)
        for k, v in tally._new_units(C, E, S, Q).items()
        if not k.endswith("span")
    }
    for h, sp in (
        ("cls_hist", "cls_span"),
        ("ep_hist", "ep_span"),
        ("sv_hist", "sv_span"),
        ("sv_whist", "sv_wspan"),
    ):
        rows = u[h]
        span = np.tile(np.array([0, L.LH_N], dtype=np.int64), (rows.shape[0], 1))
        for c in range(rows.shape[0]):
            kind = RNG.integers(0, 5)
            lo, hi = sorted(RNG.integers(0, L.LH_N + 1, 2))
            lo, hi = (0, 0) if kind == 0 else (lo, lo + 1) if kind == 1 and lo < L.LH_N else (lo, hi)
            if kind < 4:
                rows[c, :lo] = 0.0
                rows[c, hi:] = -0.0 if kind == 2 else 0.0
                rows[c, lo:hi:3] = 0.0
                span[c] = (lo, hi)
        u[sp] = span
    return u


@pytest.mark.parametrize("Q", [0, 2])
def test_window_counting_is_the_reference(Q: int) -> None:
    """``apply_unit_stats`` (bound ``ClassCounters``, pending volumes added in the kernel) and
    ``flush_pending`` (``flush_units``) against the NumPy / ``apply_classes`` reference over
    windows whose per-unit statistics change now and then (histogram spans too, in place),
    with zero volumes among them, a window of no length and an infinite volume at the end."""
    C, E, S = 3, 6, 4
    planes = [_plane(C, E, S, Q), _plane(C, E, S, Q)]
    us = [_units(C, E, S, Q) for _ in range(3)]
    for w in range(12):
        u = us[(w // 4) % len(us)]
        if w == 2:  # the bound statistics rewritten in place, their spans with them
            fresh = _units(C, E, S, Q)
            for k in (
                "cls_hist",
                "cls_span",
                "ep_hist",
                "ep_span",
                "sv_hist",
                "sv_span",
                "sv_whist",
                "sv_wspan",
            ):
                u[k][...] = fresh[k]
        vol = {
            "_w_cls_all": RNG.uniform(0, 100, C),
            "_w_cls": RNG.uniform(0, 100, C) * (RNG.random(C) < 0.7),
            "_w_calls": RNG.uniform(0, 100, E) * (RNG.random(E) < 0.7),
            "_w_started_w": RNG.uniform(0, 100, S) * (RNG.random(S) < 0.7),
        }
        if w == 11:
            vol["_w_cls"][1] = np.inf
        t_end = planes[0]._win_start if w == 5 else 15.0 * (w + 1)
        for plane, apply in zip(
            planes, (tally.apply_unit_stats, tally._apply_unit_stats_reference), strict=True
        ):
            for k, v in vol.items():
                setattr(plane, k, v.copy())
            apply(plane, u, t_end)
            plane._win_start = t_end
        assert planes[0]._little_area == planes[1]._little_area
        assert planes[0]._in_system == planes[1]._in_system
        if w == 6:  # a reader brings the endpoint and service counters up to date
            tally.flush_pending(planes[0])
            tally.flush_pending(planes[1], reference=True)
    tally.flush_pending(planes[0])
    tally.flush_pending(planes[1], reference=True)
    got, want = planes
    assert got._little_area == want._little_area == np.inf  # (the infinite volume)
    for name in want._stats._fields:
        np.testing.assert_array_equal(getattr(got._stats, name), getattr(want._stats, name), err_msg=name)
    np.testing.assert_array_equal(got._pending.ve, 0.0)
    np.testing.assert_array_equal(got._pending.vs, 0.0)


def test_set_row_is_a_copy() -> None:
    """A row set from another (or cleared) equals it, only its span touched; -0.0 copied."""
    from devopsim.engine.flow._tally import set_row

    m = L.LH_N
    row, span = np.zeros(m), np.zeros(2, dtype=np.int64)
    for trial in range(40):
        src = RNG.uniform(0.0, 1.0, m)
        lo, hi = sorted(RNG.integers(0, m + 1, 2))
        src[:lo] = 0.0
        src[hi:] = 0.0
        src[lo:hi:4] = 0.0
        if trial % 7 == 3 and hi > lo:
            src[hi - 1] = -0.0
        if trial % 5 == 0:
            src = np.empty(0)
        set_row(row, span, src)
        want = np.zeros(m) if src.size == 0 else src
        np.testing.assert_array_equal(row, want)
        np.testing.assert_array_equal(np.signbit(row), np.signbit(want))
        _check_spans(row[None], span[None])


def test_combine_units_with_spans_is_without() -> None:
    """Histogram rows 0 outside spans (one all 0, -0.0 inside one), reused outputs whose rows
    and spans are stale, a weight that is not finite: the same rows as without spans."""
    from devopsim.engine.flow._tally import set_row

    E, S, m = 7, 5, L.LH_N
    off = np.array([0, 1, 3, 3, 6, 7])
    grp = np.arange(E)
    sc = RNG.uniform(0, 1, (E, 5))
    err = RNG.uniform(0, 0.1, (E, L.N_ERR))
    has = np.ones((E, 2), dtype=np.uint8)
    has[2] = (0, 1)
    has[4] = (1, 0)
    names = ("ep_ok", "ep_err", "ep_lsum", "ep_hist", "sv_ok", "sv_lsum", "sv_hist", "sv_wsum", "sv_whist")
    shapes = ((E,), (E, L.N_ERR), (E,), (E, m), (S,), (S,), (S, m), (S,), (S, m))
    spanned = {n: np.full(sh, 3.0) for n, sh in zip(names, shapes, strict=True)}
    spans = (np.zeros((3, E, 2), dtype=np.int64), *(np.tile([0, m], (n, 1)) for n in (E, S, S)))
    hist = np.zeros((3, E, m))
    stamp = np.zeros(E, dtype=np.int64)
    seen_a, seen_b = np.full(E, -1, dtype=np.int64), np.full(E, -1, dtype=np.int64)
    for trial in range(12):
        for i in range(3):
            for e in range(E):
                if trial and RNG.random() < 0.5:
                    continue  # the row kept from the last composition
                x = RNG.uniform(0, 1e-3, m)
                lo, hi = sorted(RNG.integers(0, m + 1, 2))
                x[:lo] = 0.0
                x[hi:] = 0.0
                if RNG.random() < 0.15:
                    x[:] = 0.0
                if RNG.random() < 0.1 and hi > lo:
                    x[lo] = -0.0
                set_row(hist[i, e], spans[0][i, e], x)
                stamp[e] += 1
        w_att = RNG.uniform(0, 100, E) * (RNG.random(E) < 0.8)
        if trial == 9:
            w_att[3] = np.inf
        whole = {n: np.full(sh, 5.0) for n, sh in zip(names, shapes, strict=True)}
        combine_units(off, grp, w_att, sc, err, hist, has, stamp, seen_a, *whole.values())
        combine_units(off, grp, w_att, sc, err, hist, has, stamp, seen_b, *spanned.values(), spans)
        for n in names:
            if n == "ep_hist":  # (whole copied only the rows whose stamp changed: compare those)
                continue
            np.testing.assert_array_equal(spanned[n], whole[n], err_msg=n)
            np.testing.assert_array_equal(np.signbit(spanned[n]), np.signbit(whole[n]), err_msg=n)
        np.testing.assert_array_equal(spanned["ep_hist"], hist[0])
        for n, sp in (("ep_hist", spans[1]), ("sv_hist", spans[2]), ("sv_whist", spans[3])):
            _check_spans(spanned[n], sp, tight=False)


def _call_samples(k: int) -> Any:
    """Samples of a call as a composition gives them: ok and failed calls, attempts started
    or not, waits mostly 0 (or none at all, or no ok answer)."""
    from devopsim.engine.flow.latency import CallSamples

    outcome = RNG.choice([-1, -1, -1, -1, 0, 2], k)
    n_att = int(k * RNG.uniform(0.5, 1.5))
    server = RNG.lognormal(-5.0, 1.0, n_att)
    wait = np.where(RNG.random(n_att) < 0.9, 0.0, RNG.exponential(0.01, n_att))
    kind = RNG.integers(0, 4)
    if kind == 1:
        outcome[:] = 3  # no ok call
    return CallSamples(
        duration=RNG.lognormal(-4.0, 1.0, k),
        outcome=outcome,
        server=server,
        server_ok=RNG.random(n_att) < (0.0 if kind == 2 else 0.9),
        wait=wait if kind != 3 else np.full(n_att, np.nan),
        service=server,
        attempts=1.0,
        retry_fail=0.0,
        started_fail=0.1,
    )


def test_unit_rows_are_the_table_assignments() -> None:
    """``UnitTable.set`` (``_tally.UnitRows``, the rows' spans from ``endpoint_stats``) against
    ``set_reference`` (NumPy assignments, spans found): the same table after each of many
    rows set in turn; the spans endpoint_stats gives are its histograms'."""
    from types import SimpleNamespace

    E = 5
    plane = SimpleNamespace(
        C=1, E=E, S=2, ep_svc=np.array([0, 0, 1, 1, 1]), _slo_cls=np.array([0]), _slo_thr=[0.3]
    )
    got, want = tally.UnitTable(plane), tally.UnitTable(plane)
    for _ in range(40):
        e = int(RNG.integers(0, E))
        cs = _call_samples(int(RNG.integers(1, 3000)))
        got.set(e, cs)
        want.set_reference(e, cs)
        eu = tally.sample_stats(cs).unit
        for row, sp in zip((eu.hist, eu.sv_hist, eu.sv_whist), eu.spans, strict=True):
            if row is not None:
                _check_spans(row[None], sp[None])
        for name in ("sc", "err", "hist", "has", "stamp", "span"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        assert got.cs == want.cs


@pytest.mark.parametrize("Q", [0, 2])
def test_class_units_from_the_entry_endpoint_are_the_pass(Q: int) -> None:
    """A class whose journey is its entry endpoint's samples: its row from the endpoint's
    statistics (``known``) equals the pass over the samples, to the bit (histogram, its span,
    Prometheus buckets, SLO shares; a class with no ok request; stale rows overwritten)."""
    C = 3
    calls = [_call_samples(int(RNG.integers(1, 4000))) for _ in range(C)]
    calls[2].outcome[:] = 1  # none ok
    durs = [cs.duration for cs in calls]
    outs = [cs.outcome for cs in calls]
    thr = RNG.uniform(0.005, 0.05, (C, Q))
    if Q:
        thr[0, 1] = np.nan
    names = ("ok", "err", "lsum", "hist", "asum", "pb", "slo")
    shapes = ((C,), (C, L.N_ERR), (C,), (C, L.LH_N), (C,), (C, L.N_PB), (C, Q))
    want = {n: np.full(sh, 7.0) for n, sh in zip(names, shapes, strict=True)}
    got = {n: np.full(sh, 7.0) for n, sh in zip(names, shapes, strict=True)}
    want_span, got_span = np.zeros((C, 2), dtype=np.int64), np.tile([0, L.LH_N], (C, 1))
    got["hist"][:] = 0.0  # (a row outside its span is +0.0, as the buffers keep it)
    got["hist"][1, 5] = 3.0
    got_span[1] = (5, 6)
    class_units(durs, outs, thr, *want.values(), want_span)
    known = []
    for cs in calls:
        cs.stats = None
        ss = tally.sample_stats(cs)
        eu = ss.unit
        known.append((eu.ok, eu.lsum, ss.call_mean, eu.err, eu.hist, eu.spans, ss.call_pb))
    known[1] = None  # one class by the pass
    class_units(durs, outs, thr, *got.values(), got_span, known)
    for n in names:
        np.testing.assert_array_equal(got[n], want[n], err_msg=n)
    _check_spans(got["hist"], got_span)
    with pytest.raises(ValueError):
        class_units(durs, outs, thr, *got.values(), None, known)
