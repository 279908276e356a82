"""The running server, seen from a maintenance run: the admin API plus labelled inference.

Admin calls go through `scaledl.client.AdminClient` (the same calls as `scaledl models`).
Accuracy through the server is measured by sending the labelled rows — preprocessed as the
package says — as Open Inference Protocol requests pinned to one version
(`/v2/models/{m}/versions/{v}/infer`), so live traffic routing is not involved and every answer
is checked to come from the version asked for.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.client import AdminClient, ServerError, auth_headers
from scaledl.contract import SpecBase
from scaledl.errors import ScaledlError, UnavailableError, UsageError
from scaledl.maintain.decision import FailureCount
from scaledl.preprocess import apply_preprocessing

logger = logging.getLogger(__name__)

FAILURES = "scaledl_request_failures"  # the server's counter of error answers (family name)


class RolloutError(ScaledlError):
    """The server could not carry out a rollout step: the run did not complete (exit 1)."""

    exit_code = 1


@dataclass
class ServedAccuracy:
    accuracy: float
    answered: int
    failures: int
    seconds: float


class ServerLink:
    def __init__(self, url: str, api_key: str | None, cacert: Path | None = None) -> None:
        import httpx  # loaded only by runs given --server

        self.url = url.rstrip("/")
        self.admin = AdminClient(url, api_key, cacert)  # UsageError for a malformed URL
        self.http = httpx.Client(
            base_url=self.url,
            headers=auth_headers(api_key),
            timeout=60.0,
            verify=str(cacert) if cacert else True,
        )

    def close(self) -> None:
        self.http.close()
        self.admin.close()

    # ---- admin -----------------------------------------------------------------------
    def probe(self, model: str) -> dict[str, Any]:
        """The model's status and the versions the server sees; a usage error naming the
        problem when the server cannot be used."""
        try:
            status = self.admin.status(model)
            index = self.admin.index()
            status["repository_versions"] = [
                str(r["version"]) for r in index if r.get("name") == model
            ]
            return status
        except UnavailableError as exc:
            raise UsageError(
                f"--server {self.url}: {exc.message}; start it with `scaledl serve REPOSITORY` "
                "or check the URL"
            ) from None
        except ServerError as exc:
            raise UsageError(f"--server {self.url}: {_explain(exc, model)}") from None

    def call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """An admin step during the rollout; failures mean the run cannot complete (exit 1)."""
        try:
            return fn(*args)
        except ScaledlError as exc:
            raise RolloutError(f"{what} failed on the server {self.url}: {exc.message}") from None

    def wait_unloaded(self, model: str, version: str, timeout: float = 60.0) -> str:
        """Wait until the server has drained and released `version`; its last state."""
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            rows = self.call("repository index", self.admin.index)
            found = [r for r in rows if r.get("name") == model and r.get("version") == version]
            state = str(found[0].get("state")) if found else "ABSENT"
            if state in ("UNLOADED", "ABSENT", "UNAVAILABLE"):  # released, or never loaded
                return state
            time.sleep(0.1)
        return state

    def monitor_state(self, model: str) -> Any:
        """The monitor extension's live state of the model, when the server runs `--monitor`."""
        try:
            response = self.http.get(f"/v2/models/{model}/monitor")
        except Exception:
            return None
        return response.json() if response.status_code == 200 else None

    def failures(self, model: str, version: str) -> FailureCount:
        """Requests the server answered with an error for this version, from /metrics.

        Anything that keeps the count from being taken (the server unreachable, /metrics
        refused or not Prometheus text, no failure counter in it) gives a count of None with
        the reason, never 0: a promotion must not rest on a number nobody read."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            text = self.admin.metrics()
        except ScaledlError as exc:
            return FailureCount(None, f"GET {self.url}/metrics failed: {exc.message}")
        try:
            families = {f.name: f for f in text_string_to_metric_families(text)}
        except ValueError as exc:
            return FailureCount(None, f"{self.url}/metrics is not Prometheus text ({exc})")
        family = families.get(FAILURES)
        if family is None:
            return FailureCount(None, f"{self.url}/metrics has no {FAILURES}_total counter")
        total = sum(
            sample.value
            for sample in family.samples
            if sample.name == f"{FAILURES}_total"
            and sample.labels.get("model") == model
            and sample.labels.get("version") == version
        )
        return FailureCount(int(total), f"{FAILURES}_total on {self.url}/metrics")

    # ---- labelled inference ----------------------------------------------------------
    def accuracy(
        self,
        model: str,
        version: str,
        x_raw: np.ndarray,
        y: np.ndarray,
        preprocessing: SpecBase,
        rows: int,
        input_name: str = "input",
    ) -> ServedAccuracy:
        started = time.monotonic()
        x = apply_preprocessing(x_raw, preprocessing)
        correct = answered = failures = 0
        for start in range(0, len(x), rows):
            batch, labels = x[start : start + rows], y[start : start + rows]
            predicted = self._infer(model, version, batch, input_name)
            if predicted is None:
                failures += 1
                continue
            correct += int((predicted == labels).sum())
            answered += len(labels)
        accuracy = correct / answered if answered else float("nan")
        return ServedAccuracy(accuracy, answered, failures, time.monotonic() - started)

    def _infer(
        self, model: str, version: str, batch: np.ndarray, input_name: str
    ) -> np.ndarray | None:
        """Top classes of one batch, or None when the server did not answer it. The rows travel
        as a V2 binary tensor: a JSON list of floats is ~5× larger and an image batch of 64
        would pass the server's JSON-size limit (413)."""
        data = np.ascontiguousarray(batch, dtype="<f4").tobytes()
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": input_name,
                        "shape": list(batch.shape),
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": len(data)},
                    }
                ]
            }
        ).encode()
        try:
            response = self.http.post(
                f"/v2/models/{model}/versions/{version}/infer",
                content=header + data,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Inference-Header-Content-Length": str(len(header)),
                },
            )
        except Exception:
            return None
        if response.status_code != 200:
            logger.warning(
                "labelled rows for %s/%s: HTTP %d %s",
                model,
                version,
                response.status_code,
                response.text[:200],
            )
            return None
        doc = response.json()
        if str(doc.get("model_version")) != version:
            return None
        out = doc["outputs"][0]
        return np.asarray(out["data"], dtype=np.float64).reshape(out["shape"]).argmax(axis=1)


def _explain(error: ServerError, model: str) -> str:
    hints = {
        401: "pass an admin key with --api-key or $SCALEDL_API_KEY "
        "(create one with `scaledl keys create --scope admin`)",
        403: "maintain needs an admin-scope key",
        404: f"the server does not serve model {model!r}",
    }
    hint = hints.get(error.status)
    return f"{error.message} — {hint}" if hint else error.message
