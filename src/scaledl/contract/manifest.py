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
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from scaledl.contract.files import MANIFEST, MAX_FILES, check_file_name
from scaledl.contract.preprocessing import MAX_RANK, NormalizedSpec, Preprocessing

FORMAT_PREFIX = "scaledl.package/"
FORMAT_VERSION = 2
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"

# Names end up in URLs, metric labels, folder names and log lines: keep them plain.
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
RelativePath = Annotated[str, AfterValidator(check_file_name)]
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
    # strict: a manifest is JSON, so a value of the wrong JSON type is an error, never coerced
    model_config = ConfigDict(extra="forbid", strict=True)


class _Open(BaseModel):
    """A section whose other keys are kept as they are (written by other tools or versions)."""

    model_config = ConfigDict(extra="allow", strict=True)

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

    @field_validator("data")
    @classmethod
    def _source_is_text(cls, data: dict[str, Any] | None) -> dict[str, Any] | None:
        if data is not None and "source" in data and not isinstance(data["source"], str):
            raise ValueError("data.source must be a string (a path, or digits)")
        return data

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


class DecisionRule(_Strict):
    """How a binary classifier turns probabilities into a label: `positive_label` when its
    probability is at least `threshold` (chosen on the validation split, never on test rows)."""

    positive_label: Annotated[str, StringConstraints(max_length=256)]
    threshold: float = Field(ge=0.0, le=1.0)
    chosen_by: Annotated[str, StringConstraints(max_length=256)] = "argmax"


class Runtime(_Open):
    """How the graph should be run: ONNX Runtime session options and the engine `optimize`
    measured fastest on its machine (`onnxruntime`, or `openvino` where it is installed).

    The engine is a preference, never a requirement: the ONNX graph is the artifact, and a
    server without that engine, or whose engine's outputs differ, runs ONNX Runtime.
    """

    session_config: dict[str, str] = Field(default_factory=dict)
    engine: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")] = "onnxruntime"
    engines: dict[str, Any] | None = None  # what was measured: p25 per engine, parity, CPU


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
    labels: list[Annotated[str, StringConstraints(max_length=1024)]] | None = Field(
        None, max_length=1_000_000
    )
    preprocessing: SerializeAsAny[Preprocessing] | None = None
    precision: str = "fp32"
    metrics: Metrics = Field(default_factory=Metrics)
    parity: Parity = Field(default_factory=Parity)
    export: ExportInfo = Field(default_factory=ExportInfo)
    lineage: Lineage = Field(default_factory=Lineage)
    environment: dict[str, Any] = Field(default_factory=dict)
    runtime: Runtime | None = None
    decision: DecisionRule | None = None
    files: dict[RelativePath, Sha256]
    model_file: RelativePath = "model.onnx"
    monitoring: Monitoring | None = None
    hmac: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_number(cls, value: Any) -> Any:
        """A version may be written as a JSON number (1, 2): it is the same name."""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**18:
            return str(value)
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _numeric_labels(cls, value: Any) -> Any:
        """Class names written as numbers (0, 1, …) name the same classes."""
        if isinstance(value, list):
            return [
                str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in value
            ]
        return value

    @field_validator("labels")
    @classmethod
    def _one_label_per_output(cls, labels: list[str] | None, info: ValidationInfo) -> Any:
        signature = info.data.get("signature")
        if labels is None or signature is None or info.data.get("task") != "classification":
            return labels
        output = signature.output
        width = output.shape[-1] if output.shape else -1
        if width > 0 and width != len(labels):
            raise ValueError(
                f"names {len(labels)} classes but the model's output {output.name!r} has {width}"
            )
        return labels

    @field_validator("preprocessing")
    @classmethod
    def _preprocessing_fits_the_input(cls, spec: Any, info: ValidationInfo) -> Any:
        signature = info.data.get("signature")
        if not isinstance(spec, NormalizedSpec) or signature is None:
            return spec
        shape = signature.input.shape[1:]
        fixed = all(d >= 0 for d in shape)
        if fixed and list(shape) != list(spec.raw_shape):
            raise ValueError(
                f"raw_shape {spec.raw_shape} disagrees with the input "
                f"{signature.input.name!r} of shape {signature.input.shape}"
            )
        return spec

    @field_validator("files", mode="before")
    @classmethod
    def _files_map(cls, files: Any) -> Any:
        if not isinstance(files, dict):
            raise ValueError("must map file names to sha256 hex digests")
        if len(files) > MAX_FILES:
            raise ValueError(f"lists {len(files)} files; a package holds at most {MAX_FILES}")
        if MANIFEST in files:
            raise ValueError(f"must not list {MANIFEST} itself")
        return files

    @model_validator(mode="after")
    def _names_point_at_listed_files(self) -> Manifest:
        used = {"model_file": self.model_file}
        if self.monitoring is not None:
            used["monitoring.profile"] = self.monitoring.profile
        for where, rel in used.items():
            if rel not in self.files:
                listed = ", ".join(sorted(self.files)) or "none"
                raise ValueError(
                    f"{where} names {rel!r}, which is not one of the listed files ({listed})"
                )
        if self.decision is not None and self.decision.positive_label not in (self.labels or []):
            raise ValueError(
                f"decision.positive_label {self.decision.positive_label!r} is not among the labels"
            )
        named = self.preprocessing.package_files() if self.preprocessing is not None else {}
        for field, (rel, sha256) in named.items():
            if self.files.get(rel) != sha256:
                state = "is not listed in files" if rel not in self.files else "has another sha256"
                raise ValueError(f"preprocessing.{field} names {rel!r}, which {state}")
        return self

    @property
    def has_weights(self) -> bool:
        return "weights.safetensors" in self.files and "model.json" in self.files

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to `manifest.json` (absent optional sections left out; `labels`
        is always there, null for regressors)."""
        body = self.model_dump(mode="json", exclude_none=True)
        body["labels"] = self.labels
        for key in ("files", "hmac"):  # the checksums and signature close the document
            if key in body:
                body[key] = body.pop(key)
        return body
