"""Typed server settings: one object for the CLI flags, the environment, the workers and tests.

Each field's default and description live here once: `scaledl serve` builds its flags from them
(`scaledl.cli.options`) and reads the same fields from `SCALEDL_`-prefixed environment variables
(`scaledl.config.environment`). `ServeSettings` is JSON-serializable on purpose: with
`--workers N` it travels to each worker process through `SCALEDL_SERVE_SETTINGS`. Per-model
batching can be overridden by a YAML/JSON file (`--model-config`) mapping model names to
`BatchingConfig` fields.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scaledl.config.flags import flag
from scaledl.errors import UsageError
from scaledl.validation import explain, validate

SETTINGS_ENV = "SCALEDL_SERVE_SETTINGS"  # the settings handed to worker processes, as JSON
MIB = 1 << 20
KIB = 1 << 10
FD_RESERVE = 64  # descriptors kept free for model files, logs, the key and state files


class BatchingConfig(BaseModel):
    """Dynamic batching and admission control for one model."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(
        32, ge=1, le=4096, description="most samples merged into one ONNX Runtime call"
    )
    max_queue_delay_ms: float = Field(
        0.0,
        ge=0.0,
        le=10_000,
        description="how long the first queued request may wait for others to fill a batch",
    )
    max_queue: int = Field(
        256, ge=1, description="requests pending per model version before 429 + Retry-After"
    )
    request_timeout_s: float = Field(
        30.0,
        gt=0.0,
        description="seconds before a request still unanswered gets 504",
        json_schema_extra=flag("--request-timeout"),
    )
    instances: int = Field(
        1, ge=1, le=64, description="runner threads running the model concurrently"
    )
    tune_batch_size: bool = Field(
        True,
        description="at load, measure batch sizes and cap batches at the fastest per sample",
        json_schema_extra=flag("--batch-tuning/--no-batch-tuning"),
    )


class ExtensionSpec(BaseModel):
    """An extension to enable: a registered name (or `module:factory`) and its options."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class ServeSettings(BaseModel):
    """Everything `scaledl serve` needs; defaults are the secure, single-process ones."""

    model_config = ConfigDict(extra="forbid")

    source: Path = Field(description="a model package, or a repository REPO/<model>/<version>/")
    host: str = Field("127.0.0.1", description="address to bind (127.0.0.1: loopback only)")
    port: int = Field(
        8000, ge=0, le=65535, description="TCP port (0: any free port; the log says which)"
    )
    grpc_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="also serve V2 over gRPC on this port (0: any free port; default: no gRPC)",
    )
    workers: int = Field(1, ge=1, le=64, description="server processes sharing the port")
    api_keys: Path | None = Field(None, description="key file from `scaledl keys create`")
    no_auth: bool = Field(
        False,
        description="serve without API keys (warns at start-up)",
        json_schema_extra=flag("--no-auth"),
    )
    metrics_open: bool = Field(
        False,
        description="serve /metrics without an API key",
        json_schema_extra=flag("--metrics-open"),
    )
    ssl_certfile: Path | None = Field(None, description="TLS certificate (PEM)")
    ssl_keyfile: Path | None = Field(None, description="TLS private key (PEM)")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="allow browser calls from this origin (repeatable; default: CORS off)",
        json_schema_extra=flag("--cors-origin"),
    )
    max_body_bytes: int = Field(
        16 * MIB,
        ge=1024,
        description="largest request body (bigger: 413)",
        json_schema_extra=flag("--max-body-mb", unit=MIB, unit_name="MiB"),
    )
    allow_nonfinite: bool = Field(
        False,
        description="pass NaN/Inf inputs to the model instead of refusing them (400)",
        json_schema_extra=flag("--allow-nonfinite"),
    )
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    model_batching: dict[str, BatchingConfig] = Field(
        default_factory=dict, description="per-model batching overrides (--model-config FILE)"
    )
    pins: dict[str, str] = Field(
        default_factory=dict,
        description="pin a model's version: MODEL=VERSION (repeatable); default policy: latest",
        json_schema_extra=flag("--pin", metavar="MODEL=VERSION"),
    )
    state_file: Path | None = Field(
        None,
        description="keep the rollout state (primary/canary/shadow) in this file across restarts",
    )
    ort_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="ONNX Runtime intra-op threads per worker (default: cores / workers)",
        json_schema_extra=flag("--threads"),
    )
    ort_inter_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="ONNX Runtime inter-op threads",
        json_schema_extra=flag("--inter-threads"),
    )
    ort_spinning: bool = Field(
        False,
        description="let ORT threads spin-wait (faster on dedicated idle cores; steals CPU "
        "otherwise)",
        json_schema_extra=flag("--ort-spinning/--no-ort-spinning"),
    )
    access_log: bool = Field(
        False,
        description="one JSON log line per request (errors are always logged)",
        json_schema_extra=flag("--access-log"),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="least severe log level printed"
    )
    shutdown_grace_s: float = Field(
        0.0,
        ge=0.0,
        le=600,
        description="after SIGTERM, keep accepting this many seconds with readiness false",
        json_schema_extra=flag("--shutdown-grace"),
    )
    drain_timeout_s: float = Field(
        30.0,
        gt=0.0,
        le=3600,
        description="most seconds to finish in-flight requests at shutdown",
        json_schema_extra=flag("--drain-timeout"),
    )
    state_poll_s: float = Field(
        0.5, gt=0.0, le=60, description="how often workers re-read the shared rollout state"
    )
    extensions: list[ExtensionSpec] = Field(
        default_factory=list, description="server extensions to enable (--extension NAME)"
    )
    # Limits against hostile clients (docs/security.md says what each one defends).
    header_timeout_s: float = Field(
        10.0,
        gt=0.0,
        le=3600,
        description="seconds a client has to send a request's headers (slowloris guard; else 408)",
        json_schema_extra=flag("--header-timeout"),
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0.0,
        le=3600,
        description="seconds to receive a request body, and for a client to take a response "
        "(else 408)",
        json_schema_extra=flag("--body-timeout"),
    )
    idle_timeout_s: float = Field(
        30.0,
        gt=0.0,
        le=3600,
        description="close a keep-alive connection idle this many seconds",
        json_schema_extra=flag("--idle-timeout"),
    )
    max_connections: int | None = Field(
        None,
        ge=8,
        le=1_000_000,
        description="open connections per worker; at the cap the longest-idle one is closed "
        "(default: the open-file limit minus 64, at most 10,000)",
    )
    max_header_bytes: int = Field(
        64 * KIB,
        ge=1024,
        le=MIB,
        description="largest request line + headers (bigger: 431)",
        json_schema_extra=flag("--max-header-kb", unit=KIB, unit_name="KiB", whole=True),
    )
    max_json_bytes: int = Field(
        2 * MIB,
        ge=1024,
        description="largest JSON document parsed (bigger: 413; send big tensors as binary)",
        json_schema_extra=flag("--max-json-mb", unit=MIB, unit_name="MiB"),
    )
    max_samples_per_request: int = Field(
        4096,
        ge=1,
        le=1_000_000,
        description="most samples in one request (bigger: 413); large ones run batch by batch",
    )
    max_image_pixels: int = Field(
        16_000_000,
        ge=1,
        le=200_000_000,
        description="largest /predict image in pixels (bigger: 413)",
    )
    cpu_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="threads decoding big bodies and images off the event loop (default: "
        "cores, 2–8)",
    )

    def batching_for(self, model: str) -> BatchingConfig:
        return self.model_batching.get(model, self.batching)

    def intra_threads(self) -> int:
        """ONNX Runtime intra-op threads per session: the cores shared among workers."""
        if self.ort_threads:
            return self.ort_threads
        return max(1, (os.cpu_count() or 1) // self.workers)

    def connection_limit(self) -> int:
        """Open connections per worker: leave file descriptors for models, logs and files."""
        if self.max_connections:
            return self.max_connections
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 1 << 20
        return max(8, min(10_000, soft - FD_RESERVE))

    def offload_threads(self) -> int:
        if self.cpu_threads:
            return self.cpu_threads
        return max(2, min(8, (os.cpu_count() or 1) // self.workers))

    def to_env(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_env(cls) -> ServeSettings:
        """A worker's settings, as its parent wrote them (never the operator's variables)."""
        from pydantic import ValidationError

        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise UsageError(f"{SETTINGS_ENV} is not set; start workers with `scaledl serve`")
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise UsageError(explain(exc, SETTINGS_ENV, cls)) from None


def load_model_config(path: Path, base: BatchingConfig) -> dict[str, BatchingConfig]:
    """Read `{model: {max_batch_size: …, …}}` from YAML/JSON; unset fields keep `base`'s."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--model-config {path}: cannot read it ({exc})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"--model-config {path}: expected a mapping of model name → settings")
    out: dict[str, BatchingConfig] = {}
    for model, fields in raw.items():
        if not isinstance(fields, dict):
            raise UsageError(f"--model-config {path}: {model!r} must map to settings")
        where = f"--model-config {path}: model {model!r}"
        out[str(model)] = validate(
            BatchingConfig, {**base.model_dump(), **fields}, where, UsageError
        )
    return out
