"""Interned label sets and memoised label transformations.

An instant vector is two NumPy arrays: label-set ids and values. Label sets are
interned once per engine as sorted ``((name, value), ...)`` tuples (``__name__``
included), and every label operation the evaluator needs (drop the metric name,
keep the grouping labels, compute a matching signature) is a memoised map from
id to id. A range query repeats the same operations at every step on mostly the
same series, so after the first step those maps are plain NumPy gathers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["NAME", "LabelSet", "LabelTable"]

NAME = "__name__"
LabelSet = tuple[tuple[str, str], ...]


class LabelTable:
    """Interned label sets and per-operation id maps."""

    def __init__(self) -> None:
        self.sets: list[LabelSet] = []
        self._index: dict[LabelSet, int] = {}
        self._maps: dict[object, np.ndarray] = {}
        self.empty = self.intern(())

    def intern(self, labels: LabelSet) -> int:
        """The id of a sorted label tuple (registered on first use)."""
        lid = self._index.get(labels)
        if lid is None:
            lid = self._index[labels] = len(self.sets)
            self.sets.append(labels)
        return lid

    def intern_dict(self, labels: dict[str, str]) -> int:
        """The id of a label dict; empty values are dropped as Prometheus does."""
        return self.intern(tuple(sorted((k, v) for k, v in labels.items() if v != "")))

    def dict(self, lid: int) -> dict[str, str]:
        """The label set ``lid`` as a dict."""
        return dict(self.sets[lid])

    def map(self, key: object, ids: np.ndarray, fn: Callable[[LabelSet], LabelSet]) -> np.ndarray:
        """``intern(fn(sets[i]))`` for every id in ``ids``, memoised under ``key``."""
        m = self._maps.get(key)
        n = len(self.sets)
        if m is None or m.size < n:
            grown = np.full(max(n, 16) * 2, -1, dtype=np.int64)
            if m is not None:
                grown[: m.size] = m
            m = self._maps[key] = grown
        out: np.ndarray = m[ids]
        missing = np.flatnonzero(out < 0)
        if missing.size:
            for j in missing.tolist():
                lid = int(ids[j])
                res = m[lid]
                if res < 0:
                    res = m[lid] = self.intern(fn(self.sets[lid]))
                out[j] = res
        return out

    def drop_name(self, ids: np.ndarray) -> np.ndarray:
        """The ids without ``__name__``."""
        return self.map("drop_name", ids, lambda s: tuple(p for p in s if p[0] != NAME))

    def keep(self, ids: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """The ids restricted to ``names`` (``by``/``on``)."""
        wanted = frozenset(names)
        return self.map(("keep", wanted), ids, lambda s: tuple(p for p in s if p[0] in wanted))

    def without(self, ids: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """The ids without ``names`` and without ``__name__`` (``without``/``ignoring``)."""
        dropped = frozenset(names) | {NAME}
        return self.map(("without", dropped), ids, lambda s: tuple(p for p in s if p[0] not in dropped))

    def drop(self, ids: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """The ids without ``names`` (other labels, ``__name__`` included, kept)."""
        dropped = frozenset(names)
        return self.map(("drop", dropped), ids, lambda s: tuple(p for p in s if p[0] not in dropped))

    def get(self, lid: int, name: str) -> str:
        """The value of label ``name`` in set ``lid`` ('' when absent)."""
        for k, v in self.sets[lid]:
            if k == name:
                return v
        return ""
