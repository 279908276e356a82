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
    (
        "cnn",
        (3, 16, 16),
        {
            "channels": [8, 16],
            "stem": "whiten",
            "downsample": "pool_after_conv",
            "activation": "gelu",
            "tta": "flip",
        },
    ),
    ("cnn", (12, 3), {"channels": [8, 16], "downsample": "pool_after_conv"}),
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
        ("cnn", {"stem": "pca"}, "'stem': must be one of none, whiten"),
        ("cnn", {"tta": "rotate"}, "'tta': must be one of none, flip"),
        ("cnn", {"downsample": "stride"}, "'downsample': must be one of pool_first"),
        ("cnn", {"activation": ["gelu"]}, "'activation'"),
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


def test_whitening_stem_decorrelates_the_training_patches() -> None:
    torch.manual_seed(0)
    model = create_model("cnn", (3, 16, 16), 10, channels=[8], stem="whiten")
    mix = torch.tensor([[1.0, 0.8, 0.1], [0.0, 0.5, 0.3], [0.0, 0.0, 2.0]])
    x = torch.einsum("nchw,cd->ndhw", torch.randn(64, 3, 16, 16), mix)  # correlated channels
    model.fit_to_data(x)
    stem = model.stem[0]
    out = torch.nn.functional.conv2d(x, stem.weight)[:, :12]  # one of each ± pair
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = flat.T @ flat / len(flat)
    torch.testing.assert_close(covariance, torch.eye(12), atol=2e-2, rtol=0)
    assert not stem.weight.requires_grad and stem.bias.requires_grad
    # fitted once: a fine-tune on other rows, or a rebuilt model that loaded the weights, keeps
    # the filters the rest of the network was trained under
    fitted = stem.weight.clone()
    model.fit_to_data(torch.randn(64, 3, 16, 16))
    torch.testing.assert_close(stem.weight, fitted)
    rebuilt = create_model("cnn", (3, 16, 16), 10, channels=[8], stem="whiten")
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.fit_to_data(torch.randn(64, 3, 16, 16))
    torch.testing.assert_close(rebuilt.stem[0].weight, fitted)


def test_flip_tta_answers_the_same_for_an_image_and_its_mirror() -> None:
    torch.manual_seed(0)
    model = create_model("cnn", (3, 8, 8), 4, channels=[8, 8], tta="flip").eval()
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(torch.flip(x, dims=[3])))
        plain = create_model("cnn", (3, 8, 8), 4, channels=[8, 8]).eval()
        plain.load_state_dict(model.state_dict())
        assert not torch.allclose(plain(x), plain(torch.flip(x, dims=[3])))


def test_pool_after_conv_pools_every_stage_inside_its_first_layer() -> None:
    model = create_model("cnn", (3, 16, 16), 4, channels=[4, 8], downsample="pool_after_conv")
    first = model.stages[0][0]
    assert [type(m).__name__ for m in first] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    with torch.no_grad():
        assert model.stages(torch.zeros(1, 3, 16, 16)).shape == (1, 8, 4, 4)


@pytest.mark.parametrize("knobs", [{"stem": "whiten"}, {"tta": "flip"}])
def test_image_only_cnn_knobs_are_refused_on_sequences(knobs: dict) -> None:
    with pytest.raises(ValueError, match="images only"):
        create_model("cnn", (12, 3), 2, **knobs)
