"""The platform compiled for a data plane: indices, step programs and samplers.

Services, endpoints, classes and versions get dense indices; each endpoint's
steps become a flat program of opcodes (``work``, ``wait``, ``call``,
``parallel``, and ``nop`` for steps a later capability simulates); every
source of randomness gets a named sampler. Both data planes read this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from devopsim.scenario.dists import Distribution
from devopsim.scenario.schema import Scenario, Step

if TYPE_CHECKING:
    from devopsim.model.datastores import DatastoreCompiler

__all__ = ["ERROR_NAMES", "LB_CODES", "Program", "Sampler", "compile_program"]

# --- step opcodes ----------------------------------------------------------------
OP_WORK = 0  # a: sampler
OP_WAIT = 1  # a: sampler
OP_CALL = 2  # a: target endpoint, b: probability sampler (-1 = always), p: probability
OP_PAR = 3  # a: number of branch steps that follow
OP_NOP = 4  # a step whose behaviour a later capability brings (query, cache, publish)
OP_END = 5

# --- load-balancing policies ----------------------------------------------------
LB_ROUND_ROBIN = 0
LB_RANDOM = 1
LB_LEAST_REQUEST = 2  # power of two choices, as Envoy's LEAST_REQUEST
LB_LEAST_OUTSTANDING = 3  # exact minimum of in-flight + queued
LB_WEIGHTED = 4
LB_CODES = {
    "round-robin": LB_ROUND_ROBIN,
    "random": LB_RANDOM,
    "least-request": LB_LEAST_REQUEST,
    "least-outstanding": LB_LEAST_OUTSTANDING,
    "weighted": LB_WEIGHTED,
}

ERROR_NAMES = ("timeout", "rejected", "downstream", "injected", "unavailable")


@dataclass(frozen=True)
class Sampler:
    """A named random stream and the distribution it draws (``None``: uniform on [0, 1))."""

    name: str
    dist: Distribution | None = None


@dataclass
class Program:
    """The scenario's platform as dense arrays."""

    services: list[str]
    endpoints: list[tuple[str, str]]
    ep_index: dict[str, int]
    classes: list[str]
    class_shares: list[float]
    samplers: list[Sampler]
    versions: list[tuple[str, str]]
    ver_index: dict[tuple[str, str], int]
    ver_err: list[float]
    ver_lat: list[float]
    max_local: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    datastores: DatastoreCompiler | None = None  # how query/cache/publish steps were compiled
    user_classes: int = -1  # the scenario's classes come first; after them, Kafka consumer groups' messages
    slo_rows: list[list[int]] = field(default_factory=list)  # per latency SLO, its rows of slo_cls/slo_good

    def add_version(self, service: str, version: str, error_rate: float, latency_factor: float) -> int:
        """Register (or update) a version of a service; returns its index."""
        key = (service, version)
        if key in self.ver_index:
            i = self.ver_index[key]
            self.ver_err[i] = error_rate
            self.ver_lat[i] = latency_factor
            return i
        self.ver_index[key] = len(self.versions)
        self.versions.append(key)
        self.ver_err.append(error_rate)
        self.ver_lat.append(latency_factor)
        return len(self.versions) - 1


def _compile_steps(
    steps: list[Step],
    svc: str,
    ep: str,
    path: str,
    prog: list[tuple[int, int, int, float]],
    samplers: list[Sampler],
    ep_index: dict[str, int],
    stores: DatastoreCompiler | None = None,
) -> None:
    def smp(name: str) -> int:
        samplers.append(Sampler(name))
        return len(samplers) - 1

    for i, step in enumerate(steps):
        here = f"{path}{i}"
        kind = step.kind
        if kind in ("work", "wait"):
            dist = step.work if kind == "work" else step.wait
            assert dist is not None
            samplers.append(Sampler(f"{kind}/{svc}/{ep}/{here}", dist))
            prog.append((OP_WORK if kind == "work" else OP_WAIT, len(samplers) - 1, -1, 1.0))
        elif kind == "call":
            prog.append(_call_op(step, svc, ep, here, samplers, ep_index))
        elif kind == "parallel":
            assert step.parallel is not None
            prog.append((OP_PAR, len(step.parallel), -1, 1.0))
            for j, branch in enumerate(step.parallel):
                if branch.kind == "call":
                    prog.append(_call_op(branch, svc, ep, f"{here}.{j}", samplers, ep_index))
                elif stores is not None:  # query, publish: a call to the datastore's service
                    stores.compile(
                        branch, f"{svc}/{ep}/{here}.{j}", prog, smp, ep_index, OP_CALL, OP_NOP, branch=True
                    )
                else:
                    prog.append((OP_NOP, 0, -1, 1.0))
        elif stores is not None:  # query, cache, publish: calls to datastores (model/datastores.py)
            stores.compile(step, f"{svc}/{ep}/{here}", prog, smp, ep_index, OP_CALL, OP_NOP)
        else:
            prog.append((OP_NOP, 0, -1, 1.0))


def _call_op(
    step: Step, svc: str, ep: str, here: str, samplers: list[Sampler], ep_index: dict[str, int]
) -> tuple[int, int, int, float]:
    assert step.call is not None
    target = ep_index[step.call]
    p = 1.0 if step.probability is None else step.probability
    smp = -1
    if p < 1.0:
        samplers.append(Sampler(f"prob/{svc}/{ep}/{here}"))
        smp = len(samplers) - 1
    return (OP_CALL, target, smp, p)


def compile_program(sc: Scenario) -> Program:
    """Compile the services, endpoints and classes of ``sc`` into dense arrays."""
    from devopsim.model.datastores import DatastoreCompiler

    stores = DatastoreCompiler.expand(sc)  # datastores become synthetic services first
    services = list(sc.services)
    endpoints = [(s, e) for s in services for e in sc.services[s].endpoints]
    ep_index = {f"{s}.{e}": i for i, (s, e) in enumerate(endpoints)}
    samplers: list[Sampler] = []
    prog: list[tuple[int, int, int, float]] = []
    E = len(endpoints)
    a: dict[str, np.ndarray] = {}
    a["svc_conc"] = np.array([sc.services[s].concurrency for s in services], dtype=np.int64)
    a["svc_qcap"] = np.array(
        [-1 if sc.services[s].queue.capacity is None else sc.services[s].queue.capacity for s in services],
        dtype=np.int64,
    )
    a["svc_cores"] = np.array([sc.services[s].cores for s in services], dtype=np.float64)
    a["svc_ps"] = (a["svc_cores"] < a["svc_conc"]).astype(np.int64)
    a["svc_lb"] = np.array([LB_CODES[sc.services[s].load_balancer] for s in services], dtype=np.int64)
    err_smp, lb_smp = [], []
    for s in services:
        samplers.append(Sampler(f"errors/{s}"))
        err_smp.append(len(samplers) - 1)
        samplers.append(Sampler(f"lb/{s}"))
        lb_smp.append(len(samplers) - 1)
    a["svc_err_smp"] = np.array(err_smp, dtype=np.int64)
    a["svc_lb_smp"] = np.array(lb_smp, dtype=np.int64)

    f = {
        k: np.zeros(E, dtype=np.float64)
        for k in ("ep_timeout", "ep_backoff", "ep_maxbackoff", "ep_cb_thr", "ep_cb_wait")
    }
    i = {
        k: np.zeros(E, dtype=np.int64)
        for k in (
            "ep_svc",
            "ep_prog",
            "ep_local",
            "ep_retries",
            "ep_retry_mask",
            "ep_cb",
            "ep_cb_win",
            "ep_cb_min",
            "ep_cb_half",
            "ep_cb_off",
        )
    }
    i["ep_jitter_smp"] = np.full(E, -1, dtype=np.int64)
    cb_total = 0
    local_count = dict.fromkeys(services, 0)
    for k, (s, e) in enumerate(endpoints):
        ep = sc.services[s].endpoints[e]
        i["ep_svc"][k] = services.index(s)
        i["ep_local"][k] = local_count[s]
        local_count[s] += 1
        i["ep_prog"][k] = len(prog)
        _compile_steps(ep.steps, s, e, "", prog, samplers, ep_index, stores)
        prog.append((OP_END, 0, -1, 1.0))
        f["ep_timeout"][k] = ep.timeout or 0.0
        if ep.retries is not None:
            i["ep_retries"][k] = ep.retries.attempts
            f["ep_backoff"][k] = ep.retries.backoff
            f["ep_maxbackoff"][k] = (
                ep.retries.max_backoff if ep.retries.max_backoff is not None else 10.0 * ep.retries.backoff
            )
            i["ep_retry_mask"][k] = sum(1 << ERROR_NAMES.index(kind) for kind in ep.retries.retry_on)
            if ep.retries.jitter:
                samplers.append(Sampler(f"jitter/{s}/{e}"))
                i["ep_jitter_smp"][k] = len(samplers) - 1
        cb = ep.circuit_breaker
        if cb is not None:
            i["ep_cb"][k] = 1
            f["ep_cb_thr"][k] = cb.failure_rate_threshold
            i["ep_cb_win"][k] = cb.sliding_window_size
            i["ep_cb_min"][k] = min(cb.minimum_number_of_calls, cb.sliding_window_size)
            f["ep_cb_wait"][k] = cb.wait_duration_in_open_state
            i["ep_cb_half"][k] = cb.permitted_number_of_calls_in_half_open_state
            i["ep_cb_off"][k] = cb_total
            cb_total += cb.sliding_window_size
    a.update(f)
    a.update(i)
    a["cb_ring_size"] = np.array([max(cb_total, 1)], dtype=np.int64)
    a["prog_op"] = np.array([p[0] for p in prog], dtype=np.int64)
    a["prog_a"] = np.array([p[1] for p in prog], dtype=np.int64)
    a["prog_b"] = np.array([p[2] for p in prog], dtype=np.int64)
    a["prog_p"] = np.array([p[3] for p in prog], dtype=np.float64)

    classes = [c.name for c in sc.traffic.classes]
    entries: list[int] = []
    off, ln = [], []
    for c in sc.traffic.classes:
        off.append(len(entries))
        ln.append(len(c.entries))
        entries.extend(ep_index[x] for x in c.entries)
    n_user = len(classes)
    for cons in stores.consumers.values():  # a consumer group's messages: a class with no user share
        classes.append(cons.cls)
        off.append(len(entries))
        ln.append(1)
        entries.append(ep_index[f"{cons.service}.{cons.endpoint}"])
    a["cls_entry_off"] = np.array(off, dtype=np.int64)
    a["cls_entry_len"] = np.array(ln, dtype=np.int64)
    a["entries"] = np.array(entries, dtype=np.int64)
    lat_slos = [slo for slo in sc.slos if slo.latency is not None]
    # An SLO without a class covers the users' classes: one row (-1, every class) while there
    # are only those, else one row per user class (the planes count rows, the summary adds them).
    slo_cls: list[int] = []
    slo_thr: list[float] = []
    slo_rows: list[list[int]] = []
    for x in lat_slos:
        want = [classes.index(x.class_)] if x.class_ else ([-1] if n_user == len(classes) else range(n_user))
        slo_rows.append(list(range(len(slo_cls), len(slo_cls) + len(want))))
        slo_cls.extend(want)
        slo_thr.extend([float(x.latency or 0.0)] * len(want))
    a["slo_cls"] = np.array(slo_cls, dtype=np.int64)
    a["slo_thr"] = np.array(slo_thr, dtype=np.float64)

    program = Program(
        services=services,
        endpoints=endpoints,
        ep_index=ep_index,
        classes=classes,
        class_shares=sc.traffic.shares() + [0.0] * (len(classes) - n_user),
        samplers=samplers,
        versions=[],
        ver_index={},
        ver_err=[],
        ver_lat=[],
        max_local=max([*local_count.values(), 1]),
        arrays=a,
        datastores=stores,
        user_classes=n_user,
        slo_rows=slo_rows,
    )
    for s in services:
        spec = sc.services[s]
        program.add_version(s, spec.version, spec.error_rate, spec.latency_factor)
    return program
