"""The Open Inference Protocol over gRPC, driven by an unmodified `tritonclient.grpc` client
(and scaledl's own generated stub where the test needs messages tritonclient does not send).

Runs against the shared real server process (`--grpc-port 0`), the same one the HTTP tests
use: the same keys, models, limits, routing, metrics and extension records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from scaledl.package import open_package
from scaledl.serve.grpc.protos import grpc_predict_v2_pb2 as pb
from scaledl.serve.grpc.protos import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.serve.helpers import ServerProcess, types_inputs

pytestmark = pytest.mark.e2e
X = np.random.default_rng(3).normal(size=(3, 1, 8, 8)).astype(np.float32)
GZIP = grpc.Compression.Gzip


@pytest.fixture()
def triton(server: ServerProcess) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(server.grpc_target)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture()
def infer_key(api_keys: dict[str, str]) -> dict[str, str]:
    return {"authorization": f"Bearer {api_keys['infer']}"}


def reference(serve_repo: Path, model: str, version: str, x: np.ndarray) -> np.ndarray:
    from scaledl.export.runtime import create_session

    session = create_session(open_package(serve_repo / model / version).onnx_path, threads=1)
    return np.asarray(session.run(None, {"input": x})[0])


def tensor(x: np.ndarray, name: str = "input", datatype: str = "FP32") -> grpcclient.InferInput:
    item = grpcclient.InferInput(name, list(x.shape), datatype)
    item.set_data_from_numpy(x)
    return item


def refused(call: object, code: grpc.StatusCode, *words: str) -> str:
    """Run `call`; it must fail with gRPC status `code` and a message holding `words`."""
    with pytest.raises(InferenceServerException) as caught:
        call()  # type: ignore[operator]
    assert caught.value.status() == str(code), caught.value
    message = str(caught.value.message())
    for word in words:
        assert word in message, message
    return message


def test_health_is_open_and_metadata_needs_a_key(
    triton: grpcclient.InferenceServerClient, infer_key: dict[str, str]
) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    refused(triton.get_server_metadata, grpc.StatusCode.UNAUTHENTICATED, "API key is required")
    meta = triton.get_server_metadata(headers=infer_key)
    assert meta.name == "scaledl"
    assert {"binary_tensor_data", "model_repository", "recorder"} <= set(meta.extensions)


def test_model_metadata_ready_and_config(
    triton: grpcclient.InferenceServerClient, infer_key: dict[str, str]
) -> None:
    meta = triton.get_model_metadata("digits", headers=infer_key, as_json=True)
    assert meta["name"] == "digits" and meta["versions"] == ["2"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "1", "8", "8"]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": ["-1", "10"]}]
    assert triton.is_model_ready("digits", headers=infer_key)
    assert triton.is_model_ready("digits", "2", headers=infer_key)
    config = triton.get_model_config("digits", headers=infer_key, as_json=True)["config"]
    assert config["max_batch_size"] >= 1 and config["backend"] == "onnxruntime"
    assert config["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": ["1", "8", "8"]}]
    assert config["instance_group"][0]["kind"] == "KIND_CPU"
    for call in (triton.get_model_metadata, triton.is_model_ready, triton.get_model_config):
        refused(lambda c=call: c("nope", headers=infer_key), grpc.StatusCode.NOT_FOUND, "'nope'")
        refused(
            lambda c=call: c("digits", "1", headers=infer_key),
            grpc.StatusCode.NOT_FOUND,
            "no loaded version '1'",
        )


def test_infer_matches_onnx_runtime_and_echoes_the_id(
    triton: grpcclient.InferenceServerClient, infer_key: dict[str, str], serve_repo: Path
) -> None:
    result = triton.infer("digits", [tensor(X)], headers=infer_key, request_id="grpc-7")
    response = result.get_response()
    assert response.model_name == "digits" and response.model_version == "2"
    assert response.id == "grpc-7"
    out = result.as_numpy("output")
    assert out.dtype == np.float32 and out.shape == (3, 10)
    np.testing.assert_allclose(out, reference(serve_repo, "digits", "2", X), atol=1e-5)
    versioned = triton.infer("digits", [tensor(X[:1])], model_version="2", headers=infer_key)
    assert len(versioned.get_response().id) >= 16  # none sent: a fresh unique id
    requested = [grpcclient.InferRequestedOutput("output")]
    assert triton.infer("digits", [tensor(X)], outputs=requested, headers=infer_key)
    wrong = [grpcclient.InferRequestedOutput("logits")]
    refused(
        lambda: triton.infer("digits", [tensor(X)], outputs=wrong, headers=infer_key),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown output 'logits'",
    )


def test_typed_contents_are_answered_typed(
    server: ServerProcess, infer_key: dict[str, str], serve_repo: Path
) -> None:
    """scaledl's own committed stub, with `contents.fp32_contents` instead of raw bytes."""
    request = pb.ModelInferRequest(model_name="digits", id="typed-1")
    item = request.inputs.add(name="input", datatype="FP32", shape=list(X.shape))
    item.contents.fp32_contents.extend(X.reshape(-1).tolist())
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        response = stub.ModelInfer(request, metadata=list(infer_key.items()), timeout=30)
        assert not response.raw_output_contents and response.id == "typed-1"
        out = np.asarray(response.outputs[0].contents.fp32_contents, np.float32).reshape(3, 10)
        np.testing.assert_allclose(out, reference(serve_repo, "digits", "2", X), atol=1e-5)
        item.ClearField("contents")
        item.contents.int_contents.extend([1] * X.size)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, metadata=list(infer_key.items()), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "FP32 data go in contents.fp32_contents" in str(caught.value.details())


def test_hostile_messages_are_client_errors(
    server: ServerProcess, infer_key: dict[str, str]
) -> None:
    """Not protobuf, or a compressed message that inflates past --max-body-mb: named, 4xx-like."""
    metadata = list(infer_key.items())
    big = pb.ModelInferRequest(model_name="digits")
    big.inputs.add(name="input", datatype="FP32", shape=[70_000, 1, 8, 8])
    big.raw_input_contents.append(bytes(70_000 * 256))  # 17.9 MB of zeros: tiny once gzipped
    with grpc.insecure_channel(server.grpc_target) as channel:
        raw = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        for garbage in (b"\xff\xff\xff", b"\x1a\x02\xff\xfe"):  # not protobuf; bad UTF-8 id
            with pytest.raises(grpc.RpcError) as caught:
                raw(garbage, metadata=metadata, timeout=30)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "not a valid inference.ModelInferRequest" in str(caught.value.details())
        with pytest.raises(grpc.RpcError) as caught:
            raw(big.SerializeToString(), metadata=metadata, timeout=60, compression=GZIP)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in str(caught.value.details())
    assert server.proc.poll() is None


def test_every_datatype_round_trips(
    triton: grpcclient.InferenceServerClient, infer_key: dict[str, str]
) -> None:
    inputs = types_inputs(3)
    v2 = {"f32": "FP32", "f16": "FP16", "f64": "FP64", "i64": "INT64", "i8": "INT8"}
    v2 |= {"u8": "UINT8", "flag": "BOOL", "text": "BYTES"}
    result = triton.infer(
        "types", [tensor(x, name, v2[name]) for name, x in inputs.items()], headers=infer_key
    )
    for name, x in inputs.items():
        got = result.as_numpy(name + "_out")
        expected = ~x if name == "flag" else x
        assert got.shape == x.shape and np.array_equal(got, expected), name


def test_bad_inputs_get_invalid_argument_naming_the_input(
    triton: grpcclient.InferenceServerClient, infer_key: dict[str, str]
) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT

    def infer(*inputs: grpcclient.InferInput) -> object:
        return lambda: triton.infer("digits", list(inputs), headers=infer_key)

    refused(infer(tensor(np.zeros((1, 1, 8, 7), np.float32))), invalid, "shape [1, 1, 8, 7]")
    refused(infer(tensor(np.zeros((1, 1, 8, 8)), datatype="FP64")), invalid, "datatype FP64")
    nan = np.full((1, 1, 8, 8), np.nan, np.float32)
    refused(infer(tensor(nan)), invalid, "'input'", "NaN or Inf")
    refused(infer(tensor(np.zeros((1, 64), np.float32), "pixels")), invalid, "unknown input")
    refused(infer(tensor(np.zeros((0, 1, 8, 8), np.float32))), invalid, "batch size 0")


def test_unknown_models_and_versions_are_not_found(
    triton: grpcclient.InferenceServerClient, infer_key: dict[str, str]
) -> None:
    not_found = grpc.StatusCode.NOT_FOUND
    refused(lambda: triton.infer("nope", [tensor(X)], headers=infer_key), not_found, "'nope'")
    for version in ("1", "3", "99"):  # 1: not served (latest is 2); 3: corrupt; 99: none
        refused(
            lambda v=version: triton.infer(
                "digits", [tensor(X)], model_version=v, headers=infer_key
            ),
            not_found,
            f"no loaded version '{version}'",
        )
    refused(lambda: triton.infer("broken", [tensor(X)], headers=infer_key), not_found, "broken")


def test_keys_and_scopes(
    triton: grpcclient.InferenceServerClient, api_keys: dict[str, str], infer_key: dict[str, str]
) -> None:
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED
    refused(lambda: triton.infer("digits", [tensor(X)]), unauthenticated, "API key is required")
    bad = {"x-api-key": api_keys["infer"][:-2] + "xx"}
    refused(lambda: triton.infer("digits", [tensor(X)], headers=bad), unauthenticated, "not valid")
    as_x_api_key = {"x-api-key": api_keys["infer"]}
    assert triton.infer("digits", [tensor(X)], headers=as_x_api_key).as_numpy("output") is not None
    refused(
        lambda: triton.get_model_repository_index(headers=infer_key),
        grpc.StatusCode.PERMISSION_DENIED,
        "needs 'admin'",
    )
    admin = {"authorization": f"Bearer {api_keys['admin']}"}
    index = triton.get_model_repository_index(headers=admin, as_json=True)["models"]
    rows = {(m["name"], m["version"]): m for m in index}
    assert rows[("digits", "2")]["state"] == "READY"
    assert rows[("digits", "3")]["state"] == "UNAVAILABLE" and rows[("digits", "3")]["reason"]
    assert admin and triton.infer("digits", [tensor(X)], headers=admin)  # admin includes infer


def test_message_size_limit_is_resource_exhausted(
    triton: grpcclient.InferenceServerClient, infer_key: dict[str, str]
) -> None:
    big = np.zeros((70_000, 1, 8, 8), np.float32)  # 17.9 MB > --max-body-mb 16
    refused(
        lambda: triton.infer("digits", [tensor(big)], headers=infer_key),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "larger than max",
    )


def test_queue_limits_and_timeouts(
    server: ServerProcess, triton: grpcclient.InferenceServerClient, infer_key: dict[str, str]
) -> None:
    """`limits`: one pending request at most, a 0.3 s timeout under a 1 s batching delay."""

    def one() -> str:
        try:
            triton.infer("limits", [tensor(X[:1])], headers=infer_key)
        except InferenceServerException as exc:
            return f"{exc.status()} {exc.message()}"
        return "OK"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(one)
        time.sleep(0.1)
        second = pool.submit(one)
        answers = [first.result(), second.result()]
    assert answers[0].startswith("StatusCode.DEADLINE_EXCEEDED") and "0.3 s" in answers[0]
    assert answers[1].startswith("StatusCode.RESOURCE_EXHAUSTED") and "pending" in answers[1]


def test_a_cancelled_call_frees_its_queue_slot(
    server: ServerProcess, infer_key: dict[str, str]
) -> None:
    """A client that gives up must not hold `limits`' only queue slot (max_queue 1)."""
    import tritonclient.grpc.aio as aioclient

    async def scenario() -> str:
        client = aioclient.InferenceServerClient(server.grpc_target)
        try:
            call = asyncio.ensure_future(client.infer("limits", [tensor(X[:1])], headers=infer_key))
            await asyncio.sleep(0.1)
            call.cancel()
            await asyncio.sleep(0.5)  # past the 0.3 s timeout the cancelled call would have had
            try:
                await client.infer("limits", [tensor(X[:1])], headers=infer_key)
            except InferenceServerException as exc:
                return str(exc.status())
            return "OK"
        finally:
            await client.close()

    # queued (answered, or timed out under the 1 s batching delay), not refused as a full queue
    assert asyncio.run(scenario()) in ("OK", "StatusCode.DEADLINE_EXCEEDED")
    server.wait_log(lambda line: line.get("status") == "CANCELLED")  # the server saw it go


def test_versions_canary_and_shadow_route_grpc_too(
    server: ServerProcess,
    triton: grpcclient.InferenceServerClient,
    infer_key: dict[str, str],
    api_keys: dict[str, str],
) -> None:
    x = X[:1]
    with httpx.Client(
        base_url=server.url, headers={"X-API-Key": api_keys["admin"]}, timeout=60
    ) as admin:
        primary = triton.infer("rollout", [tensor(x)], headers=infer_key)
        assert primary.get_response().model_version == "1"
        try:
            canary = admin.post(
                "/v2/admin/models/rollout/canary", json={"version": "3", "weight": 1}
            )
            assert canary.status_code == 200, canary.text
            negated = triton.infer("rollout", [tensor(x)], headers=infer_key)
            assert negated.get_response().model_version == "3"  # version 3 answers -output
            np.testing.assert_allclose(negated.as_numpy("output"), -primary.as_numpy("output"))
            pinned = triton.infer("rollout", [tensor(x)], model_version="1", headers=infer_key)
            assert np.array_equal(pinned.as_numpy("output"), primary.as_numpy("output"))
            assert admin.post("/v2/admin/models/rollout/rollback").status_code == 200
            shadow = admin.post("/v2/admin/models/rollout/shadow", json={"version": "3"})
            assert shadow.status_code == 200, shadow.text
            ids = [f"grpc-sh-{i}" for i in range(5)]
            for request_id in ids:
                answer = triton.infer(
                    "rollout", [tensor(x)], headers=infer_key, request_id=request_id
                )
                assert answer.get_response().model_version == "1"  # the shadow is never returned
            seen: set[str] = set()
            deadline = time.monotonic() + 10
            while not set(ids) <= seen and time.monotonic() < deadline:
                records = admin.get("/v2/recorder").json()["records"]
                seen = {r["request_id"] for r in records if r["version"] == "3"}
                time.sleep(0.05)
            assert set(ids) <= seen  # the shadow's extension records carry the gRPC ids
        finally:
            admin.post("/v2/admin/models/rollout/rollback")
            admin.delete("/v2/admin/models/rollout/shadow")


def test_metrics_count_grpc_calls_and_records_reach_extensions(
    server: ServerProcess,
    triton: grpcclient.InferenceServerClient,
    infer_key: dict[str, str],
    api_keys: dict[str, str],
) -> None:
    triton.infer("digits", [tensor(X)], headers=infer_key, request_id="grpc-metrics")
    with pytest.raises(InferenceServerException):
        triton.infer("digits", [tensor(np.zeros((1, 2), np.float32))], headers=infer_key)
    made_up = "v" * 100_000  # a client's version name: neither a metric label nor a 100 kB status
    message = refused(
        lambda: triton.infer("digits", [tensor(X)], model_version=made_up, headers=infer_key),
        grpc.StatusCode.NOT_FOUND,
        "no loaded version",
    )
    assert len(message) <= 1001
    with httpx.Client(base_url=server.url, timeout=30) as http:
        text = http.get("/metrics", headers={"X-API-Key": api_keys["infer"]}).text
        done = 'scaledl_requests_total{endpoint="grpc_infer",model="digits",version="2"}'
        failed = (
            'scaledl_request_failures_total{code="400",endpoint="grpc_infer",model="digits",'
            'version=""}'
        )
        assert done in text and failed in text
        assert 'code="404",endpoint="grpc_infer",model="digits",version="_unknown"' in text
        assert "vvvvvvvv" not in text
        mine: list[dict[str, object]] = []
        deadline = time.monotonic() + 10  # records reach extensions on a background thread
        while not mine and time.monotonic() < deadline:
            records = http.get("/v2/recorder", headers={"X-API-Key": api_keys["admin"]}).json()
            mine = [r for r in records["records"] if r["request_id"] == "grpc-metrics"]
            time.sleep(0.05)
    assert mine and mine[0]["model"] == "digits" and mine[0]["input_shape"] == [3, 1, 8, 8]
