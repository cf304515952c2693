"""Where the run store lives: ``--db URL``, ``$DEVOPSIM_DB``, or SQLite in the user data folder.

Accepted forms:

* ``sqlite:///path/to/runs.db`` (absolute: ``sqlite:////abs/runs.db``)
* ``postgresql://user@host:5432/db`` (``postgresql+psycopg://`` is implied: psycopg 3)
* a plain file path, taken as a SQLite file (``./runs.db``, ``~/runs.db``)

Nothing given: ``runs.db`` in ``platformdirs.user_data_dir("devopsim")``.
"""

from __future__ import annotations

import os
from pathlib import Path

from devopsim.errors import ConfigError, Issue

__all__ = ["ENV_VAR", "default_sqlite_path", "describe_url", "resolve_url"]

ENV_VAR = "DEVOPSIM_DB"


def default_sqlite_path() -> Path:
    """The per-user default store file (not created here)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("devopsim", appauthor=False)) / "runs.db"


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError([Issue("--db", None, "", f"{why} (got {describe_url(url)!r})")])


def resolve_url(db: str | None = None) -> str:
    """The SQLAlchemy URL of the store: ``db`` if given, else ``$DEVOPSIM_DB``, else the default file.

    Raises:
        ConfigError: the URL is malformed or names a database devopsim does not support.
    """
    raw = db if db else os.environ.get(ENV_VAR) or ""
    raw = raw.strip()
    if not raw:
        return "sqlite:///" + str(default_sqlite_path())
    if "://" not in raw:
        if raw.startswith(("postgres:", "postgresql:", "sqlite:")):
            raise _bad(raw, "a database URL needs '://', e.g. sqlite:///runs.db")
        return "sqlite:///" + str(Path(raw).expanduser().absolute())
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except ArgumentError:
        raise _bad(
            raw, "cannot read this database URL; expected sqlite:///FILE or postgresql://..."
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise _bad(raw, "PostgreSQL is reached through psycopg 3: use postgresql+psycopg://")
        if not url.database:
            raise _bad(raw, "a PostgreSQL URL must name a database, e.g. postgresql://user@host/devopsim")
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise _bad(raw, "SQLite is reached through the standard library: use sqlite:///FILE")
        if not url.database or url.database == ":memory:":
            raise _bad(raw, "a SQLite store needs a file: sqlite:///FILE")
        path = Path(url.database).expanduser()
        url = url.set(drivername="sqlite", database=str(path.absolute()))
    else:
        raise _bad(raw, f"unsupported database {backend!r}; use sqlite:///FILE or postgresql://...")
    return url.render_as_string(hide_password=False)


def describe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
