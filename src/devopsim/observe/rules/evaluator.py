"""Evaluate rule groups in simulated time, with Prometheus' alert life cycle.

One evaluation of a group at time ``ts`` runs its rules in order (so a rule
reads what an earlier one recorded at the same ``ts``):

* a recording rule writes its result into the store as series ``record``
  (labels: the result's, then the group's and the rule's labels);
* an alerting rule follows ``rules/alerting.go``: a new label set becomes
  *pending* with ``ActiveAt = ts``; it *fires* in the evaluation where
  ``ts - ActiveAt >= for``; a pending alert whose label set is gone is
  dropped; a firing one is *resolved* (``ResolvedAt = ts``) unless
  ``keep_firing_for`` holds it (counted from the first evaluation without
  it, reset when it comes back). Resolved alerts are remembered 15 minutes.
  Alert labels are the result's labels without ``__name__``, plus the
  rule's labels (templates, an empty value removes a label) and
  ``alertname``. ``ALERTS{alertstate=...} 1`` and ``ALERTS_FOR_STATE``
  (value ``ActiveAt``) are written for every pending and firing alert.
* alerts that need sending are collected like Prometheus' notifier does:
  firing alerts at once and then every ``resend_delay`` (1m), a resolved one
  at once; ``endsAt`` is ``ResolvedAt`` or ``ts + 4 * max(interval, resend_delay)``.

A group's ``limit`` drops all of a rule's results (and alerts) in an
evaluation that exceeds it, as Prometheus does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devopsim.errors import ConfigError
from devopsim.observe.rules.files import GroupDef, RuleDef
from devopsim.observe.rules.template import Template, expand_or_error
from devopsim.observe.store import MetricStore

__all__ = ["RESEND_DELAY", "RESOLVED_RETENTION", "Alert", "AlertingRule", "GroupEvaluator", "RuleEvent"]

RESOLVED_RETENTION = 15 * 60.0
RESEND_DELAY = 60.0

QueryFn = Callable[[str, float], Any]  # (expr, t) -> list of (labels, value) or a float


@dataclass
class Alert:
    """One alert instance (one label set of one alerting rule)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    active_at: float
    value: float
    state: str = "pending"  # pending | firing | inactive
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    value_at_firing: float | None = None
    last_sent_at: float | None = None
    valid_until: float = 0.0

    def needs_sending(self, ts: float, resend_delay: float) -> bool:
        """Whether Prometheus would send this alert to Alertmanager at ``ts``."""
        if self.state == "pending":
            return False
        if self.resolved_at is not None and (
            self.last_sent_at is None or self.resolved_at > self.last_sent_at
        ):
            return True
        return self.last_sent_at is None or self.last_sent_at + resend_delay < ts


@dataclass(frozen=True)
class RuleEvent:
    """Something a rule evaluation did: ``kind`` is ``pending``, ``firing``, ``resolved``,
    ``inactive`` (a pending alert dropped) or ``error``."""

    kind: str
    t: float
    rule: str
    group: str
    labels: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    alert: Alert | None = None
    message: str = ""


def _samples(result: Any) -> list[tuple[dict[str, str], float]]:
    if isinstance(result, int | float):
        return [({}, float(result))]
    return [(dict(s[0]), float(s[1])) for s in result]


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class AlertingRule:
    """The state of one alerting rule across evaluations."""

    def __init__(
        self,
        rule: RuleDef,
        group_labels: dict[str, str] | None = None,
        external_labels: dict[str, str] | None = None,
        external_url: str = "",
    ) -> None:
        self.rule = rule
        self.name = rule.name
        labels = {**(group_labels or {}), **rule.labels}
        self._labels = {k: Template(v) for k, v in labels.items()}
        self._annotations = {k: Template(v) for k, v in rule.annotations.items()}
        self.external_labels = external_labels or {}
        self.external_url = external_url
        self.active: dict[tuple[tuple[str, str], ...], Alert] = {}

    def eval(self, ts: float, result: Any, limit: int = 0) -> list[RuleEvent]:
        """Advance the life cycle with the expression's result at ``ts``; return what changed.

        Raises:
            ValueError: two samples give the same alert label set, or ``limit`` is exceeded
                (Prometheus fails the evaluation; the state is then as described there).
        """
        if not self.active and isinstance(result, list) and not result:
            return []  # nothing pending, firing or remembered, and nothing new
        r = self.rule
        new: dict[tuple[tuple[str, str], ...], Alert] = {}
        for labels, value in _samples(result):

            def expand(t: Template, labels: dict[str, str] = labels, value: float = value) -> str:
                return expand_or_error(t, labels, value, self.external_labels, self.external_url)

            lb = {k: v for k, v in labels.items() if k != "__name__"}
            for k, tpl in self._labels.items():
                v = expand(tpl)
                if v:
                    lb[k] = v
                else:
                    lb.pop(k, None)
            lb["alertname"] = self.name
            ann = {k: expand(tpl) for k, tpl in self._annotations.items()}
            key = _key(lb)
            if key in new:
                raise ValueError("vector contains metrics with the same labelset after applying alert labels")
            new[key] = Alert(labels=lb, annotations=ann, active_at=ts, value=value)
        events: list[RuleEvent] = []
        for key, a in new.items():
            old = self.active.get(key)
            if old is not None and old.state != "inactive":
                old.value = a.value
                old.annotations = a.annotations
                continue
            self.active[key] = a
            events.append(RuleEvent("pending", ts, self.name, "", a.labels, a.value, a))
        n_active = 0
        for key, a in list(self.active.items()):
            if key not in new:
                keep = False
                if a.state == "firing" and r.keep_firing_for_s > 0:
                    if a.keep_firing_since is None:
                        a.keep_firing_since = ts
                    keep = ts - a.keep_firing_since < r.keep_firing_for_s
                if a.state == "pending" or (
                    a.resolved_at is not None and ts - a.resolved_at > RESOLVED_RETENTION
                ):
                    del self.active[key]
                if a.state != "inactive" and not keep:
                    kind = "resolved" if a.state == "firing" else "inactive"
                    a.state = "inactive"
                    a.resolved_at = ts
                    events.append(RuleEvent(kind, ts, self.name, "", a.labels, a.value, a))
                if not keep:
                    continue
            else:
                a.keep_firing_since = None
            n_active += 1
            if a.state == "pending" and ts - a.active_at >= r.for_s:
                a.state = "firing"
                a.fired_at = ts
                a.value_at_firing = a.value
                events.append(RuleEvent("firing", ts, self.name, "", a.labels, a.value, a))
        if limit > 0 and n_active > limit:
            self.active = {}
            raise ValueError(f"exceeded limit of {limit} with {n_active} alerts")
        return events

    def series(self) -> list[tuple[str, dict[str, str], float]]:
        """The ``ALERTS`` and ``ALERTS_FOR_STATE`` samples of the pending and firing alerts."""
        out: list[tuple[str, dict[str, str], float]] = []
        for a in self.active.values():
            if a.state in ("pending", "firing"):
                out.append(("ALERTS", {**a.labels, "alertstate": a.state}, 1.0))
                out.append(("ALERTS_FOR_STATE", dict(a.labels), a.active_at))
        return out

    def to_send(self, ts: float, interval: float, resend_delay: float = RESEND_DELAY) -> list[Alert]:
        """The alerts Prometheus would post to Alertmanager after the evaluation at ``ts``."""
        out = []
        for a in self.active.values():
            if a.needs_sending(ts, resend_delay):
                a.last_sent_at = ts
                a.valid_until = ts + 4 * max(interval, resend_delay)
                out.append(a)
        return out

    def firing(self) -> list[Alert]:
        """The alerts firing now."""
        return [a for a in self.active.values() if a.state == "firing"]


class GroupEvaluator:
    """Evaluates one rule group against a store.

    Args:
        group: the validated group.
        store: where recording rules, ``ALERTS`` and ``ALERTS_FOR_STATE`` are written.
        query: evaluates an expression at a time (an instant query).
        interval: the group's evaluation interval (seconds).
    """

    def __init__(
        self,
        group: GroupDef,
        store: MetricStore,
        query: QueryFn,
        interval: float,
        external_labels: dict[str, str] | None = None,
        external_url: str = "",
    ) -> None:
        self.group = group
        self.store = store
        self.query = query
        self.interval = interval
        self.alerting: dict[int, AlertingRule] = {
            i: AlertingRule(r, group.labels, external_labels, external_url)
            for i, r in enumerate(group.rules)
            if r.kind == "alert"
        }

    def _write(self, ts: float, rows: list[tuple[str, dict[str, str], float]], slot: int | None) -> None:
        if not rows:
            return
        ids = np.array([self.store.series(m, lb) for m, lb, _ in rows], dtype=np.int64)
        self.store.append(ts, ids, np.array([v for _, _, v in rows], dtype=np.float64), slot=slot)

    def _result(self, ts: float, i: int, results: Sequence[Any] | None) -> Any:
        """Rule ``i``'s expression at ``ts``: given, or queried now; a given error is raised."""
        if results is None:
            return self.query(self.group.rules[i].expr, ts - self.group.query_offset)
        out = results[i]
        if isinstance(out, Exception):
            raise out
        return out

    def _record(self, ts: float, rule: RuleDef, result_: Any, slot: int | None) -> None:
        result = _samples(result_)
        labels_add = {**self.group.labels, **rule.labels}
        rows: list[tuple[str, dict[str, str], float]] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        for labels, value in result:
            lb = {k: v for k, v in labels.items() if k != "__name__"}
            for k, v in labels_add.items():
                if v:
                    lb[k] = v
                else:
                    lb.pop(k, None)
            key = _key(lb)
            if key in seen:
                raise ValueError("vector contains metrics with the same labelset after applying rule labels")
            seen.add(key)
            rows.append((rule.name, lb, value))
        if self.group.limit > 0 and len(rows) > self.group.limit:
            raise ValueError(f"exceeded limit {self.group.limit} with {len(rows)} series")
        self._write(ts, rows, slot)

    def quiet(self) -> bool:
        """Whether no alert is pending, firing or remembered: an evaluation whose every result
        is empty then changes nothing (no event, row or post)."""
        return not any(ar.active for ar in self.alerting.values())

    def eval(
        self, ts: float, results: Sequence[Any] | None = None, slot: int | None = None
    ) -> tuple[list[RuleEvent], list[Alert]]:
        """Evaluate every rule at ``ts``; return the events and the alerts to send.

        ``results`` holds each rule's expression result at ``ts - query_offset`` (or the error
        its query raised) when computed beforehand; else each rule queries when its turn comes.
        ``slot`` places the rows written in the store's append order (``MetricStore.reserve``).
        """
        events: list[RuleEvent] = []
        send: list[Alert] = []
        g = self.group
        for i, rule in enumerate(g.rules):
            try:
                if rule.kind == "record":
                    self._record(ts, rule, self._result(ts, i, results), slot)
                    continue
                ar = self.alerting[i]
                result = self._result(ts, i, results)
                for ev in ar.eval(ts, result, g.limit):
                    events.append(RuleEvent(ev.kind, ev.t, ev.rule, g.name, ev.labels, ev.value, ev.alert))
                self._write(ts, ar.series(), slot)
                send += ar.to_send(ts, self.interval)
            except (ValueError, ConfigError) as exc:  # a failed query or a broken invariant
                events.append(RuleEvent("error", ts, rule.name, g.name, message=str(exc)))
        return events, send
