"""The scale a package's outputs are compared on: absolute units, or its modality's error scale.

A forecast in original units (say 1,000 kW) cannot match its PyTorch reference to 1e-4 in
float32; it does to 1e-4 of each target's standard deviation. A package records which it used
(`parity.scale: error_scale`); packages without the key are compared in absolute units.
"""

from __future__ import annotations

from typing import Any

from scaledl.package import Package


def parity_scale(pkg: Package) -> Any:
    """Per-target scale parity differences are divided by, or None (absolute units)."""
    spec = pkg.manifest.preprocessing
    if pkg.manifest.parity.get("scale") != "error_scale" or spec is None:
        return None
    from scaledl.modalities import modality_of

    return modality_of(spec).error_scale(spec)
