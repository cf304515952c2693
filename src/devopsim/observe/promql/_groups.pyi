"""Types of the compiled per-group work over steps (see ``_groups.pyx``)."""

import numpy as np

def bucket_quantiles_sorted(q: np.ndarray, le: np.ndarray, counts: np.ndarray, out: np.ndarray) -> None: ...
def group_steps(
    ginv: np.ndarray,
    ok: np.ndarray,
    v: np.ndarray,
    cnt: np.ndarray,
    first: np.ndarray,
    total: np.ndarray,
    mag: np.ndarray,
) -> None: ...
