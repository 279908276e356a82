"""The decision rules and the config, as pure functions."""

from __future__ import annotations

import math

import pytest

from scaledl.errors import UsageError
from scaledl.maintain.config import DecideConfig, build_config
from scaledl.maintain.decision import Measured, decide, plan_retrain

RULE = DecideConfig(min_gain=0.0, max_regression=0.02)


def both(new: tuple[float, float], ref: tuple[float, float], channel: str = "offline") -> list:
    return [
        Measured("new", channel, 450, *new),  # type: ignore[arg-type]
        Measured("reference", channel, 359, *ref),  # type: ignore[arg-type]
    ]


def test_retrain_when_degraded_or_forced_only() -> None:
    assert plan_retrain(True, ["ks_pca: p=0"], force=False).retrain
    forced = plan_retrain(False, [], force=True)
    assert forced.retrain and forced.forced
    idle = plan_retrain(False, [], force=False)
    assert not idle.retrain and "no drift" in idle.reasons[0]


def test_better_on_new_rows_and_no_regression_promotes() -> None:
    decision = decide(both((0.30, 0.86), (0.87, 0.86)), RULE)
    assert decision.action == "promote"
    assert decision.reason == "every check passed"


def test_regression_on_reference_rows_rolls_back_even_with_a_gain() -> None:
    # A harmful update: its held-out labels are as wrong as its training labels, so it "gains"
    # on them; the old test rows show the damage.
    decision = decide(both((0.01, 0.20), (0.86, 0.78)), RULE)
    assert decision.action == "rollback"
    assert [c.name for c in decision.failed] == ["regression:offline"]
    assert "loss +0.0800" in decision.reason


def test_regression_threshold_is_inclusive() -> None:
    assert decide(both((0.5, 0.5), (0.90, 0.88)), RULE).action == "promote"
    assert decide(both((0.5, 0.5), (0.90, 0.8799)), RULE).action == "rollback"


def test_no_gain_on_new_rows_rolls_back() -> None:
    decision = decide(both((0.60, 0.59), (0.9, 0.9)), RULE)
    assert decision.action == "rollback"
    assert decision.failed[0].name == "gain:offline"
    strict = DecideConfig(min_gain=0.05, max_regression=0.02)
    assert decide(both((0.50, 0.54), (0.9, 0.9)), strict).action == "rollback"
    assert decide(both((0.50, 0.56), (0.9, 0.9)), strict).action == "promote"


def test_every_channel_must_pass_and_failures_roll_back() -> None:
    offline = both((0.3, 0.8), (0.9, 0.9))
    served = both((0.3, 0.8), (0.9, 0.7), channel="server")
    decision = decide(offline + served, RULE)
    assert decision.action == "rollback"
    assert [c.name for c in decision.failed] == ["regression:server"]
    assert decide(offline, RULE, failures=1).action == "rollback"
    unanswered = both((0.3, math.nan), (0.9, math.nan), channel="server")
    assert decide(offline + unanswered, RULE).action == "rollback"
    assert decide([], RULE).action == "rollback"


def test_decision_json_has_the_numbers() -> None:
    doc = decide(both((0.3, 0.8), (0.9, 0.9)), RULE).to_json()
    assert doc["action"] == "promote"
    gain = next(c for c in doc["checks"] if c["check"] == "gain:offline")
    assert gain["value"] == pytest.approx(0.5) and gain["threshold"] == 0.0


def test_config_flags_and_set_overrides() -> None:
    config = build_config(
        {"rollout": {"policy": "shadow"}}, ["finetune.epochs=2", "optimize.time_budget_min=1"]
    )
    assert config.rollout.policy == "shadow"
    assert config.finetune.epochs == 2
    assert config.optimize == {"time_budget_min": 1}


@pytest.mark.parametrize(
    ("values", "sets", "message"),
    [
        ({}, ["finetune.epoch=2"], "unknown key (valid here: epochs"),
        ({}, ["finetune.epochs=0"], "finetune.epochs"),
        ({"rollout": {"policy": "blue-green"}}, [], "rollout.policy"),
        ({"rollout": {"canary_weight": 1.5}}, [], "rollout.canary_weight"),
        ({}, ["nonsense"], "expected KEY.PATH=VALUE"),
    ],
)
def test_bad_settings_are_usage_errors(values: dict, sets: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        build_config(values, sets)


def test_by_default_a_new_version_must_fix_something() -> None:
    same = both((0.30, 0.30), (0.90, 0.91))
    assert decide(same, DecideConfig()).action == "rollback"
    assert decide(both((0.30, 0.32), (0.90, 0.91)), DecideConfig()).action == "promote"


def test_an_uncounted_failure_blocks_a_promotion(tmp_path) -> None:
    """Fail closed: when the server's failure counter could not be read, a version that wins
    on every accuracy check is still rolled back, and the log says why (no NaN in the JSON)."""
    from scaledl.maintain.decision import FailureCount, record_decision
    from scaledl.maintain.log import DecisionLog

    winning = both((0.50, 0.60), (0.90, 0.90))  # (live, candidate)
    assert decide(winning, RULE, FailureCount(0, "counted")).action == "promote"
    unread = FailureCount(None, "http://127.0.0.1:1/metrics is not Prometheus text")
    decision = decide(winning, RULE, unread)
    assert decision.action == "rollback"
    assert [c.name for c in decision.failed] == ["failures"]
    assert "could not be counted" in decision.reason and "not Prometheus text" in decision.reason
    assert FailureCount(None, "x").plus(3, "y").count is None  # later counts do not hide it

    log = DecisionLog(tmp_path / "log.jsonl", "run-1", "m")
    record_decision(log, "2", winning, unread, RULE)
    text = (tmp_path / "log.jsonl").read_text()
    assert "NaN" not in text and '"failures": null' in text and '"action": "rollback"' in text
