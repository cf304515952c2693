"""The ``devopsim`` command.

Heavy libraries (NumPy, pandas, PyArrow, the engine) are imported inside the
commands that need them, so ``devopsim --help`` starts fast. Bad input exits
with status 2 and a message naming file, line and field; nothing is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from devopsim.errors import ConfigError, DevopsimError
from devopsim.store.cli import runs_app, store_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="devopsim",
    help="A fast, faithful digital twin of a microservice platform: play it forward and see "
    "what users would have experienced.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

err = Console(stderr=True, highlight=False)

EnvOpt = Annotated[
    str | None,
    typer.Option("--env", "-e", help="A built-in environment: production, development or experimental."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override a field: PATH=VALUE (repeatable), e.g. services.api.replicas=4."
    ),
]


def _fail(exc: DevopsimError) -> typer.Exit:
    if isinstance(exc, ConfigError):
        for issue in exc.issues:
            err.print(f"[bold red]error[/] {escape(str(issue))}", markup=True, soft_wrap=True)
        n = len(exc.issues)
        if n > 1:
            err.print(f"{n} problems found", style="red")
        return typer.Exit(2)
    err.print(f"[bold red]error[/] {exc}", soft_wrap=True)
    return typer.Exit(1)


def _load(scenario: Path | None, env: str | None, overrides: list[str] | None) -> Any:
    from devopsim.scenario.loader import load_scenario

    if (scenario is None) == (env is None):
        err.print("[bold red]error[/] give a scenario file or --env NAME (one of them)")
        raise typer.Exit(2)
    if scenario is not None:
        return load_scenario(scenario, overrides=overrides)
    return load_scenario(env=env, overrides=overrides)


def _warn_unsupported(loaded: Any, verbose: bool) -> None:
    for w in loaded.warnings:
        err.print(f"[yellow]warning[/] {w}", soft_wrap=True)
    items = loaded.unsupported
    if not items:
        return
    if verbose or len(items) <= 3:
        for u in items:
            err.print(f"[yellow]warning[/] {u}", soft_wrap=True)
    else:
        err.print(
            f"[yellow]warning[/] {len(items)} fields are accepted but not simulated yet "
            "(run with --verbose to list them): " + ", ".join(sorted({u.what for u in items}))[:300],
            soft_wrap=True,
        )


@app.command()
def run(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario file (YAML).", show_default=False)] = None,
    env: EnvOpt = None,
    overrides: SetOpt = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write summary.json, metrics.parquet, events.jsonl and report.html into this folder.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on a terminal).")] = True,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every field not simulated yet.")
    ] = False,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Record the run in this store: a database URL or SQLite file "
            "(default: $DEVOPSIM_DB, else the per-user store).",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Record the run in the run store.")
    ] = True,
) -> None:
    """Simulate a scenario and report what its users experienced."""
    try:
        loaded = _load(scenario, env, overrides)
        _warn_unsupported(loaded, verbose)
        from devopsim.store.recorder import recording

        with recording(loaded, seed, db=db, enabled=store) as rec:
            result = _simulate(loaded, seed, progress and not as_json and err.is_terminal)
            rec.complete(result)
        if out is not None:
            files = result.write(out)
            if not as_json:
                err.print(f"results in [bold]{out}[/]: " + ", ".join(f.name for f in files))
    except DevopsimError as exc:
        raise _fail(exc) from None
    if as_json:
        from devopsim.results.writer import dump_summary

        sys.stdout.write(dump_summary(result.summary))
    else:
        from devopsim.results.render import render_summary

        console = Console(highlight=False)
        if not console.is_terminal:
            console = Console(highlight=False, width=max(console.width, 120))
        render_summary(result.summary, console)
    if rec.run_id is not None:
        err.print(f"recorded as run [bold]{rec.run_id[:8]}[/] (devopsim runs show {rec.run_id[:8]})")


def _simulate(loaded: Any, seed: int | None, show: bool) -> Any:
    from devopsim.api import simulate

    if not show:
        return simulate(loaded, seed=seed)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    cols = (
        TextColumn("[bold]simulating[/]"),
        BarColumn(),
        TextColumn("{task.fields[sim]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*cols, console=err, transient=True) as bar:
        total = loaded.scenario.duration
        task = bar.add_task("run", total=total, sim="")

        def update(done: float, total_s: float) -> None:
            bar.update(task, completed=done, sim=f"{done:,.0f}/{total_s:,.0f} s")

        return simulate(loaded, seed=seed, progress=update)


@app.command()
def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Scenario files to check.", show_default=False)
    ] = None,
    env: EnvOpt = None,
    overrides: SetOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every field not simulated yet.")
    ] = False,
) -> None:
    """Check scenario files without running them."""
    from devopsim.scenario.loader import load_scenario

    targets: list[tuple[str, Any]] = [(str(f), f) for f in files or []]
    if env is not None:
        targets.append((f"--env {env}", None))
    if not targets:
        err.print("[bold red]error[/] give scenario files or --env NAME")
        raise typer.Exit(2)
    failed = 0
    for label, path in targets:
        try:
            loaded = (
                load_scenario(path, overrides=overrides)
                if path is not None
                else load_scenario(env=env, overrides=overrides)
            )
        except ConfigError as exc:
            failed += 1
            for issue in exc.issues:
                err.print(f"[bold red]error[/] {issue}", soft_wrap=True)
            continue
        note = f" ({len(loaded.unsupported)} fields not simulated yet)" if loaded.unsupported else ""
        err.print(f"[green]ok[/] {label}{note}")
        for w in loaded.warnings:
            err.print(f"  [yellow]warning[/] {w}", soft_wrap=True)
        if verbose:
            for u in loaded.unsupported:
                err.print(f"  [yellow]not simulated yet[/] {u}", soft_wrap=True)
    if failed:
        raise typer.Exit(2)


@app.command()
def init(
    env: Annotated[str, typer.Option("--env", "-e", help="production, development or experimental.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a built-in environment out as a starting scenario file."""
    from devopsim.scenario.loader import preset_text

    try:
        text = preset_text(env)
    except ConfigError as exc:
        raise _fail(exc) from None
    if output is None:
        sys.stdout.write(text)
        return
    if output.exists() and not force:
        err.print(f"[bold red]error[/] {output} exists; use --force to overwrite it")
        raise typer.Exit(2)
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output} (the {env} environment)")


@app.command()
def report(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="A results folder (devopsim run --out DIR) or a run id.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML file to write (default: RUN/report.html).")
    ] = None,
) -> None:
    """Render a run as a self-contained HTML report (opens offline)."""
    try:
        from devopsim.report import load_run, render_report, write_html

        run_data = load_run(run_ref)
        target = output if output is not None else _default_report_path(run_ref, "report.html")
        write_html(render_report(run_data), target)
    except DevopsimError as exc:
        raise _fail(exc) from None
    err.print(f"report in [bold]{target}[/]")


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(metavar="RUN_A", help="The baseline run (folder or id).")],
    run_b: Annotated[str, typer.Argument(metavar="RUN_B", help="The run compared with it (folder or id).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "compare.html"
    ),
) -> None:
    """Render two runs side by side: overlaid charts and the differences that matter."""
    try:
        from devopsim.report import load_run, render_comparison, write_html

        write_html(render_comparison(load_run(run_a), load_run(run_b)), output)
    except DevopsimError as exc:
        raise _fail(exc) from None
    err.print(f"comparison in [bold]{output}[/]")


def _default_report_path(run_ref: str, name: str) -> Path:
    folder = Path(run_ref)
    return folder / name if folder.is_dir() else Path(f"{folder.name}-{name}")


export_app = typer.Typer(help="Export a stored run (OpenMetrics for Prometheus, a Grafana dashboard).")
app.add_typer(export_app, name="export")
RunArg = Annotated[str, typer.Argument(help="A results folder written by `devopsim run --out DIR`.")]
OutOpt = Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")]
StartOpt = Annotated[
    str | None,
    typer.Option(
        help="Wall-clock time of simulated t=0: Unix seconds or ISO 8601 (default 2026-01-01T00:00:00Z)."
    ),
]


def _write_out(output: Path | None, write: Any) -> None:
    if output is None:
        write(sys.stdout)
        return
    tmp = output.with_name(output.name + ".part")
    with tmp.open("w", encoding="utf-8") as f:
        write(f)
    tmp.replace(output)
    err.print(f"wrote {output}")


@export_app.command("openmetrics")
def export_openmetrics(run: RunArg, output: OutOpt = None, start: StartOpt = None) -> None:
    """Write the run's metrics as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`."""
    from devopsim.export.openmetrics import parse_start, write_openmetrics
    from devopsim.export.run_ref import load_store, resolve_run, run_origin

    try:
        path = resolve_run(run)
        origin = parse_start(start) if start is not None else run_origin(path)
        store = load_store(path)
        _write_out(output, lambda f: write_openmetrics(store, f, start=origin))
    except DevopsimError as exc:
        raise _fail(exc) from None


@export_app.command("grafana")
def export_grafana(run: RunArg, output: OutOpt = None, start: StartOpt = None) -> None:
    """Write a Grafana dashboard (JSON) for the run's services: traffic, errors, latency, CPU, replicas."""
    import json

    from devopsim.export.grafana import dashboard
    from devopsim.export.openmetrics import parse_start
    from devopsim.export.run_ref import load_store, resolve_run, run_origin

    try:
        path = resolve_run(run)
        origin = parse_start(start) if start is not None else run_origin(path)
        store = load_store(path)
        t, _, _ = store.columns()
        summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
        title = f"devopsim: {summary.get('scenario', path.name)}"
        duration = float(summary.get("duration_s", float(t.max()) if t.size else 0.0))
        board = dashboard(store, title, origin, duration)
        _write_out(output, lambda f: f.write(json.dumps(board, indent=2) + "\n"))
    except DevopsimError as exc:
        raise _fail(exc) from None


@app.command()
def query(
    run: RunArg,
    expr: Annotated[str, typer.Argument(help="A PromQL expression (see docs/promql.md for the subset).")],
    at: Annotated[
        str | None, typer.Option("--at", help="Simulated time: seconds or a duration (default: end of run).")
    ] = None,
    range_: Annotated[
        str | None, typer.Option("--range", help="START:END:STEP, e.g. 0:1h:1m (seconds or durations).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print Prometheus-API-shaped JSON.")] = False,
) -> None:
    """Evaluate PromQL over a stored run, at one time or over a range."""
    from devopsim.export.query import dumps, parse_range, parse_time, query_json, render_query
    from devopsim.export.run_ref import load_store, resolve_run
    from devopsim.observe.promql import Engine, check

    try:
        if at is not None and range_ is not None:
            raise ConfigError("give --at or --range, not both")
        check(expr)
        store = load_store(resolve_run(run))
        engine = Engine(store)
        if range_ is not None:
            start, end, step = parse_range(range_)
            result: Any = engine.range(expr, start, end, step)
            t = None
        else:
            if at is not None:
                t = parse_time(at, "--at")
            else:
                times, _, _ = store.columns()
                t = float(times.max()) if times.size else 0.0
            result = engine.instant(expr, t)
    except DevopsimError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(dumps(query_json(result, t)))
    else:
        render_query(result, t, Console(highlight=False))


@app.command()
def version() -> None:
    """Print devopsim's version."""
    from devopsim import __version__

    typer.echo(__version__)


app.add_typer(runs_app, name="runs")
app.add_typer(store_app, name="store")


from devopsim.chaos.cli import chaos_app  # noqa: E402 - the sub-app imports only typer and rich

app.add_typer(chaos_app, name="chaos")

rules_app = typer.Typer(help="Prometheus rules: run promtool-format rule unit tests.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("test")
def rules_test(
    files: Annotated[list[Path], typer.Argument(help="promtool test files (YAML).", show_default=False)],
) -> None:
    """Run rule unit-test files like `promtool test rules` (exit 1 if a test fails, 2 on bad input)."""
    from devopsim.observe.rules.promtool import run_test_file

    failed = False
    for f in files:
        typer.echo(f"Unit Testing:  {f}")
        try:
            res = run_test_file(f)
        except ConfigError as exc:
            raise _fail(exc) from None
        if res.errors:
            failed = True
            err.print("  FAILED:", highlight=False)
            for e in res.errors:
                err.print(e, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            typer.echo("  SUCCESS")
        typer.echo()
    if failed:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``devopsim`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
