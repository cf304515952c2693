"""Smoke test for ``bench/bench_request.py``: it runs, and every tool's answer agrees with theory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_request.py"


def test_bench_request_quick(tmp_path: Path) -> None:
    """``--quick`` exits 0, warns about nothing, and every mean response is within 15% of theory.

    Speed is never asserted: only that customers/s was measured (is positive).
    """
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(BENCH), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    rows = data["rows"]
    seen = {(r["model"], r["tool"]) for r in rows}
    models = {r["model"] for r in rows}
    assert len(models) == 2
    assert seen == {(m, t) for m in models for t in ("devopsim", "simpy", "ciw")}
    for r in rows:
        assert r["customers_per_s"] > 0, r
        assert r["counted"] > 0, r
        assert abs(r["mean_response_s"] - r["theory_s"]) <= 0.15 * r["theory_s"], r


def test_flow_bench_quick_runs(tmp_path):
    """The flow-plane speed bench keeps working (it prints figures; speed is never asserted)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "flow.json"
    script = Path(__file__).resolve().parents[1] / "bench" / "bench_flow.py"
    subprocess.run(
        [sys.executable, str(script), "--quick", "--json", str(out)], check=True, capture_output=True
    )
    rows = json.loads(out.read_text())
    # two checkout cases, two platform sizes, the same platform for 3x and 6x as long
    assert len(rows) == 6
    assert all(r["wall_s"] > 0 and r["cpu_s"] > 0 and r["sim_s"] > 0 for r in rows)
    assert [r["ticks"] for r in rows[-3:]] == [120.0, 360.0, 720.0]
