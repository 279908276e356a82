"""ModelInferRequest → `codec.InferRequest`, and model outputs → ModelInferResponse.

The gRPC messages carry a tensor either as `raw_input_contents` (little-endian row-major bytes,
BYTES elements as a 4-byte length then the bytes: exactly the HTTP binary tensor extension) or
as typed `contents` (one repeated field per datatype family). Raw tensors are decoded by the
HTTP codec itself, and the request fields (`id`, the `timeout` parameter, requested outputs) go
through the codec's own checks, so both protocols refuse the same inputs with the same words.
Shapes, datatypes and NaN/Inf are then checked against the signature by the shared
`InferenceService`, before ONNX Runtime.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scaledl.serve import codec, encoding
from scaledl.serve.codec import DTYPES, BadRequest, InferRequest
from scaledl.serve.grpc.protos import grpc_predict_v2_pb2 as pb

# datatype → the InferTensorContents field that carries it, and that field's numpy type
# (narrower integers travel widened and are range-checked on the way back). FP16 has none.
TYPED_FIELDS: dict[str, tuple[str, Any]] = {
    "BOOL": ("bool_contents", np.bool_),
    "UINT8": ("uint_contents", np.uint32),
    "UINT16": ("uint_contents", np.uint32),
    "UINT32": ("uint_contents", np.uint32),
    "UINT64": ("uint64_contents", np.uint64),
    "INT8": ("int_contents", np.int32),
    "INT16": ("int_contents", np.int32),
    "INT32": ("int_contents", np.int32),
    "INT64": ("int64_contents", np.int64),
    "FP32": ("fp32_contents", np.float32),
    "FP64": ("fp64_contents", np.float64),
    "BYTES": ("bytes_contents", None),
}


def decode_request(request: pb.ModelInferRequest) -> tuple[InferRequest, bool]:
    """The request as the HTTP path sees it, and whether its tensors came as raw bytes."""
    if not request.inputs:
        raise BadRequest("request needs a non-empty 'inputs' list of tensors")
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(
            f"raw_input_contents holds {len(raw)} tensor(s) for {len(request.inputs)} input(s); "
            "give one per input, in the order of 'inputs'"
        )
    tensors: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    for index, tensor in enumerate(request.inputs):
        name = tensor.name
        if name in tensors:
            raise BadRequest(f"input {name!r} is given more than once")
        datatype, shape = _header(tensor)
        if raw:
            if tensor.HasField("contents"):
                raise BadRequest(
                    f"input {name!r} has typed 'contents' while the request uses "
                    "raw_input_contents; use one form for every input"
                )
            chunk = memoryview(raw[index])
            count = math.prod(shape)
            array = codec._binary_tensor(name, datatype, shape, count, len(chunk), chunk, 0)
        else:
            array = _typed_tensor(name, datatype, shape, tensor.contents)
        tensors[name], datatypes[name] = array, datatype
    decoded = InferRequest(inputs=tensors, datatypes=datatypes)
    codec._decode_request_fields(_request_fields(request), decoded)
    return decoded, bool(raw)


def _header(tensor: Any) -> tuple[str, list[int]]:
    name, datatype = tensor.name, tensor.datatype
    if not name:
        raise BadRequest("each input needs a 'name'")
    if datatype not in DTYPES:
        raise BadRequest(
            f"input {name!r}: datatype {datatype[:16]!r} is not supported; "
            f"valid: {', '.join(DTYPES)}"
        )
    shape = list(tensor.shape)
    if any(d < 0 for d in shape):
        raise BadRequest(f"input {name!r}: 'shape' must be a list of non-negative integers")
    return datatype, shape


def _typed_tensor(name: str, datatype: str, shape: list[int], contents: Any) -> np.ndarray:
    if datatype not in TYPED_FIELDS:
        raise BadRequest(
            f"input {name!r}: {datatype} has no typed contents field; send it in raw_input_contents"
        )
    field, natural = TYPED_FIELDS[datatype]
    others = [f.name for f, _ in contents.ListFields() if f.name != field]
    if others:
        raise BadRequest(
            f"input {name!r}: {datatype} data go in contents.{field}, not contents.{others[0]}"
        )
    values = getattr(contents, field)
    count = math.prod(shape)
    if len(values) != count:
        raise BadRequest(
            f"input {name!r}: shape {shape} needs {count} element(s), contents.{field} "
            f"holds {len(values)}"
        )
    if datatype == "BYTES":
        return _text(name, values).reshape(shape)
    array = np.fromiter(values, dtype=natural, count=count)
    return codec._cast(name, datatype, array).reshape(shape)


def _text(name: str, values: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    try:  # ONNX Runtime's Python API takes text, as on the HTTP path
        out[:] = [v.decode("utf-8") for v in values]
    except UnicodeDecodeError:
        raise BadRequest(
            f"input {name!r}: BYTES element is not UTF-8 text, which ONNX Runtime needs"
        ) from None
    return out


def _request_fields(request: pb.ModelInferRequest) -> dict[str, Any]:
    """id, parameters and requested outputs in the JSON form the HTTP codec checks."""
    doc: dict[str, Any] = {"id": request.id or None}
    if request.parameters:
        doc["parameters"] = {k: _parameter(v) for k, v in request.parameters.items()}
    if request.outputs:
        doc["outputs"] = [{"name": out.name} for out in request.outputs]
    return doc


def _parameter(value: Any) -> Any:
    which = value.WhichOneof("parameter_choice")
    return getattr(value, which) if which else None


def encode_response(
    model: str,
    version: str,
    request_id: str,
    outputs: list[tuple[str, np.ndarray]],
    raw: bool,
) -> pb.ModelInferResponse:
    """Outputs as raw bytes (when the request was raw, or a datatype has no typed field)."""
    response = pb.ModelInferResponse(model_name=model, model_version=version, id=request_id)
    datatypes = [encoding.datatype_of(array) for _, array in outputs]
    raw = raw or any(d not in TYPED_FIELDS for d in datatypes)
    for (name, array), datatype in zip(outputs, datatypes):
        tensor = response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        if raw:
            blob = (
                encoding._pack_bytes(array)
                if datatype == "BYTES"
                else encoding._le(array).tobytes()
            )
            response.raw_output_contents.append(blob)
        else:
            _fill_typed(tensor.contents, datatype, array)
    return response


def _fill_typed(contents: Any, datatype: str, array: np.ndarray) -> None:
    field = getattr(contents, TYPED_FIELDS[datatype][0])
    flat = array.reshape(-1)
    if datatype == "BYTES":
        field.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in flat)
    else:
        field.extend(flat.tolist())
