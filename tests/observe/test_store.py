"""The metric store's query surface: series by metric, samples in time order, round trip through Arrow."""

from __future__ import annotations

import numpy as np

from devopsim.observe.store import MetricStore


def test_samples_are_per_series_and_time_ordered() -> None:
    st = MetricStore()
    a = st.series("up", {"pod": "a"})
    b = st.series("up", {"pod": "b"})
    c = st.series("other", {})
    st.append(30.0, np.array([b, a]), np.array([2.0, 1.0]))
    st.append(0.0, np.array([a, c]), np.array([10.0, 7.0]))
    st.append(15.0, np.array([a]), np.array([5.0]))
    assert st.series_of("up") == [a, b]
    assert st.series_of("missing") == []
    t, v = st.samples(a)
    assert t.tolist() == [0.0, 15.0, 30.0] and v.tolist() == [10.0, 5.0, 1.0]
    t, v = st.samples(b)
    assert t.tolist() == [30.0] and v.tolist() == [2.0]
    st.append(45.0, np.array([b]), np.array([3.0]))  # a later append invalidates the sorted view
    assert st.samples(b)[1].tolist() == [2.0, 3.0]


def test_arrow_round_trip_keeps_series_and_samples() -> None:
    st = MetricStore.from_series(
        [
            ("http_requests_total", {"code": "200", "pod": "p1"}, [(0, 1), (15, 4)]),
            ("http_requests_total", {"code": "500", "pod": "p1"}, [(15, 1)]),
            ("kube_pod_status_ready", {"pod": "p1"}, [(0, 1)]),
        ]
    )
    back = MetricStore.from_arrow(st.to_arrow())
    got = {
        (
            back.metric_names[back.series_metric[sid]],
            tuple(sorted(back.labels_of(sid).items())),
        ): back.samples(sid)[1].tolist()
        for m in ("http_requests_total", "kube_pod_status_ready")
        for sid in back.series_of(m)
    }
    assert got == {
        ("http_requests_total", (("code", "200"), ("pod", "p1"))): [1.0, 4.0],
        ("http_requests_total", (("code", "500"), ("pod", "p1"))): [1.0],
        ("kube_pod_status_ready", (("pod", "p1"),)): [1.0],
    }
