"""FastAPI routes: health, metadata, model repository, rollout admin, metrics.

Health (`/v2/health/*`) is open; metadata and metrics need an `infer` key; the repository and
rollout API need an `admin` key. Ready endpoints answer 200 for true and 400 for false, as the
Open Inference Protocol defines it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

import scaledl
from scaledl.config.serve import ServeSettings
from scaledl.errors import ScaledlError
from scaledl.serve import rollout
from scaledl.serve.asgi import error_headers
from scaledl.serve.context import KeyGate, Lifecycle, loaded_versions, pick
from scaledl.serve.manager import ModelManager
from scaledl.serve.metrics import ServerMetrics
from scaledl.serve.model import ModelVersion
from scaledl.serve.offload import Offloader
from scaledl.serve.openapi import build_document
from scaledl.validation import explain_errors

EXTENSIONS = ["binary_tensor_data", "model_repository", "scaledl_predict", "scaledl_rollout"]
TRITON_TYPES = {"BYTES": "TYPE_STRING"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RepositoryParams(_Body):
    version: str | None = None


class RepositoryRequest(_Body):
    parameters: RepositoryParams = Field(default_factory=RepositoryParams)


class IndexRequest(_Body):
    ready: bool = False


class CanaryRequest(_Body):
    version: str
    weight: float = Field(gt=0.0, le=1.0)


class VersionRequest(_Body):
    version: str


class PromoteRequest(_Body):
    version: str | None = None


class PolicyRequest(_Body):
    policy: str
    version: str | None = None


def install_error_handlers(app: FastAPI) -> None:
    async def scaledl_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ScaledlError)
        headers = {k.decode(): v.decode() for k, v in error_headers(exc) if k != b"content-type"}
        return JSONResponse({"error": exc.message}, exc.http_status, headers=headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail if exc.status_code != 404 else f"no route {request.url.path}"
        return JSONResponse({"error": str(message)}, exc.status_code, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {**e, "loc": tuple(p for p in e.get("loc", ()) if p != "body")} for e in exc.errors()
        ]
        return JSONResponse({"error": explain_errors(errors, "invalid request body")}, 400)

    app.add_exception_handler(ScaledlError, scaledl_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def model_metadata(model: str, mv: ModelVersion, versions: list[str]) -> dict[str, Any]:
    return {
        "name": model,
        "versions": versions,
        "platform": "onnxruntime_onnx",
        "inputs": [t.to_json() for t in mv.signature.inputs],
        "outputs": [t.to_json() for t in mv.signature.outputs],
    }


def triton_config(model: str, mv: ModelVersion, policy: str) -> dict[str, Any]:
    """The model configuration in Triton's JSON form, for clients that read it."""
    batched = mv.signature.batched

    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": t.name,
                "data_type": TRITON_TYPES.get(t.datatype, f"TYPE_{t.datatype}"),
                "dims": list(t.shape[1:] if batched else t.shape),
            }
            for t in specs
        ]

    version_policy: dict[str, Any] = (
        {"latest": {"num_versions": 1}}
        if policy == "latest"
        else {"specific": {"versions": [int(mv.version) if mv.version.isdigit() else mv.version]}}
    )
    return {
        "name": model,
        "platform": "onnxruntime_onnx",
        "backend": mv.engine,
        "max_batch_size": mv.batching.max_batch_size if batched else 0,
        "input": tensors(mv.signature.inputs),
        "output": tensors(mv.signature.outputs),
        "dynamic_batching": {
            "max_queue_delay_microseconds": int(mv.batching.max_queue_delay_ms * 1000),
            "preferred_batch_size": [mv.preferred_batch],
        },
        "instance_group": [{"kind": "KIND_CPU", "count": mv.batching.instances}],
        "version_policy": version_policy,
    }


def build_router(
    *,
    gate: KeyGate,
    lifecycle: Lifecycle,
    manager: ModelManager,
    server_metrics: ServerMetrics,
    offload: Offloader,
    settings: ServeSettings,
    extension_names: list[str],
) -> APIRouter:
    """Every FastAPI route of the server, answering from the parts it is given."""
    router = APIRouter()
    infer = [gate.dependency("infer")]
    admin = [gate.dependency("admin")]
    metrics_deps = [] if settings.metrics_open else infer

    @router.get("/v2/health/live")
    async def live() -> Response:
        return JSONResponse({"live": True})

    @router.get("/v2/health/ready")
    async def ready() -> Response:
        ok = lifecycle.ready
        return JSONResponse({"ready": ok}, 200 if ok else 400)

    @router.get("/v2", dependencies=infer)
    async def server_metadata() -> dict[str, Any]:
        names = EXTENSIONS + extension_names
        return {"name": "scaledl", "version": scaledl.__version__, "extensions": names}

    @router.get("/v2/models/{model}", dependencies=infer)
    @router.get("/v2/models/{model}/versions/{version}", dependencies=infer)
    async def metadata(model: str, version: str | None = None) -> dict[str, Any]:
        return model_metadata(model, pick(manager, model, version), loaded_versions(manager, model))

    @router.get("/v2/models/{model}/ready", dependencies=infer)
    @router.get("/v2/models/{model}/versions/{version}/ready", dependencies=infer)
    async def model_ready(model: str, version: str | None = None) -> Response:
        ok = pick(manager, model, version).ready and not lifecycle.draining
        return JSONResponse({"name": model, "ready": ok}, 200 if ok else 400)

    @router.get("/v2/models/{model}/config", dependencies=infer)
    @router.get("/v2/models/{model}/versions/{version}/config", dependencies=infer)
    async def config(model: str, version: str | None = None) -> dict[str, Any]:
        return triton_config(model, pick(manager, model, version), manager.current(model).policy)

    @router.get("/metrics", dependencies=metrics_deps)
    async def metrics() -> Response:
        body, content_type = await server_metrics.render_async(offload)
        return Response(body, media_type=content_type)

    @router.get("/v2/openapi.json", dependencies=infer)
    async def openapi(request: Request) -> Response:
        doc = build_document(request.app.openapi(), auth=not settings.no_auth)
        return JSONResponse(doc)

    install_repository_routes(router, manager, admin)
    return router


def install_repository_routes(router: APIRouter, manager: ModelManager, admin: list[Any]) -> None:
    @router.post("/v2/repository/index", dependencies=admin)
    async def index(body: IndexRequest | None = None) -> list[dict[str, Any]]:
        rows = manager.index()
        if body is not None and body.ready:
            rows = [r for r in rows if r["state"] == "READY"]
        return rows

    @router.post("/v2/repository/models/{model}/load", dependencies=admin)
    async def load(model: str, body: RepositoryRequest | None = None) -> dict[str, Any]:
        version = body.parameters.version if body else None
        await manager.load(model, version)
        return manager.status(model)

    @router.post("/v2/repository/models/{model}/unload", dependencies=admin)
    async def unload(model: str, body: RepositoryRequest | None = None) -> dict[str, Any]:
        version = body.parameters.version if body else None
        state = await manager.unload(model, version)
        return manager.status(model) if state is not None else {"name": model, "unloaded": True}

    @router.get("/v2/admin/models/{model}", dependencies=admin)
    async def status(model: str) -> dict[str, Any]:
        return manager.status(model)

    @router.post("/v2/admin/models/{model}/canary", dependencies=admin)
    async def canary(model: str, body: CanaryRequest) -> dict[str, Any]:
        manager.current(model)
        await manager.change(model, lambda c: rollout.plan_canary(c, body.version, body.weight))
        return manager.status(model)

    @router.delete("/v2/admin/models/{model}/canary", dependencies=admin)
    async def clear_canary(model: str) -> dict[str, Any]:
        manager.current(model)
        await manager.change(model, rollout.plan_clear_canary)
        return manager.status(model)

    @router.post("/v2/admin/models/{model}/shadow", dependencies=admin)
    async def shadow(model: str, body: VersionRequest) -> dict[str, Any]:
        manager.current(model)
        await manager.change(model, lambda c: rollout.plan_shadow(c, body.version))
        return manager.status(model)

    @router.delete("/v2/admin/models/{model}/shadow", dependencies=admin)
    async def clear_shadow(model: str) -> dict[str, Any]:
        manager.current(model)
        await manager.change(model, rollout.plan_clear_shadow)
        return manager.status(model)

    @router.post("/v2/admin/models/{model}/promote", dependencies=admin)
    async def promote(model: str, body: PromoteRequest | None = None) -> dict[str, Any]:
        manager.current(model)
        version = body.version if body else None
        await manager.change(model, lambda c: rollout.plan_promote(c, version))
        return manager.status(model)

    @router.post("/v2/admin/models/{model}/rollback", dependencies=admin)
    async def rollback(model: str) -> dict[str, Any]:
        manager.current(model)
        await manager.change(model, rollout.plan_rollback)
        return manager.status(model)

    @router.post("/v2/admin/models/{model}/policy", dependencies=admin)
    async def policy(model: str, body: PolicyRequest) -> dict[str, Any]:
        manager.current(model)
        latest = manager.latest_version(model)
        await manager.change(
            model, lambda c: rollout.plan_policy(c, body.policy, body.version, latest)
        )
        return manager.status(model)
