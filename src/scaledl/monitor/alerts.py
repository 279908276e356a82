"""Alerts with hysteresis, delivered to the log, to metrics and to a webhook (JSON POST).

An alert fires after `fire_after` consecutive bad checks and resolves after `clear_after`
consecutive clean ones, where "clean" is stricter than "not bad" (drift: p ≥ clear_p rather
than p ≥ alpha; accuracy: ≥ threshold + margin). A condition hovering at the threshold
therefore fires once instead of flapping.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Alert:
    kind: str  # "drift" | "accuracy"
    status: str  # "firing" | "resolved"
    model: str
    version: str
    value: float | None
    threshold: float
    message: str
    at: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"source": "scaledl-monitor", **asdict(self)}


class Hysteresis:
    """Two-threshold state machine: returns "firing"/"resolved" on a change, else None."""

    def __init__(self, fire_after: int, clear_after: int) -> None:
        self.fire_after = fire_after
        self.clear_after = clear_after
        self.active = False
        self._bad = 0
        self._clean = 0

    def update(self, bad: bool, clean: bool) -> str | None:
        if not self.active:
            self._bad = self._bad + 1 if bad else 0
            if self._bad >= self.fire_after:
                self.active, self._bad, self._clean = True, 0, 0
                return "firing"
            return None
        self._clean = self._clean + 1 if clean else 0
        if self._clean >= self.clear_after:
            self.active, self._bad, self._clean = False, 0, 0
            return "resolved"
        return None


class WebhookSender:
    """POSTs alerts as JSON from one background thread (bounded queue, a few retries)."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        retries: int = 3,
        on_result: Callable[[bool], None] | None = None,
        capacity: int = 1000,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.on_result = on_result
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name="scaledl-alerts", daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            log.warning("alert queue full; dropping %s alert for %s", alert.kind, alert.model)
            if self.on_result:
                self.on_result(False)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                alert = self._queue.get()
                if alert is None:
                    return
                ok = self._post(client, alert)
                if self.on_result:
                    self.on_result(ok)

    def _post(self, client: Any, alert: Alert) -> bool:
        body = json.dumps(alert.to_json()).encode()
        headers = {"Content-Type": "application/json"}
        for attempt in range(self.retries):
            try:
                response = client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    return True
                log.warning("alert webhook %s answered %d", self.url, response.status_code)
            except Exception as exc:  # any transport error: retry, then give up
                log.warning("alert webhook %s failed (%s)", self.url, exc)
            time.sleep(min(2.0, 0.2 * 2**attempt))
        return False

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to `timeout`), then stop the thread."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
