"""The V2 codec on its own: every datatype both ways, and malformed bodies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaledl.errors import PayloadTooLargeError, ScaledlError
from scaledl.serve import codec, encoding
from scaledl.serve.signature import Signature, TensorSpec, validate_inputs
from tests.serve.helpers import binary_request, types_inputs

DATATYPES = {
    "f32": "FP32",
    "f16": "FP16",
    "f64": "FP64",
    "i64": "INT64",
    "i8": "INT8",
    "u8": "UINT8",
    "flag": "BOOL",
    "text": "BYTES",
}


def test_binary_request_decodes_every_datatype() -> None:
    inputs = types_inputs(batch=2)
    body, headers = binary_request(inputs, DATATYPES, id="r1")
    request = codec.decode_request(body, headers["Inference-Header-Content-Length"])
    assert request.request_id == "r1" and request.binary_default
    for name, array in inputs.items():
        got = request.inputs[name]
        if DATATYPES[name] == "BYTES":
            assert got.tolist() == [[v.decode() for v in row] for row in array]
        else:
            assert got.dtype == array.dtype and np.array_equal(got, array), name


def test_json_request_casts_and_checks_ranges() -> None:
    doc = {
        "inputs": [
            {"name": "a", "datatype": "INT8", "shape": [2], "data": [1, -2]},
            {"name": "b", "datatype": "FP16", "shape": [1, 2], "data": [[0.5, 1.5]]},
            {"name": "c", "datatype": "BOOL", "shape": [2], "data": [True, False]},
            {"name": "d", "datatype": "BYTES", "shape": [1], "data": ["hé"]},
        ],
        "outputs": [{"name": "o", "parameters": {"binary_data": True}}],
        "parameters": {"timeout": 2_000_000},
    }
    request = codec.decode_request(json.dumps(doc).encode(), None)
    assert request.inputs["a"].dtype == np.int8 and request.inputs["b"].dtype == np.float16
    assert request.inputs["c"].tolist() == [True, False] and request.inputs["d"].tolist() == ["hé"]
    assert request.outputs == ["o"] and request.binary_outputs == {"o": True}
    assert request.timeout_s == 2.0
    doc["inputs"][0]["data"] = [1, 300]
    with pytest.raises(ScaledlError, match="out of range for INT8"):
        codec.decode_request(json.dumps(doc).encode(), None)
    doc["inputs"][0]["data"] = [1.5, 2]
    with pytest.raises(ScaledlError, match="integers"):
        codec.decode_request(json.dumps(doc).encode(), None)


def one_input(**fields: object) -> bytes:
    return json.dumps({"inputs": [{"name": "x", **fields}]}).encode()


@pytest.mark.parametrize(
    ("body", "header", "match"),
    [
        (b"{", None, "not valid JSON"),
        (b'{"inputs": 3}', None, "inputs"),
        (one_input(datatype="FP8", shape=[1], data=[1]), None, "FP8"),
        (one_input(datatype="FP32", shape=[-1], data=[1]), None, "shape"),
        (one_input(datatype="FP32", shape=[2], data=[1]), None, "2 element"),
        (one_input(datatype="FP32", shape=[1]), None, "neither"),
        (one_input(datatype="FP32", shape=[1], data=[1]), "999", "body holds"),
    ],
)
def test_malformed_requests(body: bytes, header: str | None, match: str) -> None:
    with pytest.raises(ScaledlError, match=match) as info:
        codec.decode_request(body, header)
    assert info.value.http_status == 400


def test_bytes_elements_that_lie_about_their_length() -> None:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "t",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": 7},
                }
            ]
        }
    ).encode()
    blob = (10).to_bytes(4, "little") + b"abc"
    with pytest.raises(ScaledlError, match="runs past"):
        codec.decode_request(head + blob, str(len(head)))


def test_response_encoding_json_and_binary() -> None:
    out = np.arange(6, dtype=np.float32).reshape(2, 3)
    words = np.array([["a", "bc"]], dtype=object)
    body, header_len = encoding.encode_response(
        "m", "1", "id9", [("o", out), ("w", words)], [False, False]
    )
    assert header_len is None
    doc = json.loads(body)
    assert doc["outputs"][0]["data"] == list(range(6)) and doc["outputs"][1]["data"] == ["a", "bc"]
    body, header_len = encoding.encode_response(
        "m", "1", "id9", [("o", out), ("w", words)], [True, True]
    )
    assert header_len is not None
    doc = json.loads(body[:header_len])
    assert doc["outputs"][0]["parameters"]["binary_data_size"] == 24
    rest = body[header_len:]
    assert np.array_equal(np.frombuffer(rest[:24], np.float32).reshape(2, 3), out)
    assert rest[24:] == b"\x01\x00\x00\x00a\x02\x00\x00\x00bc"


def test_gzip_bodies_are_bounded() -> None:
    import gzip

    data = gzip.compress(b" " * 100_000)
    assert len(codec.decode_body(data, "gzip", 200_000)) == 100_000
    with pytest.raises(PayloadTooLargeError):
        codec.decode_body(data, "gzip", 50_000)


def test_validation_against_the_signature() -> None:
    sig = Signature(
        inputs=(TensorSpec("x", "FP32", (-1, 3)), TensorSpec("k", "INT64", (-1, 1))),
        outputs=(TensorSpec("y", "FP32", (-1, 2)),),
    )
    good = {"x": np.zeros((4, 3), np.float32), "k": np.zeros((4, 1), np.int64)}
    assert validate_inputs(sig, good, allow_nonfinite=False) == 4
    with pytest.raises(ScaledlError, match="'k' has batch size 2"):
        validate_inputs(sig, {**good, "k": np.zeros((2, 1), np.int64)}, False)
    with pytest.raises(ScaledlError, match="'k' is missing"):
        validate_inputs(sig, {"x": good["x"]}, False)
    nan = good["x"].copy()
    nan[1, 1] = np.nan
    with pytest.raises(ScaledlError, match="NaN"):
        validate_inputs(sig, {**good, "x": nan}, False)
    assert validate_inputs(sig, {**good, "x": nan}, allow_nonfinite=True) == 4


nested = st.recursive(
    st.lists(
        st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.booleans(), max_size=600
    ),
    lambda inner: st.lists(inner, max_size=300),
    max_leaves=1500,
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(data=nested)
def test_to_array_converts_like_numpy_in_slices(data: list[object]) -> None:
    from scaledl.serve.codec import to_array

    try:
        expected = np.asarray(data)
    except ValueError:
        with pytest.raises(ValueError):
            to_array(data)
        return
    if expected.dtype == object:
        return  # mixed nesting: both refuse it as a tensor later
    got = to_array(data)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(request_id=st.text(max_size=40))
def test_request_id_header_is_always_valid_and_reversible(request_id: str) -> None:
    import urllib.parse

    from scaledl.serve.asgi import id_header

    value = id_header(request_id)
    assert all(0x20 <= b < 0x7F for b in value)  # never a byte that breaks a header
    assert urllib.parse.unquote(value.decode()) == request_id or value.decode() == request_id
