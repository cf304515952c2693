"""Argo Rollouts analysis: AnalysisTemplates run as AnalysisRuns on the twin's own metrics.

An :class:`AnalysisRun` takes measurements of each template metric at
``initialDelay``, then every ``interval`` (an errored measurement is retried
after 10 s), up to its effective ``count``; a ``prometheus`` provider's
``query`` is evaluated by devopsim's PromQL engine on the run's metric store at
the measurement's simulated time (after that instant's scrape). Each value is
judged with ``successCondition`` / ``failureCondition``, written in Argo's
expression language over ``result`` (a scalar, or the list of the vector's
values), exactly as ``utils/evaluate`` does (``reference/SEMANTICS.md`` 3.2):

* only success set: Failed whenever it is false; only failure set: Successful
  whenever it is false; both set: failure checked first, neither true is
  Inconclusive; none set: Successful; an evaluation error or an empty result
  is Error;
* after each measurement: ``failed > failureLimit`` (-1 disables) gives
  Failed, ``inconclusive > inconclusiveLimit`` Inconclusive,
  ``consecutiveErrors > consecutiveErrorLimit`` Error, the consecutive-success
  limit (when > 0) Successful, and the count reached Successful;
* the run's phase is the worst of its metrics (Failed > Error > Inconclusive >
  Running > Successful); a metric that fails ends the run at once; ``dryRun``
  metrics are measured but do not count. A run terminated by its rollout (a
  background analysis when the rollout completes) is Successful unless a limit
  was already exceeded.

Only the ``prometheus`` provider is simulated; a metric with another provider
errs at every measurement (with a message saying so).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from devopsim.scenario.controllers import AnalysisMetric, AnalysisTemplate

__all__ = [
    "ERROR_RETRY",
    "AnalysisRun",
    "ExprError",
    "MetricRun",
    "evaluate_condition",
    "measurement_phase",
    "parse_condition",
]

ERROR_RETRY = 10.0  # seconds before an errored measurement is retried
KEPT = 10  # measurements kept per metric in the report (as Argo keeps)
_ORDER = {"Failed": 0, "Error": 1, "Inconclusive": 2, "Pending": 3, "Running": 4, "Successful": 5}


# --- the expression language (expr-lang, the subset conditions use) ----------------------


class ExprError(Exception):
    """A condition could not be parsed or evaluated."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<str>\"[^\"]*\"|'[^']*')"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|\*\*|[-+*/%<>!()\[\],.]))"
)

Node = tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExprError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    _BINARY: ClassVar[list[tuple[str, ...]]] = [
        ("||", "or"),
        ("&&", "and"),
        ("==", "!="),
        ("<", "<=", ">", ">="),
        ("+", "-"),
        ("*", "/", "%"),
        ("**",),
    ]

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise ExprError("unexpected end of expression" + (f" (expected {want!r})" if want else ""))
        tok = self.toks[self.i]
        if want is not None and tok[1] != want:
            raise ExprError(f"expected {want!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.binary(0)
        if self.i != len(self.toks):
            raise ExprError(f"unexpected {self.toks[self.i][1]!r}")
        return node

    def binary(self, level: int) -> Node:
        if level == len(self._BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in self._BINARY[level] and self.toks[self.i][0] in ("op", "name"):
            op = self.take()[1]
            right = self.binary(level + 1 if op != "**" else level)
            left = ("bin", {"and": "&&", "or": "||"}.get(op, op), left, right)
        return left

    def unary(self) -> Node:
        if self.peek() in ("-", "+", "!", "not"):
            op = self.take()[1]
            return ("un", "!" if op == "not" else op, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while self.peek() in ("[", "."):
            if self.take()[1] == "[":
                idx = self.binary(0)
                self.take("]")
                node = ("index", node, idx)
            else:
                kind, name = self.take()
                if kind != "name":
                    raise ExprError(f"expected a field name after '.', got {name!r}")
                node = ("index", node, ("lit", name))
        return node

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text))
        if kind == "str":
            return ("lit", text[1:-1])
        if text == "(":
            node = self.binary(0)
            self.take(")")
            return node
        if kind == "name":
            if text in ("true", "false"):
                return ("lit", text == "true")
            if text == "nil":
                return ("lit", None)
            if self.peek() == "(":
                self.take("(")
                args: list[Node] = []
                while self.peek() != ")":
                    args.append(self.binary(0))
                    if self.peek() == ",":
                        self.take(",")
                    elif self.peek() != ")":
                        raise ExprError(f"expected ',' or ')' in the arguments of {text}()")
                self.take(")")
                if text not in _FUNCS:
                    raise ExprError(f"unknown function {text}() (known: {', '.join(sorted(_FUNCS))})")
                return ("call", text, args)
            return ("var", text)
        raise ExprError(f"unexpected {text!r}")


def _num(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ExprError(f"expected a number, got {_show(x)}")
    return float(x)


def _show(x: Any) -> str:
    return "nil" if x is None else repr(x)


def _is_inf(x: Any, sign: Any = 0) -> bool:
    v, s = _num(x), _num(sign)
    return math.isinf(v) and (s == 0 or (s > 0) == (v > 0))


_FUNCS: dict[str, Callable[..., Any]] = {
    "isNaN": lambda x: math.isnan(_num(x)),
    "isInf": _is_inf,
    "isNil": lambda x: x is None,
    "len": lambda x: float(len(x)),
    "default": lambda x, d: d if x is None else x,
    "asFloat": lambda x: _num(x),
    "asInt": lambda x: float(math.trunc(_num(x))),
    "abs": lambda x: abs(_num(x)),
    "max": lambda *xs: max(_num(x) for x in xs),
    "min": lambda *xs: min(_num(x) for x in xs),
}


def _eval(node: Node, env: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        if node[1] not in env:
            raise ExprError(f"unknown name {node[1]!r} (conditions see 'result')")
        return env[node[1]]
    if kind == "index":
        base = _eval(node[1], env)
        key = _eval(node[2], env)
        if isinstance(base, list):
            k = _num(key)
            if k != int(k):
                raise ExprError(f"index {k:g} is not an integer")
            i = int(k)
            if not -len(base) <= i < len(base):
                raise ExprError(f"index out of range: {i} with length {len(base)}")
            return base[i]
        raise ExprError(f"cannot index {_show(base)}")
    if kind == "call":
        args = [_eval(a, env) for a in node[2]]
        try:
            return _FUNCS[node[1]](*args)
        except TypeError as e:
            raise ExprError(f"{node[1]}(): {e}") from None
    if kind == "un":
        v = _eval(node[2], env)
        if node[1] == "!":
            if not isinstance(v, bool):
                raise ExprError(f"'!' needs a bool, got {_show(v)}")
            return not v
        return -_num(v) if node[1] == "-" else _num(v)
    op = node[1]
    if op in ("&&", "||"):
        a = _eval(node[2], env)
        if not isinstance(a, bool):
            raise ExprError(f"{op!r} needs bools, got {_show(a)}")
        if (op == "&&" and not a) or (op == "||" and a):
            return a
        b = _eval(node[3], env)
        if not isinstance(b, bool):
            raise ExprError(f"{op!r} needs bools, got {_show(b)}")
        return b
    a, b = _eval(node[2], env), _eval(node[3], env)
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    x, y = _num(a), _num(b)
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    if op == ">=":
        return x >= y
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        return x / y if y != 0 else (math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x))
    if op == "%":
        if y == 0:
            raise ExprError("integer divide by zero")
        return math.fmod(x, y)
    return x**y


def parse_condition(text: str) -> Node:
    """Parse a success/failure condition.

    Raises:
        ExprError: it is not a valid expression of the supported subset.
    """
    return _Parser(text).parse()


def evaluate_condition(condition: str | Node, result: Any) -> bool:
    """Evaluate a condition over ``result`` (Go semantics: comparisons with NaN are false).

    Raises:
        ExprError: the expression errs (an index out of range, a type mismatch) or is not a bool.
    """
    node = parse_condition(condition) if isinstance(condition, str) else condition
    out = _eval(node, {"result": result})
    if not isinstance(out, bool):
        raise ExprError(f"the condition gave {_show(out)}, not a bool")
    return out


def measurement_phase(metric: AnalysisMetric, result: Any) -> tuple[str, str]:
    """Judge one measured value as ``evaluate.EvaluateResult`` does: (phase, message)."""
    if result is None or (isinstance(result, list) and not result):
        return "Error", "the query returned no data"
    try:
        ok = evaluate_condition(metric.success_condition, result) if metric.success_condition else False
        bad = evaluate_condition(metric.failure_condition, result) if metric.failure_condition else False
    except ExprError as e:
        return "Error", str(e)
    if not metric.success_condition and not metric.failure_condition:
        return "Successful", ""
    if metric.success_condition and not metric.failure_condition:
        bad = not ok
    elif metric.failure_condition and not metric.success_condition:
        ok = not bad
    if bad:
        return "Failed", ""
    if not ok:
        return "Inconclusive", ""
    return "Successful", ""


# --- runs -----------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One measurement of a metric."""

    t: float
    phase: str
    value: Any
    message: str = ""


@dataclass
class MetricRun:
    """The state of one metric of a run (``metricResult``)."""

    spec: AnalysisMetric
    query: str | None
    inline: bool
    phase: str = "Pending"
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    consecutive_success: int = 0
    measurements: list[Measurement] = field(default_factory=list)
    message: str = ""

    @property
    def effective_count(self) -> int | None:
        """``count`` if > 0; else 1 without an interval; else unbounded (None)."""
        c = self.spec.count
        if c is not None and c > 0:
            return c
        return 1 if self.spec.interval is None else None

    @property
    def done(self) -> bool:
        """The metric has a final phase."""
        return self.phase in ("Successful", "Failed", "Error", "Inconclusive")

    def record(self, m: Measurement) -> None:
        """Count a measurement and assess the metric (``assessMetricStatus``)."""
        self.measurements.append(m)
        self.count += 1
        if m.phase == "Successful":
            self.successful += 1
            self.consecutive_success += 1
            self.consecutive_error = 0
        elif m.phase == "Failed":
            self.failed += 1
            self.consecutive_success = 0
            self.consecutive_error = 0
        elif m.phase == "Inconclusive":
            self.inconclusive += 1
            self.consecutive_success = 0
            self.consecutive_error = 0
        else:
            self.error += 1
            self.consecutive_error += 1
            self.consecutive_success = 0
        self.phase = self.assess(terminating=False)

    def assess(self, terminating: bool) -> str:
        """The metric's phase after its latest measurement (or when its run is terminated)."""
        s = self.spec
        if s.failure_limit >= 0 and self.failed > s.failure_limit:
            return "Failed"
        if self.inconclusive > s.inconclusive_limit:
            return "Inconclusive"
        if self.consecutive_error > s.consecutive_error_limit:
            return "Error"
        if s.consecutive_success_limit > 0 and self.consecutive_success >= s.consecutive_success_limit:
            return "Successful"
        n = self.effective_count
        if (n is not None and self.count >= n) or terminating:
            if s.consecutive_success_limit > 0:
                return "Inconclusive" if s.failure_limit >= 0 else "Failed"
            return "Successful"
        return "Running"

    def summary(self) -> dict[str, Any]:
        """The metric as the results report it."""

        def val(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            if isinstance(v, list):
                return [val(x) for x in v]
            return v

        return {
            "name": self.spec.name,
            "phase": self.phase,
            "count": self.count,
            "successful": self.successful,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "error": self.error,
            "dry_run": self.spec.dry_run,
            "measurements": [
                {
                    "t": m.t,
                    "phase": m.phase,
                    "value": val(m.value),
                    **({"message": m.message} if m.message else {}),
                }
                for m in self.measurements[-KEPT:]
            ],
            "times": [m.t for m in self.measurements],
            "values": [val(m.value) for m in self.measurements],
        }


def _arg(values: dict[str, str], g: re.Match[str]) -> str:
    return values.get(g.group(1), g.group(0))


Evaluate = Callable[[str, float], Any]
Schedule = Callable[[float, Callable[[float], None]], None]


class AnalysisRun:
    """One AnalysisRun: the metrics of its templates, measured on the clock until a final phase.

    Args:
        name: the run's name (``<service>-<revision>-<kind>``).
        kind: ``background``, ``step``, ``prePromotion`` or ``postPromotion``.
        templates: the templates it instantiates, in order.
        args: the rollout's argument values (``{{args.NAME}}`` in a query).
        started: the simulated start time.
        evaluate: runs a PromQL query at a time (the result: a float or a list of samples).
        schedule: puts a callback on the control clock.
        on_done: called once, with the run and the time, when the run reaches a final phase.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        templates: list[tuple[str, AnalysisTemplate]],
        args: dict[str, str],
        started: float,
        evaluate: Evaluate,
        schedule: Schedule,
        on_done: Callable[[AnalysisRun, float], None],
    ) -> None:
        self.name = name
        self.kind = kind
        self.template_names = [n for n, _ in templates]
        self.started = started
        self.finished: float | None = None
        self.phase = "Running"
        self._evaluate = evaluate
        self._schedule = schedule
        self._on_done = on_done
        self.metrics: list[MetricRun] = []
        for _, tpl in templates:
            defaults = {a.name: a.value for a in tpl.args or [] if a.value is not None}
            values = {**defaults, **args}
            dry = {str(d.get("metricName")) for d in tpl.dry_run or []}
            for m in tpl.metrics:
                if "*" in dry or m.name in dry:
                    m = m.model_copy(update={"dry_run": True})
                query = None
                if m.provider.prometheus is not None:
                    query = re.sub(
                        r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}",
                        partial(_arg, values),
                        m.provider.prometheus.query,
                    )
                self.metrics.append(MetricRun(m, query, inline=kind == "step"))
        for mr in self.metrics:
            if mr.inline and mr.spec.count == 0:
                mr.phase = "Successful"  # an inline step with count 0 takes no measurement
                continue
            mr.phase = "Running"
            delay = mr.spec.initial_delay or 0.0
            self._schedule(started + delay, partial(self._measure, mr))
        self._schedule(started, self._settle)

    def _measure(self, mr: MetricRun, t: float) -> None:
        if self.finished is not None or mr.done:
            return
        if mr.query is None:
            m = Measurement(t, "Error", None, "only the prometheus provider is simulated")
        else:
            unresolved = re.search(r"\{\{[^}]*\}\}", mr.query)
            if unresolved:
                m = Measurement(t, "Error", None, f"unresolved argument {unresolved.group(0)}")
            else:
                try:
                    raw = self._evaluate(mr.query, t)
                except Exception as e:  # a query error is a measurement error, as in Argo
                    m = Measurement(t, "Error", None, f"query failed: {e}")
                else:
                    value = [float(s.value) for s in raw] if isinstance(raw, list) else raw
                    phase, msg = measurement_phase(mr.spec, value)
                    m = Measurement(t, phase, value, msg)
        mr.record(m)
        if not mr.done:
            wait = ERROR_RETRY if m.phase == "Error" else (mr.spec.interval or 0.0)
            self._schedule(t + wait, partial(self._measure, mr))
        self._settle(t)

    def _settle(self, t: float) -> None:
        counted = [m for m in self.metrics if not m.spec.dry_run]
        worst = min((m.phase for m in counted), key=_ORDER.__getitem__, default="Successful")
        if worst in ("Failed", "Error", "Inconclusive") or all(m.done for m in counted):
            self._finish(worst, t)

    def _finish(self, phase: str, t: float) -> None:
        if self.finished is not None:
            return
        self.phase = phase
        self.finished = t
        for m in self.metrics:
            if not m.done:
                m.phase = m.assess(terminating=True)
        self._on_done(self, t)

    def terminate(self, t: float) -> None:
        """Stop the run (its rollout completed or aborted): Successful unless a limit was exceeded."""
        if self.finished is not None:
            return
        for m in self.metrics:
            if not m.done:
                m.phase = m.assess(terminating=True)
        counted = [m for m in self.metrics if not m.spec.dry_run]
        worst = min((m.phase for m in counted), key=_ORDER.__getitem__, default="Successful")
        self._finish(worst, t)

    def summary(self) -> dict[str, Any]:
        """The run as ``deployments[].analysis_runs[]`` reports it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "templates": self.template_names,
            "phase": self.phase,
            "started_s": self.started,
            "finished_s": self.finished,
            "metrics": [m.summary() for m in self.metrics],
        }
