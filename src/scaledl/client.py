"""A small client of a running server's admin API (what `scaledl models …` and `maintain` use).

It sits below both the server and the maintenance loop: it speaks HTTP to a server, it does not
import one. An error answer keeps its HTTP status as data (`ServerError.status`), so callers
branch on the status, never on the message text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scaledl.errors import ScaledlError, UnavailableError, UsageError

API_KEY_ENV = "SCALEDL_API_KEY"


class ServerError(ScaledlError):
    """The server answered with an error; the CLI shows its message.

    `status` is the HTTP status and `detail` the server's own message; `message` adds the
    status for people ("HTTP 403: …"). A 5xx is a failed run (exit 1), a 4xx a usage error.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.exit_code = 1 if status >= 500 else 2


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The bearer header for `api_key`, else for $SCALEDL_API_KEY, else none."""
    key = api_key or os.environ.get(API_KEY_ENV)
    return {"Authorization": f"Bearer {key}"} if key else {}


def check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    return url.rstrip("/")


class AdminClient:
    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        cacert: Path | None = None,
        timeout: float = 120.0,
    ) -> None:
        import httpx

        verify: Any = str(cacert) if cacert else True
        self._client = httpx.Client(
            base_url=check_url(url), headers=auth_headers(api_key), timeout=timeout, verify=verify
        )

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The response to one request; UnavailableError when the server cannot be reached,
        ServerError (with the status) when it answers with an error."""
        import httpx

        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise UnavailableError(
                f"cannot reach the server at {self._client.base_url} ({exc})"
            ) from None
        if response.status_code >= 400:
            try:
                doc = response.json()
            except ValueError:
                doc = {"error": response.text[:200]}
            message = doc.get("error") if isinstance(doc, dict) else None
            raise ServerError(response.status_code, str(message or response.reason_phrase))
        return response

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._send(method, path, body)
        try:
            return response.json()
        except ValueError:
            raise ServerError(
                response.status_code, f"the answer to {method} {path} is not JSON"
            ) from None

    def metrics(self) -> str:
        """The Prometheus text the server serves on /metrics."""
        return str(self._send("GET", "/metrics").text)

    def index(self) -> list[dict[str, Any]]:
        return list(self._call("POST", "/v2/repository/index", {}))

    def status(self, model: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v2/admin/models/{model}"))

    def load(self, model: str, version: str | None = None) -> Any:
        return self._call("POST", f"/v2/repository/models/{model}/load", _params(version))

    def unload(self, model: str, version: str | None = None) -> Any:
        return self._call("POST", f"/v2/repository/models/{model}/unload", _params(version))

    def canary(self, model: str, version: str, weight: float) -> Any:
        body = {"version": version, "weight": weight}
        return self._call("POST", f"/v2/admin/models/{model}/canary", body)

    def clear_canary(self, model: str) -> Any:
        return self._call("DELETE", f"/v2/admin/models/{model}/canary")

    def shadow(self, model: str, version: str) -> Any:
        return self._call("POST", f"/v2/admin/models/{model}/shadow", {"version": version})

    def clear_shadow(self, model: str) -> Any:
        return self._call("DELETE", f"/v2/admin/models/{model}/shadow")

    def promote(self, model: str, version: str | None = None) -> Any:
        return self._call("POST", f"/v2/admin/models/{model}/promote", {"version": version})

    def rollback(self, model: str) -> Any:
        return self._call("POST", f"/v2/admin/models/{model}/rollback")

    def policy(self, model: str, policy: str, version: str | None = None) -> Any:
        body = {"policy": policy, "version": version}
        return self._call("POST", f"/v2/admin/models/{model}/policy", body)


def _params(version: str | None) -> dict[str, Any]:
    return {"parameters": {"version": version}} if version else {}
