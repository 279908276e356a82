"""Extract a zipped package without trusting the archive.

Everything a zip declares is checked before a byte is written: the entry count, every name
(relative, no `..`, no duplicates), the entry types (regular files and folders only, no
symlinks or devices), the manifest (read first, bounded, validated), that every file is listed
in the manifest, and the total declared size against a cap. While extracting, the bytes really
written are counted again, because declared sizes can lie.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

from scaledl.contract import Manifest
from scaledl.errors import PackageError
from scaledl.package_manifest import MANIFEST, MAX_FILES, check_file_name, parse_manifest_bytes

MAX_PACKAGE_MB_ENV = "SCALEDL_MAX_PACKAGE_MB"
# ONNX graphs without external data stop at 2 GiB (protobuf), and the weights are about as big.
DEFAULT_MAX_PACKAGE_MB = 4096
MAX_MANIFEST_BYTES = 32 << 20
MAX_ENTRIES = 2 * MAX_FILES  # files plus their folders
_CHUNK = 1 << 20


def max_package_bytes() -> int:
    """The largest total a package may unpack to: `SCALEDL_MAX_PACKAGE_MB` (default 4096 MB)."""
    text = os.environ.get(MAX_PACKAGE_MB_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PACKAGE_MB << 20
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise PackageError(
            f"{MAX_PACKAGE_MB_ENV}={text!r}: expected a positive number of megabytes, e.g. 4096"
        )
    return int(value * (1 << 20))


def extract_package_zip(archive: Path, into: Path, max_bytes: int | None = None) -> Path:
    """Extract a zip of a package (or of a folder holding one) into `into`; return the root."""
    limit = max_bytes if max_bytes is not None else max_package_bytes()
    try:
        with zipfile.ZipFile(archive) as zf:
            prefix, files = _plan(archive, zf, limit)
            for info in files:
                _extract_one(archive, zf, info, into / info.filename[len(prefix) :])
    except zipfile.BadZipFile as exc:
        raise PackageError(f"{archive} is a corrupt .zip ({exc})") from None
    except (RuntimeError, NotImplementedError, ValueError, EOFError) as exc:
        # encrypted entries, unsupported compression, truncated data
        raise PackageError(f"{archive}: cannot extract ({str(exc)[:200]})") from None
    return into


def _plan(archive: Path, zf: zipfile.ZipFile, limit: int) -> tuple[str, list[zipfile.ZipInfo]]:
    """Check the whole listing; return the folder prefix and the file entries to extract."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise PackageError(
            f"{archive} has {len(infos):,} entries; a package holds at most {MAX_FILES} files"
        )
    seen: set[str] = set()
    for info in infos:
        name = info.filename.rstrip("/") if info.is_dir() else info.filename
        check_file_name(name, f"{archive}: entry")
        if name in seen:
            raise PackageError(f"{archive}: entry {name!r} appears twice")
        seen.add(name)
        _check_entry_type(archive, info, name)
    prefix = _prefix(archive, seen)
    manifest = _read_manifest(archive, zf, prefix)
    files = [i for i in infos if not i.is_dir()]
    listed = set(manifest.files) | {MANIFEST}
    for info in files:
        rel = info.filename[len(prefix) :] if info.filename.startswith(prefix) else None
        if rel not in listed:
            raise PackageError(
                f"{archive}: entry {info.filename!r} is not listed in {MANIFEST}; only listed "
                "files may be in a package"
            )
    declared = sum(i.file_size for i in infos)
    if declared > limit:
        biggest = max(infos, key=lambda i: i.file_size)
        raise PackageError(
            f"{archive} would unpack to {declared / 2**20:,.1f} MB (largest entry "
            f"{biggest.filename!r}: {biggest.file_size / 2**20:,.1f} MB), over the "
            f"{limit / 2**20:,.0f} MB limit ({MAX_PACKAGE_MB_ENV} raises it)"
        )
    return prefix, files


def _check_entry_type(archive: Path, info: zipfile.ZipInfo, name: str) -> None:
    if info.flag_bits & 0x1:
        raise PackageError(f"{archive}: entry {name!r} is encrypted")
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise PackageError(
            f"{archive}: entry {name!r} is a symbolic link; packages hold regular files only"
        )
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise PackageError(
            f"{archive}: entry {name!r} is not a regular file (mode {oct(mode)}); "
            "packages hold regular files only"
        )


def _prefix(archive: Path, names: set[str]) -> str:
    """'' for a zip of the package's files, 'folder/' for a zip of the package folder."""
    if MANIFEST in names:
        return ""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1:
        top = tops.pop()
        if f"{top}/{MANIFEST}" in names:
            return f"{top}/"
    raise PackageError(f"{archive} holds no {MANIFEST} at its top level")


def _read_manifest(archive: Path, zf: zipfile.ZipFile, prefix: str) -> Manifest:
    info = zf.getinfo(prefix + MANIFEST)
    if info.file_size > MAX_MANIFEST_BYTES:
        raise PackageError(
            f"{archive}: {MANIFEST} declares {info.file_size:,} bytes "
            f"(at most {MAX_MANIFEST_BYTES >> 20} MB)"
        )
    with zf.open(info) as fh:
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise PackageError(f"{archive}: {MANIFEST} is over {MAX_MANIFEST_BYTES >> 20} MB")
    return parse_manifest_bytes(data, archive)[0]


def _extract_one(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Stream one entry, stopping as soon as it holds more than it declared."""
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o644)
    written = 0
    with os.fdopen(fd, "wb") as out, zf.open(info) as src:
        while block := src.read(_CHUNK):
            written += len(block)
            if written > info.file_size:
                raise PackageError(
                    f"{archive}: entry {info.filename!r} holds more than the "
                    f"{info.file_size:,} bytes it declares"
                )
            out.write(block)
