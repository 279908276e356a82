"""Open Inference Protocol (V2) responses: JSON tensors or binary tensor data.

Outputs go back as binary when asked (`binary_data` on an output, or `binary_data_output` on
the request); then the body is the JSON header followed by the raw little-endian tensors, and
`Inference-Header-Content-Length` gives the header's length. BYTES elements are a 4-byte
little-endian length then the UTF-8 bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from scaledl.serve.codec import DTYPES, BadRequest


def datatype_of(array: np.ndarray) -> str:
    if array.dtype == object:
        return "BYTES"
    for name, dtype in DTYPES.items():
        if name != "BYTES" and array.dtype == dtype:
            return name
    if array.dtype.kind in "US":
        return "BYTES"
    raise BadRequest(f"numpy dtype {array.dtype} has no Open Inference Protocol datatype")


def encode_response(
    model: str,
    version: str,
    request_id: str,
    outputs: list[tuple[str, np.ndarray]],
    binary: list[bool],
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header length."""
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for (name, array), as_binary in zip(outputs, binary):
        datatype = datatype_of(array)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if as_binary:
            blob = _pack_bytes(array) if datatype == "BYTES" else _le(array).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _json_data(name, datatype, array)
        described.append(entry)
    head = orjson.dumps(
        {"model_name": model, "model_version": version, "id": request_id, "outputs": described},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


def _le(array: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.astype(flat.dtype.newbyteorder("<"), copy=False)


def _json_data(name: str, datatype: str, array: np.ndarray) -> Any:
    if datatype != "BYTES":
        return np.ascontiguousarray(array).reshape(-1)
    values = []
    for v in array.reshape(-1):
        raw = v if isinstance(v, bytes) else str(v).encode("utf-8")
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(
                f"output {name!r} holds non-UTF-8 bytes; request it with binary_data: true"
            ) from None
    return values


def _pack_bytes(array: np.ndarray) -> bytes:
    parts: list[bytes] = []
    for v in array.reshape(-1):
        raw = v if isinstance(v, bytes) else str(v).encode("utf-8")
        parts.append(len(raw).to_bytes(4, "little"))
        parts.append(raw)
    return b"".join(parts)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
