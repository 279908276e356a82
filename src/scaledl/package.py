"""Read, write and verify model packages (the format: docs/architecture.md).

A package is a folder (or a .zip of one) holding `manifest.json` plus the files it lists with
their sha256. An optional HMAC-SHA256 over the canonical manifest (key from
`SCALEDL_SIGNING_KEY`) proves who made it. Nothing here unpickles anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaledl.contract import FORMAT, Manifest, SpecBase, migrate
from scaledl.errors import PackageError
from scaledl.fsio import atomic_directory, sha256_file
from scaledl.validation import validate

MANIFEST = "manifest.json"
MODEL_ONNX = "model.onnx"
WEIGHTS = "weights.safetensors"
MODEL_JSON = "model.json"
SAMPLE = "sample.npz"
PROFILE = "profile.npz"
REPORT = "report.html"
RECIPE = "recipe.yaml"
SIGNING_KEY_ENV = "SCALEDL_SIGNING_KEY"


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
        return json.loads(self.file(relative).read_text())


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
            _check_relative(rel)
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes | bytearray):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
            digests[rel] = sha256_file(target)
        body["files"] = digests
        body = validate_manifest(body, str(dest)).to_json()
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


def validate_manifest(raw: Any, source: str) -> Manifest:
    """The typed manifest from its JSON (any earlier format is migrated first).

    One PackageError names the field and what is wrong, for a manifest that is not a scaledl
    manifest, was written by a newer version, or was edited into something invalid.
    """
    if not isinstance(raw, dict):
        raise PackageError(f"package {source}: {MANIFEST} must hold a JSON object")
    try:
        body = migrate(raw)
    except ValueError as exc:
        raise PackageError(f"package {source}: {MANIFEST}: {exc}") from None
    return validate(Manifest, body, f"package {source}: {MANIFEST}", PackageError)


def open_package(
    path: Path | str,
    verify: bool = True,
    key: bytes | None = None,
    require_signature: bool | None = None,
) -> Package:
    """Open a package folder or .zip; validate its manifest; by default check every checksum
    and the signature.

    The signature is checked when a key is given (or set in `SCALEDL_SIGNING_KEY`); with a key,
    unsigned packages are refused unless `require_signature=False`.
    """
    source = Path(path)
    if not source.exists():
        raise PackageError(f"package {source} does not exist (expected a package folder or .zip)")
    tmp: tempfile.TemporaryDirectory[str] | None = None
    root = source
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise PackageError(f"{source} is neither a package folder nor a .zip of one")
        tmp = tempfile.TemporaryDirectory(prefix="scaledl-pkg-")
        root = _extract_zip(source, Path(tmp.name))
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
    """Every listed file exists and matches its sha256; no unlisted file sits in the package."""
    listed: dict[str, str] = pkg.manifest.files
    for rel, expected in sorted(listed.items()):
        _check_relative(rel)
        target = pkg.path / rel
        if not target.is_file():
            raise PackageError(f"package {pkg.source}: file {rel} is listed but missing")
        actual = sha256_file(target)
        if actual != expected:
            raise PackageError(
                f"package {pkg.source}: file {rel} fails its checksum "
                f"(sha256 {actual[:12]}…, manifest says {expected[:12]}…); it was changed"
            )
    present = {p.relative_to(pkg.path).as_posix() for p in pkg.path.rglob("*") if p.is_file()}
    extra = sorted(present - set(listed) - {MANIFEST})
    if extra:
        raise PackageError(
            f"package {pkg.source}: unlisted file(s) {', '.join(extra)}; "
            "only files listed in manifest.json may be in a package"
        )


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
    if not manifest_path.is_file():
        raise PackageError(f"{source} is not a model package: it has no {MANIFEST}")
    try:
        raw = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"package {source}: {MANIFEST} is not valid JSON ({exc})") from None
    return validate_manifest(raw, str(source)), raw


def _check_relative(rel: str) -> None:
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts:
        raise PackageError(f"package file name {rel!r} must be a relative path inside the package")


def _extract_zip(archive: Path, into: Path) -> Path:
    """Extract safely (no absolute paths or `..`); accept a zip of the folder or of its files."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_relative(info.filename.rstrip("/"))
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise PackageError(f"{archive} is a corrupt .zip ({exc})") from None
    if (into / MANIFEST).is_file():
        return into
    children = [p for p in into.iterdir() if p.is_dir()]
    if len(children) == 1 and (children[0] / MANIFEST).is_file():
        return children[0]
    raise PackageError(f"{archive} holds no {MANIFEST} at its top level")
