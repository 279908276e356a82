"""`train.time_budget_min`: the schedule is fitted to the budget and training ends on time."""

from __future__ import annotations

import time

import pytest

from scaledl.data.augment import build_augmenter
from scaledl.modalities import load_splits
from scaledl.pipeline.train import build_model_for, model_spec_for
from scaledl.preprocess import fit_preprocessing
from scaledl.recipe import validate_recipe
from scaledl.train.budget import TimeBudget
from scaledl.train.loop import Trainer
from scaledl.train.schedule import lr_factor
from tests.conftest import quick_recipe

BUDGET_MIN = 0.1


@pytest.mark.slow
def test_a_tiny_budget_ends_on_time_with_the_schedule_at_its_end() -> None:
    recipe = validate_recipe(
        quick_recipe(
            model={"family": "mlp", "hidden": [64]},
            augment={"policy": [{"op": "crop", "padding": 1}]},
            train={"epochs": 10_000, "batch_size": 64, "lr": 0.01, "schedule": "onecycle",
                   "time_budget_min": BUDGET_MIN},
        )
    )  # fmt: skip
    splits = load_splits(recipe.data, seed=0, task="classification")
    prep = fit_preprocessing(splits)
    trainer = Trainer(
        build_model_for(recipe, model_spec_for(recipe, prep, 10)),
        splits,
        recipe.train,
        prep,
        augmenter=build_augmenter(recipe.augment, splits.kind),
    )
    start = time.monotonic()
    result = trainer.fit()
    took = time.monotonic() - start
    plan = result.extra["time_budget"]
    # generous: a busy machine slows the last steps (fit also counts FLOPs after training)
    assert result.seconds <= BUDGET_MIN * 60 * 1.5 + 2
    assert took <= BUDGET_MIN * 60 * 1.5 + 30
    assert plan["planned_steps"] < plan["max_steps"]  # the ceiling of 10,000 epochs: not reached
    # the schedule reached its end: every planned step ran, the last at one-cycle's last rate
    # (on a machine that slows down sharply the plan may have been cut at the deadline)
    assert plan["steps_done"] == plan["planned_steps"]
    last = lr_factor("onecycle", plan["planned_steps"] - 1, plan["planned_steps"], 0)
    assert result.history[-1]["lr"] == pytest.approx(recipe.train.lr * last)
    assert last <= 1 / (0.75 * plan["planned_steps"]) + 1e-12  # one-cycle's final step
    assert len(result.history) >= 1


def test_the_plan_fits_the_time_left() -> None:
    budget = TimeBudget(1.0, max_steps=10_000, steps_per_epoch=100, val_samples=0)
    for _ in range(10):
        budget.record_step(0.1, 32)  # 0.1 s a step (the first is not counted)
    budget.record_epoch_end(2.0)
    total, stop = budget.plan(done=10, total=10_000)
    # 97 % of 60 s, less the final epoch end and 2 steps, at 0.1 s a step + 2 s per 100 steps
    expected = 10 + int((60 * 0.97 - budget.elapsed() - 2.0 - 0.2) / (0.1 + 2.0 / 100))
    assert not stop and abs(total - expected) <= 1
    roomy = TimeBudget(60.0, max_steps=500, steps_per_epoch=100, val_samples=1_000)
    for _ in range(5):
        roomy.record_step(0.1, 32)
    assert roomy.plan(done=5, total=500) == (500, False)  # epochs × steps stays the ceiling
    # re-planned after its last step, a roomy run ends there: it does not grow by a step at
    # each re-plan until the deadline (a 1-epoch fine-tune with minutes to spare ran 1,868)
    assert roomy.plan(done=500, total=500) == (500, False)


def test_a_spent_budget_stops() -> None:
    budget = TimeBudget(0.01, max_steps=1_000, steps_per_epoch=10, val_samples=0)
    budget.elapsed_before = 60.0  # the interrupted part of the run used it all
    for _ in range(5):
        budget.record_step(0.1, 8)
    assert budget.overdue()
    total, stop = budget.plan(done=5, total=1_000)
    assert stop and total == 5


def test_no_budget_is_a_fixed_plan() -> None:
    budget = TimeBudget(None, max_steps=100, steps_per_epoch=10, val_samples=0)
    assert not budget.active and not budget.due(50, 10) and not budget.overdue()
