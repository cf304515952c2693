"""``devopsim runs ...`` and ``devopsim store ...``: list, show, remove, export, compare; back up.

Every command takes ``--db URL`` (before or after the subcommand); without it
the store is ``$DEVOPSIM_DB`` or SQLite in the per-user data folder. Runs are
named by id, a unique id prefix, ``latest`` or ``latest~N``. Only Typer and
Rich are imported here; the database libraries load when a command runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from devopsim.store.runstore import RunStore

__all__ = ["runs_app", "store_app"]

err = Console(stderr=True, highlight=False)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The run store: a database URL (sqlite:///FILE, postgresql://USER@HOST/DB) or a SQLite "
        "file. Default: $DEVOPSIM_DB, else runs.db in the user data folder.",
        show_default=False,
    ),
]
RunArg = Annotated[
    str, typer.Argument(help="A run id or unique prefix, latest or latest~N.", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]

runs_app = typer.Typer(help="List, show, compare, export and remove recorded runs.", no_args_is_help=True)
store_app = typer.Typer(help="Back up, restore and inspect the run store.", no_args_is_help=True)


def _group(ctx: typer.Context, db: DbOpt = None) -> None:
    ctx.obj = {"db": db}


runs_app.callback()(_group)
store_app.callback()(_group)


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 140))
    return console


@contextmanager
def _opened(ctx: typer.Context, db: str | None) -> Iterator[RunStore]:
    """Open the store, turning devopsim errors into a message and exit status (2: bad input)."""
    from devopsim.errors import ConfigError, DevopsimError

    url = db or (ctx.obj or {}).get("db")
    try:
        from devopsim.store.runstore import RunStore

        with RunStore(url) as store:
            yield store
    except ConfigError as exc:
        for issue in exc.issues:
            err.print(f"[bold red]error[/] {issue}", soft_wrap=True)
        raise typer.Exit(2) from None
    except DevopsimError as exc:
        err.print(f"[bold red]error[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None


def _iso(x: Any) -> Any:
    return x.isoformat() if hasattr(x, "isoformat") else x


def _info_json(info: Any) -> dict[str, Any]:
    return {k: _iso(v) for k, v in info.__dict__.items()}


@runs_app.command("ls")
def ls(
    ctx: typer.Context,
    db: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most this many (newest first).")] = 20,
    show_all: Annotated[bool, typer.Option("--all", "-a", help="Show every run.")] = False,
    status: Annotated[
        str | None, typer.Option(help="Only runs with this status: running, completed, interrupted, failed.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Only runs of the scenario with this name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List recorded runs, newest first."""
    with _opened(ctx, db) as store:
        if status is not None and status not in ("running", "completed", "interrupted", "failed"):
            err.print(
                f"[bold red]error[/] --status {status!r}: use running, completed, interrupted or failed"
            )
            raise typer.Exit(2)
        infos = store.runs(limit=None if show_all else limit, status=status, name=name)
        if as_json:
            sys.stdout.write(json.dumps([_info_json(i) for i in infos], indent=2) + "\n")
            return
        if not infos:
            err.print(f"no runs in {store.label}")
            return
        from devopsim.store.render import runs_table

        _console().print(runs_table(infos, title=f"runs in {store.label}"))


@runs_app.command("show")
def show(ctx: typer.Context, run: RunArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Show one run: where it came from, its status and its summary."""
    with _opened(ctx, db) as store:
        stored = store.get(run)
        if as_json:
            sys.stdout.write(json.dumps(_info_json(stored), indent=2, ensure_ascii=False) + "\n")
            return
        from devopsim.store.render import render_run

        render_run(stored, store.blob_sizes(stored.id), _console())


@runs_app.command("rm")
def rm(
    ctx: typer.Context,
    runs: Annotated[list[str], typer.Argument(help="Runs to remove (ids or prefixes).", show_default=False)],
    db: DbOpt = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Also remove runs still running.")] = False,
) -> None:
    """Remove runs and everything stored with them."""
    with _opened(ctx, db) as store:
        infos = [store.find(r) for r in runs]
        busy = [i for i in infos if i.status == "running"]
        if busy and not force:
            err.print(
                "[bold red]error[/] still running: " + ", ".join(i.short_id for i in busy) + " (use --force)"
            )
            raise typer.Exit(2)
        n = store.delete(sorted({i.id for i in infos}))
        err.print(f"removed {n} run{'s' if n != 1 else ''}: " + ", ".join(i.short_id for i in infos))


@runs_app.command("export")
def export(
    ctx: typer.Context,
    run: RunArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the results into.")],
    db: DbOpt = None,
) -> None:
    """Write a run out as a results folder: summary.json, metrics.parquet, events.jsonl, scenario.yaml."""
    with _opened(ctx, db) as store:
        from devopsim.store.export import export_run

        files = export_run(store, run, out)
        err.print(f"results in [bold]{out}[/]: " + ", ".join(f.name for f in files))


@runs_app.command("compare")
def compare(ctx: typer.Context, a: RunArg, b: RunArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Compare two runs: their headline figures side by side, with the differences."""
    with _opened(ctx, db) as store:
        ra, rb = store.get(a), store.get(b)
        if as_json:
            from devopsim.store.figures import comparable_figures

            fa, fb = comparable_figures(ra.summary or {}), comparable_figures(rb.summary or {})
            rows = [
                {
                    "figure": n,
                    "a": fa.get(n),
                    "b": fb.get(n),
                    "diff": None if n not in fa or n not in fb else fb[n] - fa[n],
                }
                for n in list(fa) + [n for n in fb if n not in fa]
            ]
            sys.stdout.write(json.dumps({"a": ra.id, "b": rb.id, "figures": rows}, indent=2) + "\n")
            return
        from devopsim.store.render import compare_table

        _console().print(compare_table(ra, rb))


def _store_cmd(fn: Callable[[RunStore], None], ctx: typer.Context, db: str | None) -> None:
    with _opened(ctx, db) as store:
        fn(store)


@store_app.command("backup")
def backup_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Archive to write (.tar, or .tar.gz to compress).")],
    db: DbOpt = None,
) -> None:
    """Back the whole store up to one portable file (tar of JSON lines and parquet)."""

    def go(store: RunStore) -> None:
        from devopsim.store.archive import backup

        n = backup(store, file)
        err.print(f"backed up {n} run{'s' if n != 1 else ''} from {store.label} to [bold]{file}[/]")

    _store_cmd(go, ctx, db)


@store_app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Archive written by `devopsim store backup`.")],
    db: DbOpt = None,
) -> None:
    """Add the runs of a backup to the store (SQLite or PostgreSQL); runs already there are kept."""

    def go(store: RunStore) -> None:
        from devopsim.store.archive import restore

        rep = restore(store, file)
        note = f" ({rep.skipped} already there)" if rep.skipped else ""
        err.print(f"restored {rep.restored} run{'s' if rep.restored != 1 else ''} into {store.label}{note}")

    _store_cmd(go, ctx, db)


@store_app.command("info")
def info_cmd(ctx: typer.Context, db: DbOpt = None) -> None:
    """Where the store is, its schema revision and how many runs it holds."""

    def go(store: RunStore) -> None:
        infos = store.runs()
        counts: dict[str, int] = {}
        for i in infos:
            counts[i.status] = counts.get(i.status, 0) + 1
        typer.echo(f"store     {store.label}")
        typer.echo(f"schema    {store.revision()}")
        typer.echo(
            f"runs      {len(infos)}"
            + (f" ({', '.join(f'{v} {k}' for k, v in counts.items())})" if counts else "")
        )

    _store_cmd(go, ctx, db)
