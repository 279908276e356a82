"""Processes: uvicorn (uvloop + httptools) with graceful drain, and `--workers N` supervision.

Shutdown on SIGTERM/SIGINT: readiness turns false at once; for `--shutdown-grace` seconds the
server keeps accepting (so load balancers see not-ready and stop sending); then it stops
accepting, answers everything in flight or queued (up to `--drain-timeout`), unloads the models
and exits 0. A second SIGINT forces an exit.

With `--workers N` the parent binds the socket, starts N worker processes (spawned, each with
its own models, batchers and event loop) that share it, forwards SIGTERM/SIGINT to them, and
restarts a worker that dies. The workers follow one serving-state file and aggregate their
Prometheus metrics through `PROMETHEUS_MULTIPROC_DIR`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from scaledl.serve.settings import SETTINGS_ENV, ServeSettings

log = logging.getLogger("scaledl.serve")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with readiness dropped at the first signal and a grace period."""

    def __init__(
        self, config: uvicorn.Config, model_server: Any, grace_s: float, url: str = ""
    ) -> None:
        super().__init__(config)
        self.model_server = model_server
        self.grace_s = grace_s
        self.url = url
        self.drain_deadline: float | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Announce the URL only once the models are loaded and requests are taken."""
        await super().startup(sockets)
        if self.should_exit or not self.url:
            return
        log.info("listening on %s", self.url, extra={"url": self.url})
        if not self.model_server.ready:
            log.error(
                "no model can be served (see the refusals above): /v2/health/ready answers 400 "
                "until an admin loads a version that passes verification"
            )

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_deadline is not None:
            if sig == signal.SIGINT:
                super().handle_exit(sig, frame)  # a second Ctrl-C: uvicorn's forced exit
            self.drain_deadline = time.monotonic()  # a second SIGTERM: end the grace now
            return
        self.model_server.begin_drain()
        self.drain_deadline = time.monotonic() + self.grace_s

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline:
            self.should_exit = True
        return await super().on_tick(counter)


def build_extensions(settings: ServeSettings) -> list[Any]:
    from scaledl.serve.extensions import build_extension

    return [build_extension(spec.name, spec.options) for spec in settings.extensions]


def serve_on(
    settings: ServeSettings, sock: socket.socket, worker: int | None = None, url: str = ""
) -> None:
    """Run one server process on an already-bound socket until it is told to stop."""
    from scaledl.serve.app import create_app
    from scaledl.serve.logs import configure_json_logging
    from scaledl.serve.protocol import protocol_class

    configure_json_logging(settings.log_level)
    server = create_app(settings, build_extensions(settings))
    protocol = protocol_class(
        settings.connection_limit(), settings.header_timeout_s, settings.max_header_bytes
    )
    config = uvicorn.Config(
        server,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=protocol,
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=max(1, round(settings.idle_timeout_s)),
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )
    DrainingServer(config, server, settings.shutdown_grace_s, url).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        from scaledl.errors import UsageError

        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_server(settings: ServeSettings) -> None:
    """Bind, announce the URL (one JSON log line), then serve in this process or in workers."""
    from scaledl.serve.logs import configure_json_logging

    configure_json_logging(settings.log_level)
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    grpc_reservation = None  # held until the server exits (see grpc.server.reserve_port)
    if settings.grpc_port is not None:
        from scaledl.serve.grpc.server import reserve_port

        grpc_reservation, grpc_port = reserve_port(settings.host, settings.grpc_port)
        settings = settings.model_copy(update={"grpc_port": grpc_port})
    scheme = "https" if settings.ssl_certfile else "http"
    url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    if settings.no_auth:
        log.warning("authentication is OFF (--no-auth): anyone who can reach %s may use it", url)
    try:
        if settings.workers == 1:
            serve_on(settings, sock, url=url)
        else:
            _supervise(settings, sock, url)
    finally:
        if grpc_reservation is not None:
            grpc_reservation.close()


def _worker_main(settings_json: str, sock: socket.socket, index: int, url: str) -> None:
    os.environ[SETTINGS_ENV] = settings_json
    serve_on(ServeSettings.model_validate_json(settings_json), sock, worker=index, url=url)


def _supervise(settings: ServeSettings, sock: socket.socket, url: str) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="scaledl-serve-"))
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if settings.state_file is None:
        settings = settings.model_copy(update={"state_file": workdir / "state.json"})
    payload = settings.to_env()
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    started: dict[int, float] = {}

    def start(index: int) -> Any:
        process = ctx.Process(target=_worker_main, args=(payload, sock, index, url), daemon=False)
        process.start()
        started[index] = time.monotonic()
        return process

    workers: list[Any] = []

    def on_signal(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for p in workers:  # SIGTERM even for Ctrl-C: the workers got that SIGINT already
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workers.extend(start(i) for i in range(settings.workers))
    try:
        while True:
            alive = [p for p in workers if p.is_alive()]
            if stopping and not alive:
                break
            for i, p in enumerate(workers):
                if not stopping and not p.is_alive():
                    if p.exitcode != 0 and time.monotonic() - started[i] < 10:
                        log.error("worker %d failed at start-up (code %s); stopping", i, p.exitcode)
                        on_signal(signal.SIGTERM, None)
                        break
                    log.error("worker %d exited (code %s); restarting it", i, p.exitcode)
                    _mark_dead(p.pid)
                    time.sleep(0.5)
                    workers[i] = start(i)
            time.sleep(0.2)
    finally:
        for p in workers:
            p.join(timeout=1)
            _mark_dead(p.pid)
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("all workers stopped")


def _mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid)
