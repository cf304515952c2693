"""Benchmark devopsim's request-level engine against SimPy and Ciw on textbook queueing models.

Two models, each run by every tool for the same simulated horizon (``customers / arrival rate``):

1. **M/M/8 at utilisation 0.9** -- one FIFO station with 8 servers, Poisson arrivals at 7.2/s,
   exponential service with mean 1 s.  Theory (Erlang C): ``W = C(8, 7.2) / (8 - 7.2) + 1``.
2. **Three-station tandem** -- three single-server FIFO stations in series, exponential service with
   mean 1 s at each, Poisson arrivals at 0.8/s.  Theory (Jackson): ``W = 3 / (1 - 0.8) = 15 s``.

For every (model, tool) the script reports customers per second of wall time, the ratio to SimPy's
customers per second, and the mean response time the tool measured next to the theoretical value.

Run ``python bench/bench_request.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WARMUP_FRACTION = 0.01
"""Share of the horizon treated as warm-up; customers arriving in it are left out of the means."""

ALL_TOOLS = ("devopsim", "simpy", "ciw")
BLOCK = 65_536
"""How many variates the SimPy models draw from numpy at a time."""
WARMUP_CUSTOMERS = 500
"""Customers in the untimed run that loads each tool before measuring."""


# --------------------------------------------------------------------------------------------------
# Models and theory
# --------------------------------------------------------------------------------------------------


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``a`` (Erlangs)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@dataclass(frozen=True)
class Model:
    """A queueing model every tool can run.

    Attributes:
        key: short name used in the table and the JSON.
        rate: Poisson arrival rate (customers per second).
        servers: number of servers at each station, in visiting order.
        service_mean: mean of the exponential service time at every station (seconds).
        theory: the theoretical mean response (sojourn) time (seconds).
    """

    key: str
    rate: float
    servers: tuple[int, ...]
    service_mean: float
    theory: float

    def horizon(self, customers: int) -> float:
        """Simulated seconds in which ``customers`` arrive on average."""
        return customers / self.rate


MM8 = Model("M/M/8 rho=0.9", 7.2, (8,), 1.0, erlang_c(8, 7.2) / (8 - 7.2) + 1.0)
TANDEM = Model("tandem x3 rho=0.8", 0.8, (1, 1, 1), 1.0, 3 * 1.0 / (1.0 - 0.8))
MODELS = (MM8, TANDEM)


@dataclass
class Run:
    """What one run of one tool produced.

    Attributes:
        wall_s: wall-clock seconds: building the model, simulating, computing the mean.
        mean_response_s: mean response time of the customers that arrived after warm-up and finished.
        counted: how many customers that mean is over.
    """

    wall_s: float
    mean_response_s: float
    counted: int


# --------------------------------------------------------------------------------------------------
# devopsim
# --------------------------------------------------------------------------------------------------


def devopsim_scenario(model: Model, customers: int) -> dict[str, Any]:
    """The devopsim scenario (as a dict) for ``model`` with about ``customers`` arrivals."""
    horizon = model.horizon(customers)
    stations = [f"s{i + 1}" for i in range(len(model.servers))] if len(model.servers) > 1 else ["api"]
    endpoint = "work" if len(model.servers) > 1 else "get"
    services = {
        name: {
            "replicas": 1,
            "concurrency": c,
            "resources": {"requests": {"cpu": c}},  # cpu >= concurrency: no processor sharing
            "endpoints": {endpoint: {"steps": [{"work": f"exp({model.service_mean}s)"}]}},
        }
        for name, c in zip(stations, model.servers, strict=True)
    }
    entries = [f"{name}.{endpoint}" for name in stations]
    return {
        "name": "mm8" if len(stations) == 1 else "tandem",
        "duration": f"{horizon}s",
        "warmup": f"{WARMUP_FRACTION * horizon}s",
        "plane": "request",
        "monitoring": {"scrapeInterval": f"{horizon / 20}s"},  # a few scrapes; not what is measured
        "traffic": {
            "rate": f"{model.rate}/s",
            "classes": [{"name": "get", "entry": entries[0] if len(entries) == 1 else entries}],
        },
        "services": services,
    }


def run_devopsim(model: Model, customers: int, seed: int) -> Run:
    """Time one whole ``devopsim.simulate`` call (scenario validation included)."""
    import devopsim

    scenario = devopsim_scenario(model, customers)
    start = time.perf_counter()
    result = devopsim.simulate(scenario, seed=seed)
    cls = result.summary["classes"]["get"]
    mean = float(cls["latency_s"]["mean"])
    wall = time.perf_counter() - start
    return Run(wall, mean, int(cls["requests"]))


# --------------------------------------------------------------------------------------------------
# SimPy
# --------------------------------------------------------------------------------------------------


def exponentials(rng: Any, mean: float) -> Iterator[float]:
    """Endless exponential variates with ``mean``, drawn from numpy ``rng`` a block at a time."""
    while True:
        yield from rng.exponential(mean, BLOCK).tolist()


def run_simpy(model: Model, customers: int, seed: int) -> Run:
    """Model build, run and mean in SimPy: one ``Resource`` per station, one process per customer."""
    import numpy as np
    import simpy

    start = time.perf_counter()
    horizon = model.horizon(customers)
    warmup = WARMUP_FRACTION * horizon
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    stations = [simpy.Resource(env, capacity=c) for c in model.servers]
    gaps = exponentials(rng, 1.0 / model.rate)
    work = exponentials(rng, model.service_mean)
    responses: list[float] = []

    def customer(env: simpy.Environment, arrived: float) -> Iterator[simpy.events.Event]:
        for station in stations:
            with station.request() as req:
                yield req
                yield env.timeout(next(work))
        if arrived >= warmup:
            responses.append(env.now - arrived)

    def source(env: simpy.Environment) -> Iterator[simpy.events.Event]:
        while True:
            yield env.timeout(next(gaps))
            env.process(customer(env, env.now))

    env.process(source(env))
    env.run(until=horizon)
    mean = statistics.fmean(responses)
    wall = time.perf_counter() - start
    return Run(wall, mean, len(responses))


# --------------------------------------------------------------------------------------------------
# Ciw
# --------------------------------------------------------------------------------------------------


def run_ciw(model: Model, customers: int, seed: int) -> Run:
    """Model build, run and mean in Ciw; the tandem routes node 1 -> 2 -> 3 -> exit."""
    import ciw

    start = time.perf_counter()
    horizon = model.horizon(customers)
    warmup = WARMUP_FRACTION * horizon
    n = len(model.servers)
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(model.rate)] + [None] * (n - 1),
        service_distributions=[ciw.dists.Exponential(1.0 / model.service_mean) for _ in range(n)],
        number_of_servers=list(model.servers),
        routing=[[1.0 if j == i + 1 else 0.0 for j in range(n)] for i in range(n)],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    sim.simulate_until_max_time(horizon)
    records = sim.get_all_records()
    # Sojourn = leaving the last node - arriving at the first, for customers who arrived after warm-up.
    first_arrival = {r.id_number: r.arrival_date for r in records if r.node == 1}
    responses = [
        r.exit_date - first_arrival[r.id_number]
        for r in records
        if r.node == n and first_arrival[r.id_number] >= warmup
    ]
    mean = statistics.fmean(responses)
    wall = time.perf_counter() - start
    return Run(wall, mean, len(responses))


RUNNERS: dict[str, Callable[[Model, int, int], Run]] = {
    "devopsim": run_devopsim,
    "simpy": run_simpy,
    "ciw": run_ciw,
}


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a tool on a model, over all repetitions."""

    model: str
    tool: str
    customers: int
    wall_s: float
    customers_per_s: float
    ratio_vs_simpy: float | None
    mean_response_s: float
    theory_s: float
    rel_error: float
    counted: int
    walls_s: list[float] = field(default_factory=list)


def bench(
    models: tuple[Model, ...], tools: list[str], customers: int, repeat: int, log: Callable[[str], None]
) -> list[Row]:
    """Run every tool on every model ``repeat`` times (seeds 1..repeat) and build the table rows.

    Each tool first runs each model once with a few customers, untimed, so that imports and other
    one-off costs stay out of the measurements. Repetitions are interleaved across tools so slow
    drifts of the machine hit every tool alike. customers/s is ``customers`` (the requested count,
    which every tool's horizon is sized for) divided by the median wall time; the answers (mean
    response) come from seed 1.
    """
    for tool in tools:  # untimed: import each tool and touch its code paths once
        for model in models:
            RUNNERS[tool](model, WARMUP_CUSTOMERS, 0)
    rows: list[Row] = []
    for model in models:
        runs: dict[str, list[Run]] = {tool: [] for tool in tools}
        for seed in range(1, repeat + 1):
            for tool in tools:
                gc.collect()
                run = RUNNERS[tool](model, customers, seed)
                runs[tool].append(run)
                log(
                    f"  {model.key:<18} {tool:<9} seed {seed}: {run.wall_s:8.2f} s, "
                    f"mean response {run.mean_response_s:.4f} s"
                )
        speed = {tool: customers / statistics.median(r.wall_s for r in rs) for tool, rs in runs.items()}
        for tool, rs in runs.items():
            first = rs[0]
            rows.append(
                Row(
                    model=model.key,
                    tool=tool,
                    customers=customers,
                    wall_s=statistics.median(r.wall_s for r in rs),
                    customers_per_s=speed[tool],
                    ratio_vs_simpy=speed[tool] / speed["simpy"] if "simpy" in speed else None,
                    mean_response_s=first.mean_response_s,
                    theory_s=model.theory,
                    rel_error=(first.mean_response_s - model.theory) / model.theory,
                    counted=first.counted,
                    walls_s=[r.wall_s for r in rs],
                )
            )
    return rows


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned plain-text table."""
    head = [
        "model",
        "tool",
        "customers",
        "wall s",
        "customers/s",
        "vs SimPy",
        "mean resp s",
        "theory s",
        "rel err",
    ]
    body = [
        [
            r.model,
            r.tool,
            f"{r.customers:,}",
            f"{r.wall_s:.2f}",
            f"{r.customers_per_s:,.0f}",
            "-" if r.ratio_vs_simpy is None else f"{r.ratio_vs_simpy:.2f}x",
            f"{r.mean_response_s:.4f}",
            f"{r.theory_s:.4f}",
            f"{r.rel_error:+.2%}",
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    left = {0, 1}

    def fmt(line: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *(fmt(line) for line in body)])


def machine() -> dict[str, Any]:
    """Python and machine facts printed with the table."""
    import ciw
    import numpy
    import simpy

    import devopsim

    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "devopsim": getattr(devopsim, "__version__", "?"),
        "simpy": simpy.__version__,
        "ciw": ciw.__version__,
        "numpy": numpy.__version__,
    }


NOTES = """\
Notes:
  customers   = requested customers N; every tool simulates the same horizon N / arrival rate, so about N
                customers arrive in each run. customers/s = N / median wall time over the repetitions.
  wall s      = median wall-clock time of one run: building the model (devopsim: validating the scenario),
                simulating, and computing the mean response. Imports are excluded (an untimed short run
                of each tool comes first).
  vs SimPy    = customers/s divided by SimPy's customers/s on the same model (2.00x = twice as fast).
  mean resp s = mean response (sojourn) time from seed 1, over customers that arrived after the warm-up
                (first {warmup:.0%} of the horizon) and finished before the end; theory: Erlang C (M/M/8),
                Jackson (tandem)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--customers", type=int, default=1_000_000, help="customers per model (default 1,000,000)")
    p.add_argument(
        "--repeat", type=int, default=3, help="runs per tool, seeds 1..R; median speed (default 3)"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: 20,000 customers, one repetition")
    p.add_argument("--json", type=Path, help="also write the table (and machine facts) as JSON here")
    p.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma list of tools (default: all)")
    args = p.parse_args(argv)
    if args.quick:
        args.customers, args.repeat = 20_000, 1
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in args.tools if t not in RUNNERS]
    if unknown or not args.tools:
        p.error(f"unknown tools {unknown}; choose from {', '.join(ALL_TOOLS)}")
    if args.customers < 100 or args.repeat < 1:
        p.error("--customers must be at least 100 and --repeat at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, optionally write JSON."""
    args = parse_args(argv)
    facts = machine()
    print(
        f"Python {facts['python']} ({facts['implementation']}) on {facts['platform']}, "
        f"{facts['cpu_count']} CPUs ({facts['processor']})"
    )
    print(f"devopsim {facts['devopsim']}, SimPy {facts['simpy']}, Ciw {facts['ciw']}, numpy {facts['numpy']}")
    print(
        f"{args.customers:,} customers per model, {args.repeat} repetition(s), tools: {', '.join(args.tools)}"
    )
    rows = bench(MODELS, args.tools, args.customers, args.repeat, lambda s: print(s, flush=True))
    print()
    print(format_table(rows))
    print()
    print(NOTES.format(warmup=WARMUP_FRACTION))
    if args.json:
        payload = {
            "machine": facts,
            "customers": args.customers,
            "repeat": args.repeat,
            "warmup_fraction": WARMUP_FRACTION,
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
