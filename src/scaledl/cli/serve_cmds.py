"""Verbs: serve, keys (create/list/revoke), models (index/status/load/unload/canary/shadow/
promote/rollback/policy) — the last group talks to a running server's admin API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from scaledl.cli.common import console
from scaledl.cli.options import ConfigFlags, field_help
from scaledl.config.environment import env_names
from scaledl.config.monitor import MonitorConfig
from scaledl.config.serve import ExtensionSpec, ServeSettings, load_model_config

keys_app = typer.Typer(
    help="Create, list and revoke API keys for `scaledl serve`.", no_args_is_help=True
)
models_app = typer.Typer(
    help="Manage the models of a running server: index, load, canary, shadow, promote, roll back.",
    no_args_is_help=True,
)


SERVE_FLAGS = ConfigFlags(
    ServeSettings,
    # the source is the argument; these three have flags of their own below
    exclude=("source", "model_batching", "extensions", "state_poll_s"),
    env=lambda path: env_names(path)[-1],
)
MONITOR_FLAGS = ConfigFlags(
    MonitorConfig,
    include={
        "webhook_url": "--alert-webhook",
        "window": "--monitor-window",
        "window_seconds": "--monitor-window-seconds",
        "drift.alpha": "--monitor-alpha",
        "drift.windows_score": "--monitor-windows-score",
        "check_interval_s": "--monitor-interval",
    },
    help_prefix="With --monitor: ",
)


@MONITOR_FLAGS.add
@SERVE_FLAGS.add
def serve(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help=field_help(ServeSettings, "source")),
    model_config: Path | None = typer.Option(
        None,
        "--model-config",
        help="YAML/JSON: per-model batching overrides {model: {max_batch_size: …}}.",
    ),
    extension: list[str] | None = typer.Option(
        None,
        "--extension",
        help="Enable a server extension by registered name or module:factory (repeatable).",
    ),
    monitor: bool = typer.Option(
        False, "--monitor", help="Watch drift, live accuracy and alerts; serve /dashboard."
    ),
    **flags: Any,
) -> None:
    """Serve models over the Open Inference Protocol (V2 REST), with batching, keys and metrics.

    Every setting can also come from an environment variable: SCALEDL_ + the setting's name
    (shown with each flag), e.g. SCALEDL_PORT=9000, SCALEDL_MAX_BATCH_SIZE=64, nested ones
    with __ (SCALEDL_BATCHING__MAX_QUEUE=512). A flag on the command line wins over the
    environment, which wins over the default.
    """
    from scaledl.serve.runner import run_server

    run_server(serve_settings(ctx))


def serve_settings(ctx: typer.Context) -> ServeSettings:
    """The settings a `scaledl serve` command line resolves to: flags > environment > defaults."""
    params = ctx.params
    given = SERVE_FLAGS.given(ctx, params)
    given["source"] = params["source"]
    extensions = [ExtensionSpec(name=n) for n in params["extension"] or []]
    extensions += _monitor_extension(params["monitor"], MONITOR_FLAGS.given(ctx, params), ctx)
    if extensions:
        given["extensions"] = extensions
    settings = build_settings(given, SERVE_FLAGS.names(ctx))
    if params["model_config"] is not None:
        per_model = load_model_config(params["model_config"], settings.batching)
        settings = settings.model_copy(update={"model_batching": per_model})
    return settings


def build_settings(given: dict[str, Any], names: Any = None) -> ServeSettings:
    """The command line's values over SCALEDL_ variables over the defaults, then checked."""
    from scaledl.config.environment import settings_from_environment
    from scaledl.errors import UsageError

    settings = settings_from_environment(given, names)
    if settings.api_keys is None and not settings.no_auth:
        raise UsageError(
            "no API keys: pass --api-keys FILE (create one with `scaledl keys create --scope "
            "infer --file FILE`) or, to serve without authentication, --no-auth"
        )
    if settings.api_keys is not None and settings.no_auth:
        raise UsageError("--api-keys and --no-auth contradict each other; pass one")
    if settings.api_keys is not None:
        from scaledl.serve.keys import read_keys

        read_keys(settings.api_keys)
    if settings.grpc_port is not None and settings.grpc_port == settings.port != 0:
        raise UsageError(f"--grpc-port {settings.port} is also --port; give gRPC its own port")
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        raise UsageError("TLS needs both --ssl-certfile and --ssl-keyfile")
    for flag, path in (
        ("--ssl-certfile", settings.ssl_certfile),
        ("--ssl-keyfile", settings.ssl_keyfile),
    ):
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{flag} {path}: no such file")
    return settings


def _monitor_extension(monitor: bool, options: dict[str, Any], ctx: Any) -> list[ExtensionSpec]:
    """`--monitor` and its flags → the `monitor` extension with MonitorConfig options."""
    from scaledl.errors import UsageError
    from scaledl.validation import validate

    if not monitor:
        if options:
            given = ", ".join(MONITOR_FLAGS.given_any(ctx))
            raise UsageError(f"{given}: the live monitor's flags need --monitor")
        return []
    # checked now, naming the flag: a bad value is a usage error, not a failed start
    validate(
        MonitorConfig, options, "scaledl serve --monitor", UsageError, MONITOR_FLAGS.names(ctx)
    )
    return [ExtensionSpec(name="monitor", options=options)]


@keys_app.command("create")
def keys_create(
    scope: str = typer.Option(
        ...,
        "--scope",
        help="infer (metadata, inference, metrics) or admin (also repository and rollout).",
    ),
    file: Path = typer.Option(
        ..., "--file", help="Key file to add the key to (created if missing; stores only hashes)."
    ),
    name: str = typer.Option("", "--name", help="A label for the key, shown by `keys list`."),
) -> None:
    """Create an API key: it is printed once on stdout and only its hash is stored."""
    from scaledl.serve.keys import create_key

    key, _ = create_key(file, scope, name)
    typer.echo(key)


@keys_app.command("list")
def keys_list(file: Path = typer.Option(..., "--file", help="Key file.")) -> None:
    """List key ids, scopes and names (the keys themselves are not stored)."""
    from scaledl.serve.keys import read_keys

    for entry in read_keys(file):
        console.print(f"{entry.id}  {entry.scope:<6}  {entry.created_at}  {entry.name}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="Key id (the 8 hex characters after sdk_)."),
    file: Path = typer.Option(..., "--file", help="Key file."),
) -> None:
    """Revoke a key; a running server notices within a second."""
    from scaledl.serve.keys import revoke_key

    entry = revoke_key(file, key_id)
    console.print(f"revoked key {entry.id} ({entry.scope})")


URL_OPT = typer.Option("http://127.0.0.1:8000", "--url", help="The server's base URL.")
KEY_OPT = typer.Option(
    None, "--api-key", help="Admin API key (default: $SCALEDL_API_KEY).", envvar="SCALEDL_API_KEY"
)
CACERT_OPT = typer.Option(None, "--cacert", help="CA certificate to trust for https URLs.")


def _client(url: str, api_key: str | None, cacert: Path | None) -> Any:
    from scaledl.client import AdminClient

    return AdminClient(url, api_key, cacert)


def _show(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2))


@models_app.command("index")
def models_index(
    url: str = URL_OPT, api_key: str | None = KEY_OPT, cacert: Path | None = CACERT_OPT
) -> None:
    """Every model and version in the server's repository, with its state."""
    _show(_client(url, api_key, cacert).index())


@models_app.command("status")
def models_status(
    model: str = typer.Argument(..., help="Model name."),
    url: str = URL_OPT,
    api_key: str | None = KEY_OPT,
    cacert: Path | None = CACERT_OPT,
) -> None:
    """Routing (primary, canary, shadow, policy), loaded versions and shadow comparison."""
    _show(_client(url, api_key, cacert).status(model))


@models_app.command("load")
def models_load(
    model: str = typer.Argument(..., help="Model name."),
    version: str | None = typer.Option(
        None, "--version", help="Version to make primary (pins it); default: by policy."
    ),
    url: str = URL_OPT,
    api_key: str | None = KEY_OPT,
    cacert: Path | None = CACERT_OPT,
) -> None:
    """Load (or hot-swap to) a version: zero failed requests, the old one drains."""
    _show(_client(url, api_key, cacert).load(model, version))


@models_app.command("unload")
def models_unload(
    model: str = typer.Argument(..., help="Model name."),
    version: str | None = typer.Option(None, "--version", help="Only this canary/shadow version."),
    url: str = URL_OPT,
    api_key: str | None = KEY_OPT,
    cacert: Path | None = CACERT_OPT,
) -> None:
    """Stop serving a model (or one canary/shadow version) after draining it."""
    _show(_client(url, api_key, cacert).unload(model, version))


@models_app.command("canary")
def models_canary(
    model: str = typer.Argument(..., help="Model name."),
    version: str | None = typer.Option(None, "--version", help="Canary version."),
    weight: float = typer.Option(
        0.1, "--weight", help="Share of traffic for the canary, in (0, 1]."
    ),
    clear: bool = typer.Option(False, "--clear", help="Remove the canary."),
    url: str = URL_OPT,
    api_key: str | None = KEY_OPT,
    cacert: Path | None = CACERT_OPT,
) -> None:
    """Send a weighted share of the traffic to another version."""
    client = _client(url, api_key, cacert)
    _show(client.clear_canary(model) if clear else client.canary(model, _need(version), weight))


@models_app.command("shadow")
def models_shadow(
    model: str = typer.Argument(..., help="Model name."),
    version: str | None = typer.Option(None, "--version", help="Shadow version."),
    clear: bool = typer.Option(False, "--clear", help="Remove the shadow."),
    url: str = URL_OPT,
    api_key: str | None = KEY_OPT,
    cacert: Path | None = CACERT_OPT,
) -> None:
    """Copy traffic to another version; its answers are compared, never returned."""
    client = _client(url, api_key, cacert)
    _show(client.clear_shadow(model) if clear else client.shadow(model, _need(version)))


@models_app.command("promote")
def models_promote(
    model: str = typer.Argument(..., help="Model name."),
    version: str | None = typer.Option(
        None, "--version", help="Version (default: the canary, else the shadow)."
    ),
    url: str = URL_OPT,
    api_key: str | None = KEY_OPT,
    cacert: Path | None = CACERT_OPT,
) -> None:
    """Make the canary (or shadow, or a named version) the primary, pinned."""
    _show(_client(url, api_key, cacert).promote(model, version))


@models_app.command("rollback")
def models_rollback(
    model: str = typer.Argument(..., help="Model name."),
    url: str = URL_OPT,
    api_key: str | None = KEY_OPT,
    cacert: Path | None = CACERT_OPT,
) -> None:
    """Drop the canary/shadow; with none, return to the previous primary."""
    _show(_client(url, api_key, cacert).rollback(model))


@models_app.command("policy")
def models_policy(
    model: str = typer.Argument(..., help="Model name."),
    policy: str = typer.Argument(..., help="latest | pinned."),
    version: str | None = typer.Option(None, "--version", help="Version to pin."),
    url: str = URL_OPT,
    api_key: str | None = KEY_OPT,
    cacert: Path | None = CACERT_OPT,
) -> None:
    """Serve the newest version (latest) or a fixed one (pinned)."""
    _show(_client(url, api_key, cacert).policy(model, policy, version))


def _need(version: str | None) -> str:
    from scaledl.errors import UsageError

    if version is None:
        raise UsageError("--version is required (or pass --clear)")
    return version


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(models_app, name="models")
