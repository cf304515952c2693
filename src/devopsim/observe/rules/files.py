"""Prometheus rule files: read, validate like Prometheus, locate every problem.

A rule file is ``groups: [{name, interval, limit, query_offset, labels,
rules: [{alert | record, expr, for, keep_firing_for, labels,
annotations}]}]`` (Prometheus' ``rulefmt``). Rules come inline in a
scenario (``monitoring.rules``) or from files (``monitoring.ruleFiles``,
relative to the scenario, globs allowed as Prometheus allows them). What
Prometheus refuses is refused here, each problem as an
:class:`~devopsim.errors.Issue` naming file, line, field and value:

* unknown fields, a group without a name, a group name repeated in a file;
* a rule with both or neither of ``alert`` and ``record``, an empty ``expr``,
  an expression that does not parse (or uses what the PromQL engine does not
  support);
* ``for``, ``keep_firing_for`` or ``annotations`` on a recording rule, a
  recording rule name that is not a metric name;
* a label name that is not a label name (or is ``__name__``), a template in
  an alerting rule's labels or annotations that does not parse.

Durations in rule files follow Prometheus' grammar (``1h30m``, ``90s``,
``0``); inline rules also take the scenario's duration forms.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devopsim.errors import ConfigError, Issue
from devopsim.observe.rules.template import Template, TemplateError
from devopsim.scenario.base import suggest
from devopsim.scenario.units import parse_duration
from devopsim.scenario.yamlsrc import PathKey, Source, dotted, parse_yaml_text

__all__ = [
    "GroupDef",
    "RuleDef",
    "RuleFileError",
    "check_expr",
    "load_rule_file",
    "parse_duration_prom",
    "parse_rule_groups",
    "selector_metrics",
]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PROM_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_UNIT_SECONDS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)

GROUP_KEYS = ("name", "interval", "limit", "query_offset", "labels", "rules")
RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


class RuleFileError(ConfigError):
    """A rule file (or the inline rules of a scenario) is invalid."""


def parse_duration_prom(value: object) -> float:
    """Seconds in a Prometheus duration (``1h30m``, ``5m``, ``250ms``, ``0``).

    Raises:
        ValueError: not a Prometheus duration.
    """
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a valid duration string: {value!r}")
    if text == "0":
        return 0.0
    m = _PROM_DURATION.fullmatch(text)
    if m is None or not any(m.groups()):
        raise ValueError(f"not a valid duration string: {text!r} (expected e.g. 30s, 5m, 1h30m)")
    return sum(float(g) * u for g, u in zip(m.groups(), _UNIT_SECONDS, strict=True) if g)


def check_expr(expr: str) -> None:
    """Raise ``ValueError`` when ``expr`` is not a PromQL expression the engine evaluates."""
    from devopsim.observe.promql import PromQLError, check

    try:
        check(expr)
    except PromQLError as exc:
        raise ValueError("; ".join(i.message for i in exc.issues)) from None


def selector_metrics(expr: str) -> set[str]:
    """The metric names ``expr`` selects by name (``foo{...}`` or ``{__name__="foo"}``)."""
    import promql_parser

    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__" and str(m.op).endswith("Equal") and "Not" not in str(m.op):
                    names.add(m.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


@dataclass(frozen=True)
class RuleDef:
    """One alerting or recording rule, validated.

    Attributes:
        kind: ``alert`` or ``record``.
        name: the alert name or the recorded metric name.
        expr: the PromQL expression.
        for_s: how long the condition must hold before the alert fires (seconds).
        keep_firing_for_s: how long a firing alert keeps firing once the condition is gone.
        labels: labels added to the alert or the recorded series (templates, for alerts).
        annotations: annotation templates (alerts only).
        source: the document the rule came from (for locating problems found later).
        path: where the rule is in that document.
    """

    kind: str
    name: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    source: Source | None = field(default=None, compare=False, repr=False)
    path: PathKey = ()

    def issue(self, key: str, message: str) -> Issue:
        """An issue located at this rule's field ``key``."""
        if self.source is None:
            return Issue("", None, dotted((*self.path, key)), message)
        return self.source.issue((*self.path, key), message)


@dataclass(frozen=True)
class GroupDef:
    """A rule group: evaluated every ``interval`` seconds (None: the global interval)."""

    name: str
    rules: tuple[RuleDef, ...]
    interval: float | None = None
    limit: int = 0
    query_offset: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    file: str = ""


def _text(value: Any) -> str | None:
    """A YAML scalar as Go's YAML decoder puts it into a string field (None if not a scalar)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


class _Reader:
    def __init__(self, src: Source, prefix: PathKey, strict: bool) -> None:
        self.src = src
        self.prefix = prefix
        self.strict = strict
        self.issues: list[Issue] = []

    def add(self, path: PathKey, message: str) -> None:
        self.issues.append(self.src.issue(path, message))

    def duration(self, value: Any, path: PathKey) -> float | None:
        try:
            return parse_duration_prom(value)
        except ValueError as exc:
            if not self.strict:
                try:
                    return parse_duration(value)
                except ValueError:
                    pass
            self.add(path, str(exc))
            return None

    def unknown(self, data: dict[Any, Any], allowed: tuple[str, ...], path: PathKey, what: str) -> None:
        for key in data:
            if key not in allowed:
                hint = suggest(str(key), list(allowed))
                tail = f" (did you mean {hint!r}?)" if hint else f"; allowed: {', '.join(allowed)}"
                self.add((*path, key), f"field {key!r} not found in {what}{tail}")

    def label_map(self, value: Any, path: PathKey, what: str, templated: bool) -> dict[str, str]:
        out: dict[str, str] = {}
        if value is None:
            return out
        if not isinstance(value, dict):
            self.add(path, f"{what} must be a mapping of names to text (got {value!r})")
            return out
        for k, v in value.items():
            p = (*path, k)
            name = str(k)
            if not _LABEL_NAME.fullmatch(name) or (what == "labels" and name == "__name__"):
                self.add(p, f"invalid {what[:-1]} name: {name!r}")
                continue
            text = _text(v) if v is not None else ""
            if text is None:
                self.add(p, f"the value of {name!r} must be text (got {v!r})")
                continue
            if templated:
                try:
                    Template(text)
                except TemplateError as exc:
                    self.add(p, f"template of {what[:-1]} {name!r} does not parse: {exc} (value {text!r})")
                    continue
            out[name] = text
        return out

    def rule(self, data: Any, path: PathKey) -> RuleDef | None:
        if not isinstance(data, dict):
            self.add(path, f"a rule is a mapping with 'alert' or 'record' and 'expr' (got {data!r})")
            return None
        n0 = len(self.issues)
        self.unknown(data, RULE_KEYS, path, "rule")

        def scalar(key: str) -> str:
            value = data.get(key)
            text = _text(value) if value is not None else ""
            if text is None:
                self.add((*path, key), f"{key!r} must be text (got {value!r})")
                return ""
            return text

        alert_t, record_t = scalar("alert"), scalar("record")
        if alert_t and record_t:
            self.add(path, "only one of 'record' and 'alert' must be set")
        elif not alert_t and not record_t:
            self.add(path, "one of 'record' or 'alert' must be set")
        expr_t = scalar("expr")
        if not expr_t:
            self.add((*path, "expr") if "expr" in data else path, "field 'expr' must be set in rule")
        else:
            try:
                check_expr(expr_t)
            except ValueError as exc:
                self.add((*path, "expr"), f"could not parse expression {expr_t!r}: {exc}")
        for_s = keep_s = 0.0
        for key in ("for", "keep_firing_for"):
            if data.get(key) is not None:
                d = self.duration(data[key], (*path, key))
                if d is not None:
                    if key == "for":
                        for_s = d
                    else:
                        keep_s = d
        if record_t:
            if data.get("annotations"):
                self.add((*path, "annotations"), "invalid field 'annotations' in recording rule")
            if for_s:
                self.add((*path, "for"), "invalid field 'for' in recording rule")
            if keep_s:
                self.add((*path, "keep_firing_for"), "invalid field 'keep_firing_for' in recording rule")
            if not _METRIC_NAME.fullmatch(record_t):
                self.add((*path, "record"), f"invalid recording rule name: {record_t!r}")
        templated = bool(alert_t)
        labels = self.label_map(data.get("labels"), (*path, "labels"), "labels", templated)
        annotations = self.label_map(
            data.get("annotations"), (*path, "annotations"), "annotations", templated
        )
        if len(self.issues) > n0:
            return None
        return RuleDef(
            kind="alert" if alert_t else "record",
            name=alert_t or record_t,
            expr=expr_t,
            for_s=for_s,
            keep_firing_for_s=keep_s,
            labels=labels,
            annotations=annotations,
            source=self.src,
            path=path,
        )

    def groups(self, data: Any) -> list[GroupDef]:
        prefix = self.prefix
        if data is None:
            return []
        if not isinstance(data, dict):
            self.add(prefix, f"a rule file is a mapping with 'groups' (got {data!r})")
            return []
        self.unknown(data, ("groups",), prefix, "rule file")
        groups = data.get("groups")
        if groups is None:
            return []
        if not isinstance(groups, list):
            self.add((*prefix, "groups"), f"'groups' must be a list (got {groups!r})")
            return []
        out: list[GroupDef] = []
        seen: dict[str, int] = {}
        for i, g in enumerate(groups):
            gp: PathKey = (*prefix, "groups", i)
            if not isinstance(g, dict):
                self.add(gp, f"a group is a mapping with 'name' and 'rules' (got {g!r})")
                continue
            n0 = len(self.issues)
            self.unknown(g, GROUP_KEYS, gp, "rule group")
            name = _text(g.get("name")) if g.get("name") is not None else ""
            if not name:
                self.add((*gp, "name") if "name" in g else gp, "group name must not be empty")
            elif name in seen:
                self.add((*gp, "name"), f'groupname: "{name}" is repeated in the same file')
            else:
                seen[name] = i
            interval = None
            if g.get("interval") is not None:
                interval = self.duration(g["interval"], (*gp, "interval"))
                if interval == 0:
                    interval = None
            offset = 0.0
            if g.get("query_offset") is not None:
                offset = self.duration(g["query_offset"], (*gp, "query_offset")) or 0.0
            limit = g.get("limit", 0) or 0
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                self.add((*gp, "limit"), f"limit must be a whole number >= 0 (got {limit!r})")
                limit = 0
            glabels = self.label_map(g.get("labels"), (*gp, "labels"), "labels", False)
            rules_raw = g.get("rules") or []
            rules: list[RuleDef] = []
            if not isinstance(rules_raw, list):
                self.add((*gp, "rules"), f"'rules' must be a list (got {rules_raw!r})")
            else:
                for j, r in enumerate(rules_raw):
                    rd = self.rule(r, (*gp, "rules", j))
                    if rd is not None:
                        rules.append(rd)
            if len(self.issues) == n0:
                out.append(
                    GroupDef(
                        name=name or "",
                        rules=tuple(rules),
                        interval=interval,
                        limit=limit,
                        query_offset=offset,
                        labels=glabels,
                        file=self.src.file,
                    )
                )
        return out


def parse_rule_groups(data: Any, src: Source, prefix: PathKey = (), *, strict: bool = True) -> list[GroupDef]:
    """Validate rule-file data (``{"groups": [...]}``) found at ``prefix`` in ``src``.

    Args:
        data: the parsed rule file (or the inline ``monitoring.rules`` mapping).
        src: the document, for file and line numbers.
        prefix: where ``data`` sits in ``src``.
        strict: durations must follow Prometheus' grammar (rule files); inline rules
            also take the scenario's forms.

    Raises:
        RuleFileError: with every problem found.
    """
    reader = _Reader(src, prefix, strict)
    groups = reader.groups(data)
    if reader.issues:
        raise RuleFileError(reader.issues)
    return groups


def load_rule_file(path: str | Path, display: str | None = None) -> list[GroupDef]:
    """Read and validate one Prometheus rule file.

    Raises:
        RuleFileError: the file is missing, is not YAML, or holds invalid rules.
    """
    p = Path(path)
    name = display or str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuleFileError([Issue(name, None, "", "no such rule file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError([Issue(name, None, "", f"cannot read the rule file: {exc}")]) from None
    if not text.strip() or all(ln.strip().startswith("#") or not ln.strip() for ln in text.splitlines()):
        return []
    try:
        src = parse_yaml_text(text, name)
    except ConfigError as exc:
        raise RuleFileError(exc.issues) from None
    return parse_rule_groups(src.data, src)


def expand_rule_paths(patterns: list[str], base_dir: Path | None) -> list[tuple[str, Path]]:
    """Rule-file paths resolved against ``base_dir`` with globs expanded (``(shown name, path)``).

    A pattern that matches nothing is kept, so loading it says "no such rule file".
    """
    out: list[tuple[str, Path]] = []
    for pat in patterns:
        full = Path(pat) if Path(pat).is_absolute() or base_dir is None else base_dir / pat
        if glob.has_magic(str(full)):
            matches = sorted(glob.glob(str(full)))
            if matches:
                out += [(m, Path(m)) for m in matches]
                continue
        out.append((str(full), full))
    return out
