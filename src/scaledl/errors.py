"""One error hierarchy for the library, the CLI and the HTTP server.

Each error carries the CLI exit code and the HTTP status it maps to, so the one CLI handler and
the one HTTP handler never need to know the concrete class. Messages say what was wrong and what
would be valid.
"""

from __future__ import annotations


class ScaledlError(Exception):
    """Base error: a user-facing problem with a clear message (no traceback shown)."""

    exit_code: int = 2
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ScaledlError):
    """A flag, option or argument has an invalid value."""


class RecipeError(ScaledlError):
    """A recipe has unknown keys or invalid values."""


class DataError(ScaledlError):
    """A data source is missing, empty, corrupt or does not fit the task."""


class ModelError(ScaledlError):
    """A model cannot be built or does not fit the data."""


class PackageError(ScaledlError):
    """A model package is missing, incomplete, corrupt or tampered with."""

    http_status = 422


class ExportError(ScaledlError):
    """ONNX export failed or the exported graph does not match PyTorch."""

    exit_code = 1
    http_status = 500


class GoalNotMetError(ScaledlError):
    """The job ran but did not reach its goal (e.g. no variant met the budget)."""

    exit_code = 1
    http_status = 500


class NotFoundError(ScaledlError):
    http_status = 404


class AuthenticationError(ScaledlError):
    http_status = 401


class PermissionDeniedError(ScaledlError):
    http_status = 403


class PayloadTooLargeError(ScaledlError):
    http_status = 413


class UnsupportedMediaTypeError(ScaledlError):
    """A request body of a content type the endpoint does not read."""

    http_status = 415


class OverloadedError(ScaledlError):
    http_status = 429


class DeadlineExceededError(ScaledlError):
    http_status = 504


class UnavailableError(ScaledlError):
    http_status = 503
