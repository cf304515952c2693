"""Series selection: matchers over the store, instant lookups and range windows.

The series a selector matches are gathered once into a :class:`Block`: their
samples concatenated in label order, times in integer milliseconds (as
Prometheus keeps them), with a composite sort key ``rank << 40 | t`` so one
``np.searchsorted`` finds, for every series at once, the samples inside a
window. That makes a selection over 10^5 series a handful of NumPy calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from devopsim.observe.promql.ast import Matcher, Selector
from devopsim.observe.promql.labels import NAME, LabelTable

if TYPE_CHECKING:
    from devopsim.observe.store import MetricStore

__all__ = ["Block", "Selection", "Window"]

_SHIFT = 40
_SPAN = (1 << _SHIFT) - 1


@dataclass
class Block:
    """Samples of the series one selector matches, in label order."""

    lids: np.ndarray  # label-set id (with __name__) per series
    t: np.ndarray  # int64 ms, concatenated per series
    v: np.ndarray
    off: np.ndarray  # series k has samples off[k]:off[k+1]
    keys: np.ndarray
    base: int

    def _key(self, x: np.ndarray | int) -> np.ndarray:
        rel = np.clip(np.asarray(x, dtype=np.int64) - self.base, 0, _SPAN)
        return (np.arange(self.lids.size, dtype=np.int64) << _SHIFT) | rel

    def last_at(self, ts: int, lookback: int, left_open: bool) -> tuple[np.ndarray, np.ndarray]:
        """Index of each series' latest sample at ``ts`` within the lookback, and a validity mask."""
        end = np.searchsorted(self.keys, self._key(ts), side="right") - 1
        ok = end >= self.off[:-1]
        lo = ts - lookback
        tt = self.t[np.maximum(end, 0)] if self.t.size else np.zeros(end.size, np.int64)
        ok &= (tt > lo) if left_open else (tt >= lo)
        return end, ok

    def window(self, ts: int, range_ms: int, left_open: bool) -> Window:
        """The samples of every series in ``(ts - range, ts]`` (``[...]`` when not left-open)."""
        start = np.searchsorted(self.keys, self._key(ts - range_ms), side="right" if left_open else "left")
        end = np.searchsorted(self.keys, self._key(ts), side="right")
        keep = end > start
        return Window(self.lids[keep], self.t, self.v, start[keep], end[keep], ts)


@dataclass
class Window:
    """A range vector: series ``k`` holds ``t[start[k]:end[k]]`` (never empty)."""

    lids: np.ndarray
    t: np.ndarray
    v: np.ndarray
    start: np.ndarray
    end: np.ndarray
    ts: int  # the window's right edge (evaluation time minus offset)


class Selection:
    """Builds and caches :class:`Block` objects for one store state."""

    def __init__(self, store: MetricStore, labels: LabelTable, dotall: bool) -> None:
        self.store = store
        self.labels = labels
        self.dotall = dotall
        self._blocks: dict[tuple[Matcher, ...], Block] = {}
        self._set_cache: dict[int, dict[str, str]] = {}
        self._version: tuple[int, int] = (-1, -1)

    def _check_version(self) -> None:
        version = (len(self.store.series_metric), self.store.n_samples)
        if version != self._version:
            self._blocks.clear()
            self._version = version

    def _regex(self, pattern: str) -> re.Pattern[str]:
        return _compile(pattern, self.dotall)

    def _matches(self, m: Matcher, value: str) -> bool:
        if m.op == "=":
            return value == m.value
        if m.op == "!=":
            return value != m.value
        hit = self._regex(m.value).fullmatch(value) is not None
        return hit if m.op == "=~" else not hit

    def block(self, sel: Selector) -> Block:
        """The block of series ``sel`` matches (offset not applied)."""
        self._check_version()
        cached = self._blocks.get(sel.matchers)
        if cached is not None:
            return cached
        st = self.store
        name_ms = [m for m in sel.matchers if m.name == NAME]
        other = [m for m in sel.matchers if m.name != NAME]
        metrics = [n for n in st.metric_names if all(self._matches(m, n) for m in name_ms)]
        found: list[tuple[tuple[tuple[str, str], ...], int]] = []
        for metric in metrics:
            for sid in st.series_of(metric):
                lset_id = st.series_label_set[sid]
                lab = self._set_cache.get(lset_id)
                if lab is None:
                    lab = self._set_cache[lset_id] = {k: str(v) for k, v in st.labels_of(sid).items()}
                if all(self._matches(m, lab.get(m.name, "")) for m in other):
                    full = tuple(sorted([*((k, v) for k, v in lab.items() if v != ""), (NAME, metric)]))
                    found.append((full, sid))
        found.sort()
        ts_list, vs_list, counts, lids = [], [], [], []
        for full, sid in found:
            t, v = st.samples(sid)
            if t.size == 0:
                continue
            ts_list.append(np.round(np.asarray(t, dtype=np.float64) * 1000.0).astype(np.int64))
            vs_list.append(np.asarray(v, dtype=np.float64))
            counts.append(t.size)
            lids.append(self.labels.intern(full))
        block = _make_block(lids, ts_list, vs_list, counts)
        self._blocks[sel.matchers] = block
        return block


def _make_block(lids: list[int], ts: list[np.ndarray], vs: list[np.ndarray], counts: list[int]) -> Block:
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    t = np.concatenate(ts) if ts else np.empty(0, np.int64)
    v = np.concatenate(vs) if vs else np.empty(0, np.float64)
    base = int(t.min()) - 1 if t.size else 0
    if t.size and int(t.max()) - base >= _SPAN:
        raise ValueError("sample times span more than 34 years")
    rank = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    keys = (rank << _SHIFT) | (t - base)
    return Block(np.asarray(lids, dtype=np.int64), t, v, off, keys, base)


def block_from_points(lids: list[int], series: list[tuple[np.ndarray, np.ndarray]]) -> Block:
    """A block from explicit ``(t_ms, values)`` pairs, already in label order."""
    return _make_block(lids, [s[0] for s in series], [s[1] for s in series], [s[0].size for s in series])


_RE_CACHE: dict[tuple[str, bool], re.Pattern[str]] = {}


def _compile(pattern: str, dotall: bool) -> re.Pattern[str]:
    key = (pattern, dotall)
    rx = _RE_CACHE.get(key)
    if rx is None:
        try:
            rx = re.compile(f"(?:{_scope_inline_flags(pattern)})", re.DOTALL if dotall else 0)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        _RE_CACHE[key] = rx
    return rx


_FLAG = re.compile(r"\(\?([imsU]+)\)")


def _scope_inline_flags(pattern: str) -> str:
    """Rewrite RE2's ``(?i)`` (flags to the end of the enclosing group) as Python's ``(?i:...)``."""
    if "(?" not in pattern:
        return pattern
    out: list[str] = []
    opened: list[int] = [0]  # per open group: how many scoped-flag groups to close with it
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
            if pattern[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
        elif (m := _FLAG.match(pattern, i)) is not None:
            flags = m.group(1).replace("U", "")
            if flags:
                out.append(f"(?{flags}:")
                opened[-1] += 1
            i = m.end()
            continue
        elif c == "(":
            opened.append(0)
            out.append(c)
        elif c == ")":
            if len(opened) < 2:
                raise re.error("unbalanced parenthesis")
            out.append(")" * opened.pop() + ")")
        else:
            out.append(c)
        i += 1
    out.append(")" * opened[0])
    return "".join(out)
