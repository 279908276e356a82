"""Typed server settings: one object for the CLI flags, the worker processes and the tests.

`ServeSettings` is JSON-serializable on purpose: with `--workers N` it travels to each worker
process through an environment variable. Per-model batching can be overridden by a YAML/JSON
file (`--model-config`) mapping model names to `BatchingConfig` fields.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scaledl.errors import UsageError

SETTINGS_ENV = "SCALEDL_SERVE_SETTINGS"
MIB = 1 << 20
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
        30.0, gt=0.0, description="a request still unanswered after this gets 504"
    )
    instances: int = Field(
        1, ge=1, le=64, description="runner threads running the model concurrently"
    )
    tune_batch_size: bool = Field(
        True, description="at load, measure batch sizes and cap batches at the fastest per sample"
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
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    grpc_port: int | None = Field(
        None, ge=0, le=65535, description="serve V2 over gRPC on this port too (None: off)"
    )
    workers: int = Field(1, ge=1, le=64)
    api_keys: Path | None = None
    no_auth: bool = False
    metrics_open: bool = Field(False, description="serve /metrics without a key")
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(16 * MIB, ge=1024)
    allow_nonfinite: bool = False
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    model_batching: dict[str, BatchingConfig] = Field(default_factory=dict)
    pins: dict[str, str] = Field(default_factory=dict, description="model → pinned version")
    state_file: Path | None = None
    ort_threads: int | None = Field(None, ge=1, le=256)
    ort_inter_threads: int = Field(1, ge=1, le=64)
    ort_spinning: bool = False
    access_log: bool = False
    log_level: str = "info"
    shutdown_grace_s: float = Field(0.0, ge=0.0, le=600)
    drain_timeout_s: float = Field(30.0, gt=0.0, le=3600)
    state_poll_s: float = Field(0.5, gt=0.0, le=60)
    extensions: list[ExtensionSpec] = Field(default_factory=list)
    # Limits against hostile clients (docs/security.md says what each one defends).
    header_timeout_s: float = Field(
        10.0, gt=0.0, le=3600, description="a request's headers must arrive within this"
    )
    body_timeout_s: float = Field(
        60.0, gt=0.0, le=3600, description="a body must arrive, and a response be taken, within"
    )
    idle_timeout_s: float = Field(
        30.0, gt=0.0, le=3600, description="close a keep-alive connection idle this long"
    )
    max_connections: int | None = Field(
        None, ge=8, le=1_000_000, description="open connections (default: from the fd limit)"
    )
    max_header_bytes: int = Field(64 * 1024, ge=1024, le=MIB)
    max_json_bytes: int = Field(2 * MIB, ge=1024, description="largest JSON document parsed")
    max_samples_per_request: int = Field(4096, ge=1, le=1_000_000)
    max_image_pixels: int = Field(16_000_000, ge=1, le=200_000_000)
    cpu_threads: int | None = Field(
        None, ge=1, le=256, description="threads for decoding and other CPU work off the loop"
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
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise UsageError(f"{SETTINGS_ENV} is not set; start workers with `scaledl serve`")
        return cls.model_validate_json(raw)


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
        try:
            out[str(model)] = BatchingConfig.model_validate({**base.model_dump(), **fields})
        except ValidationError as exc:
            valid = ", ".join(BatchingConfig.model_fields)
            raise UsageError(
                f"--model-config {path}: model {model!r}: {exc.errors()[0]['msg']} "
                f"(valid keys: {valid})"
            ) from None
    return out
