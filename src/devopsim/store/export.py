"""Write a stored run out as a results folder (the results contract), all or nothing.

``summary.json``, ``metrics.parquet`` and ``events.jsonl`` come out byte for
byte as ``devopsim run --out`` wrote them; ``scenario.yaml`` is the scenario
as run (the file's own text, or with ``--set`` overrides applied).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from devopsim.errors import ConfigError, Issue
from devopsim.store.runstore import RunStore, StoredRun

__all__ = ["EXPORT_FILES", "export_run", "scenario_as_run"]

EXPORT_FILES = ("summary.json", "metrics.parquet", "events.jsonl", "scenario.yaml")


def scenario_as_run(run: StoredRun) -> str:
    """The scenario text to run again: the original, or the effective document after ``--set``/``--seed``."""
    import yaml

    data = yaml.safe_load(run.scenario)
    seed_changed = isinstance(data, dict) and data.get("seed", 0) != run.seed
    if not run.overrides and not seed_changed:
        return run.scenario
    from devopsim.scenario.loader import apply_overrides
    from devopsim.scenario.yamlsrc import Source

    changes = dict(run.overrides)
    if seed_changed:
        changes["seed"] = run.seed
    src = apply_overrides(Source(file=run.source, data=data), changes)
    head = f"# {run.source} with " + ", ".join(f"{k}={v!r}" for k, v in changes.items())
    return head + "\n" + yaml.safe_dump(src.data, sort_keys=False, allow_unicode=True)


def export_run(store: RunStore, ref: str, out: str | Path) -> list[Path]:
    """Write run ``ref``'s files into ``out`` (created if needed) and return them.

    Raises:
        ConfigError: no such run, or it has no results (it did not complete).
        TelemetryError: the folder cannot be written.
    """
    from devopsim.results.writer import dump_summary, write_folder

    run = store.get(ref)
    metrics = store.metrics_parquet(run.id)
    events = store.events_jsonl(run.id)
    if run.summary is None or metrics is None or events is None:
        raise ConfigError(
            [Issue("run", None, "", f"{run.short_id} is {run.status}: it has no results to export")]
        )
    contents = {
        "summary.json": dump_summary(run.summary).encode(),
        "metrics.parquet": metrics,
        "events.jsonl": events,
        "scenario.yaml": scenario_as_run(run).encode(),
    }
    assert tuple(contents) == EXPORT_FILES
    writers = {name: partial(Path.write_bytes, data=data) for name, data in contents.items()}
    return write_folder(Path(out), writers, what="the run")
