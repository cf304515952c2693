"""Bad control-plane input: exit status 2 with the field, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devopsim.cli import app

BASE = """\
name: shop
duration: 10m
traffic:
  rate: 50/s
  classes:
    - {name: c, entry: api.get}
services:
  api:
    replicas: 2
    endpoints:
      get:
        steps:
          - work: exp(2ms)
"""

CASES = [
    (
        "minReplicas above maxReplicas",
        "    autoscaler: {kind: hpa, minReplicas: 5, maxReplicas: 3}\n",
        "services.api.autoscaler",
        "maxReplicas must be >= minReplicas (got 3 < 5)",
    ),
    (
        "maxSurge and maxUnavailable both 0",
        "    strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 0%}}\n",
        "services.api.strategy.rollingUpdate",
        "maxSurge and maxUnavailable cannot both be 0 (got maxSurge=0, maxUnavailable=0%)",
    ),
    (
        "canary weight over 100",
        "    strategy: {type: Canary, canary: {steps: [{setWeight: 120}]}}\n",
        "services.api.strategy.canary.steps[0].setWeight",
        "120",
    ),
    (
        "unknown analysis template",
        "    strategy: {type: Canary, canary: {steps: [{analysis: {templates: [{templateName: err}]}}]}}\n",
        "services.api.strategy.canary.steps[0].analysis",
        "no analysis template 'err'",
    ),
    (
        "bad HPA target quantity",
        "    autoscaler: {kind: hpa, maxReplicas: 3, metrics: [{type: Pods, pods: {metric: {name: rps},"
        " target: {type: AverageValue, averageValue: lots}}}]}\n",
        "services.api.autoscaler",
        "expected a quantity like 500m",
    ),
]


@pytest.mark.parametrize(("name", "extra", "path", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_control_input(tmp_path: Path, name: str, extra: str, path: str, words: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BASE + extra)
    res = CliRunner().invoke(app, ["validate", str(f)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert path in res.output, res.output
    assert words in res.output, res.output
