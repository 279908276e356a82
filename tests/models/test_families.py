"""Every family builds, trains a few steps, and exports to ONNX with a symbolic batch and parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scaledl.errors import ModelError
from scaledl.export.onnx_export import export_onnx, run_onnx
from scaledl.models import ModelSpec, create_model

CASES = [
    ("mlp", (1, 8, 8), {"hidden": [32, 16]}),
    ("cnn", (1, 8, 8), {"channels": [8, 16]}),
    ("cnn", (3, 16, 16), {"channels": [8, 16], "depth": 3, "residual": True, "kernel_size": 5}),
    ("rnn", (1, 8, 8), {"cell": "gru", "hidden": 16}),
    ("rnn", (12, 3), {"cell": "lstm", "hidden": [16, 8], "layers": 2, "bidirectional": True}),
    ("transformer", (1, 8, 8), {"d_model": 16, "heads": 2, "layers": 1, "ff": 32}),
    ("transformer", (6,), {"d_model": 16, "heads": 4, "layers": 1, "ff": 16}),
]


@pytest.mark.parametrize(("family", "shape", "knobs"), CASES, ids=lambda v: str(v))
def test_family_trains_and_exports(family: str, shape: tuple[int, ...], knobs: dict) -> None:
    torch.manual_seed(0)
    model = create_model(family, shape, 5, **knobs)
    x = torch.randn(16, *shape)
    y = torch.randint(0, 5, (16,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    result = export_onnx(model.eval(), x[:4].numpy())
    assert result.max_abs_error <= 1e-4
    # The batch dimension is symbolic: a batch of 7 runs through the graph exported from 4.
    out7 = run_onnx(result.onnx_bytes, x[:7].numpy())
    with torch.no_grad():
        np.testing.assert_allclose(out7, model(x[:7]).numpy(), atol=1e-4)


def test_spec_round_trip_rebuilds_same_architecture() -> None:
    spec = ModelSpec("cnn", [1, 8, 8], 10, {"channels": [8, 16], "widths": [[8, 8], [16, 16]]})
    a, b = spec.build(), ModelSpec.from_json(spec.to_json()).build()
    b.load_state_dict(a.state_dict())
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


@pytest.mark.parametrize(
    ("family", "knobs", "pattern"),
    [
        ("cnn", {"kernel_size": 4}, "odd"),
        ("cnn", {"chanels": [1]}, "valid keys: channels"),
        ("transformer", {"d_model": 30, "heads": 4}, "divisible"),
        ("rnn", {"hidden": [8, 8], "layers": 3}, "3 layers"),
        ("resnet", {}, "unknown model family 'resnet'"),
    ],
)
def test_bad_knobs_are_named(family: str, knobs: dict, pattern: str) -> None:
    with pytest.raises(ModelError, match=pattern):
        create_model(family, (1, 8, 8), 10, **knobs)


def test_cnn_rejects_tables() -> None:
    with pytest.raises(ValueError, match="image inputs"):
        create_model("cnn", (10,), 2)
