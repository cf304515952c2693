"""Array layout of the request plane's state, shared by the kernel and its driver.

The kernel (Numba) sees the whole simulation as a few named tuples of NumPy
arrays; the driver (Python) allocates them, refills random-number buffers and
grows them between kernel calls. Constants here are the vocabulary of both.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from devopsim.model.program import (
    ERROR_NAMES,
    LB_CODES,
    LB_LEAST_OUTSTANDING,
    LB_LEAST_REQUEST,
    LB_RANDOM,
    LB_ROUND_ROBIN,
    LB_WEIGHTED,
    OP_CALL,
    OP_END,
    OP_NOP,
    OP_PAR,
    OP_WAIT,
    OP_WORK,
)

__all__ = [  # the model's codes are part of the kernel's vocabulary too
    "ERROR_NAMES",
    "LB_CODES",
    "LB_LEAST_OUTSTANDING",
    "LB_LEAST_REQUEST",
    "LB_RANDOM",
    "LB_ROUND_ROBIN",
    "LB_WEIGHTED",
    "OP_CALL",
    "OP_END",
    "OP_NOP",
    "OP_PAR",
    "OP_WAIT",
    "OP_WORK",
]

# --- error kinds (client view) ---------------------------------------------------
ERR_TIMEOUT = 0
ERR_REJECTED = 1
ERR_DOWNSTREAM = 2
ERR_INJECTED = 3
ERR_UNAVAILABLE = 4
ERR_BREAKER = 5  # circuit open: reported as rejected, never retried
N_ERR = 5
OK = -1

# --- server-side response codes ---------------------------------------------------
CODE_200 = 0
CODE_500 = 1
CODE_503 = 2
CODE_504 = 3
N_CODES = 4
CODE_NAMES = ("200", "500", "503", "504")

# --- events -------------------------------------------------------------------------
EV_WORK_DONE = 1  # id: frame, tag: frame uid
EV_PS_DONE = 2  # id: replica, tag: replica epoch
EV_WAIT_DONE = 3  # id: frame, tag: frame uid
EV_TIMEOUT = 4  # id: call, tag: attempt uid
EV_RETRY = 5  # id: call, tag: call uid
EV_SEND = 6  # id: call, tag: attempt uid (the attempt reaches the service after a network delay)
NQ_START = 10  # id: frame, tag: frame uid
NQ_ATTEMPT_DONE = 11  # id: call, tag: attempt uid, arg: outcome

# --- frame states -----------------------------------------------------------------
FS_FREE = 0
FS_QUEUED = 1
FS_RUNNING = 2  # executing steps (in CPU work, a wait, or waiting for calls)
FS_DONE = 3

# --- kernel status codes ----------------------------------------------------------
ST_DONE = 0
ST_REFILL = 1
ST_GROW = 2
ST_ERROR = 3

# --- scalar slots -------------------------------------------------------------------
I_HEAP_N = 0
I_SEQ = 1
I_UID = 2
I_FR_FREE = 3
I_CA_FREE = 4
I_RQ_FREE = 5
I_IN_SYSTEM = 6
I_REFILL = 7
I_ARR_POS = 8
I_NQ_HEAD = 9
I_NQ_TAIL = 10
I_ERROR = 11
I_ARRIVED_W = 12  # requests arrived after warm-up
I_MARGIN = 13  # free entity/heap/queue slots the kernel needs before each step
I_SMARGIN = 14  # draws one step may take from one sampler, at most
I_SIZE = 16

F_NOW = 0
F_LITTLE_AREA = 1
F_LITTLE_LAST = 2
F_WARMUP = 3
F_SIZE = 4

# --- histograms ------------------------------------------------------------------------
LH_MIN = 1e-6  # seconds: the lowest resolved latency
LH_RATIO = 1.01  # each bucket is 1 % wider than the one below
LH_N = 2 + int(np.ceil(np.log(1e6 / LH_MIN) / np.log(LH_RATIO)))  # up to ~11.6 days
PROM_BUCKETS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
N_PB = PROM_BUCKETS.size + 1  # the last one is +Inf


class Static(NamedTuple):
    """The compiled model: read-only while the kernel runs (the driver may rewrite it)."""

    svc_conc: np.ndarray
    svc_qcap: np.ndarray
    svc_cores: np.ndarray
    svc_ps: np.ndarray
    svc_lb: np.ndarray
    svc_err_smp: np.ndarray
    svc_lb_smp: np.ndarray
    ready_off: np.ndarray  # CSR offsets into ready_idx per service
    ready_idx: np.ndarray
    ep_svc: np.ndarray
    ep_prog: np.ndarray
    ep_local: np.ndarray
    ep_timeout: np.ndarray
    ep_retries: np.ndarray
    ep_backoff: np.ndarray
    ep_maxbackoff: np.ndarray
    ep_jitter_smp: np.ndarray
    ep_retry_mask: np.ndarray
    ep_cb: np.ndarray
    ep_cb_thr: np.ndarray
    ep_cb_win: np.ndarray
    ep_cb_min: np.ndarray
    ep_cb_wait: np.ndarray
    ep_cb_half: np.ndarray
    ep_cb_off: np.ndarray
    prog_op: np.ndarray
    prog_a: np.ndarray
    prog_b: np.ndarray
    prog_p: np.ndarray
    cls_entry_off: np.ndarray
    cls_entry_len: np.ndarray
    entries: np.ndarray
    slo_cls: np.ndarray
    slo_thr: np.ndarray
    ver_err: np.ndarray
    ver_lat: np.ndarray
    prom_buckets: np.ndarray
    svc_delay: np.ndarray  # network delay on the way to each service, s (chaos: network-delay)
    svc_loss: np.ndarray  # chance a call to each service fails with a connection error (network-loss)
    cls_delay: np.ndarray  # per class, seconds users wait besides the system (client to front door)
    svc_jitter: np.ndarray  # sd of a normal jitter on the network delay to each service, s


class Replicas(NamedTuple):
    """Per-replica state (pods), indexed by replica slot."""

    svc: np.ndarray
    ver: np.ndarray
    alive: np.ndarray
    busy: np.ndarray
    qhead: np.ndarray
    qtail: np.ndarray
    qlen: np.ndarray
    ncpu: np.ndarray
    vt: np.ndarray
    vlast: np.ndarray
    epoch: np.ndarray
    psoff: np.ndarray
    psn: np.ndarray
    cpu_area: np.ndarray
    busy_area: np.ndarray
    occ_area: np.ndarray
    area_last: np.ndarray
    weight: np.ndarray
    cnt: np.ndarray  # [R, L, N_CODES] server responses
    lat_sum: np.ndarray  # [R, L]
    lat_hist: np.ndarray  # [R, L, N_PB] non-cumulative
    ps_f: np.ndarray  # processor-sharing heaps, one segment per replica
    ps_fr: np.ndarray


class Entities(NamedTuple):
    """Frames (one attempt at one replica), calls (a logical call with retries), requests."""

    fr_uid: np.ndarray
    fr_call: np.ndarray
    fr_auid: np.ndarray
    fr_rep: np.ndarray
    fr_ep: np.ndarray
    fr_pc: np.ndarray
    fr_pend: np.ndarray
    fr_state: np.ndarray
    fr_tarr: np.ndarray
    fr_tstart: np.ndarray
    fr_deadline: np.ndarray
    fr_next: np.ndarray
    fr_free: np.ndarray
    ca_uid: np.ndarray
    ca_ep: np.ndarray
    ca_pfr: np.ndarray
    ca_pfuid: np.ndarray
    ca_req: np.ndarray
    ca_att: np.ndarray
    ca_auid: np.ndarray
    ca_fr: np.ndarray
    ca_t0: np.ndarray
    ca_free: np.ndarray
    rq_cls: np.ndarray
    rq_t0: np.ndarray
    rq_stage: np.ndarray
    rq_free: np.ndarray


class Queues(NamedTuple):
    """The event heap and the queue of things to do at the current instant."""

    hp_t: np.ndarray
    hp_seq: np.ndarray
    hp_kind: np.ndarray
    hp_id: np.ndarray
    hp_tag: np.ndarray
    nq_kind: np.ndarray
    nq_id: np.ndarray
    nq_tag: np.ndarray
    nq_arg: np.ndarray
    smp_buf: np.ndarray  # [K, B] pre-drawn samples per named stream
    smp_pos: np.ndarray
    cb_state: np.ndarray  # per endpoint: 0 closed, 1 open, 2 half-open
    cb_until: np.ndarray
    cb_ring: np.ndarray
    cb_pos: np.ndarray
    cb_count: np.ndarray
    cb_fail: np.ndarray
    cb_hcalls: np.ndarray
    cb_hdone: np.ndarray
    cb_hfail: np.ndarray
    ic: np.ndarray
    fc: np.ndarray


class Stats(NamedTuple):
    """Statistics after warm-up (summary) and all-time counters (metrics)."""

    cls_n: np.ndarray
    cls_ok: np.ndarray
    cls_err: np.ndarray  # [C, N_ERR]
    cls_lsum: np.ndarray
    cls_hist: np.ndarray  # [C, LH_N] latency of successful requests
    cls_asum: np.ndarray  # latency of all finished requests (Little's law)
    ep_n: np.ndarray
    ep_ok: np.ndarray
    ep_err: np.ndarray
    ep_lsum: np.ndarray
    ep_hist: np.ndarray
    sv_n: np.ndarray
    sv_err: np.ndarray
    sv_ok: np.ndarray
    sv_lsum: np.ndarray
    sv_hist: np.ndarray
    sv_wn: np.ndarray
    sv_wsum: np.ndarray
    sv_whist: np.ndarray
    slo_good: np.ndarray
    cls_tot: np.ndarray  # [C, 1 + N_ERR] all-time: ok, then each error kind
    cls_pb: np.ndarray  # [C, N_PB] all-time latency histogram (Prometheus buckets)
    cls_psum: np.ndarray
    cls_arr: np.ndarray  # all-time arrivals per class


def empty_i64(n: int, fill: int = 0) -> np.ndarray:
    """An int64 array of ``n`` items set to ``fill``."""
    return np.full(n, fill, dtype=np.int64)
