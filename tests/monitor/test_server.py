"""The monitor extension inside a real server: feedback, drift alerts to a webhook, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from scaledl.config.monitor import DriftConfig, MonitorConfig
from scaledl.package import open_package
from scaledl.preprocess import apply_preprocessing
from tests.monitor.conftest import noisy
from tests.monitor.server import Receiver, Running, monitored_server, wait_for, webhook_receiver

MODEL = "digits-quick"


@pytest.fixture
def live(digits_package: Path, tmp_path: Path) -> Iterator[tuple[Running, Receiver]]:
    with webhook_receiver() as receiver:
        config = MonitorConfig(
            window=120,
            check_interval_s=3600,
            fire_after=1,
            clear_after=1,
            # alpha 0.001: the clean windows must not alarm on any machine's weights
            drift=DriftConfig(seed=0, permutations=99, alpha=0.001),
            webhook_url=receiver.url,
        )
        with monitored_server(digits_package, tmp_path, config) as running:
            yield running, receiver


def _prep(package: Path, raw: np.ndarray) -> np.ndarray:
    return apply_preprocessing(raw, open_package(package).preprocessing)


def test_feedback_by_request_id_and_by_inputs_gives_live_accuracy(
    live: tuple[Running, Receiver],
    digits_package: Path,
    digits_heldout: tuple[np.ndarray, np.ndarray],
) -> None:
    srv, _ = live
    raw, y = digits_heldout
    x = _prep(digits_package, raw[:40])
    predicted = []
    for i in range(0, 40, 4):
        response = srv.infer(MODEL, x[i : i + 4], f"req-{i}")
        assert response.status_code == 200, response.text
        predicted.extend(np.asarray(response.json()["outputs"][0]["data"]).reshape(4, -1).argmax(1))
    url = f"{srv.url}/v2/models/{MODEL}/feedback"
    ext = srv.extension
    wait_for(
        lambda: all(f"req-{i}" in ext.monitor_for(MODEL, None).pending for i in range(0, 40, 4))
    )
    for i in range(0, 40, 4):
        body = {"id": f"req-{i}", "labels": [int(v) for v in y[i : i + 4]]}
        response = httpx.post(url, json=body, headers=srv.headers())
        assert response.status_code == 200, response.text
    expected = float(np.mean(np.asarray(predicted) == y[:40]))
    assert response.json()["versions"][0]["accuracy"] == pytest.approx(expected)
    assert response.json()["versions"][0]["labels"] == 40
    # By inputs: the server predicts them itself; labels by class name work too.
    body = {"inputs": raw[40:50].tolist(), "labels": [str(int(v)) for v in y[40:50]]}
    response = httpx.post(url, json=body, headers=srv.headers())
    assert response.status_code == 200 and response.json()["versions"][0]["labels"] == 50
    # Mistakes: unknown id (404), out-of-range label (400), no key (401), both id and inputs.
    again = httpx.post(url, json={"id": "req-0", "label": 1}, headers=srv.headers())
    assert again.status_code == 404 and "req-0" in again.json()["error"]
    srv.infer(MODEL, x[:1], "one")
    wait_for(lambda: "one" in ext.monitor_for(MODEL, None).pending)
    bad = httpx.post(url, json={"id": "one", "label": 12}, headers=srv.headers())
    assert bad.status_code == 400 and "out of range" in bad.json()["error"]
    assert httpx.post(url, json={"id": "one", "label": 1}).status_code == 401
    both = httpx.post(url, json={"id": "one", "inputs": [[0]], "label": 1}, headers=srv.headers())
    assert both.status_code == 400
    status = httpx.get(f"{srv.url}/v2/models/{MODEL}/monitor", headers=srv.headers()).json()
    assert status["versions"][0]["accuracy"]["labels"] == 50


def test_drift_alert_fires_once_to_the_webhook_and_shows_in_metrics(
    live: tuple[Running, Receiver],
    digits_package: Path,
    digits_raw: tuple[np.ndarray, np.ndarray],
    digits_heldout: tuple[np.ndarray, np.ndarray],
) -> None:
    srv, receiver = live
    clean = _prep(digits_package, digits_heldout[0][:240])
    for i in range(0, 240, 20):  # two clean windows: checks run, nothing fires
        assert srv.infer(MODEL, clean[i : i + 20], f"c{i}").status_code == 200
    monitor = srv.extension.monitor_for(MODEL, None)
    wait_for(lambda: len(monitor.checks.list()) == 2)
    assert not receiver.received and not any(c["drift"] for c in monitor.checks.list())
    shifted = _prep(digits_package, noisy(digits_raw[0][:360]))
    for i in range(0, 360, 20):  # three drifting windows: one alert, not three
        srv.infer(MODEL, shifted[i : i + 20], f"s{i}")
    wait_for(lambda: len(monitor.checks.list()) == 5)
    wait_for(lambda: receiver.received)
    assert [c["drift"] for c in monitor.checks.list()] == [False, False, True, True, True]
    assert len(receiver.received) == 1
    alert = receiver.received[0]
    assert alert["kind"] == "drift" and alert["status"] == "firing" and alert["model"] == MODEL
    assert alert["value"] < 0.001 and alert["details"]["tests"]["ks_pca"] < 0.001
    text = httpx.get(f"{srv.url}/metrics", headers=srv.headers(admin=True)).text
    assert f'scaledl_monitor_alert_active{{kind="drift",model="{MODEL}",version="1"}} 1.0' in text
    assert "scaledl_monitor_drift_p_value{" in text and 'test="ks_pca"' in text
    assert f'scaledl_monitor_window_fill{{model="{MODEL}",version="1"}} 1.0' in text
    assert "scaledl_monitor_last_check_timestamp_seconds{" in text
    assert 'scaledl_monitor_webhook_deliveries_total{result="delivered"} 1.0' in text
    # A manual check (admin only) on the same drifting window: still no second webhook.
    check_url = f"{srv.url}/v2/models/{MODEL}/monitor/check"
    assert httpx.post(check_url, headers=srv.headers()).status_code == 403
    manual = httpx.post(check_url, headers=srv.headers(admin=True), timeout=30).json()
    assert manual["checks"][0]["drift"] is True
    assert len(receiver.received) == 1
