"""The gRPC listener: a `grpc.aio` server on the HTTP server's event loop, in the same process.

It starts once the models are loaded (with the HTTP server's lifespan) and stops at shutdown,
before the models are released: new calls are refused (UNAVAILABLE) and calls in flight are
answered within `--drain-timeout`. Readiness (`ServerReady`) turns false at the first SIGTERM,
as on HTTP, because both read the server's one `Lifecycle`.

Limits: a message over `--max-body-mb` is refused by gRPC itself (RESOURCE_EXHAUSTED, also
when it arrives compressed); at most `MAX_CONCURRENT_RPCS` calls run at once per process (more
get RESOURCE_EXHAUSTED), which bounds the memory that request messages can hold. With
`--workers N` every worker listens on the same port (SO_REUSEPORT; the supervisor reserves it,
see `reserve_port`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from scaledl.errors import UsageError
from scaledl.serve.grpc.protos import grpc_predict_v2_pb2 as pb
from scaledl.serve.grpc.protos import triton_extras_pb2 as tx
from scaledl.serve.grpc.servicer import SERVICE, InferenceServicer
from scaledl.serve.settings import ServeSettings

log = logging.getLogger("scaledl.serve")
MAX_CONCURRENT_RPCS = 1024


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Hold HOST:PORT for the gRPC listeners of this server's processes; (socket, port).

    The reservation is bound, never listening, with SO_REUSEPORT so that gRPC (which sets it
    too) can bind the same port in each worker; port 0 becomes a concrete free port here, once,
    for all workers. A port held by anything else, another scaledl server included, is refused
    by the first, plain bind (the reservation itself has no SO_REUSEADDR, so it is not shared
    with a second server's reservation either).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP port
            probe.bind((host, port))
            port = int(probe.getsockname()[1])
        held = socket.socket(family, socket.SOCK_STREAM)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind((host, port))
    except OSError as exc:
        raise UsageError(
            f"--grpc-port: cannot listen on {address(host, port)} ({exc.strerror})"
        ) from None
    return held, port


class GrpcFrontEnd:
    """Start and stop the gRPC listener of one server process (call both on its event loop)."""

    def __init__(self, settings: ServeSettings, servicer: InferenceServicer) -> None:
        self.settings = settings
        self.servicer = servicer
        self.server: Any = None
        self.port: int | None = None

    async def start(self) -> int:
        settings = self.settings
        assert settings.grpc_port is not None
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_body_bytes),
                ("grpc.so_reuseport", 1),
            ],
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        )
        handlers = method_handlers(self.servicer)
        server.add_registered_method_handlers(SERVICE, handlers)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        target = address(settings.host, settings.grpc_port)
        try:
            if settings.ssl_certfile and settings.ssl_keyfile:
                pair = (settings.ssl_keyfile.read_bytes(), settings.ssl_certfile.read_bytes())
                port = server.add_secure_port(target, grpc.ssl_server_credentials([pair]))
            else:
                port = server.add_insecure_port(target)
        except RuntimeError as exc:
            raise UsageError(f"--grpc-port: cannot listen on {target} ({exc})") from None
        await server.start()
        self.server, self.port = server, port
        grpc_url = address(settings.host, port)
        tls = " (TLS)" if settings.ssl_certfile else ""
        log.info("gRPC listening on %s%s", grpc_url, tls, extra={"grpc_url": grpc_url})
        return port

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, answer those in flight (up to `grace_s`), close the port."""
        if self.server is not None:
            await self.server.stop(grace_s)
            self.server = None


def method_handlers(servicer: InferenceServicer) -> dict[str, Any]:
    """Every method of the service, each parsing its own request message.

    Requests arrive as bytes and are parsed in the handler, so that a message that is not
    valid protobuf is INVALID_ARGUMENT with the reason (gRPC's own deserializer would answer
    UNKNOWN and log a traceback for what is a client's mistake).
    """
    table: dict[str, tuple[Any, Any, Any]] = {
        "ServerLive": (servicer.ServerLive, pb.ServerLiveRequest, pb.ServerLiveResponse),
        "ServerReady": (servicer.ServerReady, pb.ServerReadyRequest, pb.ServerReadyResponse),
        "ModelReady": (servicer.ModelReady, pb.ModelReadyRequest, pb.ModelReadyResponse),
        "ServerMetadata": (
            servicer.ServerMetadata,
            pb.ServerMetadataRequest,
            pb.ServerMetadataResponse,
        ),
        "ModelMetadata": (
            servicer.ModelMetadata,
            pb.ModelMetadataRequest,
            pb.ModelMetadataResponse,
        ),
        "ModelInfer": (servicer.ModelInfer, pb.ModelInferRequest, pb.ModelInferResponse),
        # Triton's, on the same service path (triton_extras.proto)
        "ModelConfig": (servicer.ModelConfig, tx.ModelConfigRequest, tx.ModelConfigResponse),
        "RepositoryIndex": (
            servicer.RepositoryIndex,
            tx.RepositoryIndexRequest,
            tx.RepositoryIndexResponse,
        ),
    }
    return {
        name: grpc.unary_unary_rpc_method_handler(
            _parsing(method, request_type),
            request_deserializer=None,
            response_serializer=response_type.SerializeToString,
        )
        for name, (method, request_type, response_type) in table.items()
    }


def _parsing(method: Callable[[Any, Any], Awaitable[Any]], request_type: Any) -> Any:
    name = request_type.DESCRIPTOR.full_name

    async def handle(raw: bytes, context: Any) -> Any:
        try:
            request = request_type.FromString(raw)
        except DecodeError as exc:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request is not a valid {name} message ({exc})",
            )
        return await method(request, context)

    return handle
