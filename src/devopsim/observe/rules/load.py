"""The rule groups of a scenario: inline ``monitoring.rules`` plus ``monitoring.ruleFiles``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from devopsim.errors import Issue
from devopsim.observe.rules.files import (
    GroupDef,
    RuleFileError,
    expand_rule_paths,
    load_rule_file,
    parse_rule_groups,
)
from devopsim.scenario.yamlsrc import Source

if TYPE_CHECKING:
    from devopsim.scenario.loader import LoadedScenario

__all__ = ["rule_groups", "rule_issues", "scenario_rule_groups"]


def rule_groups(
    src: Source, rule_files: list[str], base_dir: Path | None
) -> tuple[list[GroupDef], list[Issue]]:
    """The rule groups inline in ``src`` and in ``rule_files``, and every problem found in them.

    Rule files are read relative to ``base_dir`` (the current folder when None);
    globs expand as Prometheus expands them.
    """
    data: Any = src.data if isinstance(src.data, dict) else {}
    mon = data.get("monitoring") or {}
    issues: list[Issue] = []
    groups: list[GroupDef] = []
    if isinstance(mon, dict) and mon.get("rules") is not None:
        try:
            groups += parse_rule_groups(mon["rules"], src, ("monitoring", "rules"), strict=False)
        except RuleFileError as exc:
            issues += exc.issues
    base = base_dir if base_dir is not None else Path.cwd()
    for shown, path in expand_rule_paths(list(rule_files), base):
        try:
            groups += load_rule_file(path, shown)
        except RuleFileError as exc:
            issues += exc.issues
    return groups, issues


def rule_issues(src: Source, rule_files: list[str], base_dir: Path | None) -> list[Issue]:
    """Every problem in a scenario's rules (for scenario validation)."""
    return rule_groups(src, rule_files, base_dir)[1]


def scenario_rule_groups(loaded: LoadedScenario) -> list[GroupDef]:
    """Every rule group of the scenario, validated like Prometheus validates rule files.

    Raises:
        RuleFileError: with every problem found, each naming file, line and field.
    """
    groups, issues = rule_groups(loaded.source, list(loaded.scenario.monitoring.rule_files), loaded.base_dir)
    if issues:
        raise RuleFileError(issues)
    return groups
