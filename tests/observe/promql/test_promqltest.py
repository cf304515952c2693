"""Prometheus' own engine tests (shared/data/promql/*.test), every case inside our subset.

The runner (tests/observe/promql/promqltest.py) classifies the cases it cannot
run (native histograms, constructs outside the subset) and runs
all others. ``python -m tests.observe.promql.promqltest`` prints the table.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.observe.promql.promqltest import run_file

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "promql"
FILES = sorted(DATA.glob("*.test"))


@pytest.mark.skipif(not FILES, reason="shared/data/promql is not present")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_promqltest_file(path: Path) -> None:
    outcomes = run_file(path)
    counts = Counter(o.status for o in outcomes)
    print(f"{path.name}: ran {counts['passed'] + counts['failed']}, skipped {counts['skipped']}")
    failures = [f"{o.file}:{o.line} {o.expr}: {o.reason}" for o in outcomes if o.status == "failed"]
    assert not failures, "\n".join(failures)


@pytest.mark.skipif(not FILES, reason="shared/data/promql is not present")
def test_most_of_the_float_cases_run() -> None:
    outcomes = [o for p in FILES for o in run_file(p)]
    ran = sum(o.status != "skipped" for o in outcomes)
    assert ran >= 500, f"only {ran} cases ran: the runner is skipping too much"
