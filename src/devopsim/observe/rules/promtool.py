"""Run ``promtool test rules`` files against devopsim's rule evaluator.

The file format is Prometheus' (``docs/configuration/unit_testing_rules.md``):
``rule_files``, ``evaluation_interval`` (1m), ``group_eval_order``,
``tests[]`` with ``interval``, ``input_series`` in expanding notation
(``a+bxn``, ``a-bxn``, ``axn``, ``_`` for a missing sample), ``alert_rule_test``
and ``promql_expr_test``. As promtool does, every group is evaluated at
``0, evaluation_interval, ...`` up to the largest ``eval_time``; an alert test
at ``eval_time`` looks at the state after the evaluation at the last tick not
after it and compares the *firing* alerts; expression tests run after all
evaluations. ``stale`` writes a staleness marker (as promtool does); native
histograms are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devopsim.errors import ConfigError, Issue
from devopsim.observe.rules.evaluator import GroupEvaluator
from devopsim.observe.rules.files import GroupDef, expand_rule_paths, load_rule_file, parse_duration_prom
from devopsim.observe.store import STALE_NAN, MetricStore, is_stale
from devopsim.scenario.yamlsrc import parse_yaml_text

__all__ = ["TestResult", "expand_values", "parse_series", "run_test_file"]


def expand_values(text: str) -> list[float | None]:
    """Expand promtool's value notation (``None`` = missing sample, :data:`STALE_NAN` = ``stale``).

    Raises:
        ValueError: malformed notation.
    """
    out: list[float | None] = []
    for tok in str(text).split():
        if tok == "_":
            out.append(None)
            continue
        if tok == "stale":
            out.append(STALE_NAN)
            continue
        if "x" in tok:
            head, n_text = tok.rsplit("x", 1)
            n = int(n_text)
            if head == "_":
                out += [None] * n
                continue
            sign_pos = max(head.rfind("+", 1), head.rfind("-", 1))
            if sign_pos > 0 and head[sign_pos - 1] not in "eE":
                a, b = float(head[:sign_pos]), float(head[sign_pos:])
            else:
                a, b = float(head), 0.0
            out += [a + k * b for k in range(n + 1)]
        else:
            out.append(float(tok))
    return out


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """``metric{label="v",...}`` -> (metric, labels)."""
    import promql_parser

    if str(text).strip() in ("", "{}"):  # a sample with no labels (an aggregate over everything)
        return "", {}
    node = promql_parser.parse(text)
    if not isinstance(node, promql_parser.VectorSelector):
        raise ValueError(f"not a series: {text!r}")
    labels = {m.name: m.value for m in node.matchers.matchers}
    name = node.name or labels.pop("__name__", "")
    labels.pop("__name__", None)
    return name, labels


@dataclass
class TestResult:
    """The outcome of one test file: ``errors`` empty means SUCCESS."""

    file: str
    errors: list[str] = field(default_factory=list)


def _fmt_labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _run_group(
    tg: dict[str, Any], groups: list[GroupDef], order: list[str], eval_interval: float
) -> list[str]:
    from devopsim.observe.promql import Engine

    interval = parse_duration_prom(tg.get("interval")) if tg.get("interval") else eval_interval
    series = []
    stale: list[tuple[str, dict[str, str], float]] = []
    for s in tg.get("input_series") or []:
        name, labels = parse_series(s["series"])
        vals = expand_values(s.get("values", ""))
        marks = [v is not None and bool(is_stale(np.array([v]))[0]) for v in vals]
        series.append(
            (name, labels, [(k * interval, v) for k, v in enumerate(vals) if v is not None and not marks[k]])
        )
        stale += [(name, labels, k * interval) for k, m in enumerate(marks) if m]
    store = MetricStore.from_series(series)
    for name, labels, t in stale:
        store.mark_stale(t, np.array([store.series(name, labels)]))
    engine = Engine(store)
    ext = {str(k): str(v) for k, v in (tg.get("external_labels") or {}).items()}
    url = str(tg.get("external_url") or "")
    ranked = sorted(groups, key=lambda g: order.index(g.name) if g.name in order else -1)
    evs = [GroupEvaluator(g, store, engine.instant, g.interval or interval, ext, url) for g in ranked]
    alert_tests = tg.get("alert_rule_test") or []
    times = [parse_duration_prom(a.get("eval_time", 0)) for a in alert_tests]
    expr_tests = tg.get("promql_expr_test") or []
    tmax = max([*times, *(parse_duration_prom(p.get("eval_time", 0)) for p in expr_tests), 0.0])
    errors: list[str] = []
    ts = 0.0
    while ts <= tmax + 1e-9:
        for ev in evs:
            events, _ = ev.eval(ts)
            errors += [
                f"    rule: {e.rule}, time: {ts:g}s, err: {e.message}" for e in events if e.kind == "error"
            ]
        if errors:
            return errors
        for a, t_a in zip(alert_tests, times, strict=True):
            if not (ts <= t_a < ts + eval_interval):
                continue
            name = a["alertname"]
            got = sorted(
                (_fmt_labels(al.labels), _fmt_labels(al.annotations))
                for ev in evs
                for ar in ev.alerting.values()
                if ar.name == name
                for al in ar.firing()
            )
            exp = sorted(
                (
                    _fmt_labels(
                        {**{k: str(v) for k, v in (x.get("exp_labels") or {}).items()}, "alertname": name}
                    ),
                    _fmt_labels({k: str(v) for k, v in (x.get("exp_annotations") or {}).items()}),
                )
                for x in a.get("exp_alerts") or []
            )
            if got != exp:
                errors.append(
                    f"    alertname: {name}, time: {a['eval_time']}, \n        exp:{exp}, \n        got:{got}"
                )
        ts += eval_interval
    for p in expr_tests:
        t = parse_duration_prom(p.get("eval_time", 0))
        res = engine.instant(str(p["expr"]), t)
        got_s = [({}, float(res))] if isinstance(res, float) else [(s.labels, s.value) for s in res]
        exp_s = []
        for x in p.get("exp_samples") or []:
            name, labels = parse_series(x.get("labels", "{}") or "{}")
            if name:
                labels["__name__"] = name
            exp_s.append((labels, float(x.get("value", 0))))

        def same(a: float, b: float) -> bool:
            return a == b or (math.isnan(a) and math.isnan(b))

        g_sorted = sorted(got_s, key=lambda s: sorted(s[0].items()))
        e_sorted = sorted(exp_s, key=lambda s: sorted(s[0].items()))
        if len(g_sorted) != len(e_sorted) or any(
            g[0] != e[0] or not same(g[1], e[1]) for g, e in zip(g_sorted, e_sorted, strict=False)
        ):
            errors.append(
                f"    expr: {p['expr']!r}, time: {p.get('eval_time')},"
                f"\n        exp: {e_sorted}\n        got: {g_sorted}"
            )
    return errors


def run_test_file(path: str | Path) -> TestResult:
    """Run one promtool rule-test file.

    Raises:
        ConfigError: the test file or a rule file it names is invalid.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Issue(str(path), None, "", f"cannot read: {exc}")]) from None
    src = parse_yaml_text(text, str(path))
    data = src.data if isinstance(src.data, dict) else {}
    allowed = {"rule_files", "evaluation_interval", "group_eval_order", "tests", "fuzzy_compare"}
    bad = [k for k in data if k not in allowed]
    if bad:
        raise ConfigError([src.issue((bad[0],), f"field {bad[0]!r} not found in the test file")])
    groups: list[GroupDef] = []
    for shown, rp in expand_rule_paths([str(r) for r in data.get("rule_files") or []], p.parent):
        groups += load_rule_file(rp, shown)
    eval_interval = parse_duration_prom(data.get("evaluation_interval") or "1m")
    order = [str(g) for g in data.get("group_eval_order") or []]
    result = TestResult(str(path))
    for i, tg in enumerate(data.get("tests") or []):
        try:
            result.errors += _run_group(tg, groups, order, eval_interval)
        except (ValueError, KeyError) as exc:
            raise ConfigError([src.issue(("tests", i), f"invalid test group: {exc}")]) from None
    return result
