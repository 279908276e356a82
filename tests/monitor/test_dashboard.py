"""The dashboard in a real headless Chromium: what a person sees, plus a screenshot artifact."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from scaledl.monitor.config import DriftConfig, MonitorConfig
from scaledl.monitor.dashboard import render_dashboard
from scaledl.monitor.routes import dashboard_payload
from scaledl.package import open_package
from scaledl.preprocess import apply_preprocessing
from tests.monitor.conftest import noisy
from tests.monitor.server import Running, monitored_server, wait_for

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODEL = "digits-quick"

pytestmark = pytest.mark.slow


@pytest.fixture
def busy_server(
    digits_package: Path,
    tmp_path: Path,
    digits_raw: tuple[np.ndarray, np.ndarray],
    digits_heldout: tuple[np.ndarray, np.ndarray],
) -> Iterator[Running]:
    """A server that has seen clean traffic, then drifting traffic, and some feedback."""
    config = MonitorConfig(
        window=100,
        check_interval_s=3600,
        fire_after=1,
        bucket_seconds=0.5,
        drift=DriftConfig(seed=0, permutations=99),
    )
    prep = open_package(digits_package).preprocessing
    with monitored_server(digits_package, tmp_path, config) as srv:
        clean = apply_preprocessing(digits_heldout[0][:300], prep)
        shifted = apply_preprocessing(noisy(digits_raw[0][:200]), prep)
        for i in range(0, 300, 10):
            srv.infer(MODEL, clean[i : i + 10], f"c{i}")
        for i in range(0, 200, 10):
            srv.infer(MODEL, shifted[i : i + 10], f"s{i}")
        monitor = srv.extension.monitor_for(MODEL, None)
        wait_for(lambda: len(monitor.checks.list()) == 5 and monitor.drift_alarm.active)
        url = f"{srv.url}/v2/models/{MODEL}/feedback"
        for i in range(0, 100, 10):
            labels = [int(v) for v in digits_heldout[1][i : i + 10]]
            httpx.post(url, json={"id": f"c{i}", "labels": labels}, headers=srv.headers())
        yield srv


def test_dashboard_renders_charts_in_chromium(busy_server: Running) -> None:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (`make chromium` installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    srv = busy_server
    assert httpx.get(f"{srv.url}/dashboard").status_code == 401  # same keys as the API
    ARTIFACTS.mkdir(exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(
            viewport={"width": 1280, "height": 1000}, extra_http_headers=srv.headers()
        )
        page = context.new_page()
        page.on("request", lambda r: requested.append(r.url))
        page.goto(f"{srv.url}/dashboard")
        page.wait_for_selector("body[data-rendered='1']")
        card = page.locator(f"section[data-model='{MODEL}']")
        assert card.count() == 1
        assert card.locator(".badge").inner_text() == "DRIFT"
        assert card.locator(".badge").get_attribute("data-status") == "alert"
        stats = card.locator(".stats").inner_text()
        assert "live accuracy" in stats and "%" in stats and "(100)" in stats
        titles = card.locator(".chart h3").all_inner_texts()
        assert titles == [
            "Traffic (requests/s)",
            "Latency (ms)",
            "Drift p-values (log scale)",
            "Live accuracy",
            "Predicted-class mix",
        ]
        drift_chart = card.locator("[data-chart='Drift p-values (log scale)']")
        lines = drift_chart.locator("polyline")
        assert lines.count() == 5  # four tests + overall
        assert drift_chart.locator("circle").count() == 5 * 5  # five checks each
        assert "alpha 0.05" in drift_chart.inner_text()
        assert card.locator("[data-chart='Predicted-class mix'] rect").count() > 10
        assert card.locator("[data-chart='Traffic (requests/s)'] polyline").count() == 1
        assert card.locator("[data-chart='Live accuracy'] polyline").count() == 1
        assert "firing" in card.locator("table").inner_text()
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        # Labels come from package files: ones that open an HTML comment and a script, or
        # close the script element, must neither break the page nor run.
        payload = dashboard_payload(srv.extension)
        hostile = ["<!--<script>", "</script><img src=x onerror=alert(1)>", "a&b<!--"]
        payload["models"][0]["labels"] = hostile + [str(i) for i in range(3, 10)]
        dialogs: list[str] = []
        other = context.new_page()
        other.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        other.set_content(render_dashboard(payload))
        other.wait_for_selector("body[data-rendered='1']", timeout=10_000)
        mix = other.locator("[data-chart='Predicted-class mix']").inner_text()
        assert all(label in mix for label in hostile), mix
        assert other.locator("img").count() == 0 and not dialogs
        # The page refreshes itself from /dashboard/data with the same key.
        with page.expect_response(lambda r: r.url.endswith("/dashboard/data")) as info:
            page.wait_for_timeout(5500)
        assert info.value.status == 200
        browser.close()
    assert requested and all(u.startswith(srv.url) for u in requested)  # nothing external
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
