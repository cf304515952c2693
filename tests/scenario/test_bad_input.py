"""Malformed scenarios: exit status 2, a message with file, line and field path, no traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devopsim.cli import app

GOOD = textwrap.dedent("""\
    name: shop
    duration: 10m
    traffic:
      rate: 50/s
      classes:
        - {name: browse, entry: front.home}
    services:
      front:
        replicas: 2
        concurrency: 8
        endpoints:
          home:
            steps:
              - work: exp(2ms)
              - call: catalog.list
      catalog:
        replicas: 2
        endpoints:
          list:
            steps:
              - work: exp(1ms)
    """)


def _mutate(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


# (name, file text, expected line or None, expected field path, expected words)
CASES = [
    (
        "unknown field",
        _mutate("replicas: 2\n    concurrency", "replcas: 2\n    concurrency"),
        9,
        "services.front.replcas",
        "did you mean 'replicas'",
    ),
    ("wrong unit", _mutate("duration: 10m", "duration: 10 minutes"), 2, "duration", "expected a duration"),
    (
        "call to a missing endpoint",
        _mutate("call: catalog.list", "call: catalog.lst"),
        15,
        "services.front.endpoints.home.steps[1].call",
        "did you mean 'list'",
    ),
    (
        "call to a missing service",
        _mutate("call: catalog.list", "call: catalogue.list"),
        15,
        "services.front.endpoints.home.steps[1].call",
        "no service 'catalogue'",
    ),
    (
        "call cycle",
        _mutate("          - work: exp(1ms)\n", "          - work: exp(1ms)\n          - call: front.home\n"),
        15,
        "services.front.endpoints.home.steps[1].call",
        "call cycle: catalog.list -> front.home -> catalog.list",
    ),
    ("negative rate", _mutate("rate: 50/s", "rate: -50/s"), 4, "traffic.rate", "negative"),
    (
        "unknown distribution",
        _mutate("work: exp(2ms)", "work: normal(2ms)"),
        14,
        "services.front.endpoints.home.steps[0].work",
        "unknown distribution 'normal'",
    ),
    (
        "bad YAML syntax",
        _mutate("    - {name: browse, entry: front.home}", "    - {name: browse, entry: [front.home}"),
        6,
        "",
        "YAML syntax error",
    ),
    (
        "missing required field",
        GOOD.replace("duration: 10m\n", ""),
        None,
        "duration",
        "required field is missing",
    ),
    (
        "wrong type",
        _mutate("replicas: 2\n    concurrency", "replicas: many\n    concurrency"),
        9,
        "services.front.replicas",
        "expected a whole number",
    ),
    (
        "unknown plane",
        _mutate("duration: 10m", "duration: 10m\nplane: quantum"),
        3,
        "plane",
        "'quantum' is not allowed",
    ),
    (
        "warm-up longer than the run",
        _mutate("duration: 10m", "duration: 10m\nwarmup: 1h"),
        None,
        "",
        "warmup must be shorter than duration",
    ),
    (
        "duplicate key",
        _mutate("replicas: 2\n    concurrency", "replicas: 2\n    replicas: 3\n    concurrency"),
        10,
        "services.front.replicas",
        "duplicate key",
    ),
    (
        "class entering a missing endpoint",
        _mutate("entry: front.home", "entry: front.hme"),
        6,
        "traffic.classes[0].entry",
        "did you mean 'home'",
    ),
    (
        "timeline scaling a missing service",
        GOOD + "timeline:\n  - at: 2m\n    scale: {service: frnt, replicas: 3}\n",
        24,
        "timeline[0].scale.service",
        "did you mean 'front'",
    ),
    (
        "parallel branch that is not a call",
        _mutate("- call: catalog.list", "- parallel:\n              - work: exp(1ms)"),
        15,
        "services.front.endpoints.home.steps[1]",
        "parallel branches are call",
    ),
    (
        "shares that do not add up",
        _mutate(
            "- {name: browse, entry: front.home}",
            "- {name: browse, entry: front.home, share: 0.5}\n    - {name: b2, entry: front.home, share: 0.2}",
        ),
        5,
        "traffic.classes",
        "add up to 100%",
    ),
    (
        "a datastore named like a service",
        GOOD + "datastores:\n  catalog: {kind: postgres, operations: {read: {work: exp(1ms)}}}\n",
        23,
        "datastores.catalog",
        "has the name of a service",
    ),
    (
        "a step with two kinds",
        _mutate("- work: exp(2ms)", "- work: exp(2ms)\n            wait: 1ms"),
        14,
        "services.front.endpoints.home.steps[0]",
        "exactly one of",
    ),
]


@pytest.mark.parametrize(("name", "text", "line", "path", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_scenario(tmp_path: Path, name: str, text: str, line: int | None, path: str, words: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(f), "--out", str(out)])
    assert res.exit_code == 2, res.output
    msg = res.output
    assert "Traceback" not in msg
    assert str(f) in msg
    if line is not None:
        assert f"{f}:{line}:" in msg, msg
    if path:
        assert f" {path}:" in msg, msg
    assert words in msg, msg
    assert not out.exists(), "nothing may be written for bad input"


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.yaml"
    f.write_text("# nothing here\n")
    res = CliRunner().invoke(app, ["validate", str(f)])
    assert res.exit_code == 2
    assert "the file is empty" in res.output and str(f) in res.output


def test_missing_file(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2
    assert "nope.yaml: no such file" in res.output


def test_not_a_mapping(tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n")
    res = CliRunner().invoke(app, ["run", str(f)])
    assert res.exit_code == 2
    assert "a scenario is a mapping" in res.output


def test_bad_override_is_located_at_the_command_line(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text(GOOD)
    res = CliRunner().invoke(app, ["run", str(f), "--set", "services.front.replicas=-1"])
    assert res.exit_code == 2
    assert "<--set>" in res.output and "services.front.replicas" in res.output and ">= 0" in res.output


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    f = tmp_path / "two.yaml"
    f.write_text(
        _mutate("duration: 10m", "duration: soon").replace(
            "replicas: 2\n    concurrency", "replicas: x\n    concurrency"
        )
    )
    res = CliRunner().invoke(app, ["validate", str(f)])
    assert res.exit_code == 2
    assert f"{f}:2:" in res.output and f"{f}:9:" in res.output


def test_timeline_after_the_end_is_a_warning(tmp_path: Path) -> None:
    f = tmp_path / "late.yaml"
    f.write_text(GOOD + "timeline:\n  - at: 2h\n    scale: {service: front, replicas: 3}\n")
    res = CliRunner().invoke(app, ["validate", str(f)])
    assert res.exit_code == 0
    assert (
        f"{f}:23: timeline[0].at: at 2h is after the end of the run (duration 10m): it never happens"
        in res.output
    )


def test_real_console_script_exits_2_without_traceback(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(_mutate("replicas: 2\n    concurrency", "replcas: 2\n    concurrency"))
    exe = Path(sys.executable).parent / "devopsim"
    proc = subprocess.run([str(exe), "run", str(f)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{f}:9: services.front.replcas: unknown field 'replcas' (did you mean 'replicas'?)" in proc.stderr
