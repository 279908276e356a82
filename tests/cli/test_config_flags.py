"""Flags derived from the typed configs, and `scaledl serve` settings from SCALEDL_ variables.

The command line is parsed by the real typer/click command (no server is started): the flags
keep the names and defaults users' scripts rely on, and a setting resolves as
flag > environment variable > the field's default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main

from scaledl.errors import UsageError
from tests.conftest import run_cli

# Every `scaledl serve` flag as users' scripts spell it, with its default (None: unset).
SERVE_FLAG_DEFAULTS: dict[str, Any] = {
    "--host": "127.0.0.1",
    "--port": 8000,
    "--grpc-port": None,
    "--workers": 1,
    "--api-keys": None,
    "--no-auth": False,
    "--metrics-open": False,
    "--ssl-certfile": None,
    "--ssl-keyfile": None,
    "--cors-origin": None,
    "--max-body-mb": 16.0,
    "--allow-nonfinite": False,
    "--max-batch-size": 32,
    "--max-queue-delay-ms": 0.0,
    "--max-queue": 256,
    "--request-timeout": 30.0,
    "--instances": 1,
    "--batch-tuning": True,
    "--pin": None,
    "--state-file": None,
    "--threads": None,
    "--inter-threads": 1,
    "--ort-spinning": False,
    "--access-log": False,
    "--log-level": "info",
    "--shutdown-grace": 0.0,
    "--drain-timeout": 30.0,
    "--header-timeout": 10.0,
    "--body-timeout": 60.0,
    "--idle-timeout": 30.0,
    "--max-connections": None,
    "--max-header-kb": 64,
    "--max-json-mb": 2.0,
    "--max-samples-per-request": 4096,
    "--max-image-pixels": 16_000_000,
    "--cpu-threads": None,
    "--model-config": None,
    "--extension": None,
    "--monitor": False,
    "--alert-webhook": None,
    "--monitor-window-seconds": None,
}


def _command(*path: str) -> Any:
    from scaledl.cli import app

    node = typer.main.get_command(app)
    for name in path:
        node = node.commands[name]  # type: ignore[attr-defined]
    return node


def _settings(*args: str) -> Any:
    """What `scaledl serve ARGS` resolves to, in this process's environment."""
    from scaledl.cli.serve_cmds import serve_settings

    command = _command("serve")
    ctx = command.make_context("serve", list(args))
    with ctx:
        return serve_settings(ctx)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.upper().startswith("SCALEDL_") and name.upper() != "SCALEDL_CACHE_DIR":
            monkeypatch.delenv(name)
    return monkeypatch


def test_serve_flags_keep_their_names_and_defaults() -> None:
    options = {
        opt: param for param in _command("serve").params for opt in param.opts if opt[:2] == "--"
    }
    for flag, default in SERVE_FLAG_DEFAULTS.items():
        assert flag in options, f"{flag} is gone"
        assert options[flag].default == default, (flag, options[flag].default)


def test_serve_flag_help_comes_from_the_config_and_names_the_variable() -> None:
    helps = {p.opts[0]: p.help for p in _command("serve").params if p.opts[0][:2] == "--"}
    assert "Env: SCALEDL_PORT." in helps["--port"]
    assert "Env: SCALEDL_MAX_BATCH_SIZE." in helps["--max-batch-size"]
    assert "In MiB. Env: SCALEDL_MAX_BODY_BYTES, in bytes." in helps["--max-body-mb"]
    assert helps["--alert-webhook"].startswith("With --monitor: POST alerts")


def test_defaults_when_nothing_is_given(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = _settings(str(tmp_path), "--no-auth")
    assert (settings.host, settings.port, settings.batching.max_batch_size) == (
        "127.0.0.1",
        8000,
        32,
    )
    assert settings.max_body_bytes == 16 << 20 and settings.cors_origins == []


def test_environment_over_default_and_flag_over_environment(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("SCALEDL_PORT", "9100")
    clean_env.setenv("SCALEDL_MAX_BATCH_SIZE", "64")  # flat, as the flag is
    clean_env.setenv("SCALEDL_BATCHING__MAX_QUEUE", "512")  # nested
    clean_env.setenv("SCALEDL_MAX_BODY_BYTES", str(32 << 20))
    clean_env.setenv("SCALEDL_NO_AUTH", "true")
    clean_env.setenv("SCALEDL_CORS_ORIGINS", '["https://app.example"]')
    clean_env.setenv("SCALEDL_PINS", '{"digits-cnn": "2"}')
    clean_env.setenv("SCALEDL_LOG_LEVEL", "debug")
    from_env = _settings(str(tmp_path))
    assert from_env.port == 9100 and from_env.no_auth and from_env.log_level == "debug"
    assert (from_env.batching.max_batch_size, from_env.batching.max_queue) == (64, 512)
    assert from_env.max_body_bytes == 32 << 20
    assert from_env.cors_origins == ["https://app.example"]
    assert from_env.pins == {"digits-cnn": "2"}

    flagged = _settings(
        str(tmp_path), "--port", "9200", "--max-batch-size", "8", "--max-body-mb", "1",
        "--cors-origin", "https://b.example", "--log-level", "warning",
    )  # fmt: skip
    assert flagged.port == 9200 and flagged.batching.max_batch_size == 8
    assert flagged.max_body_bytes == 1 << 20 and flagged.cors_origins == ["https://b.example"]
    assert flagged.log_level == "warning"
    assert flagged.batching.max_queue == 512 and flagged.pins == {"digits-cnn": "2"}


def test_model_config_file_starts_from_the_environment(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("SCALEDL_MAX_QUEUE", "77")
    per_model = tmp_path / "models.yaml"
    per_model.write_text("digits-cnn: {max_batch_size: 4}\n")
    settings = _settings(str(tmp_path), "--no-auth", "--model-config", str(per_model))
    assert settings.batching_for("digits-cnn").max_batch_size == 4
    assert settings.batching_for("digits-cnn").max_queue == 77


@pytest.mark.parametrize(
    ("name", "value", "fragments"),
    [
        ("SCALEDL_PORT", "abc", ["SCALEDL_PORT:", "valid integer", "'abc'"]),
        ("SCALEDL_PORT", "70000", ["SCALEDL_PORT:", "65535"]),
        ("SCALEDL_MAX_BATCH_SIZE", "0", ["SCALEDL_MAX_BATCH_SIZE:", "greater than or equal to 1"]),
        ("SCALEDL_BATCHING__MAX_QUEUE", "-1", ["SCALEDL_BATCHING__MAX_QUEUE:"]),
        ("SCALEDL_LOG_LEVEL", "loud", ["SCALEDL_LOG_LEVEL:", "debug, info, warning, error"]),
        ("SCALEDL_METRICS_OPEN", "maybe", ["SCALEDL_METRICS_OPEN:", "boolean"]),
        ("SCALEDL_CORS_ORIGINS", "https://a", ["SCALEDL_CORS_ORIGINS is not valid JSON", "['"]),
        ("SCALEDL_PINS", "a=b", ["SCALEDL_PINS is not valid JSON", "SCALEDL_PINS='{"]),
        ("SCALEDL_BATCHING", '{"max_queue": 0}', ["SCALEDL_BATCHING (its max_queue):"]),
        ("SCALEDL_BATCHING", '{"max_qeue": 3}', ["unknown key", "SCALEDL_BATCHING", "max_queue"]),
    ],
)
def test_bad_variable_is_named_with_what_is_valid(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, fragments: list[str]
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(UsageError) as caught:
        _settings(str(tmp_path), "--no-auth")
    message = caught.value.message
    assert message.count("\n") == 0
    for fragment in [f.replace("['", '["') for f in fragments]:
        assert fragment in message, (fragment, message)


def test_a_flag_replaces_a_bad_variable(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("SCALEDL_PORT", "not-a-port")
    assert _settings(str(tmp_path), "--no-auth", "--port", "9300").port == 9300


def test_flat_and_nested_spellings_must_agree(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("SCALEDL_MAX_QUEUE", "5")
    clean_env.setenv("SCALEDL_BATCHING__MAX_QUEUE", "6")
    with pytest.raises(UsageError, match="SCALEDL_MAX_QUEUE='5' and SCALEDL_BATCHING__MAX_QUEUE"):
        _settings(str(tmp_path), "--no-auth")
    clean_env.setenv("SCALEDL_BATCHING__MAX_QUEUE", "5")
    assert _settings(str(tmp_path), "--no-auth").batching.max_queue == 5


def test_variables_that_name_no_setting_are_left_alone(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("SCALEDL_API_KEY", "sdk_client_side_key")
    clean_env.setenv("SCALEDL_SIGNING_KEY", "secret")
    clean_env.setenv("SCALEDL_MAX_PACKAGE_MB", "64")
    clean_env.setenv("SCALEDL_SERVE_SETTINGS", "{not json: a worker's hand-over only")
    settings = _settings(str(tmp_path), "--no-auth")
    assert settings.api_keys is None and settings.port == 8000


def test_a_flag_value_error_names_the_flag(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--max-body-mb \(as max_body_bytes\): .*1024"):
        _settings(str(tmp_path), "--no-auth", "--max-body-mb", "0.0001")
    with pytest.raises(UsageError, match=r"--monitor-alpha: "):
        _settings(str(tmp_path), "--no-auth", "--monitor", "--monitor-alpha", "2")


def test_the_monitors_windows_score_reaches_its_config_and_a_bad_one_exits_2(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _settings(
        str(tmp_path), "--no-auth", "--monitor", "--monitor-windows-score", "sensor"
    )
    assert settings.extensions[0].options == {"drift": {"windows_score": "sensor"}}
    result = run_cli(
        "serve", str(tmp_path), "--no-auth", "--monitor", "--monitor-windows-score", "all"
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--monitor-windows-score" in result.stderr and "'sensor', 'feature'" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_read_only_the_parents_settings(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from scaledl.config.serve import SETTINGS_ENV, ServeSettings

    parent = _settings(str(tmp_path), "--no-auth", "--port", "9400")
    clean_env.setenv(SETTINGS_ENV, parent.to_env())
    clean_env.setenv("SCALEDL_PORT", "9500")  # changed after the parent resolved: not read
    assert ServeSettings.from_env() == parent


@pytest.mark.e2e
def test_bad_variable_exits_2_with_one_message(tmp_path: Path) -> None:
    result = run_cli("serve", str(tmp_path), "--no-auth", env={"SCALEDL_MAX_QUEUE": "lots"})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "SCALEDL_MAX_QUEUE: Input should be a valid integer" in result.stderr


def _maintain_config(*args: str) -> Any:
    from scaledl.cli.maintain_cmds import maintain_config

    ctx = _command("maintain").make_context("maintain", ["repo", "-m", "m", "-d", "x", *args])
    with ctx:
        return maintain_config(ctx)


def test_maintain_config_file_then_flags_then_set(tmp_path: Path) -> None:
    settings = tmp_path / "maintain.yaml"
    settings.write_text(
        "detect: {alpha: 0.01}\nfinetune: {epochs: 9, lr: 0.01}\nrollout: {soak_seconds: 5}\n"
    )
    config = _maintain_config(
        "--config", str(settings), "--alpha", "0.2", "--set", "finetune.epochs=2"
    )
    assert config.detect.alpha == 0.2  # the flag over the file
    assert (config.finetune.epochs, config.finetune.lr) == (2, 0.01)  # --set over the file
    assert config.rollout.soak_seconds == 5 and config.split.test_fraction == 0.25  # file, default


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("detect: {alpah: 0.1}\n", "unknown key 'detect.alpah' (valid keys in detect: alpha"),
        ("finetune: {epochs: 0}\n", "field 'finetune.epochs': Input should be greater"),
        ("- just a list\n", "expected a mapping of sections"),
        ("detect: {alpha: [\n", "cannot read it"),
    ],
)
def test_maintain_config_file_errors_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    settings = tmp_path / "maintain.yaml"
    settings.write_text(text)
    with pytest.raises(UsageError) as caught:
        _maintain_config("--config", str(settings))
    assert fragment in caught.value.message
    with pytest.raises(UsageError, match=r"--alpha: Input should be less than 1"):
        _maintain_config("--alpha", "1.5")


def test_a_set_item_is_named_as_typed() -> None:
    with pytest.raises(UsageError, match=r"--set finetune.epochs: Input should be greater"):
        _maintain_config("--set", "finetune.epochs=0")


def test_a_modality_section_is_validated_with_the_recipe() -> None:
    from scaledl.config.recipe import Recipe
    from scaledl.errors import RecipeError
    from scaledl.validation import validate

    recipe = validate(Recipe, {"data": {"audio": {"n_mels": 64}}}, "recipe", RecipeError)
    assert recipe.data.audio.n_mels == 64 and recipe.data.audio.hop_ms == 10.0
    with pytest.raises(RecipeError) as caught:
        validate(Recipe, {"data": {"audio": {"n_melz": 64}}}, "recipe r.yaml", RecipeError)
    assert "unknown key 'data.audio.n_melz' (valid keys in data.audio: sample_rate" in str(
        caught.value.message
    )
    with pytest.raises(RecipeError, match=r"f_max 10\.0 must exceed f_min 20\.0"):
        validate(Recipe, {"data": {"audio": {"f_max": 10}}}, "recipe", RecipeError)
