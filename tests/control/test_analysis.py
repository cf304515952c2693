"""Argo AnalysisRun semantics (reference/SEMANTICS.md 3.2): one measurement, the metric
assessment, the run's phase and its timing, on a fake clock and fake query results."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

import pytest

from devopsim.control.analysis import AnalysisRun, ExprError, evaluate_condition, measurement_phase
from devopsim.observe.promql import Sample
from devopsim.scenario.controllers import AnalysisMetric, AnalysisTemplate


def _metric(**kw: Any) -> AnalysisMetric:
    kw.setdefault("provider", {"prometheus": {"query": "q"}})
    return AnalysisMetric.model_validate({"name": "m", **kw})


@pytest.mark.parametrize(
    ("success", "failure", "value", "phase"),
    [
        (None, None, [0.5], "Successful"),  # neither set: Successful (the code, not the docs)
        ("result[0] > 1", None, [0.5], "Failed"),  # success only: false is Failed
        ("result[0] > 1", None, [2.0], "Successful"),
        (None, "result[0] > 1", [0.5], "Successful"),  # failure only: false is Successful
        (None, "result[0] > 1", [2.0], "Failed"),
        ("result[0] > 1", "result[0] < 0", [0.5], "Inconclusive"),  # both false
        ("result[0] > 0", "result[0] > 0", [0.5], "Failed"),  # failure checked first
        ("result[0] > 1", None, [], "Error"),  # empty result
        ("result[1] > 1", None, [0.5], "Error"),  # index out of range
        ("result[0] < 0.01", None, [math.nan], "Failed"),  # NaN compares false (Go)
        ("result > 0.9", None, 0.95, "Successful"),  # a scalar result
    ],
)
def test_one_measurement(success: str | None, failure: str | None, value: Any, phase: str) -> None:
    m = _metric(successCondition=success, failureCondition=failure)
    assert measurement_phase(m, value)[0] == phase


def test_expression_language() -> None:
    assert evaluate_condition("result[0] >= 0.95 && result[1] < 2", [0.96, 1.0])
    assert evaluate_condition("not (result[0] > 1) or false", [0.5])
    assert evaluate_condition("isNaN(result[0]) || result[0] > 1", [math.nan])
    assert evaluate_condition("len(result) == 2 and result[-1] == 3", [1.0, 3.0])
    assert evaluate_condition("default(result, 0) * 2 + 1 == 3", 1.0)
    with pytest.raises(ExprError):
        evaluate_condition("result[0] +", [1.0])
    with pytest.raises(ExprError):
        evaluate_condition("result[0]", [1.0])  # not a bool


class _Clock:
    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Callable[[float], None]]] = []
        self.seq = itertools.count()

    def schedule(self, at: float, fn: Callable[[float], None]) -> None:
        heapq.heappush(self.heap, (at, next(self.seq), fn))

    def run(self, until: float) -> None:
        while self.heap and self.heap[0][0] <= until:
            at, _, fn = heapq.heappop(self.heap)
            fn(at)


def _run(metrics: list[dict[str, Any]], values: Callable[[float], Any], until: float = 1000.0) -> AnalysisRun:
    tpl = AnalysisTemplate.model_validate(
        {"metrics": [{"provider": {"prometheus": {"query": "q"}}, **m} for m in metrics]}
    )
    clock = _Clock()
    done: list[float] = []
    run = AnalysisRun(
        "r",
        "step",
        [("t", tpl)],
        {},
        100.0,
        lambda q, t: values(t),
        clock.schedule,
        lambda r, t: done.append(t),
    )
    clock.run(until)
    assert len(done) == (1 if run.finished is not None else 0)
    return run


def _vec(x: float) -> list[Sample]:
    return [Sample({}, x)]


def test_fails_after_failure_limit_plus_one() -> None:
    m = {
        "name": "m",
        "interval": "60s",
        "count": 5,
        "failureLimit": 1,
        "successCondition": "result[0] < 0.01",
    }
    run = _run([m], lambda t: _vec(0.2))
    # Measurements at 100 and 160; the second failure exceeds failureLimit 1.
    assert run.phase == "Failed" and run.finished == 160.0
    assert [x.t for x in run.metrics[0].measurements] == [100.0, 160.0]


def test_succeeds_at_count_and_initial_delay() -> None:
    m = {
        "name": "m",
        "interval": "30s",
        "initialDelay": "15s",
        "count": 3,
        "successCondition": "result[0] < 0.01",
    }
    run = _run([m], lambda t: _vec(0.0))
    assert run.phase == "Successful" and run.finished == 175.0  # 115, 145, 175


def test_errors_retry_after_10s_and_exceed_the_limit() -> None:
    m = {
        "name": "m",
        "interval": "60s",
        "count": 10,
        "consecutiveErrorLimit": 2,
        "successCondition": "result[0] < 1",
    }
    run = _run([m], lambda t: [])
    # Errors at 100, 110, 120: three consecutive errors exceed 2.
    assert run.phase == "Error" and run.finished == 120.0


def test_inconclusive_limit_and_worst_of_metrics() -> None:
    good = {"name": "a", "interval": "10s", "count": 3, "successCondition": "result[0] < 1"}
    unsure = {
        "name": "b",
        "interval": "10s",
        "count": 3,
        "inconclusiveLimit": 1,
        "successCondition": "result[0] < 0",
        "failureCondition": "result[0] > 1",
    }
    run = _run([good, unsure], lambda t: _vec(0.5))
    # b: inconclusive at 100 and 110; the second exceeds inconclusiveLimit 1: the run ends.
    assert run.phase == "Inconclusive" and run.finished == 110.0


def test_unbounded_background_run_is_successful_when_terminated() -> None:
    m = {"name": "m", "interval": "10s", "successCondition": "result[0] < 1", "failureLimit": 2}
    tpl = AnalysisTemplate.model_validate({"metrics": [{"provider": {"prometheus": {"query": "q"}}, **m}]})
    clock = _Clock()
    vals = iter([2.0, 0.5, 0.5, 0.5])
    run = AnalysisRun(
        "r",
        "background",
        [("t", tpl)],
        {},
        0.0,
        lambda q, t: _vec(next(vals)),
        clock.schedule,
        lambda r, t: None,
    )
    clock.run(30.0)  # 0 (fail), 10, 20, 30
    assert run.finished is None and run.metrics[0].failed == 1
    run.terminate(35.0)
    assert run.phase == "Successful"


def test_dry_run_metrics_do_not_decide() -> None:
    bad = {"name": "bad", "successCondition": "result[0] < 0", "dryRun": True}
    ok = {"name": "ok", "successCondition": "result[0] > 0"}
    run = _run([bad, ok], lambda t: _vec(0.5))
    assert run.phase == "Successful" and run.metrics[0].phase == "Failed"


def test_args_are_substituted() -> None:
    tpl = AnalysisTemplate.model_validate(
        {
            "args": [{"name": "svc"}],
            "metrics": [{"name": "m", "provider": {"prometheus": {"query": 'up{service="{{args.svc}}"}'}}}],
        }
    )
    seen: list[str] = []
    clock = _Clock()
    AnalysisRun(
        "r",
        "step",
        [("t", tpl)],
        {"svc": "api"},
        0.0,
        lambda q, t: seen.append(q) or _vec(1),
        clock.schedule,
        lambda r, t: None,
    )
    clock.run(10.0)
    assert seen == ['up{service="api"}']


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("successCondition", "result[0] >=", "unexpected end of expression"),
        ("failureCondition", "foo(result)", "unknown function foo()"),
        ("provider", {"prometheus": {"query": "sum(rate(x[1m])"}}, "provider.prometheus.query"),
    ],
)
def test_bad_templates_are_clear_errors(field: str, value: Any, words: str) -> None:
    from devopsim import simulate
    from devopsim.errors import ScenarioError

    metric: dict[str, Any] = {"name": "m", "provider": {"prometheus": {"query": "vector(1)"}}, field: value}
    sc = {
        "duration": "1m",
        "traffic": {"rate": "10/s", "classes": [{"name": "c", "entry": "api.get"}]},
        "services": {"api": {"endpoints": {"get": {"steps": [{"work": "exp(1ms)"}]}}}},
        "analysisTemplates": {"t": {"metrics": [metric]}},
    }
    with pytest.raises(ScenarioError, match=r"analysisTemplates\.t\.metrics") as e:
        simulate(sc)
    assert words in str(e.value)
