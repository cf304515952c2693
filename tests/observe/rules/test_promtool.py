"""promtool rule-test files: they pass under our evaluator and under the real promtool."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devopsim.cli import app
from devopsim.observe.rules.promtool import expand_values, run_test_file

DATA = Path(__file__).parent / "data"
FILES = sorted(DATA.glob("*_test.yml"))
PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)


def test_expanding_notation_as_documented() -> None:
    # The examples of docs/configuration/unit_testing_rules.md.
    assert expand_values("-2+4x3") == [-2, 2, 6, 10]
    assert expand_values(" 1-2x4") == [1, -1, -3, -5, -7]
    assert expand_values(" 1x4") == [1, 1, 1, 1, 1]
    assert expand_values("1 _x3") == [1, None, None, None]


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_file_passes_here(path: Path) -> None:
    assert run_test_file(path).errors == []


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_file_passes_under_real_promtool(path: Path) -> None:
    if PROMTOOL is None:
        if os.environ.get("DEVOPSIM_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("promtool is required (DEVOPSIM_REQUIRE_PROMETHEUS=1) but not installed")
        pytest.skip("promtool not installed")
    res = subprocess.run([PROMTOOL, "test", "rules", path.name], cwd=DATA, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_wrong_expectation_fails_in_both(tmp_path: Path) -> None:
    text = (DATA / "instance_down_test.yml").read_text().replace("value: 1\n", "value: 2\n")
    (tmp_path / "alerts.yml").write_text((DATA / "alerts.yml").read_text())
    bad = tmp_path / "bad_test.yml"
    bad.write_text(text)
    res = CliRunner().invoke(app, ["rules", "test", str(bad)])
    assert res.exit_code == 1 and "FAILED" in res.output and "job:up:sum" in res.output
    if PROMTOOL is not None:
        real = subprocess.run(
            [PROMTOOL, "test", "rules", bad.name], cwd=tmp_path, capture_output=True, text=True
        )
        assert real.returncode == 1


def test_cli_success_and_bad_rule_file(tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["rules", "test", str(FILES[0])])
    assert ok.exit_code == 0 and "SUCCESS" in ok.output
    (tmp_path / "alerts.yml").write_text(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(up[5m)\n"
    )
    t = tmp_path / "t_test.yml"
    t.write_text("rule_files: [alerts.yml]\ntests: []\n")
    res = CliRunner().invoke(app, ["rules", "test", str(t)])
    assert res.exit_code == 2 and "alerts.yml:5: groups[0].rules[0].expr: could not parse" in res.output
