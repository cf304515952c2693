"""Session-wide test settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_run_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`devopsim run` records every run; in tests, into a throwaway store, never the user's own."""
    old = os.environ.get("DEVOPSIM_DB")
    os.environ["DEVOPSIM_DB"] = str(Path(tmp_path_factory.mktemp("store")) / "runs.db")
    yield
    if old is None:
        os.environ.pop("DEVOPSIM_DB", None)
    else:
        os.environ["DEVOPSIM_DB"] = old
