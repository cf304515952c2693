"""The compiled composition kernel against its reference, the NumPy path of ``Composer``.

The two draw different random numbers, so they are compared statistically on the same
queue states: outcome shares (binomial tolerance from the sample size), means (from the
samples' variances) and whole distributions (two-sample Kolmogorov-Smirnov bound) of the
call durations, server responses, queue waits and holding times, and the attempt counts.
Every feature the composition models has a case: timeouts, retries with backoff,
rejection, network loss, delay and jitter, a backlog capped by the timeout, parallel calls
made with probabilities below 1, injected errors, open breakers, a callee with no replica,
unequal replica weights. The kernel's stratified rates are checked against the exact
probabilities (within one sample), as the reference's are.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from devopsim.engine.flow.graph import CallGraph
from devopsim.engine.flow.latency import CallSamples, Composer, HopState
from devopsim.engine.request import layout as L
from devopsim.engine.streams import Streams
from devopsim.model.program import Program, compile_program
from devopsim.scenario.loader import load_scenario

K = 8000
SCENARIO = """
duration: 1m
plane: flow
traffic: {rate: 10/s, classes: [{name: c, entry: front.op}]}
services:
  front:
    replicas: 3
    endpoints:
      op:
        timeout: 80ms
        retries: {attempts: 3, backoff: 5ms}
        steps:
          - work: lognormal(mean=4ms, cv=1)
          - wait: exp(1ms)
          - parallel:
              - {call: mid.op, probability: 60%}
              - {call: leaf.op}
          - {call: leaf.op, probability: 30%}
  mid:
    replicas: 2
    endpoints:
      op:
        steps:
          - work: exp(3ms)
          - call: leaf.op
  leaf:
    replicas: 2
    endpoints:
      op:
        steps:
          - work: exp(2ms)
"""
FRONT, MID, LEAF = 0, 1, 2  # endpoints, and their services
SLOTS = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6])]
R = 7


@pytest.fixture(scope="module")
def program() -> Program:
    return compile_program(load_scenario(text=SCENARIO).scenario)


def _hop() -> HopState:
    """Three front replicas of unequal weight, queues that wait now and then."""
    z = np.zeros(R)
    return HopState(
        weight=np.array([1.0, 2.0, 5.0, 1.0, 1.0, 3.0, 1.0]),
        pwait=np.array([0.2, 0.4, 0.1, 0.3, 0.3, 0.05, 0.5]),
        theta=np.array([200.0, 100.0, 300.0, 150.0, 150.0, 400.0, 80.0]),
        bwait=np.array([0.0, 0.002, 0.0, 0.0, 0.0, 0.0, 0.001]),
        stretch=np.array([1.0, 1.5, 1.2, 1.0, 2.0, 1.0, 1.0]),
        reject=z.copy(),
        slack=z.copy(),
        drop=z.copy(),
        err_rate=z.copy(),
        breaker_open=np.zeros(3),
    )


def _base(hop: HopState, comp: Composer) -> None:
    """Replica weights, waits, work and wait steps, parallel calls made with p < 1."""


def _timeouts(hop: HopState, comp: Composer) -> None:
    """A tight timeout with retries and backoff; slow waits on one front replica."""
    comp.timeout = np.array([0.025, 0.0, 0.0])
    comp.backoff = np.array([0.01, 0.0, 0.0])
    comp.maxbackoff = np.array([0.015, 0.0, 0.0])
    hop.bwait[1] = 0.012
    hop.pwait[2] = 0.6
    hop.theta[2] = 60.0


def _rejection(hop: HopState, comp: Composer) -> None:
    """Full queues refuse arrivals (front retries them; mid's failures come back downstream)."""
    hop.reject[:] = [0.3, 0.0, 0.1, 0.2, 0.0, 0.05, 0.0]


def _network(hop: HopState, comp: Composer) -> None:
    """Network delay, normal jitter and loss on the way to front and leaf."""
    comp.net_delay = np.array([0.003, 0.0, 0.001])
    comp.net_jitter = np.array([0.002, 0.0, 0.0005])
    comp.net_loss = np.array([0.07, 0.0, 0.02])
    comp.timeout = np.array([0.05, 0.0, 0.0])


def _capped(hop: HopState, comp: Composer) -> None:
    """A backlog as old as the timeout: some are dropped, the served have spare time."""
    comp.timeout = np.array([0.05, 0.0, 0.0])
    hop.bwait[0] = 0.05
    hop.slack[0] = 40.0
    hop.drop[0] = 0.25
    hop.bwait[5] = 0.004
    hop.slack[5] = 500.0
    hop.drop[5] = 0.1


def _injected(hop: HopState, comp: Composer) -> None:
    """Versions that inject errors (retried by front)."""
    hop.err_rate[:] = [0.02, 0.0, 0.1, 0.05, 0.05, 0.01, 0.03]


def _breakers(hop: HopState, comp: Composer) -> None:
    """Breakers open for part of the window (front's retries are never taken on them)."""
    hop.breaker_open[:] = [0.25, 0.4, 0.0]
    hop.err_rate[5] = 0.2


def _unavailable(hop: HopState, comp: Composer) -> None:
    """leaf has no replica: every call to it fails, mid fails downstream, front retries."""
    hop.weight[3] = 0.0  # and one of mid's replicas takes no traffic


def _single(hop: HopState, comp: Composer) -> None:
    """leaf down to one replica that never waits (nothing to draw for its replica)."""
    hop.pwait[5] = 0.0
    hop.bwait[5] = 0.0005


def _shared_cpu(hop: HopState, comp: Composer) -> None:
    """mid's and leaf's replicas share a fraction of a core: their work steps take a spread
    around the mean stretch (processor sharing), one mid replica saturated (no spread)."""
    hop.ps_rho = np.array([0.0, 0.0, 0.0, 0.8, 0.0, 0.6, 0.9])
    hop.ps_mu = np.array([0.0, 0.0, 0.0, 125.0, 0.0, 200.0, 100.0])
    hop.ps_scale = np.array([0.0, 0.0, 0.0, 4.0, 0.0, 2.0, 4.0])
    hop.stretch[[3, 4, 5, 6]] = [20.0, 64.0, 5.0, 40.0]


CASES: dict[str, Callable[[HopState, Composer], None]] = {
    "base": _base,
    "timeouts": _timeouts,
    "rejection": _rejection,
    "network": _network,
    "capped": _capped,
    "injected": _injected,
    "breakers": _breakers,
    "unavailable": _unavailable,
    "single": _single,
    "shared_cpu": _shared_cpu,
}
# Services' ready replicas where a case changes them.
READY: dict[str, dict[int, list[int]]] = {"unavailable": {LEAF: []}, "single": {LEAF: [5]}}


def _compose(program: Program, case: str, reference: bool, seed: int = 3) -> dict[int, CallSamples]:
    comp = Composer(program, CallGraph.build(program), Streams(seed), K, reference=reference)
    hop = _hop()
    CASES[case](hop, comp)
    ready = [s.copy() for s in SLOTS]
    for svc, slots in READY.get(case, {}).items():
        ready[svc] = np.asarray(slots, dtype=np.int64)
    return comp.compose(hop, ready)


def _ks(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (ties handled: both ECDFs right-continuous)."""
    grid = np.union1d(x, y)
    fx = np.searchsorted(np.sort(x), grid, side="right") / x.size
    fy = np.searchsorted(np.sort(y), grid, side="right") / y.size
    return float(np.max(np.abs(fx - fy)))


def _same_distribution(x: np.ndarray, y: np.ndarray, what: str) -> None:
    assert x.size > 0 and y.size > 0, what
    n, m = x.size, y.size
    # KS at a level of about 1e-5 (c = sqrt(-ln(a/2) / 2)), and the means at 5 sigma.
    assert _ks(x, y) <= 2.5 * np.sqrt((n + m) / (n * m)), what
    se = np.sqrt(x.var() / n + y.var() / m)
    assert abs(x.mean() - y.mean()) <= 5.0 * se + 1e-12, what


def _same_share(a: float, b: float, n: float, what: str) -> None:
    p = 0.5 * (a + b)
    assert abs(a - b) <= 5.0 * np.sqrt(max(p * (1 - p), 1.0 / n) * 2.0 / n) + 2.0 / n, what


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_matches_reference(program: Program, case: str) -> None:
    kern = _compose(program, case, reference=False)
    ref = _compose(program, case, reference=True)
    for e in (LEAF, MID, FRONT):
        a, b = kern[e], ref[e]
        tag = f"{case}: endpoint {e}"
        assert a.duration.shape == b.duration.shape == (K,)
        for code in range(-1, L.N_ERR):
            _same_share(
                float(np.mean(a.outcome == code)), float(np.mean(b.outcome == code)), K, f"{tag} {code}"
            )
        _same_distribution(a.duration, b.duration, f"{tag} duration")
        assert np.all(a.duration >= 0.0)
        # Started attempts: as many per call, the same server, wait and holding times.
        assert a.server.size == a.server_ok.size == a.wait.size == a.service.size
        assert np.all(np.isfinite(a.server)) and np.all(np.isfinite(b.server))
        if b.server.size < 50:
            assert a.server.size < 100, tag
            continue
        att = max(b.attempts, 1.0)
        _same_share(a.server.size / (K * a.attempts), b.server.size / (K * b.attempts), K, f"{tag} started")
        for name in ("server", "wait", "service"):
            _same_distribution(getattr(a, name), getattr(b, name), f"{tag} {name}")
        np.testing.assert_allclose(a.server, a.wait + a.service, rtol=1e-12, atol=1e-15)
        _same_share(a.attempts - 1.0, b.attempts - 1.0, K, f"{tag} attempts")
        _same_share(a.retry_fail, b.retry_fail, K * att, f"{tag} retry_fail")
        _same_share(a.started_fail, b.started_fail, b.server.size, f"{tag} started_fail")
        _same_share(float(np.mean(a.server_ok)), float(np.mean(b.server_ok)), b.server.size, f"{tag} ok")


def test_cases_exercise_their_feature(program: Program) -> None:
    """Each case's feature shows in the kernel's samples (the comparison is not vacuous)."""
    share = {
        c: {
            e: np.bincount(cs.outcome + 1, minlength=L.N_ERR + 1) / K
            for e, cs in _compose(program, c, False).items()
        }
        for c in CASES
    }
    assert share["timeouts"][FRONT][1 + L.ERR_TIMEOUT] > 0.01
    assert share["rejection"][LEAF][1 + L.ERR_REJECTED] > 0.01
    assert share["network"][FRONT][1 + L.ERR_UNAVAILABLE] > 0.0001  # lost on every attempt
    capped = _compose(program, "capped", False)
    assert capped[FRONT].attempts > 1.02  # dropped at the head of the queue: timed out, retried
    leaf_wait = capped[LEAF].wait
    assert np.mean(leaf_wait == 0.004) > 0.03 and np.mean((leaf_wait > 0) & (leaf_wait < 0.004)) > 0.3
    assert share["injected"][MID][1 + L.ERR_INJECTED] > 0.01
    assert share["breakers"][MID][1 + L.ERR_REJECTED] > 0.3
    assert share["unavailable"][LEAF][1 + L.ERR_UNAVAILABLE] == 1.0
    assert share["unavailable"][MID][1 + L.ERR_DOWNSTREAM] == 1.0
    # Under processor sharing a work step's time spreads around its mean: leaf's holding times
    # vary more than its exponential work stretched alike would (CV 1).
    shared = _compose(program, "shared_cpu", False)
    alike = _compose(program, "base", False)
    svc_shared, svc_alike = shared[LEAF].service, alike[LEAF].service
    assert np.std(svc_shared) / np.mean(svc_shared) > 1.3 * np.std(svc_alike) / np.mean(svc_alike)
    kern = _compose(program, "timeouts", False)
    assert kern[FRONT].attempts > 1.01
    assert np.max(kern[FRONT].duration) >= 2 * 0.025  # a retried call waits its backoff too


def test_stratified_rates_are_exact(program: Program) -> None:
    """Rates decided by a probability come out within one sample of it."""
    comp = Composer(program, CallGraph.build(program), Streams(11), K)
    hop = _hop()
    hop.err_rate[5:] = 0.0137  # leaf: injected errors only
    hop.pwait[:] = 0.0
    hop.bwait[3:5] = [0.001, 0.002]  # mid's replica shows in its wait
    hop.weight[3:5] = [1.0, 3.0]
    calls = comp.compose(hop, [s.copy() for s in SLOTS])
    leaf, mid = calls[LEAF], calls[MID]
    assert abs(float(np.mean(leaf.outcome == L.ERR_INJECTED)) - 0.0137) <= 1.0 / K
    assert abs(float(np.mean(mid.wait == 0.002)) - 0.75) <= 1.0 / K
    # front calls mid with probability 0.6: with every mid call refused, each attempt that
    # called it fails downstream and is retried (3 retries: up to 4 attempts).
    hop.reject[3:5] = 1.0
    hop.err_rate[:] = 0.0
    comp.timeout = np.zeros(3)
    calls = comp.compose(hop, [s.copy() for s in SLOTS])
    assert np.all(calls[MID].outcome == L.ERR_REJECTED)
    assert int(comp.retries[FRONT]) == 3
    assert abs(float(np.mean(calls[FRONT].outcome == L.ERR_DOWNSTREAM)) - 0.6**4) <= 4.0 / K
    assert abs(calls[FRONT].attempts - (1.0 + 0.6 + 0.6**2 + 0.6**3)) <= 4.0 / K
    comp.retries = np.zeros(3, dtype=np.int64)
    calls = comp.compose(hop, [s.copy() for s in SLOTS])
    assert abs(float(np.mean(calls[FRONT].outcome == L.ERR_DOWNSTREAM)) - 0.6) <= 1.0 / K


def test_kernel_is_deterministic(program: Program) -> None:
    a = _compose(program, "network", reference=False, seed=5)
    b = _compose(program, "network", reference=False, seed=5)
    c = _compose(program, "network", reference=False, seed=6)
    for e in a:
        np.testing.assert_array_equal(a[e].duration, b[e].duration)
        np.testing.assert_array_equal(a[e].server, b[e].server)
    assert not np.array_equal(a[FRONT].duration, c[FRONT].duration)


def test_one_stage_journey_is_its_call(program: Program) -> None:
    """A class whose request is one call takes that call's samples (the general path's result:
    0 + duration, its outcome); front-door delay and loss change copies, not the call's."""
    comp = Composer(program, CallGraph.build(program), Streams(4), K)
    calls = comp.compose(_hop(), [s.copy() for s in SLOTS])
    cs = calls[FRONT]
    before = cs.duration.copy(), cs.outcome.copy()
    (dur, out), (dur2, out2) = comp.journeys(calls, [[FRONT], [FRONT, MID]])
    np.testing.assert_array_equal(dur, cs.duration)
    np.testing.assert_array_equal(out, cs.outcome)
    # Two stages: the first failure's outcome, durations added up to it.
    assert np.all(dur2 >= 0.0) and np.mean(out2 != L.OK) >= np.mean(out != L.OK)
    comp.class_delay = np.array([0.01, 0.0])
    comp.class_loss = np.array([0.25, 0.0])
    (dur, out), _ = comp.journeys(calls, [[FRONT], [FRONT, MID]])
    n = round(0.25 * K)
    assert np.all(out[:n] == L.ERR_UNAVAILABLE) and np.all(dur[:n] == 0.0)
    np.testing.assert_allclose(dur[n:], cs.duration[n:] + 0.01)
    np.testing.assert_array_equal(out[n:], cs.outcome[n:])
    np.testing.assert_array_equal(cs.duration, before[0])
    np.testing.assert_array_equal(cs.outcome, before[1])


def test_ps_variance_kernel_is_the_reference() -> None:
    """The kernel's variance is the NumPy formula (including tiny jobs, where it uses a series)."""
    from devopsim.engine.flow._compose import ps_variance as kernel
    from devopsim.engine.flow.latency import ps_variance

    rng = np.random.default_rng(4)
    d = np.concatenate((rng.exponential(0.002, 500), [1e-9, 1e-7, 0.0]))
    rho = rng.choice([0.3, 0.8, 0.97], d.size)
    mu = rng.uniform(50.0, 500.0, d.size)
    scale = rng.uniform(1.0, 8.0, d.size)
    want = ps_variance(d, rho, mu, scale)
    got = np.array([kernel(*args) for args in zip(d, rho, mu, scale, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-30)
    # Against the closed form where it loses no digits.
    x, r, m = 0.012, 0.8, 125.0
    closed = 2 * r * x / (m * (1 - r) ** 3) - 2 * r * (1 - np.exp(-(1 - r) * m * x)) / (m**2 * (1 - r) ** 4)
    assert kernel(x, r, m, 1.0) == pytest.approx(closed, rel=1e-12)


@pytest.mark.parametrize("a", [0.3, 1.0, 2.5, 40.0])
def test_kernel_gamma_draws_are_gamma(a: float) -> None:
    """Mean a, variance a (each within 5 standard errors), and the distribution of NumPy's
    gamma (KS bound); fewer draws than the pool of normals holds, so none is reused."""
    from devopsim.engine.flow._compose import gamma_draws

    n = 50_000
    got = np.array(gamma_draws(a, n, 12345, np.random.default_rng(9).standard_normal(1 << 16)))
    assert abs(got.mean() - a) <= 5 * np.sqrt(a / n)
    assert abs(got.var() / a - 1) <= 5 * np.sqrt((2 + 6 / a) / n)
    ref = np.random.default_rng(1).gamma(a, 1.0, n)
    _same_distribution(got, ref, f"gamma({a})")


def test_ps_sojourn_has_the_m_m_1_ps_moments() -> None:
    """Over many draws a job of size x gets mean x/(1-ρ) and the Coffman-Muntz-Trotter variance."""
    from devopsim.engine.flow.latency import ps_sojourn, ps_variance

    rho, mu, x = 0.8, 125.0, 0.012  # a job 1.5x the mean, alone 12 ms
    n = 400_000
    one = np.ones(n)
    t = ps_sojourn(x * one, x / (1 - rho) * one, rho * one, mu * one, one, np.random.default_rng(6))
    assert t.mean() == pytest.approx(x / (1 - rho), rel=0.01)
    assert t.var() == pytest.approx(float(ps_variance(np.array([x]), rho, mu, 1.0)[0]), rel=0.03)


@pytest.mark.parametrize(
    ("d", "rho", "mu", "scale", "stretch"),
    [
        (0.004, 0.8, 125.0, 4.0, 20.0),  # a quarter core near its load (stretch scale/(1-rho)): shape ~1.4
        (0.002, 0.3, 200.0, 2.0, 2.0 / 0.7),  # lightly loaded: shape ~4
        (0.4, 0.5, 100.0, 1.0, 2.0),  # a job long against the others: shape ~21
        (0.0001, 0.9, 100.0, 1.0, 10.0),  # a tiny job (g by its series): shape ~1.1
        (0.004, 0.8, 125.0, 4.0, 9.0),  # a stretch far below scale/(1-rho): shape ~0.29, boosted
        (0.01, 1.2, 100.0, 1.0, 3.0),  # outside the M/M/1-PS range: the general path
    ],
)
def test_kernel_ps_draws_are_the_reference_gamma(
    d: float, rho: float, mu: float, scale: float, stretch: float
) -> None:
    """A work step's time under processor sharing as the kernel draws it (per-replica
    constants, its own Marsaglia-Tsang arithmetic) has the mean ``d * stretch`` and the
    NumPy reference's variance, and the distribution of ``latency.ps_sojourn``'s NumPy gamma."""
    from devopsim.engine.flow._compose import ps_draws
    from devopsim.engine.flow.latency import ps_sojourn, ps_variance

    n = 50_000
    got = np.array(
        ps_draws(d, rho, mu, scale, stretch, n, 777, np.random.default_rng(3).standard_normal(1 << 16))
    )
    m = d * stretch
    v = float(ps_variance(np.array([d]), np.array([rho]), np.array([mu]), np.array([scale]))[0])
    assert v > 0
    a = m * m / v  # the gamma's shape: its variance's standard error below
    assert abs(got.mean() - m) <= 5 * np.sqrt(v / n)
    assert abs(got.var() / v - 1) <= 5 * np.sqrt((2 + 6 / a) / n)
    one = np.ones(n)
    ref = ps_sojourn(d * one, m * one, rho * one, mu * one, scale * one, np.random.default_rng(8))
    _same_distribution(got, ref, f"ps draws rho={rho}")
