"""The server object: settings + keys + models + batching + metrics + extensions, as one ASGI app.

    server = create_app(ServeSettings(source=Path("repo"), no_auth=True), extensions=[...])
    uvicorn.run(server)               # or: scaledl serve repo --no-auth

`server.app` is the FastAPI app (extensions add routes to it), `server.metrics_registry` the
Prometheus registry behind `/metrics`, `server.require_scope("infer"|"admin")` a FastAPI
dependency that enforces the API keys (checked before any request body is read),
`server.offload.run(fn, *args)` runs CPU-heavy work off the event loop on a bounded pool, and
`server.request_id(client_id)` the request-id rule:
the V2 `id` the client sent, else a new unique id (32 hex digits); it is echoed in the
response `id` and in the `X-Request-ID` header.

The server only wires its parts together. Its collaborators get narrow views, never the
server itself (see `scaledl.serve.context`): the HTTP front door, the FastAPI routes and the
gRPC servicer get the key gate, the lifecycle, the models, the inference service and the
metrics they use; extensions get an `ExtensionContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from scaledl.serve.asgi import Receive, Scope, Send, new_request_id
from scaledl.serve.auth import Authenticator
from scaledl.serve.context import KeyGate, Lifecycle
from scaledl.serve.extensions import ExtensionContext, ExtensionDispatcher, ServerExtension
from scaledl.serve.fastpath import FrontDoor
from scaledl.serve.manager import ModelManager
from scaledl.serve.metrics import ServerMetrics
from scaledl.serve.offload import Offloader
from scaledl.serve.routes import build_router, install_error_handlers
from scaledl.serve.service import InferenceService
from scaledl.serve.settings import ServeSettings

log = logging.getLogger(__name__)


class ModelServer:
    def __init__(
        self, settings: ServeSettings, extensions: list[ServerExtension] | None = None
    ) -> None:
        self.settings = settings
        self.metrics = ServerMetrics()
        self.metrics_registry = self.metrics.registry
        self.auth = Authenticator(settings.api_keys, enabled=not settings.no_auth)
        self.gate = KeyGate(self.auth, self.metrics)
        self.dispatcher = ExtensionDispatcher(
            list(extensions or []), on_drop=self.metrics.records_dropped.inc
        )
        self.offload = Offloader(settings.offload_threads())
        self.manager = ModelManager(settings, self.metrics, self.dispatcher)
        self.lifecycle = Lifecycle(lambda: self.manager.ready)
        self.service = InferenceService(
            settings, self.manager, self.metrics, self.dispatcher, self.offload
        )
        self.grpc: Any = None  # the gRPC listener, with --grpc-port (scaledl.serve.grpc)
        self.app = FastAPI(
            title="scaledl model server",
            lifespan=self._lifespan,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )
        install_error_handlers(self.app)
        self.app.include_router(
            build_router(
                gate=self.gate,
                lifecycle=self.lifecycle,
                manager=self.manager,
                server_metrics=self.metrics,
                offload=self.offload,
                settings=settings,
                extension_names=self.extension_names,
            )
        )
        self._front = FrontDoor(
            self.app,
            settings=settings,
            gate=self.gate,
            lifecycle=self.lifecycle,
            models=self.manager,
            service=self.service,
            metrics=self.metrics,
            offload=self.offload,
        )
        context = ExtensionContext(
            settings, self.metrics_registry, self.offload, self.require_scope, self.request_id
        )
        for extension in self.dispatcher.extensions:
            extension.attach(self.app, context)
        self._http: Any = self._front
        if settings.cors_origins:
            from starlette.middleware.cors import CORSMiddleware

            self._http = CORSMiddleware(
                self._front,
                allow_origins=settings.cors_origins,
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["X-Request-ID", "Inference-Header-Content-Length"],
            )

    @property
    def extension_names(self) -> list[str]:
        return [e.name for e in self.dispatcher.extensions]

    @property
    def ready(self) -> bool:
        return self.lifecycle.ready

    @property
    def draining(self) -> bool:
        return self.lifecycle.draining

    def request_id(self, client_id: str | None = None) -> str:
        return client_id or new_request_id()

    def require_scope(self, scope: str) -> Any:
        """A FastAPI dependency: 401 without a valid key, 403 without `scope`."""
        return self.gate.dependency(scope)

    def begin_drain(self) -> None:
        """Readiness turns false at once; requests keep being answered until shutdown."""
        if not self.lifecycle.draining:
            self.lifecycle.draining = True
            log.info("draining: readiness is now false")

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        self.dispatcher.start()
        await self.manager.startup()
        await asyncio.to_thread(self.offload.warm)  # parser processes start before traffic
        # Objects alive now (modules, models) live as long as the server: keep them out of
        # the cyclic collector, whose full passes would otherwise stall the loop for tens of ms.
        gc.collect()
        gc.freeze()
        self.lifecycle.started = True
        if self.settings.grpc_port is not None:
            await self._start_grpc()
        served = {m: r.primary.version for m, r in self.manager.routes.items()}
        log.info("serving %d model(s): %s", len(served), served or "none")

    async def _start_grpc(self) -> None:
        # grpc is imported only by servers that listen for it
        from scaledl.serve.grpc.server import GrpcFrontEnd
        from scaledl.serve.grpc.servicer import InferenceServicer

        servicer = InferenceServicer(
            gate=self.gate,
            lifecycle=self.lifecycle,
            models=self.manager,
            service=self.service,
            metrics=self.metrics,
            settings=self.settings,
            extension_names=self.extension_names,
        )
        self.grpc = GrpcFrontEnd(self.settings, servicer)
        await self.grpc.start()

    async def shutdown(self) -> None:
        self.lifecycle.draining = True
        if self.grpc is not None:  # gRPC calls in flight are answered before models unload
            await self.grpc.stop(self.settings.drain_timeout_s)
        await self.manager.shutdown()
        self.dispatcher.stop()
        self.offload.close()
        log.info("stopped: every accepted request was answered")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(
    settings: ServeSettings, extensions: list[ServerExtension] | None = None
) -> ModelServer:
    """Build the server (an ASGI app); models load when the ASGI lifespan starts."""
    return ModelServer(settings, extensions)
