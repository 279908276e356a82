"""A text package served: BYTES strings through an unmodified tritonclient, /predict, bad
inputs answered 4xx (the server unharmed), and the live monitor fed with the served texts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from scaledl.config.monitor import DriftConfig, MonitorConfig
from scaledl.evaluate import predict_raw
from scaledl.package import open_package
from tests.monitor.server import Running, monitored_server, wait_for

MODEL = "sst2-cnn"
TEXTS = ["a gripping , funny and moving film", "dull", "the acting is wooden but the music works"]


@pytest.fixture(scope="module")
def live(text_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    config = MonitorConfig(window=60, check_interval_s=3600, drift=DriftConfig(seed=0))
    with monitored_server(
        text_package, tmp_path_factory.mktemp("srv"), config, grpc=True
    ) as running:
        yield running


def test_unmodified_tritonclient_sends_bytes(live: Running, text_package: Path) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(live.url.removeprefix("http://"))
    meta = client.get_model_metadata(MODEL, headers=live.headers())
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    expected = predict_raw(open_package(text_package), np.array(TEXTS, dtype=object))
    for binary in (True, False):
        x = httpclient.InferInput("text", [len(TEXTS)], "BYTES")
        x.set_data_from_numpy(np.array(TEXTS, dtype=object), binary_data=binary)
        result = client.infer(MODEL, [x], headers=live.headers())  # it adds to the dict
        np.testing.assert_allclose(result.as_numpy("output"), expected, atol=1e-5)


def test_unmodified_grpc_client_sends_bytes(live: Running, text_package: Path) -> None:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    assert live.grpc_target is not None
    client = grpcclient.InferenceServerClient(live.grpc_target)
    key = {"authorization": live.headers()["Authorization"]}
    try:
        meta = client.get_model_metadata(MODEL, headers=key)
        assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
            ("text", "BYTES", [-1])
        ]
        expected = predict_raw(open_package(text_package), np.array(TEXTS, dtype=object))
        x = grpcclient.InferInput("text", [len(TEXTS)], "BYTES")
        x.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object))
        result = client.infer(MODEL, [x], headers=key)
        np.testing.assert_allclose(result.as_numpy("output"), expected, atol=1e-5)
        for bad, words in (([b"   "], "empty"), ([b"a" * 1_000_001], "max_chars")):
            x = grpcclient.InferInput("text", [1], "BYTES")
            x.set_data_from_numpy(np.array(bad, dtype=object))
            with pytest.raises(InferenceServerException) as caught:
                client.infer(MODEL, [x], headers=key)
            assert words in str(caught.value.message()), caught.value
    finally:
        client.close()


def test_predict_takes_json_instances_and_plain_text(live: Running) -> None:
    url = f"{live.url}/v2/models/{MODEL}/predict"
    body = httpx.post(url, json={"instances": TEXTS}, headers=live.headers()).json()
    assert len(body["predictions"]) == 3 and body["predictions"][0]["label"] in ("0", "1")
    headers = {**live.headers(), "Content-Type": "text/plain; charset=utf-8"}
    one = httpx.post(url, content=TEXTS[0].encode(), headers=headers).json()
    assert one["predictions"][0] == body["predictions"][0]


def test_bad_text_inputs_get_4xx_and_the_server_keeps_serving(live: Running) -> None:
    infer = f"{live.url}/v2/models/{MODEL}/infer"

    def send(
        data: list[object], datatype: str = "BYTES", shape: list[int] | None = None
    ) -> httpx.Response:
        tensor = {"name": "text", "datatype": datatype, "shape": shape or [len(data)], "data": data}
        return httpx.post(infer, json={"inputs": [tensor]}, headers=live.headers(), timeout=30)

    cases = [
        (send(["fine", " "]), 400, "text 1 is empty"),
        (send(["x" * (1 << 20)]), 413, "at most 65,536"),
        (send([1.5], "FP32"), 400, "expects BYTES"),
        (send([3], "BYTES"), 400, "strings"),
        (send(["a", "b"], shape=[2, 1]), 400, "shape [2, 1]"),
    ]
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": 7},
                }
            ]
        }
    ).encode()
    raw = head + (3).to_bytes(4, "little") + b"\xff\xfe\xfd"
    headers = {**live.headers(), "Inference-Header-Content-Length": str(len(head))}
    cases.append((httpx.post(infer, content=raw, headers=headers), 400, "not UTF-8"))
    predict = f"{live.url}/v2/models/{MODEL}/predict"
    cases.append(
        (
            httpx.post(predict, json={"instances": [["nested"]]}, headers=live.headers()),
            400,
            "instance 0",
        )
    )
    cases.append(
        (
            httpx.post(
                predict, content=b"\xff", headers={**live.headers(), "Content-Type": "text/plain"}
            ),
            400,
            "not UTF-8",
        )
    )
    plain = {**live.headers(), "Content-Type": "text/plain"}
    cases.append((httpx.post(predict, content=b"x" * (1 << 20), headers=plain), 413, "at most"))
    for response, status, words in cases:
        assert response.status_code == status, response.text
        assert words in response.json()["error"], response.text
    assert send(["still works"]).status_code == 200
    numbers = httpx.post(predict, json={"instances": ["12", "7"]}, headers=live.headers())
    assert numbers.status_code == 200, numbers.text  # texts of digits stay texts


def test_live_monitor_sees_served_texts_and_feedback(live: Running, sst2_small: Path) -> None:
    lines = (sst2_small.parent / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:61]
    labels = [int(line.split("\t")[0]) for line in lines]
    texts = [line.split("\t")[1] for line in lines]
    url = f"{live.url}/v2/models/{MODEL}/predict"
    for i in range(0, 60, 10):
        assert (
            httpx.post(
                url, json={"instances": texts[i : i + 10]}, headers=live.headers()
            ).status_code
            == 200
        )
    monitor = live.extension.monitor_for(MODEL, None)
    wait_for(lambda: len(monitor.window) >= 60)
    result = monitor.check(current=True)  # the background loop may have checked already
    assert result is not None and result.samples == 60
    names = {t.name for t in result.tests}
    assert {"ks_pca", "confidence", "classes"} <= names
    ks = result.test("ks_pca")
    assert ks.detail["worst_feature"] in live.extension.packages[(MODEL, "1")].raw[
        "preprocessing"
    ] or ks.detail["worst_feature"].startswith(("tokens", "unknown", "band", "repr"))
    feedback = f"{live.url}/v2/models/{MODEL}/feedback"
    response = httpx.post(
        feedback, json={"inputs": texts[:20], "labels": labels[:20]}, headers=live.headers()
    )
    assert response.status_code == 200, response.text
    assert response.json()["versions"][0]["labels"] == 20


def test_batches_are_cut_into_length_buckets_and_answers_keep_their_order(
    text_package: Path,
) -> None:
    from scaledl.export.runtime import create_session
    from scaledl.modalities.text.serving import TextServing, length_buckets

    assert [b.tolist() for b in length_buckets(np.array([5, 60, 6, 4, 7]))] == [[3, 0, 2, 4], [1]]
    assert len(length_buckets(np.array([5, 9, 12]))) == 1  # close lengths: one run
    pkg = open_package(text_package)
    session = create_session(pkg.onnx_path, threads=1)
    long_text = " ".join(["an endless , meandering but lovely film"] * 8)
    texts = np.array([TEXTS[1], long_text, TEXTS[0], "fine"], dtype=object)
    (served,) = TextServing(pkg.preprocessing).run(session, {"text": texts})  # type: ignore[arg-type]
    np.testing.assert_allclose(served, predict_raw(pkg, texts), atol=1e-5)
