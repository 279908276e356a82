"""Server settings from `SCALEDL_`-prefixed environment variables, as operators set them.

Precedence: a flag on the command line > an environment variable > the field's default.

- a top-level field by its name: `SCALEDL_PORT=9000`, `SCALEDL_MAX_BODY_BYTES=33554432`,
  `SCALEDL_NO_AUTH=true`; lists and maps as JSON: `SCALEDL_CORS_ORIGINS='["https://a.example"]'`;
- a nested field with `__`: `SCALEDL_BATCHING__MAX_QUEUE=512`;
- the batching fields also flat, as their flags are: `SCALEDL_MAX_BATCH_SIZE=64`.

`SCALEDL_SERVE_SETTINGS` is not a setting: it is how `--workers N` hands the parent's resolved
settings to each worker, which reads only it (`ServeSettings.from_env`). No field may take that
name, and other `SCALEDL_` variables (`SCALEDL_API_KEY`, `SCALEDL_SIGNING_KEY`, …) name no field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from scaledl.config.serve import BatchingConfig, ServeSettings
from scaledl.errors import UsageError
from scaledl.validation import Names, dotted, explain

ENV_PREFIX = "SCALEDL_"
NESTED = "__"
FLAT_SECTION = "batching"  # flattened into the flags, so also into the variable names
JSON_EXAMPLES = {  # what a JSON-valued variable looks like, for the error that says it is not
    "cors_origins": """SCALEDL_CORS_ORIGINS='["https://app.example"]'""",
    "pins": """SCALEDL_PINS='{"digits-cnn": "2"}'""",
    "batching": """SCALEDL_BATCHING='{"max_batch_size": 64}'""",
    "model_batching": """SCALEDL_MODEL_BATCHING='{"digits-cnn": {"max_batch_size": 64}}'""",
    "extensions": """SCALEDL_EXTENSIONS='[{"name": "monitor"}]'""",
}


def env_names(loc: tuple[Any, ...]) -> list[str]:
    """The variables that set a field, e.g. ("batching", "max_queue") → both spellings."""
    names = [ENV_PREFIX + NESTED.join(str(p) for p in loc).upper()]
    if len(loc) == 2 and loc[0] == FLAT_SECTION:
        names.append(ENV_PREFIX + str(loc[1]).upper())
    return names


def set_variable(loc: tuple[Any, ...], environ: Mapping[str, str] | None = None) -> str | None:
    """The variable that set the field at `loc` in this environment, if one did."""
    upper = {k.upper() for k in (os.environ if environ is None else environ)}
    for depth in range(len(loc), 0, -1):  # a JSON section (SCALEDL_BATCHING) sets its fields
        found = next((n for n in env_names(loc[:depth]) if n in upper), None)
        if found:
            inside = dotted(loc[depth:])
            return f"{found} (its {inside})" if inside else found
    return None


class _FlatBatching(PydanticBaseSettingsSource):
    """`SCALEDL_MAX_BATCH_SIZE` & co.: the batching section's fields without the section."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole section

    def __call__(self) -> dict[str, Any]:
        environ = {k.upper(): v for k, v in os.environ.items()}
        found: dict[str, Any] = {}
        for name in BatchingConfig.model_fields:
            nested, flat = env_names((FLAT_SECTION, name))
            if flat not in environ:
                continue
            if nested in environ and environ[nested] != environ[flat]:
                raise UsageError(
                    f"{flat}={environ[flat]!r} and {nested}={environ[nested]!r} set the same "
                    "setting differently; keep one"
                )
            found[name] = environ[flat]
        return {FLAT_SECTION: found} if found else {}


class _FromEnvironment(ServeSettings, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED, extra="forbid"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: the flags (init), then SCALEDL_X / SCALEDL_SECTION__X, then the flat names
        return init_settings, env_settings, _FlatBatching(settings_cls)


def settings_from_environment(
    given: dict[str, Any], flag_names: Names | None = None, where: str = "scaledl serve"
) -> ServeSettings:
    """`given` (what the command line set, nested like the model) over the environment.

    An invalid value names the flag that gave it (`flag_names`) or else the variable.
    """

    def names(loc: tuple[Any, ...]) -> str | None:
        return (flag_names(loc) if flag_names else None) or set_variable(loc)

    try:
        merged = _FromEnvironment(**given)
    except ValidationError as exc:
        raise UsageError(explain(exc, where, ServeSettings, names)) from None
    except SettingsError as exc:  # a list, map or section variable that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = env_names((field.group(1),))[0] if field else "a SCALEDL_ variable"
        example = JSON_EXAMPLES.get(field.group(1) if field else "", JSON_EXAMPLES["cors_origins"])
        raise UsageError(
            f"{where}: {name} is not valid JSON ({exc.__cause__}); lists, maps and sections are "
            f"given as JSON, e.g. {example}"
        ) from None
    return ServeSettings.model_validate(merged.model_dump())
