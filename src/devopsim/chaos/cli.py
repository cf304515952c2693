"""``devopsim chaos``: run a Chaos Toolkit experiment against the twin, and sweep for weak points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from devopsim.errors import ConfigError, DevopsimError

__all__ = ["chaos_app"]

chaos_app = typer.Typer(
    help="Chaos engineering on the twin: Chaos Toolkit experiments and weak-point sweeps.",
    no_args_is_help=True,
)
err = Console(stderr=True, highlight=False)


def _fail(exc: DevopsimError) -> typer.Exit:
    if isinstance(exc, ConfigError):
        for issue in exc.issues:
            err.print(f"[bold red]error[/] {escape(str(issue))}", soft_wrap=True)
        return typer.Exit(2)
    err.print(f"[bold red]error[/] {escape(str(exc))}", soft_wrap=True)
    return typer.Exit(1)


def _progress(show: bool, label: str) -> Any:
    from contextlib import nullcontext

    if not show:
        return nullcontext(None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        TextColumn("{task.fields[what]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@chaos_app.command("run")
def run_cmd(
    experiment: Annotated[Path, typer.Argument(help="Chaos Toolkit experiment (JSON or YAML).")],
    scenario: Annotated[Path, typer.Option("--scenario", "-S", help="The scenario the twin plays.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write journal.json, summary.json and the run's files here."),
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="When in the run the experiment starts (e.g. 17h30m).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a scenario field: PATH=VALUE.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on a terminal).")] = True,
) -> None:
    """Run EXPERIMENT against the twin of SCENARIO and write its Chaos Toolkit journal.

    Exit status: 0 when the steady state held, 1 when the experiment deviated or failed,
    2 on bad input.
    """
    from dataclasses import replace

    from devopsim.chaos.experiment import load_experiment
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.loader import load_scenario
    from devopsim.scenario.units import parse_duration

    try:
        loaded = load_scenario(scenario, overrides=overrides)
        exp = load_experiment(experiment)
        if at is not None:
            exp = replace(exp, at=float(parse_duration(at)))
        with _progress(progress and err.is_terminal, "simulating") as bar:
            cb = None
            if bar is not None:
                task = bar.add_task("run", total=loaded.scenario.duration, what="")

                def cb(done: float, total: float) -> None:
                    bar.update(task, completed=done, what=f"{done:,.0f}/{total:,.0f} s")

            sim = Simulation(loaded, seed=seed, progress=cb)
            sim.chaos_experiments = [exp]  # type: ignore[attr-defined]
            output = sim.run()
    except DevopsimError as exc:
        raise _fail(exc) from None
    loop = next(lp for lp in sim.loops if lp.name == "chaos")
    runs = getattr(loop, "runs", [])
    if not runs:
        err.print("[bold red]error[/] the experiment did not start (does it start after the run ends?)")
        raise typer.Exit(2)
    journal = runs[-1].journal()
    text = json.dumps(journal, indent=2, default=str)
    if out is not None:
        from devopsim.api import Result

        out.mkdir(parents=True, exist_ok=True)
        Result(output.summary, output.log.events, output.store, loaded).write(out, report=False)
        (out / "journal.json").write_text(text + "\n", encoding="utf-8")
        err.print(f"journal in [bold]{out / 'journal.json'}[/]")
    else:
        typer.echo(text)
    verdict = journal["status"] + (" (deviated)" if journal["deviated"] else "")
    before = (journal["steady_states"]["before"] or {}).get("steady_state_met")
    after = (journal["steady_states"]["after"] or {}).get("steady_state_met")
    err.print(
        f"experiment [bold]{escape(exp.title)}[/]: {verdict}; steady state before: {before}, after: {after}"
    )
    if journal["deviated"] or journal["status"] != "completed":
        raise typer.Exit(1)


@chaos_app.command("sweep")
def sweep_cmd(
    scenario: Annotated[Path, typer.Argument(help="The scenario the twin plays.")],
    duration: Annotated[
        str, typer.Option(help="How long each component stays failed (nodes without automatic failover).")
    ] = "5m",
    at: Annotated[
        str | None, typer.Option(help="When to fail (time of day, e.g. 20:00); default: peak traffic.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ranking as JSON.")] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Sweep only these components (repeatable).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on a terminal).")] = True,
) -> None:
    """Fail each component of SCENARIO in turn at the worst time of day; rank them by user impact."""
    from devopsim.chaos.sweep import sweep
    from devopsim.scenario.loader import load_scenario
    from devopsim.scenario.units import parse_duration

    try:
        loaded = load_scenario(scenario)
        with _progress(progress and err.is_terminal and not as_json, "sweeping") as bar:
            cb = None
            if bar is not None:
                task = bar.add_task("sweep", total=1, what="")

                def cb(done: int, total: int, name: str) -> None:
                    bar.update(task, total=total, completed=done, what=name)

            result = sweep(
                loaded,
                repair=float(parse_duration(duration)),
                at=at,
                only=only,
                progress=cb,
            )
    except DevopsimError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    from rich.table import Table

    t = Table(title=f"Single failures of {result['scenario']} at {result['at']} (worst first)")
    cols = ("#", "component", "fault", "failed requests", "extra failed", "SLO minutes lost", "recovered")
    for col in cols:
        t.add_column(col, justify="right" if col not in ("component", "fault", "recovered") else "left")
    for i, row in enumerate(result["ranking"], 1):
        t.add_row(
            str(i),
            row["component"],
            row["fault"],
            f"{row['failed_requests']:,.0f}",
            f"{row['extra_failed_requests']:,.0f}",
            f"{row['slo_minutes_lost']:.1f}",
            (
                f"yes, in {row['time_to_recover_s']:.0f} s"
                if row["recovered"]
                else f"no (still {100 * row['final_error_ratio']:.0f} % failing: metastable)"
            ),
        )
    Console(highlight=False).print(t)
