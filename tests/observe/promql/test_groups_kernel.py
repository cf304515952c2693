"""The compiled per-group work over many steps. Aggregations' counts, first rows and sums
(``_groups.group_steps``) against ``bincount``. ``histogram_quantile`` (``_groups.bucket_quantiles_sorted``,
behind ``funcs.bucket_quantiles``) against its NumPy reference (``bucket_quantiles_numpy``)
and the scalar ``bucket_quantile`` (Prometheus' ``bucketQuantile``), bit for bit: buckets out
of order, counts that fall or move by float noise, zeros and -0.0, empty histograms, bounds at
or below zero, quantiles outside [0, 1] and NaN."""

from __future__ import annotations

import numpy as np
import pytest

from devopsim.observe.promql._groups import group_steps
from devopsim.observe.promql.ast import Aggregate, parse
from devopsim.observe.promql.funcs import bucket_quantile, bucket_quantiles, bucket_quantiles_numpy
from devopsim.observe.promql.labels import LabelTable
from devopsim.observe.promql.steps import StepEvaluator, Steps


def _bits(x: np.ndarray) -> list[int]:
    out: list[int] = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64).tolist()
    return out


def _case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nb = int(rng.integers(1, 14))
    le = np.unique(rng.choice([-1.0, 0.0, 0.005, 0.01, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0], nb))
    if rng.random() < 0.85:
        le = np.append(le, np.inf)
    rng.shuffle(le)
    nc = int(rng.integers(0, 30))
    inc = rng.choice([0.0, 0.0, 1.0, 3.0, 1e-14, 0.5], (le.size, nc))
    counts = np.cumsum(inc, axis=0)[np.argsort(np.argsort(le))]  # cumulative in bound order
    for _ in range(int(rng.integers(0, 4))):  # falls, noise, zeros and -0.0
        if counts.size:
            i, k = int(rng.integers(0, le.size)), int(rng.integers(0, nc)) if nc else 0
            if nc:
                counts[i, k] = rng.choice([0.0, -0.0, counts[i, k] * (1 + 1e-13), counts[i, k] - 2.0, 1e-320])
    q = rng.choice([0.0, 0.5, 0.9, 0.99, 1.0, -0.5, 1.5, np.nan], nc)
    return q, le, counts


@pytest.mark.parametrize("seed", range(40))
def test_compiled_bucket_quantiles_equal_the_reference_and_the_scalar(seed: int) -> None:
    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(20):
        q, le, counts = _case(rng)
        with np.errstate(all="ignore"):
            got = bucket_quantiles(q, le, counts)
            want = bucket_quantiles_numpy(q, le, counts)
        assert _bits(got) == _bits(want)
        for k in range(q.size):
            one = bucket_quantile(
                float(q[k]), [(float(a), float(c)) for a, c in zip(le, counts[:, k], strict=True)]
            )
            assert _bits(np.array([one])) == _bits(got[k : k + 1])
        compared += q.size
    assert compared > 0


def test_hand_computed_quantile() -> None:
    # buckets le 1, 2, +Inf with 10, 30, 40: the median (rank 20) lies in (1, 2]: 1 + 1 * 10/20
    q = np.array([0.5, 0.25])
    le = np.array([2.0, np.inf, 1.0])
    counts = np.array([[30.0, 30.0], [40.0, 40.0], [10.0, 10.0]])
    assert bucket_quantiles(q, le, counts).tolist() == [1.5, 1.0]


@pytest.mark.parametrize("seed", range(30))
def test_compiled_group_counts_and_sums_equal_bincount(seed: int) -> None:
    """``StepEvaluator._aggregate`` with the compiled per-group counts, first rows and sums
    (``_groups.group_steps``) against its reference (``bincount`` and ``minimum.at``): the
    same groups, presence, order and bits, with NaN, infinities, -0.0 and sums that cancel
    (summed again exactly)."""
    rng = np.random.default_rng(seed)
    for _ in range(8):
        labels = LabelTable()
        ns, nk = int(rng.integers(0, 12)), int(rng.integers(1, 30))
        lids = np.array(
            [
                labels.intern((("__name__", "x"), ("g", str(int(rng.integers(0, 3)))), ("i", str(j))))
                for j in range(ns)
            ],
            dtype=np.int64,
        )
        v = rng.choice([1.0, 2.5, -1.0, 1e17, -1e17, 0.0, -0.0, np.nan, np.inf, 3e-9], (ns, nk))
        ok = rng.random((ns, nk)) < 0.7
        vec = Steps(lids, v, ok)
        for expr in ("sum by (g) (x)", "avg by (g) (x)", "count by (g) (x)", "sum without (i) (x)", "sum(x)"):
            node = parse(expr)
            assert isinstance(node, Aggregate)
            got = []
            for fused in (True, False):
                ev = StepEvaluator(labels, None, np.arange(nk, dtype=np.int64) * 1000, 300_000, False)  # type: ignore[arg-type]
                ev.fused = fused
                ev._vector = lambda n, vec=vec: vec  # type: ignore[method-assign,misc]
                with np.errstate(all="ignore"):
                    got.append(ev._aggregate(node))
            a, b = got
            assert a.lids.tolist() == b.lids.tolist()
            assert a.ok.tolist() == b.ok.tolist()
            assert _bits(a.v) == _bits(b.v)
            assert (a.order is None) == (b.order is None)
            if a.order is not None and b.order is not None:
                assert a.order.tolist() == b.order.tolist()


def test_group_steps_refuses_groups_out_of_range() -> None:
    ok = np.ones((2, 1), np.uint8)
    v = np.ones((2, 1))
    outs = (np.zeros((1, 1)), np.zeros((1, 1), np.int64), np.zeros((1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError):
        group_steps(np.array([0, 1], np.int64), ok, v, *outs)
