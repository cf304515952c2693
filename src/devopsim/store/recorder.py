"""Record a ``devopsim run`` as it happens: a ``running`` row first, the results at the end.

Ctrl-C and SIGTERM mark the run ``interrupted``, an error marks it ``failed``;
a run killed outright is found and marked by the next look at the store.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from devopsim.store.runstore import RunStore

__all__ = ["Recorder", "recording"]


class Recorder:
    """The run being recorded (``run_id`` is ``None`` when recording is off)."""

    def __init__(self, store: RunStore | None, run_id: str | None) -> None:
        self.store = store
        self.run_id = run_id
        self.done = False

    def complete(self, result: Any) -> None:
        """Land the run's results (one transaction)."""
        if self.store is not None and self.run_id is not None:
            self.store.complete(self.run_id, result)
        self.done = True


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def recording(
    loaded: Any, seed: int | None, db: str | None = None, enabled: bool = True
) -> Iterator[Recorder]:
    """Record the run of ``loaded`` in the store at ``db`` (see :class:`~devopsim.store.RunStore`).

    The block must call :meth:`Recorder.complete` with the result; leaving it by
    an exception marks the run ``failed``, by Ctrl-C or SIGTERM ``interrupted``.

    Raises:
        ConfigError: ``db`` is malformed.
        TelemetryError: the store cannot be reached.
    """
    if not enabled:
        yield Recorder(None, None)
        return
    store = RunStore(db)
    previous: Any = None
    try:
        run_id = store.begin(loaded, seed)
        rec = Recorder(store, run_id)
        try:
            previous = signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread: leave signals alone
            previous = None
        try:
            yield rec
        except (KeyboardInterrupt, SystemExit):
            _mark(store, run_id, "interrupted", "interrupted (Ctrl-C or SIGTERM)")
            raise
        except BaseException as exc:
            _mark(store, run_id, "failed", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        if not rec.done:
            _mark(store, run_id, "failed", "the run ended without a result")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        store.close()


def _mark(store: RunStore, run_id: str, status: str, error: str) -> None:
    # If the store is unreachable now, the next listing marks the run by its dead pid.
    with contextlib.suppress(Exception):
        store.mark(run_id, status, error)
