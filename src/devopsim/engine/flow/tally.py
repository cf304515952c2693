"""Counting a window's traffic with statistics per unit of traffic (the flow plane's tallies).

A composition gives, per request of a class, per call to an endpoint and per frame a
service starts, the chances of each outcome and the latency histograms. Those "unit"
statistics are reused while the queues stay steady; each window's traffic volumes
multiply them into the run's statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from devopsim.engine.flow._stats import call_stats, class_units, endpoint_stats, residual_ratio
from devopsim.engine.flow._stats import service_resid as _service_resid
from devopsim.engine.flow._tally import (
    ClassCounters,
    UnitRows,
    add_rows,
    apply_classes,
    combine_units,
    flush_units,
    set_row,
)
from devopsim.engine.flow.latency import CallSamples
from devopsim.engine.request import layout as L
from devopsim.results.stats import lh_indices

if TYPE_CHECKING:
    from devopsim.engine.flow.plane import FlowPlane

__all__ = [
    "LAZY_FIELDS",
    "EndpointUnit",
    "PendingVolumes",
    "SampleStats",
    "StatsView",
    "UnitTable",
    "apply_unit_stats",
    "flush_pending",
    "new_stats",
    "sample_stats",
    "service_resid",
    "unit_stats",
]


def unit_stats(
    plane: FlowPlane,
    calls: dict[int, CallSamples],
    journeys: list[tuple[np.ndarray, np.ndarray]],
    reference: bool = False,
) -> dict[str, np.ndarray]:
    """Statistics per unit of traffic, from the composed samples (reused while queues are steady).

    Two compiled calls: ``_stats.class_units`` (each class's journey in one pass) and
    ``_tally.combine_units`` (the endpoints' rows, and each service's from its endpoints by
    their share of its attempts), into one of two buffers of ``UnitTable`` (the other one may
    still be pending, see ``PendingVolumes``). ``reference``: the former Python loops (the
    same numbers, in fresh arrays).
    """
    if reference or len(calls) != plane.E:
        return _unit_stats_reference(plane, calls, journeys)
    tab: UnitTable | None = getattr(plane, "_unit_table", None)
    if tab is None:
        tab = plane._unit_table = UnitTable(plane)
    for e, cs in calls.items():
        if tab.cs[e] is not cs:  # samples composed again: their statistics too
            tab.set(e, cs)
    u, seen = tab.buffer(getattr(plane, "_u", None), plane._pending.u)
    # A class whose journey is its one entry endpoint's samples (no front-door delay or loss)
    # has that endpoint's statistics: class_units takes them (only its SLO shares counted).
    known: list[tuple[float, float, float, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray] | None] = []
    for stages, (d, o) in zip(plane.entries, journeys, strict=True):
        entry = calls.get(int(stages[0])) if len(stages) == 1 else None
        ss = entry.stats if entry is not None and entry.duration is d and entry.outcome is o else None
        eu = ss.unit if ss is not None else None
        if ss is None or eu is None or ss.call_pb is None or eu.spans is None:
            known.append(None)
        else:
            known.append((eu.ok, eu.lsum, ss.call_mean, eu.err, eu.hist, eu.spans, ss.call_pb))
    class_units(
        [np.ascontiguousarray(d, dtype=np.float64) for d, _ in journeys],
        [np.ascontiguousarray(o, dtype=np.int64) for _, o in journeys],
        tab.thr,
        u["cls_ok"],
        u["cls_err"],
        u["cls_lsum"],
        u["cls_hist"],
        u["cls_asum"],
        u["cls_pb"],
        u["slo"],
        u["cls_span"],
        known,
    )
    combine_units(
        tab.grp_off,
        tab.grp_ep,
        plane._w_att,
        tab.sc,
        tab.err,
        tab.hist,
        tab.has,
        tab.stamp,
        seen,
        u["ep_ok"],
        u["ep_err"],
        u["ep_lsum"],
        u["ep_hist"],
        u["sv_ok"],
        u["sv_lsum"],
        u["sv_hist"],
        u["sv_wsum"],
        u["sv_whist"],
        (tab.span, u["ep_span"], u["sv_span"], u["sv_wspan"]),
    )
    return u


def _new_units(C: int, E: int, S: int, Q: int) -> dict[str, np.ndarray]:
    return {
        "cls_ok": np.zeros(C),
        "cls_err": np.zeros((C, L.N_ERR)),
        "cls_lsum": np.zeros(C),
        "cls_hist": np.zeros((C, L.LH_N)),
        "cls_asum": np.zeros(C),
        "cls_pb": np.zeros((C, L.N_PB)),
        "slo": np.zeros((C, Q)),
        # Per class, the buckets [lo, hi) outside which its cls_hist row is 0 (all of them
        # unless class_units narrowed it).
        "cls_span": _whole(C),
        "ep_ok": np.zeros(E),
        "ep_err": np.zeros((E, L.N_ERR)),
        "ep_lsum": np.zeros(E),
        "ep_hist": np.zeros((E, L.LH_N)),
        "sv_ok": np.zeros(S),
        "sv_lsum": np.zeros(S),
        "sv_hist": np.zeros((S, L.LH_N)),
        "sv_wsum": np.zeros(S),
        "sv_whist": np.zeros((S, L.LH_N)),
        # Likewise for the endpoint and service histograms (combine_units narrows them).
        "ep_span": _whole(E),
        "sv_span": _whole(S),
        "sv_wspan": _whole(S),
    }


def _whole(n: int) -> np.ndarray:
    """``n`` spans of every histogram bucket."""
    return np.tile(np.array([0, L.LH_N], dtype=np.int64), (n, 1))


_NO_ROW = np.empty(0)


class UnitTable:
    """Each endpoint's unit statistics as rows (from the samples it was last composed with),
    what does not change between compositions (the endpoints of each service, the SLO
    thresholds of each class), and two buffers of per-unit statistics that ``unit_stats``
    fills in turn: the last one may still be pending (``PendingVolumes``) while the next is
    filled, and reusing them spares a fresh half megabyte (and its page faults) per
    composition."""

    def __init__(self, plane: FlowPlane) -> None:
        C, E, S = plane.C, plane.E, plane.S
        self.shape = (C, E, S, int(plane._slo_cls.size))
        self.cs: list[CallSamples | None] = [None] * E
        self.sc = np.zeros((E, 5))  # ok, lsum, sv_ok, sv_lsum, sv_wmean
        self.err = np.zeros((E, L.N_ERR))
        self.hist = np.zeros((3, E, L.LH_N))  # ok calls, ok answers, waits
        self.span = np.zeros((3, E, 2), dtype=np.int64)  # the buckets [lo, hi) outside which a row is 0
        self.has = np.zeros((E, 2), dtype=np.uint8)  # has answers, has waits
        self.stamp = np.zeros(E, dtype=np.int64)  # bumped when a row changes
        self._rows = UnitRows(self.sc, self.err, self.hist, self.has, self.stamp, self.span)
        ep_svc = np.asarray(plane.ep_svc, dtype=np.int64)
        ok = (ep_svc >= 0) & (ep_svc < S)
        order = np.argsort(ep_svc[ok], kind="stable")
        self.grp_ep = np.ascontiguousarray(np.nonzero(ok)[0][order], dtype=np.int64)
        self.grp_off = np.zeros(S + 1, dtype=np.int64)
        self.grp_off[1:] = np.cumsum(np.bincount(ep_svc[ok], minlength=S))
        cls = np.asarray(plane._slo_cls)
        thr_all = np.asarray(plane._slo_thr, dtype=np.float64)
        # NaN thresholds: the SLOs of other classes (no sample is within NaN).
        self.thr = np.ascontiguousarray(
            [np.where((cls < 0) | (cls == c), thr_all, np.nan) for c in range(C)], dtype=np.float64
        ).reshape(C, cls.size)
        self._bufs: list[tuple[dict[str, np.ndarray], np.ndarray]] = []

    def set(self, e: int, cs: CallSamples) -> None:
        """Row ``e`` from ``cs``'s statistics (one compiled call, ``_tally.UnitRows.set``;
        ``set_reference``: the NumPy assignments it replaces)."""
        eu = sample_stats(cs).unit
        self.cs[e] = cs
        self._rows.set(
            e,
            eu.ok,
            eu.lsum,
            eu.sv_ok,
            eu.sv_lsum,
            eu.sv_wmean,
            eu.err,
            eu.hist,
            eu.sv_hist,
            eu.sv_whist,
            eu.spans,
        )

    def set_reference(self, e: int, cs: CallSamples) -> None:
        """``set`` in NumPy (the tests' reference)."""
        eu = sample_stats(cs).unit
        self.cs[e] = cs
        self.sc[e] = (eu.ok, eu.lsum, eu.sv_ok, eu.sv_lsum, eu.sv_wmean)
        self.err[e] = eu.err
        h, span = self.hist, self.span
        for i, x in enumerate((eu.hist, eu.sv_hist, eu.sv_whist)):
            set_row(h[i, e], span[i, e], _NO_ROW if x is None else x)
        self.has[e] = (eu.sv_hist is not None, eu.sv_whist is not None)
        self.stamp[e] += 1

    def buffer(self, *busy: dict[str, np.ndarray] | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """A buffer none of ``busy`` is (and the stamps of the endpoint rows it holds)."""
        for buf in self._bufs:
            if not any(buf[0] is b for b in busy):
                return buf
        buf = (_new_units(*self.shape), np.full(self.stamp.size, -1, dtype=np.int64))
        self._bufs.append(buf)
        return buf


def _unit_stats_reference(
    plane: FlowPlane, calls: dict[int, CallSamples], journeys: list[tuple[np.ndarray, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``unit_stats`` by Python loops over classes, endpoints and services (the reference)."""
    C, E, S = plane.C, plane.E, plane.S
    u = _new_units(C, E, S, plane._slo_cls.size)
    thr_all = np.asarray(plane._slo_thr, dtype=np.float64)
    for c, (dur, outcome) in enumerate(journeys):
        k = dur.size
        # NaN thresholds: the SLOs of other classes (no sample is within NaN).
        thr = np.where((plane._slo_cls < 0) | (plane._slo_cls == c), thr_all, np.nan)
        err = np.zeros(L.N_ERR + 1)
        good = np.zeros(thr.size)
        n_ok, ok_sum, mean, _ = call_stats(
            np.ascontiguousarray(dur, dtype=np.float64),
            np.ascontiguousarray(outcome, dtype=np.int64),
            err,
            u["cls_hist"][c],
            1.0 / k,
            u["cls_pb"][c],
            1.0 / k,
            thr,
            good,
        )
        u["cls_ok"][c] = n_ok / k
        u["cls_err"][c] = _fold_errors(err) / k
        u["cls_asum"][c] = mean
        u["cls_lsum"][c] = ok_sum / k
        u["slo"][c] = good / k
    cache = plane._unit_cache
    for e, cs in calls.items():
        hit = cache.get(e)
        if hit is None or hit[0] is not cs:  # samples composed again: their statistics too
            hit = cache[e] = (cs, sample_stats(cs).unit)
        eu = hit[1]
        u["ep_ok"][e] = eu.ok
        u["ep_err"][e] = eu.err
        u["ep_lsum"][e] = eu.lsum
        if eu.hist is not None:
            u["ep_hist"][e] = eu.hist
    # Server side, per service and per started frame: ok answers' latency, and queue waits,
    # each endpoint weighed by its share of the service's attempts in the window.
    groups: dict[int, list[int]] = {}
    for e, s in enumerate(plane.ep_svc.tolist()):
        groups.setdefault(s, []).append(e)
    w_att = plane._w_att.tolist()
    for s, eps in groups.items():
        if not 0 <= s < S:
            continue
        total = sum(w_att[e] for e in eps)
        for e in eps:
            w = w_att[e] / total if total > 0 else 1.0 / len(eps)
            eu = cache[e][1]
            if eu.sv_hist is not None:
                u["sv_ok"][s] += w * eu.sv_ok
                u["sv_lsum"][s] += w * eu.sv_lsum
                u["sv_hist"][s] += eu.sv_hist if w == 1.0 else w * eu.sv_hist
            if eu.sv_whist is not None:
                u["sv_wsum"][s] += w * eu.sv_wmean
                u["sv_whist"][s] += eu.sv_whist if w == 1.0 else w * eu.sv_whist
    return u


@dataclass
class EndpointUnit:
    """What one endpoint's samples give per logical call and per started frame (kept while
    the samples are reused by later compositions)."""

    ok: float
    err: np.ndarray
    lsum: float
    hist: np.ndarray | None
    sv_ok: float = 0.0  # ok answers per started frame
    sv_lsum: float = 0.0  # their latency summed, per started frame
    sv_hist: np.ndarray | None = None  # their histogram, per started frame
    sv_wmean: float = 0.0  # mean queue wait
    sv_whist: np.ndarray | None = None  # queue-wait histogram, per wait
    # The buckets [lo, hi) outside which hist, sv_hist, sv_whist are 0 (3 x 2; None: unknown).
    spans: np.ndarray | None = None


def _fold_errors(counts: np.ndarray) -> np.ndarray:
    """Counts per outcome code (``N_ERR + 1`` of them) as the error kinds reported: an open
    breaker counts as a rejection."""
    err = counts[: L.N_ERR].astype(np.float64)
    err[L.ERR_REJECTED] += counts[L.ERR_BREAKER]
    return err


@dataclass
class SampleStats:
    """What one endpoint's samples give, drawn in one pass each (``sample_stats``) and kept
    with them: the tallies' unit statistics and what the plane learns for its ticks."""

    unit: EndpointUnit
    call_fail: float  # share of calls that failed
    call_mean: float  # mean call duration
    call_var: float  # its variance
    srv_mean: float  # mean server response of the attempts answered ok (0: none)
    srv_buckets: np.ndarray | None  # their Prometheus buckets, as shares (None: none)
    call_pb: np.ndarray | None = None  # the ok calls' Prometheus buckets per call


def sample_stats(cs: CallSamples) -> SampleStats:
    """The statistics of ``cs``, computed once (kept in ``cs.stats``).

    One compiled pass (``_stats.endpoint_stats``) gives what the NumPy expressions of
    ``errors_of``, ``_endpoint_unit`` and the plane's learning give: outcome shares, sums,
    the log-spaced and Prometheus histograms (the tests compare them).
    """
    if cs.stats is not None:
        return cs.stats
    k = cs.duration.size
    n_started = cs.server.size
    err = np.zeros(L.N_ERR + 1)
    hist, sv_hist, whist = np.zeros((3, L.LH_N))
    pb = np.zeros(L.N_PB)
    spans = np.zeros((3, 2), dtype=np.int64)
    call_pb = np.zeros(L.N_PB)
    n_ok, ok_sum, mean, var, n_sok, s_sum, n_w, w_sum = endpoint_stats(
        cs.duration,
        cs.outcome,
        cs.server,
        cs.server_ok.view(np.uint8),
        cs.wait,
        err,
        hist,
        sv_hist,
        pb,
        whist,
        spans,
        call_pb,
    )
    eu = EndpointUnit(
        ok=n_ok / k, err=_fold_errors(err) / k, lsum=ok_sum / k, hist=hist if n_ok else None, spans=spans
    )
    if n_sok:
        eu.sv_ok = n_sok / n_started
        eu.sv_lsum = s_sum / n_started
        eu.sv_hist = sv_hist
    if n_w:
        eu.sv_wmean = w_sum / n_w
        eu.sv_whist = whist
    cs.stats = SampleStats(
        unit=eu,
        call_fail=(k - n_ok) / k,
        call_mean=mean,
        call_var=var,
        srv_mean=s_sum / n_sok if n_sok else 0.0,
        srv_buckets=pb if n_sok else None,
        call_pb=call_pb,
    )
    return cs.stats


def service_resid(
    parts: list[np.ndarray], weights: np.ndarray, conc: int, reference: bool = False
) -> float | None:
    """``queueing.min_residual_ratio`` of a service's holding times, for ``conc`` workers.

    ``parts``: each endpoint's ``CallSamples.service``, weighed by ``weights`` (its
    attempts; all equal when none): up to 4,000 samples in all (they pin the ratio down
    well enough), each endpoint its share. None when no attempt started.

    One compiled pass (``_stats.service_resid``: the values taken, bucket-sorted, the ratio);
    ``reference``: the NumPy expressions it replaces (the same sorted values, the same
    result).
    """
    if weights.sum() <= 0:
        weights = np.ones(len(parts))
    share = weights / weights.sum()
    if not reference:
        return _service_resid(parts, share, int(conc))
    take = []
    for x, w in zip(parts, share, strict=True):
        x = x[np.isfinite(x)]
        if x.size:
            take.append(x[: max(1, round(float(w) * min(x.size, 4000)))])
    if not take:
        return None
    return float(residual_ratio(np.sort(np.concatenate(take)), int(conc)))


def errors_of(outcome: np.ndarray) -> np.ndarray:
    """Share of each error kind among the samples (NumPy; ``sample_stats``' reference)."""
    out = np.bincount(np.where(outcome >= 0, outcome, L.N_ERR + 1), minlength=L.N_ERR + 2)[: L.N_ERR + 1]
    err = out[: L.N_ERR].astype(np.float64)
    err[L.ERR_REJECTED] += out[L.ERR_BREAKER] if out.size > L.ERR_BREAKER else 0
    return err / outcome.size


def _endpoint_unit(cs: CallSamples, errors: Callable[[np.ndarray], np.ndarray] = errors_of) -> EndpointUnit:
    """An endpoint's unit statistics by NumPy expressions (``sample_stats``' reference)."""
    ok = cs.outcome == L.OK
    f_ok = float(ok.mean())
    okd = cs.duration[ok]
    eu = EndpointUnit(ok=f_ok, err=errors(cs.outcome), lsum=0.0, hist=None)
    if okd.size:
        eu.lsum = f_ok * float(okd.mean())
        eu.hist = np.bincount(lh_indices(okd), minlength=L.LH_N) * (f_ok / okd.size)
    started = np.isfinite(cs.server)
    n_started = int(started.sum())
    if n_started == 0:
        return eu
    sok = cs.server_ok & started
    if sok.any():
        x = cs.server[sok]
        eu.sv_ok = float(sok.sum()) / n_started
        eu.sv_lsum = float(x.sum()) / n_started
        eu.sv_hist = np.bincount(lh_indices(x), minlength=L.LH_N) / n_started
    wt = cs.wait[np.isfinite(cs.wait)]
    if wt.size:
        eu.sv_wmean = float(wt.mean())
        eu.sv_whist = np.bincount(lh_indices(wt), minlength=L.LH_N) / wt.size
    return eu


class PendingVolumes:
    """Endpoint and service volumes counted since the per-unit statistics last changed.

    The endpoint and service histograms are large (``E x LH_N``); multiplying them in
    every window would cost more than the rest of the window. While the per-unit
    statistics stay the same, a window only adds its volumes here; they are multiplied
    in once, when the statistics change or someone reads them (:func:`flush_pending`).
    """

    def __init__(self, E: int, S: int) -> None:
        self.u: dict[str, np.ndarray] | None = None
        self.ve = np.zeros(E)
        self.vs = np.zeros(S)
        self.counters: ClassCounters | None = None  # the class counters bound to a ``u``


# The fields that PendingVolumes holds back.
LAZY_FIELDS = frozenset(
    {"ep_n", "ep_ok", "ep_err", "ep_lsum", "ep_hist", "sv_ok", "sv_lsum", "sv_hist", "sv_whist"}
)


class StatsView:
    """The plane's statistics as readers see them: a lazy field is flushed when it is read."""

    __slots__ = ("_plane",)

    def __init__(self, plane: FlowPlane) -> None:
        self._plane = plane

    def __getattr__(self, name: str) -> np.ndarray:
        plane = self._plane
        if name in LAZY_FIELDS:
            flush_pending(plane)
        value: np.ndarray = getattr(plane._stats, name)
        return value


def _spans(u: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The endpoint and service histogram rows' spans of ``u`` (None: every bucket)."""
    if "ep_span" not in u:
        return None
    return u["ep_span"], u["sv_span"], u["sv_wspan"]


def flush_pending(plane: FlowPlane, reference: bool = False) -> None:
    """Multiply the pending volumes into the run's statistics (one compiled call,
    ``_tally.flush_units``; ``reference``: the NumPy expressions it replaces)."""
    p = plane._pending
    u = p.u
    if u is None:
        return
    st = plane._stats
    ve, vs = p.ve, p.vs
    if not reference:
        flush_units(
            st.ep_n, st.ep_ok, st.ep_err, st.ep_lsum, st.ep_hist, st.sv_ok, st.sv_lsum, st.sv_hist,
            st.sv_whist, u["ep_ok"], u["ep_err"], u["ep_lsum"], u["ep_hist"], u["sv_ok"], u["sv_lsum"],
            u["sv_hist"], u["sv_whist"], ve, vs, _spans(u),
        )  # fmt: skip
        p.u = None
        return
    st.ep_n[...] += ve
    st.ep_ok[...] += ve * u["ep_ok"]
    st.ep_err[...] += ve[:, None] * u["ep_err"]
    st.ep_lsum[...] += ve * u["ep_lsum"]
    add_rows(st.ep_hist, ve, u["ep_hist"])
    st.sv_ok[...] += vs * u["sv_ok"]
    st.sv_lsum[...] += vs * u["sv_lsum"]
    add_rows(st.sv_hist, vs, u["sv_hist"])
    add_rows(st.sv_whist, vs, u["sv_whist"])
    p.u = None
    ve[:] = 0.0
    vs[:] = 0.0


def apply_unit_stats(plane: FlowPlane, u: dict[str, np.ndarray], t_end: float) -> None:
    """Count the window's traffic with the current per-unit statistics (the class counters
    and the pending volumes in one compiled call, ``_tally.ClassCounters.window``, whose
    arrays are bound once per composition)."""
    p = plane._pending
    cc = p.counters
    if p.u is not u or cc is None or cc.u is not u or cc.st is not plane._stats:
        cc = _bind_counters(plane, u)
    cc.window(plane, t_end)


def _bind_counters(plane: FlowPlane, u: dict[str, np.ndarray]) -> ClassCounters:
    """The pending volumes flushed when ``u`` is new to them, and the class counters bound to
    ``u`` (``apply_unit_stats``' slow path, once per composition)."""
    st = plane._stats
    p = plane._pending
    if p.u is not u:
        flush_pending(plane)
        p.u = u
    cc = p.counters
    if cc is None or cc.u is not u or cc.st is not st:
        cc = p.counters = ClassCounters(
            st.cls_tot, st.cls_pb, st.cls_psum, st.cls_n, st.cls_ok, st.cls_err, st.cls_asum, st.cls_lsum,
            st.cls_hist, st.slo_good, u["cls_ok"], u["cls_err"], u["cls_pb"], u["cls_lsum"], u["cls_asum"],
            u["cls_hist"], u["slo"], u.get("cls_span"),
        )  # fmt: skip
        cc.u, cc.st = u, st
    return cc


def _apply_unit_stats_reference(plane: FlowPlane, u: dict[str, np.ndarray], t_end: float) -> None:
    """``apply_unit_stats`` as NumPy and ``apply_classes`` wrote it (the tests' reference)."""
    st = plane._stats
    little, insys = apply_classes(
        st.cls_tot,
        st.cls_pb,
        st.cls_psum,
        st.cls_n,
        st.cls_ok,
        st.cls_err,
        st.cls_asum,
        st.cls_lsum,
        st.cls_hist,
        st.slo_good,
        u["cls_ok"],
        u["cls_err"],
        u["cls_pb"],
        u["cls_lsum"],
        u["cls_asum"],
        u["cls_hist"],
        u["slo"],
        plane._w_cls_all,
        plane._w_cls,
    )
    plane._little_area += little
    plane._in_system = insys / max(t_end - plane._win_start, 1e-12)
    p = plane._pending
    if p.u is not u:
        flush_pending(plane, reference=True)
        p.u = u
    p.ve += plane._w_calls
    p.vs += plane._w_started_w


def new_stats(C: int, E: int, S: int, Q: int) -> L.Stats:
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
