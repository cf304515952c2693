"""A selection's samples as one block: series concatenated in label order, times in integer
milliseconds, a composite sort key ``rank << 40 | t`` (:class:`Block`), the windows over it
(:class:`Window`), and the series a list of matchers selects (:class:`_Match`). See
:mod:`.select`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Block", "Window"]

_SHIFT = 40
_SPAN = (1 << _SHIFT) - 1
_KEY_BASE = -(1 << 38)  # times from -8.7 to +26 years fit a live block's 40-bit time key
_MAX_RANK = 1 << (63 - _SHIFT)  # ranks whose key prefix rank << 40 fits an int64


@dataclass
class Block:
    """Samples of the series one selector matches, in label order.

    Staleness markers are kept apart (``skeys``/``st``/``soff``, same layout): an instant
    lookup ignores a series whose newest point is a marker; range windows never see them.
    """

    lids: np.ndarray  # label-set id (with __name__) per series
    t: np.ndarray  # int64 ms, concatenated per series
    v: np.ndarray
    off: np.ndarray  # series k has samples off[k]:off[k+1]
    keys: np.ndarray
    base: int
    st: np.ndarray | None = None  # staleness marker times (int64 ms), per series
    skeys: np.ndarray | None = None
    soff: np.ndarray | None = None
    downsampled: bool = False  # some points are downsampled windows, not raw samples
    rows: np.ndarray | None = None  # series k's key prefix, k << 40 (made on first lookup)

    def _key(self, x: int) -> np.ndarray:
        rel = min(max(int(x) - self.base, 0), _SPAN)
        if self.rows is None:
            self.rows = np.arange(self.lids.size, dtype=np.int64) << _SHIFT
        out: np.ndarray = self.rows | rel
        return out

    def last_at(self, ts: int, lookback: int, left_open: bool) -> tuple[np.ndarray, np.ndarray]:
        """Index of each series' latest sample at ``ts`` within the lookback, and a validity mask."""
        key = self._key(ts)
        end = np.searchsorted(self.keys, key, side="right") - 1
        ok = end >= self.off[:-1]
        lo = ts - lookback
        tt = self.t[np.maximum(end, 0)] if self.t.size else np.zeros(end.size, np.int64)
        ok &= (tt > lo) if left_open else (tt >= lo)
        if self.st is not None and self.st.size and self.skeys is not None and self.soff is not None:
            send = np.searchsorted(self.skeys, key, side="right") - 1
            marked = send >= self.soff[:-1]
            ok &= ~(marked & (self.st[np.maximum(send, 0)] >= tt))
        return end, ok

    def window(self, ts: int, range_ms: int, left_open: bool) -> Window:
        """The samples of every series in ``(ts - range, ts]`` (``[...]`` when not left-open)."""
        start = np.searchsorted(self.keys, self._key(ts - range_ms), side="right" if left_open else "left")
        end = np.searchsorted(self.keys, self._key(ts), side="right")
        keep = end > start
        return Window(self.lids[keep], self.t, self.v, start[keep], end[keep], ts)


@dataclass
class Window:
    """A range vector: series ``k`` holds ``t[start[k]:end[k]]`` (never empty).

    Windows of several steps at once (:mod:`devopsim.observe.promql.steps`) give each
    segment its own right edge: ``ts`` is then an array, one per segment.
    """

    lids: np.ndarray
    t: np.ndarray
    v: np.ndarray
    start: np.ndarray
    end: np.ndarray
    ts: int | np.ndarray  # the window's right edge (evaluation time minus offset), ms


class _Match:
    """The series one list of matchers selects, kept up to date as series are registered."""

    def __init__(self) -> None:
        self.checked = 0  # series ids below this were tested
        self.names_checked = 0
        self.mids: set[int] = set()
        self.found: list[tuple[tuple[tuple[str, str], ...], int, int]] = []  # (labels, series, label id)
        self.sid_list: list[int] = []  # found's series and label ids, kept alongside
        self.lid_list: list[int] = []
        self.dirty = True
        self.sids = np.empty(0, dtype=np.int64)
        self.lids = np.empty(0, dtype=np.int64)
        self.rank = np.empty(0, dtype=np.int64)  # series id -> position in label order, or -1


def _make_block(
    lids: np.ndarray,
    rank: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    s_rank: np.ndarray | None = None,
    s_t: np.ndarray | None = None,
) -> Block:
    n = lids.size
    off = np.searchsorted(rank, np.arange(n + 1)).astype(np.int64)
    lows = [int(t.min())] if t.size else []
    if s_t is not None and s_t.size:
        lows.append(int(s_t.min()))
    base = min(lows) - 1 if lows else 0
    if t.size and int(t.max()) - base >= _SPAN:
        raise ValueError("sample times span more than 34 years")
    keys = (rank.astype(np.int64) << _SHIFT) | (t - base)
    blk = Block(np.asarray(lids, dtype=np.int64), t, v, off, keys, base)
    if s_rank is not None and s_t is not None and s_rank.size:
        blk.st = s_t
        blk.skeys = (s_rank.astype(np.int64) << _SHIFT) | (s_t - base)
        blk.soff = np.searchsorted(s_rank, np.arange(n + 1)).astype(np.int64)
    return blk
