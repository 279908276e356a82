"""Every family trains on audio and packages a graph that reads raw waveforms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaledl.package import open_package
from tests.audio.conftest import fsdd_recipe


def _train(family: str, out: Path) -> Path:
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    return train_recipe(validate_recipe(fsdd_recipe(family)), out).package


def _check_package(package: Path, family: str) -> None:
    from scaledl.evaluate import evaluate_package
    from scaledl.verify import verify_package

    pkg = open_package(package)
    sig = pkg.manifest.signature.inputs[0]
    assert (sig.datatype, sig.shape) == ("FP32", [-1, 6400])  # raw 0.8 s waveforms at 8 kHz
    spec = pkg.preprocessing
    assert spec.kind == "audio" and spec.sample_rate == 8000 and len(spec.mean) == 40
    model_json = json.loads(pkg.file("model.json").read_text())
    assert model_json["frontend"]["kind"] == "audio" and model_json["family"] == family
    report = verify_package(package)  # checksums and ONNX parity on held-out raw waveforms
    assert report.parity_max_abs_error is not None and report.parity_max_abs_error < 1e-4
    result = evaluate_package(package)
    assert result.samples == 120 and 0.0 <= result.metrics["accuracy"] <= 1.0


def test_cnn_trains_on_waveforms(audio_package: Path) -> None:
    _check_package(audio_package, "cnn")
    assert open_package(audio_package).manifest.metrics.accuracy is not None


@pytest.mark.slow
@pytest.mark.parametrize("family", ["rnn", "transformer", "mlp"])
def test_other_families_train_on_waveforms(family: str, tmp_path: Path) -> None:
    _check_package(_train(family, tmp_path), family)


def test_spec_augment_runs_through_the_trainer(tmp_path: Path) -> None:
    """The feature hook is used in training: a policy of masks changes the trained weights."""
    import torch

    from scaledl.data.augment import AugmentConfig, build_augmenter
    from scaledl.modalities import load_splits, modality
    from scaledl.recipe import validate_recipe
    from scaledl.train.loop import Trainer

    recipe = validate_recipe(fsdd_recipe("mlp"))
    splits = load_splits(recipe.data, seed=0)
    unit = modality("audio")
    spec = unit.fit(splits)
    weights = []
    for policy in ([], [{"op": "spec_freq_mask", "width": 10}, {"op": "spec_time_mask"}]):
        from scaledl.pipeline.train import build_model_for, model_spec_for

        model = build_model_for(recipe, model_spec_for(recipe, spec, 10))
        augmenter = build_augmenter(AugmentConfig.model_validate({"policy": policy}), "audio")
        result = Trainer(model, splits, recipe.train, spec, augmenter=augmenter).fit()
        weights.append(result.model.state_dict()["body.head.weight"].clone())
    assert not torch.equal(weights[0], weights[1])
    x = torch.from_numpy(np.ascontiguousarray(splits.test.x[:4]))
    assert result.model(x).shape == (4, 10)
