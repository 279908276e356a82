"""Structured pruning and slimming of the text families: smaller models that rebuild from
their spec, keep the text front-end, and stay exportable with a symbolic length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scaledl.models import ModelSpec
from scaledl.optimize.prune import prune_structured
from scaledl.optimize.slim import slim_spec

FRONTEND = {"kind": "text", "vocab_size": 300, "pad_id": 0, "max_length": 40}
KNOBS = {
    "mlp": {"embed_dim": 32, "hidden": [32, 32], "bigram_buckets": 128},
    "cnn": {"embed_dim": 32, "channels": 32, "kernel_sizes": [2, 3, 5]},
    "rnn": {"embed_dim": 32, "hidden": [32, 32], "layers": 2},
    "transformer": {"embed_dim": 32, "heads": 4, "layers": 2, "ff": 64},
}


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 300, (24, 12), generator=generator)
    ids[:, 0] = 2
    ids[::2, 7:] = 0  # half the texts are shorter
    return ids, torch.randint(0, 2, (24,), generator=generator)


@pytest.mark.parametrize("family", sorted(KNOBS))
@pytest.mark.parametrize("importance", ["magnitude", "taylor"])
def test_pruned_text_model_is_smaller_and_rebuilds(family: str, importance: str) -> None:
    spec = ModelSpec(family, [], 2, KNOBS[family], FRONTEND)
    torch.manual_seed(0)
    model = spec.build().eval()
    ids, y = batch()
    result = prune_structured(model, spec, 0.5, importance=importance, calibration=(ids, y))
    assert result.spec.frontend == FRONTEND
    assert result.params_after < result.params_before and result.macs_after < result.macs_before
    rebuilt = result.spec.build().eval()
    rebuilt.load_state_dict(result.model.state_dict())
    with torch.no_grad():
        assert torch.allclose(rebuilt(ids), result.model(ids), atol=1e-6)
    if family != "transformer":
        assert result.removed["embedding_dims"] > 0
        assert result.spec.knobs["embed_dim"] < KNOBS[family]["embed_dim"]


@pytest.mark.parametrize("family", sorted(KNOBS))
def test_slim_text_model_exports_with_symbolic_length(family: str, tmp_path: Path) -> None:
    from scaledl.export.onnx_export import export_onnx

    spec = ModelSpec(family, [], 2, KNOBS[family], FRONTEND)
    slim = slim_spec(spec, width=0.5, depth=0.5)
    assert slim.frontend == FRONTEND and slim.knobs["embed_dim"] == 16
    model = slim.build().eval()
    ids, _ = batch()
    result = export_onnx(model, ids.numpy(), exporter="legacy", dynamic_axes={1: "sequence"})
    from scaledl.export.onnx_export import run_onnx

    longer = np.concatenate([ids.numpy(), np.zeros((24, 5), np.int64)], axis=1)
    np.testing.assert_allclose(
        run_onnx(result.onnx_bytes, longer), result.parity_outputs, atol=1e-5
    )


@pytest.mark.slow
def test_a_search_on_a_text_package_prunes_quantizes_and_cross_fits(
    text_package: Path, tmp_path: Path
) -> None:
    import json

    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.api import optimize_package

    config = OptimizeConfig(
        methods=["prune", "distill", "int8-dynamic"],
        settings={"prune": {"ratios": [0.5]}, "distill": {"epochs": 1}},
        max_accuracy_drop=0.2,  # a 2-epoch smoke-test model
        time_budget_min=2,
        cross_fit="2",
        exporter="legacy",
    )
    result = optimize_package(text_package, config, out=tmp_path / "opt")
    frontier = json.loads((tmp_path / "opt" / "frontier.json").read_text())
    skipped = {s["method"]: s["reason"] for s in frontier["skipped"]}
    assert "prune" not in skipped, skipped  # text is not a forecaster
    made = [c["transforms"] for c in frontier["candidates"] if c["status"] == "ok"]
    assert ["prune:0.5", "distill"] in made, frontier["candidates"]
    # the first 600 rows of SST-2 hold few phrases of one another: measured, and no warning
    assert 0.0 <= frontier["selection"]["seen_in_training"] < 0.2
    assert "warning" not in frontier["selection"]
    assert result.winner is not None
    if result.cross_fit:  # the time left covered the fold parents: raw strings were refolded
        ctx = result.ctx
        assert result.cross_fit["rows"] == len(ctx.splits.train) + len(ctx.splits.val)
