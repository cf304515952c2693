"""The run's event log: one record per thing that happened, in time order.

A loop may emit events late (the rules loop evaluates its groups in batches): it
notes :meth:`EventLog.mark` when the events happen, registers what emits them with
:meth:`EventLog.owe`, and the log has them emitted, each at its mark, before anything
reads :attr:`EventLog.events`. Readers see the order they would have seen had the
events been emitted on time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EventLog"]


class EventLog:
    """Events as ``{"t": seconds, "kind": ..., **fields}``, in the order they happened."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._owed: Callable[[], None] | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event so far (the owed ones emitted first, see :meth:`owe`)."""
        self.settle()
        return self._events

    @events.setter
    def events(self, events: list[dict[str, Any]]) -> None:
        self._events = events

    def unsettled(self) -> list[dict[str, Any]]:
        """The events so far without the owed ones, without settling (see :meth:`owe`): for a
        reader that only looks at kinds the owing loop never emits. The owed events are
        inserted later at their marks, before events already read: follow what was read by
        identity, not by position."""
        return self._events

    @staticmethod
    def record(t: float, kind: str, **fields: Any) -> dict[str, Any]:
        """The record :meth:`emit` adds for these arguments."""
        return {"t": round(float(t), 9), "kind": kind, **fields}

    def emit(self, t: float, kind: str, **fields: Any) -> None:
        """Record that ``kind`` happened at simulated time ``t``."""
        self._events.append({"t": round(float(t), 9), "kind": kind, **fields})

    def mark(self) -> int:
        """Where an event emitted now would go (for :meth:`insert`), without settling."""
        return len(self._events)

    def insert(self, chunks: list[tuple[int, list[dict[str, Any]]]]) -> None:
        """Put each chunk's records where :meth:`mark` said, marks in rising order (chunks of
        equal marks in the given order), as if they had been emitted then."""
        if not chunks:
            return
        old = self._events
        out: list[dict[str, Any]] = []
        done = 0
        for at, recs in chunks:
            if at < done or at > len(old):
                raise ValueError(f"marks must rise within the log ({at} after {done}, {len(old)} events)")
            out.extend(old[done:at])
            out.extend(recs)
            done = at
        out.extend(old[done:])
        old[:] = out

    def owe(self, settle: Callable[[], None]) -> None:
        """Declare events owed that ``settle()`` will insert; it runs before the next read."""
        self._owed = settle

    def settle(self) -> None:
        """Have the owed events inserted now (see :meth:`owe`); nothing if none are owed."""
        owed = self._owed
        if owed is not None:
            self._owed = None
            owed()

    def write(self, path: Path) -> None:
        """Write the log as JSON Lines."""
        with path.open("w", encoding="utf-8") as fh:
            for ev in self.events:
                fh.write(json.dumps(ev, separators=(",", ":"), sort_keys=False) + "\n")
