"""The call graph as the flow plane needs it: per-endpoint step lists, edges and levels."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from devopsim.model.program import OP_CALL, OP_END, OP_NOP, OP_PAR, OP_WAIT, OP_WORK, Program

__all__ = ["CallGraph", "Step"]


@dataclass(frozen=True)
class Step:
    """One step of an endpoint: ``work``/``wait`` (a sampler), a call, or a parallel group of calls."""

    kind: str  # "work" | "wait" | "call" | "par"
    sampler: int = -1
    targets: tuple[int, ...] = ()  # callee endpoints (one for a call, several for a group)
    probs: tuple[float, ...] = ()


@dataclass
class CallGraph:
    """Endpoints' steps, the call edges between endpoints, and a topological order.

    Attributes:
        steps: per endpoint, its steps in order.
        order: endpoints with every caller before its callees.
        cpu_mean, cpu_var: per endpoint, mean and variance of its own CPU work (s, s²).
        wait_mean, wait_var: the same for its non-CPU waits.
        edge_src, edge_dst, edge_prob, edge_step: one row per call: caller, callee,
            probability, and the index of the step it belongs to.
        pc_site: program counter of each compiled call -> (endpoint, step index, branch
            within the step, edge row), so a probability changed at run time finds its edge.
    """

    steps: list[list[Step]]
    order: list[int]
    cpu_mean: np.ndarray
    cpu_var: np.ndarray
    wait_mean: np.ndarray
    wait_var: np.ndarray
    edge_src: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    edge_dst: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    edge_prob: np.ndarray = field(default_factory=lambda: np.empty(0))
    edge_step: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    levels: list[np.ndarray] = field(default_factory=list)  # edge indices, grouped by caller depth
    pc_site: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)

    @classmethod
    def build(cls, program: Program) -> CallGraph:
        """Read the compiled step programs of every endpoint."""
        a = program.arrays
        op, pa, pp = a["prog_op"], a["prog_a"], a["prog_p"]
        n_ep = len(program.endpoints)
        steps: list[list[Step]] = []
        cpu_mean, cpu_var = np.zeros(n_ep), np.zeros(n_ep)
        wait_mean, wait_var = np.zeros(n_ep), np.zeros(n_ep)
        src: list[int] = []
        dst: list[int] = []
        prob: list[float] = []
        stp: list[int] = []
        pc_site: dict[int, tuple[int, int, int, int]] = {}
        for e in range(n_ep):
            pc = int(a["ep_prog"][e])
            lst: list[Step] = []
            mine: list[tuple[int, int, int]] = []  # (pc, step, branch) of this endpoint's calls
            while op[pc] != OP_END:
                o = int(op[pc])
                if o in (OP_WORK, OP_WAIT):
                    dist = program.samplers[int(pa[pc])].dist
                    assert dist is not None
                    if o == OP_WORK:
                        cpu_mean[e] += dist.mean
                        cpu_var[e] += dist.variance
                    else:
                        wait_mean[e] += dist.mean
                        wait_var[e] += dist.variance
                    lst.append(Step("work" if o == OP_WORK else "wait", sampler=int(pa[pc])))
                    pc += 1
                elif o == OP_CALL:
                    mine.append((pc, len(lst), 0))
                    lst.append(Step("call", targets=(int(pa[pc]),), probs=(float(pp[pc]),)))
                    pc += 1
                elif o == OP_PAR:
                    nb = int(pa[pc])
                    targets: list[int] = []
                    probs: list[float] = []
                    for b in range(nb):
                        bpc = pc + 1 + b
                        if op[bpc] == OP_CALL:
                            mine.append((bpc, len(lst), len(targets)))
                            targets.append(int(pa[bpc]))
                            probs.append(float(pp[bpc]))
                    if targets:
                        lst.append(Step("par", targets=tuple(targets), probs=tuple(probs)))
                    pc += nb + 1
                elif o == OP_NOP:
                    pc += 1
                else:  # pragma: no cover - the compiler emits nothing else
                    raise AssertionError(f"unknown opcode {o}")
            first = np.cumsum([0] + [len(st.targets) for st in lst]) + len(src)  # edge row of each step
            for pc_, j_, b_ in mine:
                pc_site[pc_] = (e, j_, b_, int(first[j_]) + b_)
            for j, st in enumerate(lst):
                for t, p in zip(st.targets, st.probs, strict=True):
                    src.append(e)
                    dst.append(t)
                    prob.append(p)
                    stp.append(j)
            steps.append(lst)
        # Topological order (callers first); the loader has rejected cycles.
        indeg = np.zeros(n_ep, dtype=np.int64)
        for t in dst:
            indeg[t] += 1
        children: list[list[int]] = [[] for _ in range(n_ep)]
        for s_, t in zip(src, dst, strict=True):
            children[s_].append(t)
        order: list[int] = [e for e in range(n_ep) if indeg[e] == 0]
        i = 0
        while i < len(order):
            for t in children[order[i]]:
                indeg[t] -= 1
                if indeg[t] == 0:
                    order.append(t)
            i += 1
        if len(order) != n_ep:  # pragma: no cover - guarded by the loader
            raise AssertionError("the call graph has a cycle")
        # Depth of each endpoint (longest chain of callers above it); calls flow level by level.
        depth = np.zeros(n_ep, dtype=np.int64)
        for e in order:
            for t in children[e]:
                depth[t] = max(depth[t], depth[e] + 1)
        src_depth = depth[np.asarray(src, dtype=np.int64)] if src else np.empty(0, np.int64)
        levels = [np.nonzero(src_depth == d)[0] for d in range(int(depth.max()) + 1 if n_ep else 0)]
        return cls(
            steps=steps,
            order=order,
            cpu_mean=cpu_mean,
            cpu_var=cpu_var,
            wait_mean=wait_mean,
            wait_var=wait_var,
            edge_src=np.asarray(src, dtype=np.int64),
            edge_dst=np.asarray(dst, dtype=np.int64),
            edge_prob=np.asarray(prob, dtype=np.float64),
            edge_step=np.asarray(stp, dtype=np.int64),
            levels=[lv for lv in levels if lv.size],
            pc_site=pc_site,
        )

    def set_probability(self, pc: int, p: float) -> bool:
        """The call compiled at program counter ``pc`` is now made with probability ``p``.

        Returns False when ``pc`` is no call of the graph (nothing changes).
        """
        site = self.pc_site.get(pc)
        if site is None:
            return False
        e, j, b, row = site
        st = self.steps[e][j]
        probs = list(st.probs)
        probs[b] = p
        self.steps[e][j] = replace(st, probs=tuple(probs))
        self.edge_prob[row] = p
        return True
