"""The extension point, exercised by a tiny real extension (tests/serve/ext_sample.py)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

from scaledl.errors import UsageError
from scaledl.serve.extensions import (
    EXTENSION_FACTORIES,
    ServerExtension,
    build_extension,
    register_extension,
)
from tests.serve.ext_sample import RecorderExtension
from tests.v2 import infer_body


def wait_records(admin: httpx.Client, predicate: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = [r for r in admin.get("/v2/recorder").json()["records"] if predicate(r)]
        if records:
            return records
        time.sleep(0.05)
    raise AssertionError("no matching inference record")


@pytest.mark.e2e
def test_records_hold_this_requests_tensors(client: httpx.Client, admin: httpx.Client) -> None:
    x = np.random.default_rng(6).normal(size=(2, 1, 8, 8)).astype(np.float32)
    doc = client.post("/v2/models/digits/infer", json=infer_body(x, id="ext-1")).json()
    (record,) = wait_records(admin, lambda r: r["request_id"] == "ext-1")
    assert record["model"] == "digits" and record["version"] == "2"
    assert record["input_shape"] == [2, 1, 8, 8] and record["output_shape"] == [2, 10]
    assert record["output_sum"] == pytest.approx(sum(doc["outputs"][0]["data"]), abs=1e-3)
    assert record["latency_s"] > 0 and record["received_at"] > time.time() - 600
    assert record["raw_shape"] is None
    response = client.post("/v2/models/digits/predict", json=[[3.0] * 64])
    rid = response.json()["id"]
    (record,) = wait_records(admin, lambda r: r["request_id"] == rid)
    assert record["raw_shape"] == [1, 1, 8, 8] and record["input_shape"] == [1, 1, 8, 8]
    loaded = admin.get("/v2/recorder").json()["loaded"]
    assert ["digits", "2", "digits-quick"] in loaded
    assert "recorder_records_total" in client.get("/metrics").text
    assert httpx.get(str(client.base_url) + "/v2/recorder").status_code == 401


def test_registry_builds_extensions_by_name() -> None:
    register_extension("recorder-test", "tests.serve.ext_sample:create")
    try:
        extension = build_extension("recorder-test")
        assert isinstance(extension, RecorderExtension)
        assert isinstance(extension, ServerExtension)
        assert isinstance(build_extension("tests.serve.ext_sample:create"), RecorderExtension)
        with pytest.raises(UsageError, match="unknown"):
            build_extension("no-such-extension")
        with pytest.raises(UsageError, match="cannot import"):
            build_extension("tests.serve.nowhere:create")
    finally:
        EXTENSION_FACTORIES.pop("recorder-test", None)
