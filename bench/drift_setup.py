"""Models, data and reference profiles for bench/drift.py.

Each data set is split in four disjoint parts: the model's training rows, its validation rows,
the rows the reference profile is built from (never trained on), and a clean *stream pool*
the benchmark draws windows from. The profile is built with the same library function the
packaging step uses (`build_profile`), on rows disjoint from the stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.monitor.profile import ProfileOptions, ReferenceProfile, build_profile

log = logging.getLogger("bench.drift")
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench-drift"


def _find_cifar10() -> Path:
    """`../shared/datasets/cifar10` beside the checkout (or one folder further up)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        candidate = base / "shared" / "datasets" / "cifar10"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "datasets" / "cifar10"


CIFAR10 = _find_cifar10()

RECIPES: dict[str, dict[str, Any]] = {
    # digits: 1,797 images. 30% train, 10% validation, 60% held out (reference + stream).
    "digits": {
        "name": "drift-digits",
        "seed": 0,
        "data": {"source": "digits", "val_fraction": 0.1, "test_fraction": 0.6},
        "model": {"family": "cnn", "channels": [16, 32], "depth": 1},
        "train": {"epochs": 15, "batch_size": 64, "lr": 0.005, "label_smoothing": 0.05},
    },
    # CIFAR-10: a small CNN on 2,000 images per class (18,000 train / 2,000 val), 4 epochs.
    "cifar10": {
        "name": "drift-cifar10",
        "seed": 0,
        "data": {"source": str(CIFAR10), "val_fraction": 0.1, "limit_per_class": 2000},
        "model": {"family": "cnn", "channels": [32, 64, 128], "depth": 1, "batch_norm": True},
        "train": {"epochs": 4, "batch_size": 128, "lr": 0.003, "label_smoothing": 0.05},
    },
}


@dataclass
class Setup:
    name: str
    package: Path
    profile: ReferenceProfile
    pool_x: np.ndarray  # raw clean stream pool (N, C, H, W)
    pool_y: np.ndarray
    preprocessing: dict[str, Any]
    max_value: float
    accuracy: float  # the model's accuracy on the clean pool
    notes: dict[str, Any]


def ensure_package(name: str) -> Path:
    """Train the bench model with scaledl once; later runs reuse the package."""
    from scaledl.package import open_package
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    recipe = validate_recipe(RECIPES[name])
    out = CACHE / name
    package = out / "package"
    if package.exists():
        pkg = open_package(package)
        if pkg.manifest.lineage.recipe_hash == recipe.digest():
            return package
    log.info("training the %s bench model (once; cached in %s)", name, out)
    return train_recipe(recipe, out).package


def build_setup(name: str, seed: int = 0) -> Setup:
    from scaledl.modalities import load_splits
    from scaledl.monitor.reference import session_predict
    from scaledl.package import open_package
    from scaledl.preprocess import apply_preprocessing
    from scaledl.recipe import validate_recipe

    package = ensure_package(name)
    pkg = open_package(package)
    recipe = validate_recipe(RECIPES[name])
    splits = load_splits(recipe.data, seed=recipe.seed, task="classification")
    prep = pkg.preprocessing
    rng = np.random.default_rng(seed)
    if name == "digits":
        # PCA on the training rows; validation rows + a third of the held-out 60% are the
        # reference (inputs and outputs); the other two thirds are the stream.
        from scaledl.data.dataset import ArraySet

        order = rng.permutation(len(splits.test))
        cut = len(order) // 3
        ref_part, pool = splits.test.take(order[:cut]), splits.test.take(order[cut:])
        heldout = ArraySet(
            np.concatenate([splits.val.x, ref_part.x]), np.concatenate([splits.val.y, ref_part.y])
        )
        fit_x, input_ref_x = splits.train.x, heldout.x
    else:
        # CIFAR-10: train images the model never saw (beyond the first 2,000 per class) form
        # the reference; the 10,000 test images are the stream.
        unseen = _unseen_cifar_train(rng)
        half = len(unseen.x) // 2
        fit_x = splits.train.x[rng.permutation(len(splits.train))[:5000]]
        input_ref_x, heldout = unseen.x[:half], unseen.take(np.arange(half, len(unseen.x)))
        pool = splits.test
    predict = session_predict(pkg)
    profile = build_profile(
        apply_preprocessing(fit_x, prep),
        apply_preprocessing(input_ref_x, prep),
        apply_preprocessing(heldout.x, prep),
        predict,
        kind="image",
        heldout_y=heldout.y,
        options=ProfileOptions(seed=seed),
    )
    outputs = predict(apply_preprocessing(pool.x, prep))
    accuracy = float((outputs.argmax(axis=1) == pool.y).mean())
    return Setup(
        name=name,
        package=package,
        profile=profile,
        pool_x=pool.x,
        pool_y=pool.y,
        preprocessing=prep,
        max_value=float(prep["image"]["max_value"]),
        accuracy=accuracy,
        notes={
            "model_accuracy_on_stream": round(accuracy, 4),
            "pca_fit_rows": int(profile.meta["reference"]["fit"]),
            "input_reference_rows": len(profile.features),
            "output_reference_rows": len(heldout.x),
            "stream_pool_rows": len(pool.x),
            "explained_variance_ratio": profile.meta["explained_variance_ratio"],
            "train_rows": len(splits.train),
        },
    )


def _unseen_cifar_train(rng: np.random.Generator, count: int = 10000) -> Any:
    """CIFAR-10 training images past the first 2,000 per class (never used to train)."""
    from scaledl.data import DataConfig
    from scaledl.data.dataset import ArraySet
    from scaledl.modalities import load_data

    full = load_data(DataConfig(source=str(CIFAR10)), "classification").data
    used = RECIPES["cifar10"]["data"]["limit_per_class"]
    keep = np.concatenate([np.flatnonzero(full.y == c)[used:] for c in np.unique(full.y)])
    pick = rng.permutation(keep)[:count]
    return ArraySet(full.x[pick], full.y[pick])
