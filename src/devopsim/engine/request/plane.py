"""The request plane's driver: allocates the kernel's state and steps it window by window.

Control loops and the platform model act only through this class's methods
(add a replica, mark it ready or not, retire it, kill it, change a
version's behaviour); the kernel does the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from devopsim.engine.impairment import check_impairment
from devopsim.engine.request import layout as L
from devopsim.engine.request._kernel import kill_replica, run_window
from devopsim.engine.streams import Streams
from devopsim.engine.totals import ServiceTotals, retire, service_total, service_totals, services_cpu
from devopsim.errors import SimulationError
from devopsim.model.program import LB_WEIGHTED, OP_CALL, Program

__all__ = ["RequestPlane"]


def _grow(arr: np.ndarray, n: int, fill: float | int = 0) -> np.ndarray:
    shape = (n, *arr.shape[1:])
    out = np.full(shape, fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class RequestPlane:
    """Every request simulated event by event (``plane: request``).

    Args:
        program: the compiled platform.
        streams: the run's named random streams.
        warmup: statistics ignore requests that arrive before this time, seconds.
    """

    name = "request"

    def __init__(self, program: Program, streams: Streams, warmup: float) -> None:
        self.program = program
        a = program.arrays
        S, E = len(program.services), len(program.endpoints)
        C, K = len(program.classes), len(program.samplers)
        Q = a["slo_cls"].size
        self._lmax = program.max_local
        max_conc = int(a["svc_conc"].max()) if S else 1
        self._rr = np.zeros(S, dtype=np.int64)
        self._lb_own: np.ndarray | None = None  # the services' own policies, once a weight was set
        self._ready: list[list[int]] = [[] for _ in range(S)]
        self.static = L.Static(
            svc_conc=a["svc_conc"],
            svc_qcap=a["svc_qcap"],
            svc_cores=a["svc_cores"],
            svc_ps=a["svc_ps"],
            svc_lb=a["svc_lb"],
            svc_err_smp=a["svc_err_smp"],
            svc_lb_smp=a["svc_lb_smp"],
            ready_off=np.zeros(S + 1, dtype=np.int64),
            ready_idx=np.zeros(1, dtype=np.int64),
            ep_svc=a["ep_svc"],
            ep_prog=a["ep_prog"],
            ep_local=a["ep_local"],
            ep_timeout=a["ep_timeout"],
            ep_retries=a["ep_retries"],
            ep_backoff=a["ep_backoff"],
            ep_maxbackoff=a["ep_maxbackoff"],
            ep_jitter_smp=a["ep_jitter_smp"],
            ep_retry_mask=a["ep_retry_mask"],
            ep_cb=a["ep_cb"],
            ep_cb_thr=a["ep_cb_thr"],
            ep_cb_win=a["ep_cb_win"],
            ep_cb_min=a["ep_cb_min"],
            ep_cb_wait=a["ep_cb_wait"],
            ep_cb_half=a["ep_cb_half"],
            ep_cb_off=a["ep_cb_off"],
            prog_op=a["prog_op"],
            prog_a=a["prog_a"],
            prog_b=a["prog_b"],
            prog_p=a["prog_p"],
            cls_entry_off=a["cls_entry_off"],
            cls_entry_len=a["cls_entry_len"],
            entries=a["entries"],
            slo_cls=a["slo_cls"],
            slo_thr=a["slo_thr"],
            ver_err=np.array(program.ver_err, dtype=np.float64),
            ver_lat=np.array(program.ver_lat, dtype=np.float64),
            prom_buckets=L.PROM_BUCKETS.copy(),
            svc_delay=np.zeros(S),
            svc_loss=np.zeros(S),
            cls_delay=np.zeros(C),
            svc_jitter=np.zeros(S),
        )
        self._base_cores = a["svc_cores"].copy()
        self._cls_loss: np.ndarray | None = None  # per class, share failed at the front door
        self._loss_rng = streams.generator("request/class-loss")
        self.replicas = self._new_replicas(16)
        self._free_slots: list[int] = list(range(15, -1, -1))
        self._ps_top = 0
        self.entities = self._new_entities(4096)
        self._sample_block = int(np.clip(2**21 // max(K, 1), 1024, 16384))
        smargin = 256 + 2 * max_conc
        self._sample_block = max(self._sample_block, 4 * smargin)
        self._gens = [streams.generator(smp.name) for smp in program.samplers]
        buf = np.empty((max(K, 1), self._sample_block), dtype=np.float64)
        for k in range(K):
            buf[k] = self._sample(k, self._sample_block)
        cb_ring = int(a["cb_ring_size"][0])
        ic = np.zeros(L.I_SIZE, dtype=np.int64)
        ic[L.I_FR_FREE] = ic[L.I_CA_FREE] = ic[L.I_RQ_FREE] = 4096
        ic[L.I_MARGIN] = 512 + 2 * max_conc
        ic[L.I_SMARGIN] = smargin
        fc = np.zeros(L.F_SIZE, dtype=np.float64)
        fc[L.F_WARMUP] = warmup
        self.queues = L.Queues(
            hp_t=np.zeros(4096),
            hp_seq=np.zeros(4096, dtype=np.int64),
            hp_kind=np.zeros(4096, dtype=np.int64),
            hp_id=np.zeros(4096, dtype=np.int64),
            hp_tag=np.zeros(4096, dtype=np.int64),
            nq_kind=np.zeros(4096, dtype=np.int64),
            nq_id=np.zeros(4096, dtype=np.int64),
            nq_tag=np.zeros(4096, dtype=np.int64),
            nq_arg=np.zeros(4096, dtype=np.int64),
            smp_buf=buf,
            smp_pos=np.zeros(max(K, 1), dtype=np.int64),
            cb_state=np.zeros(E, dtype=np.int64),
            cb_until=np.zeros(E),
            cb_ring=np.zeros(cb_ring, dtype=np.int64),
            cb_pos=np.zeros(E, dtype=np.int64),
            cb_count=np.zeros(E, dtype=np.int64),
            cb_fail=np.zeros(E, dtype=np.int64),
            cb_hcalls=np.zeros(E, dtype=np.int64),
            cb_hdone=np.zeros(E, dtype=np.int64),
            cb_hfail=np.zeros(E, dtype=np.int64),
            ic=ic,
            fc=fc,
        )
        self.stats = L.Stats(
            cls_n=np.zeros(C, dtype=np.int64),
            cls_ok=np.zeros(C, dtype=np.int64),
            cls_err=np.zeros((C, L.N_ERR), dtype=np.int64),
            cls_lsum=np.zeros(C),
            cls_hist=np.zeros((C, L.LH_N), dtype=np.int64),
            cls_asum=np.zeros(C),
            ep_n=np.zeros(E, dtype=np.int64),
            ep_ok=np.zeros(E, dtype=np.int64),
            ep_err=np.zeros((E, L.N_ERR), dtype=np.int64),
            ep_lsum=np.zeros(E),
            ep_hist=np.zeros((E, L.LH_N), dtype=np.int64),
            sv_n=np.zeros(S, dtype=np.int64),
            sv_err=np.zeros(S, dtype=np.int64),
            sv_ok=np.zeros(S, dtype=np.int64),
            sv_lsum=np.zeros(S),
            sv_hist=np.zeros((S, L.LH_N), dtype=np.int64),
            sv_wn=np.zeros(S, dtype=np.int64),
            sv_wsum=np.zeros(S),
            sv_whist=np.zeros((S, L.LH_N), dtype=np.int64),
            slo_good=np.zeros(Q, dtype=np.int64),
            cls_tot=np.zeros((C, 1 + L.N_ERR), dtype=np.int64),
            cls_pb=np.zeros((C, L.N_PB), dtype=np.int64),
            cls_psum=np.zeros(C),
            cls_arr=np.zeros(C, dtype=np.int64),
        )
        self.retired = [ServiceTotals() for _ in range(S)]
        self._slot_gen = np.zeros(16, dtype=np.int64)

    # --- allocation -----------------------------------------------------------------

    def _sample(self, k: int, n: int) -> np.ndarray:
        smp = self.program.samplers[k]
        gen = self._gens[k]
        if smp.dist is None:
            return gen.random(n)
        return smp.dist.sample(gen, n)

    def _new_replicas(self, n: int) -> L.Replicas:
        def i64(fill: int = 0) -> np.ndarray:
            return np.full(n, fill, dtype=np.int64)

        return L.Replicas(
            svc=i64(-1),
            ver=i64(),
            alive=i64(),
            busy=i64(),
            qhead=i64(-1),
            qtail=i64(-1),
            qlen=i64(),
            ncpu=i64(),
            vt=np.zeros(n),
            vlast=np.zeros(n),
            epoch=i64(),
            psoff=i64(),
            psn=i64(),
            cpu_area=np.zeros(n),
            busy_area=np.zeros(n),
            occ_area=np.zeros(n),
            area_last=np.zeros(n),
            weight=np.ones(n),
            cnt=np.zeros((n, self._lmax, L.N_CODES), dtype=np.int64),
            lat_sum=np.zeros((n, self._lmax)),
            lat_hist=np.zeros((n, self._lmax, L.N_PB), dtype=np.int64),
            ps_f=np.zeros(max(64, n * 4)),
            ps_fr=np.zeros(max(64, n * 4), dtype=np.int64),
        )

    def _new_entities(self, n: int) -> L.Entities:
        def i64(fill: int = 0) -> np.ndarray:
            return np.full(n, fill, dtype=np.int64)

        return L.Entities(
            fr_uid=i64(),
            fr_call=i64(-1),
            fr_auid=i64(),
            fr_rep=i64(-1),
            fr_ep=i64(-1),
            fr_pc=i64(),
            fr_pend=i64(),
            fr_state=i64(),
            fr_tarr=np.zeros(n),
            fr_tstart=np.zeros(n),
            fr_deadline=np.zeros(n),
            fr_next=i64(-1),
            fr_free=np.arange(n - 1, -1, -1, dtype=np.int64),
            ca_uid=i64(),
            ca_ep=i64(-1),
            ca_pfr=i64(-1),
            ca_pfuid=i64(),
            ca_req=i64(-1),
            ca_att=i64(),
            ca_auid=i64(),
            ca_fr=i64(-1),
            ca_t0=np.zeros(n),
            ca_free=np.arange(n - 1, -1, -1, dtype=np.int64),
            rq_cls=i64(-1),
            rq_t0=np.zeros(n),
            rq_stage=i64(),
            rq_free=np.arange(n - 1, -1, -1, dtype=np.int64),
        )

    def _grow_entities(self, extra: int = 0) -> None:
        """Grow whichever tables are short of the kernel's margin (plus ``extra`` FIFO slots)."""
        e, q = self.entities, self.queues
        ic = q.ic
        m = int(ic[L.I_MARGIN]) + extra
        fields = {}
        for prefix, free_slot, free_name in (
            ("fr_", L.I_FR_FREE, "fr_free"),
            ("ca_", L.I_CA_FREE, "ca_free"),
            ("rq_", L.I_RQ_FREE, "rq_free"),
        ):
            arrays = {k: getattr(e, k) for k in e._fields if k.startswith(prefix)}
            n = arrays[free_name].shape[0]
            if ic[free_slot] >= m:
                fields.update(arrays)
                continue
            n2 = max(2 * n, n + 2 * m)
            for k, arr in arrays.items():
                if k == free_name:
                    continue
                fill = (
                    -1
                    if k
                    in (
                        "fr_call",
                        "fr_rep",
                        "fr_ep",
                        "fr_next",
                        "ca_ep",
                        "ca_pfr",
                        "ca_req",
                        "ca_fr",
                        "rq_cls",
                    )
                    else 0
                )
                fields[k] = _grow(arr, n2, fill)
            nfree = int(ic[free_slot])
            free = np.empty(n2, dtype=np.int64)
            free[:nfree] = arrays[free_name][:nfree]
            new_ids = np.arange(n2 - 1, n - 1, -1, dtype=np.int64)
            free[nfree : nfree + new_ids.size] = new_ids
            fields[free_name] = free
            ic[free_slot] = nfree + new_ids.size
        self.entities = L.Entities(**fields)
        qf = q._asdict()
        if q.hp_t.shape[0] - ic[L.I_HEAP_N] < m:
            n2 = 2 * q.hp_t.shape[0] + m
            for k in ("hp_t", "hp_seq", "hp_kind", "hp_id", "hp_tag"):
                qf[k] = _grow(qf[k], n2)
        cap = q.nq_kind.shape[0]
        used = int(ic[L.I_NQ_TAIL] - ic[L.I_NQ_HEAD])
        if cap - used < m:
            n2 = 2 * cap + m
            head = int(ic[L.I_NQ_HEAD])
            order = (head + np.arange(used)) % cap
            for k in ("nq_kind", "nq_id", "nq_tag", "nq_arg"):
                new = np.zeros(n2, dtype=np.int64)
                new[:used] = qf[k][order]
                qf[k] = new
            ic[L.I_NQ_HEAD] = 0
            ic[L.I_NQ_TAIL] = used
        self.queues = L.Queues(**qf)

    def _refill(self) -> None:
        q = self.queues
        B = q.smp_buf.shape[1]
        low = B - int(q.ic[L.I_SMARGIN])
        for k in np.nonzero(q.smp_pos >= low // 2)[0]:
            pos = int(q.smp_pos[k])
            rest = B - pos
            q.smp_buf[k, :rest] = q.smp_buf[k, pos:]
            q.smp_buf[k, rest:] = self._sample(int(k), pos)
            q.smp_pos[k] = 0
        q.ic[L.I_REFILL] = 0

    # --- replicas -------------------------------------------------------------------

    def add_replica(self, service: int, version: int, now: float, weight: float = 1.0) -> int:
        """Create a replica (not ready yet) and return its slot."""
        if not self._free_slots:
            n = self.replicas.svc.shape[0]
            n2 = 2 * n
            grown = self.replicas._asdict()
            for k, arr in grown.items():
                if k in ("ps_f", "ps_fr"):
                    continue
                fill = -1 if k in ("svc", "qhead", "qtail") else (1.0 if k == "weight" else 0)
                grown[k] = _grow(arr, n2, fill)
            self.replicas = L.Replicas(**grown)
            self._slot_gen = _grow(self._slot_gen, n2)
            self._free_slots = list(range(n2 - 1, n - 1, -1))
        r = self._free_slots.pop()
        rp = self.replicas
        conc = int(self.static.svc_conc[service])
        if rp.svc[r] < 0 or self.static.svc_conc[rp.svc[r]] < conc or rp.psoff[r] + conc > rp.ps_f.shape[0]:
            if self._ps_top + conc > rp.ps_f.shape[0]:
                n2 = max(2 * rp.ps_f.shape[0], self._ps_top + conc)
                self.replicas = rp = rp._replace(ps_f=_grow(rp.ps_f, n2), ps_fr=_grow(rp.ps_fr, n2))
            rp.psoff[r] = self._ps_top
            self._ps_top += conc
        rp.svc[r] = service
        rp.ver[r] = version
        rp.alive[r] = 1
        for arr in (rp.busy, rp.qlen, rp.ncpu, rp.psn):
            arr[r] = 0
        rp.qhead[r] = rp.qtail[r] = -1
        rp.vt[r] = 0.0
        rp.vlast[r] = now
        rp.epoch[r] += 1
        rp.cpu_area[r] = rp.busy_area[r] = rp.occ_area[r] = 0.0
        rp.area_last[r] = now
        rp.weight[r] = weight
        rp.cnt[r] = 0
        rp.lat_sum[r] = 0.0
        rp.lat_hist[r] = 0
        self._slot_gen[r] += 1
        return r

    def set_ready(self, slot: int, ready: bool) -> None:
        """Add the replica to, or remove it from, its service's load-balancing set."""
        svc = int(self.replicas.svc[slot])
        lst = self._ready[svc]
        if ready and slot not in lst:
            lst.append(slot)
        elif not ready and slot in lst:
            lst.remove(slot)
        else:
            return
        off = np.zeros(len(self._ready) + 1, dtype=np.int64)
        off[1:] = np.cumsum([len(x) for x in self._ready])
        idx = np.array([r for lst_ in self._ready for r in lst_] or [0], dtype=np.int64)
        self.static = self.static._replace(ready_off=off, ready_idx=idx)

    def ready_slots(self, service: int) -> list[int]:
        """Slots in the service's load-balancing set, in the order they joined."""
        return list(self._ready[service])

    def outstanding(self, slot: int) -> int:
        """Requests the replica holds: in service plus queued."""
        return int(self.replicas.busy[slot] + self.replicas.qlen[slot])

    def kill(self, slot: int, now: float) -> None:
        """The replica dies now: its queued and in-flight requests fail (connection reset)."""
        self.set_ready(slot, False)
        # Every request it holds will fail through the FIFO at once: make room for them.
        self._grow_entities(extra=self.outstanding(slot))
        kill_replica(self.static, self.replicas, self.entities, self.queues, self.stats, self._rr, slot, now)

    def release(self, slot: int, now: float) -> None:
        """The replica is gone; its slot may be reused."""
        rp = self.replicas
        svc = int(rp.svc[slot])
        self.set_ready(slot, False)
        self._flush_areas(now)
        retire(self.retired[svc], rp.cpu_area[slot], rp.busy_area[slot], rp.occ_area[slot])
        rp.alive[slot] = 0
        self._free_slots.append(slot)

    def set_version(self, version: int, error_rate: float, latency_factor: float) -> None:
        """Change how a version behaves (its injected error rate and work multiplier)."""
        s = self.static
        if version >= s.ver_err.shape[0]:
            n = version + 1
            self.static = s._replace(ver_err=_grow(s.ver_err, n), ver_lat=_grow(s.ver_lat, n, 1.0))
        self.static.ver_err[version] = error_rate
        self.static.ver_lat[version] = latency_factor

    def set_call_probability(self, pc: int, p: float) -> None:
        """The call compiled at program counter ``pc`` is made with probability ``p`` from now on.

        Raises:
            ValueError: ``pc`` is no call compiled with a probability draw (one made always
                cannot become optional), or ``p`` is outside [0, 1].
        """
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"a call probability lies in [0, 1] (got {p})")
        if int(self.static.prog_op[pc]) != OP_CALL or (int(self.static.prog_b[pc]) < 0 and p < 1.0):
            raise ValueError(f"program counter {pc} is no call with a probability draw")
        self.static.prog_p[pc] = p

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
            jitter: standard deviation of a normal jitter on ``delay`` (netem's), seconds;
                a delay drawn below zero is zero.

        Raises:
            ValueError: a negative delay or jitter, a loss outside [0, 1] or a factor that is
                not positive.
        """
        check_impairment(delay, loss, cpu_factor, jitter)
        s = self.static
        s.svc_delay[service] = delay
        s.svc_jitter[service] = jitter
        s.svc_loss[service] = loss
        cores = float(self._base_cores[service]) * cpu_factor
        if cores != float(s.svc_cores[service]):
            if s.svc_cores is self.program.arrays["svc_cores"]:
                # The compiled program's arrays are shared: change a copy of our own.
                self.static = s = s._replace(svc_cores=s.svc_cores.copy(), svc_ps=s.svc_ps.copy())
            from devopsim.engine.request._kernel import set_service_cores

            set_service_cores(
                s, self.replicas, self.entities, self.queues, self.stats, self._rr, service, cores, self.now
            )

    def set_weight(self, slot: int, weight: float) -> None:
        """Set a replica's load-balancing weight (a weighted route, e.g. a canary's traffic split).

        While a live replica of the service carries a weight other than 1, the service's requests
        are split by weight (weighted random, as a mesh routes between subsets), whatever its
        policy; once every weight is back to 1 the service's own policy applies again.
        """
        rp = self.replicas
        rp.weight[slot] = weight
        svc = int(rp.svc[slot])
        if self._lb_own is None:
            self._lb_own = self.static.svc_lb.copy()
            self.static = self.static._replace(svc_lb=self.static.svc_lb.copy())
        mine = (rp.svc == svc) & (rp.alive == 1)
        routed = bool(np.any(rp.weight[mine] != 1.0))
        self.static.svc_lb[svc] = LB_WEIGHTED if routed else self._lb_own[svc]

    def set_class_delay(self, cls: int, delay: float) -> None:
        """Requests of class ``cls`` take ``delay`` seconds more as their users see them (from now).

        The round trip between the clients and the front door: it adds to the class's latency
        and its SLO checks, not to the time requests spend in the system.

        Raises:
            ValueError: a negative delay.
        """
        if delay < 0.0:
            raise ValueError(f"a class delay is >= 0 (got {delay})")
        self.static.cls_delay[cls] = delay

    def set_class_loss(self, cls: int, loss: float) -> None:
        """A share ``loss`` of class ``cls``'s arrivals fails at once from now (front-door loss).

        Each arrival of the class is lost with that chance: it never reaches a pod and counts
        as an ``unavailable`` error of its class (and a bad request of its SLOs), with no time
        in the system.

        Raises:
            ValueError: a loss outside [0, 1].
        """
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"a class loss lies in [0, 1] (got {loss})")
        if self._cls_loss is None:
            self._cls_loss = np.zeros(len(self.program.classes))
        self._cls_loss[cls] = loss

    def _drop_lost(self, arr_t: np.ndarray, arr_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take the front door's lost arrivals out, counted as ``unavailable`` errors."""
        loss = self._cls_loss
        if loss is None or arr_c.size == 0 or not np.any(loss > 0.0):
            return arr_t, arr_c
        lost = self._loss_rng.random(arr_c.size) < loss[arr_c]
        if not lost.any():
            return arr_t, arr_c
        st, C = self.stats, loss.size
        lc = arr_c[lost]
        n_all = np.bincount(lc, minlength=C)
        n_warm = np.bincount(lc[arr_t[lost] >= self.queues.fc[L.F_WARMUP]], minlength=C)
        st.cls_arr[:] += n_all
        st.cls_tot[:, 1 + L.ERR_UNAVAILABLE] += n_all
        st.cls_n[:] += n_warm
        st.cls_err[:, L.ERR_UNAVAILABLE] += n_warm
        self.queues.ic[L.I_ARRIVED_W] += int(n_warm.sum())
        keep = ~lost
        return np.ascontiguousarray(arr_t[keep]), np.ascontiguousarray(arr_c[keep])

    def slot_generation(self, slot: int) -> int:
        """Increases each time a slot is given to a new replica."""
        return int(self._slot_gen[slot])

    # --- time ------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The plane's clock, seconds."""
        return float(self.queues.fc[L.F_NOW])

    def advance(
        self, t_end: float, arr_t: np.ndarray, arr_c: np.ndarray, on_chunk: Callable[[], None] | None = None
    ) -> None:
        """Simulate ``[now, t_end)`` with these arrivals (times increasing, within the window).

        Raises:
            SimulationError: the kernel reached an impossible state.
        """
        q = self.queues
        q.ic[L.I_ARR_POS] = 0
        arr_t = np.ascontiguousarray(arr_t, dtype=np.float64)
        arr_c = np.ascontiguousarray(arr_c, dtype=np.int64)
        arr_t, arr_c = self._drop_lost(arr_t, arr_c)
        while True:
            status = run_window(
                self.static,
                self.replicas,
                self.entities,
                self.queues,
                self.stats,
                self._rr,
                arr_t,
                arr_c,
                t_end,
            )
            if status == L.ST_DONE:
                return
            if status == L.ST_REFILL:
                self._refill()
            elif status == L.ST_GROW:
                self._grow_entities()
            else:
                code = int(self.queues.ic[L.I_ERROR])
                raise SimulationError(
                    f"the request plane stopped at t={self.now:.6f}s (internal error {code}: "
                    "an entity table or a random buffer overflowed within one step)"
                )
            if on_chunk is not None:
                on_chunk()

    def _flush_areas(self, now: float) -> None:
        rp = self.replicas
        alive = rp.alive == 1
        dt = np.where(alive, now - rp.area_last, 0.0)
        dt = np.maximum(dt, 0.0)
        cores = self.static.svc_cores[np.maximum(rp.svc, 0)]
        rp.cpu_area[:] += np.minimum(rp.ncpu, cores) * dt
        rp.busy_area[:] += rp.busy * dt
        rp.occ_area[:] += (rp.busy + rp.qlen) * dt
        rp.area_last[:] = np.where(alive, np.maximum(rp.area_last, now), rp.area_last)

    def sync_integrals(self, now: float) -> None:
        """Bring every replica's CPU, busy and occupancy integrals up to ``now``."""
        self._flush_areas(now)

    def service_totals(self, now: float) -> list[ServiceTotals]:
        """Each service's integrals so far: retired replicas plus live ones, up to ``now``."""
        self._flush_areas(now)
        rp = self.replicas
        return service_totals(self.retired, rp.svc, rp.alive, rp.cpu_area, rp.busy_area, rp.occ_area)

    def service_cpu(self, services: list[int], now: float) -> float:
        """The CPU integrals of ``services`` together, up to ``now`` (``totals.services_cpu``)."""
        self._flush_areas(now)
        rp = self.replicas
        return services_cpu(self.retired, services, rp.svc, rp.alive, rp.cpu_area)

    def service_total(self, service: int, now: float) -> ServiceTotals:
        """``service_totals(now)[service]``, without the other services' integrals."""
        self._flush_areas(now)
        rp = self.replicas
        return service_total(self.retired, service, rp.svc, rp.alive, rp.cpu_area, rp.busy_area, rp.occ_area)

    def queue_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Busy workers and queued requests per slot, now."""
        rp = self.replicas
        return rp.busy, rp.qlen

    @property
    def class_stats(self) -> L.Stats:
        """The statistics (all current on this plane; see ``FlowPlane.class_stats``)."""
        return self.stats

    @property
    def in_system(self) -> int:
        """User requests in the system now."""
        return int(self.queues.ic[L.I_IN_SYSTEM])

    @property
    def little(self) -> tuple[float, int]:
        """(time integral of requests in the system after warm-up, requests that arrived after it)."""
        return float(self.queues.fc[L.F_LITTLE_AREA]), int(self.queues.ic[L.I_ARRIVED_W])
