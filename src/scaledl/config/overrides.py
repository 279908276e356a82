"""`--set key.path=value`: one override of a nested config, the value read as YAML.

Every verb with a typed config takes these (`scaledl train --set train.epochs=3`, `scaledl
maintain --set finetune.epochs=2`, `scaledl optimize --set prune.ratios=[0.3,0.5]`); the raw
mapping is validated by the config's model afterwards, so a wrong key or value names itself.
"""

from __future__ import annotations

from typing import Any

import yaml

from scaledl.errors import RecipeError, ScaledlError


def apply_override(raw: dict[str, Any], item: str, error: type[ScaledlError] = RecipeError) -> None:
    """`train.epochs=3` → raw["train"]["epochs"] = 3 (the value is parsed as YAML)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise error(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. train.epochs=3")
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise error(f"--set {item!r}: {part} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        node[parts[-1]] = value


def override_key(item: str) -> tuple[str, ...]:
    """The dotted key of a `--set` item as a path: `data.source=x` → ("data", "source")."""
    return tuple(item.partition("=")[0].strip().split("."))
