"""Request bodies for bench/serve.py, and a check that each server really answers them right.

One sample per model, in every form a server under test reads: V2 JSON, V2 binary tensors,
the plain `{"data": [...]}` body of FastAPI/LitServe, and a gRPC ModelInferRequest with raw
contents. Before a server is timed, one real request checks that its answer matches in-process
ONNX Runtime (so every server computes the same thing) and, for gRPC, measures the length of
a successful answer (h2load counts successes by bytes: see serve_load.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Target:
    """Where one case sends its load: protocol, address, which body, whether to send the key."""

    protocol: str  # "http" | "grpc"
    address: str  # URL, or HOST:PORT for gRPC
    body: str  # "json" | "binary" | "plain" | "grpc"
    auth: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Sample:
    package: Path
    files: dict[str, tuple[Path, dict[str, str]]]  # body kind → (file, headers)
    reference: np.ndarray  # in-process ONNX Runtime output for the sample


class CheckFailed(RuntimeError):
    pass


def make_sample(package: Path, work: Path, model: str) -> Sample:
    from scaledl.export.runtime import create_session
    from scaledl.package import open_package
    from scaledl.serve.grpc.protos import grpc_predict_v2_pb2 as pb
    from serve_load import grpc_frame

    pkg = open_package(package)
    shape = pkg.manifest.signature.input.shape[1:]
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    reference = np.asarray(create_session(pkg.onnx_path, threads=1).run(None, {"input": x})[0])
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32"}
    v2 = {"inputs": [{**tensor, "data": x.ravel().tolist()}]}
    head = {"inputs": [{**tensor, "parameters": {"binary_data_size": x.nbytes}}]}
    head_bytes = json.dumps({**head, "parameters": {"binary_data_output": True}}).encode()
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(**tensor)
    request.raw_input_contents.append(x.tobytes())
    json_type = {"Content-Type": "application/json"}
    bodies = {
        "json": (json.dumps(v2).encode(), json_type),
        "binary": (
            head_bytes + x.tobytes(),
            {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(head_bytes)),
            },
        ),
        "plain": (json.dumps({"data": x.ravel().tolist()}).encode(), json_type),
        "grpc": (grpc_frame(request.SerializeToString()), {}),
    }
    files = {}
    for kind, (body, headers) in bodies.items():
        path = work / f"{model}-{kind}.body"
        path.write_bytes(body)
        files[kind] = (path, headers)
    return Sample(package, files, reference)


def check(target: Target, sample: Sample, auth: dict[str, str]) -> int | None:
    """Send the sample once; raise CheckFailed unless the answer matches. gRPC: answer bytes."""
    path, headers = sample.files[target.body]
    body = path.read_bytes()
    headers = {**headers, **(auth if target.auth else {})}
    if target.protocol == "grpc":
        answer, size = _grpc_call(target.address, body[5:], headers)
    else:
        answer = _http_call(target.address, body, headers, target.body)
        size = None
    got = np.asarray(answer, dtype=np.float32).reshape(sample.reference.shape)
    if not np.allclose(got, sample.reference, atol=TOLERANCE):
        worst = float(np.max(np.abs(got - sample.reference)))
        raise CheckFailed(f"answer differs from ONNX Runtime in-process by {worst:.3g}")
    return size


def _http_call(url: str, body: bytes, headers: dict[str, str], kind: str) -> Any:
    import httpx

    response = httpx.post(url, content=body, headers=headers, timeout=30)
    if response.status_code != 200:
        raise CheckFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    if kind == "plain":
        return response.json()["output"]
    length = response.headers.get("inference-header-content-length")
    if length is None:
        return response.json()["outputs"][0]["data"]
    doc = json.loads(response.content[: int(length)])
    size = doc["outputs"][0]["parameters"]["binary_data_size"]
    raw = response.content[int(length) : int(length) + size]
    return np.frombuffer(raw, dtype=np.float32)


def _grpc_call(target: str, message: bytes, headers: dict[str, str]) -> tuple[Any, int]:
    import grpc

    from scaledl.serve.grpc.protos import grpc_predict_v2_pb2 as pb

    metadata = [(k.lower(), v) for k, v in headers.items()]
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(INFER_METHOD)  # bytes in, bytes out
        try:
            raw = call(message, metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            raise CheckFailed(f"gRPC {exc.code()}: {exc.details()}") from None
    response = pb.ModelInferResponse.FromString(raw)
    if response.raw_output_contents:
        answer: Any = np.frombuffer(response.raw_output_contents[0], dtype=np.float32)
    else:
        answer = list(response.outputs[0].contents.fp32_contents)
    return answer, len(raw) + 5
