"""How a config field is spelled on the command line, declared beside its default and help.

A field's flag is `--` + its name with dashes (`max_queue` → `--max-queue`) unless its
`json_schema_extra` says otherwise with `flag(...)`:

    header_timeout_s: float = Field(
        10.0, description="…", json_schema_extra=flag("--header-timeout")
    )
    max_body_bytes: int = Field(
        16 * MIB, json_schema_extra=flag("--max-body-mb", unit=MIB, unit_name="MiB")
    )

`scaledl.cli.options` reads it back to build the typer/click options: the default and help
come from the field, and the value given is validated by the model, so each is written once.
"""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo

KEY = "cli"


def flag(
    *decls: str,
    unit: int = 1,
    unit_name: str = "",
    whole: bool = False,
    separator: str = "",
    metavar: str = "",
) -> dict[str, Any]:
    """Field metadata: the flag's declarations (e.g. "--data", "-d", or "--x/--no-x").

    `unit`: the flag takes the value in units of this many field units (MiB for a byte count),
    named `unit_name` in the help; `whole`: the flag takes whole units only. `separator`: a list
    field given as one separated string (e.g. "," for `--methods a,b`) instead of repeated flags.
    `metavar`: how the value is written in the help (e.g. MODEL=VERSION for a map's items).
    """
    spec: dict[str, Any] = {"decls": list(decls)}
    if unit != 1:
        spec.update(unit=unit, unit_name=unit_name, whole=whole)
    if separator:
        spec["separator"] = separator
    if metavar:
        spec["metavar"] = metavar
    return {KEY: spec}


def flag_spec(field: FieldInfo) -> dict[str, Any]:
    """The `flag(...)` metadata of a field ({} when it follows the naming rule)."""
    extra = field.json_schema_extra
    spec = extra.get(KEY) if isinstance(extra, dict) else None
    return dict(spec) if isinstance(spec, dict) else {}
