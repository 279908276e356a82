"""The gRPC listener: a `grpc.aio` server on the HTTP server's event loop, in the same process.

It starts once the models are loaded (with the HTTP server's lifespan) and stops at shutdown,
before the models are released: new calls are refused (UNAVAILABLE) and calls in flight are
answered within `--drain-timeout`. Readiness (`ServerReady`) turns false at the first SIGTERM,
as on HTTP, because both read `ModelServer.ready`.

Limits: a message over `--max-body-mb` is refused by gRPC itself (RESOURCE_EXHAUSTED, also
when it arrives compressed); at most `MAX_CONCURRENT_RPCS` calls run at once per process (more
get RESOURCE_EXHAUSTED), which bounds the memory that request messages can hold. With
`--workers N` every worker listens on the same port (SO_REUSEPORT; the supervisor reserves it,
see `reserve_port`).
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

import grpc

from scaledl.errors import UsageError
from scaledl.serve.grpc.protos import grpc_predict_v2_pb2_grpc as pb_grpc
from scaledl.serve.grpc.protos import triton_extras_pb2 as tx
from scaledl.serve.grpc.servicer import SERVICE, InferenceServicer

if TYPE_CHECKING:
    from scaledl.serve.app import ModelServer

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
    """Start and stop the gRPC server of one `ModelServer` (call both on its event loop)."""

    def __init__(self, model_server: ModelServer) -> None:
        self.model_server = model_server
        self.server: Any = None
        self.port: int | None = None

    async def start(self) -> int:
        settings = self.model_server.settings
        assert settings.grpc_port is not None
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_body_bytes),
                ("grpc.so_reuseport", 1),
            ],
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        )
        servicer = InferenceServicer(self.model_server)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
        server.add_generic_rpc_handlers((_triton_extras(servicer),))
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


def _triton_extras(servicer: InferenceServicer) -> Any:
    """ModelConfig and RepositoryIndex: Triton's calls, on the same service path."""
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "ModelConfig": grpc.unary_unary_rpc_method_handler(
                servicer.ModelConfig,
                request_deserializer=tx.ModelConfigRequest.FromString,
                response_serializer=tx.ModelConfigResponse.SerializeToString,
            ),
            "RepositoryIndex": grpc.unary_unary_rpc_method_handler(
                servicer.RepositoryIndex,
                request_deserializer=tx.RepositoryIndexRequest.FromString,
                response_serializer=tx.RepositoryIndexResponse.SerializeToString,
            ),
        },
    )
