"""Every bad request gets a clear 4xx and the server keeps serving; auth and scopes."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.serve.helpers import ServerProcess
from tests.v2 import infer_body, metric_value
from tests.waiting import await_until

pytestmark = pytest.mark.e2e
INFER = "/v2/models/digits/infer"


def good(x_batch: int = 1) -> dict[str, object]:
    return infer_body(np.zeros((x_batch, 1, 8, 8), np.float32))


def expect_error(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    return str(message)


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

            async def one_pending() -> bool:
                text = (await c.get("/metrics")).text
                return metric_value(text, "scaledl_queue_depth", model="limits") >= 1

            await await_until(one_pending, timeout=5, interval=0.01, what="the first to queue")
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
