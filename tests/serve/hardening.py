"""Tools of the hardening suite: raw sockets, the event-loop probe, the server's memory."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import REPO
from tests.serve.helpers import ServerProcess

INFER = "/v2/models/digits/infer"


def address(server: ServerProcess) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def connect(server: ServerProcess, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(address(server), timeout=timeout)


def read_status(sock: socket.socket) -> int | None:
    """The status code of the next response, or None if the server closed without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
    except ConnectionResetError:
        return None
    return int(data.split(b" ", 2)[1])


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM): it only grows, so no sampling is needed."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


class LoopProbe:
    """Runs `tests.serve.loop_probe` beside the attacks; `result` holds what it measured."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.result: dict[str, Any] = {}

    def __enter__(self) -> LoopProbe:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.serve.loop_probe",
                self.server.url,
                str(self.server.proc.pid),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        self.result = json.loads(out.strip().splitlines()[-1])
