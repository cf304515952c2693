"""End-to-end latency and outcomes over the call graph, composed from per-hop distributions.

For every endpoint, callees first, ``K`` sample attempts are drawn: a wait from the
replica's queue (the deterministic backlog wait, plus with probability P(wait) an
exponential with the Allen-Cunneen mean), then each step: work (sampled from the
scenario's distribution, stretched by the version's latency factor and the CPU's
processor-sharing slowdown), waits, and calls, whose duration and outcome are taken
from the callee's own samples; a parallel group takes the longest branch, and fails
with the first failing one. Timeouts cut an attempt at the endpoint's timeout,
retries add backoff and another attempt, a version's error rate fails it. A class's
journey chains its endpoints' call samples. Histograms of these samples, weighted by
the traffic each window carried, give the percentiles of the summary and the
latency buckets of the metrics. Sampling uses pools of pre-drawn variates from the
run's named streams, so it is deterministic.

An endpoint's attempts and retries are drawn by a compiled kernel
(``_compose.compose_endpoint``: one pass per attempt over the samples); the NumPy path
(``Composer(..., reference=True)``) is its reference, which the tests compare it with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from devopsim.engine.flow._compose import STEP_CALL, STEP_WAIT, STEP_WORK, compose_endpoint
from devopsim.engine.flow._queue import call_target, stratified
from devopsim.engine.flow.graph import CallGraph
from devopsim.engine.request.layout import (
    ERR_DOWNSTREAM,
    ERR_INJECTED,
    ERR_REJECTED,
    ERR_TIMEOUT,
    ERR_UNAVAILABLE,
    OK,
)
from devopsim.engine.streams import Streams
from devopsim.model.program import Program

if TYPE_CHECKING:
    from devopsim.engine.flow.tally import SampleStats

__all__ = ["CallSamples", "Composer", "HopState", "ps_sojourn", "ps_variance"]


_NO_UNIFORMS = np.empty(0)  # a call made every time needs none
SAMPLE_BUDGET = 2_000_000  # samples of one composition, over all endpoints
MIN_SAMPLES = 1000  # per endpoint, whatever the platform's size
POOL_BUDGET = 16 << 20  # pooled variates over all samplers (8 bytes each)


@dataclass
class HopState:
    """What the queues looked like during a window, per replica slot and per endpoint.

    Replica arrays are indexed by slot; ``weight`` is each replica's share of its
    service's requests (0 for replicas that were not serving).
    """

    weight: np.ndarray
    pwait: np.ndarray
    theta: np.ndarray
    bwait: np.ndarray
    stretch: np.ndarray  # latency factor x CPU slowdown
    reject: np.ndarray  # fraction of arrivals refused (queue full)
    slack: np.ndarray  # when a timeout caps the backlog: the rate of a served request's spare time
    drop: np.ndarray  # ... and the fraction dropped at the head of the queue
    err_rate: np.ndarray  # the version's error rate
    breaker_open: np.ndarray  # per endpoint, fraction of the window the breaker was open
    # Processor sharing on at most one core (see ``ps_sojourn``): the effective M/M/1-PS load
    # (0: a work step takes its mean stretch), the service rate of a frame's CPU work alone,
    # and what a work draw is multiplied by to give that time alone. None: no sharing anywhere.
    ps_rho: np.ndarray | None = None
    ps_mu: np.ndarray | None = None
    ps_scale: np.ndarray | None = None


def ps_variance(
    d: np.ndarray | float, rho: np.ndarray | float, mu: np.ndarray | float, scale: np.ndarray | float
) -> np.ndarray:
    """Variance of an M/M/1-PS job's time (Coffman, Muntz & Trotter 1970).

    A job of size ``x`` (``d * scale``: the time it would take alone) at load ρ and rate μ
    takes ``x/(1-ρ)`` on average with variance
    ``2ρx/(μ(1-ρ)³) - 2ρ(1-e^{-(1-ρ)μx})/(μ²(1-ρ)⁴)``.
    """
    one = 1.0 - rho
    y = one * mu * d * scale
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = np.where(y < 1e-3, y * y * (0.5 - y / 6.0 + y * y / 24.0), y + np.expm1(-y))
        out: np.ndarray = 2.0 * rho * g / (mu * mu * one**4)
    return out


def ps_sojourn(
    d: np.ndarray,
    m: np.ndarray,
    rho: np.ndarray,
    mu: np.ndarray,
    scale: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """A CPU step's time under processor sharing, around its mean ``m`` (NumPy; the kernel's
    reference).

    ρ is the M/M/1-PS load the replica's mean stretch implies (smoother arrivals: a lower
    one); the time is drawn from a gamma with mean ``m`` and the variance of
    :func:`ps_variance`. With the mean alone (every job stretched alike) a quarter-core
    replica's p99 came out a third below the request plane's; with the variance, within a
    few per cent.
    """
    v = ps_variance(d, rho, mu, scale)
    ok = (m > 0) & (v > 0) & (rho > 0)
    out = np.array(m, dtype=np.float64, copy=True)
    if ok.any():
        mo, vo = m[ok], v[ok]
        out[ok] = rng.gamma(mo * mo / vo, vo / mo)
    return out


@dataclass(eq=False)
class CallSamples:
    """K samples of one logical call to an endpoint: its duration and outcome (-1 = ok).

    ``server``, ``server_ok``, ``wait`` and ``service`` hold one entry per started attempt
    (an attempt that reached a replica: not refused, lost, dropped or cut by a breaker),
    attempt after attempt in the order of the samples.
    """

    duration: np.ndarray
    outcome: np.ndarray
    server: np.ndarray  # server-side response of each started attempt
    server_ok: np.ndarray  # True where that attempt answered 200
    wait: np.ndarray  # its queue wait
    service: np.ndarray  # the time it held a worker
    attempts: float  # mean attempts per call
    retry_fail: float  # fraction of attempts that failed with a retryable error
    started_fail: float  # fraction of started attempts that answered 500
    stats: SampleStats | None = None  # what tally.sample_stats drew from them (kept with them)


@dataclass
class _EndpointProgram:
    """An endpoint's steps as the kernel reads them (rebuilt when a call probability changes)."""

    steps: tuple[object, ...]
    kind: np.ndarray  # per step: STEP_WORK / STEP_WAIT / STEP_CALL
    arg: np.ndarray  # its pool (work, wait) or its first target (call)
    count: np.ndarray  # its targets
    samplers: list[int]  # the pools, by sampler
    targets: list[int]  # callee endpoint of each target
    probs: np.ndarray  # probability each target is called


class _ReplicaArrays:
    """A window's per-replica queue state as contiguous float arrays (what the kernel reads)."""

    def __init__(self, hop: HopState) -> None:
        def f(x: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(x, dtype=np.float64)

        self.weight = f(hop.weight)
        self.pwait = f(hop.pwait)
        self.theta = f(hop.theta)
        self.bwait = f(hop.bwait)
        self.stretch = f(hop.stretch)
        self.reject = f(hop.reject)
        self.slack = f(hop.slack)
        self.drop = f(hop.drop)
        self.err_rate = f(hop.err_rate)
        none = np.zeros(self.weight.size)
        self.ps_rho = f(hop.ps_rho) if hop.ps_rho is not None else none
        self.ps_mu = f(hop.ps_mu) if hop.ps_mu is not None else none
        self.ps_scale = f(hop.ps_scale) if hop.ps_scale is not None else none


class Composer:
    """Draws the samples; owns pools of variates per work/wait sampler and uniforms."""

    def __init__(
        self, program: Program, graph: CallGraph, streams: Streams, k: int, *, reference: bool = False
    ) -> None:
        """``reference``: draw with the NumPy path instead of the kernel (the tests' reference)."""
        self.program = program
        self.reference = reference
        self.graph = graph
        # Large platforms share a budget of samples per composition (so that composing 1,000
        # endpoints costs what composing 250 would), never fewer than MIN_SAMPLES each.
        n_ep = len(program.endpoints)
        self.k = k if n_ep * k <= SAMPLE_BUDGET else max(MIN_SAMPLES, SAMPLE_BUDGET // n_ep)
        k = self.k
        a = program.arrays
        self.ep_svc = a["ep_svc"]
        self.timeout = a["ep_timeout"]
        self.retries = a["ep_retries"]
        self.backoff = a["ep_backoff"]
        self.maxbackoff = a["ep_maxbackoff"]
        self.retry_mask = a["ep_retry_mask"]
        n_smp = sum(1 for smp in program.samplers if smp.dist is not None)
        self.pool = max(8 * k, 1 << 16) if n_smp << 16 <= POOL_BUDGET else 8 * k
        self._rng = streams.generator("flow/compose")
        self._pools: dict[int, np.ndarray] = {}
        # Standard normals for the kernel's processor-sharing draws (its gamma deviates).
        self._gauss = np.ascontiguousarray(streams.generator("flow/ps").standard_normal(1 << 16))
        self._pos: dict[int, int] = {}
        self._gen = {i: streams.generator(f"flow/{s.name}") for i, s in enumerate(program.samplers) if s.dist}
        self._progs: dict[int, _EndpointProgram] = {}
        self._iscratch = np.empty(2 * k, dtype=np.intp)  # the kernel's working space
        self._scratch = np.empty(6 * k)
        # Per endpoint, set by chaos (set_impairment): network delay on the way (s), and the
        # chance an attempt fails to connect.
        self.net_delay: np.ndarray | None = None
        self.net_loss: np.ndarray | None = None
        self.net_jitter: np.ndarray | None = None  # sd of the network delay's normal jitter, s
        self.class_delay: np.ndarray | None = None  # per class, s users wait besides the system
        self.class_loss: np.ndarray | None = None  # per class, share failed at the front door

    def _strata(self, n: int) -> np.ndarray:
        """``n`` uniforms, one in each of ``n`` equal strata, in random order.

        Used wherever a sample decides an outcome by a probability (an injected error, a
        rejection, a call made with some probability): the share of samples below ``p`` is
        then ``p`` to within ``1/n``, so a composition reused for hours carries no sampling
        bias in rates (plain uniforms would be off by about ``sqrt(p/n)``).
        """
        out = np.empty(n)
        stratified(out, int(self._rng.integers(0, 1 << 63)))
        return out

    def _pool(self, sampler: int) -> np.ndarray:
        """The pre-drawn variates of a work/wait sampler (drawn on first use)."""
        pool = self._pools.get(sampler)
        if pool is None:
            dist = self.program.samplers[sampler].dist
            assert dist is not None
            pool = self._pools[sampler] = np.ascontiguousarray(
                dist.sample(self._gen[sampler], self.pool), np.float64
            )
            self._pos[sampler] = 0
        return pool

    def _draw(self, sampler: int, n: int) -> np.ndarray:
        pool = self._pool(sampler)
        pos = self._pos[sampler]
        if pos + n > pool.size:
            pos = int(self._rng.integers(0, pool.size - n))
        self._pos[sampler] = (pos + n) % (pool.size - n + 1)
        return pool[pos : pos + n]

    def _attempts(
        self,
        e: int,
        hop: HopState,
        slots: np.ndarray,
        calls: dict[int, CallSamples],
        n: int,
    ) -> tuple[np.ndarray, ...]:
        """``n`` attempts at ``e``: client duration, outcome, server response, server ok, wait, service."""
        rng = self._rng
        tmo = float(self.timeout[e])
        d_net = float(self.net_delay[e]) if self.net_delay is not None else 0.0
        p_loss = float(self.net_loss[e]) if self.net_loss is not None else 0.0
        d_net_n: float | np.ndarray = d_net
        if self.net_jitter is not None and self.net_jitter[e] > 0:
            # netem's jitter: a normal deviation per attempt, never a negative delay.
            d_net_n = np.maximum(d_net + float(self.net_jitter[e]) * rng.standard_normal(n), 0.0)
        w = hop.weight[slots]
        total = w.sum()
        if slots.size == 0 or total <= 0:
            return (
                np.broadcast_to(d_net_n, (n,)).copy(),
                np.full(n, ERR_UNAVAILABLE),
                np.full(n, np.nan),
                np.zeros(n, bool),
                np.full(n, np.nan),
                np.full(n, np.nan),
            )
        m = slots.size
        if m == 1:
            r = np.full(n, slots[0])
        elif float(w.min()) == float(w.max()):
            # Equal shares (round robin): the stratum's replica directly, no search.
            r = slots[np.minimum((self._strata(n) * m).astype(np.int64), m - 1)]
        else:
            cdf = np.cumsum(w / total)
            r = slots[np.minimum(np.searchsorted(cdf, self._strata(n), side="right"), m - 1)]
        u = self._strata(n)
        pw = hop.pwait[r]
        with np.errstate(divide="ignore", invalid="ignore"):
            expo = np.where(
                u < pw, -np.log(np.maximum(u, 1e-300) / np.maximum(pw, 1e-300)) / hop.theta[r], 0.0
            )
        wait = hop.bwait[r] + np.where(np.isfinite(expo), expo, 0.0)
        capped = hop.slack[r] > 0
        if capped.any():
            # The backlog is as old as the timeout: the dropped wait it out, the served have
            # Exp(slack) to spare.
            u2 = self._strata(n)
            spare = -np.log(np.maximum(rng.random(n), 1e-300)) / np.maximum(hop.slack[r], 1e-300)
            capped_wait = np.where(u2 < hop.drop[r], hop.bwait[r], np.maximum(hop.bwait[r] - spare, 0.0))
            wait = np.where(capped, capped_wait, wait)
        outcome = np.full(n, OK, dtype=np.int64)
        if float(hop.reject[slots].max()) > 0.0:  # else no replica refuses: nothing to draw
            rejected = self._strata(n) < hop.reject[r]
            outcome[rejected] = ERR_REJECTED
            alive = ~rejected
        else:
            alive = np.ones(n, dtype=bool)
        if p_loss > 0:
            lost = self._strata(n) < p_loss
            outcome[lost] = ERR_UNAVAILABLE
            alive &= ~lost
        if tmo > 0:
            dropped = alive & (wait + d_net_n >= tmo)
            outcome[dropped] = ERR_TIMEOUT
            alive &= ~dropped
        service = np.zeros(n)
        stretch = hop.stretch[r]
        running = alive.copy()
        for st in self.graph.steps[e]:
            if st.kind == "work":
                d = self._draw(st.sampler, n)
                work = d * stretch
                if hop.ps_rho is not None and hop.ps_mu is not None and hop.ps_scale is not None:
                    rho = hop.ps_rho[r]
                    if float(rho.max()) > 0.0:
                        work = ps_sojourn(d, work, rho, hop.ps_mu[r], hop.ps_scale[r], rng)
                service += np.where(running, work, 0.0)
            elif st.kind == "wait":
                service += np.where(running, self._draw(st.sampler, n), 0.0)
            else:
                dur = np.zeros(n)
                fail = np.zeros(n, dtype=bool)
                first_fail = np.full(n, np.inf)
                for t, p in zip(st.targets, st.probs, strict=True):
                    cs = calls[t]
                    idx = rng.integers(0, cs.duration.size, n)
                    made_u = self._strata(n) if p < 1.0 else _NO_UNIFORMS
                    call_target(idx, made_u, p, cs.duration, cs.outcome, dur, first_fail, fail.view(np.uint8))
                dur = np.where(fail, first_fail, dur)
                service += np.where(running, dur, 0.0)
                newly = running & fail
                outcome[newly] = ERR_DOWNSTREAM
                running &= ~fail
        server = np.where(alive, wait + service, np.nan)
        if float(hop.err_rate[slots].max()) > 0.0:  # a version injects errors
            inject = running & (self._strata(n) < hop.err_rate[r])
            outcome[inject] = ERR_INJECTED
        server_ok = alive & (outcome == OK)
        duration = np.where(alive, wait + service, 0.0)
        if d_net > 0 or d_net_n is not d_net:
            duration = duration + d_net_n
        if tmo > 0:
            late = alive & (duration > tmo)
            outcome[late] = ERR_TIMEOUT
            duration = np.where(late, tmo, duration)
            duration = np.where(~alive & (outcome == ERR_TIMEOUT), tmo, duration)
        return (
            duration,
            outcome,
            server,
            server_ok,
            np.where(alive, wait, np.nan),
            np.where(alive, service, np.nan),
        )

    def compose(
        self,
        hop: HopState,
        ready: list[np.ndarray],
        only: np.ndarray | None = None,
        prev: dict[int, CallSamples] | None = None,
    ) -> dict[int, CallSamples]:
        """Samples of a logical call to every endpoint, given the window's queue states.

        ``ready[s]`` lists the slots serving service ``s``. With ``only`` (a mask over the
        endpoints, closed under callers) and ``prev``, the other endpoints keep their samples
        from ``prev``: their queues and their callees have not changed.
        """
        calls: dict[int, CallSamples] = {}
        if not self.reference:
            rep = _ReplicaArrays(hop)
        for e in reversed(self.graph.order):
            if only is not None and prev is not None and not only[e]:
                calls[e] = prev[e]
                continue
            slots = ready[int(self.ep_svc[e])]
            if self.reference:
                calls[e] = self._reference_endpoint(e, hop, slots, calls)
            else:
                calls[e] = self._kernel_endpoint(e, rep, float(hop.breaker_open[e]), slots, calls)
        return calls

    def _program(self, e: int) -> _EndpointProgram:
        """Endpoint ``e``'s steps as arrays for the kernel (kept until its steps change)."""
        steps = tuple(self.graph.steps[e])
        prog = self._progs.get(e)
        if prog is not None and prog.steps == steps:
            return prog
        kind, arg, count = [], [], []
        samplers: list[int] = []
        targets: list[int] = []
        probs: list[float] = []
        for st in steps:
            if st.kind in ("work", "wait"):
                if st.sampler not in samplers:
                    samplers.append(st.sampler)
                kind.append(STEP_WORK if st.kind == "work" else STEP_WAIT)
                arg.append(samplers.index(st.sampler))
                count.append(0)
            else:
                kind.append(STEP_CALL)
                arg.append(len(targets))
                count.append(len(st.targets))
                targets.extend(st.targets)
                probs.extend(st.probs)
        prog = self._progs[e] = _EndpointProgram(
            steps=steps,
            kind=np.asarray(kind, dtype=np.int64),
            arg=np.asarray(arg, dtype=np.int64),
            count=np.asarray(count, dtype=np.int64),
            samplers=samplers,
            targets=targets,
            probs=np.asarray(probs, dtype=np.float64),
        )
        return prog

    def _kernel_endpoint(
        self, e: int, rep: _ReplicaArrays, p_open: float, slots: np.ndarray, calls: dict[int, CallSamples]
    ) -> CallSamples:
        """The samples of a logical call to ``e``, drawn by the compiled kernel."""
        k = self.k
        n_att = int(self.retries[e]) + 1
        prog = self._program(e)
        pools = [self._pool(smp) for smp in prog.samplers]
        pos = np.fromiter((self._pos[smp] for smp in prog.samplers), dtype=np.int64, count=len(prog.samplers))
        cap = k * n_att
        if self._scratch.size < (6 + len(prog.targets)) * k:
            self._scratch = np.empty((6 + len(prog.targets)) * k)
        duration = np.empty(k)
        outcome = np.empty(k, dtype=np.int64)
        server = np.empty(cap)
        server_ok = np.empty(cap, dtype=bool)
        wait = np.empty(cap)
        service = np.empty(cap)
        ns, att_count, att_fail, n_sfail = compose_endpoint(
            int(self._rng.integers(0, 1 << 63)),
            n_att,
            np.ascontiguousarray(slots, dtype=np.int64),
            rep.weight,
            rep.pwait,
            rep.theta,
            rep.bwait,
            rep.stretch,
            rep.reject,
            rep.slack,
            rep.drop,
            rep.err_rate,
            rep.ps_rho,
            rep.ps_mu,
            rep.ps_scale,
            self._gauss,
            float(self.timeout[e]),
            float(self.net_delay[e]) if self.net_delay is not None else 0.0,
            float(self.net_jitter[e]) if self.net_jitter is not None else 0.0,
            float(self.net_loss[e]) if self.net_loss is not None else 0.0,
            p_open,
            int(self.retry_mask[e]),
            float(self.backoff[e]),
            float(self.maxbackoff[e]),
            prog.kind,
            prog.arg,
            prog.count,
            pools,
            pos,
            [calls[t].duration for t in prog.targets],
            [calls[t].outcome for t in prog.targets],
            prog.probs,
            duration,
            outcome,
            server,
            server_ok.view(np.uint8),
            wait,
            service,
            self._iscratch,
            self._scratch,
        )
        for smp, p in zip(prog.samplers, pos.tolist(), strict=True):
            self._pos[smp] = p
        if n_att > 1:  # keep only what was written (retries are rarely all taken)
            server, server_ok, wait, service = (x[:ns].copy() for x in (server, server_ok, wait, service))
        else:
            server, server_ok, wait, service = server[:ns], server_ok[:ns], wait[:ns], service[:ns]
        return CallSamples(
            duration=duration,
            outcome=outcome,
            server=server,
            server_ok=server_ok,
            wait=wait,
            service=service,
            attempts=att_count / k,
            retry_fail=att_fail / max(att_count, 1.0),
            started_fail=n_sfail / max(ns, 1),
        )

    def _reference_endpoint(
        self, e: int, hop: HopState, slots: np.ndarray, calls: dict[int, CallSamples]
    ) -> CallSamples:
        """The samples of a logical call to ``e`` by NumPy passes (the kernel's reference)."""
        k = self.k
        rng = self._rng
        n_att = int(self.retries[e]) + 1
        total = np.zeros(k)
        outcome = np.full(k, OK, dtype=np.int64)
        pending = np.ones(k, dtype=bool)
        att_count = 0.0
        att_fail = 0.0
        servers, oks, waits, services = [], [], [], []
        for a in range(n_att):
            if not pending.any():
                break
            if hop.breaker_open[e] > 0:
                opened = pending & (rng.random(k) < hop.breaker_open[e])
            else:
                opened = np.zeros(k, dtype=bool)
            d, o, srv, sok, wt, svc_t = self._attempts(e, hop, slots, calls, k)
            o = np.where(opened, ERR_REJECTED, o)
            d = np.where(opened, 0.0, d)
            total = np.where(pending, total + d, total)
            outcome = np.where(pending, o, outcome)
            att_count += pending.sum()
            retryable = (o != OK) & ~opened & (((self.retry_mask[e] >> np.maximum(o, 0)) & 1) == 1)
            att_fail += (pending & retryable).sum()
            servers.append(np.where(pending & ~opened, srv, np.nan))
            oks.append(pending & ~opened & sok)
            waits.append(np.where(pending & ~opened, wt, np.nan))
            services.append(np.where(pending & ~opened, svc_t, np.nan))
            again = pending & retryable & (a + 1 < n_att)
            if again.any():
                delay = min(float(self.backoff[e]) * 2.0**a, float(self.maxbackoff[e]))
                total = np.where(again, total + delay, total)
            pending = again
        srv_all = np.concatenate(servers)
        ok_all = np.concatenate(oks)
        started = np.isfinite(srv_all)
        return CallSamples(
            duration=total,
            outcome=outcome,
            server=srv_all[started],
            server_ok=ok_all[started],
            wait=np.concatenate(waits)[started],
            service=np.concatenate(services)[started],
            attempts=att_count / k,
            retry_fail=att_fail / max(att_count, 1.0),
            started_fail=float((~ok_all[started]).sum() / max(started.sum(), 1)),
        )

    def journeys(
        self, calls: dict[int, CallSamples], entries: list[list[int]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Samples of each class's whole request: duration and outcome (-1 = ok)."""
        out = []
        rng = self._rng
        for c, stages in enumerate(entries):
            if len(stages) == 1:
                # One call: its samples are the journey's (shared, read only; copied when the
                # front door marks some).
                cs = calls[stages[0]]
                dur, outcome = cs.duration, cs.outcome
                if self.class_delay is not None and self.class_delay[c] > 0:
                    dur = dur + self.class_delay[c]
                if self.class_loss is not None and self.class_loss[c] > 0:
                    dur, outcome = dur.copy(), outcome.copy()
                    n = round(float(self.class_loss[c]) * self.k)
                    outcome[:n] = ERR_UNAVAILABLE
                    dur[:n] = 0.0
                out.append((dur, outcome))
                continue
            dur = np.zeros(self.k)
            outcome = np.full(self.k, OK, dtype=np.int64)
            alive = np.ones(self.k, dtype=bool)
            for e in stages:
                cs = calls[e]
                idx = rng.permutation(self.k) if len(stages) > 1 else np.arange(self.k)
                dur = np.where(alive, dur + cs.duration[idx], dur)
                failed = alive & (cs.outcome[idx] != OK)
                outcome = np.where(failed, cs.outcome[idx], outcome)
                alive &= ~failed
            if self.class_delay is not None and self.class_delay[c] > 0:
                dur = dur + self.class_delay[c]  # the clients' round trip to the front door
            if self.class_loss is not None and self.class_loss[c] > 0:
                # Failed at the front door: that share of the class never entered (samples
                # are exchangeable, so the first ones stand for it), no time in the system.
                n = round(float(self.class_loss[c]) * self.k)
                outcome[:n] = ERR_UNAVAILABLE
                dur[:n] = 0.0
            out.append((dur, outcome))
        return out
