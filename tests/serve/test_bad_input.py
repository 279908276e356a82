"""Every bad request gets a clear 4xx and the server keeps serving; auth and scopes."""

from __future__ import annotations

import gzip
import json

import httpx
import numpy as np
import pytest

from tests.serve.helpers import ServerProcess, binary_request, json_request

pytestmark = pytest.mark.e2e
INFER = "/v2/models/digits/infer"


def good(x_batch: int = 1) -> dict[str, object]:
    return json_request(np.zeros((x_batch, 1, 8, 8), np.float32))


def expect_error(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    return str(message)


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
    expect_error(client.post(INFER, json=json_request(x)), 400, "'input'", "shape")
    x = np.zeros((1, 64), np.float32)
    expect_error(client.post(INFER, json=json_request(x)), 400, "'input'", "shape")
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


def test_oversize_body_is_413(client: httpx.Client) -> None:
    body = b"{" + b" " * (16 * 1024 * 1024 + 10) + b"}"
    response = client.post(INFER, content=body, headers={"Content-Type": "application/json"})
    expect_error(response, 413, "limit")

    def chunks():  # no Content-Length: the cap holds while streaming too
        for _ in range(20):
            yield b" " * (1024 * 1024)

    response = client.post(INFER, content=chunks(), headers={"Content-Type": "application/json"})
    expect_error(response, 413, "limit")
    assert client.post(INFER, json=good()).status_code == 200


def test_auth_missing_invalid_and_wrong_scope(
    server: ServerProcess, api_keys: dict[str, str]
) -> None:
    url = server.url
    body = good()
    response = httpx.post(url + INFER, json=body)
    expect_error(response, 401, "API key")
    assert response.headers["www-authenticate"].startswith("Bearer")
    expect_error(
        httpx.post(url + INFER, json=body, headers={"X-API-Key": "sdk_nope"}), 401, "not valid"
    )
    bad_bearer = {"Authorization": "Bearer " + api_keys["infer"] + "x"}
    expect_error(httpx.post(url + INFER, json=body, headers=bad_bearer), 401)
    expect_error(httpx.get(url + "/v2/models/digits"), 401)
    expect_error(httpx.get(url + "/metrics"), 401)
    infer_key = {"X-API-Key": api_keys["infer"]}
    assert httpx.post(url + INFER, json=body, headers=infer_key).status_code == 200
    expect_error(httpx.post(url + "/v2/repository/index", headers=infer_key), 403, "admin")
    expect_error(httpx.get(url + "/v2/admin/models/digits", headers=infer_key), 403, "admin")
    admin_key = {"Authorization": "Bearer " + api_keys["admin"]}
    assert httpx.post(url + INFER, json=body, headers=admin_key).status_code == 200
    assert httpx.post(url + "/v2/repository/index", headers=admin_key).status_code == 200
    metrics = httpx.get(url + "/metrics", headers=admin_key).text
    assert 'scaledl_auth_failures_total{code="401"}' in metrics


def test_corrupt_packages_refused_others_served(admin: httpx.Client, client: httpx.Client) -> None:
    index = admin.post("/v2/repository/index").json()
    rows = {(r["name"], r["version"]): r for r in index}
    assert rows[("broken", "1")]["state"] == "UNAVAILABLE"
    assert "checksum" in rows[("broken", "1")]["reason"]
    assert rows[("digits", "3")]["state"] == "UNAVAILABLE"
    assert rows[("digits", "2")]["state"] == "READY" and rows[("digits", "2")]["role"] == "primary"
    expect_error(client.post("/v2/models/broken/infer", json=good()), 404, "broken")
    # loading a corrupt version explicitly is refused with the reason; the old one keeps serving
    response = admin.post(
        "/v2/repository/models/digits/load", json={"parameters": {"version": "3"}}
    )
    expect_error(response, 422, "checksum")
    assert client.post(INFER, json=good()).json()["model_version"] == "2"
    ready = admin.post("/v2/repository/index", json={"ready": True}).json()
    assert all(r["state"] == "READY" for r in ready)


def test_server_survives_garbage(server: ServerProcess, client: httpx.Client) -> None:
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: zz\r\n\r\n\x00\xff")
        sock.settimeout(5)
        assert sock.recv(100).startswith(b"HTTP/1.1 4")
    assert client.post(INFER, json=good()).status_code == 200


def test_full_queue_is_429_and_slow_answers_504(client: httpx.Client) -> None:
    import asyncio

    async def two_at_once() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(client.base_url), headers=client.headers) as c:
            first = asyncio.create_task(c.post("/v2/models/limits/infer", json=good()))
            await asyncio.sleep(0.1)
            second = await c.post("/v2/models/limits/infer", json=good())
            return [await first, second]

    timed_out, refused = asyncio.run(two_at_once())
    expect_error(refused, 429, "pending")
    assert refused.headers["retry-after"] == "1"
    expect_error(timed_out, 504, "0.3 s")
    config = client.get("/v2/models/limits/config").json()
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 1_000_000


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    origin = {"Origin": "https://evil.example"}
    response = client.post(INFER, json=good(), headers=origin)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(INFER, headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
