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
    spans: np.ndarray | None = None,
    call_pb: np.ndarray | None = None,
) -> tuple[float, float, float, float, float, float, float, float]: ...
def residual_ratio(x: np.ndarray, c: int) -> float: ...
def service_resid(parts: list[np.ndarray], share: np.ndarray, c: int) -> float | None: ...
def sort_nonneg(x: np.ndarray) -> None: ...
def class_units(
    durs: list[np.ndarray],
    outcomes: list[np.ndarray],
    thr: np.ndarray,
    cls_ok: np.ndarray,
    cls_err: np.ndarray,
    cls_lsum: np.ndarray,
    cls_hist: np.ndarray,
    cls_asum: np.ndarray,
    cls_pb: np.ndarray,
    slo: np.ndarray,
    span: np.ndarray | None = None,
    known: list[tuple[float, float, float, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray] | None]
    | None = None,
) -> None: ...
