"""The server's parts as its collaborators see them: narrow views instead of the whole server.

`ModelServer` builds the parts and hands each collaborator only what it uses:

- `Lifecycle` — started / draining / ready, for the health answers and `Connection: close`;
- `KeyGate` — the API-key check every entry point runs (HTTP fast path, FastAPI routes, gRPC),
  counting refusals in `scaledl_auth_failures_total`;
- `ServedModels` — the read-only view of the model manager that metadata answers and metric
  labels need (the admin routes get the manager itself: they change it).

Extensions get a `ServerContext` (defined with the extension point, `scaledl.serve.extensions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Depends, Request

from scaledl.errors import ScaledlError
from scaledl.repository import version_key
from scaledl.serve.auth import Authenticator
from scaledl.serve.keys import KeyEntry
from scaledl.serve.metrics import ServerMetrics

if TYPE_CHECKING:
    from scaledl.serve.manager import Route
    from scaledl.serve.model import ModelVersion
    from scaledl.serve.state import RouteState

UNKNOWN = "_unknown"  # metric label of a model or version the server does not serve


class Lifecycle:
    """Readiness means the server can answer: started, not draining, a model serving."""

    def __init__(self, models_ready: Callable[[], bool]) -> None:
        self._models_ready = models_ready
        self.started = False
        self.draining = False

    @property
    def ready(self) -> bool:
        return self.started and not self.draining and self._models_ready()


class KeyGate:
    """Checks a request's API key for a scope; every refusal (401/403) is counted."""

    def __init__(self, auth: Authenticator, metrics: ServerMetrics) -> None:
        self.auth = auth
        self.metrics = metrics

    def check(self, authorization: str | None, api_key: str | None, scope: str) -> KeyEntry | None:
        try:
            return self.auth.check(authorization, api_key, scope)
        except ScaledlError as exc:
            if exc.http_status in (401, 403):
                self.metrics.auth_failures.labels(str(exc.http_status)).inc()
            raise

    def dependency(self, scope: str) -> Any:
        """A FastAPI dependency: 401 without a valid key, 403 without `scope`.

        It carries its scope (`scaledl_scope`) so the HTTP front door can check the key of a
        request *before* reading its body."""

        def check(request: Request) -> None:
            headers = request.headers
            self.check(headers.get("authorization"), headers.get("x-api-key"), scope)

        check.scaledl_scope = scope  # type: ignore[attr-defined]
        return Depends(check)


class ServedModels(Protocol):
    """What is served: the read side of `ModelManager`."""

    @property
    def routes(self) -> dict[str, Route]: ...

    @property
    def versions(self) -> dict[tuple[str, str], ModelVersion]: ...

    def route(self, model: str) -> Route: ...

    def version(self, model: str, version: str) -> ModelVersion: ...

    def current(self, model: str) -> RouteState: ...

    def index(self) -> list[dict[str, Any]]: ...


def pick(models: ServedModels, model: str, version: str | None) -> ModelVersion:
    """The version a metadata request names, else the model's primary."""
    return models.version(model, version) if version else models.route(model).primary


def loaded_versions(models: ServedModels, model: str) -> list[str]:
    return sorted((v for m, v in models.versions if m == model), key=version_key)


def metric_labels(models: ServedModels, model: str, version: str) -> tuple[str, str]:
    """Metric labels from a bounded set: served models and their loaded versions only, so
    made-up names cannot grow /metrics (unknown ones count as `_unknown`)."""
    if model not in models.routes and not any(m == model for m, _ in models.versions):
        return UNKNOWN, UNKNOWN if version else ""
    if version and (model, version) not in models.versions:
        return model, UNKNOWN
    return model, version
