"""Profiles from data splits and packages: the packaging hook and `scaledl monitor profile`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from scaledl.contract import SpecBase
from scaledl.data.dataset import DataSplits
from scaledl.errors import PackageError
from scaledl.export.onnx_export import graph_array
from scaledl.monitor.profile import (
    InputReference,
    Predict,
    ProfileOptions,
    ReferenceProfile,
    build_profile,
    input_reference,
    load_profile,
)
from scaledl.package import PROFILE, Package, open_package, update_package
from scaledl.preprocess import apply_preprocessing

log = logging.getLogger(__name__)
MIN_SPLIT_FOR_HALVES = 200  # below this the PCA is fitted on the rows it scores


def profile_for_splits(
    splits: DataSplits,
    preprocessing: SpecBase,
    predict: Predict,
    task: str = "classification",
    options: ProfileOptions | None = None,
    heldout_outputs: np.ndarray | None = None,
    inputs: InputReference | None = None,
) -> ReferenceProfile:
    """Training split → statistics, PCA (one half) and input reference (other half);
    validation + test splits → the model's output reference.

    `heldout_outputs`: the model's outputs on the validation then the test rows, when the
    caller has them already (forecasters ignore it: their profile reads other windows).
    `inputs`: `input_reference_for_splits` of the same splits, options and preprocessing,
    built once for several models (forecasters ignore it too)."""
    opts = options or ProfileOptions()
    if preprocessing.kind == "series":
        return _series_profile(splits, preprocessing, predict, opts)
    if inputs is None:
        inputs = input_reference_for_splits(splits, preprocessing, opts)
    heldout_y = np.concatenate([splits.val.y, splits.test.y])
    return build_profile(
        None,
        None,
        None,
        predict,
        task=task,
        heldout_y=heldout_y,
        heldout_outputs=heldout_outputs,
        labels=splits.labels,
        inputs=inputs,
    )


def input_reference_for_splits(
    splits: DataSplits, preprocessing: SpecBase, options: ProfileOptions | None = None
) -> InputReference:
    """The model-free side of `profile_for_splits` (not for forecasters): the training split's
    preprocessed features, halved into the PCA's rows and the input reference, and the
    validation + test rows preprocessed for the output reference."""
    opts = options or ProfileOptions()
    train = input_features(preprocessing, apply_preprocessing(splits.train.x, preprocessing))
    fit_x, ref_x = _halves(train, opts.seed)
    heldout = np.concatenate([splits.val.x, splits.test.x])
    return input_reference(
        fit_x,
        ref_x,
        apply_preprocessing(heldout, preprocessing),
        kind=preprocessing.kind,
        options=opts,
        sources={"inputs_from": "train", "outputs_from": "val+test", "data": splits.source},
        feature_names=input_feature_names(preprocessing),
    )


def _series_profile(
    splits: DataSplits, spec: SpecBase, predict: Predict, options: ProfileOptions
) -> ReferenceProfile:
    """Forecasters: the validation period's windows, in time order (see series_profile)."""
    from scaledl.monitor.series_profile import series_profile

    table, layout = getattr(splits, "table", None), getattr(splits, "layout", None)
    train_rows = unscored = history = None
    if table is not None and layout is not None:
        period = splits.period("train")  # type: ignore[attr-defined]
        inputs = table.values[:, layout.inputs]
        train_rows = inputs[period.start : period.end]
        unscored = _unscored_windows(splits, inputs, layout.lookback)
        end = splits.period("val").end  # type: ignore[attr-defined]
        history = _history_windows(inputs[period.start : end], layout.lookback, layout.stride)
    return series_profile(
        splits.val.x,
        splits.val.y,
        spec,  # type: ignore[arg-type]
        predict,
        unscored_raw=unscored,
        history_raw=history,
        train_rows=train_rows,
        options=options,
        sources={"inputs_from": "val", "outputs_from": "val", "data": splits.source},
    )


def _history_windows(rows: np.ndarray, lookback: int, stride: int) -> np.ndarray:
    """Every look-back window of `rows` (time order, every `stride` steps) as a view: nothing is
    copied until the features are computed, a chunk at a time."""
    from numpy.lib.stride_tricks import sliding_window_view

    if len(rows) < lookback:
        return np.zeros((0, lookback, rows.shape[1]), rows.dtype)
    windows = sliding_window_view(rows, lookback, axis=0).transpose(0, 2, 1)
    return windows[::stride]


def _unscored_windows(splits: DataSplits, inputs: np.ndarray, lookback: int) -> np.ndarray:
    """The validation period's look-back windows after its last scored one: their horizon runs
    past the period, but their inputs are the period's newest (whole, finite windows only)."""
    starts: range = splits.starts["val"]  # type: ignore[attr-defined]
    end = splits.period("val").end  # type: ignore[attr-defined]
    none = np.zeros((0, lookback, inputs.shape[1]), inputs.dtype)
    if len(starts) == 0:
        return none
    tail = range(starts[-1] + starts.step, end - lookback + 1, starts.step)
    kept = [inputs[s : s + lookback] for s in tail if np.isfinite(inputs[s : s + lookback]).all()]
    return np.stack(kept) if kept else none


def input_features(preprocessing: SpecBase, graph_x: np.ndarray) -> np.ndarray:
    """What the drift tests compare for graph inputs: the modality decides."""
    from scaledl.modalities import modality_of

    return modality_of(preprocessing).drift_features(preprocessing, graph_x)


def input_feature_names(preprocessing: SpecBase) -> list[str] | None:
    """Names of the modality's readable drift features (None: PCA components)."""
    from scaledl.modalities import modality_of

    return modality_of(preprocessing).drift_feature_names(preprocessing)


def _halves(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) < MIN_SPLIT_FOR_HALVES:
        log.warning("only %d training rows: the PCA is fitted on its own reference", len(x))
        return x, x
    order = np.random.default_rng(seed + 1).permutation(len(x))
    half = len(x) // 2
    return x[order[:half]], x[order[half:]]


def reference_accuracy(pkg: Package, profile: ReferenceProfile | None) -> float | None:
    """Held-out accuracy live accuracy is compared with: the profile's, else the manifest's."""
    reference = profile.meta.get("reference_accuracy") if profile is not None else None
    if reference is None:
        reference = pkg.manifest.metrics.accuracy
    return None if reference is None else float(reference)


def package_profile(pkg: Package) -> ReferenceProfile:
    """The profile stored in a package; PackageError naming the fix when there is none."""
    monitoring = pkg.manifest.monitoring
    name = monitoring.profile if monitoring is not None else PROFILE
    if not pkg.has_file(name):
        raise PackageError(
            f"package {pkg.source} has no monitoring profile; add one with "
            f"`scaledl monitor profile {pkg.source} --data SPEC`"
        )
    source = f"{pkg.source}/{name}"
    profile = load_profile(pkg.file(name).read_bytes(), source=source)
    spec = pkg.manifest.preprocessing
    if spec is not None and spec.kind == "series":
        from scaledl.monitor.series_profile import align_profile, is_series

        if is_series(profile):
            profile = align_profile(profile, spec, source)
    return profile


def session_predict(pkg: Package) -> Predict:
    """Outputs of the package's ONNX graph for preprocessed inputs."""
    from scaledl.export.runtime import package_session, run_checked

    session = package_session(pkg)
    return lambda x: run_checked(session, graph_array(x), pkg.source)


def add_profile(
    path: Path | str, data: str | None = None, options: ProfileOptions | None = None
) -> ReferenceProfile:
    """Build a profile for an existing package and write it in (re-signed when a key is set).

    With the package's own data set (the default) the same splits as training are rebuilt; any
    other data set is treated as held-out data of the same kind.
    """
    from scaledl.modalities import load_splits
    from scaledl.monitor.datasets import load_raw, resolve_data

    pkg = open_package(path)
    task = pkg.manifest.task
    config, own = resolve_data(pkg, data)
    predict = session_predict(pkg)
    preprocessing = pkg.preprocessing
    if own:
        seed = pkg.manifest.lineage.split_seed
        splits = load_splits(config, seed=seed, task=task)
        profile = profile_for_splits(splits, preprocessing, predict, task, options)
    elif preprocessing.kind == "series":  # another period of the series: its windows, in order
        from scaledl.monitor.series_profile import series_profile

        raw = load_raw(config, task, pkg)
        if raw.y is None:
            raise PackageError(f"data {config.source}: a series profile needs its targets")
        profile = series_profile(
            raw.x,
            raw.y,
            preprocessing,  # type: ignore[arg-type]
            predict,
            options=options,
            sources={"inputs_from": "data", "outputs_from": "data", "data": config.source},
        )
    else:
        raw = load_raw(config, task, pkg)
        x = apply_preprocessing(raw.x, preprocessing)
        fit_x, ref_x = _halves(input_features(preprocessing, x), (options or ProfileOptions()).seed)
        profile = build_profile(
            fit_x,
            ref_x,
            x,
            predict,
            task=task,
            kind=preprocessing.kind,
            heldout_y=raw.y,
            labels=pkg.labels,
            options=options,
            sources={"inputs_from": "data", "outputs_from": "data", "data": config.source},
            feature_names=input_feature_names(preprocessing),
        )
    update_package(
        pkg.path,
        add_files={PROFILE: profile.to_bytes()},
        manifest_updates={"monitoring": profile.manifest_entry(PROFILE)},
    )
    return profile
