"""Write a run's results to a folder, all or nothing.

``summary.json``, ``metrics.parquet`` (long format: ``t``, ``metric``,
``labels`` as JSON object text, ``value``) and ``events.jsonl``. Files are
written into a temporary folder beside the target and moved into place only
when all of them are complete, so an interrupted or failed write never
leaves half a result behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devopsim.errors import TelemetryError
from devopsim.observe.store import MetricStore
from devopsim.results.events import EventLog

__all__ = ["RESULT_FILES", "dump_summary", "write_folder", "write_results"]

RESULT_FILES = ("summary.json", "metrics.parquet", "events.jsonl")


def dump_summary(summary: dict[str, Any]) -> str:
    """The summary as JSON text (stable key order, so equal runs give equal bytes)."""
    return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_folder(
    out: Path, files: Mapping[str, Callable[[Path], object]], what: str = "results"
) -> list[Path]:
    """Write ``files`` (name -> writer of that path) into ``out``, all or nothing.

    Each writer fills its file in a temporary folder beside ``out``; only when every one
    has succeeded are the files moved into place, in the given order.

    Raises:
        TelemetryError: the folder cannot be created or written.
    """
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists() and not out.is_dir():
            raise TelemetryError(f"{out}: exists and is not a folder")
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise TelemetryError(f"cannot write {what} to {out}: {exc}") from None
    try:
        for name, write in files.items():
            write(tmp / name)
        out.mkdir(exist_ok=True)
        written = []
        for name in files:
            os.replace(tmp / name, out / name)
            written.append(out / name)
        return written
    except OSError as exc:
        raise TelemetryError(f"cannot write {what} to {out}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_results(out: Path, summary: dict[str, Any], store: MetricStore, log: EventLog) -> list[Path]:
    """Write the results into ``out`` (created if needed) and return the files written.

    Raises:
        TelemetryError: the folder cannot be created or written.
    """
    import pyarrow.parquet as pq

    files: dict[str, Callable[[Path], object]] = {
        "summary.json": lambda p: p.write_text(dump_summary(summary), encoding="utf-8"),
        "metrics.parquet": lambda p: pq.write_table(store.to_arrow(), p, compression="zstd"),
        "events.jsonl": log.write,
    }
    assert tuple(files) == RESULT_FILES
    return write_folder(out, files)
