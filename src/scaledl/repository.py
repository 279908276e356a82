"""Where packages come from: one package, or a repository `REPO/<model>/<version>/`.

A version is a package folder (or `<version>.zip`). Versions sort numerically when they are
numbers ("10" after "9"), otherwise as text. Scanning only lists; verification happens when a
version is loaded, so one corrupt package never hides the others. The server serves this
layout and `maintain` adds versions to it; both read it through this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
from pathlib import Path

from scaledl.errors import NotFoundError, UsageError
from scaledl.package import MANIFEST

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def version_key(version: str) -> tuple[int, int, str]:
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def is_package(path: Path) -> bool:
    return (path.is_dir() and (path / MANIFEST).is_file()) or (
        path.is_file() and path.suffix == ".zip" and zipfile.is_zipfile(path)
    )


class Repository:
    def __init__(self, source: Path) -> None:
        self.source = Path(source)
        if not self.source.exists():
            raise UsageError(f"{self.source} does not exist; give a model package or a repository")
        self.single = is_package(self.source)
        if not self.single and not self.source.is_dir():
            raise UsageError(f"{self.source} is neither a model package nor a repository folder")

    def scan(self) -> dict[str, dict[str, Path]]:
        """model → version → package path (unverified)."""
        if self.single:
            name, version = self._single_identity()
            return {name: {version: self.source}}
        found: dict[str, dict[str, Path]] = {}
        for model_dir in sorted(p for p in self.source.iterdir() if p.is_dir()):
            if not NAME_RE.match(model_dir.name):
                continue
            versions: dict[str, Path] = {}
            for entry in model_dir.iterdir():
                version = entry.name.removesuffix(".zip") if entry.is_file() else entry.name
                if NAME_RE.match(version) and is_package(entry):
                    versions[version] = entry
            if versions:
                found[model_dir.name] = dict(
                    sorted(versions.items(), key=lambda kv: version_key(kv[0]))
                )
        return found

    def _single_identity(self) -> tuple[str, str]:
        try:
            if self.source.is_dir():
                manifest = json.loads((self.source / MANIFEST).read_text())
            else:
                with zipfile.ZipFile(self.source) as zf:
                    names = [n for n in zf.namelist() if n.rstrip("/").endswith(MANIFEST)]
                    manifest = json.loads(zf.read(min(names, key=len)))
            name, version = str(manifest["name"]), str(manifest["version"])
        except (OSError, ValueError, KeyError, TypeError):
            name, version = self.source.name.removesuffix(".zip"), "1"
        if not NAME_RE.match(name):
            name = re.sub(r"[^A-Za-z0-9_.\-]", "-", name).strip("-.") or "model"
        return name, version if NAME_RE.match(version) else "1"

    def versions(self, model: str) -> dict[str, Path]:
        found = self.scan().get(model)
        if not found:
            raise NotFoundError(f"model {model!r} is not in the model repository")
        return found

    def redact(self, message: str) -> str:
        """`message` without the server's own folders: paths become repository-relative.

        Reasons reach clients (the repository index, a refused load); where the repository
        lives on the server's disk is none of their business.
        """
        roots = {str(self.source.absolute()), str(self.source)}
        with contextlib.suppress(OSError):
            roots.add(str(self.source.resolve()))
        for root in sorted(roots, key=len, reverse=True):
            if len(root) > 1:
                message = message.replace(root + os.sep, "").replace(root, self.source.name)
        return message

    def path(self, model: str, version: str) -> Path:
        versions = self.versions(model)
        if version not in versions:
            raise NotFoundError(
                f"model {model!r} has no version {version!r} in the repository "
                f"(versions: {', '.join(versions)})"
            )
        return versions[version]
