"""The rules control loop: evaluate the scenario's rule groups during a run.

Each group is evaluated every ``interval`` (the group's, else
``monitoring.evaluationInterval``, whose default is Prometheus' 1m) at
``0, interval, 2*interval, ...`` simulated seconds, right after the scrape
of the same instant (Prometheus staggers groups by a hash of their name;
devopsim aligns them to the start of the run, so times are predictable).

What it adds to the run:

* events ``alert.pending``, ``alert.firing``, ``alert.resolved``,
  ``alert.inactive`` (a pending alert that went away without firing) and
  ``rule.error`` (an evaluation that failed, as Prometheus logs it);
* per notification target (``monitoring.notify``) whose ``match`` selects
  some of the alerts Prometheus would post at that evaluation, an
  ``alert.notify`` event holding the Alertmanager API v2 body that would
  have been POSTed (``/api/v2/alerts``): recorded, never delivered;
* ``summary.alerts[]``: every alert that fired, with ``name``, ``labels``,
  ``annotations``, ``pending_at``, ``firing_at``, ``resolved_at`` (null if
  still firing at the end) and ``value`` (the expression's value when it
  fired); ``summary.rules``: groups, evaluations, failed evaluations and
  notifications recorded per target.

A rule that selects a metric the run never had (no scrape, recording rule
or alert wrote a series of that name) is an error at the end of the run:
a :class:`~devopsim.observe.rules.files.RuleFileError` naming the file,
line and metric, with the closest known names.

Evaluations are computed in batches, not when due (:attr:`RulesLoop.mode`): a due
evaluation only notes its time, where its events go in the log and where its rows go in
the store's append order. The noted ones are computed together when enough have piled up,
before anything reads the log or what they write in the store (a PromQL query of another
loop that may select ``ALERTS`` or a recorded series, the results; and before a new series
is registered: both declare the batch owed, see ``MetricStore.owe`` and ``EventLog.owe``)
and at the end of the run. In a batch, each expression of a group that reads nothing rules
write is evaluated for all of the group's times at once (``Engine.instant_many``); then
every evaluation runs in the order it was due, with the alert life cycle step by step, its
rows written at their places and its events inserted at theirs. A group that reads
``ALERTS``, ``ALERTS_FOR_STATE``, a recorded series or any series by a selector without a
fixed name queries as each evaluation comes, after the earlier ones wrote. So the run's
events, summary and store are those of evaluating every rule when due (``mode =
"instant"``, kept as the reference). Batches are not used where the store may downsample
during the run (a retention, or past half its raw budget): the evaluations then run when due.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple
from urllib.parse import quote_plus

from devopsim.errors import Issue
from devopsim.export.openmetrics import run_start
from devopsim.observe.promql import PromQLError
from devopsim.observe.promql.engine import selected_metrics
from devopsim.observe.rules.evaluator import Alert, GroupEvaluator, RuleEvent
from devopsim.observe.rules.files import GroupDef, RuleFileError, selector_metrics
from devopsim.observe.rules.load import scenario_rule_groups
from devopsim.results.events import EventLog
from devopsim.scenario.base import suggest

if TYPE_CHECKING:
    from devopsim.engine.runner import Simulation
    from devopsim.scenario.infra import Notify, TimelineEntry

__all__ = ["EVAL_PRIORITY", "RulesLoop", "postable_alert"]

EVAL_PRIORITY = 20  # after the scrape of the same instant (priority 10)


def _rfc3339(origin: datetime, t: float) -> str:
    return (origin + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def postable_alert(
    alert: Alert, expr: str, origin: datetime, external_labels: dict[str, str], external_url: str
) -> dict[str, Any]:
    """The Alertmanager API v2 ``postableAlert`` Prometheus sends for ``alert``."""
    labels = {**{k: v for k, v in external_labels.items() if k not in alert.labels}, **alert.labels}
    ends = alert.resolved_at if alert.resolved_at is not None else alert.valid_until
    return {
        "labels": dict(sorted(labels.items())),
        "annotations": dict(sorted(alert.annotations.items())),
        "startsAt": _rfc3339(origin, alert.fired_at if alert.fired_at is not None else alert.active_at),
        "endsAt": _rfc3339(origin, ends),
        "generatorURL": f"{external_url}/graph?g0.expr={quote_plus(expr)}&g0.tab=1",
    }


def _target_name(n: Notify) -> str:
    return f"{n.kind}:{n.to or n.url or ''}".rstrip(":")


Emit = Callable[..., None]  # (t, kind, **fields), as EventLog.emit


class _Due(NamedTuple):
    """An evaluation noted when due: its time, group, place in the log and in the store."""

    t: float
    ev: GroupEvaluator
    mark: int
    slot: int


class _Records:
    """Events of one late evaluation, made as :meth:`EventLog.emit` makes them."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def emit(self, t: float, kind: str, **fields: Any) -> None:
        self.records.append(EventLog.record(t, kind, **fields))


def _written(groups: list[GroupDef]) -> set[str]:
    """The metric names rules write."""
    return {"ALERTS", "ALERTS_FOR_STATE"} | {r.name for g in groups for r in g.rules if r.kind == "record"}


def _reads_rule_output(groups: list[GroupDef], g: GroupDef) -> bool:
    """Whether a rule of ``g`` may read a series some rule writes (or any, by a selector
    without a fixed metric name)."""
    written = _written(groups)
    for r in g.rules:
        try:
            names = selected_metrics(r.expr)
        except PromQLError:  # it fails at every evaluation, reading nothing
            continue
        if names is None or names & written:
            return True
    return False


class RulesLoop:
    """Evaluates the scenario's alerting and recording rules (see the module docstring)."""

    name = "rules"
    #: ``batched``: evaluations computed in batches (the module docstring); ``instant``: each
    #: one when due, rule by rule with instant queries (the reference batches must equal).
    mode: ClassVar[str] = "batched"
    #: a batch is computed when this many evaluations are noted
    max_pending: ClassVar[int] = 240
    #: a group with fewer evaluations in a batch queries as each comes (all at once would cost more)
    min_steps: ClassVar[int] = 2

    def __init__(self) -> None:
        self.groups: list[GroupDef] = []
        self.evaluators: list[GroupEvaluator] = []
        self.episodes: list[dict[str, Any]] = []
        self._open: dict[int, dict[str, Any]] = {}
        self.evaluations = 0
        self.errors = 0
        self.notified: dict[str, dict[str, int]] = {}
        self._defer = False
        self._pending: list[_Due] = []
        self._in_order: set[int] = set()  # evaluators (by id) that query as each evaluation comes
        self._written: frozenset[str] = frozenset()  # the metric names rules write
        self._next: dict[int, Callable[[float], None]] = {}  # each evaluator's clock action
        self._flushing = False

    def attach(self, sim: Simulation) -> None:
        """Load the rules and schedule each group's first evaluation at t = 0."""
        from devopsim.observe.promql import Engine

        sc = sim.scenario
        mon = sc.monitoring
        self.groups = scenario_rule_groups(sim.loaded)
        if not self.groups:
            return
        self.origin = datetime.fromisoformat(run_start(sc.start).replace("Z", "+00:00"))
        self.external_labels = dict(mon.external_labels)
        self.external_url = (mon.external_url or "http://devopsim:9090").rstrip("/")
        self.duration = sc.duration
        self.notify = list(mon.notify)
        for n in self.notify:
            self.notified[_target_name(n)] = {"posts": 0, "alerts": 0}
        # The engine reads only the span each selector needs and tests only new series, so it
        # works on the run's store directly (no sliding copy of it).
        self.engine = Engine(sim.store)
        for g in self.groups:
            ev = GroupEvaluator(
                g,
                sim.store,
                self._query,
                g.interval or mon.evaluation_interval,
                self.external_labels,
                self.external_url,
            )
            self.evaluators.append(ev)
            if _reads_rule_output(self.groups, g):
                self._in_order.add(id(ev))
            self._next[id(ev)] = action = partial(self._eval, sim=sim, ev=ev)
            sim.clock.schedule(0.0, action, priority=EVAL_PRIORITY)
        if self.mode not in ("batched", "instant"):
            raise ValueError(f"RulesLoop.mode must be batched or instant, not {self.mode!r}")
        self._defer = self.mode == "batched" and not sim.store.compaction_near()
        self._settle = partial(self._flush, sim)
        self._written = frozenset(_written(self.groups))

    def _query(self, expr: str, t: float) -> Any:
        return self.engine.instant(expr, t)

    def _eval(self, t: float, *, sim: Simulation, ev: GroupEvaluator) -> None:
        if self._defer and sim.store.compaction_near():
            self._flush(sim)
            self._defer = False
        if self._defer:
            self._pending.append(_Due(t, ev, sim.log.mark(), sim.store.reserve()))
        else:
            self._run(sim, t, ev, None, None, sim.log.emit)
        nxt = t + ev.interval
        if nxt < self.duration:
            sim.clock.schedule(nxt, self._next[id(ev)], priority=EVAL_PRIORITY)
        if not self._pending:
            return
        if len(self._pending) >= self.max_pending:
            self._flush(sim)
            return
        sim.store.owe(self._settle, t, self._written)
        sim.log.owe(self._settle)

    def _run(
        self,
        sim: Simulation,
        t: float,
        ev: GroupEvaluator,
        results: list[Any] | None,
        slot: int | None,
        emit: Emit,
    ) -> None:
        """One evaluation of ``ev`` at ``t``: the rules, their events and notifications."""
        events, send = ev.eval(t, results, slot)
        self.evaluations += 1
        for e in events:
            self._record(emit, e)
        if send and self.notify:
            self._post(emit, t, ev, send)

    def _flush(self, sim: Simulation) -> None:
        """Compute the noted evaluations (see the module docstring)."""
        if self._flushing or not self._pending:
            return
        self._flushing = True
        try:
            sim.store.settle()  # the other debt is this one: clear it
            sim.log.settle()
            due, self._pending = self._pending, []
            times: dict[int, list[float]] = {}
            for d in due:
                times.setdefault(id(d.ev), []).append(d.t)
            # evaluator -> each rule's result per step, and whether every result of a step is empty
            given: dict[int, tuple[list[list[Any]], list[bool]]] = {}
            for ev in self.evaluators:
                ts = times.get(id(ev))
                if ts is None or len(ts) < self.min_steps or id(ev) in self._in_order:
                    continue
                at = [t - ev.group.query_offset for t in ts]
                per_rule = [self.engine.instant_many(r.expr, at) for r in ev.group.rules]
                empty = [True] * len(at)
                for res in per_rule:
                    for k, r in enumerate(res):
                        if r.__class__ is not list or r:
                            empty[k] = False
                given[id(ev)] = (per_rule, empty)
            step: dict[int, int] = {}
            chunks: list[tuple[int, list[dict[str, Any]]]] = []
            for d in due:
                results = None
                got = given.get(id(d.ev))
                if got is not None:
                    k = step.get(id(d.ev), 0)
                    step[id(d.ev)] = k + 1
                    if got[1][k] and d.ev.quiet():  # nothing to record, write or send
                        self.evaluations += 1
                        continue
                    results = [res[k] for res in got[0]]
                recs = _Records()
                self._run(sim, d.t, d.ev, results, d.slot, recs.emit)
                if recs.records:
                    chunks.append((d.mark, recs.records))
            sim.log.insert(chunks)
        finally:
            self._flushing = False

    def _record(self, emit: Emit, e: RuleEvent) -> None:
        if e.kind == "error":
            self.errors += 1
            emit(e.t, "rule.error", rule=e.rule, group=e.group, error=e.message)
            return
        a = e.alert
        assert a is not None
        fields: dict[str, Any] = {"alertname": e.rule, "group": e.group, "labels": dict(e.labels)}
        if e.kind == "pending":
            emit(e.t, "alert.pending", **fields, value=e.value)
        elif e.kind == "firing":
            ep = {
                "name": e.rule,
                "group": e.group,
                "labels": dict(sorted(a.labels.items())),
                "annotations": dict(sorted(a.annotations.items())),
                "pending_at": a.active_at,
                "firing_at": e.t,
                "resolved_at": None,
                "value": a.value_at_firing,
            }
            self.episodes.append(ep)
            self._open[id(a)] = ep
            emit(e.t, "alert.firing", **fields, value=e.value, pending_at=a.active_at)
        elif e.kind == "resolved":
            ep2 = self._open.pop(id(a), None)
            if ep2 is not None:
                ep2["resolved_at"] = e.t
            emit(e.t, "alert.resolved", **fields, firing_at=a.fired_at)
        else:
            emit(e.t, "alert.inactive", **fields, pending_at=a.active_at)

    def _post(self, emit: Emit, t: float, ev: GroupEvaluator, send: list[Alert]) -> None:
        exprs = {r.name: r.expr for r in ev.group.rules}
        for n in self.notify:
            chosen = [
                a
                for a in send
                if all(a.labels.get(k) == v for k, v in n.match.items())
                and (n.send_resolved or a.resolved_at is None)
            ]
            if not chosen:
                continue
            body = [
                postable_alert(
                    a, exprs[a.labels["alertname"]], self.origin, self.external_labels, self.external_url
                )
                for a in chosen
            ]
            name = _target_name(n)
            self.notified[name]["posts"] += 1
            self.notified[name]["alerts"] += len(body)
            target: dict[str, Any] = {"kind": n.kind}
            if n.to:
                target["to"] = n.to
            if n.url:
                target["url"] = n.url
            emit(t, "alert.notify", target=target, path="/api/v2/alerts", body=body)

    def _unknown_metrics(self, sim: Simulation) -> list[Issue]:
        known = set(sim.store.metric_names) | {"ALERTS", "ALERTS_FOR_STATE"}
        known |= {r.name for g in self.groups for r in g.rules if r.kind == "record"}
        issues = []
        for g in self.groups:
            for r in g.rules:
                for m in sorted(selector_metrics(r.expr) - known):
                    hint = suggest(m, sorted(known))
                    tail = f" (did you mean {hint!r}?)" if hint else ""
                    issues.append(
                        r.issue(
                            "expr",
                            f"rule {r.name!r} selects {m!r}, but the run has no series of that name{tail}; "
                            "the twin emits: "
                            + ", ".join(sorted(known - {"ALERTS", "ALERTS_FOR_STATE"}))[:400],
                        )
                    )
        return issues

    def handles(self, sim: Simulation, entry: TimelineEntry) -> bool:
        """Acts on no timeline entry."""
        return False

    def finish(self, sim: Simulation, summary: dict[str, Any]) -> None:
        """Add ``alerts`` and ``rules`` to the summary.

        Raises:
            RuleFileError: a rule selects a metric the run never had.
        """
        if not self.groups:
            return
        self._flush(sim)
        issues = self._unknown_metrics(sim)
        if issues:
            raise RuleFileError(issues)
        summary["alerts"] = self.episodes
        summary["rules"] = {
            "groups": [
                {"name": ev.group.name, "interval_s": ev.interval, "rules": len(ev.group.rules)}
                for ev in self.evaluators
            ],
            "evaluations": self.evaluations,
            "failed_evaluations": self.errors,
            "notifications": self.notified,
        }
