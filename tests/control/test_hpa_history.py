"""The HPA's recommendation history as kube-controller-manager keeps it.

``horizontal.go`` stores each sync's recommendation by overwriting the last entry older
than every stabilization window, and appends only when there is none: with syncs every
15 s and the 300 s downscale window the history holds 21 entries (``t - 300 <= entry``
counts; older ones are overwritten), the oldest slot first.
"""

from __future__ import annotations

from devopsim.control.hpa import HPAController, Policy, Rules


def test_the_oldest_entry_is_overwritten_as_the_controller_does() -> None:
    c = HPAController(1, 10)
    for k in range(1, 24):
        c._normalize_legacy(15.0 * k, 3, 3)
    assert len(c.recommendations) == 21
    assert c.recommendations[0] == (330.0, 3) and c.recommendations[1] == (345.0, 3)
    assert c.recommendations[2] == (45.0, 3)


def test_behavior_windows_read_the_history_by_their_own_cutoffs() -> None:
    # Scale-up window 60 s (lowest recommendation after now - 60), scale-down window 120 s
    # (highest after now - 120); entries older than both are overwritten.
    up = Rules(60.0, "Max", (Policy("Pods", 100, 15),))
    down = Rules(120.0, "Max", (Policy("Pods", 100, 15),))
    history = [(850.0, 9), (900.0, 7), (950.0, 2), (990.0, 6)]
    c = HPAController(1, 10, (up, down), recommendations=list(history))
    # now 1000, proposal 8: up window (940, 1000]: 2, 6, 8 -> lowest 2; down window
    # (880, 1000]: 7, 2, 6, 8 -> highest 8; current 5 clamped to [2, 8] stays 5.
    assert c._normalize_behavior(1000.0, 5, 8) == (5, "ScaleUpStabilized", "DesiredWithinRange")
    assert c.recommendations == [(1000.0, 8), *history[1:]]  # 850 was older than both windows
    # now 1015, proposal 1: up (955, 1015]: 6, 8, 1 -> 1; down (895, 1015]: 7, 2, 6, 8, 1 -> 8;
    # 5 clamped to [1, 8] stays 5: the scale-down waits for the window.
    assert c._normalize_behavior(1015.0, 5, 1) == (5, "ScaleDownStabilized", "DesiredWithinRange")
