"""Where a run came from: its scenario text and hash, and the process running it.

A ``running`` row records the host, the pid and the process's start time (on
Linux, from ``/proc``), so a later look at the store can tell a run still in
progress from one whose process was killed: a pid can be reused, its start
time cannot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ProcessId", "ScenarioText", "alive", "this_process"]


@dataclass(frozen=True)
class ProcessId:
    """A process, told apart from later ones that reuse its pid."""

    host: str
    pid: int
    start: str | None


def _proc_start(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 of proc(5): starttime, in clock ticks since boot


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def this_process() -> ProcessId:
    """The current process."""
    pid = os.getpid()
    return ProcessId(socket.gethostname(), pid, _proc_start(pid))


def alive(proc: ProcessId) -> bool | None:
    """Whether ``proc`` still runs: ``None`` when it ran on another host (we cannot tell)."""
    if proc.host != socket.gethostname():
        return None
    try:
        # Signal 0 only checks: a PermissionError means it exists, owned by another user.
        with contextlib.suppress(PermissionError):
            os.kill(proc.pid, 0)
    except ProcessLookupError:
        return False
    if _proc_state(proc.pid) in ("Z", "X"):  # exited, waiting to be reaped
        return False
    return not (proc.start is not None and _proc_start(proc.pid) not in (None, proc.start))


@dataclass(frozen=True)
class ScenarioText:
    """A run's scenario as text, with its overrides and the hash of the effective document.

    Attributes:
        source: the file it came from, ``--env NAME`` or ``<dict>``.
        text: the file's own text (comments and all), or the document as YAML.
        overrides: ``{dotted.path: value}`` set on the command line (``--set``).
        sha256: SHA-256 of the effective document (after overrides) as canonical JSON,
            so equal scenarios hash equal whatever their comments or key order.
        effective: the effective document as YAML (what to run again).
    """

    source: str
    text: str
    overrides: dict[str, Any]
    sha256: str
    effective: str


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _at(data: Any, path: tuple[str | int, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def scenario_text(loaded: Any) -> ScenarioText:
    """Describe the scenario of a :class:`~devopsim.scenario.loader.LoadedScenario`."""
    import yaml

    src = loaded.source
    data = src.data if src.data is not None else loaded.scenario.model_dump(mode="json", by_alias=True)
    marked = set(src.overridden)
    overrides: dict[str, Any] = {}
    for path in sorted(marked, key=lambda p: (len(p), [str(x) for x in p])):
        if path and path[:-1] not in marked:
            try:
                overrides[_dotted(path)] = _at(data, path)
            except (KeyError, IndexError, TypeError):
                continue
    effective = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    sha = hashlib.sha256(canonical.encode()).hexdigest()
    file = str(src.file)
    text: str | None = None
    source = file
    if file.startswith("<preset ") and file.endswith(">"):
        from devopsim.scenario.loader import preset_text

        env = file[len("<preset ") : -1]
        source = f"--env {env}"
        try:
            text = preset_text(env)
        except Exception:
            text = None
    elif not file.startswith("<"):
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
            source = str(path.resolve())
        except OSError:
            text = None
    return ScenarioText(source, text if text is not None else effective, overrides, sha, effective)
