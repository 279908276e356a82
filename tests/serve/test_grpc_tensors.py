"""gRPC messages ↔ numpy, in-process: every datatype both ways, and malformed tensors refused."""

from __future__ import annotations

import numpy as np
import pytest

from scaledl.serve.codec import BadRequest
from scaledl.serve.grpc import tensors
from scaledl.serve.grpc.protos import grpc_predict_v2_pb2 as pb
from tests.serve.helpers import types_inputs

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


def raw_request(arrays: dict[str, np.ndarray], **fields: str) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="types", **fields)
    for name, array in arrays.items():
        request.inputs.add(name=name, datatype=DATATYPES[name], shape=array.shape)
        if DATATYPES[name] == "BYTES":
            blob = b"".join(len(v).to_bytes(4, "little") + v for v in array.reshape(-1))
        else:
            blob = array.tobytes()
        request.raw_input_contents.append(blob)
    return request


def test_raw_tensors_of_every_datatype_round_trip() -> None:
    arrays = types_inputs(3)
    decoded, raw = tensors.decode_request(raw_request(arrays, id="r-1"))
    assert raw and decoded.request_id == "r-1"
    for name, array in arrays.items():
        got = decoded.inputs[name]
        if DATATYPES[name] == "BYTES":  # ONNX Runtime is fed text
            assert got.tolist() == [[v.decode() for v in row] for row in array]
        else:
            assert got.dtype == array.dtype and np.array_equal(got, array)
    outputs = [(name, array) for name, array in arrays.items()]
    response = tensors.encode_response("types", "1", "r-1", outputs, raw=True)
    sent = raw_request(arrays)
    assert list(response.raw_output_contents) == list(sent.raw_input_contents)
    for out, tensor in zip(response.outputs, sent.inputs):
        assert (out.name, out.datatype, list(out.shape)) == (
            tensor.name,
            tensor.datatype,
            list(tensor.shape),
        )


def test_typed_contents_decode_and_answer_typed() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    request = pb.ModelInferRequest(model_name="m")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[2, 3])
    tensor.contents.fp32_contents.extend(x.reshape(-1).tolist())
    small = request.inputs.add(name="k", datatype="INT8", shape=[2])
    small.contents.int_contents.extend([-128, 127])
    words = request.inputs.add(name="w", datatype="BYTES", shape=[1])
    words.contents.bytes_contents.append("βeta".encode())
    decoded, raw = tensors.decode_request(request)
    assert not raw
    assert np.array_equal(decoded.inputs["x"], x)
    assert decoded.inputs["k"].dtype == np.int8 and decoded.inputs["k"].tolist() == [-128, 127]
    assert decoded.inputs["w"].tolist() == ["βeta"]
    response = tensors.encode_response("m", "1", "id", [("y", x)], raw=False)
    assert not response.raw_output_contents
    assert list(response.outputs[0].contents.fp32_contents) == x.reshape(-1).tolist()
    half = tensors.encode_response("m", "1", "id", [("h", x.astype(np.float16))], raw=False)
    assert half.raw_output_contents[0] == x.astype(np.float16).tobytes()  # FP16: raw only


def typed(
    datatype: str, shape: list[int], field: str, values: list[object]
) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="m")
    tensor = request.inputs.add(name="x", datatype=datatype, shape=shape)
    getattr(tensor.contents, field).extend(values)
    return request


def bad_raw(shape: list[int], blob: bytes, datatype: str = "FP32") -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="x", datatype=datatype, shape=shape)
    request.raw_input_contents.append(blob)
    return request


def _two_raw_for_one_input() -> pb.ModelInferRequest:
    request = bad_raw([1], b"\0" * 4)
    request.raw_input_contents.append(b"\0" * 4)
    return request


def _raw_and_typed() -> pb.ModelInferRequest:
    request = bad_raw([1], b"\0" * 4)
    request.inputs[0].contents.fp32_contents.append(1.0)
    return request


def _twice() -> pb.ModelInferRequest:
    request = typed("FP32", [1], "fp32_contents", [1.0])
    request.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    return request


def _long_id() -> pb.ModelInferRequest:
    request = typed("FP32", [1], "fp32_contents", [1.0])
    request.id = "x" * 300
    return request


def _bad_timeout() -> pb.ModelInferRequest:
    request = typed("FP32", [1], "fp32_contents", [1.0])
    request.parameters["timeout"].string_param = "soon"
    return request


BAD = [
    (pb.ModelInferRequest(model_name="m"), "non-empty 'inputs'"),
    (bad_raw([1, 4], b"\0" * 12), "needs 16 bytes but binary_data_size is 12"),
    (bad_raw([2], b"\0" * 8, "FP8"), "datatype 'FP8' is not supported"),
    (bad_raw([-1], b""), "non-negative"),
    (bad_raw([2], b"\x05\0\0\0ab", "BYTES"), "runs past"),
    (bad_raw([1], b"\x02\0\0\0\xff\xfe", "BYTES"), "not UTF-8"),
    (_two_raw_for_one_input(), "raw_input_contents holds 2 tensor(s) for 1 input(s)"),
    (_raw_and_typed(), "use one form for every input"),
    (_twice(), "given more than once"),
    (typed("FP32", [3], "fp32_contents", [1.0, 2.0]), "needs 3 element(s)"),
    (typed("FP32", [1], "fp64_contents", [1.0]), "go in contents.fp32_contents"),
    (typed("INT8", [1], "int_contents", [300]), "out of range for INT8"),
    (typed("UINT8", [1], "uint_contents", [256]), "out of range for UINT8"),
    (typed("FP16", [1], "fp32_contents", [1.0]), "send it in raw_input_contents"),
    (typed("BYTES", [1], "bytes_contents", [b"\xff"]), "not UTF-8"),
    (_long_id(), "at most 256"),
    (_bad_timeout(), "parameters.timeout"),
]


@pytest.mark.parametrize(("request_", "words"), BAD, ids=[w for _, w in BAD])
def test_malformed_tensors_are_refused_by_name(request_: pb.ModelInferRequest, words: str) -> None:
    with pytest.raises(BadRequest, match=None) as caught:
        tensors.decode_request(request_)
    assert words in caught.value.message
