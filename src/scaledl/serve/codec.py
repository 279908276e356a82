"""Open Inference Protocol (V2) requests: JSON tensors and binary tensor data (responses:
`scaledl.serve.encoding`).

Binary tensor data extension (as KServe/Triton define it): the body is the JSON object followed
by raw little-endian, row-major tensors; `Inference-Header-Content-Length` gives the JSON length;
each binary input has `parameters.binary_data_size`; BYTES elements are a 4-byte little-endian
length then the bytes.

Everything here is pure numpy + orjson, so it is cheap on the hot path and easy to test. Every
malformed input raises `ScaledlError` (400/413/415) with a message that names the tensor and
never echoes payload values.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from scaledl.errors import PayloadTooLargeError, ScaledlError, UnsupportedMediaTypeError

HEADER_LENGTH = "inference-header-content-length"
MAX_RANK = 16  # ONNX models here have a handful of dimensions; numpy stops at 64
MAX_DIM = (1 << 31) - 1
MAX_ID_CHARS = 256
ARRAY_SLICE = 256  # top-level JSON rows converted to numpy per step

# V2 datatype → numpy dtype (little-endian). BF16 has no numpy type ONNX Runtime accepts.
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
JSON_CONTENT_TYPES = ("application/json", "application/octet-stream", "text/plain")


class BadRequest(ScaledlError):
    """A malformed request (HTTP 400)."""


@dataclass(slots=True)
class InferRequest:
    """A decoded V2 inference request."""

    inputs: dict[str, np.ndarray]
    datatypes: dict[str, str]
    request_id: str | None = None
    outputs: list[str] | None = None  # requested output names (None: all)
    binary_outputs: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False
    timeout_s: float | None = None


def decode_body(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo `Content-Encoding: gzip|deflate`, refusing output beyond `limit` bytes."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none"
        )
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {encoding} data ({exc})") from None
    if len(out) > limit:
        raise PayloadTooLargeError(f"decompressed body exceeds the {limit}-byte limit")
    return out


def check_content_type(content_type: str | None) -> None:
    if content_type is None:
        return
    base = content_type.split(";", 1)[0].strip().lower()
    if base and base not in JSON_CONTENT_TYPES:
        raise UnsupportedMediaTypeError(
            f"Content-Type {base!r} is not accepted by /infer; send application/json, or "
            "application/octet-stream with Inference-Header-Content-Length for binary tensors"
        )


def header_size(header_length: str) -> int:
    """The value of Inference-Header-Content-Length (a plain decimal number)."""
    value = header_length.strip()
    digits = value.removeprefix("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise BadRequest(
            f"Inference-Header-Content-Length {header_length[:32]!r} is not an integer"
        )
    return int(value)


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON part and the binary part of a request body."""
    if header_length is None:
        return body, memoryview(b"")
    size = header_size(header_length)
    if size < 0 or size > len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length is {size} but the body holds {len(body)} bytes"
        )
    view = memoryview(body)
    return bytes(view[:size]), view[size:]


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON ({exc})") from None


def decode_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse a V2 inference request (JSON, optionally followed by binary tensors)."""
    head, binary = split_body(body, header_length)
    doc = parse_json(head)
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object with an 'inputs' list")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("request needs a non-empty 'inputs' list of tensors")
    tensors: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    offset = 0
    for item in inputs:
        name, datatype, array, used = _decode_input(item, binary, offset)
        if name in tensors:
            raise BadRequest(f"input {name!r} is given more than once")
        tensors[name], datatypes[name] = array, datatype
        offset += used
    if offset != len(binary):
        raise BadRequest(
            f"the body holds {len(binary) - offset} byte(s) after the binary tensors that "
            "binary_data_size declares; Inference-Header-Content-Length or a size is wrong"
        )
    request = InferRequest(inputs=tensors, datatypes=datatypes)
    _decode_request_fields(doc, request)
    return request


def _decode_request_fields(doc: dict[str, Any], request: InferRequest) -> None:
    request_id = doc.get("id")
    if request_id is not None:
        if not isinstance(request_id, str) or len(request_id) > MAX_ID_CHARS:
            raise BadRequest(f"'id' must be a string of at most {MAX_ID_CHARS} characters")
        if not request_id.isprintable():
            raise BadRequest(
                "'id' must be printable text: no control or invisible characters (CR, LF, "
                "NUL, tab …); e.g. a UUID"
            )
        request.request_id = request_id or None
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequest("'parameters' must be a JSON object")
    request.binary_default = params.get("binary_data_output") is True
    timeout = params.get("timeout")  # microseconds, as Triton defines it
    if timeout is not None:
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
            raise BadRequest("parameters.timeout must be a positive integer (microseconds)")
        request.timeout_s = timeout / 1e6
    outputs = doc.get("outputs")
    if outputs is None:
        return
    if not isinstance(outputs, list):
        raise BadRequest("'outputs' must be a list of {name, parameters}")
    request.outputs = []
    for out in outputs:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise BadRequest("each requested output needs a string 'name'")
        request.outputs.append(out["name"])
        out_params = out.get("parameters") or {}
        if not isinstance(out_params, dict):
            raise BadRequest(f"output {out['name']!r}: 'parameters' must be a JSON object")
        if "binary_data" in out_params:
            request.binary_outputs[out["name"]] = out_params["binary_data"] is True


def _decode_input(item: Any, binary: memoryview, offset: int) -> tuple[str, str, np.ndarray, int]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise BadRequest("each input needs a string 'name', 'shape', 'datatype' and data")
    name: str = item["name"]
    datatype = item.get("datatype")
    if datatype not in DTYPES:
        raise BadRequest(
            f"input {name!r}: datatype {str(datatype)[:16]!r} is not supported; "
            f"valid: {', '.join(DTYPES)}"
        )
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"input {name!r}: 'shape' must be a list of non-negative integers")
    if len(shape) > MAX_RANK or any(d > MAX_DIM for d in shape):
        raise BadRequest(
            f"input {name!r}: shape {_short(shape)} is not servable: at most {MAX_RANK} "
            f"dimensions of at most {MAX_DIM} each"
        )
    count = math.prod(shape)
    params = item.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequest(f"input {name!r}: 'parameters' must be a JSON object")
    size = params.get("binary_data_size")
    if size is not None:
        if "data" in item:
            raise BadRequest(f"input {name!r} has both 'data' and binary_data_size")
        array = _binary_tensor(name, datatype, shape, count, size, binary, offset)
        return name, datatype, array, int(size)
    if "data" not in item:
        raise BadRequest(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
    return name, datatype, _json_tensor(name, datatype, shape, count, item["data"]), 0


def _binary_tensor(
    name: str,
    datatype: str,
    shape: list[int],
    count: int,
    size: Any,
    binary: memoryview,
    offset: int,
) -> np.ndarray:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest(f"input {name!r}: binary_data_size must be a non-negative integer")
    if offset + size > len(binary):
        raise BadRequest(
            f"input {name!r}: binary_data_size {size} runs past the end of the body "
            f"({len(binary) - offset} byte(s) remain after the JSON header)"
        )
    chunk = binary[offset : offset + size]
    if datatype == "BYTES":
        return _unpack_bytes(name, chunk, count).reshape(shape)
    dtype = DTYPES[datatype]
    if size != count * dtype.itemsize:
        raise BadRequest(
            f"input {name!r}: shape {shape} of {datatype} needs {count * dtype.itemsize} "
            f"bytes but binary_data_size is {size}"
        )
    array = np.frombuffer(chunk, dtype=dtype).reshape(shape)
    if not array.flags.aligned:
        array = array.copy()
    return array


def _unpack_bytes(name: str, chunk: memoryview, count: int) -> np.ndarray:
    items: list[str] = []
    pos, end = 0, len(chunk)
    while pos < end:
        if pos + 4 > end:
            raise BadRequest(f"input {name!r}: truncated BYTES element length")
        length = int.from_bytes(chunk[pos : pos + 4], "little")
        pos += 4
        if pos + length > end:
            raise BadRequest(f"input {name!r}: BYTES element runs past binary_data_size")
        try:  # ONNX Runtime's Python API takes text: feed it str
            items.append(bytes(chunk[pos : pos + length]).decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(
                f"input {name!r}: BYTES element is not UTF-8 text, which ONNX Runtime needs"
            ) from None
        pos += length
    if len(items) != count:
        raise BadRequest(f"input {name!r}: shape needs {count} BYTES element(s), got {len(items)}")
    out = np.empty(count, dtype=object)
    out[:] = items
    return out


def to_array(data: list[Any], dtype: Any = None) -> np.ndarray:
    """`np.asarray(data)` for a (nested) JSON list, converted a slice at a time.

    One `np.asarray` over a million-element list holds the GIL for tens of milliseconds,
    which stalls the event loop even from a worker thread; slices of `ARRAY_SLICE` rows keep
    every step short. Ragged data raises ValueError, as `np.asarray` does.
    """
    if len(data) == 1 and isinstance(data[0], list) and len(data[0]) > ARRAY_SLICE:
        return to_array(data[0], dtype)[None]
    if len(data) <= ARRAY_SLICE:
        return np.asarray(data, dtype)
    parts = [np.asarray(data[i : i + ARRAY_SLICE], dtype) for i in range(0, len(data), ARRAY_SLICE)]
    if len({p.shape[1:] for p in parts}) > 1:
        raise ValueError("ragged nested list")
    return np.concatenate(parts)


def _json_tensor(name: str, datatype: str, shape: list[int], count: int, data: Any) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        return _json_bytes(name, shape, count, data)
    try:
        array = to_array(data)
    except ValueError:
        raise BadRequest(f"input {name!r}: 'data' is a ragged nested list") from None
    if array.size != count:
        raise BadRequest(
            f"input {name!r}: shape {shape} needs {count} element(s), 'data' holds {array.size}"
        )
    return _cast(name, datatype, array).reshape(shape)


def _cast(name: str, datatype: str, array: np.ndarray) -> np.ndarray:
    dtype = DTYPES[datatype]
    kind = array.dtype.kind
    if array.size == 0:
        return array.astype(dtype)
    if datatype == "BOOL":
        if kind != "b":
            raise BadRequest(f"input {name!r}: BOOL data must be true/false")
        return array
    if kind not in "biuf" or (kind == "b" and datatype != "BOOL"):
        raise BadRequest(f"input {name!r}: {datatype} data must be JSON numbers")
    if dtype.kind in "iu":
        if kind == "f":
            raise BadRequest(f"input {name!r}: {datatype} data must be integers")
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise BadRequest(f"input {name!r}: a value is out of range for {datatype}")
    return array.astype(dtype, copy=False)


def _json_bytes(name: str, shape: list[int], count: int, data: list[Any]) -> np.ndarray:
    flat = _flatten(data)
    if len(flat) != count:
        raise BadRequest(
            f"input {name!r}: shape {shape} needs {count} element(s), 'data' holds {len(flat)}"
        )
    if not all(isinstance(v, str) for v in flat):
        raise BadRequest(f"input {name!r}: BYTES data in JSON must be strings")
    out = np.empty(count, dtype=object)
    out[:] = flat
    return out.reshape(shape)


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _short(shape: list[int]) -> str:
    text = str(shape)
    return text if len(text) <= 80 else text[:77] + "…]"
