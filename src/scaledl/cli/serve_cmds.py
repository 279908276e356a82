"""Verbs: serve, keys (create/list/revoke), models (index/status/load/unload/canary/shadow/
promote/rollback/policy) — the last group talks to a running server's admin API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from scaledl.cli.common import console

keys_app = typer.Typer(
    help="Create, list and revoke API keys for `scaledl serve`.", no_args_is_help=True
)
models_app = typer.Typer(
    help="Manage the models of a running server: index, load, canary, shadow, promote, roll back.",
    no_args_is_help=True,
)


def serve(
    source: Path = typer.Argument(
        ..., help="A model package, or a repository REPO/<model>/<version>/."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (default: loopback only)."
    ),
    port: int = typer.Option(
        8000, "--port", help="TCP port (0: any free port; the log says which)."
    ),
    grpc_port: int | None = typer.Option(
        None,
        "--grpc-port",
        help="Also serve V2 over gRPC on this port (0: any free port; default: no gRPC).",
    ),
    api_keys: Path | None = typer.Option(
        None, "--api-keys", help="Key file from `scaledl keys create`."
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Serve without API keys (warns at start-up)."
    ),
    workers: int = typer.Option(1, "--workers", help="Server processes sharing the port."),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="ONNX Runtime intra-op threads per worker (default: cores / workers).",
    ),
    inter_threads: int = typer.Option(1, "--inter-threads", help="ONNX Runtime inter-op threads."),
    ort_spinning: bool = typer.Option(
        False,
        "--ort-spinning/--no-ort-spinning",
        help="Let ORT threads spin-wait (faster on dedicated idle cores; steals CPU otherwise).",
    ),
    max_batch_size: int = typer.Option(
        32, "--max-batch-size", help="Most samples per ONNX Runtime call."
    ),
    max_queue_delay_ms: float = typer.Option(
        0.0, "--max-queue-delay-ms", help="How long a request may wait for a batch to fill."
    ),
    max_queue: int = typer.Option(
        256, "--max-queue", help="Pending requests per model version before 429."
    ),
    instances: int = typer.Option(
        1, "--instances", help="Runner threads per model running ONNX Runtime concurrently."
    ),
    batch_tuning: bool = typer.Option(
        True,
        "--batch-tuning/--no-batch-tuning",
        help="At load, time batch sizes and cap batches at the fastest per sample.",
    ),
    request_timeout: float = typer.Option(
        30.0, "--request-timeout", help="Seconds before an unanswered request gets 504."
    ),
    model_config: Path | None = typer.Option(
        None,
        "--model-config",
        help="YAML/JSON: per-model batching overrides {model: {max_batch_size: …}}.",
    ),
    pin: list[str] | None = typer.Option(
        None,
        "--pin",
        help="Pin a model's version: MODEL=VERSION (repeatable); default policy: latest.",
    ),
    state_file: Path | None = typer.Option(
        None,
        "--state-file",
        help="Keep the rollout state (primary/canary/shadow) in this file across restarts.",
    ),
    max_body_mb: float = typer.Option(
        16.0, "--max-body-mb", help="Largest request body in MiB (bigger: 413)."
    ),
    allow_nonfinite: bool = typer.Option(
        False,
        "--allow-nonfinite",
        help="Pass NaN/Inf inputs to the model instead of refusing them (400).",
    ),
    ssl_certfile: Path | None = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM)."),
    ssl_keyfile: Path | None = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM)."),
    cors_origin: list[str] | None = typer.Option(
        None,
        "--cors-origin",
        help="Allow browser calls from this origin (repeatable; default: CORS off).",
    ),
    metrics_open: bool = typer.Option(
        False, "--metrics-open", help="Serve /metrics without an API key."
    ),
    access_log: bool = typer.Option(
        False, "--access-log", help="One JSON log line per request (errors are always logged)."
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug | info | warning | error."),
    shutdown_grace: float = typer.Option(
        0.0,
        "--shutdown-grace",
        help="After SIGTERM, keep accepting this many seconds with readiness false.",
    ),
    drain_timeout: float = typer.Option(
        30.0, "--drain-timeout", help="Most seconds to finish in-flight requests at shutdown."
    ),
    header_timeout: float = typer.Option(
        10.0,
        "--header-timeout",
        help="Seconds a client has to send a request's headers (slowloris guard; else 408).",
    ),
    body_timeout: float = typer.Option(
        60.0,
        "--body-timeout",
        help="Seconds to receive a request body, and for a client to take a response (else 408).",
    ),
    idle_timeout: float = typer.Option(
        30.0, "--idle-timeout", help="Close a keep-alive connection idle this many seconds."
    ),
    max_connections: int | None = typer.Option(
        None,
        "--max-connections",
        help="Open connections per worker; at the cap the longest-idle one is closed "
        "(default: the open-file limit minus 64, at most 10,000).",
    ),
    max_header_kb: int = typer.Option(
        64, "--max-header-kb", help="Largest request line + headers in KiB (bigger: 431)."
    ),
    max_json_mb: float = typer.Option(
        2.0,
        "--max-json-mb",
        help="Largest JSON document parsed, in MiB (bigger: 413; send big tensors as binary).",
    ),
    max_samples_per_request: int = typer.Option(
        4096,
        "--max-samples-per-request",
        help="Most samples in one request (bigger: 413); large ones run batch by batch.",
    ),
    max_image_pixels: int = typer.Option(
        16_000_000, "--max-image-pixels", help="Largest /predict image in pixels (bigger: 413)."
    ),
    cpu_threads: int | None = typer.Option(
        None,
        "--cpu-threads",
        help="Threads decoding big bodies and images off the event loop (default: cores, 2–8).",
    ),
    extension: list[str] | None = typer.Option(
        None,
        "--extension",
        help="Enable a server extension by registered name or module:factory (repeatable).",
    ),
    monitor: bool = typer.Option(
        False, "--monitor", help="Watch drift, live accuracy and alerts; serve /dashboard."
    ),
    alert_webhook: str | None = typer.Option(
        None, "--alert-webhook", help="With --monitor: POST alerts as JSON to this URL."
    ),
    monitor_window: int | None = typer.Option(
        None, "--monitor-window", help="With --monitor: samples per drift window (default 500)."
    ),
    monitor_window_seconds: float | None = typer.Option(
        None, "--monitor-window-seconds", help="With --monitor: also drop samples older than this."
    ),
    monitor_alpha: float | None = typer.Option(
        None, "--monitor-alpha", help="With --monitor: false-alarm rate of a check (default 0.05)."
    ),
    monitor_interval: float | None = typer.Option(
        None, "--monitor-interval", help="With --monitor: check at least this often, seconds."
    ),
) -> None:
    """Serve models over the Open Inference Protocol (V2 REST), with batching, keys and metrics."""
    from scaledl.serve.runner import run_server

    settings = build_settings(**locals())
    run_server(settings)


def build_settings(**opts: Any) -> Any:
    from pydantic import ValidationError

    from scaledl.errors import UsageError
    from scaledl.serve.settings import (
        BatchingConfig,
        ExtensionSpec,
        ServeSettings,
        load_model_config,
    )

    if opts["api_keys"] is None and not opts["no_auth"]:
        raise UsageError(
            "no API keys: pass --api-keys FILE (create one with `scaledl keys create --scope "
            "infer --file FILE`) or, to serve without authentication, --no-auth"
        )
    if opts["api_keys"] is not None and opts["no_auth"]:
        raise UsageError("--api-keys and --no-auth contradict each other; pass one")
    if opts["api_keys"] is not None:
        from scaledl.serve.keys import read_keys

        read_keys(opts["api_keys"])
    if opts.get("grpc_port") is not None and opts["grpc_port"] == opts["port"] != 0:
        raise UsageError(f"--grpc-port {opts['port']} is also --port; give gRPC its own port")
    if (opts["ssl_certfile"] is None) != (opts["ssl_keyfile"] is None):
        raise UsageError("TLS needs both --ssl-certfile and --ssl-keyfile")
    for flag in ("ssl_certfile", "ssl_keyfile"):
        if opts[flag] is not None and not Path(opts[flag]).is_file():
            raise UsageError(f"--{flag.replace('_', '-')} {opts[flag]}: no such file")
    if opts["log_level"] not in ("debug", "info", "warning", "error"):
        raise UsageError(f"--log-level {opts['log_level']!r}: valid: debug, info, warning, error")
    pins = {}
    for item in opts["pin"] or []:
        model, sep, version = item.partition("=")
        if not sep or not model or not version:
            raise UsageError(f"--pin {item!r}: expected MODEL=VERSION")
        pins[model] = version
    try:
        batching = BatchingConfig(
            max_batch_size=opts["max_batch_size"],
            max_queue_delay_ms=opts["max_queue_delay_ms"],
            max_queue=opts["max_queue"],
            request_timeout_s=opts["request_timeout"],
            instances=opts["instances"],
            tune_batch_size=opts["batch_tuning"],
        )
        per_model = (
            load_model_config(opts["model_config"], batching) if opts["model_config"] else {}
        )
        return ServeSettings(
            source=opts["source"],
            host=opts["host"],
            port=opts["port"],
            grpc_port=opts.get("grpc_port"),
            workers=opts["workers"],
            api_keys=opts["api_keys"],
            no_auth=opts["no_auth"],
            metrics_open=opts["metrics_open"],
            ssl_certfile=opts["ssl_certfile"],
            ssl_keyfile=opts["ssl_keyfile"],
            cors_origins=list(opts["cors_origin"] or []),
            max_body_bytes=int(opts["max_body_mb"] * (1 << 20)),
            allow_nonfinite=opts["allow_nonfinite"],
            batching=batching,
            model_batching=per_model,
            pins=pins,
            state_file=opts["state_file"],
            ort_threads=opts["threads"],
            ort_inter_threads=opts["inter_threads"],
            ort_spinning=opts["ort_spinning"],
            access_log=opts["access_log"],
            log_level=opts["log_level"],
            shutdown_grace_s=opts["shutdown_grace"],
            drain_timeout_s=opts["drain_timeout"],
            header_timeout_s=opts["header_timeout"],
            body_timeout_s=opts["body_timeout"],
            idle_timeout_s=opts["idle_timeout"],
            max_connections=opts["max_connections"],
            max_header_bytes=int(opts["max_header_kb"] * 1024),
            max_json_bytes=int(opts["max_json_mb"] * (1 << 20)),
            max_samples_per_request=opts["max_samples_per_request"],
            max_image_pixels=opts["max_image_pixels"],
            cpu_threads=opts["cpu_threads"],
            extensions=[ExtensionSpec(name=n) for n in opts["extension"] or []]
            + _monitor_extension(opts, ExtensionSpec),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][-1]) if first.get("loc") else ""
        flag = FLAGS.get(field, "--" + field.replace("_", "-")) if field else "a flag"
        raise UsageError(f"{flag}: {first['msg']}") from None


FLAGS = {  # settings fields whose flag is spelled differently
    "max_body_bytes": "--max-body-mb",
    "max_json_bytes": "--max-json-mb",
    "max_header_bytes": "--max-header-kb",
    "header_timeout_s": "--header-timeout",
    "body_timeout_s": "--body-timeout",
    "idle_timeout_s": "--idle-timeout",
    "shutdown_grace_s": "--shutdown-grace",
    "drain_timeout_s": "--drain-timeout",
}


def _monitor_extension(opts: dict[str, Any], spec: Any) -> list[Any]:
    """`--monitor` and its flags → the `monitor` extension with MonitorConfig options."""
    from scaledl.errors import UsageError

    flags = {
        "webhook_url": opts.get("alert_webhook"),
        "window": opts.get("monitor_window"),
        "window_seconds": opts.get("monitor_window_seconds"),
        "check_interval_s": opts.get("monitor_interval"),
    }
    options: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if opts.get("monitor_alpha") is not None:
        options["drift"] = {"alpha": opts["monitor_alpha"]}
    if not opts.get("monitor"):
        if options:
            raise UsageError("--alert-webhook and --monitor-* flags need --monitor")
        return []
    from scaledl.monitor.extension import create_extension

    create_extension(options)  # validate the options now: a bad flag is a usage error
    return [spec(name="monitor", options=options)]


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
