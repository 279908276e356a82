"""Each family trains a few steps on text, exports to ONNX with symbolic batch and length, and
reproduces its outputs from raw strings; a text's output does not depend on its batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from scaledl.evaluate import predict_raw
from scaledl.package import open_package
from scaledl.verify import verify_package
from tests.text.conftest import text_recipe

pytestmark = pytest.mark.slow

TEXTS = np.array(
    [
        "a gripping , funny and moving film",
        "dull",
        "the plot makes no sense and the acting is wooden , but the music is lovely",
    ],
    dtype=object,
)


@pytest.mark.parametrize("family", ["mlp", "cnn", "rnn", "transformer"])
def test_family_trains_exports_and_serves_raw_text(
    family: str, sst2_small: Path, tmp_path: Path
) -> None:
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    recipe = text_recipe(sst2_small, family)
    recipe["train"] = {"epochs": 1, "batch_size": 64, "lr": 0.005}
    package = train_recipe(validate_recipe(recipe), tmp_path / family).package
    report = verify_package(package)  # raw strings → tokenizer → graph → recorded outputs
    assert report.parity_max_abs_error is not None and report.parity_max_abs_error <= 1e-4
    graph = onnx.load(str(package / "model.onnx"))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert not dims[0].HasField("dim_value") and not dims[1].HasField("dim_value")
    pkg = open_package(package)
    together = predict_raw(pkg, TEXTS)
    alone = np.concatenate([predict_raw(pkg, TEXTS[i : i + 1]) for i in range(len(TEXTS))])
    np.testing.assert_allclose(together, alone, atol=1e-5)  # padding never changes an answer
    assert pkg.manifest.signature.input.datatype == "BYTES"
    assert pkg.manifest.metrics.accuracy is not None
