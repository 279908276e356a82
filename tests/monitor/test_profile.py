"""The reference profile: built at packaging time, stored without pickle, listed in the manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scaledl.errors import PackageError
from scaledl.monitor.drift import Window, detect_drift
from scaledl.monitor.profile import FORMAT, ReferenceProfile, load_profile
from scaledl.package import MANIFEST, PROFILE, open_package, write_package
from tests.monitor.conftest import noisy


def test_packaging_writes_a_profile_listed_in_the_manifest(digits_package: Path) -> None:
    pkg = open_package(digits_package)
    monitoring = pkg.manifest.monitoring
    assert monitoring is not None and monitoring.projection is not None
    assert monitoring.profile == PROFILE and PROFILE in pkg.manifest.files
    assert monitoring.format == FORMAT
    assert monitoring.projection["components"] == 32
    assert monitoring.tests == ["ks_pca", "mmd", "confidence", "classes"]
    ref = monitoring.reference
    sizes = pkg.manifest.lineage.split_sizes
    assert sizes is not None
    # PCA and input reference: disjoint halves of the training split; outputs: val + test.
    assert ref["fit"] + ref["inputs"] == sizes["train"]
    assert ref["outputs"] == sizes["val"] + sizes["test"]
    with np.load(pkg.file(PROFILE), allow_pickle=False) as npz:  # plain arrays only
        names = set(npz.files)
        assert npz["projection_components"].shape == (32, 64)
        assert npz["reference_features"].shape == (ref["inputs"], 32)
        assert npz["output_predicted"].shape == (ref["outputs"],)
    assert {"channel_mean", "channel_std", "channel_p01", "channel_p99", "meta_json"} <= names


def test_profile_round_trips_and_describes_the_model(
    digits_package: Path, digits_profile: ReferenceProfile
) -> None:
    again = load_profile(digits_profile.to_bytes())
    np.testing.assert_array_equal(again.features, digits_profile.features)
    np.testing.assert_array_equal(again.projection.components, digits_profile.projection.components)
    assert again.meta == digits_profile.meta
    assert again.num_classes == 10 and again.class_histogram is not None
    assert again.class_histogram.sum() == len(again.output_predicted)  # type: ignore[arg-type]
    # Components are orthonormal and explain most of the variance of 8×8 digits.
    c = again.projection.components.astype(np.float64)
    np.testing.assert_allclose(c @ c.T, np.eye(32), atol=1e-4)
    assert again.meta["explained_variance_ratio"] > 0.8
    # The stored reference accuracy is the model's on the held-out rows.
    accuracy = open_package(digits_package).manifest.metrics.accuracy
    assert accuracy is not None and abs(again.meta["reference_accuracy"] - accuracy) < 0.1
    stats = again.channel_stats
    assert stats["mean"].shape == (1,) and abs(float(stats["mean"][0])) < 0.1


def test_profile_refuses_garbage() -> None:
    with pytest.raises(PackageError):
        load_profile(b"not a profile")


def test_each_test_separates_clean_from_shifted_digits(
    digits_package: Path,
    digits_profile: ReferenceProfile,
    digits_raw: tuple[np.ndarray, np.ndarray],
    digits_heldout: tuple[np.ndarray, np.ndarray],
) -> None:
    """Known answers on real data: held-out digits are not drift, noisy digits are (for the
    input tests and confidence), and a one-class window is a label shift."""
    from scaledl.config.monitor import DriftConfig
    from scaledl.monitor.check import check_arrays

    pkg = open_package(digits_package)
    config = DriftConfig(seed=0)
    clean = check_arrays(pkg, digits_heldout[0], digits_heldout[1], config=config)
    assert clean.drift.p_value > 0.001  # not drift, even at a strict alpha
    assert clean.accuracy is not None and not clean.accuracy_dropped
    shifted = check_arrays(pkg, noisy(digits_raw[0][:300]), config=config)
    assert shifted.drift.drift and shifted.degraded
    for name in ("ks_pca", "mmd", "confidence"):
        assert shifted.drift.test(name).drift, name
    raw, y = digits_heldout
    only_sevens = check_arrays(pkg, raw[y == 7], config=config)
    assert only_sevens.drift.test("classes").p_value < 0.002  # the Monte-Carlo floor
    assert only_sevens.drift.test("classes").score > 0.5


def test_window_from_batch_matches_detect_drift_inputs(
    digits_package: Path,
    digits_profile: ReferenceProfile,
    digits_heldout: tuple[np.ndarray, np.ndarray],
) -> None:
    from scaledl.monitor.reference import session_predict
    from scaledl.preprocess import apply_preprocessing

    pkg = open_package(digits_package)
    x = apply_preprocessing(digits_heldout[0][:40], pkg.preprocessing)
    window = Window.from_batch(digits_profile, x, session_predict(pkg)(x))
    assert window.features.shape == (40, 32) and window.predicted is not None
    with pytest.raises(Exception, match="at least 20"):
        detect_drift(
            digits_profile, Window(window.features[:5], window.predicted[:5], window.score[:5])
        )  # type: ignore[index]


def strip_profile(package: Path, dest: Path) -> Path:
    """A copy of the package as packages were before profiles existed."""
    shutil.copytree(package, dest)
    manifest = json.loads((dest / MANIFEST).read_text())
    manifest.pop("monitoring")
    files = {rel: (dest / rel).read_bytes() for rel in manifest["files"] if rel != PROFILE}
    shutil.rmtree(dest)
    write_package(dest, manifest, files)
    return dest


def test_outputs_computed_already_give_the_same_profile(digits_package: Path) -> None:
    """The optimizer passes the outputs it scored the splits with instead of a second pass."""
    from scaledl.maintain.datasets import load_old
    from scaledl.monitor.reference import profile_for_splits, session_predict
    from scaledl.preprocess import apply_preprocessing

    pkg = open_package(digits_package)
    splits, _ = load_old(pkg, pkg.manifest.task)
    predict = session_predict(pkg)
    heldout = [apply_preprocessing(s.x, pkg.preprocessing) for s in (splits.val, splits.test)]
    outputs = np.concatenate([predict(x) for x in heldout])
    fresh = profile_for_splits(splits, pkg.preprocessing, predict, pkg.manifest.task)
    reused = profile_for_splits(
        splits, pkg.preprocessing, predict, pkg.manifest.task, heldout_outputs=outputs
    )
    assert reused.meta == fresh.meta
    np.testing.assert_array_equal(reused.output_predicted, fresh.output_predicted)  # type: ignore[arg-type]
    np.testing.assert_allclose(reused.output_score, fresh.output_score, atol=1e-6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="held-out outputs for"):
        profile_for_splits(
            splits, pkg.preprocessing, predict, pkg.manifest.task, heldout_outputs=outputs[1:]
        )


def test_one_input_side_serves_every_model_of_the_splits(digits_package: Path) -> None:
    """The optimizer builds the profile's model-free side once per search: each candidate's
    profile is then exactly the one a fresh build would give it."""
    from scaledl.maintain.datasets import load_old
    from scaledl.monitor.reference import (
        input_reference_for_splits,
        profile_for_splits,
        session_predict,
    )

    pkg = open_package(digits_package)
    splits, _ = load_old(pkg, pkg.manifest.task)
    predict = session_predict(pkg)
    inputs = input_reference_for_splits(splits, pkg.preprocessing)
    for model in (predict, lambda x: predict(x)[:, ::-1].copy()):  # another "model"
        fresh = profile_for_splits(splits, pkg.preprocessing, model, pkg.manifest.task)
        shared = profile_for_splits(
            splits, pkg.preprocessing, model, pkg.manifest.task, inputs=inputs
        )
        assert shared.to_bytes() == fresh.to_bytes()
    assert inputs.meta["reference"]["outputs"] == len(inputs.heldout_x)
