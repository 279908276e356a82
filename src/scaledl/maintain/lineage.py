"""What the live version's lineage says: where its weights come from and its optimize budget.

An optimized version (its lineage lists `transforms`) is not fine-tuned itself:
training starts from the fp32 package it was optimized from — `REPO/<model>/.maintain/sources/
<v>/` when maintain made it, else the `lineage.parent` path `scaledl optimize` recorded — and the
search is then re-run with the budget recorded in `lineage.optimize.config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaledl.errors import ModelError, PackageError
from scaledl.maintain.repository import ModelRepository
from scaledl.package import Package, open_package


@dataclass
class TrainingSource:
    package: Package
    how: str  # why this package (for the log)
    optimized_live: bool


def is_optimized(pkg: Package) -> bool:
    """Transformed by `scaledl optimize` (a search that kept the unchanged model records its
    budget in `lineage.optimize` but no transforms: its own weights are the source)."""
    return bool(pkg.manifest.lineage.transforms)


def training_source(repo: ModelRepository, version: str, live: Package) -> TrainingSource:
    """The package whose weights the fine-tune starts from (must have weights + model.json)."""
    if not is_optimized(live):
        _need_weights(live, f"version {version}")
        return TrainingSource(live, f"version {version} (its own weights)", False)
    kept = repo.source_path(version)
    if kept.is_dir():
        pkg = open_package(kept)
        return TrainingSource(pkg, f"the fp32 source of optimized version {version}: {kept}", True)
    parent = live.manifest.lineage.parent
    if not parent or not Path(parent).exists():
        raise PackageError(
            f"version {version} was optimized ({_transforms(live)}) and its parent package "
            f"{parent!r} (lineage.parent) is not there; maintain fine-tunes the parent's "
            "weights — restore it, or add an unoptimized version to the repository"
        )
    pkg = open_package(parent)
    _need_weights(pkg, f"the parent {parent} of optimized version {version}")
    return TrainingSource(pkg, f"the parent of optimized version {version}: {parent}", True)


def _need_weights(pkg: Package, what: str) -> None:
    if pkg.manifest.family == "ensemble":
        raise ModelError(
            f"{what} is an ensemble (`scaledl ensemble`): it has no weights of its own to "
            "fine-tune; maintain each member, then ensemble their new versions"
        )
    if not pkg.has_weights:
        raise ModelError(
            f"{what} has no PyTorch weights (weights.safetensors + model.json); maintain "
            "fine-tunes weights — package the model with `scaledl train` to maintain it"
        )


def _transforms(pkg: Package) -> str:
    return ", ".join(pkg.manifest.lineage.transforms or []) or "optimize"


def recorded_budget(live: Package) -> tuple[dict[str, Any] | None, str]:
    """(the OptimizeConfig the live version was chosen under, or None; why)."""
    lineage = live.manifest.lineage
    optimize = lineage.optimize
    if not optimize and not lineage.transforms:
        return None, "the live version did not come out of `scaledl optimize`"
    config = optimize.get("config") if optimize else None
    if not isinstance(config, dict):
        return None, (
            "the live version was optimized but its lineage records no optimize budget "
            "(lineage.optimize.config); optimization skipped — run `scaledl optimize` on the "
            "new version yourself"
        )
    return config, "re-running the optimize search with the budget recorded in the lineage"
