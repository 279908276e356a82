"""The engine a loaded version runs on: the one its package prefers, if it is safe here.

`optimize` records in `manifest.runtime.engine` which engine ran the graph fastest on its
machine. At load the server uses that engine only when it is installed here and its outputs on
the package's sample (or a warm-up batch) match ONNX Runtime's within the package's parity
tolerance (or twice the difference `optimize` measured, if larger); otherwise it serves with
ONNX Runtime and says why in the log. Requests see the same V2 behaviour either way.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from scaledl.export.engines import ONNXRUNTIME, available_engines, engine_session, max_difference
from scaledl.package import SAMPLE, Package
from scaledl.package_files import read_npz

log = logging.getLogger(__name__)


def preferred_engine(
    package: Package, reference: Any, feeds: dict[str, np.ndarray], threads: int | None, label: str
) -> tuple[Any, str]:
    """(the session to serve with, its engine name); `reference` is the ONNX Runtime session."""
    runtime = package.manifest.runtime
    wanted = runtime.engine if runtime is not None else ONNXRUNTIME
    if wanted == ONNXRUNTIME:
        return reference, ONNXRUNTIME
    if wanted not in available_engines():
        log.warning("model %s prefers engine %s, not installed here: ONNX Runtime", label, wanted)
        return reference, ONNXRUNTIME
    feeds = _sample_feeds(package, reference) or feeds
    try:
        session = engine_session(wanted, package.onnx_path, reference, threads)
        difference = max_difference(session.run(None, feeds), reference.run(None, feeds))
    except Exception as exc:  # the preferred engine is an option, never a failed load
        log.warning("model %s: engine %s failed (%s): ONNX Runtime", label, wanted, exc)
        return reference, ONNXRUNTIME
    allowed = max(package.manifest.parity.tolerance, 2.0 * _recorded(runtime, wanted))
    if not difference <= allowed:
        log.warning(
            "model %s: engine %s differs from ONNX Runtime by %.3g > %.3g: ONNX Runtime",
            label,
            wanted,
            difference,
            allowed,
        )
        return reference, ONNXRUNTIME
    log.info("model %s runs on %s (parity %.3g ≤ %.3g)", label, wanted, difference, allowed)
    return session, wanted


def _recorded(runtime: Any, engine: str) -> float:
    """The output difference from ONNX Runtime that `optimize` measured for `engine`."""
    try:
        return float((runtime.engines or {})[engine]["max_abs_diff"])
    except (KeyError, TypeError, ValueError):
        return 0.0


def _sample_feeds(package: Package, reference: Any) -> dict[str, np.ndarray] | None:
    """The package's sample inputs for a one-input graph (real rows beat zeros for parity)."""
    inputs = reference.get_inputs()
    if SAMPLE not in package.manifest.files or len(inputs) != 1:
        return None
    try:
        return {inputs[0].name: read_npz(package, SAMPLE, ("input",))["input"]}
    except Exception:  # a sample that does not read: parity on the warm-up batch instead
        return None
