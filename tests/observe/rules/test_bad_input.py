"""Bad rules: each problem names the file, the line, the field and the value (exit 2 from the CLI)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import devopsim
from devopsim.cli import app
from devopsim.observe.rules import RuleFileError, load_rule_file

DATA = Path(__file__).parent / "data"


def _rules(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rules.yml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(up[5m)\n",
            5,
            "groups[0].rules[0].expr",
            "could not parse expression 'rate(up[5m)'",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: nosuchfn(up)\n",
            5,
            "groups[0].rules[0].expr",
            "unknown function with name 'nosuchfn'",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - record: a-b\n    expr: up\n",
            4,
            "groups[0].rules[0].record",
            "invalid recording rule name: 'a-b'",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 5m\n",
            6,
            "groups[0].rules[0].for",
            "invalid field 'for' in recording rule",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    record: r\n    expr: up\n",
            4,
            "groups[0].rules[0]",
            "only one of 'record' and 'alert' must be set",
        ),
        (
            "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
            4,
            "groups[1].name",
            'groupname: "g" is repeated in the same file',
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5 minutes\n",
            6,
            "groups[0].rules[0].for",
            "not a valid duration string",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    lables: {a: b}\n",
            6,
            "groups[0].rules[0].lables",
            "did you mean 'labels'",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ $labels.x '\n",
            7,
            "groups[0].rules[0].annotations.s",
            "unclosed action",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: {__name__: x}\n",
            6,
            "groups[0].rules[0].labels.__name__",
            "invalid label name",
        ),
        ("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: [up\n", 6, "", "YAML syntax error"),
    ],
)
def test_bad_rule_file(tmp_path: Path, text: str, line: int, path: str, message: str) -> None:
    f = _rules(tmp_path, text)
    with pytest.raises(RuleFileError) as info:
        load_rule_file(f)
    (issue,) = info.value.issues
    assert issue.file == str(f)
    assert issue.line == line
    assert issue.path == path
    assert message in issue.message


def test_all_problems_reported_together(tmp_path: Path) -> None:
    f = _rules(
        tmp_path,
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(up[5m)\n  - record: r\n    expr: sum(\n",
    )
    with pytest.raises(RuleFileError) as info:
        load_rule_file(f)
    assert [i.line for i in info.value.issues] == [5, 7]


def _scenario(tmp_path: Path, rules: str, extra: str = "") -> Path:
    base = (DATA / "outage.yaml").read_text(encoding="utf-8")
    head = base.split("monitoring:")[0]
    p = tmp_path / "sc.yaml"
    p.write_text(
        head + "monitoring:\n  rules:\n    groups:\n      - name: g\n        rules:\n" + rules + extra,
        encoding="utf-8",
    )
    return p


def test_unknown_metric_is_an_error_with_location(tmp_path: Path) -> None:
    sc = _scenario(tmp_path, "          - alert: A\n            expr: rate(http_request_total[5m]) > 0\n")
    with pytest.raises(RuleFileError) as info:
        devopsim.simulate(sc)
    (issue,) = info.value.issues
    assert issue.file == str(sc)
    assert issue.path == "monitoring.rules.groups[0].rules[0].expr"
    assert "'http_request_total'" in issue.message and "did you mean 'http_requests_total'" in issue.message
    assert (
        issue.line
        == sc.read_text().splitlines().index("            expr: rate(http_request_total[5m]) > 0") + 1
    )


def test_cli_exit_2_on_bad_inline_rule(tmp_path: Path) -> None:
    sc = _scenario(
        tmp_path, "          - alert: A\n            expr: sum(rate(http_requests_total[5m]) > 0\n"
    )
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(sc), "--out", str(out)])
    assert res.exit_code == 2
    assert re.search(
        r"sc\.yaml:\d+: monitoring\.rules\.groups\[0\]\.rules\[0\]\.expr: could not parse", res.output
    )
    assert not out.exists()


def test_cli_exit_2_on_missing_rule_file(tmp_path: Path) -> None:
    sc = _scenario(tmp_path, "          - alert: A\n            expr: up\n", "  ruleFiles: [nope.yml]\n")
    res = CliRunner().invoke(app, ["run", str(sc)])
    assert res.exit_code == 2
    assert "nope.yml: no such rule file" in res.output


def test_validate_reports_bad_rules_without_running(tmp_path: Path) -> None:
    sc = _scenario(
        tmp_path,
        "          - alert: A\n            expr: nosuchfn(up)\n"
        "          - record: bad-name\n            expr: up\n",
    )
    res = CliRunner().invoke(app, ["validate", str(sc)])
    assert res.exit_code == 2
    lines = sc.read_text().splitlines()
    expr_line = lines.index("            expr: nosuchfn(up)") + 1
    rec_line = lines.index("          - record: bad-name") + 1
    assert f"sc.yaml:{expr_line}: monitoring.rules.groups[0].rules[0].expr:" in res.output
    assert "unknown function with name 'nosuchfn'" in res.output
    assert (
        f"sc.yaml:{rec_line}: monitoring.rules.groups[0].rules[1].record: invalid recording rule name"
        in res.output
    )
