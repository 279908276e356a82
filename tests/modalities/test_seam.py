"""The modality seam: dispatch, one preprocessing implementation, and a plugin modality with a
front-end carried through model.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from scaledl.contract import parse_preprocessing
from scaledl.data import DataConfig
from scaledl.errors import DataError, UnsupportedMediaTypeError
from scaledl.modalities import (
    BodyLimits,
    load_splits,
    modality,
    modality_kinds,
    modality_of,
    register_modality,
)
from scaledl.modalities.sequence import SequenceModality
from scaledl.models import ModelSpec


def test_builtin_units_and_dispatch(tmp_path: Path) -> None:
    assert {"image", "table", "sequence"} <= set(modality_kinds())
    table = tmp_path / "t.csv"
    table.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    splits = load_splits(DataConfig(source=str(table)), seed=0)
    assert splits.kind == "table"
    assert load_splits(DataConfig(source="digits"), seed=0).kind == "image"
    with pytest.raises(DataError, match="unknown kind of input 'speech'"):
        modality("speech")


def test_training_and_serving_normalize_alike() -> None:
    """`to_graph` (numpy: serving, evaluation) and `batch_transform` (torch: training) agree."""
    splits = load_splits(DataConfig(source="digits"), seed=0)
    unit = modality(splits.kind)
    spec = unit.fit(splits)
    raw = splits.test.x[:32]
    served = unit.to_graph(spec, raw)
    trained = unit.batch_transform(spec)(raw).numpy()
    np.testing.assert_allclose(served, trained, rtol=0, atol=1e-6)
    with pytest.raises(DataError, match="sample shape"):
        unit.to_graph(spec, raw[:, :, :4])


def test_predict_bodies_are_decoded_by_the_modality() -> None:
    table = parse_preprocessing(
        {"kind": "table", "raw_shape": [2], "scale": 1.0, "mean": [0, 0], "std": [1, 1]}
    )
    unit = modality_of(table)
    rows = unit.rows_from_json(table, [[1, 2], [3, 4]])
    assert rows.shape == (2, 2)
    assert unit.body_types == () and "image/png" in modality("image").body_types
    with pytest.raises(UnsupportedMediaTypeError, match="image/png"):
        unit.rows_from_body(table, b"\x89PNG", "image/png", BodyLimits())
    with pytest.raises(DataError, match="2 numbers"):
        unit.rows_from_json(table, [[1, 2, 3]])
    with pytest.raises(DataError, match="numbers"):
        unit.rows_from_json(table, ["not", "numbers"])


class _Doubled(SequenceModality):
    """A plugin modality whose front-end (inside the graph) doubles the steps' features."""

    kind: ClassVar[str] = "sequence"

    def frontend(self, spec: Any, family: str) -> dict[str, Any]:
        steps, features = spec.sample_shape
        return {"kind": self.kind, "steps": steps, "features": features}

    def build_frontend(self, config: dict[str, Any]) -> tuple[Any, tuple[int, ...]]:
        from torch import nn

        layer = nn.Linear(config["features"], 2 * config["features"])
        return layer, (config["steps"], 2 * config["features"])


def test_a_frontend_is_rebuilt_from_model_json() -> None:
    import torch

    original = modality("sequence")
    register_modality(_Doubled())
    try:
        spec = parse_preprocessing(
            {"kind": "sequence", "raw_shape": [5, 3], "scale": 1.0, "mean": [0] * 3, "std": [1] * 3}
        )
        front = modality_of(spec).frontend(spec, "rnn")
        model_spec = ModelSpec("rnn", [5, 3], 4, {"hidden": 8}, frontend=front)
        model = model_spec.build()
        again = ModelSpec.from_json(model_spec.to_json()).build()
        again.load_state_dict(model.state_dict())
        x = torch.randn(2, 5, 3)
        assert model(x).shape == (2, 4)
        torch.testing.assert_close(model.eval()(x), again.eval()(x))
        assert set(model.state_dict()) >= {"frontend.weight", "frontend.bias"}
    finally:
        register_modality(original)
