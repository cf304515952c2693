"""The run's event log: one record per thing that happened, in time order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["EventLog"]


class EventLog:
    """Events as ``{"t": seconds, "kind": ..., **fields}``, in the order they happened."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, t: float, kind: str, **fields: Any) -> None:
        """Record that ``kind`` happened at simulated time ``t``."""
        self.events.append({"t": round(float(t), 9), "kind": kind, **fields})

    def write(self, path: Path) -> None:
        """Write the log as JSON Lines."""
        with path.open("w", encoding="utf-8") as fh:
            for ev in self.events:
                fh.write(json.dumps(ev, separators=(",", ":"), sort_keys=False) + "\n")
