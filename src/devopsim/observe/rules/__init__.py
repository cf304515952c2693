"""Prometheus alerting and recording rules, evaluated in simulated time.

* :mod:`~devopsim.observe.rules.files`: read and validate rule files like Prometheus;
* :mod:`~devopsim.observe.rules.template`: the Go-template forms alert labels and annotations use;
* :mod:`~devopsim.observe.rules.evaluator`: group evaluation and the alert life cycle;
* :mod:`~devopsim.observe.rules.loop`: the control loop that runs them during a simulation;
* :mod:`~devopsim.observe.rules.promtool`: ``promtool test rules`` files run against this evaluator.
"""

from devopsim.observe.rules.evaluator import Alert, AlertingRule, GroupEvaluator, RuleEvent
from devopsim.observe.rules.files import GroupDef, RuleDef, RuleFileError, load_rule_file, parse_rule_groups

__all__ = [
    "Alert",
    "AlertingRule",
    "GroupDef",
    "GroupEvaluator",
    "RuleDef",
    "RuleEvent",
    "RuleFileError",
    "load_rule_file",
    "parse_rule_groups",
]
