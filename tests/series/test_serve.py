"""A served forecaster: forecasts in original units from raw look-back windows, bad series input,
feedback of realised values (live error) and drift checks on the window features."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from scaledl.config.monitor import DriftConfig, MonitorConfig
from scaledl.package import open_package
from tests.monitor.server import Running, monitored_server
from tests.series.conftest import COLUMNS, START, series_values

MODEL = "synthetic"


@pytest.fixture(scope="module")
def running(series_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    config = MonitorConfig(window=40, check_every=10_000, drift=DriftConfig(min_samples=20))
    with monitored_server(series_package, tmp_path_factory.mktemp("srv"), config) as server:
        yield server


def _rows(values: np.ndarray, start: int = 0) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(values):
        when = START + np.timedelta64(start + i, "h")
        out.append(
            {
                "date": str(when).replace("T", " "),
                **dict(zip(COLUMNS, map(float, row), strict=True)),
            }
        )
    return out


def _post(server: Running, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**server.headers(), **kwargs.pop("headers", {})}
    return httpx.post(
        f"{server.url}/v2/models/{MODEL}/{path}", headers=headers, timeout=30, **kwargs
    )


def test_predict_answers_in_original_units(running: Running, series_package: Path) -> None:
    from scaledl.evaluate import predict_raw

    history = series_values(900)[-60:]
    answer = _post(running, "predict", json={"rows": _rows(history[:50])})
    assert answer.status_code == 200, answer.text
    forecast = answer.json()["predictions"][0]
    assert forecast["horizon"] == 12 and list(forecast["forecast"]) == COLUMNS
    load = np.asarray(forecast["forecast"]["load"])
    expected = predict_raw(open_package(series_package), history[None, 2:50].astype(np.float32))
    np.testing.assert_allclose(load, expected[0, :, 0], rtol=1e-5)
    assert 850 < load.mean() < 1150  # kilowatts, not standard deviations
    # the same window as a V2 tensor [-1, lookback, features]
    x = history[None, 2:50].astype(np.float32)
    infer = running.infer(MODEL, x, "tensor-1")
    assert infer.status_code == 200
    output = infer.json()["outputs"][0]
    assert output["shape"] == [1, 12, 3]
    np.testing.assert_allclose(np.asarray(output["data"]).reshape(12, 3)[:, 0], load, rtol=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"rows": []}, 400, r"send a JSON list of raw rows.*\{\"rows\""),
        ({"rows": "x" * 10}, 400, r"send a JSON list of raw rows"),
        ({"rows": [{"price": 1.0}] * 3}, 400, "last 48 observations; got 3"),
        ("rows-missing-price", 400, r"rows\[47\]\.price: None is not a number"),
        ("rows-gap", 400, "is 7200 s; the model steps by 3600 s"),
        ("rows-unsorted", 400, "is not after"),
        ({"instances": [[[1.0, 2.0]]]}, 400, "each window is 48 steps × 3 values"),
        ({"instances": [[[1e39] * 3] * 48]}, 400, "NaN or Inf"),
    ],
)
def test_bad_series_input_is_a_400(running: Running, body: Any, status: int, message: str) -> None:
    rows = _rows(series_values(60)[:48])
    if body == "rows-missing-price":
        del rows[-1]["price"]
        body = {"rows": rows}
    elif body == "rows-gap":
        rows[20]["date"] = rows[21]["date"]
        rows = rows[:20] + rows[21:] + [{**rows[-1], "date": "2021-01-03 01:00:00"}]
        body = {"rows": rows[-48:]}
    elif body == "rows-unsorted":
        rows[10]["date"], rows[11]["date"] = rows[11]["date"], rows[10]["date"]
        body = {"rows": rows}
    answer = _post(running, "predict", json=body)
    assert answer.status_code == status, answer.text
    assert re.search(message, answer.json()["error"]), answer.json()["error"]


def test_predict_refuses_images(running: Running) -> None:
    answer = _post(
        running,
        "predict",
        content=b"\x89PNG",
        headers={"Content-Type": "image/png"},
    )
    assert answer.status_code == 415 and "application/json" in answer.json()["error"]


def test_feedback_of_realised_values_gives_the_live_error(running: Running) -> None:
    values = series_values(900)
    window, truth = values[-60:-12], values[-12:]
    answer = _post(running, "predict", json={"rows": _rows(window)})
    request_id = answer.headers["X-Request-ID"]
    wrong = _post(running, "feedback", json={"id": request_id, "values": [1.0, 2.0]})
    assert wrong.status_code == 400 and "forecast of 36 value" in wrong.json()["error"]
    labels = _post(running, "feedback", json={"id": request_id, "label": 1})
    assert labels.status_code == 400 and "regressor" in labels.json()["error"]
    good = _post(running, "feedback", json={"id": request_id, "values": truth.tolist()})
    assert good.status_code == 200, good.text
    error = good.json()["versions"][0]["error"]
    forecast = np.stack([answer.json()["predictions"][0]["forecast"][c] for c in COLUMNS], axis=1)
    spec = open_package(running.extension.packages[(MODEL, "1")].path).manifest.preprocessing
    expected = float((((forecast - truth) / np.asarray(spec.target_std)) ** 2).mean())
    assert error == pytest.approx(expected, rel=1e-4)
    again = _post(running, "feedback", json={"id": request_id, "values": truth.tolist()})
    assert again.status_code == 404
    status = httpx.get(
        f"{running.url}/v2/models/{MODEL}/monitor", headers=running.headers(), timeout=30
    ).json()["versions"][0]
    assert status["error"]["samples"] >= 1 and status["error"]["reference"] > 0
    board = httpx.get(f"{running.url}/dashboard/data", headers=running.headers(), timeout=30)
    (card,) = [m for m in board.json()["models"] if m["model"] == MODEL]
    assert card["error"]["value"] == pytest.approx(error, rel=1e-6)
    assert any("error" in point for point in card["accuracy_series"])


def test_drift_check_names_a_stuck_sensor(running: Running) -> None:
    values = series_values(900)
    start = 560  # windows from the validation period: the monitor's reference of normal

    def send(series: np.ndarray) -> None:
        seen = _status(running)["samples_seen"]
        windows = np.stack([series[start + i : start + i + 48] for i in range(40)])
        answer = running.infer(MODEL, windows.astype(np.float32), f"w-{seen}")
        assert answer.status_code == 200
        deadline = time.monotonic() + 30  # the extension records on its own thread
        while _status(running)["samples_seen"] < seen + 40:
            assert time.monotonic() < deadline, "the monitor never saw the windows"
            time.sleep(0.05)

    def check() -> dict[str, Any]:
        answer = httpx.post(
            f"{running.url}/v2/models/{MODEL}/monitor/check",
            headers=running.headers(admin=True),
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()["checks"][0]
        assert result["samples"] == 40
        return result

    send(values)
    normal = check()
    assert [t["name"] for t in normal["tests"]] == ["windows"]
    assert not normal["drift"], normal
    stuck = values.copy()
    stuck[start:, 1] = stuck[start, 1]  # the temperature sensor freezes
    send(stuck)
    frozen = check()
    assert frozen["drift"], frozen
    top = frozen["tests"][0]["top_features"][0]["feature"]
    assert top.startswith("temp."), frozen["tests"][0]["top_features"]


def _status(running: Running) -> dict[str, Any]:
    answer = httpx.get(
        f"{running.url}/v2/models/{MODEL}/monitor", headers=running.headers(), timeout=30
    )
    status: dict[str, Any] = answer.json()["versions"][0]
    return status
