"""One offline check: new data vs a package's reference → drift and accuracy, with the numbers.

`check_package` is what `scaledl monitor report` runs and what a maintenance loop calls to
decide whether a deployed model needs an update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.monitor.config import DriftConfig
from scaledl.monitor.drift import DriftResult, Window, detect_drift
from scaledl.monitor.profile import ReferenceProfile
from scaledl.package import Package, open_package
from scaledl.preprocess import apply_preprocessing


@dataclass
class Assessment:
    """Drift test results plus accuracy on labelled data; `degraded` says "act on it"."""

    drift: DriftResult
    samples: int
    source: str
    accuracy: float | None = None
    reference_accuracy: float | None = None
    max_accuracy_drop: float = 0.05
    window: Window | None = field(default=None, repr=False)
    outputs: np.ndarray | None = field(default=None, repr=False)
    feature_means: np.ndarray | None = field(default=None, repr=False)  # per drift feature

    @property
    def accuracy_drop(self) -> float | None:
        if self.accuracy is None or self.reference_accuracy is None:
            return None
        return self.reference_accuracy - self.accuracy

    @property
    def accuracy_dropped(self) -> bool:
        drop = self.accuracy_drop
        return drop is not None and drop > self.max_accuracy_drop

    @property
    def degraded(self) -> bool:
        return self.drift.drift or self.accuracy_dropped

    @property
    def reasons(self) -> list[str]:
        out = [
            f"{t.name}: p={t.p_value:.3g} < {self.drift.alpha / len(self.drift.tests):.3g}"
            for t in self.drift.tests
            if t.drift
        ]
        if self.accuracy_dropped:
            out.append(
                f"accuracy {self.accuracy:.4f} is {self.accuracy_drop:.4f} below the reference "
                f"{self.reference_accuracy:.4f} (allowed drop {self.max_accuracy_drop})"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "degraded": self.degraded,
            "reasons": self.reasons,
            "source": self.source,
            "samples": self.samples,
            "accuracy": self.accuracy,
            "reference_accuracy": self.reference_accuracy,
            "accuracy_drop": self.accuracy_drop,
            "max_accuracy_drop": self.max_accuracy_drop,
            "drift": self.drift.to_json(),
        }


def check_arrays(
    pkg: Package,
    x_raw: np.ndarray,
    y: np.ndarray | None = None,
    *,
    profile: ReferenceProfile | None = None,
    config: DriftConfig | None = None,
    max_accuracy_drop: float = 0.05,
    source: str = "arrays",
) -> Assessment:
    """Raw inputs (and labels, if known) → Assessment, with the package's own preprocessing."""
    from scaledl.monitor.reference import (
        input_features,
        package_profile,
        reference_accuracy,
        session_predict,
    )

    profile = profile or package_profile(pkg)
    x = apply_preprocessing(x_raw, pkg.preprocessing)
    outputs = np.asarray(session_predict(pkg)(x))
    features = input_features(pkg.preprocessing, x)
    window = Window.from_batch(profile, features, outputs)
    result = detect_drift(profile, window, config)
    accuracy = None
    if y is not None and profile.task == "classification" and len(y):
        accuracy = float((outputs.argmax(axis=1) == np.asarray(y)).mean())
    reference = reference_accuracy(pkg, profile)
    return Assessment(
        drift=result,
        samples=len(x),
        source=source,
        accuracy=accuracy,
        reference_accuracy=float(reference) if reference is not None else None,
        max_accuracy_drop=max_accuracy_drop,
        window=window,
        outputs=outputs,
        feature_means=np.asarray(features, np.float64).reshape(len(features), -1).mean(axis=0),
    )


def check_package(
    path: Path | str | Package,
    data: str | None = None,
    *,
    config: DriftConfig | None = None,
    max_accuracy_drop: float = 0.05,
) -> Assessment:
    """New data (any foundation source, raw form; default: the package's own test split)."""
    from scaledl.monitor.datasets import load_new_data

    pkg = path if isinstance(path, Package) else open_package(path)
    raw = load_new_data(pkg, data)
    return check_arrays(
        pkg,
        raw.x,
        raw.y,
        config=config,
        max_accuracy_drop=max_accuracy_drop,
        source=raw.source,
    )
