"""`scaledl verify`: checksums, signature, and ONNX parity against the kept sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.errors import PackageError
from scaledl.package import SAMPLE, check_signature, open_package


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
    """Raise PackageError naming the first problem; otherwise report what was checked."""
    from scaledl.export.runtime import create_session

    pkg = open_package(path, verify=True, key=key)
    checks = [f"sha256 of {len(pkg.manifest.files)} file(s)"]
    signed = check_signature(pkg, key=key)
    checks.append("HMAC signature" if signed else "signature not checked (no SCALEDL_SIGNING_KEY)")
    try:
        session = create_session(pkg.onnx_path, threads=1)
    except Exception as exc:
        raise PackageError(
            f"package {path}: {pkg.onnx_path.name} does not load in ONNX Runtime ({exc})"
        ) from None
    err: float | None = None
    tolerance: float | None = None
    if pkg.has_file(SAMPLE):
        with np.load(pkg.file(SAMPLE), allow_pickle=False) as sample:
            x, expected = sample["input"], sample["output"]
            raw = sample["raw"] if "raw" in sample.files else None
        if raw is not None and pkg.manifest.preprocessing is not None:
            x = _from_raw(pkg, raw, x, path)
            checks.append(f"preprocessing reproduces the graph inputs of {len(x)} raw sample(s)")
        actual = session.run(None, {session.get_inputs()[0].name: x})[0]
        tolerance = pkg.manifest.parity.tolerance
        err = float(np.max(np.abs(actual.astype(np.float64) - expected)))
        if not np.isfinite(err) or err > tolerance:
            raise PackageError(
                f"package {path}: ONNX outputs differ from the recorded sample by {err:.3g} "
                f"(tolerance {tolerance:g}); this runtime does not reproduce the model"
            )
        checks.append(f"ONNX parity on {len(x)} sample(s): max abs error {err:.2e} ≤ {tolerance:g}")
    else:
        checks.append("no sample.npz: parity not checked")
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
