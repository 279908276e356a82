"""The merged graph on hand-made members: the soft vote, weights, look-back slices, opsets."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from scaledl.errors import PackageError
from scaledl.export.ensemble_graph import Member, merge_graphs
from scaledl.export.runtime import create_session


def _linear(
    weight: np.ndarray, steps: int | None = None, opset: int = 18, domain: str = ""
) -> bytes:
    """input (N, features) or (N, steps, features) → output = input @ weight (summed over time)."""
    shape: list[int | str] = ["batch", weight.shape[0]] if steps is None else ["batch", steps, 2]
    nodes = [helper.make_node("MatMul", ["input", "w"], ["product"])]
    if steps is not None:
        nodes.append(helper.make_node("ReduceSum", ["product", "axis"], ["output"], keepdims=0))
        inits = [numpy_helper.from_array(np.array([1], np.int64), "axis")]
    else:
        nodes.append(helper.make_node("Identity", ["product"], ["output"]))
        inits = []
    graph = helper.make_graph(
        nodes,
        "member",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", weight.shape[1]])],
        initializer=[numpy_helper.from_array(weight.astype(np.float32), "w"), *inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    return np.asarray(create_session(model).run(None, {"input": x.astype(np.float32)})[0])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def test_classifiers_are_averaged_as_probabilities_and_stay_logits() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)) * 5
    members = [Member("a", _linear(a), 0.25), Member("b", _linear(b), 0.75)]
    x = rng.normal(size=(32, 4))
    merged = _run(merge_graphs(members, "probability"), x)
    expected = 0.25 * _softmax(x @ a) + 0.75 * _softmax(x @ b)
    np.testing.assert_allclose(_softmax(merged.astype(np.float64)), expected, atol=1e-5)
    # not the average of the logits: a confident member does not simply outvote by scale
    assert not np.allclose(merged, 0.25 * (x @ a) + 0.75 * (x @ b), atol=1e-2)


def test_a_certain_member_gives_finite_logits() -> None:
    """A class every member rules out (probability 0 in float32) is floored, never −inf."""
    huge = np.array([[200.0, -200.0, 0.0]] * 2)
    members = [Member("a", _linear(huge), 0.5), Member("b", _linear(huge * 2), 0.5)]
    merged = _run(merge_graphs(members, "probability"), np.ones((3, 2)))
    assert np.isfinite(merged).all() and (merged.argmax(axis=1) == 0).all()


def test_forecasters_read_their_own_newest_steps() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 2))
    long, short = (
        Member("long", _linear(w, steps=8), 0.5, 8),
        Member("short", _linear(w * 3, steps=3), 0.5, 3),
    )
    merged = merge_graphs([long, short], "value", steps=8)
    model = onnx.load_from_string(merged)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert dims == [8, 2]
    x = rng.normal(size=(5, 8, 2))
    expected = 0.5 * (x @ w).sum(axis=1) + 0.5 * (x[:, -3:] @ (w * 3)).sum(axis=1)
    np.testing.assert_allclose(_run(merged, x), expected, rtol=1e-5, atol=1e-5)


def test_members_with_other_opsets_or_inputs_are_refused_by_name() -> None:
    w = np.eye(2)
    with pytest.raises(PackageError, match=r"member new uses ai.onnx opset 17.*--opset 18"):
        merge_graphs(
            [Member("old", _linear(w), 0.5), Member("new", _linear(w, opset=17), 0.5)], "value"
        )
    with pytest.raises(PackageError, match="at least two"):
        merge_graphs([Member("one", _linear(w), 1.0)], "value")
    with pytest.raises(PackageError, match="member bad: its ONNX graph does not parse"):
        merge_graphs([Member("ok", _linear(w), 0.5), Member("bad", b"\x00garbage", 0.5)], "value")


def test_the_default_domain_under_either_name_is_one_opset() -> None:
    w = np.eye(2)
    members = [Member("a", _linear(w), 0.5), Member("b", _linear(w * 3, domain="ai.onnx"), 0.5)]
    merged = merge_graphs(members, "value")
    assert [(o.domain, o.version) for o in onnx.load_from_string(merged).opset_import] == [("", 18)]
    x = np.ones((2, 2))
    np.testing.assert_allclose(_run(merged, x), 0.5 * x + 0.5 * (x @ (w * 3)), rtol=1e-6)
