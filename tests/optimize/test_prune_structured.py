"""Structured pruning: exact removal, rebuild from spec, ONNX parity, rounding, schedules."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from scaledl.errors import ModelError, UsageError
from scaledl.models import ModelSpec
from scaledl.optimize.prune import prune_structured
from tests.optimize.prune_cases import SPECS, dead_model, one_thread, trained_like


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    yield from one_thread()


EXPECTED_REMOVED = {
    "cnn": {"channels": 48},
    "cnn-residual": {"channels": 8 * 3 + 16 * 3},
    "cnn-staged": {"channels": 8 + 16 * 3 + 16 * 2},
    "cnn-nobn": {"channels": 48},
    "mlp": {"neurons": 24},
    "transformer": {"heads": 4, "ff_neurons": 32},
    "gru-bidirectional": {"hidden_units": 2 * (16 + 8)},
    "lstm": {"hidden_units": 16},
}


def batch(spec: ModelSpec, n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, *spec.input_shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("global_ranking", [True, False])
def test_magnitude_removes_exactly_the_dead_units(name: str, global_ranking: bool) -> None:
    spec, model = dead_model(name)
    x = batch(spec)
    result = prune_structured(model, spec, 0.5, global_ranking=global_ranking)
    assert result.removed == EXPECTED_REMOVED[name]
    with torch.no_grad():
        np.testing.assert_allclose(result.model(x), model(x), atol=2e-5)
    assert result.params_after < result.params_before
    assert result.macs_after < result.macs_before
    assert not result.model.training


@pytest.mark.parametrize("name", ["cnn-residual", "gru-bidirectional", "transformer"])
def test_iterative_schedule_reaches_the_same_units(name: str) -> None:
    spec, model = dead_model(name)
    result = prune_structured(model, spec, 0.5, steps=3)
    assert result.removed == EXPECTED_REMOVED[name]
    with torch.no_grad():
        np.testing.assert_allclose(result.model(batch(spec)), model(batch(spec)), atol=2e-5)


@pytest.mark.parametrize("name", ["cnn", "mlp", "transformer", "lstm"])
def test_taylor_importance_ranks_dead_units_last(name: str) -> None:
    spec, model = dead_model(name)
    calibration = (batch(spec, 64, seed=3), torch.randint(0, 10, (64,)))
    result = prune_structured(
        model, spec, 0.5, importance="taylor", calibration=calibration, recalibrate_bn=False
    )
    assert result.removed == EXPECTED_REMOVED[name]
    with torch.no_grad():
        np.testing.assert_allclose(result.model(batch(spec)), model(batch(spec)), atol=2e-5)


@pytest.mark.parametrize(
    "name", ["cnn-residual", "mlp", "transformer", "gru-bidirectional", "lstm"]
)
def test_pruned_model_rebuilds_from_spec_and_exports_with_parity(name: str) -> None:
    from scaledl.export.onnx_export import export_onnx

    spec = SPECS[name]
    model = trained_like(spec)
    result = prune_structured(model, spec, 0.5, round_to=8)
    spec_json = ModelSpec.from_json(result.spec.to_json())
    rebuilt = spec_json.build().eval()
    rebuilt.load_state_dict(result.model.state_dict())
    x = batch(spec)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), result.model(x))
    exported = export_onnx(result.model, x.numpy())
    assert exported.max_abs_error <= 1e-4


def test_knobs_describe_the_pruned_widths() -> None:
    spec = ModelSpec("cnn", [3, 32, 32], 10, {"channels": [32, 64, 128], "depth": 2})
    result = prune_structured(trained_like(spec), spec, 0.5, round_to=16)
    widths = result.spec.knobs["widths"]
    convs = [m for m in result.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [w for stage in widths for w in stage]
    assert all(w % 16 == 0 and w >= 16 for stage in widths for w in stage)
    removed = result.removed["channels"]
    assert abs(removed - 0.5 * 448) <= 16 * 3  # the ratio, up to rounding


def test_local_ranking_keeps_the_ratio_in_every_layer() -> None:
    spec = ModelSpec("cnn", [3, 32, 32], 10, {"channels": [32, 64, 128], "depth": 2})
    result = prune_structured(trained_like(spec), spec, 0.5, global_ranking=False)
    assert result.spec.knobs["widths"] == [[16, 16], [32, 32], [64, 64]]


def test_transformer_spec_sets_per_layer_heads_and_ff() -> None:
    spec = ModelSpec("transformer", [1, 8, 8], 10, {"d_model": 32, "heads": 4, "ff": 64})
    result = prune_structured(trained_like(spec), spec, 0.5, head_ratio=0.25)
    knobs = result.spec.knobs
    assert sum(knobs["layer_heads"]) == 6 and min(knobs["layer_heads"]) >= 1
    assert sum(knobs["layer_ff"]) == 64 and all(f % 8 == 0 for f in knobs["layer_ff"])
    assert knobs["head_dim"] == 8
    assert any("d_model" in s for s in result.skipped)


def test_layers_that_cannot_round_down_are_named() -> None:
    spec = SPECS["cnn"]  # widths 16, 16, 32, 32
    result = prune_structured(trained_like(spec), spec, 0.5, round_to=16)
    widths = result.spec.knobs["widths"]
    assert widths[0] == [16, 16] and all(w % 16 == 0 for w in widths[1])
    assert len([s for s in result.skipped if "round_to=16" in s]) == 2


def test_batch_norm_statistics_are_recalibrated_on_the_calibration_inputs() -> None:
    spec = SPECS["mlp"]
    model = trained_like(spec)
    x = batch(spec, 64, seed=5)
    result = prune_structured(model, spec, 0.5, calibration=(x, torch.zeros(64, dtype=torch.long)))
    first, norm = result.model.features[1], result.model.features[2]
    with torch.no_grad():
        hidden = first(x.flatten(1))
    torch.testing.assert_close(norm.running_mean, hidden.mean(0))
    torch.testing.assert_close(norm.running_var, hidden.var(0))
    kept = prune_structured(
        model, spec, 0.5, calibration=(x, torch.zeros(64, dtype=torch.long)), recalibrate_bn=False
    )
    assert not torch.allclose(kept.model.features[2].running_mean, norm.running_mean)


def test_input_model_is_left_untouched() -> None:
    spec = SPECS["gru-bidirectional"]
    model = trained_like(spec)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune_structured(model, spec, 0.5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_zero_ratio_changes_nothing() -> None:
    spec = SPECS["cnn-residual"]
    model = trained_like(spec)
    result = prune_structured(model, spec, 0.0)
    assert result.params_after == result.params_before
    with torch.no_grad():
        assert torch.equal(result.model(batch(spec)), model(batch(spec)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 1.0}, "0 ≤ ratio < 1"),
        ({"ratio": 0.5, "importance": "random"}, "magnitude, taylor"),
        ({"ratio": 0.5, "importance": "taylor"}, "calibration"),
        ({"ratio": 0.5, "round_to": 0}, "round_to"),
        ({"ratio": 0.5, "steps": 0}, "steps"),
    ],
)
def test_bad_arguments_are_usage_errors(kwargs: dict[str, object], message: str) -> None:
    spec = SPECS["mlp"]
    with pytest.raises(UsageError, match=message):
        prune_structured(spec.build(), spec, **kwargs)  # type: ignore[arg-type]


def test_custom_family_is_refused_with_the_valid_ones() -> None:
    spec = ModelSpec("custom", [4], 2, {"class_path": "torch.nn:Linear"})
    with pytest.raises(ModelError, match="cnn, mlp, rnn, transformer"):
        prune_structured(torch.nn.Linear(4, 2), spec, 0.5)


def test_a_whitening_stem_is_left_whole_and_the_stages_shrink() -> None:
    knobs = {"channels": [16, 32], "stem": "whiten", "downsample": "pool_after_conv"}
    spec = ModelSpec("cnn", [3, 16, 16], 10, knobs)
    model = spec.build()
    model.fit_to_data(torch.randn(32, 3, 16, 16))
    result = prune_structured(model, spec, 0.5)
    torch.testing.assert_close(result.model.stem[0].weight, model.stem[0].weight)
    assert result.spec.knobs["widths"] == [[8, 8], [16, 16]]
    rebuilt = result.spec.build()
    rebuilt.load_state_dict(result.model.state_dict())
