"""The four families as forecasters: a few training steps each, ONNX export with parity, the
scaling inside the graph, and forecasts in the series' own units."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaledl.data import DataConfig
from scaledl.modalities import load_splits, modality
from scaledl.models import ModelSpec
from scaledl.package import open_package
from tests.series.conftest import series_values, write_series

SMALL_KNOBS = {
    "mlp": {"decomposition": True, "moving_average": 5},
    "cnn": {"channels": [8, 8], "kernel_size": 3},
    "rnn": {"cell": "gru", "hidden": 16, "segment": 8},
    # SegRNN's parallel decoder; horizon 8 over segments of 3 leaves a partial last segment,
    # and two LSTM layers carry a (hidden, cell) state of two layers into it
    "rnn-pmf": {"cell": "gru", "hidden": 16, "segment": 3, "decoder": "pmf"},
    "rnn-lstm-pmf": {"cell": "lstm", "hidden": 9, "layers": 2, "segment": 8, "decoder": "pmf"},
    "transformer": {
        "d_model": 8,
        "heads": 2,
        "layers": 1,
        "ff": 16,
        "patch_len": 8,
        "patch_stride": 8,
    },
}


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = write_series(tmp_path_factory.mktemp("s") / "s.csv", series_values(400))
    config = DataConfig(source=str(path), series={"lookback": 32, "horizon": 8}, val_fraction=0.2)
    return load_splits(config, task="regression")


@pytest.mark.parametrize("variant", list(SMALL_KNOBS))
def test_family_trains_and_exports_with_parity(variant: str, splits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from scaledl.config.train import TrainConfig
    from scaledl.export.onnx_export import export_onnx, run_onnx
    from scaledl.train.loop import Trainer

    unit = modality("series")
    spec = unit.fit(splits)
    family = variant.split("-")[0]
    model_spec = ModelSpec(family, [32, 3], 1, SMALL_KNOBS[variant], unit.frontend(spec, family))
    torch.manual_seed(0)
    model = model_spec.build()
    before = [p.detach().clone() for p in model.parameters()]
    config = TrainConfig(epochs=1, batch_size=64, lr=0.003, threads=1)
    result = Trainer(model, splits, config, spec, task="regression").fit()
    assert any(
        not torch.equal(a, b) for a, b in zip(before, result.model.parameters(), strict=True)
    )
    assert np.isfinite(result.history[-1]["val_mse_standardized"])
    example = np.ascontiguousarray(splits.test.x[:6], np.float32)
    # the legacy exporter: the same graph as dynamo's for these layers, in a fraction of the time
    exported = export_onnx(
        result.model, example, exporter="legacy", error_scale=unit.error_scale(spec)
    )
    assert exported.max_abs_error <= 1e-4
    assert exported.parity_outputs.shape == (6, 8, 3)
    # symbolic batch: 9 windows through a graph exported from 6
    nine = np.ascontiguousarray(splits.test.x[:9], np.float32)
    with torch.no_grad():
        expected = result.model(torch.from_numpy(nine)).numpy()
    np.testing.assert_allclose(run_onnx(exported.onnx_bytes, nine), expected, atol=1e-3, rtol=1e-5)
    # rebuilt from model.json's spec, the same weights give the same forecast
    rebuilt = ModelSpec.from_json(json.loads(json.dumps(model_spec.to_json()))).build()
    rebuilt.load_state_dict(result.model.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(
            rebuilt.eval()(torch.from_numpy(nine)).numpy(), expected, atol=1e-6
        )


def test_segment_decoder_unrolls_for_int8(splits) -> None:  # type: ignore[no-untyped-def]
    """`optimize`'s dynamic int8 unrolls GRUs into MatMuls; the segment decoder continues from
    the encoder's state, so the unrolled forecaster must give the same forecast."""
    import torch

    from scaledl.optimize.recurrent import has_gru, unroll_grus

    unit = modality("series")
    spec = unit.fit(splits)
    knobs = SMALL_KNOBS["rnn-pmf"]
    torch.manual_seed(0)
    model = ModelSpec("rnn", [32, 3], 1, knobs, unit.frontend(spec, "rnn")).build().eval()
    unrolled = unroll_grus(model)
    assert has_gru(model) and not has_gru(unrolled)
    x = torch.from_numpy(np.ascontiguousarray(splits.test.x[:5], np.float32))
    with torch.no_grad():
        torch.testing.assert_close(unrolled(x), model(x), atol=1e-4, rtol=1e-5)


def test_scaling_and_descaling_live_in_the_graph(splits) -> None:  # type: ignore[no-untyped-def]
    """Raw windows in, original units out: a body that forecasts zeros (the training mean on the
    standardised scale) makes the graph answer each target's training mean."""
    import torch

    unit = modality("series")
    spec = unit.fit(splits)
    model = ModelSpec(
        "mlp", [32, 3], 1, {"decomposition": False}, unit.frontend(spec, "mlp")
    ).build()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        out = model.eval()(torch.from_numpy(np.ascontiguousarray(splits.test.x[:4], np.float32)))
    np.testing.assert_allclose(out.numpy()[0, 0], spec.target_mean, rtol=1e-5)
    assert spec.target_mean[0] > 900  # "load" is ~1000 in its own units


def test_package_forecasts_in_original_units(series_package: Path) -> None:
    from scaledl.evaluate import evaluate_package, predict_raw

    pkg = open_package(series_package)
    metrics = pkg.manifest.metrics
    assert pkg.manifest.signature.input.shape == [-1, 48, 3]
    assert pkg.manifest.signature.output.shape == [-1, 12, 3]
    baselines = metrics.get("baselines")
    assert set(baselines) == {"persistence", "seasonal_naive"}
    # the model beats both naive forecasts on every test window of a daily-cycle series
    assert metrics.get("mse_standardized") < baselines["seasonal_naive"]["mse_standardized"]
    assert metrics.get("mse_standardized") < baselines["persistence"]["mse_standardized"]
    evaluation = evaluate_package(series_package)
    assert evaluation.samples == metrics.get("test_samples")
    raw = series_values(900)[-60:].astype(np.float32)
    forecast = predict_raw(pkg, raw[None, :48])[0]
    truth = raw[48:]
    assert abs(forecast[:, 0].mean() - truth[:, 0].mean()) < 30  # load ≈ 1000 ± 80, in its units
    assert np.abs(forecast - truth).mean(axis=0)[1] < 2.0  # temperature within 2 degrees
