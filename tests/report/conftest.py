"""Runs of examples/checkout.yaml shared by the report tests, and a headless Chromium to open pages in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EXAMPLES

CHROMIUM = os.environ.get("DEVOPSIM_CHROMIUM", "/usr/bin/chromium")

# Two hours of the checkout day with its timeline moved inside them: the bad catalog rollout at
# 30 min, the rollback at 60 min, the frontend pod kill at 90 min.
SHORT = ["duration=2h", "timeline[0].at=30m", "timeline[1].at=60m", "timeline[2].at=90m"]


def hpa_target(pct: int) -> list[str]:
    """Overrides setting the CPU target utilisation of both HPAs of checkout.yaml."""
    path = "autoscaler.metrics[0].resource.target.averageUtilization"
    return [f"services.frontend.{path}={pct}", f"services.catalog.{path}={pct}"]


def _simulate(tmp: Path, name: str, overrides: list[str]) -> Path:
    from devopsim.api import simulate

    out = tmp / name
    simulate(EXAMPLES / "checkout.yaml", overrides=overrides).write(out)
    return out


@pytest.fixture(scope="session")
def checkout_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder (with report.html) of two hours of checkout."""
    return _simulate(tmp_path_factory.mktemp("runs"), "checkout", SHORT)


@pytest.fixture(scope="session")
def hpa_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """checkout for two hours with HPA CPU targets of 40 % (A) and 85 % (B)."""
    tmp = tmp_path_factory.mktemp("hpa")
    return _simulate(tmp, "target40", [*SHORT, *hpa_target(40)]), _simulate(
        tmp, "target85", [*SHORT, *hpa_target(85)]
    )


def _chromium_missing(why: str) -> None:
    if os.environ.get("DEVOPSIM_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"DEVOPSIM_REQUIRE_CHROMIUM=1 but {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists():
        _chromium_missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _chromium_missing("the playwright package is not installed")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def save_artifact(path: Path) -> None:
    """Copy a test artifact (screenshot, page) to $DEVOPSIM_ARTIFACTS when it is set."""
    dest = os.environ.get("DEVOPSIM_ARTIFACTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(dest) / path.name)
