"""The flow data plane (``plane: flow``): time in ticks, queueing theory per replica.

Each tick, the classes' arrival rates flow through the call graph (level by level,
with the retries and the fail-fast losses of the last window), are split over each
service's ready replicas by load-balancing weight, and meet every replica's queue
(see ``_queue.pyx``): workers with a holding time that includes the version's CPU
work stretched by processor sharing when CPU is short, its waits and its calls'
durations. The queues carry their state between ticks, so load steps and lost
replicas show queues building and draining. Each window (up to a scrape) the latency
and outcome distributions are composed over the call graph (``latency.py``) and the
window's traffic is counted with them.

It shares the model, the scenario, the control interface, the metrics and the
results with the request plane; counts are expected values (fractions of requests).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

from devopsim.engine.flow._queue import queue_step, replica_post, replica_prep
from devopsim.engine.flow.accounting import FlowAccounting
from devopsim.engine.flow.graph import CallGraph
from devopsim.engine.flow.latency import CallSamples, Composer
from devopsim.engine.flow.queueing import lq_table
from devopsim.engine.flow.replicas import FlowReplicas, _Replicas
from devopsim.engine.flow.routing import FlowRouting
from devopsim.engine.flow.tally import (
    EndpointUnit,
    PendingVolumes,
    StatsView,
    new_stats,
)
from devopsim.engine.flow.windows import FlowWindows
from devopsim.engine.request import layout as L
from devopsim.engine.streams import Streams
from devopsim.engine.totals import ServiceTotals
from devopsim.model.program import LB_RANDOM, LB_WEIGHTED, Program
from devopsim.traffic.generator import TrafficGenerator

_EMPTY = np.empty(0)  # no last tick (the kernels take an empty array)
_Opt = np.ndarray | None

__all__ = ["FlowPlane"]


class FlowPlane(FlowAccounting, FlowWindows, FlowReplicas, FlowRouting):
    """Queueing theory per replica, vectorised over replicas (``plane: flow``).

    Args:
        program: the compiled platform.
        streams: the run's named random streams (for the latency composition).
        warmup: statistics ignore traffic before this time, seconds.
        traffic: the arrival-rate patterns of the classes.
        tick: the base tick, seconds; quiet stretches take longer ticks.
        samples: samples per endpoint per window for the latency composition.
        window: the longest window, seconds (the scrape interval): the latencies are
            composed and the class statistics counted when a window closes, which is at
            the latest after this long, or earlier when someone reads the statistics.
    """

    name = "flow"
    _u: dict[str, np.ndarray]  # statistics per unit of traffic, from the last composition

    def __init__(
        self,
        program: Program,
        streams: Streams,
        warmup: float,
        traffic: TrafficGenerator,
        tick: float = 1.0,
        samples: int = 8000,
        window: float = 15.0,
    ) -> None:
        self._def_from: float | None = None  # a quiet stretch not yet simulated starts here ...
        self._def_to = 0.0  # ... and ends here (see ``advance``)
        self._tick_t0 = 0.0  # when the last tick computed afresh began
        self._quiet_until: float | None = None  # until when its traffic provably stays quiet
        self._not_extended = -1.0  # a horizon found too near the band's edge to extend
        self.program = program
        self.traffic = traffic
        traffic.before_change = self._traffic_changes
        self.warmup = warmup
        self.tick = tick
        self.window = window
        a = program.arrays
        self.graph = CallGraph.build(program)
        self.S, self.E, self.C = len(program.services), len(program.endpoints), len(program.classes)
        self._lmax = program.max_local
        self.ep_svc = a["ep_svc"]
        self.ep_local = a["ep_local"]
        self._ep_local64 = np.ascontiguousarray(self.ep_local, dtype=np.int64)
        self.conc = a["svc_conc"]
        self.cores = a["svc_cores"]
        self.qcap = a["svc_qcap"]
        self._conc64 = np.ascontiguousarray(self.conc, dtype=np.int64)  # for the per-replica kernels
        self._qcap64 = np.ascontiguousarray(self.qcap, dtype=np.int64)
        self.lb = a["svc_lb"]
        self.timeout = a["ep_timeout"]
        self._n_ep = np.bincount(self.ep_svc, minlength=self.S)  # endpoints per service
        self._ep_tmo = np.where(self.timeout > 0, self.timeout, 0.0)  # 0: none
        # Services whose endpoints all have a timeout (only they drop queued requests).
        self._all_tmo = (
            np.bincount(self.ep_svc, weights=(self.timeout > 0).astype(float), minlength=self.S) == self._n_ep
        )
        self.ver_err = np.array(program.ver_err, dtype=np.float64)
        self.ver_lat = np.array(program.ver_lat, dtype=np.float64)
        self.cb = a["ep_cb"]
        self.entries = [
            list(a["entries"][o : o + n]) for o, n in zip(a["cls_entry_off"], a["cls_entry_len"], strict=True)
        ]
        self._rows: dict[int, int] = {}
        tables: list[np.ndarray] = []
        for c in sorted(set(int(x) for x in self.conc)):
            self._rows[c] = len(tables)
            tables.append(lq_table(c))
        self._lq = np.ascontiguousarray(np.vstack(tables)) if tables else np.zeros((1, 1401))
        self.svc_row = np.array([self._rows[int(c)] for c in self.conc], dtype=np.int64)
        self.composer = Composer(program, self.graph, streams, samples)
        self.admit = np.ones(self.S)  # share of a service's arrivals that started last tick
        self._ones_s = np.ones(self.S)
        self.replicas = self._new_replicas(16)
        self._free = list(range(15, -1, -1))
        self._gen = np.zeros(16, dtype=np.int64)
        self._ready: list[list[int]] = [[] for _ in range(self.S)]
        self.now = 0.0
        self._win_start = 0.0
        # Behaviour learnt from the last window (starts as "no failures, no queueing").
        self.call_fail = np.zeros(self.E)  # P(a logical call to e fails)
        self.retry_mult = np.ones(self.E)  # attempts per logical call
        self.call_mean = self.graph.cpu_mean + self.graph.wait_mean  # mean duration of a call, s
        self.call_var = self.graph.cpu_var + self.graph.wait_var
        self.started_fail = np.zeros(self.E)  # fraction of started attempts answering 500
        self.srv_mean = np.zeros(self.E)  # mean server response of ok attempts, s
        self.srv_buckets = np.zeros((self.E, L.N_PB))
        self.srv_buckets[:, 0] = 1.0
        self.breaker_open = np.zeros(self.E)
        self._cb_until = np.zeros(self.E)
        self.resid = np.ones(self.S)  # light-traffic M/G/c factor per service (1: exponential)
        self._dt = tick
        self._prev_state: np.ndarray | None = None
        self._last: dict[str, np.ndarray] = {}
        self._inc_cache = None  # (see accounting.FlowAccounting._account)
        self._split_cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self._last_lam: np.ndarray | None = None
        self._topology = 0  # changes whenever replicas come, go or change readiness
        # (or what the ticks assume is learnt again); the replica set alone (``_split``):
        self._replica_set = 0
        self._err_mixed = (-1, False)  # (topology, live versions differ in injected error rate)
        self._settled = False
        self._last_topology = -1
        self._since_compose = 0
        self._since_full = 0  # windows since every endpoint was last composed afresh
        self._windows = 0
        # The tick a window judged steady was made of (when it was made of one only): a
        # window made of the same tick needs no new judgement.
        self._judged_src: dict[str, np.ndarray] | None = None
        self._calls: dict[int, CallSamples] | None = None  # the last composition's samples
        self._unit_cache: dict[int, tuple[CallSamples, EndpointUnit]] = {}  # see tally.unit_stats
        self._learnt: dict[int, CallSamples] = {}  # the samples each endpoint was learnt from
        self._recompute_flows()
        self._stats = new_stats(self.C, self.E, self.S, a["slo_cls"].size)
        self._pending = PendingVolumes(self.E, self.S)
        self._stats_view = StatsView(self)
        self._slo_cls = a["slo_cls"]
        self._slo_thr = a["slo_thr"]
        self._totals = [ServiceTotals() for _ in range(self.S)]
        self._little_area = 0.0
        self._arrived_w = 0.0
        self._in_system = 0.0
        self._reset_window()

    @property
    def replicas(self) -> _Replicas:
        """The per-slot arrays, brought up to the present (a deferred quiet stretch is simulated
        before anyone reads them)."""
        if self._def_from is not None:
            self._flush_deferred()
        return self._rp

    @replicas.setter
    def replicas(self, value: _Replicas) -> None:
        self._rp = value

    def queue_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Busy workers and queued requests per slot, now.

        Unlike :attr:`replicas` this does not simulate a deferred quiet stretch first: while
        one is deferred the queues are, by definition, those of the last tick (a quiet stretch
        only replays it), so readiness probes every few seconds cost no simulation.
        """
        return self._rp.busy, self._rp.qlen

    @property
    def stats(self) -> L.Stats:
        """The run's statistics so far (the same layout as the request plane's).

        The endpoint and service fields are brought up to date when they are read (see
        ``tally.PendingVolumes``); reading only the class fields costs nothing more.
        """
        self._close_open_window()
        return cast(L.Stats, self._stats_view)

    @property
    def class_stats(self) -> L.Stats:
        """The statistics with the per-class fields (``cls_*``, ``slo_good``) current.

        Cheaper than :attr:`stats` on large platforms: the endpoint and service fields may
        lag behind by the windows since the per-unit statistics last changed.
        """
        self._close_open_window()
        return self._stats

    @property
    def in_system(self) -> int:
        """User requests in the system now (expected value, rounded)."""
        self._close_open_window()
        return round(self._in_system)

    @property
    def little(self) -> tuple[float, float]:
        """(time integral of requests in the system after warm-up, requests arrived after it)."""
        self._close_open_window()
        return self._little_area, self._arrived_w

    # --- flows ----------------------------------------------------------------------

    def _reset_window(self) -> None:
        # The window's volumes are views of one block, zeroed in place for each window (read
        # only while it closes).
        block = getattr(self, "_w_block", None)
        if block is None:
            C, E, S = self.C, self.E, self.S
            block = self._w_block = np.zeros(2 * C + 2 * E + S)
            self._w_cls_all = block[:C]  # class requests in the window (all)
            self._w_cls = block[C : 2 * C]  # after warm-up
            self._w_calls = block[2 * C : 2 * C + E]  # logical calls after warm-up
            self._w_att = block[2 * C + E : 2 * C + 2 * E]  # attempts (all)
            self._w_started_w = block[2 * C + 2 * E :]  # frames started after warm-up, per service
        else:
            block.fill(0.0)
        # The ticks the window was made of (each played for how long): the per-replica sums
        # are only formed when the window closes and needs them (``_window_sums``).
        self._win_parts: dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]] = {}

    # --- time ---------------------------------------------------------------------------

    # Deferring quiet stretches can be switched off (the reference the tests compare with).
    defer = True

    def advance(self, t_end: float) -> None:
        """Simulate ``[now, t_end)`` in ticks; close the window once it is ``window`` long.

        Control events (probes, controller syncs) come far more often than scrapes; they
        move the queues on but do not close the window, so the latency composition and the
        class statistics happen once per window, not once per event.

        In a quiet stretch (steady queues, long ticks, the same replicas, a smooth traffic
        pattern with no jump ahead) inside a window, the stretch is only noted: it is
        simulated when someone reads or changes the plane, or the window closes, as one
        piece instead of one per event. Readiness probes read :meth:`queue_state`, which
        needs no simulation then, so a probe every 5 s costs no tick.
        """
        if self.defer and self._quiet_ahead(t_end):
            if t_end - self._win_start < self.window * (1.0 - 1e-9):
                if self._def_from is None:
                    self._def_from = self.now
                self._def_to = t_end
                return
            if self._def_from is not None:
                self._def_to = t_end  # the window closes: the stretch and this piece, as one
        if self._def_from is not None:
            self._flush_deferred()
        if self.now < t_end:
            self._advance(t_end)

    def _quiet_ahead(self, t_end: float) -> bool:
        """Whether ``[now, t_end)`` (from the deferred stretch's start, if one is deferred) is
        quiet: steady queues on long ticks, the same replicas, smooth traffic (see :meth:`advance`)."""
        last = self._last_lam
        if not (
            self._dt > 4 * self.tick
            and last is not None
            and self._settled
            and self._topology == self._last_topology
        ):
            return False
        # Deferred only when the traffic provably stays in the quiet band (0.5 % of the last
        # tick's) up to ``t_end``, so that simulating the stretch later replays the last tick
        # and the queues a probe reads meanwhile are the ones it would have seen: two averages
        # of the rate over parts of [last tick, t_end] differ by no more than the rate moves
        # there, so up to where that stays within 0.4 % of the rate it is quiet.
        if self._quiet_until is None:
            self._quiet_until = self.traffic.steady_until(self._tick_t0, 0.004 * float(last.sum()))
        if t_end <= self._quiet_until:
            return True
        # Past the horizon, the rate may still move by what is left of the band there: the
        # rate at the horizon is off the last tick's by ``d``, so where it moves by at most
        # 0.5 % - ``d`` (less a margin) from there, every average over any piece is in the band
        # too. Each extension costs one bound instead of a check per piece; near the band's
        # edge (less than a tenth of it left) the pieces are checked as they come.
        qu = self._quiet_until
        if qu > self._tick_t0 and qu != self._not_extended:
            total = float(last.sum())
            at_qu = self.traffic.total_rate(qu)
            room = -1.0 if at_qu is None else 0.0045 * total - abs(at_qu - total)
            if room > 0.0005 * total:
                self._quiet_until = max(qu, self.traffic.steady_until(qu, room))
                if t_end <= self._quiet_until:
                    return True
            else:
                self._not_extended = qu  # (the same horizon gives the same room: not asked again)
        # Else check this piece as a replay would (the band is convex: a stretch whose pieces
        # are all in it is in it as a whole).
        t0 = self.now if self._def_from is None else self._def_to
        if t_end <= t0:
            return True
        if not self.traffic.smooth(t0, t_end):
            return False  # a jump or a fault ahead: simulate as it comes
        lam_cls = self.traffic.expected(t0, t_end) / (t_end - t0)
        return bool(np.all(np.abs(lam_cls - last) <= 0.005 * np.abs(last) + 1e-12))

    def _traffic_changes(self) -> None:
        """A class's rate is about to change: what was deferred ran at the old rates."""
        if self._def_from is not None:
            self._flush_deferred()
        self._quiet_until = None  # judged on the old rates

    def _flush_deferred(self) -> None:
        """Simulate the deferred quiet stretch (``now`` is still its start): the last tick
        replayed over it as one piece (every piece of it was judged quiet when it was deferred,
        so the whole stretch is: ``_advance`` would replay it the same way)."""
        self._def_from = None
        t, t_end = self.now, self._def_to
        if t < t_end - 1e-12:
            h = t_end - t
            self._account(t, h, self.traffic.expected(t, t_end) / h, self._last)
        self.now = t_end
        if t_end - self._win_start >= self.window * (1.0 - 1e-9):
            self._close_open_window()

    def _advance(self, t_end: float) -> None:
        dt = self._dt
        t = self.now
        while t < t_end - 1e-12:
            last = self._last_lam
            quiet = dt > 4 * self.tick and self._settled and self._topology == self._last_topology
            if last is None:
                quiet, last = False, _EMPTY
            if quiet and t_end - t > dt:
                # A quiet stretch longer than a tick (a deferred one): replayed whole when the
                # traffic over all of it stays within 0.5 % of the last tick's.
                h = t_end - t
                lam_cls = self.traffic.expected(t, t_end) / h
                if np.all(np.abs(lam_cls - last) <= 0.005 * np.abs(last) + 1e-12):
                    self._account(t, h, lam_cls, self._last)
                    t = t_end
                    continue
            h = min(dt, t_end - t)
            lam_cls = self.traffic.expected(t, t + h) / h
            if quiet and np.all(np.abs(lam_cls - last) <= 0.005 * np.abs(last) + 1e-12):
                # Quiet: the queues are steady and the traffic within 0.5 % of the last tick's.
                self._account(t, h, lam_cls, self._last)
                t += h
                continue
            self._last_topology = self._topology
            self._tick_t0 = t
            self._quiet_until = None
            state = self._tick(t, h, lam_cls)
            t += h
            # Adaptive tick: quiet stretches (rates and queues steady) take longer ticks, a
            # change (a step in load, a replica lost) brings the base tick back.
            prev = self._prev_state
            if prev is not None and prev.size == state.size:
                change = float(np.max(np.abs(state - prev) / (np.abs(prev) + 1e-3))) if state.size else 0.0
                rate_change = change / max(h, 1e-9) * self.tick  # per base tick
                if rate_change < 0.002:
                    dt = min(dt * 2.0, 3600.0)
                elif rate_change > 0.01:
                    dt = self.tick
            self._prev_state = state
        self._dt = dt
        self.now = t_end
        if t_end - self._win_start >= self.window * (1.0 - 1e-9):
            self._close_open_window()

    def _close_open_window(self) -> None:
        """Close the window up to now (compose, count the class statistics), if it is open."""
        if self._def_from is not None:
            self._flush_deferred()
        if self.now > self._win_start:
            self._close_window(self.now)
            self._win_start = self.now

    def _tick(self, t0: float, dt: float, lam_cls: np.ndarray) -> np.ndarray:
        rp = self.replicas
        R = rp.svc.shape[0]
        self._callee_means()
        calls, attempts, svc_rate, mix, a_s, b_s, a2_s, ab_s, b2_s, tmo_s = self._flow_mix(lam_cls)
        # Split each service's rate over its ready replicas.
        share, ca2 = self._split(R)
        svc = np.maximum(rp.svc, 0)
        # Per replica (replica_prep): its arrival rate; CPU work per frame, stretched when the
        # cores are shared (processor sharing), under the load it serves, which exceeds
        # arrivals while a backlog drains, taken half-way from the last tick's: the load and
        # the stretch feed each other with a tick's delay, which near saturation would swing
        # from tick to tick (period two). No sharing when every worker has a core of its own
        # (as in the request plane). Then Allen-Cunneen, with the Kraemer & Langenbach-Belz
        # correction for arrivals that are not Poisson (round robin makes them smoother),
        # between light traffic (the smallest of c residual holding times) and heavy
        # traffic: exact for M/M/c and M/G/1, and much better than either alone for highly
        # variable service on several workers. The tail of a waiting request keeps the
        # heavy-traffic shape; the light-traffic correction lowers the chance of waiting.
        last = self._last
        prev_served = last.get("served", _EMPTY) if last else _EMPTY
        prev_thru = last.get("thru", _EMPTY) if last else _EMPTY
        lat = self.ver_lat[rp.ver]
        # (each tick's arrays as rows of a few blocks: one allocation each; ``win`` holds, in
        # the order ``_increments`` weighs them by the arrivals, what the kernels write of a
        # window's queue state: P(wait) tail, mean wait, backlog wait, slack, dropped share,
        # stretch, rejected share)
        win = np.empty((7, R))
        pw_tail, mean_w, bwait, slack, drop_frac, k, rej_frac = win
        lam, cpu_frame, thru, hold, phi, tail, tmo = np.empty((7, R))
        conc_r, qcap_r, row_r = np.empty((3, R), dtype=np.int64)
        replica_prep(
            np.ascontiguousarray(rp.svc, dtype=np.int64),
            np.ascontiguousarray(lat),
            np.ascontiguousarray(rp.alive, dtype=np.int64),
            rp.n,
            rp.b,
            share,
            ca2,
            svc_rate,
            a_s,
            b_s,
            a2_s,
            ab_s,
            b2_s,
            np.ascontiguousarray(self.cores, dtype=np.float64),
            self._conc64,
            np.ascontiguousarray(self.resid),
            tmo_s,
            self._qcap64,
            self.svc_row,
            prev_served if prev_served.size == R else _EMPTY,
            prev_thru if prev_thru.size == R else _EMPTY,
            lam,
            cpu_frame,
            thru,
            k,
            hold,
            phi,
            tail,
            tmo,
            conc_r,
            qcap_r,
            row_r,
        )
        out = np.empty((8, R))  # (queue_step sets every entry)
        served, rejected, dropped, busy_area, queue_area, pwait, theta, settled = out
        queue_step(
            lam, hold, phi, conc_r, qcap_r, tmo, row_r, self._lq, dt, rp.n, rp.b,
            served, rejected, dropped, busy_area, queue_area, pwait, theta, bwait, slack, settled,
        )  # fmt: skip
        live = np.flatnonzero(rp.alive == 1)
        self._settled = bool((settled[live] > 0).all())
        # What each service admitted this tick throttles what its callers' frames send next tick.
        arrived_s = np.bincount(svc[live], weights=lam[live] * dt, minlength=self.S)
        served_s = np.bincount(svc[live], weights=served[live], minlength=self.S)
        admit = self._ones_s.copy()
        np.divide(served_s, arrived_s, out=admit, where=arrived_s > 1e-12)
        self.admit = np.minimum(admit, 1.0)
        mwait = np.empty(R)
        replica_post(
            lam, pwait, theta, bwait, tail, dropped, rejected, dt, mwait, pw_tail, mean_w, drop_frac, rej_frac
        )
        # Rates per second, so a steady stretch can replay them without recomputing the queues.
        per_s = out[:5] * (1.0 / dt)
        self._last = {
            "served": per_s[0],
            "rejected": per_s[1],
            "dropped": per_s[2],
            "busy": per_s[3],
            "queue": per_s[4],
            "cpu_frame": cpu_frame,
            "thru": thru,
            "mix": mix,
            "svc": svc,
            "live": live,
            "calls": calls,
            "attempts": attempts,
            "lam": lam,
            "mwait": mwait,
            "pw_tail": pw_tail,
            "mean_w": mean_w,
            "bwait": bwait,
            "slack": slack,
            "drop_frac": drop_frac,
            "rej_frac": rej_frac,
            "k": k,
            "hold": hold,
            "win": win,
        }
        self._last_lam = lam_cls.copy()
        self._account(t0, dt, lam_cls, self._last)
        return np.concatenate((lam[live], rp.n[live], rp.b[live]))

    def _split(self, R: int) -> tuple[np.ndarray, np.ndarray]:
        """Each ready replica's share of its service's requests, and the SCV of its arrivals.

        Computed again only when the replicas, their readiness or weights have changed.
        """
        cached = self._split_cache
        if cached is not None and cached[0] == self._replica_set and cached[1].size == R:
            return cached[1], cached[2]
        rp = self.replicas
        share = np.zeros(R)
        ca2 = np.ones(R)
        idx = np.fromiter((r for slots in self._ready for r in slots), dtype=np.int64)
        if idx.size:
            sv = rp.svc[idx]
            lb = self.lb[sv]
            w = np.where(lb == LB_WEIGHTED, rp.weight[idx], 1.0)
            share[idx] = w / np.bincount(sv, weights=w, minlength=self.S)[sv]
            n = np.bincount(sv, minlength=self.S)[sv]
            # Round robin and least-load smooth each replica's arrivals.
            ca2[idx] = np.where((lb != LB_RANDOM) & (lb != LB_WEIGHTED), 1.0 / n, 1.0)
        self._split_cache = (self._replica_set, share, ca2)
        return share, ca2


_F = TypeVar("_F", bound=Callable[..., Any])


def _flushing(fn: _F) -> _F:
    """``fn`` with the deferred quiet stretch simulated first (it reads or changes the plane)."""

    @functools.wraps(fn)
    def wrapper(self: FlowPlane, *args: Any, **kwargs: Any) -> Any:
        if self._def_from is not None:
            self._flush_deferred()
        return fn(self, *args, **kwargs)

    return cast(_F, wrapper)


# The control interface: every call sees the plane as it is at the caller's time.
for _name in (
    "add_replica",
    "set_ready",
    "ready_slots",
    "outstanding",
    "kill",
    "release",
    "set_version",
    "set_weight",
    "slot_generation",
    "sync_integrals",
    "service_totals",
    "service_total",
    "service_cpu",
    "set_impairment",
    "set_call_probability",
    "set_class_delay",
    "set_class_loss",
):
    setattr(FlowPlane, _name, _flushing(getattr(FlowPlane, _name)))
