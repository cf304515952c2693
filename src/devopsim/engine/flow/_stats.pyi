"""Types of the compiled statistics of composed samples (``_stats.pyx``)."""

import numpy as np

EDGES: np.ndarray
PROM_BOUNDS: np.ndarray

def lh_bins(x: np.ndarray, out: np.ndarray) -> None: ...
def prom_bins(x: np.ndarray, out: np.ndarray) -> None: ...
def call_stats(
    dur: np.ndarray,
    outcome: np.ndarray,
    err: np.ndarray,
    hist: np.ndarray,
    w_hist: float,
    pb: np.ndarray,
    w_pb: float,
    thr: np.ndarray,
    good: np.ndarray,
) -> tuple[float, float, float, float]: ...
def endpoint_stats(
    dur: np.ndarray,
    outcome: np.ndarray,
    server: np.ndarray,
    server_ok: np.ndarray,
    wait: np.ndarray,
    err: np.ndarray,
    hist: np.ndarray,
    sv_hist: np.ndarray,
    sv_pb: np.ndarray,
    whist: np.ndarray,
) -> tuple[float, float, float, float, float, float, float, float]: ...
def residual_ratio(x: np.ndarray, c: int) -> float: ...
