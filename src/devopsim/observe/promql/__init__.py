"""PromQL over a run's time-series store.

A documented subset of PromQL (see ``docs/promql.md``) evaluated with
Prometheus' semantics: parse with :func:`check`, query with :class:`Engine`::

    engine = Engine(store)
    engine.instant('sum by (service) (rate(http_requests_total[5m]))', t=3600.0)
    engine.range('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))',
                 start=0.0, end=3600.0, step=60.0)

Times are simulated seconds since the start of the run.
"""

from devopsim.observe.promql.ast import AGGREGATIONS, FUNCTIONS, PromQLError
from devopsim.observe.promql.engine import Engine, Sample, Semantics, check, selected_metrics

__all__ = [
    "AGGREGATIONS",
    "FUNCTIONS",
    "Engine",
    "PromQLError",
    "Sample",
    "Semantics",
    "check",
    "selected_metrics",
]
