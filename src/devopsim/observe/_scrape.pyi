"""Types of the compiled scrape kernel (see ``_scrape.pyx``)."""

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
    def set_pods(
        self,
        slots: np.ndarray,
        pbase: np.ndarray,
        pleak: np.ndarray,
        pstart: np.ndarray,
        leaky: bool,
        prev: np.ndarray,
        delta: np.ndarray,
    ) -> None: ...
    def counters(self, cnt3: np.ndarray, hist3: np.ndarray, sum2: np.ndarray, out: np.ndarray) -> int: ...
    def pods(
        self,
        cpu_area: np.ndarray,
        busy: np.ndarray,
        qlen: np.ndarray,
        occ_area: np.ndarray,
        busy_area: np.ndarray,
        answered: np.ndarray,
        t: float,
        out: np.ndarray,
        off: int,
        track: bool,
        mem_per_request: float,
        request_bytes: float,
        response_bytes: float,
    ) -> tuple[float, float, float, float] | None: ...
    def nodes(
        self,
        t: float,
        pnode: np.ndarray,
        ws: np.ndarray,
        cores: np.ndarray,
        mem_req: np.ndarray,
        mem_fixed: np.ndarray,
        fs: np.ndarray,
        fs_size: float,
        state: np.ndarray,
        sums: np.ndarray,
        out: np.ndarray,
        off: int,
    ) -> int: ...
    def tail(
        self,
        out: np.ndarray,
        off: int,
        nodes: list[float],
        dep: list[float],
        tot: np.ndarray,
        pb: np.ndarray,
        psum: np.ndarray,
        in_system: float,
    ) -> int: ...
