"""The flow plane's windows: what a window's ticks add up to, when the latencies are composed
again, and what the next ticks learn from the composition.

A window runs up to a scrape (or until someone reads the statistics). When it closes, the
arrival-weighted queue states of its ticks are judged against those of the last composition:
steady, the composition and the per-unit statistics are reused; moved, the moved services'
endpoints and their callers are composed again (``latency.Composer``), and what the ticks
assume (failure rates, retries, call durations, holding-time shapes, breakers) is learnt
from the new samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import numpy as np

from devopsim.engine.flow._tally import (
    dirty_sets,
    ps_shape,
    window_close,
    window_moved,
    window_signature,
    window_state,
)
from devopsim.engine.flow.graph import CallGraph
from devopsim.engine.flow.latency import CallSamples, Composer, HopState
from devopsim.engine.flow.replicas import _Replicas
from devopsim.engine.flow.tally import UnitTable, apply_unit_stats, sample_stats, service_resid, unit_stats
from devopsim.model.program import Program

if TYPE_CHECKING:
    from devopsim.engine.flow.plane import FlowPlane

__all__ = ["FlowWindows", "stretch_tolerance", "window_close_reference"]

_Opt = np.ndarray | None


_NONE = np.empty(0)


def stretch_tolerance(
    stretch: np.ndarray, hold: np.ndarray, cpu_frame: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    """How far each replica's stretch may move before the latencies are composed again: what
    moves its holding time by 5 % (a frame's CPU time is ``cpu_frame / lat`` times the
    stretch), or 2 % of it, whichever is more (``_tally.stretch_tol`` per replica).

    A stretch is judged by what it does to the holding time, as a mean wait is: where CPU is
    a small part of it (a frame mostly waits for its calls), the stretch may move further.
    """
    tol = 0.02 * stretch + 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        alt = 0.05 * hold * lat / cpu_frame
    use = (cpu_frame > 0.0) & (lat > 0.0) & (hold > 0.0) & (alt > tol) & (alt < np.inf)
    return np.where(use, alt, tol)


def window_close_reference(
    parts: dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]],
    ver_lat: np.ndarray,
    ver_err: np.ndarray,
    ver: np.ndarray,
    ready: np.ndarray,
    out: np.ndarray,
    prev: np.ndarray | None,
    breaker_open: np.ndarray,
    hold: np.ndarray | None,
    cpu_frame: np.ndarray | None,
    judge: bool,
) -> tuple[bool, float]:
    """``_tally.window_close`` as ``_close_window`` formed it before (the tests' reference):
    the window's sums part after part in NumPy, ``window_state``, ``ndarray.sum`` and
    ``window_moved``."""
    R = out.shape[1]
    lam = np.zeros(R)
    win = np.zeros((7, R))
    for r, inc, d in parts.values():
        n = min(R, r["lam"].size)
        lam[:n] += r["lam"][:n] * d
        win[:, :n] += inc["win"][:, :n] * d
    pw, mw, theta, bw, stretch, rej, slack, drop, weight, mean_wait, err_r, lat = out
    err_r[:] = ver_err[ver]
    lat[:] = ver_lat[ver]
    window_state(lam, win, lat, ready, pw, mw, theta, bw, stretch, rej, slack, drop, weight, mean_wait)
    wsum = float(weight.sum())
    if not judge or prev is None or prev.size != 7 * R + breaker_open.size:
        return True, wsum
    if hold is None or hold.size != R:
        hold = np.ones(R)
    if cpu_frame is None or cpu_frame.size != R:
        cpu_frame = np.zeros(R)
    moved = window_moved(
        prev, mean_wait, pw, stretch, rej, drop, weight, wsum, breaker_open, err_r, hold, cpu_frame, lat
    )
    return bool(moved), wsum


class FlowWindows:
    """Closing windows, composing, learning (a part of ``FlowPlane``)."""

    program: Program
    graph: CallGraph
    composer: Composer
    S: int
    E: int
    ep_svc: np.ndarray
    conc: np.ndarray
    cores: np.ndarray
    cb: np.ndarray
    entries: list[list[int]]
    ver_err: np.ndarray
    ver_lat: np.ndarray
    breaker_open: np.ndarray
    _cb_until: np.ndarray
    call_fail: np.ndarray
    retry_mult: np.ndarray
    call_mean: np.ndarray
    call_var: np.ndarray
    started_fail: np.ndarray
    srv_mean: np.ndarray
    srv_buckets: np.ndarray
    resid: np.ndarray
    _ready: list[list[int]]
    _topology: int
    _windows: int
    _since_full: int
    _since_compose: int
    _judged_src: dict[str, np.ndarray] | None
    _calls: dict[int, CallSamples] | None
    _learnt: dict[int, CallSamples]
    _u: dict[str, np.ndarray]
    _last: dict[str, np.ndarray]
    _w_att: np.ndarray
    _win_parts: dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]]
    _sig: np.ndarray | None
    _unit_table: UnitTable  # see tally.unit_stats (made at the first composition)
    _learn_cache: tuple[
        tuple[np.ndarray, np.ndarray, np.ndarray], list[tuple[list[int], np.ndarray, int]], list[int]
    ]  # see _learn_groups

    # The plane's (declared here only: FlowPlane and FlowRouting define them).
    replicas: _Replicas
    _reset_window: Callable[[], None]
    _recompute_flows: Callable[[], None]

    @property
    def _plane(self) -> FlowPlane:
        return cast("FlowPlane", self)

    # The window's close in one compiled call (``_tally.window_close``); False: the former
    # NumPy sums and kernel calls (``window_close_reference``, the tests' reference).
    fused_close = True

    def _close_window(self, t_end: float) -> None:
        rp = self.replicas  # (simulates a deferred quiet stretch first, should one be pending)
        win_parts = self._win_parts
        src = next(iter(win_parts.values()))[0] if len(win_parts) == 1 else None
        if src is not None and src is self._judged_src and self._since_full < 240:
            # Steady: the window replayed the very tick an earlier window was judged on, so
            # its queue state is that window's: the composition stays valid.
            self._since_compose += 1
            self._since_full += 1
            apply_unit_stats(self, self._u, t_end)  # type: ignore[arg-type]  # (self is the plane)
            self._reset_window()
            return
        R = rp.svc.shape[0]
        prev: np.ndarray | None = getattr(self, "_sig", None)
        out = np.empty((12, R))
        last = self._last
        stale, wsum = (window_close if self.fused_close else window_close_reference)(
            self._win_parts, self.ver_lat, self.ver_err, rp.ver, rp.ready.view(np.uint8), out, prev,
            self.breaker_open, last.get("hold"), last.get("cpu_frame"), self._since_full < 240,
        )  # fmt: skip
        # Compose again only when the queues have changed since the last composition (or
        # now and then: not judged without a signature of this layout, or after 240 windows);
        # steady stretches reuse it, which is most of a day.
        # What matters is judged on its own scale: waits, and stretches of the CPU time, against
        # the holding time, chances and shares in absolute terms (``_tally.window_moved``; the
        # signature and its tolerances are built only to compose).
        if stale:
            pw, _mw, theta, bw, stretch, rej, slack, drop, weight, _mean_wait, err_r, lat = out
            if self.fused_close:
                sig = np.empty(7 * R + self.E)
                moved = np.empty(sig.size, dtype=np.uint8)
                judged = window_signature(
                    out, wsum, self.breaker_open, prev, last.get("hold"), last.get("cpu_frame"), sig, moved
                )
            else:
                sig, judged, moved = self._signature_reference(out, wsum, prev)
            ps_rho, ps_mu, ps_scale = self._ps_shape(stretch, lat)
            hop = HopState(
                weight=weight,
                pwait=pw,
                theta=theta,
                bwait=bw,
                stretch=stretch,
                reject=rej,
                slack=slack,
                drop=drop,
                err_rate=err_r,
                breaker_open=self.breaker_open,
                ps_rho=ps_rho,
                ps_mu=ps_mu,
                ps_scale=ps_scale,
            )
            ready = [np.asarray(s, dtype=np.int64) for s in self._ready]
            # Every endpoint afresh now and then (every 240 windows: an hour at 15 s), so that
            # no sample set is reused all day.
            full = prev is None or prev.size != sig.size or self._since_full >= 240 or self._calls is None
            if full:
                calls = self.composer.compose(hop, ready)
                self._learn(calls, t_end)
                self._sig = sig
                self._since_full = 0
            else:
                assert prev is not None and judged
                svc_dirty, ep_dirty, keep = self._dirty(moved, R)
                calls = self.composer.compose(hop, ready, only=ep_dirty, prev=self._calls)
                self._learn(calls, t_end, services=np.nonzero(svc_dirty)[0])
                # What was composed again is judged from now on against its new state; the
                # rest keeps its old reference, so slow drifts still add up.
                self._sig = np.where(keep, prev, sig)
            self._calls = calls
            journeys = self.composer.journeys(calls, self.entries)
            self._u = unit_stats(self._plane, calls, journeys)
            self._topology += 1  # what was learnt changes the ticks: compute the next one afresh
            self._since_compose = 0
            self._judged_src = None  # the composition changes the ticks that follow
        else:
            self._since_compose += 1
            self._judged_src = src
        self._since_full += 1
        apply_unit_stats(self._plane, self._u, t_end)
        self._reset_window()

    def _signature_reference(
        self, out: np.ndarray, wsum: float, prev: np.ndarray | None
    ) -> tuple[np.ndarray, bool, np.ndarray]:
        """``_tally.window_signature`` as NumPy (the tests' reference): the signature, whether
        it was judged against ``prev``, and which entries moved past their tolerances."""
        R = out.shape[1]
        pw, _mw, _theta, _bw, stretch, rej, _slack, drop, weight, mean_wait, err_r, lat = out
        sig = np.concatenate(
            (mean_wait, pw, stretch, rej, drop, weight / max(wsum, 1e-300), self.breaker_open, err_r)
        )
        if prev is None or prev.size != sig.size:
            return sig, False, np.zeros(sig.size, dtype=np.uint8)
        hold = self._last.get("hold", _NONE)
        if hold.size != R:
            hold = np.ones(R)
        cpu_frame = self._last.get("cpu_frame", _NONE)
        if cpu_frame.size != R:
            cpu_frame = np.zeros(R)
        tol = np.concatenate(
            (
                0.05 * hold + 1e-6,
                np.full(R, 0.02),
                stretch_tolerance(stretch, hold, cpu_frame, lat),
                np.full(R, 0.005),
                np.full(R, 0.005),
                np.full(R, 0.02),
                np.full(self.E, 1e-9),
                np.full(R, 1e-9),
            )
        )
        moved = np.abs(sig - prev) > np.maximum(tol, 0.02 * np.abs(prev))
        return sig, True, moved.view(np.uint8)

    def _ps_shape(self, stretch: np.ndarray, lat: np.ndarray | None = None) -> tuple[_Opt, _Opt, _Opt]:
        """Per replica, what spreads a CPU step's time around its mean under processor sharing
        (``latency.ps_sojourn``): replicas whose workers share at most one core and whose CPU is
        not saturated (saturated, every job shares it with all the others alike).

        ``stretch`` is the window's mean stretch, ``lat · k1 / C`` with ``k1`` the mean
        sojourn of a job over its time alone (``1 + f u/(1-u)``): the effective M/M/1-PS load
        is ``1 - 1/k1``, the rate a frame's CPU work alone is served at ``C / cpu_frame``.
        """
        rp = self.replicas
        R = rp.svc.shape[0]
        cpu_frame = self._last.get("cpu_frame")
        if cpu_frame is None or cpu_frame.size != R:
            return None, None, None
        if self.fused_close:
            rho, mu, scale = np.empty(R), np.empty(R), np.empty(R)
            lat_r = self.ver_lat[rp.ver] if lat is None else lat
            if not ps_shape(
                stretch, lat_r, rp.svc, rp.alive, self.cores, self.conc, cpu_frame, rho, mu, scale
            ):
                return None, None, None
            return rho, mu, scale
        svc = np.maximum(rp.svc, 0)
        cores = self.cores[svc]
        conc = self.conc[svc].astype(np.float64)
        ps = (cores < conc) & (cores <= 1.0) & (rp.alive == 1)
        if not ps.any():
            return None, None, None
        lat = self.ver_lat[rp.ver]
        with np.errstate(divide="ignore", invalid="ignore"):
            slow = stretch / lat
            k1 = slow * cores
            cap = np.maximum(conc, 1.0) / cores  # the stretch of a saturated CPU (replica_prep)
            on = ps & (k1 > 1.0 + 1e-9) & (slow < cap * (1.0 - 1e-9)) & (cpu_frame > 0.0)
            rho = np.where(on, 1.0 - 1.0 / k1, 0.0)
            mu = np.where(on, cores / cpu_frame, 0.0)
            scale = np.where(on, lat / cores, 0.0)
        return rho, mu, scale

    def _dirty(self, moved: np.ndarray, R: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From the signature entries that moved (a flag per entry): the services and endpoints
        to compose again (an endpoint whose replicas or breaker moved, and every caller above
        it), and the signature entries that keep their old reference. In one compiled call
        (``_tally.dirty_sets``) unless ``fused_close`` is off (``_dirty_reference``)."""
        if not self.fused_close:
            return self._dirty_reference(moved.view(bool), R)
        g = self.graph
        svc_dirty = np.empty(self.S, dtype=np.uint8)
        ep_dirty = np.empty(self.E, dtype=np.uint8)
        keep = np.empty(moved.size, dtype=np.uint8)
        dirty_sets(moved.view(np.uint8), self.replicas.svc, self.ep_svc, g.edge_src, g.edge_dst, svc_dirty,
                   ep_dirty, keep)  # fmt: skip
        return svc_dirty.view(bool), ep_dirty.view(bool), keep.view(bool)

    def _dirty_reference(self, moved: np.ndarray, R: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_dirty`` in NumPy (the reference)."""
        E = self.E
        per_rep = np.concatenate((moved[: 6 * R].reshape(6, R), moved[6 * R + E :].reshape(1, R))).any(axis=0)
        rp = self.replicas
        svc_dirty = np.zeros(self.S, dtype=bool)
        # Not only live replicas: a service whose last replica died moved too.
        hit = per_rep & (rp.svc >= 0)
        svc_dirty[rp.svc[hit]] = True
        ep_dirty = svc_dirty[self.ep_svc] | moved[6 * R : 6 * R + E]
        g = self.graph
        while True:  # callers of what is composed again are composed again too
            up = np.zeros(E, dtype=bool)
            up[g.edge_src[ep_dirty[g.edge_dst]]] = True
            if not np.any(up & ~ep_dirty):
                break
            ep_dirty |= up
        svc_dirty[self.ep_svc[ep_dirty]] = True
        rep_clean = ~svc_dirty[np.maximum(rp.svc, 0)]
        keep = np.concatenate((np.tile(rep_clean, 6), ~ep_dirty, rep_clean))
        return svc_dirty, ep_dirty, keep

    def _learn_groups(self) -> tuple[list[tuple[list[int], np.ndarray, int]], list[int]]:
        """Per service its endpoints (ascending, as a list and as an index) and its workers, and
        the endpoints with a circuit breaker: what ``_learn`` reads at every composition, made
        again only when the arrays they come from are replaced."""
        key = (self.ep_svc, self.conc, self.cb)
        cached = getattr(self, "_learn_cache", None)
        if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
            return cached[1], cached[2]
        groups = []
        for s in range(self.S):
            eps_idx = np.nonzero(self.ep_svc == s)[0]
            groups.append((eps_idx.tolist(), eps_idx, int(self.conc[s])))
        cb_eps = np.nonzero(self.cb)[0].tolist()
        self._learn_cache = (key, groups, cb_eps)
        return groups, cb_eps

    def _learn(self, calls: dict[int, CallSamples], t_end: float, services: np.ndarray | None = None) -> None:
        """What the next window's ticks assume: failure rates, retries, durations, breakers.

        ``services``: whose holding-time shape to learn again (all when None).
        """
        # The shape of each service's holding time (cheap for small platforms: every window;
        # for large ones, every 50th).
        if self._windows % (1 if self.S <= 50 else 50) == 0:
            groups = self._learn_groups()[0]
            w_att = self._w_att
            for s in range(self.S) if services is None else services.tolist():
                eps, eps_idx, conc = groups[s]
                resid = service_resid([calls[e].service for e in eps], w_att[eps_idx], conc)
                if resid is not None:
                    self.resid[s] = resid
        self._windows += 1
        for e, cs in calls.items():
            if self._learnt.get(e) is cs:
                continue  # samples kept from the last composition: nothing new to learn
            self._learnt[e] = cs
            ss = sample_stats(cs)
            self.call_fail[e] = ss.call_fail
            self.retry_mult[e] = cs.attempts
            self.call_mean[e] = ss.call_mean
            self.call_var[e] = ss.call_var
            self.started_fail[e] = cs.started_fail
            self.srv_mean[e] = ss.srv_mean
            if ss.srv_buckets is not None:
                self.srv_buckets[e] = ss.srv_buckets
        # Circuit breakers, judged on the window's attempts (resilience4j's thresholds).
        a = self.program.arrays
        for e in self._learn_groups()[1]:
            cs = calls[e]
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
