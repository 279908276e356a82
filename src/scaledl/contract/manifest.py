"""The model package's manifest as typed models: the contract every stage shares.

`manifest.json` is validated once, when a package is opened (`scaledl.package.open_package`);
every stage then reads attributes (`pkg.manifest.preprocessing.mean`), never string keys. A
manifest that an old version wrote is upgraded in memory first (`contract.migrations`); one that
was edited by hand into something invalid fails there with one message naming the field.

Open-ended sections (`metrics`, `lineage`, `export`, `environment`) type the keys the stages read
and keep any other key as it is, so a package written by a newer scaledl still opens.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    field_validator,
    model_validator,
)

from scaledl.contract.preprocessing import MAX_RANK, Preprocessing

FORMAT_PREFIX = "scaledl.package/"
FORMAT_VERSION = 2
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"

# Names end up in URLs, metric labels, folder names and log lines: keep them plain.
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
RelativePath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$"),
]
Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
Task = Literal["classification", "regression"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """A section whose other keys are kept as they are (written by other tools or versions)."""

    model_config = ConfigDict(extra="allow")

    def get(self, key: str, default: Any = None) -> Any:
        """A key of this section, typed or not (for keys only some packages carry)."""
        value = getattr(self, key, None) if key in type(self).model_fields else None
        if value is None:
            value = (self.model_extra or {}).get(key)
        return default if value is None else value


class TensorSpec(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    datatype: Datatype
    shape: list[Annotated[int, Field(ge=-1, le=1 << 31)]] = Field(max_length=MAX_RANK)


class Signature(_Strict):
    inputs: list[TensorSpec] = Field(min_length=1, max_length=64)
    outputs: list[TensorSpec] = Field(min_length=1, max_length=64)

    @property
    def input(self) -> TensorSpec:
        """The first input: what single-input stages (evaluate, /predict, monitor) feed."""
        return self.inputs[0]

    @property
    def output(self) -> TensorSpec:
        return self.outputs[0]


class Parity(_Open):
    reference: str = "pytorch-fp32"
    max_abs_error: float | None = None
    tolerance: float = Field(1e-4, gt=0.0)
    samples: int | None = None


class ExportInfo(_Open):
    exporter: str = "auto"
    opset: int = Field(18, ge=7, le=30)
    quantization: dict[str, Any] | None = None


class LatencyFigures(_Open):
    batch_size: int | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None


class Metrics(_Open):
    """Measured with ONNX Runtime on the test split (plus training figures)."""

    accuracy: float | None = None
    loss: float | None = None
    rmse: float | None = None
    mae: float | None = None
    r2: float | None = None
    val_accuracy: float | None = None
    epochs_run: int | None = None
    confusion_matrix: list[list[int]] | None = None
    latency: LatencyFigures | None = None


class Lineage(_Open):
    """Where the model came from: data, recipe, parent package and what was done to it."""

    data_fingerprint: str | None = None
    split_seed: int = 0
    split_sizes: dict[str, int] | None = None
    recipe_hash: str | None = None
    data: dict[str, Any] | None = None
    augment: dict[str, Any] | None = None
    parent: str | None = None
    parent_name: str | None = None
    parent_version: str | None = None
    transforms: list[str] = Field(default_factory=list)
    optimize: dict[str, Any] | None = None
    maintain: dict[str, Any] | None = None

    @property
    def optimized(self) -> bool:
        return bool(self.transforms)


class Monitoring(_Open):
    profile: RelativePath = "profile.npz"
    format: str | None = None
    projection: dict[str, Any] | None = None
    reference: dict[str, Any] = Field(default_factory=dict)
    reference_accuracy: float | None = None
    tests: list[str] = Field(default_factory=list)


class Runtime(_Open):
    """How the graph should be run (ONNX Runtime session options chosen by `optimize`)."""

    session_config: dict[str, str] = Field(default_factory=dict)


class Manifest(_Strict):
    format: str = FORMAT
    name: Name
    version: Name
    created_at: str | None = None
    task: Task = "classification"
    family: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "custom"
    knobs: dict[str, Any] = Field(default_factory=dict)
    signature: Signature
    # The ONNX graph's own tensors when they differ from what clients send (text: BYTES in,
    # INT64 token ids into the graph); None: the graph takes the signature as it is.
    graph_signature: Signature | None = None
    labels: list[Annotated[str, StringConstraints(max_length=256)]] | None = Field(
        None, max_length=1_000_000
    )
    preprocessing: SerializeAsAny[Preprocessing] | None = None
    precision: str = "fp32"
    metrics: Metrics = Field(default_factory=Metrics)
    parity: Parity = Field(default_factory=Parity)
    export: ExportInfo = Field(default_factory=ExportInfo)
    lineage: Lineage = Field(default_factory=Lineage)
    environment: dict[str, Any] = Field(default_factory=dict)
    monitoring: Monitoring | None = None
    runtime: Runtime | None = None
    model_file: RelativePath = "model.onnx"
    files: dict[RelativePath, Sha256] = Field(max_length=10_000)
    hmac: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None

    @field_validator("files")
    @classmethod
    def _no_parent_paths(cls, files: dict[str, str]) -> dict[str, str]:
        for rel in files:
            if ".." in rel.split("/") or "//" in rel or rel.endswith("/"):
                raise ValueError(f"file name {rel!r} must be a plain path inside the package")
        return files

    @model_validator(mode="after")
    def _names_point_at_listed_files(self) -> Manifest:
        used = {"model_file": self.model_file}
        if self.monitoring is not None:
            used["monitoring.profile"] = self.monitoring.profile
        for where, rel in used.items():
            if rel not in self.files:
                raise ValueError(f"{where} names {rel!r}, which is not among the listed files")
        if self.task == "classification" and self.labels is not None and len(self.labels) < 1:
            raise ValueError("a classifier needs at least one label")
        return self

    @property
    def has_weights(self) -> bool:
        return "weights.safetensors" in self.files and "model.json" in self.files

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to `manifest.json` (absent optional sections left out; `labels`
        is always there, null for regressors)."""
        body = self.model_dump(mode="json", exclude_none=True)
        body["labels"] = self.labels
        return body
