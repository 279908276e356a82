"""Test helpers: real server subprocesses, model repositories, small real ONNX packages."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.conftest import REPO
from tests.waiting import wait_until

INFER_PATH = "/v2/models/{}/infer"


class ServerProcess:
    """`python -m scaledl serve …` on 127.0.0.1 with a free port; logs kept for assertions."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, max_open_files: int = 0
    ) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}

        def limit_files() -> None:  # runs in the child: a small descriptor budget
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scaledl", "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
            cwd=REPO,
            preexec_fn=limit_files if max_open_files else None,
        )
        self.lines: list[str] = []
        self.url = ""
        self._found = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if not self.url and '"url"' in line:
                try:
                    self.url = json.loads(line)["url"]
                    self._found.set()
                except ValueError:
                    pass
        self._found.set()

    def wait_ready(self, timeout: float = 90.0, verify: Any = True) -> ServerProcess:
        if not self._found.wait(timeout) or not self.url:
            raise RuntimeError("server did not start:\n" + self.log_text())
        url = self.url

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + self.log_text())
            try:
                return httpx.get(url + "/v2/health/ready", verify=verify).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(ready, timeout=timeout, interval=0.1, what="the server to be ready")
        except AssertionError:
            raise RuntimeError("server never became ready:\n" + self.log_text()) from None
        return self

    @property
    def grpc_target(self) -> str:
        """HOST:PORT of the gRPC listener (`--grpc-port`), from its start-up log line."""
        return str(self.wait_log(lambda line: "grpc_url" in line, timeout=30)["grpc_url"])

    def log_text(self) -> str:
        return "\n".join(self.lines)

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_log(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        """The first JSON log line matching `predicate`, waiting for it to be printed."""
        try:
            return wait_until(
                lambda: next((line for line in self.logs() if predicate(line)), {}),
                timeout=timeout,
                what="a matching log line",
            )
        except AssertionError:
            raise AssertionError("no matching log line in:\n" + self.log_text()) from None

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._reader.join(5)


def copy_package(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest)
    return dest


def corrupt_package(path: Path) -> Path:
    """Flip bytes in model.onnx so its checksum no longer matches the manifest."""
    target = path / "model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return path


def negated_package(src: Path, dest: Path) -> Path:
    """A real, different model with the same signature: the source graph's outputs × -1."""
    import onnx
    from onnx import helper

    from scaledl.package import open_package, write_package

    pkg = open_package(src)
    model = onnx.load(str(pkg.onnx_path))
    graph = model.graph
    out = graph.output[0]
    raw = out.name + "_raw"
    for node in graph.node:
        node.output[:] = [raw if name == out.name else name for name in node.output]
    graph.node.append(helper.make_node("Neg", [raw], [out.name]))
    files: dict[str, bytes | Path] = {rel: pkg.path / rel for rel in pkg.manifest.files}
    files["model.onnx"] = model.SerializeToString()
    return write_package(dest, pkg.manifest, files, key=b"")


def types_package(dest: Path) -> Path:
    """A tiny real ONNX model taking one tensor of many V2 datatypes and echoing them."""
    import onnx
    from onnx import TensorProto, helper

    from scaledl.package import write_package

    kinds = [
        ("f32", TensorProto.FLOAT, "FP32"),
        ("f16", TensorProto.FLOAT16, "FP16"),
        ("f64", TensorProto.DOUBLE, "FP64"),
        ("i64", TensorProto.INT64, "INT64"),
        ("i8", TensorProto.INT8, "INT8"),
        ("u8", TensorProto.UINT8, "UINT8"),
        ("flag", TensorProto.BOOL, "BOOL"),
        ("text", TensorProto.STRING, "BYTES"),
    ]
    inputs, outputs, nodes, sig_in, sig_out = [], [], [], [], []
    for name, elem, v2 in kinds:
        inputs.append(helper.make_tensor_value_info(name, elem, ["batch", 2]))
        outputs.append(helper.make_tensor_value_info(name + "_out", elem, ["batch", 2]))
        op = "Not" if elem == TensorProto.BOOL else "Identity"
        nodes.append(helper.make_node(op, [name], [name + "_out"]))
        sig_in.append({"name": name, "datatype": v2, "shape": [-1, 2]})
        sig_out.append({"name": name + "_out", "datatype": v2, "shape": [-1, 2]})
    graph = helper.make_graph(nodes, "types", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    manifest = {
        "name": "types",
        "version": "1",
        "task": "regression",
        "family": "custom",
        "signature": {"inputs": sig_in, "outputs": sig_out},
    }
    return write_package(dest, manifest, {"model.onnx": model.SerializeToString()}, key=b"")


def types_inputs(batch: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    words = np.array([b"alpha", "βeta".encode(), b"", b"x" * 40, b"q", b"zz"] * batch, dtype=object)
    return {
        "f32": rng.normal(size=(batch, 2)).astype(np.float32),
        "f16": rng.normal(size=(batch, 2)).astype(np.float16),
        "f64": rng.normal(size=(batch, 2)),
        "i64": rng.integers(-(2**40), 2**40, size=(batch, 2)),
        "i8": rng.integers(-128, 127, size=(batch, 2)).astype(np.int8),
        "u8": rng.integers(0, 255, size=(batch, 2)).astype(np.uint8),
        "flag": rng.integers(0, 2, size=(batch, 2)).astype(bool),
        "text": words[: batch * 2].reshape(batch, 2),
    }


def binary_request(
    inputs: dict[str, np.ndarray],
    datatypes: dict[str, str],
    binary_output: bool = True,
    **extra: Any,
) -> tuple[bytes, dict[str, str]]:
    """A V2 request body with every input as binary tensor data, and its headers."""
    described, blobs = [], []
    for name, array in inputs.items():
        if datatypes[name] == "BYTES":
            blob = b"".join(len(v).to_bytes(4, "little") + v for v in array.reshape(-1))
        else:
            blob = np.ascontiguousarray(array).tobytes()
        described.append(
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatypes[name],
                "parameters": {"binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    doc: dict[str, Any] = {"inputs": described, **extra}
    if binary_output:
        doc.setdefault("parameters", {})["binary_data_output"] = True
    head = json.dumps(doc).encode()
    headers = {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream",
    }
    return head + b"".join(blobs), headers


def parse_binary_response(response: httpx.Response) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from scaledl.serve.codec import DTYPES

    body = response.content
    size = int(response.headers["inference-header-content-length"])
    doc = json.loads(body[:size])
    arrays, offset = {}, size
    for out in doc["outputs"]:
        n = out["parameters"]["binary_data_size"]
        chunk = body[offset : offset + n]
        offset += n
        if out["datatype"] == "BYTES":
            items, pos = [], 0
            while pos < len(chunk):
                length = int.from_bytes(chunk[pos : pos + 4], "little")
                items.append(chunk[pos + 4 : pos + 4 + length])
                pos += 4 + length
            arrays[out["name"]] = np.array(items, dtype=object).reshape(out["shape"])
        else:
            dtype = DTYPES[out["datatype"]]
            arrays[out["name"]] = np.frombuffer(chunk, dtype=dtype).reshape(out["shape"])
    return doc, arrays
