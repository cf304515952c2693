"""Types of the compiled scrape kernel (see ``_scrape.pyx``)."""

from typing import Any

import numpy as np

def reduce_sum(a: np.ndarray) -> float: ...

class ScrapePlan:
    def set_counters(
        self,
        gather: np.ndarray,
        n_visible: int,
        hist_at: np.ndarray,
        nb: int,
        ncode: int,
        c200: int,
        c500: int,
        src: np.ndarray,
    ) -> None: ...
    def clear_counters(self) -> None: ...
    def set_pods(
        self,
        slots: np.ndarray,
        pbase: np.ndarray,
        pleak: np.ndarray,
        pstart: np.ndarray,
        leaky: bool,
        prev: np.ndarray,
        delta: np.ndarray,
        mem_per_request: float,
        request_bytes: float,
        response_bytes: float,
    ) -> None: ...
    def set_nodes(
        self,
        n_nodes: int,
        one_node: bool,
        pnode: np.ndarray,
        cores: np.ndarray,
        mem_req: np.ndarray,
        mem_fixed: np.ndarray,
        fs: np.ndarray,
        fs_size: float,
        state: np.ndarray,
        sums: np.ndarray,
    ) -> None: ...
    def set_workloads(self, workloads: list[Any], dep: np.ndarray) -> None: ...
    def row(self, rp: Any, answered: np.ndarray, t: float, out: np.ndarray) -> int: ...
    def tail(self, tot: np.ndarray, pb: np.ndarray, psum: np.ndarray, in_system: float) -> int: ...
