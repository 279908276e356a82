"""Bad V2 requests get one clear 4xx naming the input: the protocol, tested in-process.

The server runs in this process as an ASGI app with its lifespan (models loaded as
`scaledl serve` loads them), so no socket is involved; what needs a real connection (bodies
over the size cap while streaming, garbage bytes, a full queue, TLS) stays in
`test_bad_input.py` against a real server process.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serve.helpers import binary_request
from tests.serve.test_bad_input import INFER, expect_error, good
from tests.v2 import infer_body


@pytest.fixture(scope="module")
def client(serve_repo: Path, api_keys: dict[str, str]) -> Iterator[httpx.Client]:
    """The test server's repository and keys, served in-process (lifespan included)."""
    from starlette.testclient import TestClient

    from scaledl.serve.app import create_app
    from scaledl.serve.settings import ServeSettings

    app = create_app(ServeSettings(source=serve_repo, api_keys=Path(api_keys["file"])))
    headers = {"Authorization": f"Bearer {api_keys['infer']}"}
    with TestClient(app, headers=headers) as c:
        yield c


def test_malformed_json_and_wrong_structure(client: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    expect_error(client.post(INFER, content=b'{"inputs": [', headers=headers), 400, "JSON")
    expect_error(client.post(INFER, content=b"[1, 2]", headers=headers), 400, "inputs")
    expect_error(client.post(INFER, json={"inputs": []}), 400, "inputs")
    expect_error(client.post(INFER, json={"inputs": [{"name": "input"}]}), 400, "datatype")
    bad = good()
    bad["inputs"][0]["data"] = [[1.0, 2.0], [3.0]]  # type: ignore[index]
    expect_error(client.post(INFER, json=bad), 400, "input")
    bad = good()
    bad["inputs"][0]["data"] = ["a"] * 64  # type: ignore[index]
    expect_error(client.post(INFER, json=bad), 400, "numbers")


def test_wrong_content_type(client: httpx.Client) -> None:
    body = json.dumps(good()).encode()
    response = client.post(INFER, content=body, headers={"Content-Type": "multipart/form-data"})
    expect_error(response, 415, "Content-Type")
    response = client.post(
        "/v2/models/digits/predict", content=b"abc", headers={"Content-Type": "text/csv"}
    )
    expect_error(response, 415, "predict")
    response = client.post(
        "/v2/models/digits/predict", content=b"not an image", headers={"Content-Type": "image/png"}
    )
    expect_error(response, 400, "image")


def test_gzip_body_is_accepted(client: httpx.Client) -> None:
    body = gzip.compress(json.dumps(good()).encode())
    response = client.post(INFER, content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    response = client.post(INFER, content=body, headers={"Content-Encoding": "br"})
    expect_error(response, 415, "Content-Encoding")


def test_binary_header_lengths_that_lie(client: httpx.Client) -> None:
    x = np.zeros((1, 1, 8, 8), np.float32)
    body, headers = binary_request({"input": x}, {"input": "FP32"})
    size = int(headers["Inference-Header-Content-Length"])
    for lie, words in [
        (str(len(body) + 10), ("Inference-Header-Content-Length",)),
        ("-3", ("Inference-Header-Content-Length",)),
        ("12abc", ("not an integer",)),
        (str(size - 5), ("JSON",)),
    ]:
        response = client.post(
            INFER, content=body, headers={**headers, "Inference-Header-Content-Length": lie}
        )
        expect_error(response, 400, *words)
    # binary_data_size larger than the bytes sent, and extra bytes nobody declared
    expect_error(client.post(INFER, content=body[:-8], headers=headers), 400, "past the end")
    expect_error(
        client.post(INFER, content=body + b"\0" * 8, headers=headers), 400, "after the binary"
    )
    doc = json.loads(body[:size])
    doc["inputs"][0]["parameters"]["binary_data_size"] = 100
    head = json.dumps(doc).encode()
    response = client.post(
        INFER,
        content=head + x.tobytes()[:100],
        headers={**headers, "Inference-Header-Content-Length": str(len(head))},
    )
    expect_error(response, 400, "'input'", "256")


def test_shape_datatype_and_value_checks(client: httpx.Client) -> None:
    bad = good()
    bad["inputs"][0]["shape"] = [1, 1, 8, 9]  # type: ignore[index]
    expect_error(client.post(INFER, json=bad), 400, "'input'", "72")
    x = np.zeros((1, 1, 4, 16), np.float32)
    expect_error(client.post(INFER, json=infer_body(x)), 400, "'input'", "shape")
    x = np.zeros((1, 64), np.float32)
    expect_error(client.post(INFER, json=infer_body(x)), 400, "'input'", "shape")
    bad = good()
    bad["inputs"][0]["datatype"] = "FP64"  # type: ignore[index]
    expect_error(client.post(INFER, json=bad), 400, "'input'", "FP32")
    bad = good()
    bad["inputs"][0]["name"] = "pixels"  # type: ignore[index]
    expect_error(client.post(INFER, json=bad), 400, "pixels")
    x = np.zeros((1, 1, 8, 8), np.float32)
    x[0, 0, 3, 3] = np.nan
    body, headers = binary_request({"input": x}, {"input": "FP32"})
    expect_error(client.post(INFER, content=body, headers=headers), 400, "'input'", "NaN")
    x[0, 0, 3, 3] = np.inf
    body, headers = binary_request({"input": x}, {"input": "FP32"})
    expect_error(client.post(INFER, content=body, headers=headers), 400, "NaN or Inf")
    bad = good()
    bad["outputs"] = [{"name": "logits"}]
    expect_error(client.post(INFER, json=bad), 400, "logits")
    response = client.post("/v2/models/digits/predict", json=[[1.0] * 63])
    expect_error(response, 400, "64")


def test_unknown_model_and_version(client: httpx.Client) -> None:
    expect_error(client.post("/v2/models/nope/infer", json=good()), 404, "nope")
    expect_error(client.post("/v2/models/digits/versions/9/infer", json=good()), 404, "9")
    expect_error(client.get("/v2/models/nope"), 404, "nope")
    expect_error(client.get("/v2/models/digits/versions/9"), 404, "9")
    expect_error(client.get("/v2/no/such/route"), 404)
