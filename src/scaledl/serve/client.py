"""The admin client moved to `scaledl.client` (below the server and `maintain`); kept importable."""

from scaledl.client import API_KEY_ENV, AdminClient, ServerError

__all__ = ["API_KEY_ENV", "AdminClient", "ServerError"]
