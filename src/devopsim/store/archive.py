"""Back a run store up to one portable file, and restore it into any store (SQLite or PostgreSQL).

The backup is a tar archive (gzip-compressed when its name ends ``.gz`` or
``.tgz``) readable without devopsim:

* ``devopsim-backup.json``: format, format version, schema revision, devopsim version, run count;
* ``runs.jsonl``: one JSON object per run, every column of ``devopsim_runs`` (times in ISO 8601);
* ``blobs/<run id>/<name>``: each stored file of a run (``metrics.parquet``, ``events.jsonl.gz``).

Restoring adds the archive's runs to the target store in one transaction; runs
already there (same id) are left as they are and counted as skipped.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from devopsim.errors import ConfigError, Issue, TelemetryError
from devopsim.store.runstore import RunStore
from devopsim.store.schema import HEAD, PART_BYTES, blobs, runs

__all__ = ["FORMAT", "RestoreReport", "backup", "restore"]

FORMAT = "devopsim-runs-backup"
FORMAT_VERSION = 1
_MANIFEST = "devopsim-backup.json"
_TIME_COLS = ("started_at", "ended_at")


def _open_write(target: Path, name: str) -> tarfile.TarFile:
    if name.endswith((".gz", ".tgz")):
        return tarfile.open(target, "w:gz")
    return tarfile.open(target, "w")


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    tar.addfile(info, io.BytesIO(data))


def backup(store: RunStore, path: str | Path) -> int:
    """Write every run of ``store`` to the archive ``path``; returns how many runs.

    Raises:
        TelemetryError: the file cannot be written or the store read.
    """
    from devopsim import __version__

    path = Path(path)
    cols = [c for c in runs.c]
    with store._read() as conn:
        rows = [
            dict(r._mapping) for r in conn.execute(sa.select(*cols).order_by(runs.c.started_at, runs.c.id))
        ]
    for row in rows:
        for key in _TIME_COLS:
            if row[key] is not None:
                row[key] = row[key].isoformat()
    now = time.time()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema": HEAD,
        "devopsim": __version__,
        "runs": len(rows),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _open_write(tmp, path.name) as tar:
            _add(tar, _MANIFEST, json.dumps(manifest, indent=2).encode(), now)
            lines = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
            _add(tar, "runs.jsonl", lines.encode(), now)
            for row in rows:
                for name in _blob_names(store, row["id"]):
                    data = store.blob(row["id"], name)
                    if data is not None:
                        _add(tar, f"blobs/{row['id']}/{name}", data, now)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TelemetryError(f"cannot write the backup {path}: {exc}") from None
    return len(rows)


def _blob_names(store: RunStore, run_id: str) -> list[str]:
    with store._read() as conn:
        q = sa.select(blobs.c.name).where(blobs.c.run_id == run_id).distinct().order_by(blobs.c.name)
        return [r[0] for r in conn.execute(q)]


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did."""

    restored: int
    skipped: int


def _bad(path: Path, why: str) -> ConfigError:
    return ConfigError([Issue(str(path), None, "", why)])


def restore(store: RunStore, path: str | Path) -> RestoreReport:
    """Add the runs of the archive ``path`` to ``store`` (all in one transaction).

    Raises:
        ConfigError: the file is missing or not a devopsim backup, or from a newer format.
        TelemetryError: the store cannot be written.
    """
    path = Path(path)
    if not path.is_file():
        raise _bad(path, "no such backup file")
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by the with-block below)
    except (OSError, tarfile.TarError) as exc:
        raise _bad(path, f"not a devopsim backup (cannot read it as an archive: {exc})") from None
    with tar:
        manifest = _json_member(tar, _MANIFEST, path)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise _bad(path, "not a devopsim backup (no devopsim-backup.json manifest)")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise _bad(
                path,
                "written by a newer devopsim (backup format version "
                f"{manifest.get('format_version')}); upgrade devopsim to restore it",
            )
        member = tar.extractfile("runs.jsonl") if "runs.jsonl" in tar.getnames() else None
        if member is None:
            raise _bad(path, "not a devopsim backup (runs.jsonl is missing)")
        rows = [json.loads(line) for line in member.read().decode().splitlines() if line.strip()]
        names = tar.getnames()
        known = {c.name for c in runs.c}
        with store._read() as conn:
            have = {r[0] for r in conn.execute(sa.select(runs.c.id))}
        todo = [r for r in rows if r.get("id") not in have]

        def tx(conn: sa.Connection) -> None:
            for row in todo:
                values: dict[str, Any] = {k: v for k, v in row.items() if k in known}
                for key in _TIME_COLS:
                    if values.get(key) is not None:
                        values[key] = datetime.fromisoformat(values[key])
                conn.execute(runs.insert().values(**values))
                prefix = f"blobs/{row['id']}/"
                for name in names:
                    if not name.startswith(prefix):
                        continue
                    fh = tar.extractfile(name)
                    data = fh.read() if fh is not None else b""
                    parts = [
                        {
                            "run_id": row["id"],
                            "name": name[len(prefix) :],
                            "part": i,
                            "data": data[off : off + PART_BYTES],
                        }
                        for i, off in enumerate(range(0, max(len(data), 1), PART_BYTES))
                    ]
                    conn.execute(blobs.insert(), parts)

        store._write(tx)
    return RestoreReport(restored=len(todo), skipped=len(rows) - len(todo))


def _json_member(tar: tarfile.TarFile, name: str, path: Path) -> Any:
    try:
        fh = tar.extractfile(name)
    except KeyError:
        fh = None
    if fh is None:
        raise _bad(path, f"not a devopsim backup ({name} is missing)")
    try:
        return json.loads(fh.read())
    except ValueError:
        raise _bad(path, f"not a devopsim backup ({name} is not JSON)") from None
