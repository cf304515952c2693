"""How traffic flows through the call graph in the flow plane, and what frames hold.

Per window: which calls each class's requests make to each endpoint (journeys, fail-fast
reach of later steps, retries and open breakers). Per tick: each endpoint's holding time
besides its CPU work, from its waits and the mean durations of its calls, taken from the
callees' queues as they are now.
"""

from __future__ import annotations

import numpy as np

from devopsim.engine.flow.graph import CallGraph
from devopsim.engine.flow.latency import Composer
from devopsim.engine.impairment import check_impairment
from devopsim.model.program import Program

__all__ = ["FlowRouting"]


class FlowRouting:
    """Flows and holding times (mixed into the flow plane, which owns the state)."""

    graph: CallGraph
    program: Program
    E: int
    C: int
    S: int
    entries: list[list[int]]
    ep_svc: np.ndarray
    timeout: np.ndarray
    call_fail: np.ndarray
    call_mean: np.ndarray
    call_var: np.ndarray
    retry_mult: np.ndarray
    breaker_open: np.ndarray
    _last: dict[str, np.ndarray]
    _topology: int
    _sig: np.ndarray | None
    cores: np.ndarray
    composer: Composer
    per_call: np.ndarray
    reach_frac: np.ndarray
    _net_delay: np.ndarray | None = None  # per service, s (chaos: network delay)
    _net_loss: np.ndarray | None = None  # per service, chance a call fails to connect
    _net_jitter: np.ndarray | None = None  # per service, sd of the delay's normal jitter (s)
    _base_cores: np.ndarray | None = None

    def _close_open_window(self) -> None:
        """Close the open window (the plane overrides this)."""

    def set_impairment(
        self,
        service: int,
        *,
        delay: float = 0.0,
        loss: float = 0.0,
        cpu_factor: float = 1.0,
        jitter: float = 0.0,
    ) -> None:
        """Impair calls to ``service`` from now on; the defaults restore it.

        Args:
            service: the service's index.
            delay: network delay added to every attempt on its way to the service, seconds
                (the caller's timeout runs during it).
            loss: chance that an attempt fails with a connection error (``unavailable``,
                retried like one); 1.0 is a network partition.
            cpu_factor: its replicas have this many times their cores (CPU stress < 1).
            jitter: standard deviation of a normal jitter on ``delay`` (netem's), seconds: the
                composed calls draw it (a delay below zero is zero), so the calls' variance
                grows by about ``jitter**2`` and their mean stays.

        Raises:
            ValueError: a negative delay or jitter, a loss outside [0, 1] or a factor that is
                not positive.
        """
        check_impairment(delay, loss, cpu_factor, jitter)
        self._close_open_window()  # the window so far is composed with the impairment it had
        if self._net_delay is None or self._net_loss is None or self._base_cores is None:
            self._net_delay, self._net_loss = np.zeros(self.S), np.zeros(self.S)
            # The compiled program's cores are shared: change a copy of our own.
            self._base_cores = self.cores.copy()
            self.cores = self._base_cores.copy()
        self._net_delay[service] = delay
        self._net_loss[service] = loss
        if jitter > 0.0 or self._net_jitter is not None:
            if self._net_jitter is None:
                self._net_jitter = np.zeros(self.S)
            self._net_jitter[service] = jitter
            self.composer.net_jitter = self._net_jitter[self.ep_svc]
        self.cores[service] = self._base_cores[service] * cpu_factor
        self.composer.net_delay = self._net_delay[self.ep_svc]
        self.composer.net_loss = self._net_loss[self.ep_svc]
        self._recompute_flows()
        self._topology += 1  # the next tick is computed afresh, the next window composed again
        self._sig = None

    def set_call_probability(self, pc: int, p: float) -> None:
        """The call compiled at program counter ``pc`` is made with probability ``p`` from now on.

        The open window closes first (its traffic had the old probability); the flows
        are recomputed at once; the next tick is computed afresh (not replayed) and the
        next window composes its latencies again.
        """
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"a call probability lies in [0, 1] (got {p})")
        self._close_open_window()  # the window so far is composed with the probability it had
        self.program.arrays["prog_p"][pc] = p
        if self.graph.set_probability(pc, p):
            self._recompute_flows()
            self._topology += 1
            self._sig = None

    def set_class_delay(self, cls: int, delay: float) -> None:
        """Requests of class ``cls`` take ``delay`` seconds more as their users see them (from now).

        Raises:
            ValueError: a negative delay.
        """
        if delay < 0.0:
            raise ValueError(f"a class delay is >= 0 (got {delay})")
        if self.composer.class_delay is None:
            self.composer.class_delay = np.zeros(self.C)
        self.composer.class_delay[cls] = delay
        self._sig = None  # the next window composes its latencies again

    def set_class_loss(self, cls: int, loss: float) -> None:
        """A share ``loss`` of class ``cls``'s arrivals fails at once from now (front-door loss).

        The lost requests never reach a pod (the class's entry calls are scaled by
        ``1 - loss``) and count as ``unavailable`` errors of the class and bad requests of
        its SLOs (the composer marks that share of the class's journeys). The open window
        closes first.

        Raises:
            ValueError: a loss outside [0, 1].
        """
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"a class loss lies in [0, 1] (got {loss})")
        self._close_open_window()  # the window so far had the loss it had
        if self.composer.class_loss is None:
            self.composer.class_loss = np.zeros(self.C)
        self.composer.class_loss[cls] = loss
        self._recompute_flows()
        self._topology += 1
        self._sig = None

    def _recompute_flows(self) -> None:
        """Per window: how class arrivals turn into calls to each endpoint (an E x C matrix)."""
        g = self.graph
        survive = 1.0 - self.call_fail
        # For each edge, the chance its caller reaches that step: earlier calls must not fail.
        step_reach: dict[tuple[int, int], float] = {}
        for e, steps in enumerate(g.steps):
            reach = 1.0
            for j, st in enumerate(steps):
                step_reach[(e, j)] = reach
                if st.kind in ("call", "par"):
                    ok = 1.0
                    for t, p in zip(st.targets, st.probs, strict=True):
                        ok *= 1.0 - p * self.call_fail[t]
                    reach *= ok
        coef = np.array(
            [
                p * step_reach[(int(s), int(j))]
                for s, p, j in zip(g.edge_src, g.edge_prob, g.edge_step, strict=True)
            ]
        )
        # Attempts that reach a replica per logical call (retries, open breakers).
        self.reach_frac = 1.0 - self.breaker_open
        if self._net_loss is not None:
            self.reach_frac = self.reach_frac * (1.0 - self._net_loss[self.ep_svc])
        self.per_call = self.retry_mult * self.reach_frac
        self.coef = coef
        # Entry calls per request of each class: later stages of a journey only if earlier ones succeeded.
        entry = np.zeros((self.E, self.C))
        for c, stages in enumerate(self.entries):
            alive = 1.0
            for e in stages:
                entry[e, c] += alive
                alive *= survive[e]
        if self.composer.class_loss is not None:
            entry *= 1.0 - self.composer.class_loss  # front-door losses never reach a pod
        self.entry = entry
        # Holding time of a frame besides its CPU work: its waits plus its calls' durations.
        # Sequential calls add; a parallel group lasts as long as its slowest branch.
        seq, par, par_group, par_src = [], [], [], []
        for e, steps in enumerate(g.steps):
            for j, st in enumerate(steps):
                r = step_reach[(e, j)]
                if st.kind == "call":
                    seq.append((e, st.targets[0], r * st.probs[0]))
                elif st.kind == "par":
                    par_src.append(e)
                    for t, p in zip(st.targets, st.probs, strict=True):
                        par.append((t, r * p))
                        par_group.append(len(par_src) - 1)
        self._seq = np.array(seq, dtype=np.float64).reshape(-1, 3)
        self._par = np.array(par, dtype=np.float64).reshape(-1, 2)
        self._par_group = np.array(par_group, dtype=np.int64)
        self._par_src = np.array(par_src, dtype=np.int64)
        self._par_starts = (
            np.flatnonzero(np.r_[True, np.diff(self._par_group) != 0]) if par else np.empty(0, np.int64)
        )
        self._set_holding(self.call_mean, self.call_var)

    def _set_holding(self, mean: np.ndarray, var: np.ndarray) -> None:
        """Holding-time parts per endpoint from the mean and variance of a call to each endpoint."""
        call_part = np.zeros(self.E)
        call_var = np.zeros(self.E)
        if self._seq.size:
            src, dst, k = self._seq[:, 0].astype(np.int64), self._seq[:, 1].astype(np.int64), self._seq[:, 2]
            call_part += np.bincount(src, weights=k * mean[dst], minlength=self.E)
            call_var += np.bincount(
                src, weights=k * (var[dst] + mean[dst] ** 2) - (k * mean[dst]) ** 2, minlength=self.E
            )
        if self._par.size:
            dst, k = self._par[:, 0].astype(np.int64), self._par[:, 1]
            vals = k * mean[dst]
            longest = np.maximum.reduceat(vals, self._par_starts)
            call_part += np.bincount(self._par_src, weights=longest, minlength=self.E)
            call_var += np.bincount(
                self._par_src, weights=np.maximum.reduceat(k * var[dst], self._par_starts), minlength=self.E
            )
        self.hold_fixed = self.graph.wait_mean + call_part  # s per frame, besides CPU work
        self.hold_fixed_var = self.graph.wait_var + np.maximum(call_var, 0.0)

    def _callee_means(self) -> None:
        """Calls' mean durations from the queues as they are now (a one-tick lag, not a window's).

        A caller's holding time includes its callees' responses; taking them from the last
        tick's queue state (wait plus holding, cut at the timeout, times the attempts) keeps
        caller and callee consistent as load shifts, where the last window's samples would
        lag and make saturated tiers oscillate.
        """
        r = self._last
        if not r:
            return
        live = r["live"]
        svc = r["svc"][live]
        w = r["lam"][live]
        tot = np.bincount(svc, weights=w, minlength=self.S)
        with np.errstate(invalid="ignore", divide="ignore"):
            mw = np.bincount(svc, weights=w * r["mwait"][live], minlength=self.S) / tot
            kk = np.bincount(svc, weights=w * r["k"][live], minlength=self.S) / tot
        known = tot[self.ep_svc] > 1e-12
        d = mw[self.ep_svc] + self.hold_fixed + self.graph.cpu_mean * kk[self.ep_svc]
        if self._net_delay is not None and self._net_loss is not None:
            loss = self._net_loss[self.ep_svc]
            d = self._net_delay[self.ep_svc] + (1.0 - loss) * d
        d = np.where(self.timeout > 0, np.minimum(d, self.timeout), d) * self.retry_mult
        mean = np.where(known, d, self.call_mean)
        self._set_holding(mean, self.call_var)
