"""Speed of the flow plane: a day of checkout.yaml, a generated large platform, and the cost curve.

    python bench/bench_flow.py                     # everything (the large platform takes a while)
    python bench/bench_flow.py --quick             # small sizes, for a smoke test
    python bench/bench_flow.py --services 1000 --replicas 20 --hours 24

Each case runs in a fresh process so that its peak memory (max RSS) is its own. Before the
timed run the process simulates one minute of the same scenario: the one-time costs of a
process (imports, package data; about half a second) are shown apart as "first 1-min run",
so a row is what simulating the day costs. Prints a table; no assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = ROOT.parent / "shared" / "examples" / "checkout.yaml"


def generated(
    services: int, replicas: int, hours: float, tick: str = "15s", scrape: str = "15s", seed: int = 1
) -> dict[str, Any]:
    """A platform of ``services`` services x ``replicas`` replicas, calling each other as a random DAG."""
    import numpy as np

    rng = np.random.default_rng(seed)
    svcs: dict[str, Any] = {}
    entries = max(1, services // 50)
    for i in range(services):
        steps: list[dict[str, Any]] = [{"work": f"lognormal(mean={rng.uniform(1, 6):.2f}ms, cv=1)"}]
        callees = (
            sorted({int(x) for x in rng.integers(i + 1, services, size=int(rng.integers(0, 3)))})
            if i + 1 < services
            else []
        )
        for c in callees:
            steps.append({"call": f"s{c}.op", "probability": "50%"})
        svcs[f"s{i}"] = {
            "replicas": replicas,
            "concurrency": 8,
            "resources": {"requests": {"cpu": 8}},
            "endpoints": {"op": {"timeout": "2s", "steps": steps}},
        }
    rate = 20.0 * replicas * entries
    return {
        "name": f"generated-{services}x{replicas}",
        "duration": f"{hours}h",
        "plane": "flow",
        "flow": {"tick": tick},
        "monitoring": {"scrapeInterval": scrape},
        "traffic": {
            "rate": f"diurnal(min={rate / 2:.1f}/s, max={rate:.1f}/s, peak=18:00)",
            "classes": [{"name": f"c{i}", "entry": f"s{i}.op"} for i in range(entries)],
        },
        "services": svcs,
    }


def _child(kind: str, args: dict[str, Any]) -> None:
    import devopsim
    from devopsim.observe.scrape import Scraper

    scrape_s = [0.0]
    scrape = Scraper.scrape

    def timed(self: Scraper, t: float) -> None:  # the time spent scraping, rebuilds included
        t0 = time.perf_counter()
        scrape(self, t)
        scrape_s[0] += time.perf_counter() - t0

    Scraper.scrape = timed  # type: ignore[method-assign]
    if kind == "checkout":
        sc: Any = CHECKOUT
        over = args.get("overrides", [])
    else:
        sc = generated(**args)
        over = []
    # A one-minute run first: the process's one-time costs (module imports, package data)
    # are counted apart, as "first run", so the row is what simulating the day costs.
    c0 = time.process_time()
    devopsim.simulate(sc, overrides=[*over, "duration=1m"])
    first_s = time.process_time() - c0
    scrape_s[0] = 0.0
    t, c = time.perf_counter(), time.process_time()
    res = devopsim.simulate(sc, overrides=over) if over else devopsim.simulate(sc)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_mib": rss,
                "series_samples": res.store.n_samples,
                "sim_s": res.summary["duration_s"],
                "scrape_s": scrape_s[0],
                "first_run_s": first_s,
                "series": len(res.store.series_metric),
                "store_mib": res.store.nbytes / 1024**2,
                "bytes_per_sample": res.store.raw_bytes / max(1, res.store.n_samples)
                if not res.store.has_downsampled
                else None,
            }
        )
    )


def run_case(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    code = [sys.executable, __file__, "--child", kind, json.dumps(args)]
    out = subprocess.run(
        code, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--replicas", type=int, default=20)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if a.child:
        _child(a.child[0], json.loads(a.child[1]))
        return
    rows: list[dict[str, Any]] = []

    def add(name: str, kind: str, args: dict[str, Any], replicas: int, ticks: float) -> None:
        r = run_case(kind, args)
        rows.append({"case": name, "replicas": replicas, "ticks": ticks, **r})
        print(
            f"{name:<44} {r['wall_s']:>8.2f} s {r['cpu_s']:>8.2f} s {r['peak_mib']:>8.0f} MiB "
            f"{r['sim_s'] / max(r['wall_s'], 1e-9):>12,.0f}x real time"
            f"   scrape {r['scrape_s']:.1f} s, store {r['store_mib']:,.0f} MiB,"
            f" first 1-min run {r.get('first_run_s', 0.0):.1f} s CPU",
            flush=True,
        )

    hours = 1.0 if a.quick else 24.0
    print(f"{'case':<44} {'wall':>10} {'cpu':>10} {'peak':>12} {'speed':>20}")
    add(
        f"checkout.yaml, {hours:g} h, as written",
        "checkout",
        {"overrides": [f"duration={hours}h"]},
        7,
        hours * 240,
    )
    add(
        f"checkout.yaml, {hours:g} h, catalog x8 frontend x6",
        "checkout",
        {"overrides": [f"duration={hours}h", "services.catalog.replicas=8", "services.frontend.replicas=6"]},
        16,
        hours * 240,
    )
    sizes = [(10, 5), (40, 10)] if a.quick else [(50, 20), (200, 20), (500, 20)]
    curve_hours = 0.5 if a.quick else 2.0
    for s, r in sizes:
        add(
            f"generated {s}x{r}, {curve_hours:g} h, 15 s ticks",
            "generated",
            {"services": s, "replicas": r, "hours": curve_hours},
            s * r,
            curve_hours * 240,
        )
    # The other axis of the curve: the same platform for longer.
    mid = (40, 10) if a.quick else (200, 20)
    for h in [curve_hours * 3, curve_hours * 6]:
        add(
            f"generated {mid[0]}x{mid[1]}, {h:g} h, 15 s ticks",
            "generated",
            {"services": mid[0], "replicas": mid[1], "hours": h},
            mid[0] * mid[1],
            h * 240,
        )
    if not a.quick:
        add(
            f"generated {a.services}x{a.replicas}, {a.hours:g} h, 15 s ticks",
            "generated",
            {"services": a.services, "replicas": a.replicas, "hours": a.hours},
            a.services * a.replicas,
            a.hours * 240,
        )
    print("\ncost per replica-tick (the curve should be flat if cost is linear in replicas x ticks):")
    gen = [row for row in rows if row["case"].startswith("generated")]
    for row in gen:
        per = row["cpu_s"] / (row["replicas"] * row["ticks"]) * 1e6
        print(f"  {row['case']:<44} {per:8.2f} µs CPU per replica-tick")
    if len(gen) >= 2:
        # The curve's shape: CPU ~ (replicas x ticks)^alpha by least squares on logs (alpha 1 is
        # linear; below 1, fixed costs and replayed steady windows make big runs cheaper per tick).
        import numpy as np

        x = np.log([row["replicas"] * row["ticks"] for row in gen])
        y = np.log([row["cpu_s"] for row in gen])
        alpha, _ = np.polyfit(x, y, 1)
        big = sorted(gen, key=lambda row: row["replicas"] * row["ticks"])[-2:]
        dx = big[1]["replicas"] * big[1]["ticks"] - big[0]["replicas"] * big[0]["ticks"]
        marginal = (big[1]["cpu_s"] - big[0]["cpu_s"]) / dx * 1e6 if dx > 0 else float("nan")
        print(
            f"  CPU grows as (replicas x ticks)^{alpha:.2f}; between the two largest runs "
            f"{marginal:.2f} µs CPU per extra replica-tick"
        )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
