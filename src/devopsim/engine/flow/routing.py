"""How traffic flows through the call graph in the flow plane, and what frames hold.

Per window: which calls each class's requests make to each endpoint (journeys, fail-fast
reach of later steps, retries and open breakers). Per tick: each endpoint's holding time
besides its CPU work, from its waits and the mean durations of its calls, taken from the
callees' queues as they are now.
"""

from __future__ import annotations

import numpy as np

from devopsim.engine.flow import _flows
from devopsim.engine.flow.graph import CallGraph
from devopsim.engine.flow.latency import Composer
from devopsim.engine.impairment import check_impairment
from devopsim.model.program import Program

__all__ = ["FlowRouting"]

# The per-tick arithmetic runs in ``_flows`` (compiled, bit-identical); False runs the NumPy
# reference kept here (the kernels' tests compare the two).
USE_KERNEL = True
_NONE = np.empty(0)


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
    _all_tmo64: np.ndarray | None = None
    admit: np.ndarray
    _n_ep: np.ndarray
    _ep_tmo: np.ndarray
    _all_tmo: np.ndarray

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
        self._kernel_arrays()
        self._set_holding(self.call_mean, self.call_var)

    def _kernel_arrays(self) -> None:
        """The call parts as contiguous int64/float64 arrays for ``_flows``, the levels flattened."""
        g = self.graph
        self._seq_src = np.ascontiguousarray(self._seq[:, 0], dtype=np.int64)
        self._seq_dst = np.ascontiguousarray(self._seq[:, 1], dtype=np.int64)
        self._seq_k = np.ascontiguousarray(self._seq[:, 2])
        self._par_dst = np.ascontiguousarray(self._par[:, 0], dtype=np.int64)
        self._par_k = np.ascontiguousarray(self._par[:, 1])
        self._par_starts = np.ascontiguousarray(self._par_starts, dtype=np.int64)
        lv = g.levels
        self._lvl_edges = np.ascontiguousarray(np.concatenate(lv) if lv else np.empty(0), dtype=np.int64)
        self._lvl_off = np.cumsum([0] + [x.size for x in lv], dtype=np.int64)
        self._ep_svc64 = np.ascontiguousarray(self.ep_svc, dtype=np.int64)
        # What _flows.holding and _flows.callee_holding take after the means and variances.
        self._call_parts = (
            self._seq_src,
            self._seq_dst,
            self._seq_k,
            self._par_dst,
            self._par_k,
            self._par_starts,
            self._par_src,
            g.wait_mean,
            g.wait_var,
        )

    def _set_holding(self, mean: np.ndarray, var: np.ndarray) -> None:
        """Holding-time parts per endpoint from the mean and variance of a call to each endpoint."""
        if not USE_KERNEL:
            self._set_holding_numpy(mean, var)
            return
        self.hold_fixed, self.hold_fixed_var = _flows.holding(
            np.ascontiguousarray(mean, dtype=np.float64),
            np.ascontiguousarray(var, dtype=np.float64),
            *self._call_parts,
        )

    def _set_holding_numpy(self, mean: np.ndarray, var: np.ndarray) -> None:
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
        """Holding times from the callees' queues as they are now (``_callee_means_numpy``)."""
        if not USE_KERNEL:
            self._callee_means_numpy()
            return
        r = self._last
        if not r:
            return
        g = self.graph
        nd, nl = self._net_delay, self._net_loss
        if nd is None or nl is None:
            nd = nl = _NONE
        self.hold_fixed, self.hold_fixed_var = _flows.callee_holding(
            r["live"],
            r["svc"],
            r["lam"],
            r["mwait"],
            r["k"],
            self.S,
            self._ep_svc64,
            self.hold_fixed,
            g.cpu_mean,
            nd,
            nl,
            self.timeout,
            self.retry_mult,
            self.call_mean,
            self.call_var,
            *self._call_parts,
        )

    def _callee_means_numpy(self) -> None:
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

    def _flow_mix(self, lam_cls: np.ndarray) -> tuple[np.ndarray, ...]:
        """The tick's calls down the graph, the endpoint mix per service and its moments.

        Calls flow down the graph level by level; a caller starts only the frames its
        replicas admitted (a saturated caller throttles its callees, as worker pools do).
        Returns calls, attempts, svc_rate, mix, a_s, b_s, a2_s, ab_s, b2_s, tmo_s (see
        ``_flow_mix_numpy``).
        """
        if not USE_KERNEL:
            return self._flow_mix_numpy(lam_cls)
        g = self.graph
        if self._all_tmo64 is None:
            self._all_tmo64 = np.ascontiguousarray(self._all_tmo, dtype=np.int64)
        return tuple(
            _flows.flow_mix(
                np.ascontiguousarray(self.entry @ lam_cls, dtype=np.float64),
                np.ascontiguousarray(self.per_call, dtype=np.float64),
                np.ascontiguousarray(self.admit, dtype=np.float64),
                self._lvl_edges,
                self._lvl_off,
                g.edge_src,
                g.edge_dst,
                np.ascontiguousarray(self.coef, dtype=np.float64),
                np.ascontiguousarray(self.retry_mult, dtype=np.float64),
                np.ascontiguousarray(self.reach_frac, dtype=np.float64),
                self._ep_svc64,
                self._n_ep,
                self.hold_fixed,
                self.hold_fixed_var,
                g.cpu_mean,
                g.cpu_var,
                self._ep_tmo,
                self._all_tmo64,
            )
        )

    def _flow_mix_numpy(self, lam_cls: np.ndarray) -> tuple[np.ndarray, ...]:
        """NumPy reference of ``_flow_mix``."""
        g = self.graph
        calls = self.entry @ lam_cls  # logical calls per second to each endpoint
        starts_per_call = self.per_call * self.admit[self.ep_svc]
        for edges in self.graph.levels:
            src = g.edge_src[edges]
            calls = calls + np.bincount(
                g.edge_dst[edges],
                weights=calls[src] * starts_per_call[src] * self.coef[edges],
                minlength=self.E,
            )
        attempts = calls * self.retry_mult
        reaching = attempts * self.reach_frac  # less open breakers and lost connections
        svc_rate = np.bincount(self.ep_svc, weights=reaching, minlength=self.S)
        # Mix of endpoints at each service, and holding-time parts.
        with np.errstate(invalid="ignore", divide="ignore"):
            mix = np.where(svc_rate[self.ep_svc] > 0, reaching / svc_rate[self.ep_svc], 0.0)
        # Unused services still need a mix for their holding time: share their endpoints equally.
        idle = svc_rate[self.ep_svc] <= 0
        mix[idle] = 1.0 / self._n_ep[self.ep_svc[idle]]
        a_s = np.bincount(self.ep_svc, weights=mix * self.hold_fixed, minlength=self.S)
        b_s = np.bincount(self.ep_svc, weights=mix * g.cpu_mean, minlength=self.S)
        a2_s = np.bincount(
            self.ep_svc, weights=mix * (self.hold_fixed_var + self.hold_fixed**2), minlength=self.S
        )
        ab_s = np.bincount(self.ep_svc, weights=mix * 2 * self.hold_fixed * g.cpu_mean, minlength=self.S)
        b2_s = np.bincount(self.ep_svc, weights=mix * (g.cpu_var + g.cpu_mean**2), minlength=self.S)
        # The timeout that drops queued requests: the endpoints' mixed (all must have one).
        tmo_s = np.bincount(self.ep_svc, weights=mix * self._ep_tmo, minlength=self.S)
        tmo_s = np.where(self._all_tmo, tmo_s, 0.0)
        return calls, attempts, svc_rate, mix, a_s, b_s, a2_s, ab_s, b2_s, tmo_s
