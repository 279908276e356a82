"""Read, write and verify model packages (the format: docs/architecture.md).

A package is a folder (or a .zip of one) holding `manifest.json` plus the files it lists with
their sha256. An optional HMAC-SHA256 over the canonical manifest (key from
`SCALEDL_SIGNING_KEY`) proves who made it. Nothing here unpickles anything.

A package is data from anyone: its manifest is validated field by field
(`scaledl.package_manifest`), a zip is checked before it is extracted (`scaledl.package_zip`),
and every file a package uses must be a listed, checksummed, regular file inside it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaledl.contract import FORMAT, Manifest, SpecBase
from scaledl.errors import PackageError
from scaledl.fsio import atomic_directory, sha256_file
from scaledl.package_manifest import MANIFEST, MAX_FILES, check_file_name
from scaledl.package_manifest import MODEL_ONNX as MODEL_ONNX  # re-exported
from scaledl.package_manifest import PROFILE as PROFILE  # re-exported: the package's names
from scaledl.package_manifest import validate_manifest as validate_manifest
from scaledl.package_zip import MAX_MANIFEST_BYTES, extract_package_zip, parse_manifest_bytes

WEIGHTS = "weights.safetensors"
MODEL_JSON = "model.json"
SAMPLE = "sample.npz"
REPORT = "report.html"
RECIPE = "recipe.yaml"
SIGNING_KEY_ENV = "SCALEDL_SIGNING_KEY"
MAX_JSON_FILE_BYTES = 16 << 20  # model.json and friends are a few kB


def signing_key_from_env() -> bytes | None:
    key = os.environ.get(SIGNING_KEY_ENV)
    return key.encode("utf-8") if key else None


def canonical_manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes the HMAC covers: the manifest without its `hmac`, keys sorted, no spaces."""
    body = {k: v for k, v in manifest.items() if k != "hmac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def sign_manifest(manifest: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical_manifest_bytes(manifest), hashlib.sha256).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Package:
    """An opened package. For a .zip, `path` is a private extracted copy.

    `manifest` is the typed, validated (and migrated) manifest every stage reads; `raw` is the
    JSON exactly as stored, which is what the checksums and signature cover.
    """

    path: Path
    manifest: Manifest
    source: Path
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def onnx_path(self) -> Path:
        return self.path / self.manifest.model_file

    @property
    def has_weights(self) -> bool:
        return self.manifest.has_weights

    @property
    def labels(self) -> list[str] | None:
        labels = self.manifest.labels
        return list(labels) if labels is not None else None

    @property
    def preprocessing(self) -> SpecBase:
        """How raw input becomes the graph's input; a package without it takes tensors only."""
        spec = self.manifest.preprocessing
        if spec is None:
            raise PackageError(
                f"package {self.source} has no preprocessing in its manifest, so it cannot take "
                "raw data; feed its graph tensors directly"
            )
        return spec

    def has_file(self, relative: str) -> bool:
        return relative in self.manifest.files

    def file(self, relative: str) -> Path:
        if relative not in self.manifest.files:
            raise PackageError(
                f"package {self.source} has no file {relative!r}; it has: "
                f"{', '.join(sorted(self.manifest.files))}"
            )
        return self.path / relative

    def read_json(self, relative: str) -> Any:
        """A listed JSON file, parsed; a malformed or oversized one is a PackageError naming it."""
        path = self.file(relative)
        if path.stat().st_size > MAX_JSON_FILE_BYTES:
            raise PackageError(
                f"package {self.source}: {relative} is over {MAX_JSON_FILE_BYTES >> 20} MB"
            )
        try:
            return json.loads(path.read_bytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise PackageError(
                f"package {self.source}: {relative} is not valid JSON ({str(exc)[:200]})"
            ) from None


def write_package(
    dest: Path,
    manifest: Manifest | Mapping[str, Any],
    files: Mapping[str, bytes | Path],
    key: bytes | None = None,
) -> Path:
    """Write a package folder atomically: every file, their sha256, then the (signed) manifest.

    `files` maps relative names to bytes or to existing paths (copied). The manifest is
    validated against the contract before anything is written, so no stage can publish a
    package that another stage would refuse. `key` defaults to `SCALEDL_SIGNING_KEY`; without
    a key the package is unsigned.
    """
    dest = Path(dest)
    key = key if key is not None else signing_key_from_env()
    body = manifest.to_json() if isinstance(manifest, Manifest) else dict(manifest)
    files = {**modality_files(body), **files}
    body["format"] = FORMAT
    body.setdefault("created_at", now_iso())
    body.pop("hmac", None)
    with atomic_directory(dest) as tmp:
        digests: dict[str, str] = {}
        for rel, content in sorted(files.items()):
            check_file_name(rel)
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes | bytearray):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
            digests[rel] = sha256_file(target)
        body["files"] = digests
        body = validate_manifest(body, dest).to_json()
        if key:
            body["hmac"] = sign_manifest(body, key)
        (tmp / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=False, allow_nan=False))
    return dest


def update_package(
    path: Path,
    add_files: Mapping[str, bytes | Path] | None = None,
    manifest_updates: Mapping[str, Any] | None = None,
    key: bytes | None = None,
) -> Package:
    """Rewrite a package folder with extra files or manifest fields (atomically, re-signed).

    An existing signature must still be valid; an unsigned package gets signed when a key is set.
    `manifest_updates` replaces whole top-level sections (JSON form).
    """
    pkg = open_package(path, key=key, require_signature=False)
    if pkg._tmp is not None:
        raise PackageError(f"{path} is a .zip; unpack it to a folder before updating it")
    files: dict[str, bytes | Path] = {rel: pkg.path / rel for rel in pkg.manifest.files}
    # Read everything into memory first: the old folder is replaced underneath us.
    staged = {rel: Path(p).read_bytes() if isinstance(p, Path) else p for rel, p in files.items()}
    for rel, content in (add_files or {}).items():
        staged[rel] = content if isinstance(content, bytes) else Path(content).read_bytes()
    body = {**pkg.manifest.to_json(), **(manifest_updates or {})}
    write_package(pkg.path, body, staged, key=key)
    return open_package(pkg.path, key=key)


def open_package(
    path: Path | str,
    verify: bool = True,
    key: bytes | None = None,
    require_signature: bool | None = None,
    max_bytes: int | None = None,
) -> Package:
    """Open a package folder or .zip; validate its manifest; by default check every checksum
    and the signature.

    The signature is checked when a key is given (or set in `SCALEDL_SIGNING_KEY`); with a key,
    unsigned packages are refused unless `require_signature=False`. A .zip may unpack to at
    most `max_bytes` (default `SCALEDL_MAX_PACKAGE_MB`, 4096 MB).
    """
    source = Path(path)
    if not source.exists():
        raise PackageError(f"package {source} does not exist (expected a package folder or .zip)")
    if not source.is_dir() and not source.is_file():
        raise PackageError(f"package {source} is neither a folder nor a file")
    tmp: tempfile.TemporaryDirectory[str] | None = None
    root = source
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise PackageError(f"{source} is neither a package folder nor a .zip of one")
        tmp = tempfile.TemporaryDirectory(prefix="scaledl-pkg-")
        try:
            root = extract_package_zip(source, Path(tmp.name), max_bytes)
        except BaseException:
            tmp.cleanup()
            raise
    manifest, raw = _read_manifest(root, source)
    pkg = Package(path=root, manifest=manifest, source=source, raw=raw, _tmp=tmp)
    if verify:
        check_integrity(pkg)
        check_signature(pkg, key=key, require=require_signature)
    bind_modality(pkg)
    return pkg


def modality_files(body: Mapping[str, Any]) -> dict[str, bytes]:
    """Files the manifest's modality needs inside the package (text: its tokenizer)."""
    raw = body.get("preprocessing")
    if raw is None:
        return {}
    from pydantic import ValidationError

    from scaledl.modalities import modality_of
    from scaledl.preprocess import as_spec

    try:
        spec = raw if isinstance(raw, SpecBase) else as_spec(dict(raw))
    except (ValidationError, TypeError, ValueError):
        return {}  # the manifest check names the problem
    return modality_of(spec).package_files(spec)


def bind_modality(pkg: Package) -> None:
    """Let the package's modality load what its `to_graph` needs from the package's files."""
    spec = pkg.manifest.preprocessing
    if spec is None:
        return
    from scaledl.modalities import modality_of

    max_bytes = 256 << 20

    def read(name: str) -> bytes:
        path = pkg.file(name)
        if path.stat().st_size > max_bytes:
            raise PackageError(f"package {pkg.source}: {name} is over {max_bytes >> 20} MB")
        return path.read_bytes()

    try:
        modality_of(spec).bind_package(spec, read)
    except PackageError as exc:
        raise PackageError(f"package {pkg.source}: {exc.message}") from None


def check_integrity(pkg: Package) -> None:
    """Every listed file is a regular file inside the package matching its sha256; nothing else
    (no unlisted file, no symlink, device or pipe) sits in the package."""
    listed: dict[str, str] = pkg.manifest.files
    present = _walk_regular_files(pkg.path, pkg.source)
    extra = sorted(present - set(listed) - {MANIFEST})
    if extra:
        raise PackageError(
            f"package {pkg.source}: unlisted file(s) {', '.join(extra[:10])}; "
            "only files listed in manifest.json may be in a package"
        )
    for rel, expected in sorted(listed.items()):
        if rel not in present:
            raise PackageError(f"package {pkg.source}: file {rel} is listed but missing")
        actual = _sha256_no_follow(pkg.path / rel, pkg.source, rel)
        if actual != expected:
            raise PackageError(
                f"package {pkg.source}: file {rel} fails its checksum "
                f"(sha256 {actual[:12]}…, manifest says {expected[:12]}…); it was changed"
            )


def _walk_regular_files(root: Path, source: Path) -> set[str]:
    """Relative names of the regular files under `root`; anything else is refused by name.

    Symlinks are never followed (a link to a file or folder outside would pass its checksum
    and then be served), and devices or pipes could block or feed endless bytes.
    """
    found: set[str] = set()
    pending = [root]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = Path(entry.path).relative_to(root).as_posix()
                if entry.is_symlink():
                    raise PackageError(
                        f"package {source}: {rel} is a symbolic link; packages hold regular "
                        "files only (copy the file in)"
                    )
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    found.add(rel)
                else:
                    raise PackageError(
                        f"package {source}: {rel} is not a regular file (a device, pipe or "
                        "socket); packages hold regular files only"
                    )
                if len(found) > MAX_FILES:
                    raise PackageError(f"package {source} holds over {MAX_FILES} files")
    return found


def _sha256_no_follow(path: Path, source: Path, rel: str) -> str:
    """sha256 of a regular file, opened without following a symlink put there after the walk."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise PackageError(
            f"package {source}: file {rel} cannot be read ({exc.strerror})"
        ) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise PackageError(f"package {source}: {rel} is not a regular file")
        digest = hashlib.sha256()
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_signature(pkg: Package, key: bytes | None = None, require: bool | None = None) -> bool:
    """True when signed and valid; False when no key is set. Raises when it fails."""
    key = key if key is not None else signing_key_from_env()
    if not key:
        return False
    signature = pkg.raw.get("hmac")
    if signature is None:
        if require is False:
            return False
        raise PackageError(
            f"package {pkg.source} is unsigned but {SIGNING_KEY_ENV} is set; "
            "sign it with `scaledl sign` or unset the key"
        )
    expected = sign_manifest(pkg.raw, key)
    if not hmac.compare_digest(str(signature), expected):
        raise PackageError(
            f"package {pkg.source}: manifest.json signature does not match "
            f"(tampered manifest or a different {SIGNING_KEY_ENV})"
        )
    return True


def _read_manifest(root: Path, source: Path) -> tuple[Manifest, dict[str, Any]]:
    manifest_path = root / MANIFEST
    try:
        info = manifest_path.lstat()
    except FileNotFoundError:
        raise PackageError(f"{source} is not a model package: it has no {MANIFEST}") from None
    if not stat.S_ISREG(info.st_mode):
        raise PackageError(f"package {source}: {MANIFEST} is not a regular file (a symlink?)")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise PackageError(
            f"package {source}: {MANIFEST} is {info.st_size:,} bytes "
            f"(at most {MAX_MANIFEST_BYTES >> 20} MB)"
        )
    return parse_manifest_bytes(manifest_path.read_bytes(), source)
