"""Open Inference Protocol conformance against a real server process (JSON and binary)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from scaledl.package import open_package
from tests.serve.helpers import (
    ServerProcess,
    binary_request,
    parse_binary_response,
    types_inputs,
)
from tests.v2 import infer_body

pytestmark = pytest.mark.e2e


def reference(serve_repo: Path, model: str, version: str, x: np.ndarray) -> np.ndarray:
    from scaledl.export.runtime import create_session

    session = create_session(open_package(serve_repo / model / version).onnx_path, threads=1)
    return np.asarray(session.run(None, {"input": x})[0])


def test_health_is_open_and_true(server: ServerProcess) -> None:
    for path in ("/v2/health/live", "/v2/health/ready"):
        response = httpx.get(server.url + path)
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"]


def test_server_metadata_lists_extensions(client: httpx.Client) -> None:
    doc = client.get("/v2").json()
    assert doc["name"] == "scaledl"
    assert {"binary_tensor_data", "model_repository", "recorder"} <= set(doc["extensions"])


def test_model_metadata_ready_and_config(client: httpx.Client) -> None:
    meta = client.get("/v2/models/digits").json()
    assert meta["name"] == "digits" and meta["versions"] == ["2"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get("/v2/models/digits/versions/2").json()["inputs"] == meta["inputs"]
    assert client.get("/v2/models/digits/ready").status_code == 200
    assert client.get("/v2/models/digits/versions/2/ready").status_code == 200
    assert client.get("/v2/models/digits/versions/1/ready").status_code == 404
    config = client.get("/v2/models/digits/config").json()
    assert config["max_batch_size"] >= 1 and config["input"][0]["dims"] == [1, 8, 8]


def test_infer_json_matches_onnx_runtime(client: httpx.Client, serve_repo: Path) -> None:
    x = np.random.default_rng(1).normal(size=(3, 1, 8, 8)).astype(np.float32)
    response = client.post("/v2/models/digits/infer", json=infer_body(x, id="req-7"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["model_name"] == "digits" and doc["model_version"] == "2"
    assert doc["id"] == "req-7" and response.headers["x-request-id"] == "req-7"
    out = doc["outputs"][0]
    assert out["name"] == "output" and out["datatype"] == "FP32" and out["shape"] == [3, 10]
    got = np.asarray(out["data"], dtype=np.float32).reshape(3, 10)
    np.testing.assert_allclose(got, reference(serve_repo, "digits", "2", x), atol=1e-5)


def test_infer_binary_both_ways(client: httpx.Client, serve_repo: Path) -> None:
    x = np.random.default_rng(2).normal(size=(2, 1, 8, 8)).astype(np.float32)
    body, headers = binary_request({"input": x}, {"input": "FP32"})
    response = client.post("/v2/models/digits/versions/2/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    doc, arrays = parse_binary_response(response)
    assert doc["outputs"][0]["parameters"]["binary_data_size"] == 2 * 10 * 4
    assert len(doc["id"]) >= 16 and response.headers["x-request-id"] == doc["id"]
    np.testing.assert_allclose(arrays["output"], reference(serve_repo, "digits", "2", x), atol=1e-5)
    # binary input, JSON output (per-output parameter overrides the request default)
    body, headers = binary_request(
        {"input": x},
        {"input": "FP32"},
        outputs=[{"name": "output", "parameters": {"binary_data": False}}],
    )
    response = client.post("/v2/models/digits/infer", content=body, headers=headers)
    assert "inference-header-content-length" not in response.headers
    assert response.json()["outputs"][0]["shape"] == [2, 10]


def test_every_datatype_round_trips(client: httpx.Client) -> None:
    inputs = types_inputs()
    meta = client.get("/v2/models/types").json()
    datatypes = {t["name"]: t["datatype"] for t in meta["inputs"]}
    body, headers = binary_request(inputs, datatypes)
    response = client.post("/v2/models/types/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    _, arrays = parse_binary_response(response)
    for name, array in inputs.items():
        expected = ~array if name == "flag" else array
        assert arrays[name + "_out"].tolist() == expected.tolist(), name
    # the same through JSON (FP16 and BYTES included)
    doc = {
        "inputs": [
            {
                "name": n,
                "datatype": datatypes[n],
                "shape": list(a.shape),
                "data": [v.decode() for v in a.ravel()]
                if datatypes[n] == "BYTES"
                else a.ravel().tolist(),
            }
            for n, a in inputs.items()
        ]
    }
    response = client.post("/v2/models/types/infer", json=doc)
    assert response.status_code == 200, response.text
    outs = {o["name"]: o for o in response.json()["outputs"]}
    assert outs["text_out"]["data"] == [v.decode() for v in inputs["text"].ravel()]
    assert outs["i64_out"]["data"] == inputs["i64"].ravel().tolist()
    assert outs["flag_out"]["data"] == (~inputs["flag"]).ravel().tolist()
    np.testing.assert_allclose(outs["f16_out"]["data"], inputs["f16"].ravel().astype(np.float32))


def test_tritonclient_with_its_defaults(
    server: ServerProcess, api_keys: dict[str, str], serve_repo: Path
) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    url = server.url.removeprefix("http://")
    client = httpclient.InferenceServerClient(url)
    auth = {"Authorization": f"Bearer {api_keys['infer']}"}
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits", headers=dict(auth))
    meta = client.get_model_metadata("digits", headers=dict(auth))
    assert meta["inputs"][0]["shape"] == [-1, 1, 8, 8]
    x = np.random.default_rng(3).normal(size=(4, 1, 8, 8)).astype(np.float32)
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)  # default: binary input, binary outputs
    result = client.infer("digits", [tensor], headers=dict(auth), request_id="tc-1")
    assert result.get_response()["id"] == "tc-1"
    np.testing.assert_allclose(
        result.as_numpy("output"), reference(serve_repo, "digits", "2", x), atol=1e-5
    )
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=False)
    wanted = [httpclient.InferRequestedOutput("output", binary_data=False)]
    result = client.infer("digits", [tensor], outputs=wanted, headers=dict(auth), model_version="2")
    assert result.as_numpy("output").shape == (4, 10)
    client.close()


def test_predict_json_rows_and_image(client: httpx.Client, serve_repo: Path) -> None:
    from PIL import Image

    from scaledl.preprocess import apply_preprocessing

    pkg = open_package(serve_repo / "digits" / "2")
    rows = np.random.default_rng(4).integers(0, 17, size=(2, 64)).astype(np.float32)
    response = client.post("/v2/models/digits/predict", json={"instances": rows.tolist()})
    assert response.status_code == 200, response.text
    preds = response.json()["predictions"]
    x = apply_preprocessing(rows.reshape(2, 1, 8, 8), pkg.preprocessing)
    expected = reference(serve_repo, "digits", "2", x).argmax(1)
    assert [p["label"] for p in preds] == [pkg.labels[i] for i in expected]
    assert all(0 <= p["probability"] <= 1 and len(p["top"]) == 3 for p in preds)
    assert sum(t["probability"] for t in preds[0]["top"]) <= 1.0 + 1e-6
    buffer = io.BytesIO()
    Image.fromarray((rows[0].reshape(8, 8) * 15).astype(np.uint8)).save(buffer, format="PNG")
    response = client.post(
        "/v2/models/digits/predict?top=5",
        content=buffer.getvalue(),
        headers={"Content-Type": "image/png"},
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"][0]["top"]) == 5


def test_metrics_present(client: httpx.Client) -> None:
    x = np.zeros((1, 1, 8, 8), np.float32)
    assert client.post("/v2/models/digits/infer", json=infer_body(x)).status_code == 200
    text = client.get("/metrics").text
    for name in (
        "scaledl_requests_total",
        "scaledl_request_failures_total",
        "scaledl_request_duration_seconds_bucket",
        "scaledl_queue_duration_seconds",
        "scaledl_compute_duration_seconds",
        "scaledl_batch_size_bucket",
        "scaledl_queue_depth",
        "scaledl_inflight_requests",
        "scaledl_model_loaded",
        "scaledl_model_load_failures_total",
        "recorder_records_total",
    ):
        assert name in text, name
    assert 'scaledl_model_loaded{model="digits",version="2"} 1.0' in text
    assert 'scaledl_model_load_failures_total{model="broken",version="1"}' in text
    # recorded, not just declared: the request above waited in the queue of digits version 2
    waited = re.search(
        r'scaledl_queue_duration_seconds_count\{model="digits",version="2"\} (\S+)', text
    )
    assert waited is not None and float(waited.group(1)) >= 1, text
    assert 'scaledl_queue_depth{model="digits",version="2"} 0.0' in text


def test_logs_are_json_with_request_ids_and_no_payload(
    client: httpx.Client, server: ServerProcess
) -> None:
    secret = 12345.678
    x = np.full((1, 1, 8, 8), secret, np.float32)
    bad = infer_body(x)
    bad["inputs"][0]["shape"] = [1, 1, 8, 9]
    response = client.post("/v2/models/digits/infer", json=bad)
    assert response.status_code == 400
    rid = response.headers["x-request-id"]
    line = server.wait_log(lambda entry: entry.get("request_id") == rid)
    assert line["status"] == 400 and line["path"] == "/v2/models/digits/infer"
    lines = server.logs()
    assert all({"ts", "level", "logger", "msg"} <= set(entry) for entry in lines)
    assert "12345" not in server.log_text()
