"""Load a scenario: YAML -> overrides -> schema -> cross-references -> warnings.

Every problem becomes an :class:`~devopsim.errors.Issue` naming the file, the
line, the field path, the value and what is allowed; all problems found are
reported together in one :class:`~devopsim.errors.ScenarioError`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from devopsim.errors import Issue, ScenarioError
from devopsim.scenario.checks import Checker
from devopsim.scenario.schema import Scenario
from devopsim.scenario.support import Unsupported, unsupported_features
from devopsim.scenario.yamlsrc import PathKey, Source, dotted, load_yaml, parse_yaml_text

__all__ = ["ENVIRONMENTS", "LoadedScenario", "apply_overrides", "load_scenario", "preset_text"]

ENVIRONMENTS = ("production", "development", "experimental")


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from and what it cannot simulate yet."""

    scenario: Scenario
    source: Source
    unsupported: list[Unsupported] = field(default_factory=list)
    base_dir: Path | None = None
    warnings: list[Issue] = field(default_factory=list)


def preset_text(env: str) -> str:
    """The YAML text of a built-in environment preset.

    Raises:
        ScenarioError: no such environment.
    """
    if env not in ENVIRONMENTS:
        raise ScenarioError(
            [Issue("--env", None, "", f"unknown environment {env!r}; allowed: {', '.join(ENVIRONMENTS)}")]
        )
    return (resources.files("devopsim.scenario") / "presets" / f"{env}.yaml").read_text("utf-8")


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    text = path.strip()
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        m = _SEGMENT.match(text, pos)
        if not m:
            raise ValueError(f"cannot read the path {path!r}")
        if m.group(2) is not None:
            parts.append(int(m.group(2)))
        else:
            seg = m.group(1)
            parts.append(int(seg) if seg.isdigit() else seg)
        pos = m.end()
    if not parts:
        raise ValueError("empty path")
    return parts


def _mark(value: Any, path: PathKey, marks: set[PathKey]) -> None:
    marks.add(path)
    if isinstance(value, dict):
        for k, v in value.items():
            _mark(v, (*path, k), marks)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _mark(v, (*path, i), marks)


def apply_overrides(src: Source, overrides: list[str] | dict[str, Any] | None) -> Source:
    """Apply ``path=value`` overrides (``--set``) to a parsed document.

    Values are read as YAML, so ``replicas=4`` is a number and
    ``rate=diurnal(min=1/s, max=2/s)`` a string. Missing mappings on the path
    are created; list items are addressed as ``classes[0]`` or ``classes.0``.

    Raises:
        ScenarioError: an override is malformed or its path cannot be followed.
    """
    if not overrides:
        return src
    items: list[tuple[str, Any]] = []
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        for text in overrides:
            if "=" not in text:
                raise ScenarioError([Issue("<--set>", None, "", f"expected PATH=VALUE (got {text!r})")])
            path, raw = text.split("=", 1)
            try:
                value = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                value = raw
            items.append((path, value))
    data = copy.deepcopy(src.data) if src.data is not None else {}
    if not isinstance(data, dict):
        raise ScenarioError([Issue(src.file, 1, "", "a scenario is a mapping of sections")])
    marks = set(src.overridden)
    for path, value in items:
        try:
            parts = _split_path(path)
        except ValueError as exc:
            raise ScenarioError([Issue("<--set>", None, path, str(exc))]) from None
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(node, dict):
                if part not in node or node[part] is None:
                    node[part] = [] if isinstance(nxt, int) else {}
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                raise ScenarioError(
                    [
                        Issue(
                            "<--set>",
                            None,
                            dotted(tuple(parts[: i + 1])),
                            f"cannot follow {path!r}: no item {part!r} here",
                        )
                    ]
                )
        last = parts[-1]
        if isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list) and isinstance(last, int) and last <= len(node):
            if last == len(node):
                node.append(value)
            else:
                node[last] = value
        else:
            raise ScenarioError([Issue("<--set>", None, path, f"cannot set {path!r}: no such item")])
        _mark(value, tuple(parts), marks)
    return Source(file=src.file, data=data, lines=src.lines, overridden=marks)


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """Map a pydantic error location onto the document, skipping union tags."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            out.append(part)
            node = node[part]
    return tuple(out)


def _fmt_input(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"{_fmt_input(value)} is not allowed; expected {ctx.get('expected')}"
    if kind in ("union_tag_invalid",):
        return f"kind {ctx.get('tag')!r} is not allowed; expected {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return f"needs '{ctx.get('discriminator', 'kind').strip(chr(39))}' to say which kind it is"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"expected a whole number (got {_fmt_input(value)})"
    if kind in ("float_parsing", "float_type"):
        return f"expected a number (got {_fmt_input(value)})"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false (got {_fmt_input(value)})"
    if kind in ("string_type",):
        return f"expected text (got {_fmt_input(value)})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping of fields (got {_fmt_input(value)})"
    if kind == "list_type":
        return f"expected a list (got {_fmt_input(value)})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[
            kind
        ]
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound} (got {_fmt_input(value)})"
    if kind in ("too_short", "too_long"):
        return (
            f"{err['msg'].split(',')[0].lower()} (got {_fmt_input(value)})"
            if value is not None
            else err["msg"]
        )
    if kind in ("datetime_parsing", "datetime_type", "datetime_from_date_parsing"):
        return f"expected a date-time like 2026-01-05T00:00:00Z (got {_fmt_input(value)})"
    return f"{err['msg']} (got {_fmt_input(value)})"


def _issues_from(exc: ValidationError, src: Source) -> list[Issue]:
    issues: list[Issue] = []
    for err in exc.errors():
        path = _data_path(src.data, tuple(err["loc"]))
        if err["type"] == "missing" and err["loc"] and isinstance(err["loc"][-1], str):
            path = (*path, err["loc"][-1])
        if err["type"] == "unknown_field":
            ctx = err.get("ctx") or {}
            allowed = ctx.get("allowed", [])
            for item in ctx.get("unknown", []):
                hint = item.get("hint")
                tail = f" (did you mean {hint!r}?)" if hint else f"; allowed here: {', '.join(allowed)}"
                issues.append(src.issue((*path, item["key"]), f"unknown field {item['key']!r}{tail}"))
            continue
        issues.append(src.issue(path, _message(dict(err))))
    # One message per place: pydantic can repeat itself across union members.
    seen: set[tuple[str, int | None, str, str]] = set()
    unique = []
    for i in issues:
        key = (i.file, i.line, i.path, i.message)
        if key not in seen:
            seen.add(key)
            unique.append(i)
    return unique


def validate_source(src: Source, base_dir: Path | None) -> LoadedScenario:
    """Validate a parsed document into a scenario.

    Raises:
        ScenarioError: with every problem found.
    """
    if not isinstance(src.data, dict):
        raise ScenarioError(
            [
                Issue(
                    src.file,
                    1,
                    "",
                    "a scenario is a mapping of sections such as "
                    f"'duration', 'traffic' and 'services' (got {type(src.data).__name__})",
                )
            ]
        )
    try:
        sc = Scenario.model_validate(src.data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ScenarioError(_issues_from(exc, src)) from None
    checker = Checker(sc, src)
    issues = checker.run()
    from devopsim.observe.rules.load import rule_issues  # rules: PromQL, templates, rule files

    issues += rule_issues(src, sc.monitoring.rule_files, base_dir)
    if issues:
        raise ScenarioError(issues)
    return LoadedScenario(
        scenario=sc,
        source=src,
        unsupported=unsupported_features(sc, src),
        base_dir=base_dir,
        warnings=checker.warnings,
    )


def load_scenario(
    path: str | Path | None = None,
    *,
    env: str | None = None,
    text: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> LoadedScenario:
    """Load and validate a scenario from a file, a built-in environment, or YAML text.

    Args:
        path: a scenario file.
        env: a built-in environment (``production``, ``development``, ``experimental``).
        text: YAML text (files it names resolve against the current folder).
        overrides: ``path=value`` strings or a ``{path: value}`` mapping.

    Raises:
        ScenarioError: the scenario is invalid; every problem is listed.
    """
    if sum(x is not None for x in (path, env, text)) != 1:
        raise ValueError("give exactly one of path, env or text")
    base_dir: Path | None
    if path is not None:
        src = load_yaml(path)
        base_dir = Path(path).resolve().parent
    elif env is not None:
        src = parse_yaml_text(preset_text(env), f"<preset {env}>")
        base_dir = None
    else:
        assert text is not None
        src = parse_yaml_text(text, "<text>")
        base_dir = Path.cwd()
    src = apply_overrides(src, overrides)
    return validate_source(src, base_dir)
