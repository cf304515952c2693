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

from dataclasses import dataclass

import numpy as np

from devopsim.engine.flow._queue import queue_step
from devopsim.engine.flow.graph import CallGraph
from devopsim.engine.flow.latency import CallSamples, Composer, HopState
from devopsim.engine.flow.queueing import lq_table, min_residual_ratio, ps_slowdown
from devopsim.engine.request import layout as L
from devopsim.engine.request.plane import ServiceTotals
from devopsim.engine.streams import Streams
from devopsim.model.program import LB_RANDOM, LB_WEIGHTED, Program
from devopsim.results.stats import lh_indices
from devopsim.traffic.generator import TrafficGenerator

__all__ = ["FlowPlane"]


@dataclass
class _Replicas:
    """Per-slot arrays, with the field names the scraper reads."""

    svc: np.ndarray
    ver: np.ndarray
    alive: np.ndarray
    ready: np.ndarray
    weight: np.ndarray
    busy: np.ndarray
    qlen: np.ndarray
    cpu_area: np.ndarray
    busy_area: np.ndarray
    occ_area: np.ndarray
    cnt: np.ndarray
    lat_sum: np.ndarray
    lat_hist: np.ndarray
    n: np.ndarray
    b: np.ndarray


def _grow(arr: np.ndarray, n: int, fill: float = 0) -> np.ndarray:
    out = np.full((n, *arr.shape[1:]), fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class FlowPlane:
    """Queueing theory per replica, vectorised over replicas (``plane: flow``).

    Args:
        program: the compiled platform.
        streams: the run's named random streams (for the latency composition).
        warmup: statistics ignore traffic before this time, seconds.
        traffic: the arrival-rate patterns of the classes.
        tick: the base tick, seconds; quiet stretches take longer ticks.
        samples: samples per endpoint per window for the latency composition.
    """

    name = "flow"

    def __init__(
        self,
        program: Program,
        streams: Streams,
        warmup: float,
        traffic: TrafficGenerator,
        tick: float = 1.0,
        samples: int = 2000,
    ) -> None:
        self.program = program
        self.traffic = traffic
        self.warmup = warmup
        self.tick = tick
        a = program.arrays
        self.graph = CallGraph.build(program)
        self.S, self.E, self.C = len(program.services), len(program.endpoints), len(program.classes)
        self._lmax = program.max_local
        self.ep_svc = a["ep_svc"]
        self.ep_local = a["ep_local"]
        self.conc = a["svc_conc"]
        self.cores = a["svc_cores"]
        self.qcap = a["svc_qcap"]
        self.lb = a["svc_lb"]
        self.timeout = a["ep_timeout"]
        self.ver_err = np.array(program.ver_err, dtype=np.float64)
        self.ver_lat = np.array(program.ver_lat, dtype=np.float64)
        self.cb = a["ep_cb"]
        self.entries = [
            list(a["entries"][o : o + n]) for o, n in zip(a["cls_entry_off"], a["cls_entry_len"], strict=True)
        ]
        self._rows: dict[int, int] = {}
        tables = []
        for c in sorted(set(int(x) for x in self.conc)):
            self._rows[c] = len(tables)
            tables.append(lq_table(c))
        self._lq = np.ascontiguousarray(np.vstack(tables)) if tables else np.zeros((1, 1401))
        self.svc_row = np.array([self._rows[int(c)] for c in self.conc], dtype=np.int64)
        self.composer = Composer(program, self.graph, streams, samples)
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
        self._windows = 0
        self._recompute_flows()
        self.stats = _new_stats(self.C, self.E, self.S, a["slo_cls"].size)
        self._slo_cls = a["slo_cls"]
        self._slo_thr = a["slo_thr"]
        self._totals = [ServiceTotals() for _ in range(self.S)]
        self._little_area = 0.0
        self._arrived_w = 0.0
        self._in_system = 0.0
        self._reset_window()

    # --- replicas (the control interface) ------------------------------------------

    def _new_replicas(self, n: int) -> _Replicas:
        return _Replicas(
            svc=np.full(n, -1, dtype=np.int64),
            ver=np.zeros(n, dtype=np.int64),
            alive=np.zeros(n, dtype=np.int64),
            ready=np.zeros(n, dtype=bool),
            weight=np.ones(n),
            busy=np.zeros(n),
            qlen=np.zeros(n),
            cpu_area=np.zeros(n),
            busy_area=np.zeros(n),
            occ_area=np.zeros(n),
            cnt=np.zeros((n, self._lmax, L.N_CODES)),
            lat_sum=np.zeros((n, self._lmax)),
            lat_hist=np.zeros((n, self._lmax, L.N_PB)),
            n=np.zeros(n),
            b=np.zeros(n),
        )

    def add_replica(self, service: int, version: int, now: float, weight: float = 1.0) -> int:
        """Create a replica (not ready yet) and return its slot."""
        if not self._free:
            n = self.replicas.svc.shape[0]
            rp = self.replicas
            for name in rp.__dataclass_fields__:
                arr = getattr(rp, name)
                setattr(
                    rp, name, _grow(arr, 2 * n, -1 if name == "svc" else (1.0 if name == "weight" else 0))
                )
            self._gen = _grow(self._gen, 2 * n)
            self._free = list(range(2 * n - 1, n - 1, -1))
        r = self._free.pop()
        rp = self.replicas
        rp.svc[r], rp.ver[r], rp.alive[r], rp.ready[r], rp.weight[r] = service, version, 1, False, weight
        for arr in (rp.busy, rp.qlen, rp.cpu_area, rp.busy_area, rp.occ_area, rp.n, rp.b):
            arr[r] = 0.0
        rp.cnt[r] = 0.0
        rp.lat_sum[r] = 0.0
        rp.lat_hist[r] = 0.0
        self._gen[r] += 1
        return r

    def set_ready(self, slot: int, ready: bool) -> None:
        """Add the replica to, or remove it from, its service's load-balancing set."""
        svc = int(self.replicas.svc[slot])
        lst = self._ready[svc]
        if ready and slot not in lst:
            lst.append(slot)
        elif not ready and slot in lst:
            lst.remove(slot)
        self.replicas.ready[slot] = ready

    def ready_slots(self, service: int) -> list[int]:
        """Slots in the service's load-balancing set."""
        return list(self._ready[service])

    def outstanding(self, slot: int) -> int:
        """Requests the replica holds (rounded expected value)."""
        rp = self.replicas
        return round(float(rp.busy[slot] + rp.qlen[slot]))

    def kill(self, slot: int, now: float) -> None:
        """The replica dies: what it holds fails (counted as unavailable)."""
        rp = self.replicas
        held = float(rp.n[slot] + rp.b[slot])
        if now >= self.warmup:
            self.stats.sv_err[rp.svc[slot]] += held
        self.set_ready(slot, False)
        rp.n[slot] = rp.b[slot] = rp.busy[slot] = rp.qlen[slot] = 0.0

    def release(self, slot: int, now: float) -> None:
        """The replica is gone; its slot may be reused."""
        rp = self.replicas
        svc = int(rp.svc[slot])
        self.set_ready(slot, False)
        tot = self._totals[svc]
        tot.cpu += float(rp.cpu_area[slot])
        tot.busy += float(rp.busy_area[slot])
        tot.occupancy += float(rp.occ_area[slot])
        rp.alive[slot] = 0
        self._free.append(slot)

    def set_version(self, version: int, error_rate: float, latency_factor: float) -> None:
        """Change how a version behaves."""
        if version >= self.ver_err.size:
            self.ver_err = _grow(self.ver_err, version + 1)
            self.ver_lat = _grow(self.ver_lat, version + 1, 1.0)
        self.ver_err[version] = error_rate
        self.ver_lat[version] = latency_factor

    def slot_generation(self, slot: int) -> int:
        """Increases each time a slot is given to a new replica."""
        return int(self._gen[slot])

    def service_totals(self, now: float) -> list[ServiceTotals]:
        """Each service's integrals so far (core-seconds, worker-seconds, request-seconds)."""
        rp = self.replicas
        out = []
        for s, ret in enumerate(self._totals):
            m = (rp.alive == 1) & (rp.svc == s)
            out.append(
                ServiceTotals(
                    cpu=ret.cpu + float(rp.cpu_area[m].sum()),
                    busy=ret.busy + float(rp.busy_area[m].sum()),
                    occupancy=ret.occupancy + float(rp.occ_area[m].sum()),
                )
            )
        return out

    @property
    def in_system(self) -> int:
        """User requests in the system now (expected value, rounded)."""
        return round(self._in_system)

    @property
    def little(self) -> tuple[float, float]:
        """(time integral of requests in the system after warm-up, requests arrived after it)."""
        return self._little_area, self._arrived_w

    # --- flows ----------------------------------------------------------------------

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
        # Frames of e started per logical call: attempts x admitted.
        per_call = self.retry_mult * (1.0 - self.breaker_open)
        flows = np.zeros((self.E, self.C))
        for c, stages in enumerate(self.entries):
            alive = 1.0
            for e in stages:
                flows[e, c] += alive
                alive *= survive[e]
        # Calls flow down the graph: callers are earlier in the topological order.
        children: dict[int, list[tuple[int, float]]] = {}
        for s_, t, k in zip(g.edge_src, g.edge_dst, coef, strict=True):
            children.setdefault(int(s_), []).append((int(t), float(k)))
        for e in g.order:
            frames = flows[e] * per_call[e]
            for t, k in children.get(e, []):
                flows[t] += frames * k
        self.flows = flows  # logical calls to e per request of class c
        # Holding-time parts per endpoint: waits plus calls' mean durations.
        call_part = np.zeros(self.E)
        call_var = np.zeros(self.E)
        for e, steps in enumerate(g.steps):
            for j, st in enumerate(steps):
                if st.kind == "call":
                    t, p = st.targets[0], st.probs[0]
                    r = step_reach[(e, j)]
                    call_part[e] += r * p * self.call_mean[t]
                    call_var[e] += (
                        r * p * (self.call_var[t] + self.call_mean[t] ** 2) - (r * p * self.call_mean[t]) ** 2
                    )
                elif st.kind == "par":
                    r = step_reach[(e, j)]
                    means = [p * self.call_mean[t] for t, p in zip(st.targets, st.probs, strict=True)]
                    k = int(np.argmax(means))
                    call_part[e] += r * max(means)
                    call_var[e] += r * self.call_var[st.targets[k]]
        self.hold_fixed = self.graph.wait_mean + call_part  # s per frame, besides CPU work
        self.hold_fixed_var = self.graph.wait_var + np.maximum(call_var, 0.0)

    def _reset_window(self) -> None:
        R = self.replicas.svc.shape[0]
        self._w_cls_all = np.zeros(self.C)  # class requests in the window (all)
        self._w_cls = np.zeros(self.C)  # after warm-up
        self._w_calls = np.zeros(self.E)  # logical calls after warm-up
        self._w_att = np.zeros(self.E)  # attempts (all)
        self._w_lam = np.zeros(R)  # arrivals per replica
        self._w_pw = np.zeros(R)
        self._w_mw = np.zeros(R)
        self._w_bw = np.zeros(R)
        self._w_stretch = np.zeros(R)
        self._w_rej = np.zeros(R)
        self._w_slack = np.zeros(R)
        self._w_drop = np.zeros(R)
        self._w_started_w = np.zeros(self.S)  # frames started after warm-up, per service

    # --- time ---------------------------------------------------------------------------

    def advance(self, t_end: float) -> None:
        """Simulate ``[now, t_end)`` in ticks, then compose the window's latencies."""
        dt = self.tick
        t = self.now
        prev_state: np.ndarray | None = None
        while t < t_end - 1e-12:
            h = min(dt, t_end - t)
            lam_cls = self.traffic.expected(t, t + h) / h
            state = self._tick(t, h, lam_cls)
            t += h
            # Adaptive tick: quiet stretches (rates and queues steady) take longer ticks.
            if prev_state is not None:
                change = (
                    np.max(np.abs(state - prev_state) / (np.abs(prev_state) + 1e-3)) if state.size else 0.0
                )
                if change < 0.01:
                    dt = min(dt * 2.0, 3600.0)
                elif change > 0.05:
                    dt = max(self.tick, dt / 2.0)
            prev_state = state
        self.now = t_end
        if t_end > self._win_start:
            self._close_window(t_end)
            self._win_start = t_end

    def _tick(self, t0: float, dt: float, lam_cls: np.ndarray) -> np.ndarray:
        rp = self.replicas
        R = rp.svc.shape[0]
        if self._w_lam.size != R:
            self._reset_window_arrays_grow(R)
        calls = self.flows @ lam_cls  # logical calls per second to each endpoint
        attempts = calls * self.retry_mult
        reaching = attempts * (1.0 - self.breaker_open)
        svc_rate = np.bincount(self.ep_svc, weights=reaching, minlength=self.S)
        # Mix of endpoints at each service, and holding-time parts.
        with np.errstate(invalid="ignore", divide="ignore"):
            mix = np.where(svc_rate[self.ep_svc] > 0, reaching / svc_rate[self.ep_svc], 0.0)
        # Unused services still need a mix for their holding time: share their endpoints equally.
        n_ep = np.bincount(self.ep_svc, minlength=self.S)
        idle = svc_rate[self.ep_svc] <= 0
        mix[idle] = 1.0 / n_ep[self.ep_svc[idle]]
        g = self.graph
        a_s = np.bincount(self.ep_svc, weights=mix * self.hold_fixed, minlength=self.S)
        b_s = np.bincount(self.ep_svc, weights=mix * g.cpu_mean, minlength=self.S)
        a2_s = np.bincount(
            self.ep_svc, weights=mix * (self.hold_fixed_var + self.hold_fixed**2), minlength=self.S
        )
        ab_s = np.bincount(self.ep_svc, weights=mix * 2 * self.hold_fixed * g.cpu_mean, minlength=self.S)
        b2_s = np.bincount(self.ep_svc, weights=mix * (g.cpu_var + g.cpu_mean**2), minlength=self.S)
        # Split each service's rate over its ready replicas.
        share = np.zeros(R)
        ca2 = np.ones(R)
        for s, slots in enumerate(self._ready):
            if not slots:
                continue
            idx = np.asarray(slots)
            w = rp.weight[idx] if self.lb[s] == LB_WEIGHTED else np.ones(idx.size)
            share[idx] = w / w.sum()
            if self.lb[s] != LB_RANDOM and self.lb[s] != LB_WEIGHTED:
                ca2[idx] = 1.0 / idx.size  # round robin and least-load smooth each replica's arrivals
        svc = np.maximum(rp.svc, 0)
        lam = svc_rate[svc] * share
        # CPU: work per frame, stretched when the cores are shared.
        lat = self.ver_lat[rp.ver]
        cores = self.cores[svc]
        conc = self.conc[svc].astype(np.float64)
        cpu_frame = b_s[svc] * lat
        u = lam * cpu_frame / cores
        max_stretch = np.maximum(conc / cores, 1.0 / np.minimum(cores, 1.0))
        slow = np.where(u < 0.999, ps_slowdown(np.minimum(u, 0.999), cores), max_stretch)
        # No sharing when every worker has a core of its own (as in the request plane).
        slow = np.where(conc <= cores, 1.0, np.minimum(slow, max_stretch))
        k = lat * slow
        hold = a_s[svc] + b_s[svc] * k
        m2 = a2_s[svc] + ab_s[svc] * k + b2_s[svc] * k * k
        with np.errstate(invalid="ignore", divide="ignore"):
            cs2 = np.where(hold > 0, np.maximum(m2 / (hold * hold) - 1.0, 0.0), 1.0)
        # Allen-Cunneen, with the Kraemer & Langenbach-Belz correction for arrivals that are
        # not Poisson (round robin makes them smoother).
        rho_a = np.minimum(np.where(conc > 0, lam * hold / conc, 0.0), 0.999)
        with np.errstate(invalid="ignore", divide="ignore"):
            klb = np.where(
                ca2 < 1.0,
                np.exp(
                    -2.0 * (1.0 - rho_a) * (1.0 - ca2) ** 2 / np.maximum(3.0 * rho_a * (ca2 + cs2), 1e-12)
                ),
                np.exp(-(1.0 - rho_a) * (ca2 - 1.0) / np.maximum(ca2 + 4.0 * cs2, 1e-12)),
            )
        # Between light traffic (the smallest of c residual holding times) and heavy traffic
        # (Allen-Cunneen): exact for M/M/c and M/G/1, and much better than either alone for
        # highly variable service on several workers.
        lt = np.maximum(2.0 * self.resid[svc] - 1.0, 0.0)
        phi = 0.5 * (ca2 + rho_a * cs2 + (1.0 - rho_a) * lt) * klb
        # The tail of a waiting request keeps the heavy-traffic (Allen-Cunneen) shape; the
        # light-traffic correction lowers the chance of waiting instead.
        tail = np.maximum(0.5 * (ca2 + cs2) * klb, 1e-9) / np.maximum(phi, 1e-9)
        # The timeout that drops queued requests: the endpoints' (all must have one).
        tmo_e = np.where(self.timeout > 0, self.timeout, np.inf)
        tmo_s = np.bincount(
            self.ep_svc, weights=mix * np.where(np.isfinite(tmo_e), tmo_e, 0.0), minlength=self.S
        )
        has_all = np.bincount(self.ep_svc, weights=(self.timeout > 0).astype(float), minlength=self.S) == n_ep
        tmo = np.where(has_all[svc], tmo_s[svc], 0.0)
        active = (rp.alive == 1) & ((lam > 0) | (rp.n > 0) | (rp.b > 0))
        hold = np.where(active, hold, 0.0)
        out = [np.zeros(R) for _ in range(9)]
        queue_step(
            np.ascontiguousarray(lam),
            np.ascontiguousarray(hold),
            np.ascontiguousarray(phi),
            np.ascontiguousarray(self.conc[svc]),
            np.ascontiguousarray(self.qcap[svc]),
            np.ascontiguousarray(tmo),
            np.ascontiguousarray(self.svc_row[svc]),
            self._lq,
            dt,
            rp.n,
            rp.b,
            *out,
        )
        served, rejected, dropped, busy_area, queue_area, pwait, theta, bwait, slack = out
        # --- accounting ---------------------------------------------------------------
        warm = max(0.0, min(1.0, (t0 + dt - self.warmup) / dt))  # share of the tick after warm-up
        rp.busy[:] = busy_area / dt
        rp.qlen[:] = queue_area / dt
        rp.busy_area += busy_area
        rp.occ_area += busy_area + queue_area
        rp.cpu_area += served * cpu_frame
        live = np.nonzero(rp.alive == 1)[0]
        if live.size:
            ep_of = [np.nonzero(self.ep_svc == s)[0] for s in range(self.S)]
            for r in live:
                s = int(rp.svc[r])
                eps = ep_of[s]
                if served[r] <= 0 and rejected[r] <= 0 and dropped[r] <= 0:
                    continue
                m = mix[eps]
                loc = self.ep_local[eps]
                fr = served[r] * m
                fail = self.started_fail[eps]
                rp.cnt[r, loc, L.CODE_200] += fr * (1.0 - fail)
                rp.cnt[r, loc, L.CODE_500] += fr * fail
                rp.cnt[r, loc, L.CODE_503] += rejected[r] * m
                rp.cnt[r, loc, L.CODE_504] += dropped[r] * m
                rp.lat_sum[r, loc] += fr * self.srv_mean[eps]
                rp.lat_hist[r, loc] += fr[:, None] * self.srv_buckets[eps]
        st = self.stats
        got = served + rejected + dropped
        sv_frames = (
            np.bincount(svc[live], weights=got[live], minlength=self.S) if live.size else np.zeros(self.S)
        )
        st.sv_n[:] += warm * sv_frames
        st.sv_err[:] += warm * np.bincount(svc[live], weights=(rejected + dropped)[live], minlength=self.S)
        ep_fail_frames = np.bincount(self.ep_svc, weights=mix * self.started_fail, minlength=self.S)
        srv_s = (
            np.bincount(svc[live], weights=served[live], minlength=self.S) if live.size else np.zeros(self.S)
        )
        st.sv_err[:] += warm * srv_s * ep_fail_frames
        self._w_started_w += warm * srv_s
        st.cls_arr[:] += lam_cls * dt
        self._w_cls_all += lam_cls * dt
        self._w_cls += warm * lam_cls * dt
        self._w_calls += warm * calls * dt
        self._w_att += attempts * dt
        wl = lam * dt
        self._w_lam += wl
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_w = np.where(np.isfinite(theta) & (theta > 0), pwait / theta, 0.0)
            pw_tail = np.where(bwait > 0, pwait, np.minimum(pwait / tail, 1.0))
        self._w_pw += wl * pw_tail
        self._w_mw += wl * mean_w
        self._w_bw += wl * bwait
        self._w_slack += wl * slack
        with np.errstate(invalid="ignore", divide="ignore"):
            self._w_drop += np.where(lam > 0, dropped / np.maximum(lam * dt, 1e-300), 0.0) * wl
        self._w_stretch += wl * k
        with np.errstate(invalid="ignore", divide="ignore"):
            self._w_rej += np.where(lam > 0, rejected / np.maximum(lam * dt, 1e-300), 0.0) * wl
        if t0 + dt > self.warmup:
            self._arrived_w += warm * float(lam_cls.sum()) * dt
        return np.concatenate((lam[live], rp.n[live], rp.b[live]))

    def _reset_window_arrays_grow(self, R: int) -> None:
        for name in ("_w_lam", "_w_pw", "_w_mw", "_w_bw", "_w_stretch", "_w_rej", "_w_slack", "_w_drop"):
            setattr(self, name, _grow(getattr(self, name), R))

    def _close_window(self, t_end: float) -> None:
        rp = self.replicas
        R = rp.svc.shape[0]
        lam = self._w_lam
        with np.errstate(invalid="ignore", divide="ignore"):
            pw = np.where(lam > 0, self._w_pw / lam, 0.0)
            mw = np.where(lam > 0, self._w_mw / lam, 0.0)
            theta = np.where(mw > 0, pw / mw, np.inf)
            bw = np.where(lam > 0, self._w_bw / lam, 0.0)
            stretch = np.where(lam > 0, self._w_stretch / lam, self.ver_lat[rp.ver])
            rej = np.where(lam > 0, self._w_rej / lam, 0.0)
            slack = np.where(lam > 0, self._w_slack / lam, 0.0)
            drop = np.where(lam > 0, self._w_drop / lam, 0.0)
        weight = np.where(rp.ready, np.maximum(lam, 1e-12), 0.0)
        hop = HopState(
            weight=weight,
            pwait=pw,
            theta=theta,
            bwait=bw,
            stretch=stretch,
            reject=rej,
            slack=slack,
            drop=drop,
            err_rate=self.ver_err[rp.ver],
            breaker_open=self.breaker_open,
        )
        ready = [np.asarray(s, dtype=np.int64) for s in self._ready]
        calls = self.composer.compose(hop, ready)
        journeys = self.composer.journeys(calls, self.entries)
        self._learn(calls, t_end)
        self._count(calls, journeys, t_end)
        self._reset_window()
        if self._w_lam.size != R:
            self._reset_window_arrays_grow(R)

    def _learn(self, calls: dict[int, CallSamples], t_end: float) -> None:
        """What the next window's ticks assume: failure rates, retries, durations, breakers."""
        # The shape of each service's holding time (cheap for small platforms: every window;
        # for large ones, every 50th).
        if self._windows % (1 if self.S <= 50 else 50) == 0:
            for s in range(self.S):
                eps = np.nonzero(self.ep_svc == s)[0]
                parts = [calls[int(e)].service for e in eps]
                weights = self._w_att[eps]
                if weights.sum() <= 0:
                    weights = np.ones(eps.size)
                take = []
                for x, w in zip(parts, weights / weights.sum(), strict=True):
                    x = x[np.isfinite(x)]
                    if x.size:
                        take.append(x[: max(1, int(round(w * x.size)))])
                if take:
                    self.resid[s] = min_residual_ratio(np.concatenate(take), int(self.conc[s]))
        self._windows += 1
        for e, cs in calls.items():
            self.call_fail[e] = float(np.mean(cs.outcome != L.OK))
            self.retry_mult[e] = cs.attempts
            self.call_mean[e] = float(cs.duration.mean())
            self.call_var[e] = float(cs.duration.var())
            self.started_fail[e] = cs.started_fail
            ok = cs.server_ok & np.isfinite(cs.server)
            srv = cs.server[ok]
            self.srv_mean[e] = float(srv.mean()) if srv.size else 0.0
            if srv.size:
                idx = np.searchsorted(L.PROM_BUCKETS, srv, side="left")
                self.srv_buckets[e] = np.bincount(idx, minlength=L.N_PB) / srv.size
        # Circuit breakers, judged on the window's attempts (resilience4j's thresholds).
        a = self.program.arrays
        for e in np.nonzero(self.cb)[0]:
            cs = calls[int(e)]
            fail_rate = cs.retry_fail if cs.attempts > 0 else 0.0
            n = self._w_att[e]
            if t_end < self._cb_until[e]:
                self.breaker_open[e] = 1.0
            elif self.breaker_open[e] > 0:
                self.breaker_open[e] = 0.0  # half-open: the next window's calls decide
            elif n >= a["ep_cb_min"][e] and fail_rate >= a["ep_cb_thr"][e]:
                self._cb_until[e] = t_end + a["ep_cb_wait"][e]
                self.breaker_open[e] = 1.0
        self._recompute_flows()

    def _count(
        self, calls: dict[int, CallSamples], journeys: list[tuple[np.ndarray, np.ndarray]], t_end: float
    ) -> None:
        st = self.stats
        kinds = np.arange(L.N_ERR)
        in_system = 0.0
        for c, (dur, outcome) in enumerate(journeys):
            ok = outcome == L.OK
            frac_ok = ok.mean()
            err_frac = np.array([(outcome == kind).mean() for kind in kinds])
            err_frac[L.ERR_REJECTED] += (outcome == L.ERR_BREAKER).mean()
            vol_all = self._w_cls_all[c]
            vol = self._w_cls[c]
            st.cls_tot[c, 0] += vol_all * frac_ok
            st.cls_tot[c, 1:] += vol_all * err_frac
            okd = dur[ok]
            if okd.size:
                pb = np.bincount(np.searchsorted(L.PROM_BUCKETS, okd, side="left"), minlength=L.N_PB)
                st.cls_pb[c] += vol_all * frac_ok * pb / okd.size
                st.cls_psum[c] += vol_all * frac_ok * okd.mean()
            if vol > 0:
                st.cls_n[c] += vol
                st.cls_ok[c] += vol * frac_ok
                st.cls_err[c] += vol * err_frac
                st.cls_asum[c] += vol * dur.mean()
                self._little_area += vol * dur.mean()
                if okd.size:
                    st.cls_lsum[c] += vol * frac_ok * okd.mean()
                    st.cls_hist[c] += np.bincount(lh_indices(okd), minlength=L.LH_N) * (
                        vol * frac_ok / okd.size
                    )
                for j in range(self._slo_cls.size):
                    if self._slo_cls[j] < 0 or self._slo_cls[j] == c:
                        st.slo_good[j] += vol * float(np.mean(ok & (dur <= self._slo_thr[j])))
            span = max(t_end - self._win_start, 1e-12)
            in_system += self._w_cls_all[c] / span * dur.mean()
        self._in_system = in_system
        for e, cs in calls.items():
            vol = self._w_calls[e]
            if vol <= 0:
                continue
            ok = cs.outcome == L.OK
            st.ep_n[e] += vol
            st.ep_ok[e] += vol * ok.mean()
            for kind in kinds:
                st.ep_err[e, kind] += vol * float(np.mean(cs.outcome == kind))
            st.ep_err[e, L.ERR_REJECTED] += vol * float(np.mean(cs.outcome == L.ERR_BREAKER))
            okd = cs.duration[ok]
            if okd.size:
                st.ep_lsum[e] += vol * ok.mean() * okd.mean()
                st.ep_hist[e] += np.bincount(lh_indices(okd), minlength=L.LH_N) * (vol * ok.mean() / okd.size)
        # Server side, per service: latency of answered-ok attempts and queue waits.
        for s in range(self.S):
            frames = self._w_started_w[s]
            if frames <= 0:
                continue
            eps = np.nonzero(self.ep_svc == s)[0]
            srv_parts, wait_parts, weights_s, weights_w = [], [], [], []
            for e in eps:
                cs = calls[int(e)]
                share = self._w_att[e]
                ok = cs.server_ok & np.isfinite(cs.server)
                if ok.any():
                    srv_parts.append(cs.server[ok])
                    weights_s.append(np.full(int(ok.sum()), share * (1 - cs.started_fail) / ok.sum()))
                fw = cs.wait[np.isfinite(cs.wait)]
                if fw.size:
                    wait_parts.append(fw)
                    weights_w.append(np.full(fw.size, share / fw.size))
            if srv_parts:
                x = np.concatenate(srv_parts)
                w = np.concatenate(weights_s)
                w = (
                    w
                    / w.sum()
                    * frames
                    * (
                        1.0
                        - np.average([self.started_fail[e] for e in eps], weights=self._w_att[eps] + 1e-300)
                    )
                )
                st.sv_ok[s] += w.sum()
                st.sv_lsum[s] += float((x * w).sum())
                st.sv_hist[s] += np.bincount(lh_indices(x), weights=w, minlength=L.LH_N)
            if wait_parts:
                x = np.concatenate(wait_parts)
                w = np.concatenate(weights_w)
                w = w / w.sum() * frames
                st.sv_wn[s] += w.sum()
                st.sv_wsum[s] += float((x * w).sum())
                st.sv_whist[s] += np.bincount(lh_indices(x), weights=w, minlength=L.LH_N)


def _new_stats(C: int, E: int, S: int, Q: int) -> L.Stats:
    f = np.zeros
    return L.Stats(
        cls_n=f(C),
        cls_ok=f(C),
        cls_err=f((C, L.N_ERR)),
        cls_lsum=f(C),
        cls_hist=f((C, L.LH_N)),
        cls_asum=f(C),
        ep_n=f(E),
        ep_ok=f(E),
        ep_err=f((E, L.N_ERR)),
        ep_lsum=f(E),
        ep_hist=f((E, L.LH_N)),
        sv_n=f(S),
        sv_err=f(S),
        sv_ok=f(S),
        sv_lsum=f(S),
        sv_hist=f((S, L.LH_N)),
        sv_wn=f(S),
        sv_wsum=f(S),
        sv_whist=f((S, L.LH_N)),
        slo_good=f(Q),
        cls_tot=f((C, 1 + L.N_ERR)),
        cls_pb=f((C, L.N_PB)),
        cls_psum=f(C),
        cls_arr=f(C),
    )
