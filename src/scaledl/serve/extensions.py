"""The server's extension point: add routes, metrics and per-inference hooks without forking it.

An extension is any object with this shape (a `typing.Protocol`, no base class needed)::

    class MyExtension:
        name = "my-extension"

        def attach(self, app: fastapi.FastAPI, server: ServerContext) -> None:
            # Add routes; protect them with the server's keys:
            #   app.get("/v2/my/thing", dependencies=[server.require_scope("infer")])(handler)
            # Register metrics on server.metrics_registry (served on the same /metrics).
            # Run work that grows with a request off the event loop: server.offload.run(fn, …)
            ...

        def on_model_loaded(self, model: str, version: str, package: Package) -> None: ...
        def on_model_unloaded(self, model: str, version: str) -> None: ...
        def on_inference(self, record: InferenceRecord) -> None: ...

`server` is a `ServerContext`: the server's settings, its metrics registry, its CPU pool, its
key check and its request-id rule — what an extension may use, and nothing of the server's
insides (models, routing, lifecycle), which stay free to change.

Guarantees:
- `attach` runs once, when the server object is built, before it serves anything.
- `on_model_loaded`, `on_model_unloaded` and `on_inference` run on one background thread, in
  the order the events happened (a version's records come after its `on_model_loaded`). They
  are off the response path: they never delay or fail a request. Exceptions are logged and
  swallowed. If an extension falls far behind, records are dropped and counted in
  `scaledl_extension_records_dropped_total` rather than growing memory without bound.
- `on_inference` gets one record per answered request, also for shadow versions (the record of
  a shadow copy carries the shadow version and the same request id; its outputs were never
  returned to the client).
- With `--workers N`, every worker process builds its own extension instances.

Extensions are enabled by name on the command line (`scaledl serve … --extension NAME`) through
`EXTENSION_FACTORIES`, a registry of name → factory (a callable or a `"module:attr"` string)
taking the extension's options dict. A name that is not registered may itself be a
`"module:attr"` import string. A dedicated CLI flag (say `--monitor`) only needs to register
its factory here and append `ExtensionSpec(name=…, options=…)` to `ServeSettings.extensions`
(see `scaledl.cli.serve_cmds.build_settings`): the settings travel to every worker process,
which builds its own instances. Inside `attach`, `server.settings` holds the server's settings.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from scaledl.errors import UsageError

if TYPE_CHECKING:
    import fastapi
    from prometheus_client import CollectorRegistry

    from scaledl.package import Package
    from scaledl.serve.offload import Offloader
    from scaledl.serve.settings import ServeSettings

log = logging.getLogger(__name__)


@dataclass
class InferenceRecord:
    """What the server knows about one answered inference."""

    model: str
    version: str
    request_id: str
    inputs: dict[str, np.ndarray]  # the graph inputs as given to ONNX Runtime (preprocessed)
    outputs: dict[str, np.ndarray]  # graph outputs for this request only (sliced out of the batch)
    received_at: float  # time.time() when the request arrived
    latency_s: float  # request latency as measured by the server
    raw_inputs: np.ndarray | None = None  # raw (pre-preprocessing) rows for /predict requests


class ServerContext(Protocol):
    """What an extension gets from the server in `attach`."""

    @property
    def settings(self) -> ServeSettings: ...

    @property
    def metrics_registry(self) -> CollectorRegistry: ...

    @property
    def offload(self) -> Offloader: ...

    def require_scope(self, scope: str) -> Any:
        """A FastAPI dependency enforcing the API keys: 401 without a key, 403 without
        `scope` ("infer" or "admin"), checked before the request body is read."""
        ...

    def request_id(self, client_id: str | None = None) -> str:
        """The V2 `id` the client sent, else a new unique id (32 hex digits)."""
        ...


@dataclass(frozen=True)
class ExtensionContext:
    """The `ServerContext` a server hands its extensions."""

    settings: ServeSettings
    metrics_registry: CollectorRegistry
    offload: Offloader
    require_scope: Callable[[str], Any]
    request_id: Callable[..., str]


@runtime_checkable
class ServerExtension(Protocol):
    name: str

    def attach(self, app: fastapi.FastAPI, server: ServerContext) -> None: ...

    def on_model_loaded(self, model: str, version: str, package: Package) -> None: ...

    def on_model_unloaded(self, model: str, version: str) -> None: ...

    def on_inference(self, record: InferenceRecord) -> None: ...


ExtensionFactory = Callable[[dict[str, Any]], ServerExtension]
EXTENSION_FACTORIES: dict[str, ExtensionFactory | str] = {
    "monitor": "scaledl.monitor.extension:create_extension",
}


def register_extension(name: str, factory: ExtensionFactory | str) -> None:
    """Make `--extension NAME` build the extension with `factory(options)`."""
    EXTENSION_FACTORIES[name] = factory


def build_extension(name: str, options: dict[str, Any] | None = None) -> ServerExtension:
    factory: ExtensionFactory | str | None = EXTENSION_FACTORIES.get(name)
    if factory is None and ":" in name:
        factory = name
    if factory is None:
        known = ", ".join(sorted(EXTENSION_FACTORIES)) or "none registered"
        raise UsageError(f"--extension {name!r} is unknown (known: {known}; or use module:attr)")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"--extension {name!r}: cannot import {factory!r} ({exc})") from None
    assert callable(factory)
    extension = factory(dict(options or {}))
    if not isinstance(extension, ServerExtension):
        raise UsageError(f"--extension {name!r} did not build a ServerExtension")
    return extension


_STOP = object()


class ExtensionDispatcher:
    """Feeds extension hooks from one background thread through a bounded queue."""

    def __init__(
        self,
        extensions: list[ServerExtension],
        on_drop: Callable[[], None],
        capacity: int = 10_000,
    ) -> None:
        self.extensions = list(extensions)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._on_drop = on_drop
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return bool(self.extensions)

    def start(self) -> None:
        if self.extensions and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="scaledl-ext", daemon=True)
            self._thread.start()

    def _put(self, event: tuple[str, tuple[Any, ...]], block: bool) -> None:
        try:
            self._queue.put(event, block=block, timeout=5 if block else None)
        except queue.Full:
            self._on_drop()

    def inference(self, record: InferenceRecord) -> None:
        if self.extensions:
            self._put(("on_inference", (record,)), block=False)

    def model_loaded(self, model: str, version: str, package: Package) -> None:
        if self.extensions:
            self._put(("on_model_loaded", (model, version, package)), block=True)

    def model_unloaded(self, model: str, version: str) -> None:
        if self.extensions:
            self._put(("on_model_unloaded", (model, version)), block=True)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            method, args = event
            for extension in self.extensions:
                try:
                    getattr(extension, method)(*args)
                except Exception:
                    log.exception("extension %s failed in %s", extension.name, method)

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then end the thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("extension queue still full at shutdown; dropping the rest")
        self._thread.join(timeout)
        self._thread = None
