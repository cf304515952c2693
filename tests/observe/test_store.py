"""The metric store's query surface: series by metric, samples in time order, round trip through Arrow."""

from __future__ import annotations

import json

import numpy as np

from devopsim.observe.store import STALE_NAN, MetricStore, is_stale


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


def test_a_scrape_layout_is_stored_once_so_a_sample_costs_its_value() -> None:
    st = MetricStore()
    ids = np.array([st.series("m", {"i": str(i)}) for i in range(100)])
    for k in range(2000):
        st.append(15.0 * k, ids, np.full(100, float(k)))
    assert st.n_samples == 200_000
    # 8 bytes per float64 value, plus the table's ids (4 B each, once), per-row time and order
    # (16 B per row, 0.16 B per sample here) and the unused rows of the last block (< 3 %)
    assert st.raw_bytes / st.n_samples < 8.5
    t, v = st.samples(int(ids[7]))
    assert t.tolist() == [15.0 * k for k in range(2000)] and v.tolist() == [float(k) for k in range(2000)]
    t_all, ids_all, v_all = st.columns()
    assert t_all.size == ids_all.size == v_all.size == 200_000


def test_raw_bytes_count_what_the_tables_hold() -> None:
    # Appends count the bytes they add to their table (value blocks, the row times growing),
    # not the layout a new table starts with (its ids, static values, room for 4 row times).
    st = MetricStore()
    ids = np.array([st.series("m", {"i": str(i)}) for i in range(30)])
    other = np.array([st.series("n", {})])
    static = (np.array([st.series("s", {"i": str(i)}) for i in range(3)]), np.array([1.0, 0.0, 2.0]))
    for k in range(700):
        st.append(15.0 * k, ids, np.full(30, float(k)), static)
        st.append(15.0 * k, other, np.array([float(k)]))
        if k % 3 == 0:  # a caller building its ids array afresh each time
            st.append(15.0 * k, np.array([int(other[0]), int(ids[0])]), np.array([1.0, 2.0]))
    start = sum(tb.ids.nbytes + tb.svals.nbytes + 2 * 4 * 8 for tb in st._tables)
    assert st.raw_bytes == sum(tb.nbytes for tb in st._tables) - start
    assert len(st._tables) == 3


def test_interleaved_layouts_keep_append_order_in_columns() -> None:
    st = MetricStore()
    a, b = st.series("a", {}), st.series("b", {})
    ia, ib = np.array([a]), np.array([a, b])
    st.append(0.0, ia, np.array([1.0]))
    st.append(0.0, ib, np.array([2.0, 3.0]))
    st.append(15.0, ia, np.array([4.0]))
    st.append(15.0, ib, np.array([5.0, 6.0]))
    t, ids, v = st.columns()
    assert t.tolist() == [0, 0, 0, 15, 15, 15]
    assert ids.tolist() == [a, a, b, a, a, b] and v.tolist() == [1, 2, 3, 4, 5, 6]


def test_series_many_gives_stable_ids_and_the_same_labels() -> None:
    st = MetricStore()
    base = {"pod": "p1", "service": "s"}
    ids = st.series_many("x_total", base, [(("code", "200"),), (("code", "500"),)])
    assert st.series_many("x_total", base, [(("code", "200"),), (("code", "500"),)]).tolist() == ids.tolist()
    assert st.labels_of(int(ids[1])) == {"pod": "p1", "service": "s", "code": "500"}
    assert st.series_of("x_total") == ids.tolist()
    assert json.loads(st.label_sets[st.series_label_set[int(ids[0])]]) == {**base, "code": "200"}


def test_staleness_markers_stay_out_of_columns() -> None:
    st = MetricStore()
    a = st.series("up", {"pod": "a"})
    st.append(0.0, np.array([a]), np.array([1.0]))
    st.mark_stale(15.0, np.array([a]))
    assert st.columns()[0].tolist() == [0.0]
    t, ids = st.stale_markers()
    assert t.tolist() == [15.0] and ids.tolist() == [a]
    assert is_stale(np.array([STALE_NAN, float("nan"), 1.0])).tolist() == [True, False, False]


def test_limits_follow_the_scenarios_monitoring() -> None:
    from devopsim.observe.store import Limits, limits_for
    from devopsim.scenario.infra import Monitoring

    plain = limits_for(Monitoring())
    assert plain == Limits() and plain.raw_retention is None  # only the memory budget
    thanos = limits_for(Monitoring.model_validate({"thanos": True, "retention": "6h"}))
    assert thanos.raw_retention == 6 * 3600 and thanos.resolutions == (300.0, 3600.0)
    custom = limits_for(Monitoring.model_validate({"downsampling": ["1h", "10m"], "retention": "2h"}))
    assert custom.resolutions == (600.0, 3600.0) and custom.raw_retention == 7200


def test_the_same_arrays_keep_their_rows_across_a_compaction_that_drops_their_table() -> None:
    # The store remembers the arrays of the last append and their table; a compaction that
    # downsamples every row of that table (late rows older than the cut, as the rules loop
    # writes) drops it, and the next rows must go to a live table: the same data as
    # appending fresh copies of the arrays each time.
    from devopsim.observe.store import Limits

    def run(fresh: bool) -> tuple[MetricStore, object]:
        st = MetricStore(Limits(raw_bytes=None, resolutions=(300.0,)))
        ids = np.array([st.series("m", {"i": str(i)}) for i in range(4)])
        for k in range(10):
            st.append(15.0 * k, ids.copy() if fresh else ids, np.full(4, float(k)))
        first = st._tables[0]
        st._downsample_raw(3600.0)  # every row so far is older than the cut
        for k in range(3):
            st.append(4000.0 + 15.0 * k, ids.copy() if fresh else ids, np.full(4, float(k)))
        return st, first

    (got, first), (want, _) = run(False), run(True)
    assert got.has_downsampled and first not in got._tables  # the table was dropped
    for a, b in zip(got.columns(), want.columns(), strict=True):
        assert a.tolist() == b.tolist()
    assert got.columns()[0].tolist() == [4000.0] * 4 + [4015.0] * 4 + [4030.0] * 4


def test_a_row_older_than_the_newest_marks_the_table_unsorted_after_a_sort() -> None:
    # Rows appended out of time order are sorted when read; a later row older than the
    # newest must be sorted again (the table compares with its newest row, not the last one).
    st = MetricStore()
    ids = np.array([st.series("m", {})])
    for t in (10.0, 30.0, 20.0):
        st.append(t, ids, np.array([t]))
    assert [tb.t[: tb.n].tolist() for tb, _, _ in st.raw_window(0.0, 100.0)] == [[10.0, 20.0, 30.0]]
    st.append(25.0, ids, np.array([25.0]))
    assert st.samples(int(ids[0]))[0].tolist() == [10.0, 20.0, 25.0, 30.0]
    assert [tb.t[: tb.n].tolist() for tb, _, _ in st.raw_window(0.0, 100.0)] == [[10.0, 20.0, 25.0, 30.0]]


def test_writers_taking_turns_with_their_own_arrays_store_what_fresh_copies_would() -> None:
    # Each writer (scraper, loops) appends with the same arrays while its series stay the
    # same, in turn with the others; the store finds their tables from the arrays. The rows
    # (across block boundaries, a sort, a compaction in the middle, static columns) must be
    # those of appending fresh copies every time, which always looks the layout up.
    from devopsim.observe.store import Limits

    def run(fresh: bool) -> MetricStore:
        st = MetricStore(Limits(raw_bytes=None, resolutions=(300.0,)))
        a = np.array([st.series("a", {"i": str(i)}) for i in range(3)])
        b = np.array([st.series("b", {"i": str(i)}) for i in range(5)])
        s_ids = np.array([st.series("s", {"i": str(i)}) for i in range(2)])
        statics = [(s_ids, np.array([7.0, 8.0])), (s_ids, np.array([9.0, 8.0]))]  # two layouts
        for k in range(40):
            t = 15.0 * k
            st.append(t, a.copy() if fresh else a, np.full(3, float(k)))
            static = statics[k % 5 == 0]
            sv = (static[0].copy(), static[1].copy()) if fresh else static
            st.append(t, b.copy() if fresh else b, np.arange(5.0) + k, sv)
            if k % 7 == 3:  # a late row of a: the table sorts when read
                st.append(t - 5.0, a.copy() if fresh else a, np.full(3, -1.0))
                st.samples(int(a[0]))
            if k == 25:
                st._downsample_raw(150.0)
        return st

    got, want = run(False), run(True)
    for x, y in zip(got.columns(), want.columns(), strict=True):
        assert x.tolist() == y.tolist()
    assert [t.tolist() for _, t, _ in got.tables()] == [t.tolist() for _, t, _ in want.tables()]
    assert [v.tolist() for _, _, v in got.tables()] == [v.tolist() for _, _, v in want.tables()]
    assert got.raw_bytes == want.raw_bytes and got.n_samples == want.n_samples
