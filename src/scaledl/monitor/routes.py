"""HTTP routes of the monitor extension: feedback, status, manual checks, dashboard."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from scaledl.errors import UsageError

if TYPE_CHECKING:
    from scaledl.monitor.extension import MonitorExtension
    from scaledl.monitor.live import ModelMonitor

MAX_FEEDBACK_ROWS = 10_000


class Feedback(BaseModel):
    """True labels for earlier requests (by id) or for raw inputs."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, description="request id (the X-Request-ID response header)")
    inputs: list[Any] | None = Field(None, description="raw rows, as for /predict")
    label: int | str | None = None
    labels: list[int | str] | None = None
    version: str | None = None


def install_routes(app: FastAPI, server: Any, ext: MonitorExtension) -> None:
    infer = [server.require_scope("infer")]
    admin = [server.require_scope("admin")]

    @app.post("/v2/models/{model}/feedback", dependencies=infer)
    async def feedback(model: str, body: Feedback) -> dict[str, Any]:
        return _feedback(ext, model, body)

    @app.get("/v2/models/{model}/monitor", dependencies=infer)
    async def status(model: str) -> dict[str, Any]:
        return {"model": model, "versions": [m.status() for m in ext.versions(model)]}

    @app.post("/v2/models/{model}/monitor/check", dependencies=admin)
    async def check(model: str) -> dict[str, Any]:
        ext.versions(model)  # 404 for an unknown model
        results = ext.check_all(model)
        return {"model": model, "checks": [r.to_json() if r else None for r in results]}

    @app.get("/dashboard/data", dependencies=infer)
    async def dashboard_data() -> dict[str, Any]:
        return dashboard_payload(ext)

    @app.get("/dashboard", dependencies=infer, response_class=HTMLResponse)
    async def dashboard() -> HTMLResponse:
        from scaledl.monitor.dashboard import render_dashboard

        return HTMLResponse(render_dashboard(dashboard_payload(ext)))


def dashboard_payload(ext: MonitorExtension) -> dict[str, Any]:
    monitors = ext.all_monitors()
    from scaledl.monitor.dashboard import finite

    return finite({"generated_at": time.time(), "models": [m.chart_data() for m in monitors]})


def _labels(monitor: ModelMonitor, body: Feedback) -> np.ndarray:
    given = (
        body.labels if body.labels is not None else [body.label] if body.label is not None else []
    )
    if not given:
        raise UsageError("feedback needs `label` (one sample) or `labels` (one per sample)")
    names = (monitor.profile.meta.get("labels") if monitor.profile else None) or []
    k = monitor.num_classes
    out = []
    for value in given:
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            if value not in names:
                raise UsageError(f"label {value!r} is not a class of {monitor.model}: {names}")
            out.append(names.index(value))
            continue
        idx = int(value)
        if not 0 <= idx < max(k, 1):
            raise UsageError(f"label {idx} is out of range: {monitor.model} has {k} classes")
        out.append(idx)
    return np.asarray(out, np.int64)


def _feedback(ext: MonitorExtension, model: str, body: Feedback) -> dict[str, Any]:
    if (body.id is None) == (body.inputs is None):
        raise UsageError("feedback needs exactly one of `id` (a request id) or `inputs` (raw rows)")
    if body.id is not None:
        counted = []
        candidates = ext.versions(model)
        if body.version is not None:
            candidates = [ext.monitor_for(model, body.version)]
        matched = [m for m in candidates if body.id in m.pending]
        if not matched:
            # Raise the monitor's own 404 with its explanation.
            candidates[-1].feedback_for_request(body.id, np.zeros(0))
        labelled = [(m, _labels(m, body)) for m in matched]  # validate before consuming
        for monitor, labels in labelled:
            monitor.feedback_for_request(body.id, labels)
            counted.append(monitor)
    else:
        monitor = ext.monitor_for(model, body.version)
        raw = _raw_rows(monitor, ext, body.inputs or [])
        labels = _labels(monitor, body)
        monitor.feedback(ext.predict_raw(monitor, raw), labels)
        counted = [monitor]
    return {
        "model": model,
        "versions": [
            {
                "version": m.version,
                "accuracy": m.outcomes.accuracy()[0],
                "labels": m.outcomes.accuracy()[1],
            }
            for m in counted
        ],
    }


def _raw_rows(monitor: ModelMonitor, ext: MonitorExtension, rows: list[Any]) -> np.ndarray:
    from scaledl.modalities import Modality, modality_of

    spec = ext.packages[(monitor.model, monitor.version)].preprocessing
    unit = modality_of(spec)
    if type(unit).rows_from_json is not Modality.rows_from_json:  # its own raw rows (texts)
        if len(rows) > MAX_FEEDBACK_ROWS:
            raise UsageError(f"`inputs` must hold 1–{MAX_FEEDBACK_ROWS} raw rows")
        return np.asarray(unit.rows_from_json(spec, {"instances": rows}))
    shape = spec.sample_shape
    try:
        raw = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise UsageError("`inputs` must be numeric raw rows (nested lists)") from None
    if raw.size == 0 or raw.size % int(np.prod(shape)) or len(raw) > MAX_FEEDBACK_ROWS:
        raise UsageError(
            f"`inputs` must hold 1–{MAX_FEEDBACK_ROWS} raw rows of shape {list(shape)}; "
            f"got an array of shape {list(raw.shape)}"
        )
    if not np.isfinite(raw).all():
        raise UsageError("`inputs` must be finite numbers")
    return raw.reshape(-1, *shape)
