"""One model's folder in a repository `REPO/<model>/<version>/`: versions, lock, publish, reject.

Maintenance bookkeeping lives in `REPO/<model>/.maintain/` (a dot folder, which the server's
scan skips): `log.jsonl` (the decision log), `data/<v>.npz` (the old + new data version v was
trained on), `sources/<v>/` (the fine-tuned fp32 package an optimized version v came from) and
`rejected/<v>/` (versions that were rolled back: kept for inspection, out of the server's
sight, so a restart with policy `latest` never serves them). Version numbers are never reused.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from scaledl.errors import NotFoundError, PackageError, ScaledlError, UsageError
from scaledl.package import MANIFEST, Package, open_package, write_package
from scaledl.repository import NAME_RE, Repository

MAINTAIN_DIR = ".maintain"


class BusyError(ScaledlError):
    """Another maintenance run holds the model's lock."""

    exit_code = 1


class ModelRepository:
    def __init__(self, root: Path, model: str) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise UsageError(f"repository {self.root} does not exist; expected REPO/<model>/<v>/")
        if not self.root.is_dir() or (self.root / MANIFEST).is_file():
            raise UsageError(
                f"{self.root} is not a repository folder (REPO/<model>/<version>/); "
                "a single package cannot take new versions"
            )
        if not NAME_RE.match(model):
            raise UsageError(f"--model {model!r}: expected a name of letters, digits, _ . -")
        self.model = model
        self.dir = self.root / model
        self._scanner = Repository(self.root)
        models = self._scanner.scan()
        if not models:
            raise UsageError(f"repository {self.root} holds no model packages")
        if model not in models:
            raise UsageError(
                f"--model {model!r} is not in the repository {self.root} "
                f"(models: {', '.join(models)})"
            )

    # ---- reading ---------------------------------------------------------------------
    def versions(self) -> dict[str, Path]:
        try:
            return self._scanner.versions(self.model)
        except NotFoundError as exc:
            raise UsageError(exc.message) from None

    def newest(self) -> str:
        return list(self.versions())[-1]

    def path(self, version: str) -> Path:
        versions = self.versions()
        if version not in versions:
            raise UsageError(
                f"model {self.model!r} has no version {version!r} in {self.root} "
                f"(versions: {', '.join(versions)})"
            )
        return versions[version]

    def open(self, version: str) -> Package:
        try:
            return open_package(self.path(version))
        except PackageError as exc:
            raise PackageError(f"model {self.model} version {version}: {exc.message}") from None

    @property
    def meta(self) -> Path:
        return self.dir / MAINTAIN_DIR

    def log_path(self) -> Path:
        return self.meta / "log.jsonl"

    def data_path(self, version: str) -> Path:
        return self.meta / "data" / f"{version}.npz"

    def source_path(self, version: str) -> Path:
        return self.meta / "sources" / version

    def rejected_path(self, version: str) -> Path:
        return self.meta / "rejected" / version

    def next_version(self) -> str:
        """One more than any number used so far (live, rejected or with recorded data)."""
        used = list(self.versions())
        for sub in ("rejected", "sources", "data"):
            folder = self.meta / sub
            if folder.is_dir():
                used += [p.name.removesuffix(".npz") for p in folder.iterdir()]
        numbers = [int(v) for v in used if v.isdigit()]
        return str(max(numbers, default=0) + 1)

    # ---- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One maintenance run per model at a time (an OS file lock: released if the process
        dies, on every platform filelock supports)."""
        self.meta.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.meta / "lock", thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise BusyError(
                f"another `scaledl maintain` run is working on model {self.model} "
                f"({self.meta / 'lock'}); wait for it to finish"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def publish(
        self, package: Path, version: str, manifest_updates: dict[str, Any], lineage: dict[str, Any]
    ) -> Path:
        """Copy a package in as `version` (atomic), with its manifest version and lineage set."""
        dest = self.dir / version
        if dest.exists() or (self.dir / f"{version}.zip").exists():
            raise UsageError(f"{dest} already exists; version numbers are never reused")
        pkg = open_package(package)
        manifest = {**pkg.manifest.to_json(), **manifest_updates, "version": version}
        manifest["lineage"] = {**pkg.manifest.lineage.model_dump(mode="json"), **lineage}
        manifest.pop("created_at", None)
        files: dict[str, bytes | Path] = {rel: pkg.path / rel for rel in pkg.manifest.files}
        return write_package(dest, manifest, files)

    def keep_source(self, package: Path, version: str) -> Path:
        """Store the fp32 package an optimized version was made from (its training source)."""
        pkg = open_package(package)
        files: dict[str, bytes | Path] = {rel: pkg.path / rel for rel in pkg.manifest.files}
        return write_package(self.source_path(version), pkg.manifest, files)

    def reject(self, version: str) -> Path:
        """Move a rolled-back version out of the server's sight (one rename)."""
        src = self.path(version)
        dest = self.rejected_path(version + (".zip" if src.is_file() else ""))
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        return dest


def manifest_of(path: Path) -> dict[str, Any]:
    return dict(json.loads((Path(path) / MANIFEST).read_text()))
