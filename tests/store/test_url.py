"""Where the store is: URLs, file paths, the per-user default, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devopsim.cli import app
from devopsim.errors import ConfigError
from devopsim.store.url import default_sqlite_path, describe_url, resolve_url


def test_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVOPSIM_DB", raising=False)
    assert resolve_url() == f"sqlite:///{default_sqlite_path()}"
    assert default_sqlite_path().name == "runs.db" and "devopsim" in str(default_sqlite_path())
    monkeypatch.setenv("DEVOPSIM_DB", str(tmp_path / "env.db"))
    assert resolve_url() == f"sqlite:///{tmp_path / 'env.db'}"
    assert resolve_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"  # --db wins
    assert resolve_url(f"sqlite:///{tmp_path}/y.db") == f"sqlite:///{tmp_path}/y.db"
    assert resolve_url("postgresql://u:secret@h:5433/db") == "postgresql+psycopg://u:secret@h:5433/db"
    assert resolve_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert "secret" not in describe_url("postgresql+psycopg://u:secret@h/db")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://u@h/db", "unsupported database"),
        ("postgresql+psycopg2://u@h/db", "psycopg 3"),
        ("postgresql://u@h", "must name a database"),
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("postgres:u@h/db", "needs '://'"),
        ("://nothing", "cannot read"),
    ],
)
def test_bad_urls_are_config_errors(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        resolve_url(url)
    res = CliRunner().invoke(app, ["runs", "ls", "--db", url])
    assert res.exit_code == 2 and why.split()[0] in res.stderr


def test_unreachable_server_is_an_error_not_a_traceback() -> None:
    res = CliRunner().invoke(app, ["runs", "ls", "--db", "postgresql://nobody@127.0.0.1:1/none"])
    assert res.exit_code == 1 and "cannot open the run store" in res.stderr


def test_run_with_a_bad_db_fails_before_simulating(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", "--env", "development", "--db", "mysql://x/y", "--json"])
    assert res.exit_code == 2 and res.stdout == ""


def test_the_cli_does_not_import_the_database_libraries_to_start() -> None:
    import subprocess
    import sys

    code = (
        "import sys, devopsim.cli; print([m for m in ('sqlalchemy', 'alembic', 'psycopg', 'platformdirs') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
