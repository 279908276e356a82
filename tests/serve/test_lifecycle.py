"""Process life: graceful SIGTERM drain over TLS, several workers, signed packages only."""

from __future__ import annotations

import asyncio
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import run_cli
from tests.serve.helpers import ServerProcess, copy_package
from tests.v2 import infer_body, metric_value
from tests.waiting import await_until

pytestmark = pytest.mark.e2e
X = np.zeros((1, 1, 8, 8), np.float32)
GRPC_ANY = ["--grpc-port", "0"]


async def pending(client: httpx.AsyncClient, model: str, count: int) -> bool:
    """Are at least `count` requests to `model` pending (queued or computing)?"""
    text = (await client.get("/metrics")).text
    return metric_value(text, "scaledl_queue_depth", model=model) >= count


async def unready_status(client: httpx.AsyncClient, url: str) -> int:
    """The readiness answer's status once it is no longer 200 (else 0: keep waiting)."""
    status = (await client.get(url + "/v2/health/ready")).status_code
    return 0 if status == 200 else status


def self_signed(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_sigterm_drains_every_request_over_tls(digits_package: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    proc = ServerProcess(
        [
            str(digits_package),
            "--no-auth",
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(key),
            "--max-queue-delay-ms",
            "1500",
            "--max-batch-size",
            "64",
            "--shutdown-grace",
            "1",
        ]
    )
    tls = ssl.create_default_context(cafile=str(cert))
    proc.wait_ready(verify=tls)
    assert proc.url.startswith("https://")
    assert any("authentication is OFF" in line.get("msg", "") for line in proc.logs())

    async def scenario() -> tuple[list[int], int, int]:
        async with httpx.AsyncClient(base_url=proc.url, verify=tls, timeout=30) as client:
            name = "digits-quick"  # a single package is served under its manifest name
            requests = [
                asyncio.create_task(client.post(f"/v2/models/{name}/infer", json=infer_body(X)))
                for _ in range(24)
            ]
            # all 24 are queued, waiting for the 1.5 s batch window
            await await_until(lambda: pending(client, name, 24), what="24 queued requests")
            proc.proc.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient(verify=tls) as fresh:
                ready = await await_until(
                    lambda: unready_status(fresh, proc.url), timeout=5, what="readiness to fall"
                )
                live = (await fresh.get(proc.url + "/v2/health/live")).status_code
            responses = await asyncio.gather(*requests)
            return [r.status_code for r in responses], ready, live

    statuses, ready, live = asyncio.run(scenario())
    assert statuses == [200] * 24, statuses
    assert ready == 400 and live == 200  # readiness turned false at once, liveness did not
    assert proc.proc.wait(60) == 0
    assert any("every accepted request was answered" in line.get("msg", "") for line in proc.logs())


def test_sigterm_drains_every_grpc_call_over_tls(digits_package: Path, tmp_path: Path) -> None:
    """gRPC: readiness false at SIGTERM; after the grace new calls are refused, queued ones
    are still answered, and the server exits 0."""
    import grpc
    import tritonclient.grpc.aio as aioclient
    from tritonclient.utils import InferenceServerException

    cert, key = self_signed(tmp_path)
    args = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--grpc-port", "0"]
    # the queued calls wait 8 s for their batch: long enough for the 1 s grace plus fresh TLS
    # probes on a loaded machine, so the refusal is seen while they are still in flight
    args += ["--max-queue-delay-ms", "8000", "--max-batch-size", "64", "--shutdown-grace", "1"]
    proc = ServerProcess([str(digits_package), "--no-auth", *args])
    verify = ssl.create_default_context(cafile=str(cert))
    proc.wait_ready(verify=verify)
    target = proc.grpc_target
    tls = {"ssl": True, "root_certificates": str(cert)}

    async def refused_after_grace() -> tuple[bool, bool]:
        """Poll with fresh clients until a call is refused; was it UNAVAILABLE, in time?"""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            fresh = aioclient.InferenceServerClient(target, **tls)
            try:
                await fresh.is_server_live()
            except InferenceServerException as exc:
                return exc.status() == str(grpc.StatusCode.UNAVAILABLE), True
            finally:
                await fresh.close()
            await asyncio.sleep(0.05)
        return False, False

    async def scenario() -> tuple[list[str], bool, bool, bool, int]:
        client = aioclient.InferenceServerClient(target, **tls)
        item = aioclient.InferInput("input", [1, 1, 8, 8], "FP32")
        item.set_data_from_numpy(X)
        calls = [
            asyncio.ensure_future(client.infer("digits-quick", [item], client_timeout=60))
            for _ in range(24)
        ]
        async with httpx.AsyncClient(base_url=proc.url, verify=verify) as http:
            # all 24 are queued, waiting for the 8 s batch window
            await await_until(lambda: pending(http, "digits-quick", 24), what="24 queued calls")
        proc.proc.send_signal(signal.SIGTERM)

        async def not_ready() -> bool:
            return not await client.is_server_ready()

        ready = not await await_until(not_ready, timeout=5, what="readiness to fall")
        live = await client.is_server_live()
        unavailable, _ = await refused_after_grace()
        answered_before_refusal = sum(c.done() for c in calls)
        results = await asyncio.gather(*calls, return_exceptions=True)
        await client.close()
        shapes = [
            str(r.as_numpy("output").shape) if not isinstance(r, BaseException) else repr(r)
            for r in results
        ]
        return shapes, ready, live, unavailable, answered_before_refusal

    shapes, ready, live, unavailable, early = asyncio.run(scenario())
    assert shapes == ["(1, 10)"] * 24, shapes
    assert not ready and live  # readiness turned false at once, liveness did not
    assert unavailable, "no new call was refused as UNAVAILABLE after the grace"
    assert early == 0, f"{early} queued calls were answered before the refusal was seen"
    assert proc.proc.wait(60) == 0
    assert any("every accepted request was answered" in line.get("msg", "") for line in proc.logs())


def test_workers_share_signed_state(digits_package: Path, tmp_path: Path) -> None:
    from scaledl.package import update_package

    secret = "test-signing-key"
    repo = tmp_path / "repo"
    for version in ("1", "2"):
        copy_package(digits_package, repo / "signed" / version)
        update_package(repo / "signed" / version, key=secret.encode())
    copy_package(digits_package, repo / "unsigned" / "1")
    keys = tmp_path / "keys.json"
    created = run_cli("keys", "create", "--scope", "admin", "--file", str(keys))
    assert created.returncode == 0, created.stderr
    admin_key = created.stdout.strip()
    proc = ServerProcess(
        [str(repo), "--api-keys", str(keys), "--workers", "2", "--pin", "signed=1", *GRPC_ANY],
        env={"SCALEDL_SIGNING_KEY": secret},
    )
    try:
        proc.wait_ready()
        headers = {"Authorization": f"Bearer {admin_key}"}
        index = httpx.post(proc.url + "/v2/repository/index", headers=headers).json()
        rows = {(r["name"], r["version"]): r for r in index}
        assert rows[("unsigned", "1")]["state"] == "UNAVAILABLE"
        assert "unsigned" in rows[("unsigned", "1")]["reason"]
        response = httpx.post(
            proc.url + "/v2/repository/models/signed/load",
            json={"parameters": {"version": "2"}},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        # every worker converges on the new state (new connections spread over both)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            seen = {
                httpx.post(
                    proc.url + "/v2/models/signed/infer", json=infer_body(X), headers=headers
                ).json()["model_version"]
                for _ in range(12)
            }
            if seen == {"2"}:
                break
            time.sleep(0.3)
        assert seen == {"2"}
        text = httpx.get(proc.url + "/metrics", headers=headers).text
        assert 'scaledl_requests_total{endpoint="infer",model="signed",version="2"}' in text
        pids = {line["pid"] for line in proc.logs() if line.get("msg", "").startswith("serving")}
        assert len(pids) == 2
        # gRPC: both workers listen on the one port the supervisor reserved
        grpc_lines = [line for line in proc.logs() if "grpc_url" in line]
        assert len({line["pid"] for line in grpc_lines}) == 2
        assert len({line["grpc_url"] for line in grpc_lines}) == 1
        import tritonclient.grpc as grpcclient

        for _ in range(6):  # new connections, spread over both workers
            client = grpcclient.InferenceServerClient(proc.grpc_target)
            item = grpcclient.InferInput("input", [1, 1, 8, 8], "FP32")
            item.set_data_from_numpy(X)
            result = client.infer("signed", [item], headers={"x-api-key": admin_key})
            assert result.get_response().model_version == "2"
            client.close()
    finally:
        assert proc.stop() == 0


def test_serve_refuses_to_start_without_keys_or_no_auth(digits_package: Path) -> None:
    result = run_cli("serve", str(digits_package), "--port", "0")
    assert result.returncode == 2 and "--no-auth" in result.stderr
    result = run_cli("serve", str(digits_package), "--no-auth", "--ssl-certfile", "x.pem")
    assert result.returncode == 2 and "--ssl-keyfile" in result.stderr
