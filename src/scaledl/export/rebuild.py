"""Rebuild a package's nn.Module from `model.json` + `weights.safetensors`, trusting neither.

`model.json` is checked field by field; a `custom` family (a class named by import path) is
only imported with `trust_code=True`. Before any real tensor is allocated, the model is built
on torch's meta device and its parameter shapes are compared with the safetensors header, so
a spec that would build a gigantic model, or weights of another model, are refused by name.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from scaledl.errors import PackageError
from scaledl.package import MODEL_JSON, WEIGHTS

MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit


def load_module(pkg: Any, trust_code: bool = False) -> Any:
    """The package's nn.Module in eval mode, with its weights."""
    import torch

    from scaledl.models import ModelSpec
    from scaledl.models.registry import UntrustedCodeError

    if not pkg.has_weights:
        raise PackageError(
            f"package {pkg.source} has no PyTorch weights ({WEIGHTS} + {MODEL_JSON})"
        )
    spec = ModelSpec.from_json(pkg.read_json(MODEL_JSON), f"package {pkg.source}: {MODEL_JSON}")
    weights = pkg.file(WEIGHTS)
    where = f"package {pkg.source}: {WEIGHTS}"
    shapes = safetensors_shapes(weights, where)
    if spec.family != "custom":  # custom code runs once, and only when trusted
        with torch.device("meta"):
            skeleton = spec.build()
        check_shapes(skeleton.state_dict(), shapes, where)
    try:
        model = spec.build(trust_code=trust_code)
    except UntrustedCodeError as exc:
        raise UntrustedCodeError(f"package {pkg.source}: {MODEL_JSON}: {exc.message}") from None
    return load_weights(model, weights, where)


def check_weights(pkg: Any) -> str:
    """verify's check that the weights fit model.json, without building any real tensor (and
    without importing a custom class): a line for the report."""
    import torch

    from scaledl.models import ModelSpec

    spec = ModelSpec.from_json(pkg.read_json(MODEL_JSON), f"package {pkg.source}: {MODEL_JSON}")
    where = f"package {pkg.source}: {WEIGHTS}"
    shapes = safetensors_shapes(pkg.file(WEIGHTS), where)
    if spec.family == "custom":
        return (
            f"{MODEL_JSON} names a custom class ({spec.knobs.get('class_path')}): not imported, "
            f"weights not checked against it (--trust-code where a model is rebuilt)"
        )
    with torch.device("meta"):
        skeleton = spec.build()
    check_shapes(skeleton.state_dict(), shapes, where)
    return f"{WEIGHTS} holds the {len(shapes)} tensors {MODEL_JSON} ({spec.family}) describes"


def custom_class(pkg: Any) -> str | None:
    """The import path a package's model.json names (family `custom`), else None."""
    from scaledl.models import ModelSpec

    if not pkg.has_weights:
        return None
    spec = ModelSpec.from_json(pkg.read_json(MODEL_JSON), f"package {pkg.source}: {MODEL_JSON}")
    return str(spec.knobs.get("class_path")) if spec.family == "custom" else None


def safetensors_shapes(path: Path, where: str) -> dict[str, list[int]]:
    """Tensor name → shape, from the file's JSON header (no tensor data read)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
            raise PackageError(f"{where} is not a safetensors file (bad header length)")
        try:
            header = json.loads(fh.read(length).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise PackageError(f"{where} is not a safetensors file (bad header)") from None
    if not isinstance(header, dict):
        raise PackageError(f"{where} is not a safetensors file (bad header)")
    shapes: dict[str, list[int]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise PackageError(f"{where}: tensor {name!r} has no valid shape in the header")
        shapes[name] = shape
    return shapes


def check_shapes(state: dict[str, Any], shapes: dict[str, list[int]], where: str) -> None:
    """The weights file holds exactly the tensors of the model model.json describes."""
    expected = {k: list(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])
    if missing or extra or wrong:
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {extra[:3]}"
            if extra
            else f"{wrong[0]!r} is {shapes[wrong[0]]}, model.json builds {expected[wrong[0]]}"
        )
        raise PackageError(f"{where} does not match the model {MODEL_JSON} describes ({detail})")


def load_weights(model: Any, path: Path, where: str | None = None) -> Any:
    """Load safetensors weights (no pickle) into `model`; a bad file is a PackageError."""
    from safetensors.torch import load_file

    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as exc:  # safetensors and torch raise several types for bad files
        raise PackageError(
            f"{where or path}: weights do not load into the model ({str(exc)[:300]})"
        ) from None
    return model.eval()
