"""A real scaledl server (uvicorn on 127.0.0.1, random port) with the monitor extension, and a
loopback webhook receiver that records what it is sent."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from scaledl.config.monitor import MonitorConfig
from scaledl.monitor.extension import MonitorExtension
from tests.v2 import infer_body
from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            receiver.received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        thread.join(5)


@dataclass
class Running:
    url: str
    infer_key: str
    admin_key: str
    extension: MonitorExtension
    grpc_target: str | None = None  # with monitored_server(..., grpc=True)

    def headers(self, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key if admin else self.infer_key}"}

    def infer(self, model: str, x: np.ndarray, request_id: str) -> httpx.Response:
        body = infer_body(x, id=request_id)
        return httpx.post(
            f"{self.url}/v2/models/{model}/infer", json=body, headers=self.headers(), timeout=30
        )


@contextmanager
def monitored_server(
    package: Path, tmp: Path, config: MonitorConfig, grpc: bool = False
) -> Iterator[Running]:
    import uvicorn

    from scaledl.config.serve import ServeSettings
    from scaledl.serve.app import create_app
    from scaledl.serve.keys import create_key

    keys = tmp / "keys.json"
    infer_key, _ = create_key(keys, "infer", "test")
    admin_key, _ = create_key(keys, "admin", "test")
    extension = MonitorExtension(config)
    grpc_port = free_port() if grpc else None
    settings = ServeSettings(source=package, api_keys=keys, grpc_port=grpc_port)
    server = create_app(settings, extensions=[extension])
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(server, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: ready(url), timeout=60, interval=0.1, what=f"{url} to be ready")
    try:
        target = f"127.0.0.1:{grpc_port}" if grpc_port is not None else None
        yield Running(url, infer_key, admin_key, extension, target)
    finally:
        uv.should_exit = True
        thread.join(30)
        extension.close()


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    """Poll until `predicate()` is truthy (the extension works on its own thread)."""
    return wait_until(predicate, timeout=timeout, what="the monitor's condition")
