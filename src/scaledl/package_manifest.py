"""Check the fields of a package's `manifest.json` that scaledl reads, before anything uses them.

A manifest is untrusted input: every field the code reads is checked for its type and a sane
size here, once, so a lying or malformed manifest is refused with one message naming the field
(never a KeyError or TypeError deep inside evaluation or serving). Unknown extra fields are kept
as they are: later versions may add some. Every file name the manifest gives (`files`,
`model_file`, `monitoring.profile`) must be a plain relative name inside the package, and the
names it points at must be among the listed, checksummed files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from scaledl.errors import PackageError

MANIFEST = "manifest.json"
MODEL_ONNX = "model.onnx"
PROFILE = "profile.npz"
REQUIRED_KEYS = ("name", "version", "created_at", "task", "family", "signature", "files")
TASKS = ("classification", "regression")
PREPROCESSING_KINDS = ("image", "table", "sequence")

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MAX_FILES = 256  # a package holds about ten files; hundreds is a crafted one
MAX_TENSORS = 256
MAX_RANK = 8
MAX_DIM = 1 << 31
MAX_LABELS = 1_000_000
MAX_TEXT = 1024  # one label, a family name, a date…
MAX_FILE_NAME = 255


def check_file_name(rel: Any, where: str = "package file name") -> str:
    """A relative POSIX name inside the package: no `..`, `.`, empty parts, `\\`, drive or NUL."""
    valid = (
        isinstance(rel, str)
        and 0 < len(rel) <= 4 * MAX_FILE_NAME
        and not rel.startswith("/")
        and "\\" not in rel
        and "\x00" not in rel
        and not re.match(r"^[A-Za-z]:", rel)
        and all(
            part not in ("", ".", "..") and len(part) <= MAX_FILE_NAME for part in rel.split("/")
        )
    )
    if not valid:
        raise PackageError(
            f"{where} {str(rel)[:200]!r} must be a relative path inside the package "
            "(like model.onnx or sub/file.bin: no '..', no leading '/', no '\\')"
        )
    return str(rel)


def validate_manifest(raw: Any, source: object) -> dict[str, Any]:
    """Return the manifest when every field scaledl reads has the right type and a sane size."""
    check = _Checker(str(source))
    if not isinstance(raw, dict):
        check.fail("", "must hold a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise PackageError(f"package {source}: {MANIFEST} lacks required key(s) {missing}")
    check.pattern(raw, "name", NAME_PATTERN, "letters, digits, '.', '_' or '-' (≤ 128)")
    version = raw["version"]
    if not (isinstance(version, int) and not isinstance(version, bool) and 0 <= version < 10**18):
        check.pattern(raw, "version", VERSION_PATTERN, "like 1, 2 or 1.0.3 (≤ 64 characters)")
    check.text(raw, "created_at")
    check.text(raw, "family")
    if raw["task"] not in TASKS:
        check.fail("task", f"must be one of {', '.join(TASKS)}", raw["task"])
    files = _files(check, raw["files"])
    _named_files(check, raw, files)
    _signature(check, raw["signature"])
    _labels(check, raw)
    if raw.get("preprocessing") is not None:
        _preprocessing(check, raw["preprocessing"])
    for key in ("knobs", "metrics", "lineage", "parity", "export", "environment", "runtime"):
        check.optional_dict(raw, key)
    _lineage(check, raw.get("lineage") or {})
    _numbers(check, raw)
    if "hmac" in raw and not (isinstance(raw["hmac"], str) and len(raw["hmac"]) <= 128):
        check.fail("hmac", "must be a hex string", raw["hmac"])
    return raw


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str, value: Any = ...) -> None:
        got = "" if value is ... else f" (got {_describe(value)})"
        where = f" field {field!r}" if field else ""
        raise PackageError(f"package {self.source}: {MANIFEST}{where} {problem}{got}")

    def text(self, raw: Mapping[str, Any], key: str, field: str | None = None) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
            self.fail(field or key, f"must be a non-empty string (≤ {MAX_TEXT} characters)", value)
        return str(value)

    def pattern(self, raw: Mapping[str, Any], key: str, regex: re.Pattern[str], what: str) -> None:
        value = raw.get(key)
        if not isinstance(value, str) or not regex.match(value):
            self.fail(key, f"must be {what}", value)

    def optional_dict(self, raw: Mapping[str, Any], key: str, field: str | None = None) -> None:
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            self.fail(field or key, "must be a JSON object", raw[key])

    def integer(self, value: Any, field: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(field, f"must be an integer from {low} to {high}", value)
        return int(value)

    def number(
        self, value: Any, field: str, low: float = -math.inf, positive: bool = False
    ) -> None:
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= low
            and (value > 0 or not positive)
        )
        if not ok:
            kind = "a positive" if positive else "a finite" if low == -math.inf else "a ≥ 0"
            self.fail(field, f"must be {kind} number", value)


def _describe(value: Any) -> str:
    text = repr(value)
    kind = type(value).__name__
    return f"{kind} {text[:60]}{'…' if len(text) > 60 else ''}"


def _files(check: _Checker, files: Any) -> dict[str, str]:
    if not isinstance(files, dict):
        check.fail("files", "must map file names to sha256 hex digests", files)
    if len(files) > MAX_FILES:
        check.fail("files", f"lists {len(files)} files; a package holds at most {MAX_FILES}")
    for rel, digest in files.items():
        check_file_name(rel, f"package {check.source}: {MANIFEST} 'files' entry")
        if rel == MANIFEST:
            check.fail("files", f"must not list {MANIFEST} itself")
        if not isinstance(digest, str) or not SHA256_PATTERN.match(digest):
            check.fail(f"files.{rel}", "must be a sha256 hex digest (64 lowercase hex)", digest)
    return files


def _named_files(check: _Checker, raw: dict[str, Any], files: Mapping[str, str]) -> None:
    """Names the manifest points at must be among its listed, checksummed files."""
    model_file = raw.get("model_file", MODEL_ONNX)
    if "model_file" in raw:
        check.text(raw, "model_file")
    if model_file not in files:
        check.fail(
            "model_file" if "model_file" in raw else "files",
            f"names the model {str(model_file)[:200]!r}, which is not one of the listed files "
            f"({', '.join(sorted(files)) or 'none'})",
        )
    monitoring = raw.get("monitoring")
    if monitoring is None:
        return
    if not isinstance(monitoring, dict):
        check.fail("monitoring", "must be a JSON object", monitoring)
    profile = monitoring.get("profile", PROFILE)
    if "profile" in monitoring and not isinstance(profile, str):
        check.fail("monitoring.profile", "must be a file name", profile)
    if profile not in files:
        check.fail(
            "monitoring.profile",
            f"names {str(profile)[:200]!r}, which is not one of the listed files",
        )


def _signature(check: _Checker, signature: Any) -> None:
    if not isinstance(signature, dict):
        check.fail("signature", "must be a JSON object with inputs and outputs", signature)
    for key in ("inputs", "outputs"):
        if key not in signature:
            continue
        tensors = signature[key]
        if not isinstance(tensors, list) or len(tensors) > MAX_TENSORS:
            check.fail(f"signature.{key}", f"must be a list of ≤ {MAX_TENSORS} tensors", tensors)
        for i, tensor in enumerate(tensors):
            field = f"signature.{key}[{i}]"
            if not isinstance(tensor, dict):
                check.fail(field, "must be an object with name, datatype, shape", tensor)
            check.text(tensor, "name", f"{field}.name")
            check.text(tensor, "datatype", f"{field}.datatype")
            shape = tensor.get("shape")
            if not isinstance(shape, list) or len(shape) > MAX_RANK:
                check.fail(f"{field}.shape", f"must be a list of ≤ {MAX_RANK} dimensions", shape)
            for d, dim in enumerate(shape):
                check.integer(dim, f"{field}.shape[{d}]", -1, MAX_DIM)


def _labels(check: _Checker, raw: dict[str, Any]) -> None:
    labels = raw.get("labels")
    if labels is None:
        return
    if not isinstance(labels, list) or len(labels) > MAX_LABELS:
        check.fail("labels", f"must be a list of ≤ {MAX_LABELS:,} class names", labels)
    for i, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, str | int | float):
            check.fail(f"labels[{i}]", "must be a string", label)
        if len(str(label)) > MAX_TEXT:
            check.fail(f"labels[{i}]", f"must be ≤ {MAX_TEXT} characters")
    outputs = raw["signature"].get("outputs") or []
    width = outputs[0]["shape"][-1] if outputs and outputs[0]["shape"] else -1
    if raw["task"] == "classification" and width > 0 and width != len(labels):
        check.fail(
            "labels",
            f"names {len(labels)} classes but the model's output "
            f"{outputs[0]['name']!r} has {width}",
        )


def _preprocessing(check: _Checker, spec: Any) -> None:
    """What `scaledl.preprocess.apply_preprocessing` reads, consistent with itself."""
    if not isinstance(spec, dict):
        check.fail("preprocessing", "must be a JSON object", spec)
    kind = spec.get("kind")
    if kind not in PREPROCESSING_KINDS:
        check.fail("preprocessing.kind", f"must be one of {', '.join(PREPROCESSING_KINDS)}", kind)
    shape = spec.get("raw_shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 4:
        check.fail("preprocessing.raw_shape", "must be a list of 1 to 4 dimensions", shape)
    size = 1
    for d, dim in enumerate(shape):
        size *= check.integer(dim, f"preprocessing.raw_shape[{d}]", 1, MAX_DIM)
    if size > MAX_DIM:
        check.fail("preprocessing.raw_shape", f"describes {size:,} values per sample (too many)")
    check.number(spec.get("scale"), "preprocessing.scale", positive=True)
    channels = shape[0] if kind == "image" else shape[-1]
    for key in ("mean", "std"):
        values = spec.get(key)
        if not isinstance(values, list) or len(values) not in (1, channels):
            check.fail(
                f"preprocessing.{key}",
                f"must be a list of {'1 or ' if channels > 1 else ''}{channels} number(s) "
                f"(one per {'channel' if kind == 'image' else 'feature'})",
                values,
            )
        for i, value in enumerate(values):
            check.number(value, f"preprocessing.{key}[{i}]", positive=key == "std")
    if kind == "image":
        if len(shape) != 3:
            check.fail("preprocessing.raw_shape", "must be [channels, height, width] for images")
        image = spec.get("image")
        if image is not None:
            if not isinstance(image, dict):
                check.fail("preprocessing.image", "must be a JSON object", image)
            for key, expected in zip(("channels", "height", "width"), shape, strict=True):
                if image.get(key, expected) != expected:
                    check.fail(
                        f"preprocessing.image.{key}",
                        f"must match raw_shape ({expected})",
                        image.get(key),
                    )
            if "max_value" in image:
                check.number(image["max_value"], "preprocessing.image.max_value", positive=True)


def _lineage(check: _Checker, lineage: Mapping[str, Any]) -> None:
    check.optional_dict(lineage, "data", "lineage.data")
    data = lineage.get("data") or {}
    if "source" in data:
        check.text(data, "source", "lineage.data.source")
    if "split_seed" in lineage:
        check.integer(lineage["split_seed"], "lineage.split_seed", 0, 2**63 - 1)
    transforms = lineage.get("transforms")
    if transforms is not None and (
        not isinstance(transforms, list)
        or len(transforms) > MAX_TENSORS
        or not all(isinstance(t, str) and len(t) <= MAX_TEXT for t in transforms)
    ):
        check.fail("lineage.transforms", "must be a list of strings", transforms)
    parent = lineage.get("parent")
    if parent is not None and (not isinstance(parent, str) or len(parent) > 4096):
        check.fail("lineage.parent", "must be a path string or null", parent)


def _numbers(check: _Checker, raw: dict[str, Any]) -> None:
    parity = raw.get("parity") or {}
    if "tolerance" in parity:
        check.number(parity["tolerance"], "parity.tolerance", low=0.0)
    export = raw.get("export") or {}
    if "opset" in export:
        check.integer(export["opset"], "export.opset", 1, 1000)
    if "exporter" in export:
        check.text(export, "exporter", "export.exporter")
    runtime = raw.get("runtime") or {}
    config = runtime.get("session_config")
    if config is not None and not (
        isinstance(config, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in config.items())
    ):
        check.fail("runtime.session_config", "must map strings to strings", config)
    if "precision" in raw:
        check.text(raw, "precision")
