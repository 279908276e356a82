"""`scaledl verify`: checksums, signature, and ONNX parity against the kept sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.errors import PackageError
from scaledl.export.rebuild import check_weights
from scaledl.modalities.scales import parity_scale
from scaledl.package import SAMPLE, check_signature, open_package
from scaledl.package_files import read_npz


@dataclass
class VerifyReport:
    path: str
    files_checked: int
    signed: bool
    parity_max_abs_error: float | None
    parity_tolerance: float | None
    checks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def verify_package(path: Path | str, key: bytes | None = None) -> VerifyReport:
    """Raise PackageError naming the first problem; otherwise report what was checked.

    Nothing named by the package is imported: a model.json naming a custom class is reported,
    never built (verify checks the ONNX graph, which is what is served).
    """
    from scaledl.export.runtime import create_session

    pkg = open_package(path, verify=True, key=key)
    checks = [f"sha256 of {len(pkg.manifest.files)} regular file(s), none outside the package"]
    signed = check_signature(pkg, key=key)
    checks.append("HMAC signature" if signed else "signature not checked (no SCALEDL_SIGNING_KEY)")
    model_file = pkg.onnx_path.name
    try:
        session = create_session(pkg.onnx_path, threads=1)
    except Exception as exc:
        raise PackageError(
            f"package {path}: {model_file} does not load in ONNX Runtime ({str(exc)[:300]})"
        ) from None
    err: float | None = None
    tolerance: float | None = None
    if SAMPLE in pkg.manifest.files:
        err, tolerance, line = _check_parity(pkg, session, path)
        checks.append(line)
    else:
        checks.append("no sample.npz: parity not checked")
    if pkg.has_weights:
        checks.append(check_weights(pkg))
    return VerifyReport(str(path), len(pkg.manifest.files), signed, err, tolerance, checks)


def _from_raw(pkg: Any, raw: np.ndarray, recorded: np.ndarray, path: Path | str) -> np.ndarray:
    """The graph inputs rebuilt from the sample's raw inputs with the package's preprocessing
    (its tokenizer, for text); they must equal the recorded ones."""
    from scaledl.preprocess import apply_preprocessing

    rebuilt = np.asarray(apply_preprocessing(raw, pkg.preprocessing))
    same = rebuilt.shape == recorded.shape and (
        np.array_equal(rebuilt, recorded)
        if rebuilt.dtype.kind in "iub"
        else np.allclose(rebuilt, recorded, rtol=1e-5, atol=1e-6)
    )
    if not same:
        raise PackageError(
            f"package {path}: the package's preprocessing turns sample.npz's raw inputs into "
            "other graph inputs than the recorded ones; preprocessing and graph disagree"
        )
    return rebuilt.astype(recorded.dtype, copy=False)


def _check_parity(pkg: Any, session: Any, path: Path | str) -> tuple[float, float, str]:
    """Run the kept sample through ONNX Runtime and compare with the recorded outputs."""
    sample = read_npz(pkg, SAMPLE, ("input", "output"), optional=("raw",))
    x, expected = sample["input"], sample["output"].astype(np.float64)
    tolerance = pkg.manifest.parity.tolerance
    rebuilt = ""
    if "raw" in sample and pkg.manifest.preprocessing is not None:
        x = _from_raw(pkg, sample["raw"], x, path)
        rebuilt = f"preprocessing reproduces the graph inputs of {len(x)} raw sample(s); "
    try:
        actual = session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception as exc:  # ONNX Runtime raises its own types for shape/type mismatches
        raise PackageError(
            f"package {path}: {SAMPLE} input {x.dtype}{list(x.shape)} does not run through "
            f"{pkg.onnx_path.name} ({str(exc)[:200]})"
        ) from None
    if np.shape(actual) != expected.shape:
        raise PackageError(
            f"package {path}: {SAMPLE} records outputs of shape {list(expected.shape)}, the "
            f"graph answers {list(np.shape(actual))}"
        )
    from scaledl.export.onnx_export import parity_error

    try:
        err = parity_error(actual, expected, parity_scale(pkg))
    except ValueError:  # an error scale that does not fit the outputs' last axis
        raise PackageError(
            f"package {path}: parity.scale is error_scale, but the preprocessing's error scale "
            f"does not fit outputs of shape {list(expected.shape)}"
        ) from None
    if not np.isfinite(err) or err > tolerance:
        raise PackageError(
            f"package {path}: ONNX outputs differ from the recorded sample by {err:.3g} "
            f"(tolerance {tolerance:g}); this runtime does not reproduce the model"
        )
    return (
        err,
        tolerance,
        f"{rebuilt}ONNX parity on {len(x)} sample(s): max abs error {err:.2e} ≤ {tolerance:g}",
    )
