"""The HPA's stabilization read from its history in time order, against the scan of the list.

``HPAController`` keeps its recommendations as kube-controller-manager does (a list whose
last entry older than every window is overwritten) and reads them through
:class:`RecentRecommendations` instead of scanning the list at every sync. The scan (the
controller's reference path, taken where ``_history`` gives None) must give the same
decision and leave the same list, entry for entry, for any sequence of syncs: regular or
irregular times, repeated times, times going back, windows changed between syncs.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devopsim.control.hpa import HPAController, Policy, Rules

steps = st.lists(
    st.tuples(
        st.sampled_from([15.0] * 8 + [0.0, 30.0, 45.0, 299.0, 300.0, 301.0, 600.0, -15.0]),
        st.integers(1, 12),  # proposal
        st.integers(1, 12),  # current
        st.sampled_from([None] * 12 + ["window"]),  # now and then the windows change
    ),
    min_size=1,
    max_size=60,
)
windows = st.sampled_from([0.0, 15.0, 60.0, 120.0, 300.0])


def _rules(up: float, down: float) -> tuple[Rules, Rules]:
    return (
        Rules(up, "Max", (Policy("Pods", 4, 15), Policy("Percent", 100, 15))),
        Rules(down, "Max", (Policy("Percent", 50, 60),)),
    )


def _pair(behavior: tuple[Rules, Rules] | None, downscale: float) -> tuple[HPAController, HPAController]:
    fast = HPAController(1, 12, behavior, downscale_window=downscale)
    scan = HPAController(1, 12, behavior, downscale_window=downscale)
    scan._history = lambda *a, **k: None  # type: ignore[method-assign]
    return fast, scan


def _run(fast: HPAController, scan: HPAController, seq: list[Any], new_windows: list[float]) -> None:
    now = 1000.0
    k = 0
    for dt, proposal, current, change in seq:
        now += dt
        if change is not None:
            a, b = new_windows[k % len(new_windows)], new_windows[(k + 1) % len(new_windows)]
            k += 1
            for c in (fast, scan):
                if c.behavior is None:
                    c.downscale_window = b
                else:
                    c.behavior = _rules(a, b)
        if fast.behavior is None:
            got, want = (c._normalize_legacy(now, current, proposal) for c in (fast, scan))
        else:
            got, want = (c._normalize_behavior(now, current, proposal) for c in (fast, scan))
        assert got == want
        assert fast.recommendations == scan.recommendations


@settings(max_examples=400, deadline=None, derandomize=True)
@given(seq=steps, downscale=windows, new_windows=st.lists(windows, min_size=2, max_size=4))
def test_legacy_history_gives_what_the_scan_gives(
    seq: list[Any], downscale: float, new_windows: list[float]
) -> None:
    _run(*_pair(None, downscale), seq, new_windows)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(seq=steps, up=windows, down=windows, new_windows=st.lists(windows, min_size=2, max_size=4))
def test_behavior_history_gives_what_the_scan_gives(
    seq: list[Any], up: float, down: float, new_windows: list[float]
) -> None:
    _run(*_pair(_rules(up, down), 300.0), seq, new_windows)


def test_the_oldest_entry_is_overwritten_as_the_controller_does() -> None:
    # Syncs every 15 s with the 300 s window: 21 entries at most (t - 300 <= entry), the one
    # that fell out of the window overwritten in place (index 0 first, as in horizontal.go).
    c = HPAController(1, 10)
    for k in range(1, 24):
        c._normalize_legacy(15.0 * k, 3, 3)
    assert len(c.recommendations) == 21
    assert c.recommendations[0] == (330.0, 3) and c.recommendations[1] == (345.0, 3)
    assert c.recommendations[2] == (45.0, 3)


@pytest.mark.parametrize("behavior", [None, _rules(0.0, 300.0)])
def test_a_recommendation_later_than_the_sync_reads_by_scan(behavior: Any) -> None:
    # A history holding a time after ``now`` has no time order to read: the scan decides.
    c = HPAController(1, 10, behavior, recommendations=[(2000.0, 9), (900.0, 2)])
    assert c._history(1000.0, ("legacy", 300.0), False) is None
    if behavior is None:
        assert c._normalize_legacy(1000.0, 5, 4) == (9, "ScaleDownStabilized", "DesiredWithinRange")
    else:
        assert c._normalize_behavior(1000.0, 5, 4)[0] == 5  # min(up: 4 ...) .. max(down: 9) -> current
