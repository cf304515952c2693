"""The compiled ``rate``/``increase``/``delta`` (``_extrapolate.extrapolate``, behind
``rangefuncs._extrapolated``) against its NumPy reference (``_extrapolated_numpy``), bit for
bit, on windows with counter resets, NaN, zeros, -0.0, repeated times and windows too short
to extrapolate; both extrapolation rules (Prometheus 2 and 3), per-window and single ends;
and against a hand computation of Prometheus' extrapolation. The pass over many steps at once
(``extrapolate_steps``, behind ``StepEvaluator``) against the step evaluator's searches and
``extrapolate``."""

from __future__ import annotations

import numpy as np
import pytest

from devopsim.observe.promql._extrapolate import extrapolate_steps
from devopsim.observe.promql.ast import Call, parse
from devopsim.observe.promql.blocks import Block, Window, _make_block
from devopsim.observe.promql.labels import LabelTable
from devopsim.observe.promql.rangefuncs import _extrapolated, _extrapolated_numpy
from devopsim.observe.promql.steps import StepEvaluator, Steps


def _bits(x: np.ndarray) -> list[int]:
    out: list[int] = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64).tolist()
    return out


def test_hand_computed_rate_with_a_reset() -> None:
    # samples at 10, 20, 30, 40 s: 5, 8, 2, 6 (a reset: 8 lost); window (0, 45 s]
    t = np.array([10_000, 20_000, 30_000, 40_000], np.int64)
    v = np.array([5.0, 8.0, 2.0, 6.0])
    w = Window(np.array([3]), t, v, np.array([0]), np.array([4]), 45_000)
    # increase 6 - 5 + 8 = 9 over 30 s sampled; avg interval 10 s, threshold 11 s;
    # start gap 10 s < 11 s, but a counter is not extrapolated below zero: 30 * 5 / 9 = 16.7 s
    # is later than the start, so 10 s is kept; end gap 5 s. 9 * (30 + 10 + 5) / 30 = 13.5
    lids, inc = _extrapolated(w, 45_000, counter=True, is_rate=False, v2=False)
    assert lids.tolist() == [3] and inc.tolist() == [13.5]
    _, rate = _extrapolated(w, 45_000, counter=True, is_rate=True, v2=False)
    assert rate.tolist() == [13.5 / 45.0]


def _case(rng: np.random.Generator, per_window_end: bool) -> Window:
    n = int(rng.integers(0, 80))
    t = np.cumsum(rng.choice([0, 5_000, 15_000, 15_001], n)).astype(np.int64)
    v = np.cumsum(rng.integers(0, 5, n)).astype(np.float64)
    for i in rng.choice(max(n, 1), int(rng.integers(0, 5))).tolist():
        if i < n:
            v[i] = rng.choice([0.0, -0.0, -2.0, np.nan, np.inf, 3.0])
    ncut = min(n + 1, 2 * int(rng.integers(0, 10))) // 2 * 2
    cuts = np.sort(rng.choice(np.arange(n + 1), ncut, replace=False))
    s, e = cuts[0::2].astype(np.int64), cuts[1::2].astype(np.int64)
    last = t[np.maximum(e - 1, 0)] if n else np.zeros(s.size, np.int64)
    ends = last + rng.integers(0, 40_000, s.size)
    ts: int | np.ndarray = ends.astype(np.int64) if per_window_end else int(ends.max(initial=0))
    return Window(np.arange(s.size, dtype=np.int64) + 100, t, v, s, e, ts)


@pytest.mark.parametrize("seed", range(30))
def test_compiled_extrapolation_equals_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(10):
        w = _case(rng, per_window_end=bool(rng.random() < 0.7))
        range_ms = int(rng.choice([30_000, 60_000, 300_000]))
        for counter, is_rate in ((True, True), (True, False), (False, False)):
            for v2 in (False, True):
                with np.errstate(all="ignore"):  # as apply_range_function calls them
                    lids, got = _extrapolated(w, range_ms, counter, is_rate, v2)
                    ref_lids, want = _extrapolated_numpy(w, range_ms, counter, is_rate, v2)
                assert lids.tolist() == ref_lids.tolist()
                assert _bits(got) == _bits(want)
                compared += got.size
    assert compared > 0


class _OneBlock:
    """A stand-in for ``Selection`` that answers every selector with one block."""

    def __init__(self, block: Block) -> None:
        self.blk = block
        self.store = type("Store", (), {"has_downsampled": False})()

    def block(self, *args: object, **kwargs: object) -> Block:
        return self.blk


def _series_block(rng: np.random.Generator, labels: LabelTable) -> Block:
    """A block of a few series (some empty, some with one sample), times with repeats and
    gaps, counters with resets, NaN, inf, zeros and -0.0."""
    nser = int(rng.integers(1, 7))
    rank, ts, vs = [], [], []
    for k in range(nser):
        n = int(rng.choice([0, 1, 2, int(rng.integers(3, 60))]))
        t = 1_000 + np.cumsum(rng.choice([0, 5_000, 15_000, 15_001, 60_000], n)).astype(np.int64)
        v = np.cumsum(rng.integers(0, 5, n)).astype(np.float64)
        for i in rng.choice(max(n, 1), int(rng.integers(0, 5))).tolist():
            if i < n:
                v[i] = rng.choice([0.0, -0.0, -2.0, np.nan, np.inf, 3.0, 1.0])
        rank.append(np.full(n, k, np.int64))
        ts.append(t)
        vs.append(v)
    lids = np.array([labels.intern((("__name__", "x"), ("i", str(k)))) for k in range(nser)], np.int64)
    return _make_block(lids, np.concatenate(rank), np.concatenate(ts), np.concatenate(vs))


@pytest.mark.parametrize("seed", range(40))
def test_steps_kernel_equals_the_searches_and_window_kernel(seed: int) -> None:
    """``StepEvaluator`` with the compiled pass over steps (``extrapolate_steps``) against its
    reference (the (series x steps) searches, windows and ``extrapolate``): same rows, same
    presence, same bits, for evenly and unevenly spaced steps, ranges that are and are not
    multiples of the spacing, both window rules."""
    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(6):
        labels = LabelTable()
        blk = _series_block(rng, labels)
        top = int(blk.t.max()) if blk.t.size else 10_000
        rng_s = str(rng.choice(["30s", "1m", "5m", "47s"]))
        range_ms = {"30s": 30_000, "1m": 60_000, "5m": 300_000, "47s": 47_000}[rng_s]
        if rng.random() < 0.5:  # evenly spaced, often on sample times (windows' edges on samples)
            gap = int(rng.choice([15_000, 30_000, 60_000]))
            first = int(rng.choice([1_000, 16_000, int(rng.integers(0, 30_000))]))
            steps = np.arange(first, top + 120_000, gap, dtype=np.int64)
        else:  # uneven, some on sample times or a range after one
            some = rng.integers(0, top + 120_000, int(rng.integers(1, 40)))
            on = rng.choice(blk.t, int(rng.integers(0, 10))) if blk.t.size else np.zeros(0, np.int64)
            steps = np.unique(np.concatenate((some, on, on + range_ms))).astype(np.int64)
        for fn in ("rate", "increase", "delta"):
            node = parse(f"{fn}(x[{rng_s}])")
            assert isinstance(node, Call)
            for v2 in (False, True):
                got: list[Steps] = []
                for fused in (True, False):
                    ev = StepEvaluator(labels, _OneBlock(blk), steps, 300_000, v2)  # type: ignore[arg-type]
                    ev.fused = fused
                    with np.errstate(all="ignore"):
                        out = ev.eval(node)
                    assert isinstance(out, Steps)
                    got.append(out)
                a, b = got
                assert a.lids.tolist() == b.lids.tolist()
                assert a.ok.tolist() == b.ok.tolist()
                assert _bits(np.where(a.ok, a.v, 0.0)) == _bits(np.where(b.ok, b.v, 0.0))
                assert _bits(a.v) == _bits(b.v)
                compared += int(a.ok.sum())
    assert compared > 0


def test_steps_kernel_refuses_falling_steps_and_rows_outside() -> None:
    t = np.array([1_000, 2_000, 3_000], np.int64)
    v = np.array([1.0, 2.0, 3.0])
    off = np.array([0, 3], np.int64)
    out, ok = np.zeros((1, 2)), np.zeros((1, 2), np.uint8)
    with pytest.raises(ValueError):
        extrapolate_steps(
            t, v, off, np.array([0], np.int64), np.array([5, 4], np.int64), 10, True, True, False, out, ok
        )
    with pytest.raises(ValueError):
        extrapolate_steps(
            t, v, off, np.array([1], np.int64), np.array([4, 5], np.int64), 10, True, True, False, out, ok
        )
    extrapolate_steps(
        t,
        v,
        off,
        np.array([0], np.int64),
        np.array([2_500, 3_000], np.int64),
        5_000,
        False,
        False,
        False,
        out,
        ok,
    )
    assert ok.tolist() == [[1, 1]]
