"""HTTP routes of the monitor extension: feedback, status, manual checks, dashboard.

Everything whose cost grows with the request — parsing and scoring a feedback batch, a drift
check, building the dashboard — runs on the server's CPU pool (`server.offload`), never on
the event loop.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from scaledl.errors import UsageError
from scaledl.monitor.dashboard import finite, render_dashboard
from scaledl.serve.codec import to_array
from scaledl.validation import validate

if TYPE_CHECKING:
    from scaledl.monitor.extension import MonitorExtension
    from scaledl.monitor.live import ModelMonitor
    from scaledl.serve.extensions import ServerContext

MAX_FEEDBACK_ROWS = 10_000
MAX_FEEDBACK_VALUES = 4_000_000
PARSE_INLINE_BYTES = 64 * 1024  # bigger feedback bodies are parsed in a parser process
INTEGER = re.compile(r"-?[0-9]{1,18}")


class Feedback(BaseModel):
    """True labels for earlier requests (by id) or for raw inputs."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, description="request id (the X-Request-ID response header)")
    inputs: list[Any] | None = Field(None, description="raw rows, as for /predict")
    label: int | str | None = None
    labels: list[int | str] | None = None
    values: list[Any] | None = Field(
        None, description="regressors: the values that came true (one per output)"
    )
    version: str | None = None


def install_routes(app: FastAPI, server: ServerContext, ext: MonitorExtension) -> None:
    infer = [server.require_scope("infer")]
    admin = [server.require_scope("admin")]

    feedback_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Feedback.model_json_schema()}},
        }
    }

    @app.post("/v2/models/{model}/feedback", dependencies=infer, openapi_extra=feedback_body)
    async def feedback(model: str, request: Request) -> dict[str, Any]:
        raw = await request.body()  # already read (and size-capped) by the front door
        offload = server.offload
        if len(raw) > PARSE_INLINE_BYTES:  # parsing big JSON would hold the GIL: a process
            body, rows = await offload.run_process(parse_feedback, raw)
        else:
            body, rows = parse_feedback(raw)
        result: dict[str, Any] = await offload.run(_feedback, ext, model, body, rows)
        return result

    @app.get("/v2/models/{model}/monitor", dependencies=infer)
    async def status(model: str) -> dict[str, Any]:
        return {"model": model, "versions": [m.status() for m in ext.versions(model)]}

    @app.post("/v2/models/{model}/monitor/check", dependencies=admin)
    async def check(model: str) -> dict[str, Any]:
        ext.versions(model)  # 404 for an unknown model
        results = await server.offload.run(ext.check_all, model)
        return {"model": model, "checks": [r.to_json() if r else None for r in results]}

    @app.get("/dashboard/data", dependencies=infer)
    async def dashboard_data() -> dict[str, Any]:
        payload: dict[str, Any] = await server.offload.run(dashboard_payload, ext)
        return payload

    @app.get("/dashboard", dependencies=infer, response_class=HTMLResponse)
    async def dashboard() -> HTMLResponse:
        def page() -> str:
            return render_dashboard(dashboard_payload(ext))

        return HTMLResponse(await server.offload.run(page))


def dashboard_payload(ext: MonitorExtension) -> dict[str, Any]:
    monitors = ext.all_monitors()
    return finite({"generated_at": time.time(), "models": [m.chart_data() for m in monitors]})


def _labels(monitor: ModelMonitor, body: Feedback) -> np.ndarray:
    if not monitor.classification:
        raise UsageError(
            f"{monitor.model} is a regressor: send the values that came true as `values`"
        )
    given = (
        body.labels if body.labels is not None else [body.label] if body.label is not None else []
    )
    if not given:
        raise UsageError("feedback needs `label` (one sample) or `labels` (one per sample)")
    names = (monitor.profile.meta.get("labels") if monitor.profile else None) or []
    k = monitor.num_classes
    out = []
    for value in given:
        if isinstance(value, str) and not INTEGER.fullmatch(value):
            if value not in names:
                shown = value if len(value) <= 40 else value[:40] + "…"
                raise UsageError(f"label {shown!r} is not a class of {monitor.model}: {names}")
            out.append(names.index(value))
            continue
        idx = int(value)
        if not 0 <= idx < max(k, 1):
            raise UsageError(f"label {idx} is out of range: {monitor.model} has {k} classes")
        out.append(idx)
    return np.asarray(out, np.int64)


def parse_feedback(raw: bytes) -> tuple[Feedback, np.ndarray | None]:
    """The feedback request, its raw `inputs` rows split off as a float32 array."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"feedback body is not valid JSON ({exc})") from None
    body = validate(Feedback, doc, "invalid feedback", UsageError)
    if body.inputs is None:
        return body, None
    if len(body.inputs) > MAX_FEEDBACK_ROWS:
        raise UsageError(f"`inputs` must hold at most {MAX_FEEDBACK_ROWS} raw rows per request")
    if body.inputs and all(isinstance(row, str) for row in body.inputs):  # texts
        texts = np.empty(len(body.inputs), dtype=object)
        texts[:] = body.inputs
        return body.model_copy(update={"inputs": []}), texts
    try:
        rows = to_array(body.inputs, np.float32)
    except (TypeError, ValueError):
        raise UsageError("`inputs` must be numeric raw rows (nested lists)") from None
    return body.model_copy(update={"inputs": []}), rows


def _feedback(
    ext: MonitorExtension, model: str, body: Feedback, rows: np.ndarray | None
) -> dict[str, Any]:
    if (body.id is None) == (rows is None):
        raise UsageError("feedback needs exactly one of `id` (a request id) or `inputs` (raw rows)")
    if body.values is not None:
        return _value_feedback(ext, model, body, rows)
    if not ext.versions(model)[-1].classification:
        raise UsageError(f"{model} is a regressor: send the values that came true as `values`")
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
        assert rows is not None
        raw = _raw_rows(monitor, ext, rows)
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


def _value_feedback(
    ext: MonitorExtension, model: str, body: Feedback, rows: np.ndarray | None
) -> dict[str, Any]:
    """Realised values for a regressor's or forecaster's earlier answers → live error."""
    actual = _values(body.values or [])
    if body.id is not None:
        candidates = ext.versions(model)
        if body.version is not None:
            candidates = [ext.monitor_for(model, body.version)]
        matched = [m for m in candidates if body.id in m.pending_values] or candidates[-1:]
        for monitor in matched:
            monitor.feedback_values_for_request(body.id, actual)
    else:
        monitor = ext.monitor_for(model, body.version)
        assert rows is not None
        raw = _raw_rows(monitor, ext, rows)
        monitor.feedback_values(ext.outputs_raw(monitor, raw), actual)
        matched = [monitor]
    return {
        "model": model,
        "versions": [
            {"version": m.version, "error": m.errors.error()[0], "samples": m.errors.error()[1]}
            for m in matched
        ],
    }


def _values(values: list[Any]) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError("`values` must be numbers (nested lists of one shape)") from None
    if array.size == 0 or array.size > MAX_FEEDBACK_VALUES:
        raise UsageError(f"`values` must hold 1–{MAX_FEEDBACK_VALUES} numbers")
    return array


def _raw_rows(monitor: ModelMonitor, ext: MonitorExtension, raw: np.ndarray) -> np.ndarray:
    spec = ext.packages[(monitor.model, monitor.version)].manifest.preprocessing
    if spec is None:
        raise UsageError(
            f"{monitor.model} version {monitor.version} has no preprocessing in its manifest, "
            "so raw `inputs` cannot be scored; give feedback by request `id`"
        )
    if raw.dtype == object or not spec.sample_shape:  # texts: the modality reads its own rows
        from scaledl.modalities import modality_of

        rows = raw.tolist() if raw.dtype == object else raw
        return np.asarray(modality_of(spec).rows_from_json(spec, rows))
    shape = spec.sample_shape
    per_row = max(1, int(np.prod(shape)))
    if raw.size == 0 or raw.size % per_row or raw.size // per_row > MAX_FEEDBACK_ROWS:
        raise UsageError(
            f"`inputs` must hold 1–{MAX_FEEDBACK_ROWS} raw rows of shape {list(shape)}; "
            f"got an array of shape {list(raw.shape)}"
        )
    if not np.isfinite(raw).all():
        raise UsageError("`inputs` must be finite numbers")
    return raw.reshape(-1, *shape)
