"""Event-loop probe: a separate process sending health checks to a server, one at a time.

    python -m tests.serve.loop_probe URL SERVER_PID   # stop it with SIGTERM; prints JSON

Each health check's latency is corrected for what the *machine* did: the longest time any
server thread, and this probe, spent runnable but waiting for a CPU (`run_delay` in
/proc/…/schedstat) during the check is subtracted — the event-loop thread waiting for a core,
or a thread holding the GIL being preempted by other processes. What is left is time the loop
could have run but did not because the server was busy with something else: a request
computing on the loop, or another of its threads holding the GIL. That is what "the loop was
blocked" means here, and it stays meaningful on a loaded 2-core machine, where raw latencies
are not. It runs in its own process so that the test's own threads cannot delay it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from urllib.parse import urlsplit

REQUEST = b"GET /v2/health/live HTTP/1.1\r\nHost: probe\r\n\r\n"


def run_delay(pid: int, tid: int) -> float:
    """Seconds thread `tid` of `pid` has spent runnable, waiting for a CPU."""
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def thread_delays(pid: int) -> dict[str, float]:
    """`run_delay` of every thread of `pid` (threads that end meanwhile are skipped)."""
    delays = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            delays[tid] = run_delay(pid, int(tid))
        except (OSError, ValueError, IndexError):
            continue
    return delays


def longest_wait(before: dict[str, float], after: dict[str, float]) -> float:
    return max((after[t] - before[t] for t in before.keys() & after.keys()), default=0.0)


def health_check(sock: socket.socket) -> None:
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the probe connection")
        data += chunk


def main(url: str, server_pid: int) -> None:
    stop = False

    def on_term(sig: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    parts = urlsplit(url)
    me = os.getpid()
    blocked: list[float] = []
    raw: list[float] = []
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    print("ready", flush=True)
    while not stop:
        server0, own0 = thread_delays(server_pid), run_delay(me, me)
        started = time.perf_counter()
        try:
            health_check(sock)
        except (OSError, ConnectionError):
            sock.close()  # an idle timeout: reconnect and go on
            sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
            continue
        latency = time.perf_counter() - started
        waited = longest_wait(server0, thread_delays(server_pid)) + run_delay(me, me) - own0
        raw.append(latency)
        blocked.append(max(0.0, latency - waited))
        time.sleep(0.002)
    sock.close()
    blocked.sort()
    result = {
        "checks": len(blocked),
        "max_blocked_s": blocked[-1] if blocked else None,
        "p99_blocked_s": blocked[int(0.99 * (len(blocked) - 1))] if blocked else None,
        "max_latency_s": max(raw) if raw else None,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
