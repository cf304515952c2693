"""A table's new rows as the live-block merge reads them (see ``live._Live``): in place,
as the store keeps them, with the NumPy reference's one-matrix form beside."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from devopsim.observe.store import _Table

__all__ = ["Chunk", "one_matrix", "row_pieces"]

#: New rows of one table for a live block: the ranks of the columns read, the rows' times (ms),
#: the values (the rows of 2-D pieces one after the other, and the columns of them to read;
#: the NumPy reference makes it one piece) and the table's position.
Chunk = tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray, int]


def one_matrix(pieces: list[np.ndarray], cols: np.ndarray) -> list[np.ndarray]:
    """The (rows x columns) matrix a chunk's pieces and columns stand for (as one piece)."""
    if len(pieces) == 1:
        return [pieces[0][:, cols]]
    return [np.concatenate([p[:, cols] for p in pieces]) if pieces else np.empty((0, cols.size))]


def row_pieces(tb: _Table, a: int, b: int, cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Rows ``a:b`` of ``tb``, columns ``cols``, as (pieces, columns of them) for the merge:
    the table's blocks read in place (``_Table._var_rows`` without its copy) when every
    column varies, else the one copy ``_Table.rows`` makes."""
    if cols.size and int(cols.max()) >= tb.nvar:
        return [tb.rows(a, b, cols)], np.arange(cols.size, dtype=np.int64)
    tb.ensure_sorted()
    out: list[np.ndarray] = []
    first = max(bisect.bisect_right(tb.starts, a) - 1, 0)
    start = tb.starts[first] if tb.starts else 0
    last = len(tb.blocks) - 1
    for k in range(first, len(tb.blocks)):
        blk = tb.blocks[k]
        size = tb.fill if k == last else blk.shape[0]
        lo, hi = max(a, start), min(b, start + size)
        if lo < hi:
            out.append(blk[lo - start : hi - start])
        start += size
        if start >= b:
            break
    return out, cols
