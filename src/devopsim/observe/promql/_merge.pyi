"""Types of the compiled live-block merge (see ``_merge.pyx``)."""

import numpy as np

def merge_chunks(
    okey: np.ndarray,
    ov: np.ndarray,
    opos: np.ndarray,
    chunks: list[tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray, int]],
    base: int,
    lo_rel: int,
    nser: int,
    key: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    p: np.ndarray,
    off: np.ndarray,
    scratch: np.ndarray,
) -> int: ...
