"""Versions in production: hot swap under load, canary split, shadow, promote and roll back."""

from __future__ import annotations

import asyncio
import collections

import httpx
import numpy as np
import pytest

from tests.conftest import run_cli
from tests.serve.helpers import ServerProcess
from tests.v2 import infer_body
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
X = np.random.default_rng(5).normal(size=(1, 1, 8, 8)).astype(np.float32)


async def load_loop(
    url: str,
    key: str,
    model: str,
    stop: asyncio.Event,
    concurrency: int = 8,
    max_requests: int = 4000,
) -> collections.Counter[tuple[int, str]]:
    """Bounded concurrent load: (status, version) counts until `stop` or `max_requests`."""
    seen: collections.Counter[tuple[int, str]] = collections.Counter()
    body = infer_body(X)
    sent = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while not stop.is_set() and sent < max_requests:
            sent += 1
            response = await client.post(f"/v2/models/{model}/infer", json=body)
            version = (
                response.json().get("model_version", "") if response.status_code == 200 else ""
            )
            seen[(response.status_code, version)] += 1

    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return seen


def test_hot_swap_under_load_has_zero_failures(
    server: ServerProcess, api_keys: dict[str, str]
) -> None:
    async def scenario() -> collections.Counter[tuple[int, str]]:
        stop = asyncio.Event()
        load = asyncio.create_task(load_loop(server.url, api_keys["infer"], "swap", stop))
        headers = {"X-API-Key": api_keys["admin"]}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as admin:
            await asyncio.sleep(0.5)
            steps = [
                ("/v2/repository/models/swap/load", {"parameters": {"version": "1"}}),
                ("/v2/repository/models/swap/load", {"parameters": {"version": "2"}}),
                ("/v2/repository/models/swap/load", {"parameters": {"version": "1"}}),
                ("/v2/admin/models/swap/policy", {"policy": "latest"}),
            ]
            for path, body in steps:
                response = await admin.post(path, json=body)
                assert response.status_code == 200, response.text
                await asyncio.sleep(0.3)
            status = (await admin.get("/v2/admin/models/swap")).json()
        stop.set()
        seen = await load
        assert status["routing"]["primary"] == "2" and status["routing"]["policy"] == "latest"
        return seen

    seen = asyncio.run(scenario())
    statuses = collections.Counter(status for status, _ in seen.elements())
    assert set(statuses) == {200}, seen
    assert {version for _, version in seen} == {"1", "2"}, seen
    assert sum(seen.values()) > 50
    server.wait_log(lambda line: line.get("msg") == "unloaded model swap version 1")


def test_canary_split_follows_the_weight(admin: httpx.Client, client: httpx.Client) -> None:
    response = admin.post("/v2/admin/models/rollout/canary", json={"version": "2", "weight": 0.25})
    assert response.status_code == 200, response.text
    assert response.json()["routing"]["canary"] == "2"
    n = 400
    counts = collections.Counter(
        client.post("/v2/models/rollout/infer", json=infer_body(X)).json()["model_version"]
        for _ in range(n)
    )
    # binomial(400, 0.25): mean 100, sd 8.7 — a ±5 sd band fails only if the split is wrong
    assert set(counts) <= {"1", "2"}
    assert 57 <= counts["2"] <= 143, counts
    response = admin.post("/v2/admin/models/rollout/rollback")
    assert response.status_code == 200 and response.json()["routing"]["canary"] is None
    versions = {
        client.post("/v2/models/rollout/infer", json=infer_body(X)).json()["model_version"]
        for _ in range(30)
    }
    assert versions == {"1"}


def test_shadow_is_compared_never_returned(admin: httpx.Client, client: httpx.Client) -> None:
    primary = client.post("/v2/models/rollout/infer", json=infer_body(X)).json()["outputs"][0]
    response = admin.post("/v2/admin/models/rollout/shadow", json={"version": "3"})
    assert response.status_code == 200, response.text
    ids = []
    for i in range(40):
        doc = client.post("/v2/models/rollout/infer", json=infer_body(X, id=f"sh-{i}")).json()
        assert doc["model_version"] == "1"
        assert doc["outputs"][0]["data"] == primary["data"]  # version 3 answers -x: never seen
        ids.append(doc["id"])

    def shadow_after_40() -> dict:
        shadow = admin.get("/v2/admin/models/rollout").json()["shadow"]
        return shadow if shadow["compared"] >= 40 else {}

    shadow = wait_until(shadow_after_40, timeout=10, what="40 shadow comparisons")
    assert shadow["version"] == "3" and shadow["compared"] >= 40
    assert shadow["disagreements"] >= 40 and shadow["agreement"] == 0.0
    assert shadow["mean_max_abs_diff"] > 0
    records = admin.get("/v2/recorder").json()["records"]
    shadow_ids = {
        r["request_id"] for r in records if r["model"] == "rollout" and r["version"] == "3"
    }
    assert set(ids) <= shadow_ids
    metrics = client.get("/metrics").text
    assert 'scaledl_shadow_requests_total{model="rollout",version="3"}' in metrics
    # a /predict request's shadow record carries the raw rows, as the primary's does
    rid = client.post("/v2/models/rollout/predict", json=[[3.0] * 64]).json()["id"]

    def raw_shapes_of_both() -> dict[str, object]:
        records = admin.get("/v2/recorder").json()["records"]
        shapes = {r["version"]: r["raw_shape"] for r in records if r["request_id"] == rid}
        return shapes if len(shapes) == 2 else {}

    raw_shapes = wait_until(raw_shapes_of_both, timeout=10, what="both versions' records")
    assert raw_shapes == {"1": [1, 1, 8, 8], "3": [1, 1, 8, 8]}
    assert admin.delete("/v2/admin/models/rollout/shadow").json()["shadow"] is None


def test_promote_and_roll_back_from_the_cli(
    server: ServerProcess, api_keys: dict[str, str], client: httpx.Client
) -> None:
    env = {"SCALEDL_API_KEY": api_keys["admin"]}
    url = ["--url", server.url]
    result = run_cli(
        "models", "canary", "rollout", "--version", "2", "--weight", "0.5", *url, env=env
    )
    assert result.returncode == 0, result.stderr
    result = run_cli("models", "promote", "rollout", *url, env=env)
    assert result.returncode == 0, result.stderr
    assert '"primary": "2"' in result.stdout and '"previous": "1"' in result.stdout
    versions = {
        client.post("/v2/models/rollout/infer", json=infer_body(X)).json()["model_version"]
        for _ in range(20)
    }
    assert versions == {"2"}
    result = run_cli("models", "rollback", "rollout", *url, env=env)
    assert result.returncode == 0, result.stderr
    assert (
        client.post("/v2/models/rollout/infer", json=infer_body(X)).json()["model_version"] == "1"
    )
    result = run_cli("models", "rollback", "rollout", *url, env=env)
    assert result.returncode == 2 and "nothing to roll back" in result.stderr
    result = run_cli(
        "models", "promote", "rollout", *url, env={"SCALEDL_API_KEY": api_keys["infer"]}
    )
    assert result.returncode == 2 and "403" in result.stderr
    result = run_cli("models", "index", *url, env=env)
    assert result.returncode == 0 and '"UNAVAILABLE"' in result.stdout


def test_unload_and_load_again(admin: httpx.Client, client: httpx.Client) -> None:
    response = admin.post("/v2/repository/models/swap/unload")
    assert response.status_code == 200, response.text
    assert client.post("/v2/models/swap/infer", json=infer_body(X)).status_code == 404
    assert client.get("/v2/models/swap/ready").status_code == 404
    response = admin.post("/v2/repository/models/swap/load")
    assert response.status_code == 200 and response.json()["routing"]["primary"] == "2"
    assert client.post("/v2/models/swap/infer", json=infer_body(X)).status_code == 200
    assert admin.post("/v2/repository/models/nope/load").status_code == 404
    conflict = admin.post(
        "/v2/repository/models/swap/unload", json={"parameters": {"version": "2"}}
    )
    assert conflict.status_code == 409 and "primary" in conflict.json()["error"]
    records = admin.get("/v2/recorder").json()
    assert ["swap", "2"] in records["unloaded"] and ["swap", "2", "digits-quick"] in records[
        "loaded"
    ]
