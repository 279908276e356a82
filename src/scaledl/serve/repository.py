"""The repository layout moved to `scaledl.repository` (below the server and `maintain`); kept
importable here."""

from scaledl.repository import NAME_RE, Repository, is_package, version_key

__all__ = ["NAME_RE", "Repository", "is_package", "version_key"]
