"""A real Prometheus for tests: backfill OpenMetrics with promtool, serve it, query its HTTP API."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def require_binaries() -> None:
    """Skip when Prometheus is not installed, unless DEVOPSIM_REQUIRE_PROMETHEUS=1 (CI), then fail."""
    missing = [b for b in (PROMETHEUS, PROMTOOL) if not Path(b).is_file()]
    if missing:
        if os.environ.get("DEVOPSIM_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(f"DEVOPSIM_REQUIRE_PROMETHEUS=1 but {missing} not installed")
        pytest.skip(f"Prometheus binaries not installed: {missing}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A Prometheus server over a backfilled TSDB."""

    def __init__(self, openmetrics: Path, workdir: Path) -> None:
        data = workdir / "tsdb"
        subprocess.run(
            [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(data)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        config = workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Prometheus did not start; see {workdir / 'prometheus.log'}")
            time.sleep(0.1)

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>`` and return ``data`` (raises on an error status)."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(body)
        return body["data"]

    def close(self) -> None:
        """Stop the server."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def parse_value(text: str) -> float:
    """A sample value as the HTTP API writes it ("NaN", "+Inf", ...)."""
    return float(text)


def same_value(a: float, b: float) -> bool:
    """Equal within floating-point tolerance; NaN equals NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
