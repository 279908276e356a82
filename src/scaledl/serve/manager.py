"""Loaded versions and live routes: load, swap, drain and unload without failing a request.

A hot swap is: load + verify + warm the new version in a thread (the old one keeps serving),
replace the model's `Route` in one assignment on the event loop (new requests go to the new
version), then drain the old version — requests already queued or computing there finish —
and release it. Request handlers pick a version and submit to it without awaiting in between,
so no request can land on a version after it started draining.

At start-up (and when following another worker's state), a version the stored routing names
but that can no longer be loaded — deleted, corrupt, unsigned — does not leave its model
unserved: the primary falls back to the newest version that loads, a canary or shadow that
cannot load is dropped, and a warning says so. Readiness means every routed model has a
loaded primary and at least one model is routed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, replace
from typing import Any

from scaledl.errors import NotFoundError, PackageError, UnavailableError
from scaledl.repository import Repository
from scaledl.serve import rollout
from scaledl.serve.extensions import ExtensionDispatcher
from scaledl.serve.metrics import ServerMetrics
from scaledl.serve.model import ModelVersion, load_version, verify_version
from scaledl.serve.settings import ServeSettings
from scaledl.serve.state import Desired, FileStateStore, RouteState, StateStore

log = logging.getLogger(__name__)


@dataclass
class Route:
    state: RouteState
    primary: ModelVersion
    canary: ModelVersion | None = None
    shadow: ModelVersion | None = None

    def pick(self) -> ModelVersion:
        canary = self.canary
        if canary is not None and random.random() < self.state.canary_weight:
            return canary
        return self.primary


@dataclass
class ShadowStats:
    version: str
    compared: int = 0
    disagreements: int = 0
    max_abs_diff_sum: float = 0.0
    dropped: int = 0

    def to_json(self) -> dict[str, Any]:
        n = max(self.compared, 1)
        return {
            "version": self.version,
            "compared": self.compared,
            "disagreements": self.disagreements,
            "agreement": 1.0 - self.disagreements / n if self.compared else None,
            "mean_max_abs_diff": self.max_abs_diff_sum / n if self.compared else None,
            "dropped": self.dropped,
        }


class ModelManager:
    def __init__(
        self, settings: ServeSettings, metrics: ServerMetrics, dispatcher: ExtensionDispatcher
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.dispatcher = dispatcher
        self.repo = Repository(settings.source)
        self.store: StateStore = (
            FileStateStore(settings.state_file) if settings.state_file else StateStore()
        )
        self.versions: dict[tuple[str, str], ModelVersion] = {}
        self.routes: dict[str, Route] = {}
        self.desired: Desired = {}
        self.refused: dict[tuple[str, str], str] = {}
        self.shadow_stats: dict[str, ShadowStats] = {}
        self.revision = 0
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    # ---- hot path --------------------------------------------------------------------
    def route(self, model: str) -> Route:
        route = self.routes.get(model)
        if route is None:
            raise NotFoundError(f"model {model!r} is not being served; see /v2/repository/index")
        return route

    def version(self, model: str, version: str) -> ModelVersion:
        found = self.versions.get((model, version))
        if found is None or not found.ready:
            self.route(model)
            loaded = sorted(v for m, v in self.versions if m == model)
            raise NotFoundError(
                f"model {model!r} has no loaded version {version!r} (loaded: {', '.join(loaded)})"
            )
        return found

    @property
    def ready(self) -> bool:
        """Something is routed and every routed model's primary can answer."""
        return bool(self.routes) and all(r.primary.ready for r in self.routes.values())

    # ---- start / stop ----------------------------------------------------------------
    async def startup(self) -> None:
        async with self._lock, self.store.locked():
            revision, desired = self.store.load()
            if desired is None:
                desired = await self._initial_state()
                revision = self.store.save(desired)
            else:
                await self._verify_unrouted(desired)
            if await self._converge(desired):
                revision = self.store.save(self.desired)  # record what is really served
            self.revision = revision
        if isinstance(self.store, FileStateStore):
            self._poller = asyncio.create_task(self._poll())

    async def _initial_state(self) -> Desired:
        desired: Desired = {}
        for model, versions in self.repo.scan().items():
            pinned = self.settings.pins.get(model)
            if pinned:
                state = RouteState(primary=pinned, policy="pinned")
                fallback = await self._fallback(model, state)
                if fallback is not None:
                    desired[model] = fallback
                continue
            for version in reversed(versions):
                if await self._ensure_loaded(model, version) is not None:
                    desired[model] = RouteState(primary=version, policy="latest")
                    break
            else:
                log.error("model %s: no version could be loaded; it is not served", model)
        return desired

    async def _verify_unrouted(self, desired: Desired) -> None:
        """Learn why models the stored routing leaves out were refused (another worker, or an
        earlier run, tried them), so this worker's index gives the same reasons."""
        for model, versions in self.repo.scan().items():
            if model in desired:
                continue
            for version, path in versions.items():
                try:
                    await asyncio.to_thread(verify_version, path)
                except PackageError as exc:
                    self.refused[(model, version)] = self.repo.redact(exc.message)

    async def shutdown(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for key in list(self.versions):
            self._retire(key)
        self.routes.clear()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    # ---- convergence -----------------------------------------------------------------
    async def _converge(self, desired: Desired) -> bool:
        """Serve `desired`, falling back where a version cannot load; True if it had to."""
        changed = False
        for model in list(self.routes):
            if model not in desired:
                await self._apply(model, None)
        for model, state in desired.items():
            try:
                await self._apply(model, state)
            except Exception:
                fallback = await self._fallback(model, state)
                changed = True
                if fallback is not None:
                    try:
                        await self._apply(model, fallback)
                    except Exception as exc:
                        log.error("model %s: cannot serve %s: %s", model, fallback, exc)
        return changed

    async def _fallback(self, model: str, state: RouteState) -> RouteState | None:
        """`state` with what cannot load replaced: the primary by the newest version that
        loads, a canary or shadow by nothing. None when no version of the model loads."""
        primary = state.primary
        if await self._ensure_loaded(model, primary) is None:
            candidates = [v for v in reversed(self.repo.scan().get(model, {})) if v != primary]
            for version in candidates:
                if await self._ensure_loaded(model, version) is not None:
                    log.warning(
                        "model %s: version %s cannot be loaded (%s); serving version %s instead",
                        model,
                        primary,
                        self.refused.get((model, primary), "not in the repository"),
                        version,
                        extra={"model": model, "version": version},
                    )
                    primary = version
                    break
            else:
                log.error("model %s: no version could be loaded; it is not served", model)
                return None
        new = replace(state, primary=primary)
        for role, extra in (("canary", state.canary), ("shadow", state.shadow)):
            if extra and (extra == primary or await self._ensure_loaded(model, extra) is None):
                log.warning(
                    "model %s: %s version %s dropped: it cannot be loaded", model, role, extra
                )
                if role == "canary":
                    new = replace(new, canary=None, canary_weight=0.0)
                else:
                    new = replace(new, shadow=None)
        return new

    async def _apply(self, model: str, state: RouteState | None) -> None:
        """Load what `state` needs, swap the route, retire what it no longer needs."""
        if state is None:
            self.routes.pop(model, None)
            self.desired.pop(model, None)
            for key in [k for k in self.versions if k[0] == model]:
                self._retire(key)
            return
        try:
            live = {}
            for version in sorted(state.versions()):
                loaded = await self._ensure_loaded(model, version)
                if loaded is None:
                    if (model, version) not in self.refused:
                        self.repo.path(model, version)  # 404 naming the versions there are
                    reason = self.refused.get((model, version), "refused")
                    raise PackageError(f"model {model} version {version} was refused: {reason}")
                live[version] = loaded
        except Exception:
            self._retire_unused(model)
            raise
        self.routes[model] = Route(
            state,
            primary=live[state.primary],
            canary=live.get(state.canary) if state.canary else None,
            shadow=live.get(state.shadow) if state.shadow else None,
        )
        self.desired[model] = state
        if state.shadow and self.shadow_stats.get(model, ShadowStats("")).version != state.shadow:
            self.shadow_stats[model] = ShadowStats(state.shadow)
        for version in live:
            self.metrics.canary_weight.labels(model, version).set(
                state.canary_weight if version == state.canary else 0.0
            )
        self._retire_unused(model)

    def _retire_unused(self, model: str) -> None:
        state = self.desired.get(model)
        keep = state.versions() if state else set()
        for key in [k for k in self.versions if k[0] == model and k[1] not in keep]:
            self._retire(key)

    async def _ensure_loaded(self, model: str, version: str) -> ModelVersion | None:
        existing = self.versions.get((model, version))
        if existing is not None and existing.ready:
            return existing
        try:
            path = self.repo.path(model, version)
        except NotFoundError as exc:  # nothing to refuse: no label, no index row for it
            log.error("model %s version %s: %s", model, version, exc.message)
            return None
        try:
            mv = await asyncio.to_thread(load_version, model, version, path, self.settings)
        except Exception as exc:
            reason = exc.message if isinstance(exc, PackageError) else repr(exc)
            reason = self.refused[(model, version)] = self.repo.redact(reason)
            self.metrics.load_failures.labels(model, version).inc()
            log.error("refused model %s version %s: %s", model, version, reason)
            return None
        self.refused.pop((model, version), None)
        mv.start(asyncio.get_running_loop(), self._batch_observer(model, version))
        self.versions[(model, version)] = mv
        self.metrics.loaded.labels(model, version).set(1)
        self.dispatcher.model_loaded(model, version, mv.package)
        log.info(
            "loaded model %s version %s", model, version, extra={"model": model, "version": version}
        )
        return mv

    def _batch_observer(self, model: str, version: str) -> Any:
        size = self.metrics.batch_size.labels(model, version)
        compute = self.metrics.compute_time.labels(model, version)

        def observe(samples: int, seconds: float) -> None:
            size.observe(samples)
            compute.observe(seconds)

        return observe

    def _retire(self, key: tuple[str, str]) -> None:
        mv = self.versions.pop(key, None)
        if mv is None:
            return
        mv.state = "DRAINING"
        task = asyncio.get_running_loop().create_task(self._drain(mv))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _drain(self, mv: ModelVersion) -> None:
        await mv.drain()
        self.metrics.loaded.labels(mv.model, mv.version).set(0)
        self.metrics.canary_weight.labels(mv.model, mv.version).set(0)
        self.dispatcher.model_unloaded(mv.model, mv.version)
        log.info(
            "unloaded model %s version %s",
            mv.model,
            mv.version,
            extra={"model": mv.model, "version": mv.version},
        )

    # ---- admin operations (serialized; shared with other workers via the store) --------
    async def change(self, model: str, plan: Any, need_current: bool = True) -> RouteState | None:
        """Apply `plan(current_state) -> new_state | None` and publish it."""
        async with self._lock, self.store.locked():
            revision, stored = self.store.load()
            if stored is not None and revision != self.revision:
                await self._converge(stored)
                self.revision = revision
            current = self.current(model) if need_current else self.desired.get(model)
            new_state = plan(current)
            await self._apply(model, new_state)
            self.revision = self.store.save(self.desired)
            return new_state

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.state_poll_s)
            try:
                if not self.store.changed_since(self.revision):
                    continue
                async with self._lock, self.store.locked():
                    revision, stored = self.store.load()
                    if stored is not None and revision != self.revision:
                        await self._converge(stored)
                        self.revision = revision
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot follow the serving state file")

    def latest_version(self, model: str) -> str:
        return list(self.repo.versions(model))[-1]

    def current(self, model: str) -> RouteState:
        state = self.desired.get(model)
        if state is None:
            raise NotFoundError(f"model {model!r} is not being served; load it first")
        return state

    async def load(self, model: str, version: str | None) -> RouteState | None:
        def plan(current: RouteState | None) -> RouteState:
            if version is not None:
                return rollout.plan_load(current, version, "pinned")
            if current is not None and current.policy == "pinned":
                return rollout.plan_load(current, current.primary, "pinned")
            return rollout.plan_load(current, self.latest_version(model), "latest")

        self.repo.versions(model)  # 404 for a model the repository does not hold
        return await self.change(model, plan, need_current=False)

    async def unload(self, model: str, version: str | None) -> RouteState | None:
        self.current(model)
        if version is None:
            return await self.change(model, lambda current: None)
        return await self.change(model, lambda c: rollout.plan_unload_version(c, version))

    def index(self) -> list[dict[str, Any]]:
        rows = []
        for model, versions in self.repo.scan().items():
            state = self.desired.get(model)
            for version in versions:
                rows.append(self._index_row(model, version, state))
        return rows

    def _index_row(self, model: str, version: str, state: RouteState | None) -> dict[str, Any]:
        row: dict[str, Any] = {"name": model, "version": version}
        mv = self.versions.get((model, version))
        if mv is not None:
            row["state"] = mv.state
        elif (model, version) in self.refused:
            row["state"], row["reason"] = "UNAVAILABLE", self.refused[(model, version)]
        else:
            row["state"] = "UNLOADED"
        if state is not None:
            roles = {state.primary: "primary", state.canary: "canary", state.shadow: "shadow"}
            if version in roles:
                row["role"] = roles[version]
        return row

    def status(self, model: str) -> dict[str, Any]:
        state = self.current(model)
        versions = {
            v: {"state": mv.state, "pending": mv.pending, "batch_limit": mv.preferred_batch}
            for (m, v), mv in self.versions.items()
            if m == model
        }
        stats = self.shadow_stats.get(model)
        return {
            "name": model,
            "routing": state.to_json(),
            "versions": versions,
            "shadow": stats.to_json() if stats and state.shadow else None,
            "revision": self.revision,
        }

    def require_route(self, model: str) -> Route:
        route = self.route(model)
        if not route.primary.ready:
            raise UnavailableError(f"model {model} is not ready")
        return route
