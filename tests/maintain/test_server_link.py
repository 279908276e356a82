"""The failure count a promotion rests on is read from a real HTTP endpoint, or not at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scaledl.maintain.server import ServerLink

GOOD = (
    "# HELP scaledl_request_failures_total Requests answered with an error.\n"
    "# TYPE scaledl_request_failures_total counter\n"
    'scaledl_request_failures_total{model="m",version="2",status="500"} 2.0\n'
    'scaledl_request_failures_total{model="m",version="2",status="400"} 1.0\n'
    'scaledl_request_failures_total{model="m",version="1",status="500"} 7.0\n'
)


class _Metrics(BaseHTTPRequestHandler):
    answer: tuple[int, str] = (200, GOOD)

    def do_GET(self) -> None:
        status, body = self.server.answer  # type: ignore[attr-defined]
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def metrics_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    server.answer = (200, GOOD)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _link(server: ThreadingHTTPServer) -> ServerLink:
    return ServerLink(f"http://127.0.0.1:{server.server_address[1]}", None)


def test_failures_are_summed_for_the_version_asked_for(metrics_server) -> None:
    link = _link(metrics_server)
    try:
        assert link.failures("m", "2").count == 3
        assert link.failures("m", "1").count == 7
        assert link.failures("m", "9").count == 0  # counter present, nothing failed
    finally:
        link.close()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ((500, '{"error": "boom"}'), "HTTP 500"),
        ((200, "<html><body>a proxy's login page</body></html>\n"), "not Prometheus text"),
        ((200, "# TYPE other_total counter\nother_total 1.0\n"), "no scaledl_request_failures"),
    ],
)
def test_an_unreadable_count_is_none_with_the_reason(metrics_server, answer, why) -> None:
    metrics_server.answer = answer
    link = _link(metrics_server)
    try:
        counted = link.failures("m", "2")
    finally:
        link.close()
    assert counted.count is None and why in counted.how


def test_an_unreachable_server_gives_no_count() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Metrics) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    link = ServerLink(f"http://127.0.0.1:{port}", None)
    try:
        counted = link.failures("m", "2")
    finally:
        link.close()
    assert counted.count is None and "/metrics failed" in counted.how


@pytest.mark.e2e
def test_labelled_rows_reach_a_server_whose_json_limit_one_batch_would_pass(
    repo, keys, tmp_path
) -> None:
    """A batch of 64 CIFAR-size rows is ~4 MB as a JSON list but 0.8 MB as a binary tensor; here
    the same holds for digits against a 16-KiB JSON limit: every row must still be answered."""
    from scaledl.package import open_package
    from tests.maintain.conftest import digits_rows
    from tests.serve.helpers import ServerProcess

    proc = ServerProcess([str(repo), "--api-keys", keys["file"], "--max-json-mb", "0.015625"])
    try:
        proc.wait_ready()
        link = ServerLink(proc.url, keys["admin"])
        x, y = digits_rows(128, seed=5)
        x = x[:, None]  # (N, 1, 8, 8): the raw image form the package was trained on
        pkg = open_package(repo / "digits" / "1")
        name = pkg.manifest.signature.input.name
        served = link.accuracy("digits", "1", x, y, pkg.preprocessing, 64, name)
        assert served.failures == 0 and served.answered == 128, proc.log_text()[-2000:]
        assert served.accuracy > 0.8
        assert link.failures("digits", "1").count == 0
    finally:
        proc.stop()
