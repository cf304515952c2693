"""CPU seconds of each control loop over a day of checkout.yaml (or any scenario).

    python bench/bench_loops.py                          # checkout.yaml, 24 h, best of 1
    python bench/bench_loops.py --repeat 3               # the minimum over 3 runs, per row
    python bench/bench_loops.py path/to/scenario.yaml --hours 6 --by callback

Every callback scheduled on the control clock is wrapped with ``time.process_time``
accounting and charged to the module that owns it (a loop's bound method, a
``functools.partial`` of one, or a plain function), so a row is what that loop's
scheduled work cost, including what it did through the platform (scaling, pod
changes). The data plane's ``advance``, the platform's ``reap`` and each loop's
``attach`` and ``finish`` get their own rows; so do the rules loop's batches
(``observe.rules.loop (batches)``), which run inside whichever callback needs
them: a row timed inside another is charged to itself only. ``other`` is the
rest (loading, the summary). CPU time rather than wall time, since the machine
may be shared. Prints a table; no assertions.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = ROOT.parent / "shared" / "examples" / "checkout.yaml"


def _owner(action: Callable[..., Any], by: str) -> str:
    """The module (or module:qualname with ``by == "callback"``) a scheduled action belongs to."""
    fn: Any = action
    while isinstance(fn, functools.partial):
        fn = fn.func
    self = getattr(fn, "__self__", None)
    func = getattr(fn, "__func__", fn)
    module = getattr(func, "__module__", None) or type(fn).__module__
    if self is not None:
        module = type(self).__module__
    module = module.removeprefix("devopsim.")
    if by == "callback":
        return f"{module}:{getattr(func, '__qualname__', type(fn).__name__)}"
    return module


def run_once(scenario: str, hours: float, by: str) -> tuple[float, dict[str, tuple[float, int]]]:
    """One run; returns (total CPU s, {row: (CPU s, calls)})."""
    import devopsim
    from devopsim.engine import clock as clock_mod
    from devopsim.engine import runner as runner_mod
    from devopsim.observe.rules.loop import RulesLoop

    cost: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    inner = [0.0]  # time charged to rows timed inside the one running (not charged twice)
    Clock = clock_mod.Clock
    schedule = Clock.schedule
    every = Clock.every
    flush = RulesLoop._flush

    def charge(key: str, fn: Callable[..., Any], *a: Any) -> Any:
        before = inner[0]
        t0 = time.process_time()
        try:
            return fn(*a)
        finally:
            dt = time.process_time() - t0
            cost[key] += dt - (inner[0] - before)
            calls[key] += 1
            inner[0] = before + dt

    def timed_flush(self: Any, sim: Any) -> None:
        # rule evaluations run in batches, inside whichever callback needs them done
        if self._pending and not self._flushing:
            charge("observe.rules.loop (batches)", flush, self, sim)
        else:
            flush(self, sim)

    def timed_schedule(self: Any, at: float, action: Callable[[float], None], priority: int = 0) -> None:
        key = _owner(action, by)

        def wrapped(t: float) -> None:
            charge(key, action, t)

        schedule(self, at, wrapped, priority)

    def timed_every(
        self: Any, period: float, until: float, action: Callable[[float], None], priority: int = 0
    ) -> None:
        key = _owner(action, by)

        def wrapped(t: float) -> None:
            charge(key, action, t)

        every(self, period, until, wrapped, priority)

    Simulation = runner_mod.Simulation
    run = Simulation.run

    def timed_run(self: Any) -> Any:
        plane_advance = self.plane.advance
        reap = self.platform.reap

        def advance(*a: Any) -> Any:
            return charge("(data plane: advance)", plane_advance, *a)

        def timed_reap(*a: Any) -> Any:
            return charge("(platform: reap)", reap, *a)

        self.plane.advance = advance
        self.platform.reap = timed_reap
        loops_fn = getattr(runner_mod, "default_loops")  # noqa: B009 (the runner's own import)

        def loops(sim: Any) -> Any:
            out = loops_fn(sim)
            for loop in out:
                for what in ("attach", "finish"):
                    orig = getattr(loop, what)
                    key = f"{type(loop).__module__.removeprefix('devopsim.')} ({what})"

                    def timed(*a: Any, _orig: Any = orig, _key: str = key) -> Any:
                        return charge(_key, _orig, *a)

                    setattr(loop, what, timed)
            return out

        setattr(runner_mod, "default_loops", loops)  # noqa: B010
        try:
            return run(self)
        finally:
            setattr(runner_mod, "default_loops", loops_fn)  # noqa: B010

    Clock.schedule = timed_schedule  # type: ignore[method-assign]
    Clock.every = timed_every  # type: ignore[method-assign]
    Simulation.run = timed_run  # type: ignore[method-assign]
    RulesLoop._flush = timed_flush  # type: ignore[method-assign]
    try:
        t0 = time.process_time()
        devopsim.simulate(scenario, overrides=[f"duration={hours}h"])
        total = time.process_time() - t0
    finally:
        Clock.schedule = schedule  # type: ignore[method-assign]
        Clock.every = every  # type: ignore[method-assign]
        Simulation.run = run  # type: ignore[method-assign]
        RulesLoop._flush = flush  # type: ignore[method-assign]
    return total, {k: (cost[k], calls[k]) for k in cost}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default=str(CHECKOUT))
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs; each row shows its minimum")
    ap.add_argument("--by", choices=("module", "callback"), default="module")
    args = ap.parse_args()
    totals: list[float] = []
    best: dict[str, tuple[float, int]] = {}
    for _ in range(args.repeat):
        total, rows = run_once(args.scenario, args.hours, args.by)
        totals.append(total)
        for k, (s, n) in rows.items():
            if k not in best or s < best[k][0]:
                best[k] = (s, n)
    total = min(totals)
    accounted = sum(s for s, _ in best.values())
    width = max([len(k) for k in best] + [10])
    print(f"{Path(args.scenario).name}, {args.hours:g} h simulated, min over {args.repeat} run(s)")
    print(f"{'row':<{width}}  {'cpu s':>8}  {'share':>6}  {'calls':>8}  {'ms/call':>8}")
    for k, (s, n) in sorted(best.items(), key=lambda kv: -kv[1][0]):
        print(f"{k:<{width}}  {s:8.3f}  {100 * s / total:5.1f}%  {n:8d}  {1000 * s / max(n, 1):8.3f}")
    print(f"{'other':<{width}}  {max(total - accounted, 0.0):8.3f}")
    print(f"{'total':<{width}}  {total:8.3f}  (each run: {', '.join(f'{x:.2f}' for x in totals)})")


if __name__ == "__main__":
    main()
