"""Types of the compiled rate/increase/delta (see ``_extrapolate.pyx``)."""

import numpy as np

def extrapolate(
    t: np.ndarray,
    v: np.ndarray,
    s: np.ndarray,
    e: np.ndarray,
    ts: np.ndarray,
    range_ms: int,
    counter: bool,
    is_rate: bool,
    v2: bool,
    out: np.ndarray,
) -> None: ...
def extrapolate_steps(
    t: np.ndarray,
    v: np.ndarray,
    off: np.ndarray,
    rows: np.ndarray,
    at: np.ndarray,
    range_ms: int,
    counter: bool,
    is_rate: bool,
    v2: bool,
    out: np.ndarray,
    ok: np.ndarray,
) -> None: ...
