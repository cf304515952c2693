"""The compiled per-tick flow arithmetic (``_flows``) against the NumPy reference in ``routing``.

``FlowRouting`` keeps its NumPy code (``_set_holding_numpy``, ``_callee_means_numpy``,
``_flow_mix_numpy``; ``routing.USE_KERNEL = False`` runs it). The kernels keep NumPy's
order of every sum and product, so the results must be equal bit for bit: at every tick of
the checkout and global examples (each call runs both on the same state), and on random
call graphs with sequential and parallel calls, idle services and timeouts.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from devopsim import simulate
from devopsim.engine.flow import routing
from devopsim.engine.flow.routing import FlowRouting

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if not (EXAMPLES / "checkout.yaml").exists():
    EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"


def _same(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), strict=True)


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Every kernel call on the plane also runs the NumPy reference on the same state."""
    counts = {"hold": 0, "callee": 0, "mix": 0}

    def both(name: str, ref: Callable[..., Any], ker: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: FlowRouting, *args: Any) -> Any:
            before = (self.hold_fixed, self.hold_fixed_var) if hasattr(self, "hold_fixed") else None
            want = ref(self, *args)
            want_h = (self.hold_fixed.copy(), self.hold_fixed_var.copy())
            if before is not None:
                self.hold_fixed, self.hold_fixed_var = before
            got = ker(self, *args)
            _same(self.hold_fixed, want_h[0])
            _same(self.hold_fixed_var, want_h[1])
            if want is not None:
                assert len(got) == len(want)
                for g, w in zip(got, want, strict=True):
                    _same(g, w)
            counts[name] += 1
            return got

        return run

    monkeypatch.setattr(
        FlowRouting, "_set_holding", both("hold", FlowRouting._set_holding_numpy, FlowRouting._set_holding)
    )
    monkeypatch.setattr(
        FlowRouting,
        "_callee_means",
        both("callee", FlowRouting._callee_means_numpy, FlowRouting._callee_means),
    )
    monkeypatch.setattr(
        FlowRouting, "_flow_mix", both("mix", FlowRouting._flow_mix_numpy, FlowRouting._flow_mix)
    )
    yield counts


@pytest.mark.parametrize("example", ["checkout.yaml", "global.yaml"])
def test_examples_every_tick(checked: dict[str, int], example: str) -> None:
    simulate(str(EXAMPLES / example), overrides=["duration=30m"])
    assert checked["mix"] > 10 and checked["callee"] > 10 and checked["hold"] > 0


def _random_routing(rng: np.random.Generator) -> FlowRouting:
    """A routing with a random call graph (levels, sequential and parallel calls)."""
    E, S = int(rng.integers(3, 25)), int(rng.integers(1, 8))
    ep_svc = np.sort(rng.integers(0, S, E))
    ep_svc[:S] = np.arange(S) if E >= S else ep_svc[:S]
    ep_svc = np.sort(ep_svc)
    depth = rng.integers(0, 4, E)
    src, dst = [], []
    for e in range(E):
        for f in range(E):
            if depth[f] == depth[e] + 1 and rng.random() < 0.5:
                src.append(e)
                dst.append(f)
    src_a, dst_a = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
    levels = [np.nonzero(depth[src_a] == d)[0] for d in range(4)] if src else []
    g = SimpleNamespace(
        edge_src=src_a,
        edge_dst=dst_a,
        levels=[lv for lv in levels if lv.size],
        cpu_mean=rng.exponential(0.01, E),
        cpu_var=rng.exponential(1e-4, E),
        wait_mean=np.where(rng.random(E) < 0.3, rng.exponential(0.005, E), 0.0),
        wait_var=np.where(rng.random(E) < 0.3, rng.exponential(1e-5, E), 0.0),
    )
    r = FlowRouting()
    r.graph = g  # type: ignore[assignment]
    r.E, r.S = E, S
    r.ep_svc = ep_svc
    r.timeout = np.where(rng.random(E) < 0.5, rng.uniform(0.001, 0.05, E), 0.0)
    r.retry_mult = 1.0 + rng.random(E) * (rng.random(E) < 0.3)
    r.call_mean, r.call_var = rng.exponential(0.02, E), rng.exponential(1e-4, E)
    r.per_call, r.reach_frac = rng.random(E), rng.random(E)
    r.coef = rng.random(src_a.size)
    r.entry = rng.random((E, 3)) * (rng.random((E, 3)) < 0.4)
    r.admit = np.where(rng.random(S) < 0.3, rng.random(S), 1.0)
    r._n_ep = np.bincount(ep_svc, minlength=S)
    r._ep_tmo = r.timeout.copy()
    r._all_tmo = np.bincount(ep_svc, weights=(r.timeout > 0).astype(float), minlength=S) == r._n_ep
    # Call parts: sequential (caller, callee, k) and parallel groups of 1-4 branches.
    seq = [
        (int(s), int(d), float(rng.random())) for s, d in zip(src_a, dst_a, strict=True) if rng.random() < 0.5
    ]
    par, group, psrc = [], [], []
    for e in range(E):
        for _ in range(int(rng.integers(0, 3))):
            psrc.append(e)
            for _b in range(int(rng.integers(1, 5))):
                par.append((int(rng.integers(0, E)), float(rng.random())))
                group.append(len(psrc) - 1)
    r._seq = np.array(seq, dtype=np.float64).reshape(-1, 3)
    r._par = np.array(par, dtype=np.float64).reshape(-1, 2)
    r._par_group = np.array(group, dtype=np.int64)
    r._par_src = np.array(psrc, dtype=np.int64)
    r._par_starts = np.flatnonzero(np.r_[True, np.diff(r._par_group) != 0]) if par else np.empty(0, np.int64)
    r._kernel_arrays()
    r._set_holding_numpy(r.call_mean, r.call_var)
    # The last tick's replicas: some live, some services without any.
    R = int(rng.integers(1, 12))
    svc = rng.integers(0, S, R)
    r._last = {
        "live": np.flatnonzero(rng.random(R) < 0.7),
        "svc": svc,
        "lam": rng.exponential(10.0, R) * (rng.random(R) < 0.8),
        "mwait": rng.exponential(0.01, R),
        "k": 1.0 + rng.random(R),
    }
    if rng.random() < 0.5:
        r._net_delay, r._net_loss = rng.random(S) * 0.01, rng.random(S) * 0.5
    return r


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = _random_routing(rng)
    lam_cls = rng.exponential(50.0, 3)
    r._set_holding_numpy(r.call_mean * 1.5, r.call_var)
    want_h = (r.hold_fixed, r.hold_fixed_var)
    r._set_holding(r.call_mean * 1.5, r.call_var)
    _same(r.hold_fixed, want_h[0])
    _same(r.hold_fixed_var, want_h[1])
    start = (r.hold_fixed, r.hold_fixed_var)  # the reference makes new arrays, never writes these
    r._callee_means_numpy()
    want_h = (r.hold_fixed, r.hold_fixed_var)
    r.hold_fixed, r.hold_fixed_var = start
    r._callee_means()
    _same(r.hold_fixed, want_h[0])
    _same(r.hold_fixed_var, want_h[1])
    want = r._flow_mix_numpy(lam_cls)
    got = r._flow_mix(lam_cls)
    for g, w in zip(got, want, strict=True):
        _same(g, w)
    assert np.all(np.isfinite(got[4]))


def test_reference_flag_runs_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """``USE_KERNEL = False`` runs the reference (what the checks above compare against)."""
    monkeypatch.setattr(routing, "USE_KERNEL", False)
    r = _random_routing(np.random.default_rng(1))
    calls: list[int] = []

    def ref(self: FlowRouting, lam: np.ndarray) -> tuple[np.ndarray, ...]:
        calls.append(1)
        return ()

    monkeypatch.setattr(FlowRouting, "_flow_mix_numpy", ref)
    r._flow_mix(np.ones(3))
    assert calls == [1]
