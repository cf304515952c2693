"""The rule groups of a scenario: inline ``monitoring.rules`` plus ``monitoring.ruleFiles``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devopsim.errors import Issue
from devopsim.observe.rules.files import (
    GroupDef,
    RuleFileError,
    expand_rule_paths,
    load_rule_file,
    parse_rule_groups,
)
from devopsim.scenario.loader import LoadedScenario

__all__ = ["scenario_rule_groups"]


def scenario_rule_groups(loaded: LoadedScenario) -> list[GroupDef]:
    """Every rule group of the scenario, validated like Prometheus validates rule files.

    Rule files are read relative to the scenario's folder (the current folder
    for a built-in environment); globs expand as Prometheus expands them.

    Raises:
        RuleFileError: with every problem found, each naming file, line and field.
    """
    src = loaded.source
    data: Any = src.data if isinstance(src.data, dict) else {}
    mon = data.get("monitoring") or {}
    issues: list[Issue] = []
    groups: list[GroupDef] = []
    if isinstance(mon, dict) and mon.get("rules") is not None:
        try:
            groups += parse_rule_groups(mon["rules"], src, ("monitoring", "rules"), strict=False)
        except RuleFileError as exc:
            issues += exc.issues
    base: Path | None = loaded.base_dir if loaded.base_dir is not None else Path.cwd()
    for shown, path in expand_rule_paths(list(loaded.scenario.monitoring.rule_files), base):
        try:
            groups += load_rule_file(path, shown)
        except RuleFileError as exc:
            issues += exc.issues
    if issues:
        raise RuleFileError(issues)
    return groups
