"""Re-export a package's ONNX graph from its PyTorch weights (e.g. for another opset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scaledl.errors import UsageError
from scaledl.export.rebuild import load_module
from scaledl.package import SAMPLE, open_package, update_package
from scaledl.package_files import read_npz

__all__ = ["load_module", "reexport_package"]


def _dynamic_axes(pkg: Any) -> dict[int, str]:
    spec = pkg.manifest.preprocessing
    if spec is None:
        return {}
    from scaledl.modalities import modality_of

    return modality_of(spec).dynamic_axes()


def reexport_package(
    path: Path | str, opset: int | None = None, exporter: str = "auto", trust_code: bool = False
) -> dict[str, Any]:
    """Rebuild the module from the package's weights and replace its ONNX graph (parity-checked).

    A custom model class named in model.json is only imported with `trust_code`.
    """
    from scaledl.export.onnx_export import export_onnx
    from scaledl.export.packaging import sample_npz

    if exporter not in ("auto", "dynamo", "legacy"):
        raise UsageError(f"--exporter {exporter!r}: valid values are auto, dynamo, legacy")
    if opset is not None and not 13 <= opset <= 23:
        raise UsageError(f"--opset {opset}: valid opsets are 13 to 23")
    pkg = open_package(path)
    if pkg.path != Path(path):
        raise UsageError(f"{path} is a .zip; unpack it to a folder to re-export it in place")
    transforms = pkg.manifest.lineage.transforms
    if transforms:
        raise UsageError(
            f"package {path} was optimized ({transforms}); re-export its parent instead"
        )
    model = load_module(pkg, trust_code=trust_code)
    sample = read_npz(pkg, SAMPLE, ("raw", "input"))
    raw, x = sample["raw"], sample["input"]
    if x.dtype.kind == "f":  # token ids (text) stay integers
        x = x.astype(np.float32)
    opset = opset or pkg.manifest.export.opset
    from scaledl.modalities.scales import parity_scale

    tolerance = pkg.manifest.parity.tolerance
    axes = _dynamic_axes(pkg)
    result = export_onnx(model, x, opset, exporter, tolerance, parity_scale(pkg), dynamic_axes=axes)
    parity = {**pkg.manifest.parity.model_dump(mode="json"), "max_abs_error": result.max_abs_error}
    update_package(
        Path(path),
        add_files={
            pkg.manifest.model_file: result.onnx_bytes,
            SAMPLE: sample_npz(raw, x, result.parity_outputs),
        },
        manifest_updates={
            "export": {"exporter": result.exporter, "opset": opset},
            "parity": parity,
        },
    )
    return {"exporter": result.exporter, "opset": opset, "max_abs_error": result.max_abs_error}
