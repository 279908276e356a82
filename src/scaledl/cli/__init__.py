"""The `scaledl` command line: a table of verbs, each a thin layer over a library function."""

from scaledl.cli.app import app, main

__all__ = ["app", "main"]
