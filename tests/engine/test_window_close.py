"""A window's close in one compiled call (``_tally.window_close``) against the NumPy sums and
kernel calls it replaced (``windows.window_close_reference``), bit for bit: random windows
of several parts (some narrower than the replicas), replicas that took nothing, versions,
signatures nudged around their tolerances, missing or stale holding times; and every window
of a run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from devopsim.engine.flow._tally import pairwise_sum, window_close, window_signature

from devopsim import simulate
from devopsim.engine.flow import windows
from devopsim.engine.flow.windows import window_close_reference
from tests.helpers import EXAMPLES

from .test_unit_kernels import SCENARIO

RNG = np.random.default_rng(20261123)


def test_pairwise_sum_is_ndarray_sum() -> None:
    """NumPy's pairwise summation to the bit: short arrays, one block, split blocks."""
    for n in [*range(0, 300), 511, 512, 1000, 1023, 4097]:
        for scale in (1.0, 1e-12):
            a = RNG.random(n) * 10.0 ** RNG.integers(-9, 4, n) * scale
            assert pairwise_sum(a) == float(a.sum()), n
    assert pairwise_sum(np.array([0.1, 0.2, 0.3] * 50)) == float(np.array([0.1, 0.2, 0.3] * 50).sum())


def _parts(R: int, k: int) -> dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]]:
    """``k`` ticks of a window, as the plane notes them: their rates (arrivals ``lam``), their
    per-second sums (``win``, seven rows) and how long each was played; some from before a
    replica was added (narrower), some wider than the replicas now."""
    parts = {}
    for i in range(k):
        n = R if i % 3 else max(R - 2, 0) if i % 2 else R + 1
        lam = RNG.uniform(0.0, 40.0, n)
        lam[RNG.random(n) < 0.2] = 0.0
        win = RNG.uniform(0.0, 1.0, (7, n)) * lam
        win[1, RNG.random(n) < 0.2] = 0.0  # no waiting
        if i % 4 == 3:  # a strided view (every other column of a wider block)
            wide = np.zeros((7, 2 * n))
            wide[:, ::2] = win
            win = wide[:, ::2]
        parts[1000 + i] = ({"lam": lam}, {"win": win}, float(RNG.choice([1.0, 2.0, 4.0, 0.37])))
    return parts


def _both(*args: Any) -> tuple[tuple[bool, float], np.ndarray]:
    """``window_close`` and its reference on the same inputs; their outputs equal to the bit."""
    R = args[4].shape[0]
    got, want = np.full((12, R), 7.0), np.full((12, R), 7.0)
    g = window_close(*args[:5], got, *args[5:])
    w = window_close_reference(*args[:5], want, *args[5:])
    np.testing.assert_array_equal(got, want)
    assert g == w, (g, w)
    assert type(g[0]) is bool
    return g, got


@pytest.mark.parametrize("R", [0, 1, 7, 12, 40, 300])
def test_window_close_is_the_reference(R: int) -> None:
    E = 5
    ver_lat = np.array([1.0, 1.3, 0.8])
    ver_err = np.array([0.0, 0.01, 0.2])
    for k in (0, 1, 2, 5):
        parts = _parts(R, k)
        ver = RNG.integers(-3, 3, R).astype(np.int64)
        ready = (RNG.random(R) < 0.8).view(np.uint8)
        breaker = (RNG.random(E) < 0.3).astype(np.float64)
        hold = RNG.uniform(0.001, 0.01, R)
        cpu_frame = RNG.uniform(0.0, 0.002, R)
        # Not judged: no signature, one of another layout, or not asked to.
        (moved, wsum), out = _both(parts, ver_lat, ver_err, ver, ready, None, breaker, hold, cpu_frame, True)
        assert moved
        assert _both(parts, ver_lat, ver_err, ver, ready, np.zeros(3), breaker, hold, cpu_frame, True)[0][0]
        pw, _mw, _theta, _bw, stretch, rej, _slack, drop, weight, mean_wait, err_r, _lat = out
        sig = np.concatenate((mean_wait, pw, stretch, rej, drop, weight / max(wsum, 1e-300), breaker, err_r))
        assert _both(parts, ver_lat, ver_err, ver, ready, sig, breaker, hold, cpu_frame, False)[0][0]
        # Judged: the same state has not moved; nudged entries (both ways, either side of
        # their tolerance) have or have not, as the reference says; holding times and CPU
        # work missing or of another length are ones and zeros.
        for h, c in ((hold, cpu_frame), (None, cpu_frame), (hold, None), (hold[:-1], np.zeros(R + 1))):
            assert not _both(parts, ver_lat, ver_err, ver, ready, sig, breaker, h, c, True)[0][0]
        seen = set()
        for i in RNG.permutation(sig.size)[:40]:
            for f in (0.01, 0.03, 0.1, -0.03, 0.5, 2.0):
                prev = sig.copy()
                prev[i] = sig[i] * (1.0 + f) + f * 1e-3
                seen.add(
                    _both(parts, ver_lat, ver_err, ver, ready, prev, breaker, hold, cpu_frame, True)[0][0]
                )
        assert R == 0 or seen == {True, False}
    with pytest.raises(IndexError):
        window_close({}, ver_lat, ver_err, np.full(R + 1, 3), np.zeros(R + 1, np.uint8), np.empty((12, R + 1)),
                     None, np.zeros(E), None, None, True)  # fmt: skip
    with pytest.raises(ValueError):
        window_close({}, ver_lat, ver_err, np.zeros(R + 1, np.int64), np.zeros(R + 1, np.uint8),
                     np.empty((12, R)), None, np.zeros(E), None, None, True)  # fmt: skip
    with pytest.raises(ValueError):  # readiness as bool, not viewed as uint8
        window_close({}, ver_lat, ver_err, np.zeros(R, np.int64), np.zeros(R, bool), np.empty((12, R)), None,
                     np.zeros(E), None, None, True)  # fmt: skip
    with pytest.raises(ValueError):  # a non-contiguous output
        window_close({}, ver_lat, ver_err, np.zeros(R, np.int64), np.zeros(R, np.uint8),
                     np.empty((12, 2 * R + 1))[:, ::2], None, np.zeros(E), None, None, True)  # fmt: skip


@pytest.mark.parametrize("example", ["unit", "checkout", "canary"])
def test_every_window_of_a_run_closes_as_the_reference(monkeypatch: pytest.MonkeyPatch, example: str) -> None:
    """Each window of a run (steady, moved, composed; replicas the autoscaler adds, a canary's
    versions) closes to the reference's numbers, each composing window's signature, moved
    entries, dirty sets and processor-sharing shape are the reference's, and the run with the
    reference gives the same summary."""
    run: Any = (
        (lambda: simulate(SCENARIO))
        if example == "unit"
        else (lambda: simulate(str(EXAMPLES / f"{example}.yaml"), overrides=["duration=3h"]))
    )
    n = {"judged": 0, "moved": 0, "sig": 0, "dirty": 0, "ps": 0}
    FW = windows.FlowWindows
    plane: list[Any] = []
    real_close, real_dirty, real_ps = FW._close_window, FW._dirty, FW._ps_shape

    def close(self: Any, t_end: float) -> None:
        plane[:] = [self]
        real_close(self, t_end)

    def signature(
        out: np.ndarray, wsum: float, breaker: Any, prev: Any, hold: Any, cpu: Any, sig: Any, moved: Any
    ) -> bool:
        judged = window_signature(out, wsum, breaker, prev, hold, cpu, sig, moved)
        want_sig, want_judged, want_moved = FW._signature_reference(plane[0], out, wsum, prev)
        np.testing.assert_array_equal(sig, want_sig)
        assert judged == want_judged
        if judged:
            np.testing.assert_array_equal(moved, want_moved)
        n["sig"] += 1
        return judged

    def dirty(self: Any, moved: np.ndarray, R: int) -> Any:
        got = real_dirty(self, moved, R)
        for g, w in zip(got, FW._dirty_reference(self, moved.view(bool), R), strict=True):
            np.testing.assert_array_equal(g, w, strict=True)
        n["dirty"] += 1
        return got

    def ps(self: Any, stretch: np.ndarray, lat: Any = None) -> Any:
        got = real_ps(self, stretch, lat)
        self.fused_close = False
        want = real_ps(self, stretch)
        del self.fused_close
        for g, w in zip(got, want, strict=True):
            assert (g is None) == (w is None)
            if w is not None:
                np.testing.assert_array_equal(g, w, strict=True)
        n["ps"] += got[0] is not None
        return got

    monkeypatch.setattr(FW, "_close_window", close)
    monkeypatch.setattr(FW, "_dirty", dirty)
    monkeypatch.setattr(FW, "_ps_shape", ps)
    monkeypatch.setattr(windows, "window_signature", signature)

    def both(*args: Any) -> tuple[bool, float]:
        out = args[5]
        want_out = out.copy()
        want = window_close_reference(*args[:5], want_out, *args[6:])
        got = window_close(*args)
        np.testing.assert_array_equal(out, want_out)
        assert got == want
        n["judged"] += 1
        n["moved"] += got[0]
        return got

    monkeypatch.setattr(windows, "window_close", both)
    got = run().summary
    assert n["judged"] >= 10 and 0 < n["moved"] < n["judged"] and n["sig"] == n["moved"] and n["dirty"] > 0, n
    assert n["ps"] > 0 or example != "checkout", n
    monkeypatch.undo()
    monkeypatch.setattr(FW, "fused_close", False)
    assert run().summary == got


def _plane(R: int, E: int, S: int, hold: Any, cpu_frame: Any) -> Any:
    """What ``_signature_reference``, ``_dirty_reference`` and ``_ps_shape`` read of a plane."""
    from types import SimpleNamespace

    last = {k: v for k, v in (("hold", hold), ("cpu_frame", cpu_frame)) if v is not None}
    svc = RNG.integers(-1, S, R).astype(np.int64)
    ep_svc = RNG.integers(0, S, E).astype(np.int64)
    m = 2 * E
    graph = SimpleNamespace(
        edge_src=RNG.integers(0, E, m).astype(np.int64), edge_dst=RNG.integers(0, E, m).astype(np.int64)
    )
    return SimpleNamespace(
        _last=last,
        breaker_open=(RNG.random(E) < 0.3).astype(np.float64),
        E=E,
        S=S,
        ep_svc=ep_svc,
        graph=graph,
        replicas=SimpleNamespace(
            svc=svc, alive=(RNG.random(R) < 0.8).astype(np.int64), ver=np.zeros(R, np.int64)
        ),
        cores=RNG.choice([0.25, 0.5, 1.0, 2.0], S),
        conc=RNG.integers(1, 20, S).astype(np.int64),
        ver_lat=np.array([1.0]),
        fused_close=False,
    )


@pytest.mark.parametrize("R", [1, 9, 40])
def test_signature_dirty_sets_and_ps_shape_are_the_reference(R: int) -> None:
    """``window_signature`` (the signature and which entries moved), ``dirty_sets`` (what is
    composed again: callers above, cycles among the calls too) and ``ps_shape`` against
    ``FlowWindows``' NumPy, bit for bit."""
    E, S = 6, 4
    FW = windows.FlowWindows
    seen = {"moved": False, "still": False, "kept": False, "on": False}
    for trial in range(30):
        hold = RNG.uniform(0.001, 0.01, R) if trial % 4 else None
        cpu_frame = RNG.uniform(0.0, 0.002, R) if trial % 5 else np.zeros(R + 1)
        plane = _plane(R, E, S, hold, cpu_frame)
        out = RNG.uniform(0.0, 1.0, (12, R))
        out[4] = RNG.uniform(0.5, 3.0, R)  # stretches
        out[11] = RNG.uniform(0.8, 1.2, R)  # latency factors
        if trial == 7:
            out[0, 0] = np.nan
        wsum = float(out[8].sum()) if trial != 3 else 0.0
        sig_ref, judged_ref, _ = FW._signature_reference(plane, out, wsum, None)
        assert not judged_ref
        sparse = sig_ref.copy()
        sparse[RNG.integers(0, sparse.size, 2)] *= 1.5  # a few entries moved: a few services dirty
        dense = sig_ref * RNG.choice([0.9, 0.99, 1.0, 1.01, 1.2], sig_ref.size)
        for prev in (None, np.zeros(3), sparse, dense):
            want_sig, want_judged, want_moved = FW._signature_reference(plane, out, wsum, prev)
            sig, moved = np.full(sig_ref.size, 7.0), np.full(sig_ref.size, 7, dtype=np.uint8)
            judged = window_signature(
                out,
                wsum,
                plane.breaker_open,
                prev,
                plane._last.get("hold"),
                plane._last.get("cpu_frame"),
                sig,
                moved,
            )
            np.testing.assert_array_equal(sig, want_sig)
            assert judged == want_judged
            if judged:
                np.testing.assert_array_equal(moved, want_moved)
                want = FW._dirty_reference(plane, want_moved.view(bool), R)
                plane.fused_close = True
                got = FW._dirty(plane, moved, R)
                plane.fused_close = False
                for g, w in zip(got, want, strict=True):
                    assert g.dtype == w.dtype == bool
                    np.testing.assert_array_equal(g, w)
                seen["moved"] |= bool(moved.any())
                seen["still"] |= not moved.all()
                seen["kept"] |= bool(got[2].any()) and not got[2].all()
        plane._last["cpu_frame"] = RNG.uniform(0.0, 0.002, R)
        plane._last["cpu_frame"][1::5] = 0.0
        stretch = out[4] * RNG.choice([0.5, 1.0, 4.0, 100.0], R)
        want_ps = FW._ps_shape(plane, stretch)
        plane.fused_close = True
        got_ps = FW._ps_shape(plane, stretch, out[11] * 0 + 1.0)
        assert (got_ps[0] is None) == (want_ps[0] is None)
        for g, w in zip(got_ps, want_ps, strict=True):
            if w is not None:
                np.testing.assert_array_equal(g, w)
        seen["on"] |= got_ps[0] is not None and bool((got_ps[0] > 0).any())
    assert all(seen.values()), seen
