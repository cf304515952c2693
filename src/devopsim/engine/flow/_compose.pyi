"""Types of the compiled composition kernels (``_compose.pyx``)."""

import numpy as np

STEP_WORK: int
STEP_WAIT: int
STEP_CALL: int

def compose_endpoint(
    seed: int,
    n_att: int,
    slots: np.ndarray,
    weight: np.ndarray,
    pwait: np.ndarray,
    theta: np.ndarray,
    bwait: np.ndarray,
    stretch: np.ndarray,
    reject: np.ndarray,
    slack: np.ndarray,
    drop: np.ndarray,
    err_rate: np.ndarray,
    ps_rho: np.ndarray,
    ps_mu: np.ndarray,
    ps_scale: np.ndarray,
    gauss: np.ndarray,
    tmo: float,
    d_net: float,
    jitter: float,
    p_loss: float,
    p_open: float,
    retry_mask: int,
    backoff: float,
    maxbackoff: float,
    st_kind: np.ndarray,
    st_arg: np.ndarray,
    st_n: np.ndarray,
    pools: list[np.ndarray],
    pool_pos: np.ndarray,
    t_dur: list[np.ndarray],
    t_out: list[np.ndarray],
    t_p: np.ndarray,
    duration: np.ndarray,
    outcome: np.ndarray,
    server: np.ndarray,
    server_ok: np.ndarray,
    wait: np.ndarray,
    service: np.ndarray,
    index_scratch: np.ndarray,
    scratch: np.ndarray,
) -> tuple[int, float, float, float]: ...
def ps_variance(d: float, rho: float, mu: float, scale: float) -> float: ...
def gamma_draws(a: float, n: int, seed: int, gauss: np.ndarray) -> list[float]: ...
def ps_draws(
    d: float, rho: float, mu: float, scale: float, stretch: float, n: int, seed: int, gauss: np.ndarray
) -> list[float]: ...
