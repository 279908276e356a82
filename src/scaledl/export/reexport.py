"""Re-export a package's ONNX graph from its PyTorch weights (e.g. for another opset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scaledl.errors import PackageError, UsageError
from scaledl.package import MODEL_JSON, MODEL_ONNX, SAMPLE, WEIGHTS, open_package, update_package


def load_module(pkg: Any) -> Any:
    """Rebuild the package's nn.Module from model.json + weights.safetensors."""
    from scaledl.export.packaging import load_weights
    from scaledl.models import ModelSpec

    if not pkg.has_weights:
        raise PackageError(
            f"package {pkg.source} has no PyTorch weights ({WEIGHTS} + {MODEL_JSON})"
        )
    spec = ModelSpec.from_json(pkg.read_json(MODEL_JSON))
    return load_weights(spec.build(), pkg.file(WEIGHTS))


def _dynamic_axes(pkg: Any) -> dict[int, str]:
    spec = pkg.manifest.preprocessing
    if spec is None:
        return {}
    from scaledl.modalities import modality_of

    return modality_of(spec).dynamic_axes()


def reexport_package(
    path: Path | str, opset: int | None = None, exporter: str = "auto"
) -> dict[str, Any]:
    from scaledl.export.onnx_export import export_onnx
    from scaledl.export.packaging import sample_npz

    if exporter not in ("auto", "dynamo", "legacy"):
        raise UsageError(f"--exporter {exporter!r}: valid values are auto, dynamo, legacy")
    if opset is not None and not 13 <= opset <= 23:
        raise UsageError(f"--opset {opset}: valid opsets are 13 to 23")
    pkg = open_package(path)
    if pkg.manifest.lineage.transforms:
        raise UsageError(
            f"package {path} was optimized ({pkg.manifest.lineage.transforms}); "
            "re-export its parent instead"
        )
    model = load_module(pkg)
    with np.load(pkg.file(SAMPLE), allow_pickle=False) as sample:
        raw, x = sample["raw"], sample["input"]
    opset = opset or pkg.manifest.export.opset
    tolerance = pkg.manifest.parity.tolerance
    axes = _dynamic_axes(pkg)
    result = export_onnx(model, x, opset, exporter, tolerance, dynamic_axes=axes)
    parity = {**pkg.manifest.parity.model_dump(mode="json"), "max_abs_error": result.max_abs_error}
    update_package(
        Path(path),
        add_files={
            MODEL_ONNX: result.onnx_bytes,
            SAMPLE: sample_npz(raw, x, result.parity_outputs),
        },
        manifest_updates={
            "export": {"exporter": result.exporter, "opset": opset},
            "parity": parity,
        },
    )
    return {"exporter": result.exporter, "opset": opset, "max_abs_error": result.max_abs_error}
