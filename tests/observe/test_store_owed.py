"""Writes owed and settled late: a writer that computes rows and events after their time
(the rules loop's batches) reserves their places, and the store and the event log have them
written before anyone could tell they were late."""

from __future__ import annotations

import numpy as np
import pytest

from devopsim.observe.promql import Engine
from devopsim.observe.store import MetricStore
from devopsim.results.events import EventLog


def test_rows_written_late_take_their_reserved_place_in_append_order() -> None:
    st = MetricStore()
    a, b = st.series("a", {}), st.series("b", {})
    st.append(0.0, np.array([a]), np.array([1.0]))
    slot = st.reserve()
    st.append(15.0, np.array([a]), np.array([2.0]))
    st.append(10.0, np.array([b]), np.array([7.0]), slot=slot)  # written late, placed at the slot
    st.append(11.0, np.array([b]), np.array([8.0]), slot=slot)
    t, ids, v = st.columns()
    assert t.tolist() == [0.0, 10.0, 11.0, 15.0] and v.tolist() == [1.0, 7.0, 8.0, 2.0]
    assert ids.tolist() == [a, b, b, a]
    with pytest.raises(ValueError, match="not reserved"):
        st.append(20.0, np.array([b]), np.array([1.0]), slot=st.reserve() + 1)


def test_owed_rows_are_written_before_reads_registrations_and_earlier_rows() -> None:
    st = MetricStore()
    a = st.series("a", {})
    st.append(0.0, np.array([a]), np.array([1.0]))
    calls: list[str] = []

    def settle(why: str) -> None:
        calls.append(why)

    st.owe(lambda: settle("query"), 30.0)
    assert Engine(st).instant("a", 0.0)  # a query settles
    st.owe(lambda: settle("later row"), 30.0)
    st.append(45.0, np.array([a]), np.array([2.0]))  # after the owed time: no need
    st.series("a", {})  # known series: no need
    st.owe(lambda: settle("new series"), 30.0)
    st.series("b", {})
    st.owe(lambda: settle("row at the owed time"), 30.0)
    st.append(30.0, np.array([a]), np.array([3.0]))
    st.owe(lambda: settle("marker"), 60.0)
    st.mark_stale(60.0, np.array([a]))
    st.owe(lambda: settle("columns"), 60.0)
    st.columns()
    st.settle()  # nothing owed: nothing done
    assert calls == ["query", "new series", "row at the owed time", "marker", "columns"]


def test_late_events_are_inserted_at_their_marks_before_a_read() -> None:
    log = EventLog()
    log.emit(0.0, "a")
    m1 = log.mark()
    log.emit(10.0, "b")
    m2 = log.mark()
    log.emit(20.0, "c")
    log.owe(
        lambda: log.insert([(m1, [log.record(5.0, "x")]), (m2, [log.record(15.0, "y"), log.record(15, "z")])])
    )
    assert [e["kind"] for e in log.events] == ["a", "x", "b", "y", "z", "c"]
    assert log.events[2] == {"t": 10.0, "kind": "b"}
    with pytest.raises(ValueError, match="marks must rise"):
        log.insert([(3, []), (1, [])])


def test_a_query_settles_only_when_it_may_read_what_is_owed() -> None:
    st = MetricStore()
    a = st.series("a", {})
    st.append(0.0, np.array([a]), np.array([1.0]))
    calls: list[str] = []
    st.owe(lambda: calls.append("settled"), 30.0, {"ALERTS", "job:ratio"})
    e = Engine(st)
    e.instant("sum(rate(a[1m]))", 0.0)
    e.range("a", 0.0, 60.0, 15.0)
    e.instant_many("a > 0", [0.0, 15.0])
    assert calls == []  # reads only a: the owed rows can wait
    e.instant('count(ALERTS{alertstate="firing"}) or vector(0)', 0.0)
    assert calls == ["settled"]
    st.owe(lambda: calls.append("any name"), 30.0, {"ALERTS"})
    e.instant('{__name__=~"a|b"}', 0.0)  # no fixed name: may read anything
    st.owe(lambda: calls.append("columns"), 30.0, {"ALERTS"})
    st.columns()
    assert calls == ["settled", "any name", "columns"]


def test_a_row_at_the_owed_time_settles_only_when_it_may_share_a_table_with_the_owed_rows() -> None:
    # Owed rows of named metrics go into tables of those metrics' series only: a row of other
    # series at the owed time cannot share a table with them and takes its place in append
    # order anyway (reserve), so it need not wait; a row with a series of an owed metric must.
    st = MetricStore()
    a, alerts = st.series("a", {}), st.series("ALERTS", {"alertname": "X"})
    calls: list[float] = []
    slot = st.reserve()

    def settle() -> None:
        calls.append(30.0)
        st.append(30.0, np.array([alerts]), np.array([1.0]), slot=slot)

    st.owe(settle, 30.0, {"ALERTS", "job:ratio"})
    st.append(30.0, np.array([a]), np.array([5.0]))  # no owed metric: not settled
    assert not calls
    st.append(30.0, np.array([a, alerts]), np.array([6.0, 0.0]))  # may share a table: settled first
    assert calls == [30.0]
    t, ids, v = st.columns()
    assert ids.tolist() == [alerts, a, a, alerts] and v.tolist() == [1.0, 5.0, 6.0, 0.0]
    assert t.tolist() == [30.0] * 4
    st.owe(lambda: calls.append(60.0), 60.0, {"job:ratio"})  # a metric with no series yet
    st.append(45.0, np.array([a, alerts]), np.array([7.0, 1.0]))
    assert calls == [30.0]
    st.owe(lambda: calls.append(90.0), 90.0)  # metrics not named (this replaces the last): any row
    st.append(90.0, np.array([a]), np.array([8.0]))
    assert calls == [30.0, 90.0]
