"""Fuzzing against a real server: every operation of its own OpenAPI document (schemathesis,
valid and invalid data), and structure-aware V2 inference requests (hypothesis).

The property is the same everywhere: an answer always comes (no dropped connection), never a
5xx, and a 4xx carries `{"error": …}`. Example counts are bounded so the module takes well
under a minute on two cores.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck, Unsatisfiable
from schemathesis import GenerationMode

from tests.serve.helpers import ServerProcess, copy_package, types_package

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FUZZ = settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples on every run: a failure reproduces
    database=None,
)


@pytest.fixture(scope="module")
def fuzz_server(
    digits_package: Path, api_keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    repo = tmp_path_factory.mktemp("fuzz-repo")
    copy_package(digits_package, repo / "digits" / "1")
    types_package(repo / "types" / "1")
    proc = ServerProcess([str(repo), "--api-keys", api_keys["file"], "--monitor"])
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def admin_headers(api_keys: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_keys['admin']}"}


def test_every_documented_operation_survives_fuzzing(
    fuzz_server: ServerProcess, api_keys: dict[str, str]
) -> None:
    headers = admin_headers(api_keys)
    schema = schemathesis.openapi.from_url(
        fuzz_server.url + "/v2/openapi.json", headers=headers, timeout=30
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    calls = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(FUZZ, max_examples=10)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                nonlocal calls
                calls += 1
                response = case.call(headers=headers, timeout=30)
                assert response.status_code < 500, (case.formatted_path, response.text[:200])
                kind = response.headers.get("content-type", "")
                if response.status_code >= 400 and "json" in kind:
                    assert "error" in response.json()

            try:
                call()
            except (Unsatisfiable, FailedHealthCheck):
                continue  # nothing to negate in this operation
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    assert calls > 200
    assert not failures, "\n".join(failures)


# ---- structure-aware V2 requests ------------------------------------------------------

DATATYPES = ["FP32", "FP16", "FP64", "INT64", "INT8", "UINT8", "BOOL", "BYTES"]
NAMES = ["input", "f32", "f16", "f64", "i64", "i8", "u8", "flag", "text"]
dims = st.one_of(
    st.integers(0, 4),
    st.sampled_from([8, 2, 1, 64, 2**31, 2**62, 2**63 - 1, -1, -(2**63)]),
    st.integers(-(2**70), 2**70),
)
shapes = st.one_of(
    st.just([1, 1, 8, 8]),
    st.just([2, 2]),
    st.lists(dims, max_size=6),
    st.lists(st.just(1), min_size=17, max_size=70),
)
scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=8),
    st.none(),
)
data = st.recursive(st.lists(scalars, max_size=70), lambda inner: st.lists(inner, max_size=4))
ids = st.one_of(st.none(), st.text(max_size=20), st.integers(), st.just("a\r\nb"))


TEXT_IDS = st.text(max_size=12) | st.sampled_from(["a\r\nb", "n\x00l", "é-1", "请求", "\t", "%41"])


def valid_inputs(model: str, n: int) -> list[dict[str, Any]]:
    """A correct request body's inputs for one of the fuzzed models (`n` samples)."""
    if model == "digits":
        return [
            {"name": "input", "shape": [n, 1, 8, 8], "datatype": "FP32", "data": [0.5] * (n * 64)}
        ]
    values = {"BOOL": True, "BYTES": "x", "FP32": 1.5, "FP16": 1.5, "FP64": 1.5}
    return [
        {"name": name, "shape": [n, 2], "datatype": dt, "data": [values.get(dt, 1)] * (2 * n)}
        for name, dt in zip(
            NAMES[1:], ["FP32", "FP16", "FP64", "INT64", "INT8", "UINT8", "BOOL", "BYTES"]
        )
    ]


def mutate(draw: Any, doc: dict[str, Any], kind: str) -> None:
    """One change to a valid request: the kinds of mistakes (and attacks) clients make."""
    item = draw(st.sampled_from(doc["inputs"])) if doc["inputs"] else {}
    if kind == "id":
        doc["id"] = draw(TEXT_IDS | st.integers() | st.none())
    elif kind == "shape":
        item["shape"] = draw(shapes)
        if draw(st.booleans()):
            item["data"] = []
    elif kind == "datatype":
        item["datatype"] = draw(st.sampled_from(DATATYPES) | st.text(max_size=6))
    elif kind == "data":
        item["data"] = draw(data | scalars)
    elif kind == "name":
        item["name"] = draw(st.sampled_from(NAMES) | st.text(max_size=5))
    elif kind == "binary":
        item.pop("data", None)
        item["parameters"] = {"binary_data_size": draw(dims)}
    elif kind == "drop":
        key = draw(st.sampled_from(["name", "shape", "datatype", "data"]))
        item.pop(key, None)
    elif kind == "parameters":
        doc["parameters"] = {
            "binary_data_output": draw(st.booleans() | st.integers()),
            "timeout": draw(st.integers(-5, 2**64) | st.text(max_size=3)),
        }
    elif kind == "outputs":
        name = draw(st.sampled_from(["output", "f32_out", "nope"]) | st.text(max_size=4))
        doc["outputs"] = [{"name": name, "parameters": {"binary_data": draw(st.booleans())}}]
    elif kind == "inputs":
        doc["inputs"] = draw(st.lists(st.dictionaries(st.text(max_size=4), scalars), max_size=2))


MUTATIONS = [
    "id",
    "shape",
    "datatype",
    "data",
    "name",
    "binary",
    "drop",
    "parameters",
    "outputs",
    "inputs",
]


@st.composite
def infer_requests(draw: Any) -> tuple[str, bytes, dict[str, str]]:
    model = draw(st.sampled_from(["digits", "types"]))
    doc: dict[str, Any] = {"inputs": valid_inputs(model, draw(st.integers(1, 3)))}
    for kind in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        mutate(draw, doc, kind)
    head = json.dumps(doc).encode()
    headers = {"Content-Type": "application/json"}
    body = head
    if draw(st.integers(0, 3)) == 0:  # binary tensor data after the JSON
        body = head + draw(st.binary(max_size=600))
        declared = draw(
            st.sampled_from([len(head), 0, len(body) + 5, -1])
            | st.from_regex(r"[-+0-9a-z.]{1,6}", fullmatch=True)
        )
        headers["Inference-Header-Content-Length"] = str(declared)
    if draw(st.integers(0, 9)) == 0:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    version = draw(st.sampled_from(["", "/versions/1", "/versions/zz"]))
    return f"/v2/models/{model}{version}/infer", body, headers


@pytest.fixture(scope="module")
def infer_client(fuzz_server: ServerProcess, api_keys: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_keys['infer']}"}
    with httpx.Client(base_url=fuzz_server.url, headers=headers, timeout=30) as client:
        yield client


@settings(FUZZ, max_examples=400)
@given(request=infer_requests())
def test_v2_requests_get_answers_never_5xx(
    infer_client: httpx.Client, request: tuple[str, bytes, dict[str, str]]
) -> None:
    path, body, headers = request
    response = infer_client.post(path, content=body, headers=headers)
    assert response.status_code < 500, (path, body[:200], response.text[:300])
    if response.status_code >= 400:
        message = response.json()["error"]
        assert message and "Traceback" not in message
    else:
        doc = json.loads(
            response.content[
                : int(
                    response.headers.get("inference-header-content-length", len(response.content))
                )
            ]
        )
        assert all(math.prod(o["shape"]) >= 0 for o in doc["outputs"])
