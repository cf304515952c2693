"""Chaos Toolkit experiments: parsed once, at the edge, into frozen dataclasses.

The format is Chaos Toolkit's, field for field (``title``, ``description``,
``steady-state-hypothesis`` with ``probes`` and their ``tolerance``, ``method``
of actions, probes and ``pauses``, ``rollbacks``, ``runtime`` strategies), plus
devopsim's ``at`` (when in the run the experiment starts). ``configuration``,
``secrets``, ``controls`` and ``extensions`` are accepted and ignored, each with
a note in the journal. Which providers run in the twin is decided here too (see
:mod:`devopsim.chaos.providers`), so a bad experiment fails before any run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devopsim.chaos.providers import check_provider
from devopsim.errors import ExperimentError, Issue, ScenarioError
from devopsim.scenario.units import parse_duration
from devopsim.scenario.yamlsrc import PathKey, Source, dotted, load_yaml

__all__ = [
    "HYPOTHESIS_STRATEGIES",
    "ROLLBACK_STRATEGIES",
    "Activity",
    "Experiment",
    "Hypothesis",
    "load_experiment",
    "parse_experiment",
]

HYPOTHESIS_STRATEGIES = (
    "default",
    "before-method-only",
    "after-method-only",
    "during-method-only",
    "continuous",
    "skip",
)
ROLLBACK_STRATEGIES = ("default", "always", "never", "deviated")
IGNORED = ("configuration", "secrets", "controls", "extensions")
KNOWN = {
    "version",
    "title",
    "description",
    "tags",
    "contributions",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
    "runtime",
    "at",
    *IGNORED,
}


@dataclass(frozen=True)
class Activity:
    """A probe or an action, with its provider and pauses (seconds)."""

    type: str
    name: str
    provider: dict[str, Any]
    tolerance: Any = None
    has_tolerance: bool = False
    pause_before: float = 0.0
    pause_after: float = 0.0
    background: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hypothesis:
    """The steady-state hypothesis: probes that must all be within tolerance."""

    title: str
    probes: tuple[Activity, ...]


@dataclass(frozen=True)
class Experiment:
    """A whole experiment.

    Attributes:
        at: when in the run it starts (seconds), or ``None`` for the default.
        hypothesis_strategy: Chaos Toolkit's ``runtime.hypothesis.strategy``.
        hypothesis_frequency: seconds between checks of the ``continuous`` strategy.
        rollback_strategy: ``runtime.rollbacks.strategy``.
        notes: what was accepted but not used (configuration, secrets, ...).
        raw: the experiment as written (copied into the journal).
    """

    title: str
    description: str
    method: tuple[Activity, ...]
    hypothesis: Hypothesis | None = None
    rollbacks: tuple[Activity, ...] = ()
    at: float | None = None
    hypothesis_strategy: str = "default"
    hypothesis_frequency: float = 60.0
    fail_fast: bool = False
    rollback_strategy: str = "default"
    notes: tuple[str, ...] = ()
    source: str = "<experiment>"
    raw: dict[str, Any] = field(default_factory=dict)


class _Parser:
    def __init__(self, src: Source, base: PathKey) -> None:
        self.src = src
        self.base = base
        self.issues: list[Issue] = []
        self.by_name: dict[str, dict[str, Any]] = {}

    def fail(self, path: PathKey, message: str) -> None:
        full = (*self.base, *path)
        file, line = self.src.where(full)
        self.issues.append(Issue(file, line, dotted(full), message))

    def duration(self, value: Any, path: PathKey) -> float:
        try:
            return float(parse_duration(value))
        except (ValueError, TypeError) as exc:
            self.fail(path, f"expected a duration in seconds or like 30s, 5m (got {value!r}): {exc}")
            return 0.0

    def activity(self, raw: Any, path: PathKey, probe_only: bool = False) -> Activity | None:
        if not isinstance(raw, dict):
            self.fail(path, f"an activity is a mapping with type, name and provider (got {raw!r})")
            return None
        if "ref" in raw and "provider" not in raw:
            ref = raw["ref"]
            if ref not in self.by_name:
                self.fail((*path, "ref"), f"no activity named {ref!r} before this one")
                return None
            raw = {**self.by_name[ref]}
        kind = raw.get("type")
        if kind not in ("action", "probe"):
            self.fail((*path, "type"), f"expected 'action' or 'probe' (got {kind!r})")
            return None
        if probe_only and kind != "probe":
            self.fail((*path, "type"), "the steady-state hypothesis holds probes only")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            self.fail((*path, "name"), "every activity needs a name")
            return None
        prov = raw.get("provider")
        if not isinstance(prov, dict) or "type" not in prov:
            self.fail((*path, "provider"), "expected a provider mapping with a 'type'")
            return None
        problem = check_provider(kind, prov)
        if problem:
            self.fail((*path, "provider"), problem)
        pauses = raw.get("pauses") or {}
        if not isinstance(pauses, dict) or set(pauses) - {"before", "after"}:
            self.fail((*path, "pauses"), "pauses take 'before' and 'after' (durations)")
            pauses = {}
        self.by_name.setdefault(name, raw)
        return Activity(
            type=kind,
            name=name,
            provider=dict(prov),
            tolerance=raw.get("tolerance"),
            has_tolerance="tolerance" in raw,
            pause_before=self.duration(pauses["before"], (*path, "pauses", "before"))
            if "before" in pauses
            else 0.0,
            pause_after=self.duration(pauses["after"], (*path, "pauses", "after"))
            if "after" in pauses
            else 0.0,
            background=bool(raw.get("background", False)),
            raw=dict(raw),
        )


def parse_experiment(data: Any, src: Source | None = None, base: PathKey = ()) -> Experiment:
    """Check and convert one experiment (a mapping, as read from JSON or YAML).

    Args:
        data: the experiment.
        src: where it was read from, for file:line in messages.
        base: its path inside ``src`` (``("chaos", 0)`` for one inline in a scenario).

    Raises:
        ExperimentError: every problem found, each with file, line, field and what is allowed.
    """
    src = src or Source(file="<experiment>", data=data)
    p = _Parser(src, base)
    if not isinstance(data, dict):
        raise ExperimentError([Issue(src.file, None, dotted(base), "an experiment is a mapping")])
    for key in data:
        if key not in KNOWN:
            p.fail((key,), f"unknown field; an experiment has {', '.join(sorted(KNOWN))}")
    title = data.get("title")
    if not isinstance(title, str) or not title:
        p.fail(("title",), "an experiment needs a title")
    if "method" not in data:
        p.fail(("method",), "an experiment needs a method (a list; it may be empty)")
    notes = [
        f"'{k}' is accepted but not used: the twin needs no credentials or settings"
        for k in IGNORED
        if data.get(k)
    ]
    hyp = None
    raw_h = data.get("steady-state-hypothesis")
    if raw_h is not None:
        if not isinstance(raw_h, dict):
            p.fail(("steady-state-hypothesis",), "expected a mapping with title and probes")
        else:
            probes = []
            for i, a in enumerate(raw_h.get("probes") or []):
                act = p.activity(a, ("steady-state-hypothesis", "probes", i), probe_only=True)
                if act is not None:
                    if not act.has_tolerance:
                        p.fail(
                            ("steady-state-hypothesis", "probes", i), "a hypothesis probe needs a tolerance"
                        )
                    probes.append(act)
            hyp = Hypothesis(str(raw_h.get("title", "")), tuple(probes))
    method = []
    raw_m = data.get("method") or []
    if not isinstance(raw_m, list):
        p.fail(("method",), "expected a list of activities")
        raw_m = []
    for i, a in enumerate(raw_m):
        act = p.activity(a, ("method", i))
        if act is not None:
            method.append(act)
    rollbacks = []
    for i, a in enumerate(data.get("rollbacks") or []):
        act = p.activity(a, ("rollbacks", i))
        if act is not None:
            if act.type != "action":
                p.fail(("rollbacks", i, "type"), "rollbacks are actions")
            rollbacks.append(act)
    runtime = data.get("runtime") or {}
    h_rt = runtime.get("hypothesis") or {} if isinstance(runtime, dict) else {}
    r_rt = runtime.get("rollbacks") or {} if isinstance(runtime, dict) else {}
    hs = h_rt.get("strategy", "default")
    if hs not in HYPOTHESIS_STRATEGIES:
        p.fail(
            ("runtime", "hypothesis", "strategy"),
            f"expected one of {', '.join(HYPOTHESIS_STRATEGIES)} (got {hs!r})",
        )
    rs = r_rt.get("strategy", "default")
    if rs not in ROLLBACK_STRATEGIES:
        p.fail(
            ("runtime", "rollbacks", "strategy"),
            f"expected one of {', '.join(ROLLBACK_STRATEGIES)} (got {rs!r})",
        )
    freq = p.duration(h_rt.get("freq", 60), ("runtime", "hypothesis", "freq")) if "freq" in h_rt else 60.0
    at = p.duration(data["at"], ("at",)) if data.get("at") is not None else None
    if p.issues:
        raise ExperimentError(p.issues)
    return Experiment(
        title=str(title),
        description=str(data.get("description") or ""),
        method=tuple(method),
        hypothesis=hyp,
        rollbacks=tuple(rollbacks),
        at=at,
        hypothesis_strategy=hs,
        hypothesis_frequency=max(freq, 1e-3),
        fail_fast=bool(h_rt.get("fail_fast", False)),
        rollback_strategy=rs,
        notes=tuple(notes),
        source=src.file,
        raw=json.loads(json.dumps(data, default=str)),
    )


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment file (JSON or YAML).

    Raises:
        ExperimentError: the file is missing, not JSON/YAML, or not a valid experiment.
    """
    try:
        src = load_yaml(path)
    except ScenarioError as exc:
        raise ExperimentError(exc.issues) from None
    return parse_experiment(src.data, src)
