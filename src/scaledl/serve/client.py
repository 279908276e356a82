"""A small admin client for a running server (what `scaledl models …` uses)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scaledl.errors import ScaledlError, UnavailableError, UsageError

API_KEY_ENV = "SCALEDL_API_KEY"


class ServerError(ScaledlError):
    """The server answered with an error; the CLI shows its message."""


class AdminClient:
    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        cacert: Path | None = None,
        timeout: float = 120.0,
    ) -> None:
        import httpx

        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--url {url!r}: expected http://HOST:PORT or https://HOST:PORT")
        key = api_key or os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        verify: Any = str(cacert) if cacert else True
        self._client = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, verify=verify
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import httpx

        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise UnavailableError(
                f"cannot reach the server at {self._client.base_url} ({exc})"
            ) from None
        try:
            doc = response.json()
        except ValueError:
            doc = {"error": response.text[:200]}
        if response.status_code >= 400:
            message = doc.get("error") if isinstance(doc, dict) else None
            error = ServerError(f"HTTP {response.status_code}: {message or response.reason_phrase}")
            error.exit_code = 1 if response.status_code >= 500 else 2
            raise error
        return doc

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
