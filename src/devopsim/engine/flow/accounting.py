"""The flow plane's accounting: what a tick adds to the counters per second of it, and the
counting of every piece of time at a tick's rates (a part of ``FlowPlane``).

A tick's increments (per replica, per (replica, endpoint) pair, per service, and the window's
per-replica values weighted by the arrivals) are worked out once, by ``_queue.increments``
(``_increments_numpy`` is its reference), and bound to the counters they add to
(``_tally.Accrual``); a quiet stretch then replays the tick piece by piece with one call each.
"""

from __future__ import annotations

import numpy as np

from devopsim.engine.flow._queue import increments
from devopsim.engine.flow._tally import Accrual
from devopsim.engine.flow.replicas import _Replicas
from devopsim.engine.request import layout as L

__all__ = ["FlowAccounting"]

_EMPTY = np.empty(0)
_NO_PAIRS = np.empty(0, dtype=np.int64)


class FlowAccounting:
    """Counting pieces of time at a tick's rates (a part of ``FlowPlane``)."""

    # The plane's (declared here only: FlowPlane, FlowReplicas and FlowWindows define them).
    S: int
    E: int
    warmup: float
    ep_svc: np.ndarray
    ep_local: np.ndarray
    _ep_local64: np.ndarray
    _ep_svc64: np.ndarray
    ver_err: np.ndarray
    started_fail: np.ndarray
    srv_mean: np.ndarray
    srv_buckets: np.ndarray
    replicas: _Replicas
    _rp: _Replicas
    _stats: L.Stats
    _replica_set: int
    _err_mixed: tuple[int, bool]
    _inc_cache: tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, Accrual] | None
    _win_parts: dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]]
    _arrived_w: float
    _w_cls_all: np.ndarray
    _w_cls: np.ndarray
    _w_calls: np.ndarray
    _w_att: np.ndarray
    _w_started_w: np.ndarray

    def _account(self, t0: float, dt: float, lam_cls: np.ndarray, r: dict[str, np.ndarray]) -> None:
        """Count ``dt`` seconds at the rates ``r`` of a tick (just computed, or replayed)."""
        rp = self._rp  # (brought up to the present: called while simulating)
        warm = max(0.0, min(1.0, (t0 + dt - self.warmup) / dt))  # share of the tick after warm-up
        cached = self._inc_cache
        if cached is not None and cached[0] is r and cached[2] is rp.busy_area:
            inc, acc = cached[1], cached[3]
        else:
            # What one second at these rates adds, bound to the counters it adds to (a tick is
            # replayed for every piece of a quiet stretch).
            inc = self._increments(r)
            st = self._stats
            pairs = inc["pr"].size > 0
            acc = Accrual(
                rp.busy, rp.qlen, r["busy"], r["queue"],
                rp.busy_area, rp.occ_area, rp.cpu_area, inc["occ"], inc["cpu"],
                rp.cnt, rp.lat_sum, rp.lat_hist,
                inc["pr"] if pairs else _NO_PAIRS, inc["loc"] if pairs else _NO_PAIRS,
                inc["codes"] if pairs else np.empty((0, rp.cnt.shape[2])),
                inc["lsum"] if pairs else _EMPTY,
                inc["hist"] if pairs else np.empty((0, rp.lat_hist.shape[2])),
                st.sv_n, st.sv_err, st.sv_wn, st.sv_wsum, self._w_started_w, self._w_cls, self._w_calls,
                inc["sv_n"], inc["sv_err"], inc["sv_srv"], inc["sv_wsum"], r["calls"],
                st.cls_arr, self._w_cls_all, self._w_att, r["attempts"],
            )  # fmt: skip
            self._inc_cache = (r, inc, rp.busy_area, acc)
        acc.add(dt, warm > 0, warm * dt, lam_cls)
        if warm > 0 and t0 + dt > self.warmup:
            self._arrived_w += float(lam_cls.sum()) * (warm * dt)
        part = self._win_parts.get(id(r))
        self._win_parts[id(r)] = (r, inc, dt + (part[2] if part is not None else 0.0))

    # The compiled increments (``_queue.increments``); the NumPy reference can be switched in.
    compiled_increments = True

    def _increments(self, r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What one second at the rates ``r`` adds to the counters (a tick is replayed often)."""
        live = r["live"]
        if not self.compiled_increments or not live.size:
            return self._increments_numpy(r)
        pr, pe = self._pairs(live)
        served, mix = r["served"], r["mix"]
        fail = self._mixed_fail(served[pr] * mix[pe], pr, pe) if self._versions_differ() else _EMPTY
        R, P, S = served.size, pr.size, self.S
        occ, cpu = np.empty((2, R))
        loc = np.empty(P, dtype=np.int64)
        codes = np.empty((P, L.N_CODES))
        lsum = np.empty(P)
        hist = np.empty((P, self.srv_buckets.shape[1]))
        sv_n, sv_err, sv_srv, sv_wsum = np.empty((4, S))
        win = r["win"]
        winw = np.empty_like(win)
        increments(
            served, r["rejected"], r["dropped"], r["busy"], r["queue"], r["cpu_frame"], r["mwait"], mix,
            live, r["svc"], pr, pe, fail, self.started_fail, self._ep_local64, self._ep_svc64, self.srv_mean,
            self.srv_buckets, r["lam"], win,
            occ, cpu, loc, codes, lsum, hist, sv_n, sv_err, sv_srv, sv_wsum, winw,
        )  # fmt: skip
        return {
            "occ": occ,
            "cpu": cpu,
            "pr": pr,
            "loc": loc,
            "codes": codes,
            "lsum": lsum,
            "hist": hist,
            "sv_n": sv_n,
            "sv_err": sv_err,
            "sv_srv": sv_srv,
            "sv_wsum": sv_wsum,
            "win": winw,
        }

    def _versions_differ(self) -> bool:
        """Whether a service's live replicas run versions that differ in injected errors (a
        canary), rechecked only when the replicas or their versions change."""
        if self._err_mixed[0] != self._replica_set:
            rp = self.replicas
            on = np.flatnonzero(rp.alive == 1)
            rates: dict[int, float] = {}
            mixed = False  # a service with two error rates
            for sv, er in zip(rp.svc[on].tolist(), self.ver_err[rp.ver[on]].tolist(), strict=True):
                if rates.setdefault(sv, er) != er:
                    mixed = True
                    break
            self._err_mixed = (self._replica_set, mixed)
        return self._err_mixed[1]

    def _mixed_fail(self, fr: np.ndarray, pr: np.ndarray, pe: np.ndarray) -> np.ndarray:
        """Per pair, the chance a started attempt fails where versions differ in injected
        errors: each replica answers 500 at its own version's rate on top of the endpoint's
        other failures, the same total (``fr``: the pairs' served frames)."""
        fail = self.started_fail[pe]
        e_r = self.ver_err[self.replicas.ver[pr]]
        n_e = np.maximum(np.bincount(pe, weights=fr, minlength=self.E), 1e-300)
        e_bar = np.bincount(pe, weights=fr * e_r, minlength=self.E) / n_e
        other = np.clip(1.0 - (1.0 - fail) / np.maximum(1.0 - e_bar[pe], 1e-12), 0.0, 1.0)
        mixed: np.ndarray = 1.0 - (1.0 - e_r) * (1.0 - other)
        return mixed

    def _increments_numpy(self, r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """NumPy reference of :meth:`_increments`."""
        live, svc, mix = r["live"], r["svc"], r["mix"]
        served, rejected, dropped = r["served"], r["rejected"], r["dropped"]
        inc: dict[str, np.ndarray] = {
            "occ": r["busy"] + r["queue"],
            "cpu": served * r["cpu_frame"],
        }
        if live.size:
            # Every (replica, endpoint of its service) pair at once.
            pr, pe = self._pairs(live)
            fr = served[pr] * mix[pe]
            fail = self._mixed_fail(fr, pr, pe) if self._versions_differ() else self.started_fail[pe]
            codes = np.empty((pr.size, L.N_CODES))
            codes[:, L.CODE_200] = fr * (1.0 - fail)
            codes[:, L.CODE_500] = fr * fail
            codes[:, L.CODE_503] = rejected[pr] * mix[pe]
            codes[:, L.CODE_504] = dropped[pr] * mix[pe]
            inc.update(
                pr=pr,
                loc=np.ascontiguousarray(self.ep_local[pe], dtype=np.int64),
                codes=codes,
                lsum=fr * self.srv_mean[pe],
                hist=fr[:, None] * self.srv_buckets[pe],
            )
            sl = svc[live]
            srv_s = np.bincount(sl, weights=served[live], minlength=self.S)
            ep_fail_frames = np.bincount(self.ep_svc, weights=mix * self.started_fail, minlength=self.S)
            inc["sv_n"] = np.bincount(sl, weights=(served + rejected + dropped)[live], minlength=self.S)
            inc["sv_err"] = (
                np.bincount(sl, weights=(rejected + dropped)[live], minlength=self.S) + srv_s * ep_fail_frames
            )
            inc["sv_srv"] = srv_s
            # Mean queue waits are exact (from the queue state), not sampled.
            inc["sv_wsum"] = np.bincount(sl, weights=(served * r["mwait"])[live], minlength=self.S)
        else:
            inc["pr"] = np.empty(0, dtype=np.int64)
            inc["sv_n"] = inc["sv_err"] = inc["sv_srv"] = inc["sv_wsum"] = np.zeros(self.S)
        lam = r["lam"]
        inc["win"] = lam * r["win"]  # (the rows pw_tail, mean_w, bwait, slack, drop_frac, k, rej_frac)
        return inc

    def _pairs(self, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(replica, endpoint) index pairs for the live replicas, cached while they do not change."""
        key = live.tobytes() + self.replicas.svc[live].tobytes()
        if key != getattr(self, "_pairs_key", None):
            pr, pe = [], []
            for r in live:
                eps = np.nonzero(self.ep_svc == self.replicas.svc[r])[0]
                pr.append(np.full(eps.size, r))
                pe.append(eps)
            self._pairs_val = (np.concatenate(pr), np.concatenate(pe))
            self._pairs_key = key
        return self._pairs_val
